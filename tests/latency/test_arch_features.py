import numpy as np
import optuna
import pytest

from nas.builder import build_model
from nas.latency._arch_features import ArchitectureFeaturizer
from nas.latency._graph import graph_features
from nas.onnx_io import export_onnx
from nas.space import load_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("space_name", ["mobilenet", "fbnet"])
def test_composed_features_equal_the_exported_network(space_name):
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    featurizer = ArchitectureFeaturizer(num_classes=10)
    for _ in range(4):
        arch = space.sample(study.ask())
        composed = featurizer.features(arch)
        whole = graph_features(export_onnx(build_model(arch, 10), arch.resolution, fast=True))
        assert set(composed.kinds) == set(whole.kinds)
        for kind, vector in whole.kinds.items():
            assert np.allclose(composed.kinds[kind], vector, rtol=1e-9), kind


def test_parts_are_exported_once():
    space = load_space("mobilenet")
    arch = space.sample(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask())
    featurizer = ArchitectureFeaturizer()
    first = featurizer.features(arch)
    cached = len(featurizer)
    again = featurizer.features(arch)
    assert len(featurizer) == cached and cached <= arch.depth + 2
    assert all(np.array_equal(first.kinds[k], again.kinds[k]) for k in first.kinds)
