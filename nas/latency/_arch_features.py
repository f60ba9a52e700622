"""Graph features of an `Architecture` without exporting it: composed from cached per-part features.

Features are additive over a network's parts (stem, every block, head), and a space reuses the same
parts at the same shapes across thousands of candidates, so each distinct part is featurized once: by
one recorded forward pass (`nas.latency._trace`, about 1-2 ms), or by exporting it (about 15 ms) when
the part calls something the tracer does not map. Predicting a screened candidate then costs a
dictionary lookup per part plus a dot product (tests check that the sum equals the features of the
exported whole network).
"""

from __future__ import annotations

from nas.latency._features import GraphFeatures
from nas.latency._graph import graph_features
from nas.latency._trace import traced_features


class ArchitectureFeaturizer:
    def __init__(self, num_classes: int = 10):
        self.num_classes = num_classes
        self._cache: dict[tuple, GraphFeatures] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def features(self, arch) -> GraphFeatures:
        from nas.builder import network_parts  # torch: imported only when a network is featurized

        total = GraphFeatures.empty()
        for key, build, shape in network_parts(arch, self.num_classes):
            if key not in self._cache:
                self._cache[key] = module_features(build(), shape)
            total = total + self._cache[key]
        return total


def module_features(module, shape: tuple[int, ...]) -> GraphFeatures:
    """The graph features of one part: traced, or exported when the tracer does not map a call."""
    features = traced_features(module, shape)
    if features is None:
        from nas.onnx_io import export_onnx

        features = graph_features(export_onnx(module, shape[-1], fast=True, input_shape=shape))
    return features
