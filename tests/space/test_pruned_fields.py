"""Unpruned architectures are what they were before `BlockSpec` could describe a pruning: the same JSON, hash
and network. `unpruned_architectures.json` was written by the code before the pruning fields existed
(`python tests/space/test_pruned_fields.py` regenerates it: only ever from that code)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).with_name("unpruned_architectures.json")


def sampled_architectures() -> list:
    """12 random architectures of each built-in space, and the hand-designed baselines."""
    import optuna

    from nas.baselines import hand_designed
    from nas.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    archs = []
    for name in ("mobilenet", "fbnet"):
        space = load_space(name)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
        archs += [space.sample(study.ask()) for _ in range(12)]
    return archs + list(hand_designed().values())


def graph_digest(arch) -> str:
    """The built network: every tensor's name and shape, every module's repr and every shortcut."""
    from nas.builder import build_model

    model = build_model(arch, num_classes=10)
    parts = [f"{name}:{tuple(t.shape)}" for name, t in model.state_dict().items()]
    parts += [repr(model)] + [str(getattr(m, "use_residual", "")) for m in model.modules()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def test_golden_architectures_keep_json_hash_and_network():
    from nas.space import Architecture

    golden = json.loads(GOLDEN.read_text())
    assert len(golden) == 24 + 9  # 12 of each space; 3 baselines at 3 width multipliers
    for record in golden:
        arch = Architecture.from_dict(record["architecture"])
        assert not arch.pruned
        assert json.loads(arch.to_json()) == record["architecture"]
        assert arch.hash == record["hash"]
        assert graph_digest(arch) == record["graph"], arch.summary()


def test_sampling_gives_the_golden_architectures():
    golden = json.loads(GOLDEN.read_text())
    assert [a.hash for a in sampled_architectures()] == [r["hash"] for r in golden]


def test_pruned_fields_round_trip_and_change_the_hash():
    from dataclasses import replace

    from nas.space import Architecture

    arch = sampled_architectures()[0]
    stage = arch.stages[0]
    block = replace(stage.blocks[0], channels=8, expanded=24, attention_width=32)
    pruned = replace(arch, stages=(replace(stage, blocks=(block, *stage.blocks[1:])), *arch.stages[1:]))
    assert pruned.pruned and pruned.hash != arch.hash
    data = pruned.to_dict()["stages"][0]["blocks"][0]
    assert (data["channels"], data["expanded"], data["attention_width"]) == (8, 24, 32)
    assert "channels" not in pruned.to_dict()["stages"][0]["blocks"][-1] or len(stage.blocks) == 1
    assert Architecture.from_json(pruned.to_json()) == pruned
    for bad in (0, -8, 2.5, True):
        with pytest.raises(ValueError, match="channels"):
            replace(block, channels=bad)


if __name__ == "__main__":
    records = [
        {"architecture": a.to_dict(), "hash": a.hash, "graph": graph_digest(a)}
        for a in sampled_architectures()
    ]
    GOLDEN.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"{len(records)} architectures -> {GOLDEN}", file=sys.stderr)
