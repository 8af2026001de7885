"""The native evaluator (`offchain.inference.ort_native.compile_native`) on the kinds beyond CONV/ADD/GAP: MATMUL
with a bias (QGemm), MAXPOOL, PAD, TRANSPOSE, LUT, CONCAT, MUL. On small random graphs, onnxruntime's kernels give
the bytes of `offchain.inference.definitions.DEFINITIONS` for every tensor, with 1 and 2 threads, and
``make_evaluator(graph, "auto")`` keeps the native evaluator (no numpy fallback)."""

from __future__ import annotations

import numpy as np
import pytest

from offchain.inference.definitions import DEFINITIONS
from offchain.inference.evaluators import NativeEvaluator, evaluate, make_evaluator
from offchain.inference.fast import FAST
from offchain.inference.loader import load, lower
from offchain.inference.ort import NotCompilable
from offchain.inference.ort_native import compile_native
from tests.synth import Builder


def _set(b: Builder, out: str, shape, scale, zp):
    b.cur = (out, tuple(shape), np.float32(scale), np.asarray(zp))


def _q(b: Builder, dt, v) -> str:
    return b.c(np.asarray(v, dt))


def _pool_out(size: int, k: int, s: int, p0: int, p1: int, d: int, ceil: int) -> int:
    span = size + p0 + p1 - d * (k - 1) - 1
    return (-(-span // s) if ceil else span // s) + 1


def unsigned_model(seed: int):
    """QUANTIZE, CONV, MAXPOOL (pads, ceil_mode, dilation), LUT, PAD, MUL (per-channel constant b), CONCAT (with a
    requantizing LUT), TRANSPOSE (the flatten), MATMUL with a bias (QGemm, two rows), DEQUANTIZE; uint8 activations."""
    rng = np.random.default_rng(seed)
    H, W = int(rng.integers(7, 12)), int(rng.integers(7, 12))
    b = Builder((1, 3, H, W), opset=13)
    b.quantize(np.float32(rng.uniform(0.02, 0.08)), np.uint8(rng.integers(90, 160)))
    Co = int(rng.integers(2, 6))
    b.conv(rng.integers(-128, 128, (Co, 3, 3, 3)).astype(np.int8), np.float32(rng.uniform(0.005, 0.02)), np.int8(0),
           rng.integers(-800, 800, Co).astype(np.int32), np.float32(rng.uniform(0.05, 0.2)),
           np.uint8(rng.integers(0, 40)), pads=[1, 1, 1, 1])
    name, (N, C, H, W), s, z = b.cur
    k, st, d, ceil = int(rng.integers(2, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    pads = [int(rng.integers(0, k)) for _ in range(4)]
    if ceil and d > 1:
        ceil = 0
    OH, OW = _pool_out(H, k, st, pads[0], pads[2], d, ceil), _pool_out(W, k, st, pads[1], pads[3], d, ceil)
    pooled = b.node("MaxPool", [name], kernel_shape=[k, k], strides=[st, st], pads=pads, dilations=[d, d],
                    ceil_mode=ceil)
    _set(b, pooled, (N, C, OH, OW), s, z)
    pooled_cur = b.cur
    y = b.node("QLinearSigmoid", [pooled, b.c(s), b.c(z), b.c(np.float32(1 / 256)), _q(b, np.uint8, 0)],
               domain="com.microsoft")
    pt, pl, pb, pr = (int(v) for v in rng.integers(0, 3, 4))
    y = b.node("Pad", [y, b.c(np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64)), _q(b, np.uint8, rng.integers(0, 256))],
               mode="constant")
    PH, PW = OH + pt + pb, OW + pl + pr
    ms, mz = np.float32(rng.uniform(0.01, 0.05)), np.uint8(rng.integers(0, 256))
    y = b.node("QLinearMul", [y, b.c(np.float32(1 / 256)), _q(b, np.uint8, 0),
                              b.c(rng.integers(0, 256, (1, C, 1, 1)).astype(np.uint8)),
                              b.c(np.float32(rng.uniform(0.01, 0.05))), _q(b, np.uint8, rng.integers(0, 256)),
                              b.c(ms), b.c(mz)], domain="com.microsoft")
    # CONCAT along channels with the max-pooled tensor cropped by a second Pad to the same size (other scale)
    other = b.node("Pad", [pooled_cur[0], b.c(np.array([0, 0, pt, pl, 0, 0, pb, pr], np.int64)), b.c(z)],
                   mode="constant")
    y = b.node("QLinearConcat", [b.c(ms), b.c(mz), y, b.c(ms), b.c(mz), other, b.c(s), b.c(z)],
               domain="com.microsoft", axis=1)
    _set(b, y, (N, 2 * C, PH, PW), ms, mz)
    K = C * PH * PW                          # two rows: M = 2
    b.reshape((2, K))
    name, _, s, z = b.cur
    No = int(rng.integers(3, 9))
    y = b.node("QGemm", [name, b.c(s), b.c(z), b.c(rng.integers(-128, 128, (K, No)).astype(np.int8)),
                         b.c(np.float32(rng.uniform(0.002, 0.01))), _q(b, np.int8, 0),
                         b.c(rng.integers(-5000, 5000, No).astype(np.int32)), b.c(np.float32(rng.uniform(0.05, 0.3))),
                         _q(b, np.uint8, rng.integers(0, 256))], domain="com.microsoft")
    b.cur = (y, (2, No), np.float32(rng.uniform(0.05, 0.3)), np.asarray(np.uint8(rng.integers(0, 256))))
    return lower(b.model())


def signed_model(seed: int):
    """int8 activations: QUANTIZE, MAXPOOL (with pads), LUT, PAD, TRANSPOSE, DEQUANTIZE (no CONV/MATMUL, which
    the native path takes unsigned only)."""
    rng = np.random.default_rng(seed)
    H, W = int(rng.integers(6, 10)), int(rng.integers(6, 10))
    b = Builder((1, 4, H, W), opset=13)
    b.quantize(np.float32(rng.uniform(0.01, 0.04)), np.int8(rng.integers(-20, 20)))
    name, (N, C, H, W), s, z = b.cur
    pads = [1, 0, 1, 1]
    OH, OW = _pool_out(H, 3, 2, 1, 1, 1, 0), _pool_out(W, 3, 2, 0, 1, 1, 0)
    y = b.node("MaxPool", [name], kernel_shape=[3, 3], strides=[2, 2], pads=pads)
    y = b.node("QLinearSigmoid", [y, b.c(s), b.c(z), b.c(np.float32(1 / 256)), _q(b, np.int8, -128)],
               domain="com.microsoft")
    y = b.node("Pad", [y, b.c(np.array([0, 0, 1, 0, 0, 0, 0, 2], np.int64)), _q(b, np.int8, -5)], mode="constant")
    _set(b, y, (N, C, OH + 1, OW + 2), np.float32(1 / 256), np.int8(-128))
    b.reshape((1, C * (OH + 1) * (OW + 2)))
    return lower(b.model())


def _same_bytes(graph, seed: int, n: int = 3):
    for th in (1, 2):
        ev = NativeEvaluator(graph, threads=th)
        rng = np.random.default_rng(seed)
        for _ in range(n):
            x = (rng.standard_normal(graph.input.shape) * 3).astype(np.float32)
            ref = evaluate(graph, x, DEFINITIONS).tensors
            got = ev(x).tensors
            assert len(got) == len(ref)
            for j, (a, r) in enumerate(zip(got, ref)):
                assert a.dtype == r.dtype and a.tobytes() == r.tobytes(), (th, j, graph.ops[j].kind.name)


@pytest.mark.parametrize("seed", range(6))
def test_native_equals_definitions_unsigned(seed):
    graph = unsigned_model(seed)
    kinds = {op.kind.name for op in graph.ops}
    assert {"MAXPOOL", "LUT", "PAD", "MUL", "CONCAT", "TRANSPOSE", "MATMUL"} <= kinds, kinds
    assert any(op.kind.name == "MATMUL" and (op.table["bias"] != 0).any() for op in graph.ops)
    nodes = [n.op_type for n in compile_native(graph).graph.node]
    assert "NhwcMaxPool" in nodes and "QLinearMatMul" not in nodes
    assert type(make_evaluator(graph)).__name__ == "NativeEvaluator"
    _same_bytes(graph, seed)


@pytest.mark.parametrize("seed", range(3))
def test_native_equals_definitions_signed(seed):
    graph = signed_model(100 + seed)
    assert {"MAXPOOL", "LUT", "PAD", "TRANSPOSE"} <= {op.kind.name for op in graph.ops}
    assert graph.ops[1].p("signed") == 1
    _same_bytes(graph, seed)


def test_unknown_kind_still_raises_not_compilable():
    graph = signed_model(7)
    graph.ops[1].kind = type(graph.ops[1].kind)(8)   # AVGPOOL: no native lowering
    with pytest.raises(NotCompilable, match="AVGPOOL"):
        compile_native(graph)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_native_on_synthetic_resnet50_vgg16(name):
    """The ResNet-50 / VGG-16 shapes (generated by `benchmarks/synthetic_models.py`): native, no fallback, equal to
    the numpy fast path (itself held against the definitions) on every tensor."""
    synthetic = pytest.importorskip("benchmarks.synthetic_models")
    graph = load(synthetic.ensure(name))
    ev = make_evaluator(graph)
    assert type(ev).__name__ == "NativeEvaluator"
    x = np.random.default_rng(0).standard_normal(graph.input.shape).astype(np.float32)
    for a, r in zip(ev(x).tensors, evaluate(graph, x, FAST).tensors):
        assert a.dtype == r.dtype and a.tobytes() == r.tobytes()


_HASWELL_SCRIPT = """
import hashlib, json
import numpy as np
from offchain.inference.evaluators import NativeEvaluator
from tests.test_native_kinds import signed_model, unsigned_model
out = []
for g in (unsigned_model(0), signed_model(100)):
    x = (np.random.default_rng(0).standard_normal(g.input.shape) * 3).astype(np.float32)
    out.append([hashlib.sha256(t.tobytes()).hexdigest() for t in NativeEvaluator(g, threads=2)(x).tensors])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_new_kinds_same_bytes_on_emulated_haswell():
    """The native lowering of the new kinds gives the definitions' bytes on an emulated AVX2-only CPU (qemu-user,
    Haswell-v4) too."""
    import hashlib
    import json
    import os
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-user not installed (Debian package qemu-user; .ci/run installs it)")
    here = []
    for g in (unsigned_model(0), signed_model(100)):
        x = (np.random.default_rng(0).standard_normal(g.input.shape) * 3).astype(np.float32)
        here.append([hashlib.sha256(t.tobytes()).hexdigest() for t in evaluate(g, x, DEFINITIONS).tensors])
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(ROOT))
    r = subprocess.run([qemu, "-cpu", "Haswell-v4", sys.executable, "-c", _HASWELL_SCRIPT], env=env,
                       capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == here
