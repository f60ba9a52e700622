"""A device task measures a chunk of graphs; one graph the runtime refuses fails alone."""

from __future__ import annotations

from nas.search._device_nodes import measure_chunk


def test_a_refused_graph_fails_alone_and_the_others_are_measured():
    def measure(graph, settings):
        if graph == b"bad":
            raise RuntimeError("ONNX Runtime refused it\nsecond line")
        return {"median_ms": len(graph)}

    out = measure_chunk(measure, [b"a", b"bad", b"ccc"], settings=None)
    assert out == [
        ({"median_ms": 1}, None),
        (None, "device: RuntimeError: ONNX Runtime refused it"),
        ({"median_ms": 3}, None),
    ]
