"""`model_card.md` for one exported architecture (`RUN_DIR/export/NN_HASH/`).

It opens with Hugging Face model-card front matter (YAML between `---` lines: library, tags, license,
datasets, metrics and a `model-index` with the measured values), so the folder can be pushed to the Hub
as it is and tools that read model cards find the numbers. Built only from files in the export folder
(spec.json, metrics.json, model.onnx, and when present slices.json, int8.json and adaptation.json) plus the hardware
profiles: the x86-cpu latency is measured here when the card is written; each profile with a latency
model gets a prediction with its cross-validated MAPE.
"""

from __future__ import annotations

from pathlib import Path

from nas._io import cpu_model, read_json, write_atomic
from nas.errors import NasError

SLICES_FILE = "slices.json"
INT8_FILE = "int8.json"
ADAPT_FILE = "adaptation.json"  # written by `nas adapt` into the fine-tuned model's folder
CARD_FILE = "model_card.md"
BUILTIN_DATASET_ID = "cifar10"  # the Hub's id of the dataset the built-in subset is drawn from
LICENSE = "other"  # the weights belong to whoever ran the search: they choose a license before publishing


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise NasError(f"{path.parent}: not an exported model folder (missing {path.name})")
    return read_json(path, path.name)


def _block_text(block: dict) -> str:
    parts = [block["primitive"]]
    if block.get("kernel"):
        parts.append(f"k{block['kernel']}")
    if block.get("expansion") is not None:
        parts.append(f"e{block['expansion']:g}")
    if block.get("groups"):
        parts.append(f"g{block['groups']}")
    if block.get("se"):
        parts.append("SE")
    if block.get("activation"):
        parts.append(block["activation"])
    return " ".join(parts)


def _architecture(arch: dict) -> list[str]:
    lines = [
        f"Space `{arch['space']}`, input {arch['resolution']}x{arch['resolution']}. "
        f"Stem: {arch['stem_kernel']}x{arch['stem_kernel']} conv, {arch['stem_channels']} channels, "
        f"stride {arch['stem_stride']}, {arch['stem_activation']}.",
        "",
        "| stage | stride | width | depth | blocks |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for stage in arch["stages"]:
        blocks = [_block_text(b) for b in stage["blocks"]]
        distinct = list(dict.fromkeys(blocks))
        text = (
            distinct[0] + (f" x{len(blocks)}" if len(blocks) > 1 else "")
            if len(distinct) == 1
            else "; ".join(blocks)
        )
        lines.append(
            f"| {stage['name']} | {stage['stride']} | {stage['width']} | {len(blocks)} | {text or '-'} |"
        )
    head = f"1x1 conv to {arch['head_width']}, {arch['head_activation']}, " if arch.get("head_width") else ""
    lines += ["", f"Head: {head}global average pool, dropout {arch['dropout']}, linear classifier."]
    return lines


def _latency(onnx_path: Path, metrics: dict, measure: bool) -> list[str]:
    from nas.latency import list_profiles, load_profile, measure_latency

    lines = ["| profile | how | latency (ms) | uncertainty |", "| --- | --- | ---: | --- |"]
    if measure:
        m = measure_latency(onnx_path, load_profile("x86-cpu").measurement)
        flag = "" if m.stable else " (unstable)"
        lines.append(
            f"| x86-cpu | measured now on {cpu_model()} (ONNX Runtime CPU, 1 thread, batch 1) | "
            f"{m.median_ms:.4f} | spread {100 * m.spread:.1f}% over {len(m.round_medians_ms)} rounds{flag} |"
        )
    if metrics.get("latency_ms") is not None:
        spread = metrics.get("latency_spread")
        how = (
            "predicted during the search"
            if spread is None
            else "measured during the search (untrained graph)"
        )
        unc = "-" if spread is None else f"spread {100 * spread:.1f}%"
        lines.append(f"| {metrics.get('profile', '?')} | {how} | {metrics['latency_ms']:.4f} | {unc} |")
    for profile in list_profiles():
        if profile.latency_model is None:
            continue
        mape = (profile.validation or {}).get("mape")
        unc = f"cross-validated MAPE {mape:.1f}%" if mape is not None else "no recorded validation error"
        how = "predicted by its latency model" + (
            " (the local profile's fitted model)" if profile.latency == "measured" else ""
        )
        try:
            prediction = profile.predict(str(onnx_path))
            value = f"{prediction.latency_ms:.4f}"
            if prediction.low_ms is not None:
                unc += f"; {100 * prediction.level:.0f}% interval {prediction.low_ms:.4f}-{prediction.high_ms:.4f}"
            if prediction.uncovered:
                unc += (
                    f"; {100 * prediction.extrapolated_share:.0f}% extrapolated (kinds this device never "
                    f"measured: {', '.join(prediction.uncovered)})"
                )
        except NasError as exc:
            value, unc = "not predictable", str(exc)
        lines.append(f"| {profile.name} | {how} | {value} | {unc} |")
    return lines


def _slices(report: dict) -> list[str]:
    lines = [
        f"Data: {report['data']}; clean accuracy {100 * report['clean_accuracy']:.1f}%, worst slice "
        f"`{report['worst_slice']}` {100 * report['worst_slice_accuracy']:.1f}%"
        + (
            f", mean over corruptions {100 * report['mean_corrupted_accuracy']:.1f}%"
            if report.get("mean_corrupted_accuracy") is not None
            else ""
        )
        + ".",
        "",
        "| slice | n | accuracy % | 95% CI | drop (pts) | ECE | most confused | note |",
        "| --- | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for s in report["slices"]:
        c = s["confusions"][0] if s.get("confusions") else None
        conf = f"{c['true']} -> {c['predicted']} ({c['count']})" if c else "-"
        note = "thin: " + s["thin_reason"] if s.get("thin") else ""
        drop = "" if s["kind"] == "clean" else f"{100 * s['drop']:+.1f}"
        lines.append(
            f"| {s['name']} | {s['n']} | {100 * s['accuracy']:.1f} | {100 * s['ci95'][0]:.1f}-{100 * s['ci95'][1]:.1f} "
            f"| {drop} | {s['ece']:.3f} | {conf} | {note} |"
        )
    if report.get("thin_slices"):
        lines += [
            "",
            f"Thin slices ({report.get('thin_rule', 'small n or wide CI')}): too uncertain to rank models on.",
        ]
    return lines


def _int8(result: dict) -> list[str]:
    clean, worst = result["clean"], result["worst_slice"]
    q = result.get("quantization", {})
    lines = [
        "Static post-training quantization (ONNX Runtime quantize_static, QDQ, "
        f"{'per-channel' if q.get('per_channel') else 'per-tensor'} "
        f"int8 weights, {q.get('activations', '?')} activations, {q.get('calibration', '?')} calibration on "
        f"{q.get('calibration_images', '?')} images of {q.get('calibration_data', '?')}), evaluated on "
        f"{result['n']} images of {result['data']}.",
        "",
        f"- clean accuracy: FP32 {100 * clean['fp32']:.1f}%, INT8 {100 * clean['int8']:.1f}% "
        f"(drop {100 * clean['drop']:+.1f} pts)",
        f"- FP32's worst slice `{worst['fp32']['name']}`: drop {100 * worst['drop']:+.1f} pts; "
        f"largest drop over all slices {100 * result['max_slice_drop']:+.1f} pts",
    ]
    for name, entry in result.get("latency", {}).items():
        if isinstance(entry.get("int8"), dict):
            lines.append(
                f"- {name} latency: FP32 {entry['fp32']['median_ms']:.4f} ms, INT8 {entry['int8']['median_ms']:.4f} ms "
                f"(speed-up x{entry['speedup']:.2f}); {entry.get('note', '')}"
            )
        else:
            lines.append(
                f"- {name} latency: FP32 predicted {entry['fp32']['predicted_ms']:.3f} ms; INT8 {entry['int8']}"
            )
    return lines


def _adaptation(report: dict) -> list[str]:
    """What `nas adapt` fine-tuned this model on and what it decided, per failing slice."""
    d, t = report["decision"], report["training"]["summary"]
    lines = [
        f"Fine-tuned from `{report['model']}` by `nas adapt` on {t['train_images']} training images, each "
        f"clean and under {', '.join(t['conditions']) or 'no corruption'}, plus {t['hard_examples']} hard "
        "examples, disjoint from the evaluation images. Gap closed per failing slice (share of the gap to "
        "the original model's clean accuracy):",
        "",
    ]
    for r in d["slices"]:
        switch = (
            f"; switching to {r['switch_to']}: {100 * r['switch_closed']:.0f}%" if "switch_to" in r else ""
        )
        lines.append(f"- {r['slice']}: fine-tuning {100 * r['fine_tune_closed']:.0f}%{switch}")
    lines += ["", f"Recommendation: **{d['recommendation']}**.", ""]
    lines += [f"- {e}" for e in d["evidence"]]
    return lines


def _dataset_id(name: str) -> str:
    """The dataset as the Hub names it: CIFAR-10 for the built-in subset, else the folder or file name (a full
    path would say nothing on another machine)."""
    return BUILTIN_DATASET_ID if name == "builtin" else Path(name).name or name


def _front_matter(export_dir: Path, metrics: dict, slices: dict | None) -> list[str]:
    """Hugging Face model-card metadata: `metrics` names what is measured, `model-index` holds the values
    (proxy accuracy, deployment-trained accuracy, clean accuracy of `nas validate` and latency, when
    known)."""
    import yaml

    dataset = str(metrics.get("dataset", "unknown"))
    profile = str(metrics.get("profile", "unknown"))
    values = []
    if metrics.get("accuracy") is not None:  # nas train: the deployment-trained network
        values.append({"type": "accuracy", "value": float(metrics["accuracy"]), "name": "accuracy (top-1)"})
    if metrics.get("proxy_accuracy") is not None:
        values.append(
            {
                "type": "accuracy",
                "value": float(metrics["proxy_accuracy"]),
                "name": "proxy accuracy (top-1 after the search's short training)",
            }
        )
    if slices is not None and slices.get("clean_accuracy") is not None:
        values.append(
            {
                "type": "accuracy",
                "value": float(slices["clean_accuracy"]),
                "name": f"clean accuracy (nas validate on {slices.get('data', 'its data')})",
            }
        )
    if metrics.get("latency_ms") is not None:
        values.append(
            {
                "type": "latency_ms",
                "value": float(metrics["latency_ms"]),
                "name": f"latency (ms) on {profile}",
            }
        )
    data = {
        "library_name": "onnx",
        "pipeline_tag": "image-classification",
        "license": LICENSE,
        "tags": [
            "onnx",
            "image-classification",
            "neural-architecture-search",
            "hardware-aware",
            "nas",
            profile,
        ],
        "datasets": [_dataset_id(dataset)],
        "metrics": ["accuracy"],
    }
    if values:
        data["model-index"] = [
            {
                "name": export_dir.name,
                "results": [
                    {
                        "task": {"type": "image-classification", "name": "Image Classification"},
                        "dataset": {
                            "name": _dataset_id(dataset),
                            "type": _dataset_id(dataset),
                            "split": "validation",
                        },
                        "metrics": values,
                    }
                ],
            }
        ]
    return ["---", yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n"), "---", ""]


def write_model_card(export_dir: str | Path, *, measure: bool = True) -> Path:
    """Write `export_dir/model_card.md` and return its path. `measure=False` skips the x86-cpu measurement."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise NasError(f"exported model folder not found: {export_dir}")
    spec = _read_json(export_dir / "spec.json")
    metrics = _read_json(export_dir / "metrics.json")
    onnx_path = export_dir / spec.get("onnx", "model.onnx")
    if not onnx_path.is_file():
        raise NasError(f"{export_dir}: missing {onnx_path.name}")
    arch, pre = spec["architecture"], spec["preprocessing"]
    training = metrics.get("training") or {}
    slices_path, int8_path = export_dir / SLICES_FILE, export_dir / INT8_FILE
    slices = _read_json(slices_path) if slices_path.is_file() else None
    lines = [
        *_front_matter(export_dir, metrics, slices),
        f"# Model card: {export_dir.name}",
        "",
        f"Architecture `{spec['arch_hash']}`, trial {metrics.get('trial', '?')} of a `nas` search on the "
        f"`{metrics.get('profile', '?')}` profile; {spec['num_classes']} classes: {', '.join(pre['classes'])}.",
        "",
        "## Input",
        "",
        f"`{onnx_path.name}` (ONNX, dynamic batch): input `{pre['input_name']}` {pre['input_shape']} float32, "
        f"{pre.get('layout', 'NCHW')} {pre.get('channel_order', 'RGB')}; {pre.get('resize', '')}; "
        f"x = (pixel / 255 - mean) / std with mean {pre['mean']} and std {pre['std']}. "
        f"Output: {pre.get('output', 'logits')}. "
        "The same contract is in the model's metadata (`nas.preprocessing`).",
        "",
        "## Architecture",
        "",
        *_architecture(arch),
        "",
        "## Size and compute",
        "",
        f"- parameters: {metrics['params']:,}",
        f"- MACs: {metrics['macs']:,} (fvcore: convolution and linear multiply-accumulates only; activations, "
        "residual adds and SE multiplies count 0)",
        "",
        "## Latency",
        "",
        *_latency(onnx_path, metrics, measure),
        "",
        "Predicted latencies carry the error of the profile's latency model; compare them only within one profile.",
        "",
        "## Accuracy",
        "",
        f"Proxy accuracy {100 * metrics['proxy_accuracy']:.1f}% (top-1 on the validation split of "
        f"`{metrics.get('dataset', '?')}` after a short training run: {training.get('epochs', '?')} epochs of "
        f"{training.get('train_subset') or 'all'} images). "
        "It ranks candidates; it is not the accuracy of a fully trained network.",
        "",
    ]
    lines += ["## Robustness slices", ""]
    if slices is not None:
        lines += _slices(slices)
    else:
        lines.append(
            f"Not evaluated (no {SLICES_FILE}; run `nas validate {onnx_path} --data ... --json {slices_path}`)."
        )
    lines += ["", "## INT8", ""]
    if int8_path.is_file():
        lines += _int8(_read_json(int8_path))
    else:
        lines.append(f"Not quantized (no {INT8_FILE}; run `nas quantize {onnx_path} --data ...`).")
    adaptation_path = export_dir / ADAPT_FILE
    if adaptation_path.is_file():
        lines += ["", "## Adaptation", "", *_adaptation(_read_json(adaptation_path))]
    lines += [
        "",
        "## Limitations",
        "",
        "- Accuracy numbers come from a short proxy training on the search dataset; retrain before deployment.",
        "- Corruption slices are synthetic (numpy/Pillow); real conditions need user slices (`--slices DIR`).",
        "- Latency holds for the stated runtime, threads and batch size only.",
    ]
    return write_atomic(export_dir / CARD_FILE, "\n".join(lines) + "\n")
