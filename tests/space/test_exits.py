"""Early exits in a space file: a search choice per stage, absent from every built-in space, so their
architectures, hashes and trial parameters are what they were (the golden file of `test_pruned_fields`
checks the JSON, hash and network of sampled built-in architectures too)."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from nas.errors import NasError
from nas.space import Architecture, list_spaces, load_space
from tests.exits.cascade_fixture import EXITS_SPACE

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample(space, n: int, seed: int = 0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        arch = space.sample(trial)
        out.append((dict(trial.params), arch))
    return out


def test_builtin_spaces_offer_no_exits_and_keep_their_parameters_and_json():
    for space in list_spaces():
        assert space.exits == {}
        for params, arch in _sample(space, 10):
            assert arch.exits == ()
            assert not any(name.startswith("exits.") for name in params)
            assert "exits" not in arch.to_dict() and "exits@" not in arch.summary()


def test_exits_are_a_search_choice_and_change_the_hash(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(EXITS_SPACE)
    space = load_space(path)
    assert space.exits == {"a": (False, True), "b": (True,)}
    seen = {arch.exits for params, arch in _sample(space, 12) if "exits.a" in params}
    assert seen == {("b",), ("a", "b")}  # a: the sampler's choice; b: always; c (the last stage): never
    arch = next(arch for _, arch in _sample(space, 12) if arch.exits == ("a", "b"))
    plain = dataclasses.replace(arch, exits=())
    assert arch.hash != plain.hash and "exits" not in plain.to_dict()
    assert Architecture.from_json(arch.to_json()) == arch and arch.summary().endswith(" exits@a,b")
    assert space.describe()["size_upper_bound"] == 2**3 * 2  # a primitive per stage, x exits.a


@pytest.mark.parametrize(
    "exits, message",
    [
        ("{c: true}", r":10: exits\.c: unknown field \(allowed: a, b\)"),
        ("{z: true}", r":10: exits\.z: unknown field"),
        ("{a: yes please}", r":10: exits\.a: must be true or false, got 'yes please'"),
        ("{a: []}", r":10: exits\.a: an empty list of choices"),
        ("[a, b]", r":10: exits: must be a mapping"),
    ],
)
def test_a_bad_exits_field_names_file_line_and_field(tmp_path, exits, message):
    path = tmp_path / "space.yaml"
    path.write_text(EXITS_SPACE.replace("exits: {a: [false, true], b: true}", f"exits: {exits}"))
    with pytest.raises(NasError, match=message):
        load_space(path)


def test_an_architecture_refuses_exits_it_cannot_have():
    arch = _sample(load_space("mobilenet"), 1)[0][1]
    for exits, problem in ((("s4",), "not a stage before the last"), (("s3", "s2"), "in network order")):
        with pytest.raises(ValueError, match=problem):
            dataclasses.replace(arch, exits=exits)
