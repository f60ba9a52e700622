"""Graph features of an `Architecture` without exporting it: composed from cached per-part features.

Features are additive over a network's parts (stem, every block, head), and a space reuses the same
parts at the same shapes across thousands of candidates, so each distinct part is featurized once: by
one recorded forward pass (`nas.latency._trace`, about 1-2 ms), or by exporting it (about 15 ms) when
the part calls something the tracer does not map. Predicting a screened candidate then costs a
dictionary lookup per part plus a dot product (tests check that the sum equals the features of the
exported whole network).
"""

from __future__ import annotations

from typing import Callable

from nas.latency._graph import GraphFeatures, graph_features
from nas.latency._trace import traced_features


def _out_size(size: int, stride: int) -> int:
    return -(-size // stride)  # every part pads k // 2 with odd kernels: ceil(size / stride)


class ArchitectureFeaturizer:
    def __init__(self, num_classes: int = 10):
        self.num_classes = num_classes
        self._cache: dict[tuple, GraphFeatures] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def features(self, arch) -> GraphFeatures:
        total = GraphFeatures.empty()
        for key, build, shape in self._parts(arch):
            if key not in self._cache:
                module = build()
                features = traced_features(module, shape)
                if features is None:
                    from nas.onnx_io import export_onnx

                    features = graph_features(export_onnx(module, arch.resolution, fast=True, input_shape=shape))
                self._cache[key] = features
            total = total + self._cache[key]
        return total

    def _parts(self, arch) -> list[tuple[tuple, Callable, tuple[int, ...]]]:
        from torch import nn

        from nas.blocks import build_block, conv_bn

        size, channels = arch.resolution, arch.stem_channels
        parts = [(("stem", channels, arch.stem_kernel, arch.stem_stride, arch.stem_activation, size),
                  lambda: conv_bn(3, channels, arch.stem_kernel, arch.stem_stride, act=arch.stem_activation),
                  (1, 3, size, size))]
        size = _out_size(size, arch.stem_stride)
        c_in = channels
        for stage in arch.stages:
            for i, block in enumerate(stage.blocks):
                stride = stage.stride if i == 0 else 1
                parts.append((("block", block, c_in, stage.width, stride, size),
                              lambda b=block, c=c_in, w=stage.width, s=stride: build_block(b, c, w, s),
                              (1, c_in, size, size)))
                size, c_in = _out_size(size, stride), stage.width

        def head(c=c_in):
            conv = conv_bn(c, arch.head_width, act=arch.head_activation) if arch.head_width else nn.Identity()
            return nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                 nn.Linear(arch.head_width or c, self.num_classes))

        parts.append((("head", arch.head_width, arch.head_activation, c_in, size, self.num_classes), head,
                      (1, c_in, size, size)))
        return parts
