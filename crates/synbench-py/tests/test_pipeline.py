"""`evaluate`'s feeding pipeline through the same code a GPU runs, on CPU
tensors: a fake device layer stands in for CUDA's streams, events and pinned
buffers and records the order of operations."""

import numpy as np
import pytest

import synbench

torch = pytest.importorskip("torch")

SMALL = dict(shape=(3, 8, 8), scales=(1.0, 2.0, 3.0), n_train=64, n_test=64, epsilons=(0.0, 0.2), seed=5)


def small_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten())


class FakeEvent:
    def __init__(self, log, slot_id):
        self.log, self.slot_id = log, slot_id

    def synchronize(self):
        self.log.append(("ready", self.slot_id))


class FakeOps:
    """CUDA's layer on CPU tensors: counts pinned allocations, logs copies."""

    def __init__(self):
        self.log, self.pinned_allocations, self.copies = [], 0, 0

    def pinned(self, shape):
        self.pinned_allocations += 1
        return torch.empty(shape, dtype=torch.float32)

    def to_device(self, host):
        self.copies += 1
        self.log.append(("to_device", self.copies))
        return host.clone()

    def to_host(self, features, out):
        out.copy_(features)
        return FakeEvent(self.log, self.copies)


def test_the_double_buffer_scores_exactly_as_the_serial_loop(monkeypatch):
    serial = synbench.evaluate(small_model(), progress=False, batch_size=16, **SMALL)
    ops = FakeOps()
    monkeypatch.setitem(synbench._FEEDER_OPS, "cpu", ops)
    piped = synbench.evaluate(small_model(), progress=False, batch_size=16, pipeline_depth=2, **SMALL)
    np.testing.assert_array_equal(piped.scores, serial.scores)
    np.testing.assert_array_equal(piped.stderr, serial.stderr)
    np.testing.assert_array_equal(piped.accuracy, serial.accuracy)
    batches = 3 * (64 + 64) // 16
    assert ops.copies == batches
    # Buffers are reused: one input and one output buffer per slot (batch shapes are equal).
    assert ops.pinned_allocations == 4
    # Batch i + 1 is sent before batch i's features are awaited (and folded).
    assert ops.log[:4] == [("to_device", 1), ("to_device", 2), ("ready", 1), ("to_device", 3)]
    assert [e for e in ops.log if e[0] == "ready"] == [("ready", i) for i in range(1, batches + 1)]


def test_tf32_channels_last_and_compile_are_applied_and_undone(monkeypatch):
    seen = {}
    base = small_model()

    def model(inputs):
        seen["tf32"] = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
        seen["channels_last"] = inputs.is_contiguous(memory_format=torch.channels_last)
        return base(inputs)

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda m: compiled.append(m) or m)
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    result = synbench.evaluate(
        model, progress=False, batch_size=16, dtype="tf32", channels_last=True, compile=True, **SMALL
    )
    assert seen == {"tf32": ("tf32", "tf32"), "channels_last": True}
    assert compiled == [model]
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == before
    plain = synbench.evaluate(small_model(), progress=False, batch_size=16, **SMALL)
    np.testing.assert_allclose(result.scores, plain.scores, rtol=1e-6)


def test_bad_pipeline_options_are_named():
    with pytest.raises(synbench.SynbenchError, match=r"dtype='fp8'.*\"tf32\""):
        synbench.evaluate(small_model(), progress=False, dtype="fp8", **SMALL)
    with pytest.raises(synbench.SynbenchError, match="pipeline_depth=0"):
        synbench.evaluate(small_model(), progress=False, pipeline_depth=0, **SMALL)
