"""Which machine and library versions a run was made with (config.json `machine`), and whether a resume
elsewhere may go on: measured latencies of two CPU models are not comparable, predicted ones are."""

from __future__ import annotations

import platform
from typing import Any

from nas._version import __version__
from nas.errors import NasError
from nas.latency import machine_signature


def machine_record() -> dict[str, Any]:
    """This machine: CPU model, ISA flags, cores, architecture, OS, Python, the execution providers of its ONNX
    Runtime, and the versions that shape its latencies and results."""
    import onnxruntime
    import optuna
    import torch

    signature = machine_signature()
    return {
        "cpu": signature["cpu"],
        "isa": signature["isa"],
        "cores": signature["cores"],
        "architecture": signature["machine"],
        "os": platform.platform(),
        "python": platform.python_version(),
        # what this ONNX Runtime build can run; the profile's provider and provider_options are in
        # config.json's profile.measurement
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "versions": {
            "nas": __version__,
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "optuna": optuna.__version__,
        },
    }


def machine_change(
    document: dict[str, Any], here: dict[str, Any], latency_mode: str, allowed: bool, run_dir: Any
) -> dict[str, Any] | None:
    """What to append to config.json's `machine_changes` when a run resumes on a machine unlike the last one it
    ran on (None: the same, or a run that recorded no machine). A measured run on another CPU model is
    refused unless `allowed`: its latencies would mix two CPUs."""
    recorded = document.get("machine")
    if not isinstance(recorded, dict):
        return None
    changes = document.get("machine_changes") or []
    last = changes[-1]["machine"] if changes and isinstance(changes[-1], dict) else recorded
    if _comparable(last) == _comparable(here):
        return None
    cpu_changed = recorded.get("cpu") != here["cpu"]
    if cpu_changed and latency_mode == "measured" and not allowed:
        raise NasError(
            f"{run_dir}: its latencies were measured on {recorded.get('cpu')!r}, this machine has "
            f"{here['cpu']!r}; resume it there, or pass --allow-machine-change to go on here (config.json "
            "records the change)"
        )
    return {"machine": here, "latency": latency_mode, "cpu_changed": cpu_changed}


def _comparable(record: dict[str, Any]) -> tuple:
    return tuple(str(record.get(key)) for key in ("cpu", "isa", "architecture", "os", "python", "versions"))
