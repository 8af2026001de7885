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
from offchain.inference.evaluators import NativeEvaluator
from offchain.inference.ort_native import compile_native
from tests.test_native_kinds import haswell_cases
out = []
for g, xs in haswell_cases():
    ev = NativeEvaluator(g, threads=2)
    nodes = sorted({n.op_type for n in compile_native(g).graph.node})
    out.append([nodes, [[hashlib.sha256(t.tobytes()).hexdigest() for t in ev(x).tensors] for x in xs]])
print(json.dumps(out))
"""


def haswell_cases():
    """(graph, inputs) run natively and on the emulated Haswell: the new kinds (unsigned, signed), and the QUANTIZE
    / GAP fast paths (GAP on NHWC and, batch 2, NCHW input; inputs at QUANTIZE's rounding ties)."""
    from tests.synth import make_model

    graphs = [unsigned_model(0), signed_model(100), lower(make_model(seed=21)),
              lower(make_model(seed=22, gap_reads_conv=True), batch=2)]
    out = []
    for i, g in enumerate(graphs):
        rng = np.random.default_rng(i)
        xs = [(rng.standard_normal(g.input.shape) * 3).astype(np.float32)]
        out.append((g, xs + (_tie_inputs(g, rng, 2) if i >= 2 else [])))
    return out


@pytest.mark.slow
def test_new_kinds_same_bytes_on_emulated_haswell():
    """The native lowering of the new kinds, QUANTIZE as QuantizeLinear and GAP as MatMulInteger give the
    definitions' bytes on an emulated AVX2-only CPU (qemu-user, Haswell-v4) too, with the fast paths taken there
    (their probes hold on that CPU)."""
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
    here = [[[hashlib.sha256(t.tobytes()).hexdigest() for t in evaluate(g, x, DEFINITIONS).tensors] for x in xs]
            for g, xs in haswell_cases()]
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(ROOT))
    r = subprocess.run([qemu, "-cpu", "Haswell-v4", sys.executable, "-c", _HASWELL_SCRIPT], env=env,
                       capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert [digests for _, digests in out] == here
    for nodes, _ in out[2:]:
        assert "QuantizeLinear" in nodes and "MatMulInteger" in nodes


# ------------------------------------------------------------------- QUANTIZE / GAP fast paths, output memory

_FAST_PATH_MODELS = [dict(seed=21), dict(seed=22, gap_reads_conv=True), dict(seed=23, x_scale=1 / 64),
                     dict(seed=24, sat_scale=True, gap_reads_conv=True)]


def _tie_inputs(graph, rng, n: int):
    """Inputs on and next to QUANTIZE's rounding ties ((k + 1/2) * scale, +-1 ulp), and plain normal ones."""
    from offchain.inference.graph import f32_from_bits

    s = float(f32_from_bits(graph.ops[0].p("scale_bits")))
    shape = graph.input.shape
    out = []
    for i in range(n):
        x = ((rng.integers(-300, 300, shape) + 0.5) * s).astype(np.float32)
        x = np.where(rng.random(shape) < 0.3, np.nextafter(x, np.float32(np.inf)), x)
        x = np.where(rng.random(shape) < 0.3, np.nextafter(x, np.float32(-np.inf)), x)
        out.append(x if i % 2 == 0 else (rng.standard_normal(shape) * 3).astype(np.float32))
    return out


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("cfg", _FAST_PATH_MODELS, ids=[str(c) for c in _FAST_PATH_MODELS])
def test_quantize_gap_dequantize_fast_paths_equal_definitions_at_1_and_2_threads(cfg, batch, monkeypatch):
    """QUANTIZE as onnxruntime's QuantizeLinear (+ uint8 transpose), GAP as one MatMulInteger and a table Gather
    (NHWC and NCHW inputs, non-zero zero points, batch 1 and 2), DEQUANTIZE as a table Gather: the definitions' bytes
    on inputs at rounding ties, 1 and 2 threads; and the other paths (QUANTIZE's float32 Div/Round chain, GAP's
    float64 chain, an NCHW GAP summing its own bytes rather than its CONV's NHWC ones) give the same bytes."""
    from offchain.inference import ort_native
    from offchain.inference.evaluators import _session
    from tests.synth import make_model

    graph = lower(make_model(**cfg), batch=batch)
    nodes = [n.op_type for n in compile_native(graph).graph.node]
    assert "QuantizeLinear" in nodes and "MatMulInteger" in nodes and "ReduceSum" not in nodes
    assert [n for n in nodes if n in ("Div", "Round", "Floor", "Mul")] == []
    gap = next(op for op in graph.ops if op.kind.name == "GAP")
    assert gap.p("x_nchw") == int(bool(cfg.get("gap_reads_conv"))) and gap.p("x_zp") != 0
    monkeypatch.setattr(ort_native, "GAP_FROM_NHWC", False)    # an NCHW GAP sums its own [N*C, H*W] bytes
    other = _session(compile_native(graph), 0)
    monkeypatch.setattr(ort_native, "GAP_TABLE", 1)
    slow = compile_native(graph, ort_quantize=False)
    assert {"Div", "Round", "ReduceSum", "Floor"} <= {n.op_type for n in slow.graph.node}
    fallback = _session(slow, 0)
    for th in (1, 2):
        ev = NativeEvaluator(graph, threads=th)
        for x in _tie_inputs(graph, np.random.default_rng(cfg["seed"]), 4):
            ref = evaluate(graph, x, DEFINITIONS).tensors
            got = ev(x).tensors
            for j, (a, r) in enumerate(zip(got, ref)):
                assert a.dtype == r.dtype and a.tobytes() == r.tobytes(), (th, j, graph.ops[max(j - 1, 0)].kind.name)
            for sess in (fallback, other):
                assert [t.tobytes() for t in sess.run(None, {"x": x})] == [t.tobytes() for t in ref[1:]]


def test_quantize_probe_candidates_tell_division_from_other_roundings():
    """`quantize_linear_exact` is not vacuous: its inputs separate sat(zp + rne(fl32(x / s))) from a product with
    the float32 reciprocal and from rounding half away from zero, for scales of every kind; and onnxruntime's
    QuantizeLinear passes it here for the zoo MobileNetV2's QUANTIZE and unsigned/signed zero points."""
    from offchain.inference.ort_probe import _quantize_candidates, quantize_linear_exact

    for s in (0.018658447, 1e-3, 3.3e-5, 0.1, 0.3, 7.0):
        s = np.float32(s)
        v = _quantize_candidates(s, 114, 0)
        with np.errstate(all="ignore"):
            exact = np.clip(np.rint(v / s) + 114, 0, 255)
            recip = np.clip(np.rint(v * (np.float32(1) / s)) + 114, 0, 255)
            away = np.clip(np.trunc(v / s + np.copysign(np.float32(0.5), v)) + 114, 0, 255)
        assert (exact != recip).any() and (exact != away).any(), s
    for s, zp, sg in ((0.018658447, 114, 0), (1 / 64, 0, 0), (0.0421, -20, 1), (0.5, 127, 1)):
        assert quantize_linear_exact(int(np.array(s, np.float32).view(np.uint32)), zp, sg), (s, zp, sg)
    assert not quantize_linear_exact(int(np.array(np.inf, np.float32).view(np.uint32)), 0, 0)


def test_native_outputs_reused_only_once_released():
    """A kept evaluation (or any view of one of its tensors) is never overwritten by later calls; once every
    reference is dropped, the next call writes into the same memory (no allocation); concurrent calls from two
    threads each get their own correct tensors."""
    import threading

    from tests.synth import make_model

    graph = lower(make_model(seed=31))
    ev = NativeEvaluator(graph)
    rng = np.random.default_rng(31)
    xs = [(rng.standard_normal(graph.input.shape) * 3).astype(np.float32) for _ in range(6)]
    refs = [[t.tobytes() for t in evaluate(graph, x, DEFINITIONS).tensors] for x in xs]
    kept = ev(xs[0])
    view = ev(xs[1]).tensors[3][..., :1]          # only a view of one tensor survives
    for x in xs[2:]:
        ev(x)
    assert [t.tobytes() for t in kept.tensors] == refs[0]
    assert view.tobytes() == np.frombuffer(refs[1][3], view.dtype).reshape(kept.tensors[3].shape)[..., :1].tobytes()
    addr = ev(xs[2]).tensors[1].ctypes.data      # dropped at once
    assert ev(xs[3]).tensors[1].ctypes.data == addr
    assert all(t.ctypes.data % 64 == 0 for t in ev(xs[4]).tensors[1:])
    del kept, view
    out = {}

    def work(i):
        for _ in range(20):
            got = [t.tobytes() for t in ev(xs[i]).tensors]
            out.setdefault(i, []).append(got == refs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in (4, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {4: [True] * 20, 5: [True] * 20}


@pytest.mark.slow
def test_native_equals_definitions_on_every_bundled_model():
    """Every model of the data bundle (QOperator, uint8 activations) the native compiler takes gives the
    definitions' bytes on two of its images, with 1 and 2 threads; the others are refused for their SOFTMAX only
    (not lowered natively: `make_evaluator` falls back)."""
    from tests.bundle import MODELS, available, int8_model
    from offchain.inference.quantize import batches, input_files, model_input

    if not available():
        pytest.skip("the data bundle (../shared/data) is not present")
    native = 0
    for m in MODELS:
        path = int8_model(m, "qoperator")
        graph = load(path)
        try:
            evs = [NativeEvaluator(graph, threads=th) for th in (1, 2)]
        except NotCompilable as e:
            assert "SOFTMAX" in str(e), (m.name, str(e))
            continue
        native += 1
        _, dims = model_input(path)
        for x, _ in batches(input_files(m.folder)[:2], dims, m.preprocess):
            x = x.reshape(graph.input.shape)
            ref = [t.tobytes() for t in evaluate(graph, x, DEFINITIONS).tensors]
            for ev in evs:
                assert [t.tobytes() for t in ev(x).tensors] == ref, m.name
    assert native >= 7


_BUNDLE_SCRIPT = """
import hashlib, json
from offchain.inference.evaluators import NativeEvaluator
from tests.test_native_kinds import bundled_native_cases
print(json.dumps({name: [hashlib.sha256(t.tobytes()).hexdigest() for t in NativeEvaluator(g, threads=2)(x).tensors]
                  for name, g, x in bundled_native_cases()}))
"""


def bundled_native_cases():
    """(name, graph, first image) of every data-bundle model the native compiler takes (QOperator, uint8)."""
    from tests.bundle import MODELS, int8_model
    from offchain.inference.quantize import batches, input_files, model_input

    out = []
    for m in MODELS:
        path = int8_model(m, "qoperator")
        graph = load(path)
        try:
            compile_native(graph)
        except NotCompilable:
            continue
        _, dims = model_input(path)
        x, _ = next(iter(batches(input_files(m.folder)[:1], dims, m.preprocess)))
        out.append((m.name, graph, x.reshape(graph.input.shape)))
    return out


@pytest.mark.slow
def test_native_bundled_models_same_bytes_on_emulated_haswell():
    """Every bundled model the native compiler takes gives the definitions' bytes on an emulated AVX2-only CPU
    (qemu-user, Haswell-v4, 2 threads), on its first image."""
    import hashlib
    import json
    import os
    import shutil
    import subprocess
    import sys

    from tests.bundle import available
    from tests.conftest import ROOT

    qemu = shutil.which("qemu-x86_64")
    if qemu is None or not available():
        pytest.skip("qemu-user or the data bundle not present")
    here = {name: [hashlib.sha256(t.tobytes()).hexdigest() for t in evaluate(g, x, DEFINITIONS).tensors]
            for name, g, x in bundled_native_cases()}
    assert len(here) >= 7
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(ROOT))
    r = subprocess.run([qemu, "-cpu", "Haswell-v4", sys.executable, "-c", _BUNDLE_SCRIPT], env=env,
                       capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == here
