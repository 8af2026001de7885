"""The native evaluator (`offchain.inference.ort_native.compile_native`) on the kinds beyond CONV/ADD/GAP: MATMUL
with a bias (QGemm), MAXPOOL, PAD, TRANSPOSE, LUT, CONCAT, MUL, and AVGPOOL and SOFTMAX in integer ONNX operators
(`offchain.inference.ort_native_ops`). On small random and adversarial graphs and inputs, onnxruntime's kernels give
the bytes of `offchain.inference.definitions.DEFINITIONS` for every tensor, with 1 and 2 threads, and
``make_evaluator(graph, "auto")`` keeps the native evaluator (no numpy fallback); the slow tests add every bundled
model and an emulated Haswell CPU."""

from __future__ import annotations

import numpy as np
import onnx
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
    """(graph, inputs) run natively and on the emulated Haswell: the new kinds (unsigned, signed), the QUANTIZE
    / GAP fast paths (GAP on NHWC and, batch 2, NCHW input; inputs at QUANTIZE's rounding ties), then AVGPOOL
    (`_AVG_CASES` 0, 3, 4, 5, 9: ties, ceil_mode, int8 / uint8 in and out, 256 taps) and SOFTMAX (`_SOFTMAX_CASES`
    0, 2, 3, 6: 1000 and 257 columns through the per-row table, 256 per element, a saturating scale; a random
    committed table over all of uint32; exact ties) on `_patterns` / `_softmax_patterns`."""
    from tests.synth import make_model

    graphs = [unsigned_model(0), signed_model(100), lower(make_model(seed=21)),
              lower(make_model(seed=22, gap_reads_conv=True), batch=2)]
    out = []
    for i, g in enumerate(graphs):
        rng = np.random.default_rng(i)
        xs = [(rng.standard_normal(g.input.shape) * 3).astype(np.float32)]
        out.append((g, xs + (_tie_inputs(g, rng, 2) if i >= 2 else [])))
    for i in (0, 3, 4, 5, 9):
        g = avgpool_model(*_AVG_CASES[i])
        out.append((g, _patterns(g, np.random.default_rng(i))))
    for i in (0, 2, 3, 6):
        g = softmax_model(*_SOFTMAX_CASES[i])
        out.append((g, _softmax_patterns(g, np.random.default_rng(i))))
    rng = np.random.default_rng(77)
    g = softmax_model((1, 2), 1000, (0.05, np.uint8(128)), (0.0029, np.int8(-100)))
    g.ops[1].const = rng.integers(0, 1 << 32, 256, dtype=np.uint64).astype(np.uint32)
    out.append((g, _softmax_patterns(g, rng)))
    g = softmax_model((1, 2), 6, (0.05, np.uint8(128)), (0.25, np.uint8(0)))
    g.ops[1].const = np.zeros(256, np.uint32)
    g.ops[1].const[253:] = (1, 1, 3)
    out.append((g, _softmax_patterns(g, rng)))
    return out


@pytest.mark.slow
def test_new_kinds_same_bytes_on_emulated_haswell():
    """The native lowering of the new kinds, QUANTIZE as QuantizeLinear, GAP as MatMulInteger, AVGPOOL and SOFTMAX
    in integer ONNX ops give the definitions' bytes on an emulated AVX2-only CPU (qemu-user, Haswell-v4) too, with
    the fast paths taken there (their probes hold on that CPU)."""
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
    for nodes, _ in out[2:4]:
        assert "QuantizeLinear" in nodes and "MatMulInteger" in nodes
    assert sum("CumSum" in nodes for nodes, _ in out) == 5                           # the AVGPOOL cases
    softmax = [nodes for nodes, _ in out if "ReduceMax" in nodes]
    assert len(softmax) == 6 and sum("GatherElements" in nodes for nodes in softmax) == 3   # 3 per-row tables


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
    """Every model of the data bundle (QOperator, uint8 activations) is compiled natively (``auto`` selects the
    native evaluator: MobileNetV1 and SqueezeNet with their SOFTMAX too) and gives the definitions' bytes on two of
    its images, with 1 and 2 threads."""
    from tests.bundle import MODELS, available, int8_model
    from offchain.inference.quantize import batches, input_files, model_input

    if not available():
        pytest.skip("the data bundle (../shared/data) is not present")
    native = 0
    for m in MODELS:
        path = int8_model(m, "qoperator")
        graph = load(path)
        assert type(make_evaluator(graph)).__name__ == "NativeEvaluator", m.name
        evs = [NativeEvaluator(graph, threads=th) for th in (1, 2)]
        native += 1
        _, dims = model_input(path)
        for x, _ in batches(input_files(m.folder)[:2], dims, m.preprocess):
            x = x.reshape(graph.input.shape)
            ref = [t.tobytes() for t in evaluate(graph, x, DEFINITIONS).tensors]
            for ev in evs:
                assert [t.tobytes() for t in ev(x).tensors] == ref, m.name
    assert native == len(MODELS) == 9


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
    """Every bundled model (all nine: the native compiler takes them all, MobileNetV1 and SqueezeNet with their
    SOFTMAX) gives the definitions' bytes on an emulated AVX2-only CPU (qemu-user, Haswell-v4, 2 threads), on its
    first image."""
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
    assert len(here) == 9 and {"mobilenetv1-0.25", "squeezenet1.1"} <= set(here)
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(ROOT))
    r = subprocess.run([qemu, "-cpu", "Haswell-v4", sys.executable, "-c", _BUNDLE_SCRIPT], env=env,
                       capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == here


# ------------------------------------------------------------------- AVGPOOL and SOFTMAX (integer ONNX lowerings)

def avgpool_model(H, W, C, k, s, pads, ceil=0, cip=0, x_q=(0.05, np.uint8(120)), y_q=(0.05, np.uint8(120)), N=1):
    """QUANTIZE (x_q: scale, zero point whose dtype is x's) -> QLinearAveragePool (k x k window, stride s, ONNX
    pads [top, left, bottom, right], ceil_mode, count_include_pad) -> DEQUANTIZE, lowered."""
    b = Builder((N, C, H, W), opset=13)
    b.quantize(np.float32(x_q[0]), x_q[1])
    name, _, xs, xz = b.cur
    k = (k, k) if np.isscalar(k) else tuple(k)
    OH = _pool_out(H, k[0], s, pads[0], pads[2], 1, ceil)
    OW = _pool_out(W, k[1], s, pads[1], pads[3], 1, ceil)
    y = b.node("QLinearAveragePool", [name, b.c(xs), b.c(xz), b.c(np.float32(y_q[0])), b.c(y_q[1])],
               domain="com.microsoft", kernel_shape=list(k), strides=[s, s], pads=list(pads), ceil_mode=ceil,
               count_include_pad=cip)
    _set(b, y, (N, C, OH, OW), np.float32(y_q[0]), y_q[1])
    return lower(b.model())


def softmax_model(rows_hw, cols, x_q=(0.05, np.uint8(128)), y_q=(1 / 256, np.uint8(0))):
    """QUANTIZE of a [1, cols, H, W] input -> QLinearSoftmax along the channels (the last axis of the committed NHWC
    layout: H*W rows of ``cols``) -> DEQUANTIZE, lowered."""
    H, W = rows_hw
    b = Builder((1, cols, H, W), opset=13)
    b.quantize(np.float32(x_q[0]), x_q[1])
    name, shape, xs, xz = b.cur
    y = b.node("QLinearSoftmax", [name, b.c(xs), b.c(xz), b.c(np.float32(y_q[0])), b.c(y_q[1])],
               domain="com.microsoft", axis=1, opset=13)
    _set(b, y, shape, np.float32(y_q[0]), y_q[1])
    return lower(b.model())


def _from_q(graph, q: np.ndarray) -> np.ndarray:
    """The float32 input whose QUANTIZE gives the integers ``q`` (NCHW, the model input's shape)."""
    from offchain.inference.graph import f32_from_bits

    op = graph.ops[0]
    return ((q.astype(np.float64) - op.p("zp")) * float(f32_from_bits(op.p("scale_bits")))).astype(np.float32)


def _patterns(graph, rng, n_random: int = 2) -> list[np.ndarray]:
    """Inputs (float32) whose quantized values are: random over the whole dtype, all the lowest, all the highest,
    all equal to the zero point, a checkerboard of lowest/highest, and random values near the zero point."""
    shape = graph.input.shape
    lo, hi = (-128, 127) if graph.ops[0].p("y_signed") else (0, 255)
    zp = graph.ops[0].p("zp")
    qs = [rng.integers(lo, hi + 1, shape) for _ in range(n_random)]
    qs += [np.full(shape, lo), np.full(shape, hi), np.full(shape, zp),
           np.where(np.indices(shape).sum(axis=0) % 2 == 0, lo, hi),
           np.clip(zp + rng.integers(-3, 4, shape), lo, hi)]
    return [_from_q(graph, q) for q in qs]


def _softmax_patterns(graph, rng) -> list[np.ndarray]:
    """`_patterns` plus rows built against the softmax: the max at the first / last column with every other value
    the lowest, two maxima at the edges, every value equal but one one below."""
    xs = _patterns(graph, rng)
    N, C, H, W = graph.input.shape
    lo, hi = (-128, 127) if graph.ops[0].p("y_signed") else (0, 255)
    for cols in ([0], [C - 1], sorted({0, C - 1})):
        q = np.full((N, C, H, W), lo)
        q[:, cols] = hi
        xs.append(_from_q(graph, q))
    q = np.full((N, C, H, W), hi - 1)
    q[:, C // 2] = hi
    xs.append(_from_q(graph, q))
    return xs


def _same_bytes_on(graph, xs, what: str):
    """Every tensor of the native evaluator (1 and 2 threads) == DEFINITIONS on the inputs ``xs``; ``auto`` native."""
    assert type(make_evaluator(graph)).__name__ == "NativeEvaluator", what
    refs = [[t.tobytes() for t in evaluate(graph, x, DEFINITIONS).tensors] for x in xs]
    for th in (1, 2):
        ev = NativeEvaluator(graph, threads=th)
        for i, (x, ref) in enumerate(zip(xs, refs)):
            got = ev(x).tensors
            for j, (a, r) in enumerate(zip(got, ref)):
                assert a.tobytes() == r, (what, th, i, j)


_AVG_CASES = [
    # (H, W, C, k, stride, pads, ceil, count_include_pad, x (scale, zp), y (scale, zp))
    (7, 6, 3, 2, 2, [0, 0, 0, 0], 0, 0, (0.05, np.uint8(120)), (0.05, np.uint8(120))),      # ties (same scales)
    (7, 7, 4, 3, 1, [1, 1, 1, 1], 0, 0, (0.05, np.uint8(0)), (0.05, np.uint8(255))),
    (7, 7, 4, 3, 1, [1, 1, 1, 1], 0, 1, (0.05, np.uint8(255)), (0.025, np.uint8(0))),
    (9, 8, 2, 3, 2, [1, 0, 1, 1], 1, 0, (0.0421, np.int8(-128)), (0.013, np.int8(127))),    # ceil_mode, int8
    (9, 8, 2, 3, 2, [1, 1, 1, 1], 0, 1, (0.03, np.int8(5)), (0.03, np.uint8(7))),          # int8 in, uint8 out
    (8, 8, 3, (2, 4), 3, [1, 2, 0, 1], 0, 0, (0.02, np.uint8(30)), (0.07, np.int8(-3))),    # uint8 in, int8 out
    (6, 5, 2, 5, 1, [2, 2, 2, 2], 0, 0, (0.1, np.uint8(200)), (0.1 * 2 ** -20, np.uint8(100))),  # saturates
    (6, 5, 2, 5, 1, [2, 2, 2, 2], 0, 1, (0.1 * 2 ** -30, np.uint8(9)), (0.1, np.int8(0))),  # quotients < 1/2
    (5, 5, 3, 5, 5, [0, 0, 0, 0], 0, 0, (1.0, np.int8(0)), (3.0, np.int8(0))),            # one window: a GAP
    (16, 16, 1, 16, 1, [0, 0, 0, 0], 0, 0, (0.05, np.uint8(128)), (0.0125, np.uint8(128))),  # 256 taps (gas limit)
    (16, 16, 1, 15, 1, [7, 7, 7, 7], 0, 1, (0.05, np.int8(-7)), (0.05, np.int8(3))),       # 225 taps, big pads
]


@pytest.mark.parametrize("case", range(len(_AVG_CASES)))
def test_native_avgpool_equals_definitions(case):
    """AVGPOOL (kernel sizes, strides, pads, ceil_mode, count_include_pad, int8 / uint8 in and out, extreme zero
    points, scales that saturate or round everything to 0, the largest windows the loader accepts) lowered to
    integer ONNX ops: the definition's bytes at 1 and 2 threads, on random and adversarial inputs (ties: equal
    scales, all lowest / highest, checkerboards), and no float operator nor int64 Max/Min/Clip in its lowering."""
    H, W, C, k, s, pads, ceil, cip, xq, yq = _AVG_CASES[case]
    graph = avgpool_model(H, W, C, k, s, pads, ceil, cip, xq, yq)
    assert [op.kind.name for op in graph.ops] == ["QUANTIZE", "AVGPOOL", "DEQUANTIZE"]
    assert graph.ops[1].p("count_pad") == cip
    model = compile_native(graph)
    nodes = {n.op_type for n in model.graph.node if any(o.startswith(("a", "y1")) for o in n.output)}
    assert {"CumSum", "Slice", "Mod", "Div"} <= nodes and not nodes & {"Max", "Min", "Clip", "Floor", "Round"}
    _same_bytes_on(graph, _patterns(graph, np.random.default_rng(case)), f"avgpool case {case}")


@pytest.mark.parametrize("case", [1, 3, 9])
def test_native_avgpool_int64_prefix_sums(case, monkeypatch):
    """The int64 prefix sums (taken when 255 * padded H * padded W reaches 2^31: inputs of 8.4M pixels and more,
    forced here on small ones) give the same bytes."""
    from offchain.inference import ort_native_ops

    monkeypatch.setattr(ort_native_ops, "PREFIX_INT32", 1)
    graph = avgpool_model(*_AVG_CASES[case])
    model = compile_native(graph)
    assert any(n.op_type == "CumSum" and n.output[0].startswith("acs") for n in model.graph.node)
    cast = next(n for n in model.graph.node if n.output[0].startswith("ac_"))
    assert cast.attribute[0].i == onnx.TensorProto.INT64
    _same_bytes_on(graph, _patterns(graph, np.random.default_rng(case)), f"avgpool int64 case {case}")


def test_native_avgpool_batch_and_strided_edges():
    """Batch 2, stride 3 with windows that end before the input does (the unused rows), count_include_pad."""
    graph = avgpool_model(11, 10, 3, 3, 3, [1, 1, 0, 0], 0, 1, (0.02, np.uint8(17)), (0.05, np.uint8(240)), N=2)
    assert graph.ops[1].p("N") == 2
    _same_bytes_on(graph, _patterns(graph, np.random.default_rng(5)), "avgpool batch 2")


_SOFTMAX_CASES = [
    # ((H, W) rows, cols, x (scale, zp), y (scale, zp))
    ((1, 1), 1000, (0.1, np.uint8(128)), (1 / 256, np.uint8(0))),       # the bundled models' shape (per-d table)
    ((2, 1), 1185, (0.02, np.uint8(0)), (1 / 256, np.uint8(0))),         # the longest 2 rows the loader accepts
    ((2, 3), 257, (0.05, np.int8(0)), (1 / 256, np.int8(-128))),        # int8, per-d table
    ((3, 2), 256, (0.05, np.uint8(255)), (1 / 255, np.uint8(3))),       # per element, other y mantissa
    ((2, 2), 10, (0.3, np.int8(-128)), (0.00371, np.int8(127))),        # zp at the top: everything saturates
    ((2, 2), 10, (0.3, np.int8(127)), (0.00371, np.int8(126))),         # one step below the top
    ((1, 3), 7, (0.002, np.uint8(7)), (2 ** -12, np.uint8(5))),         # fine scale: most values saturate
    ((1, 3), 7, (10.0, np.uint8(100)), (0.7, np.uint8(1))),             # E all 0 but E[255]; q in {0, 1}
    ((1, 2), 5, (0.05, np.uint8(128)), (1.5, np.uint8(0))),             # y_scale 1.5: one threshold
    ((1, 2), 5, (0.05, np.uint8(128)), (2.0, np.uint8(9))),             # y_scale 2: y_zp everywhere
    ((1, 1), 1, (0.05, np.uint8(128)), (1 / 256, np.uint8(0))),         # one column: 1.0, saturated
    ((1, 1), 2, (0.05, np.uint8(128)), (1 / 512, np.uint8(0))),         # ties (two equal values: 1/2 * 512 ...)
]


@pytest.mark.parametrize("case", range(len(_SOFTMAX_CASES)))
def test_native_softmax_equals_definitions(case):
    """SOFTMAX lowered to integer ONNX ops (Gather, ReduceSum, thresholds in int64): the definition's bytes at 1 and
    2 threads, for rows shorter and longer than 256 columns, int8 / uint8, extreme zero points and scales, on
    random and adversarial inputs (all equal, the max at the edges, all lowest / highest)."""
    hw, cols, xq, yq = _SOFTMAX_CASES[case]
    graph = softmax_model(hw, cols, xq, yq)
    assert [op.kind.name for op in graph.ops] == ["QUANTIZE", "SOFTMAX", "DEQUANTIZE"]
    assert (graph.ops[1].p("rows"), graph.ops[1].p("cols")) == (hw[0] * hw[1], cols)
    nodes = {n.op_type for n in compile_native(graph).graph.node}
    assert not nodes & {"Max", "Min", "Clip", "Floor", "Round", "Softmax", "QLinearSoftmax"}
    _same_bytes_on(graph, _softmax_patterns(graph, np.random.default_rng(case)), f"softmax case {case}")


@pytest.mark.parametrize("table", ["zeros", "random", "one-hot", "top"])
def test_native_softmax_any_committed_table(table):
    """The lowering holds for any committed table E (256 uint32), not only `softmax_table`'s: all zeros (S = 0:
    y_zp), random over the whole uint32 range (sums near 2^42, not monotone), one non-zero entry, and the largest
    entries only."""
    rng = np.random.default_rng(len(table))
    for cols, yq in ((1000, (1 / 256, np.uint8(0))), (37, (0.0029, np.int8(-100)))):
        graph = softmax_model((1, 2), cols, (0.05, np.uint8(128)), yq)
        E = {"zeros": np.zeros(256, np.uint32),
             "random": rng.integers(0, 1 << 32, 256, dtype=np.uint64).astype(np.uint32),
             "one-hot": np.eye(256, dtype=np.uint32)[int(rng.integers(256))] * np.uint32(0xFFFFFFFF),
             "top": np.where(np.arange(256) > 250, np.uint32(0xFFFFFFFF), np.uint32(0))}[table]
        graph.ops[1].const = E
        xs = _softmax_patterns(graph, rng)
        _same_bytes_on(graph, xs, f"softmax table {table}, {cols} columns")


def test_out_of_scope_still_raises_not_compilable():
    """What the native compiler cannot lower exactly raises NotCompilable and ``auto`` falls back: a SOFTMAX whose
    thresholds would leave int64 (a forged 2^28-column row of the largest E, beyond MAX_DIM = 2^24) and an AVGPOOL
    window of more than 511 taps (forged: the loader's gas bound keeps windows below 360 taps)."""
    graph = softmax_model((1, 1), 4, (0.05, np.uint8(128)), (2 ** -40, np.uint8(0)))
    op = graph.ops[1]
    op.params = (1, 1 << 28) + op.params[2:]
    op.const = np.full(256, 0xFFFFFFFF, np.uint32)
    with pytest.raises(NotCompilable, match="SOFTMAX"):
        compile_native(graph)
    graph = avgpool_model(7, 7, 1, 3, 1, [0, 0, 0, 0])
    op = graph.ops[1]
    P = dict(op.named(), H=30, W=30, KH=23, KW=23, OH=8, OW=8)
    op.params = tuple(P.values())
    with pytest.raises(NotCompilable, match="AVGPOOL"):
        compile_native(graph)
    assert type(make_evaluator(graph)).__name__ != "NativeEvaluator"


@pytest.mark.parametrize("cols,y_scale", [(2, 0.5), (6, 0.25), (300, 2 ** -7)])
def test_native_softmax_exact_ties(cols, y_scale):
    """Quotients exactly halfway (rounded to even) at odd and even thresholds: a committed table E[255] = 3,
    E[254] = E[253] = 1 (else 0) and rows of one maximum among values one below, so S is a power of two times
    small integers; the definition's bytes, and the inputs do reach ties of both parities."""
    from fractions import Fraction

    graph = softmax_model((1, 2), cols, (0.05, np.uint8(128)), (y_scale, np.uint8(0)))
    E = np.zeros(256, np.uint32)
    E[255], E[254], E[253] = 3, 1, 1
    graph.ops[1].const = E
    xs = _softmax_patterns(graph, np.random.default_rng(cols))
    if cols == 300:    # S = 256: the max (3) among 253 ones and 46 zeros (values three below)
        q = np.full((1, cols, 1, 2), 252)
        q[:, :254] = 254
        q[:, 7] = 255
        xs.append(_from_q(graph, q))
    ties = set()
    for x in xs:
        row = evaluate(graph, x, DEFINITIONS).tensors[1].reshape(-1, cols)
        for r in row.astype(np.int64):
            d = r - r.max() + 255
            S = int(E[d].sum())
            for e in set(int(E[v]) for v in d):
                v = Fraction(e, 1) / (Fraction(y_scale) * S) if S else Fraction(0)
                if v.denominator == 2:
                    ties.add(int(v + Fraction(1, 2)) % 2)      # the parity of the threshold at the tie
    assert ties == {0, 1}, ties
    _same_bytes_on(graph, xs, f"softmax ties {cols} {y_scale}")


@pytest.mark.parametrize("seed", range(3))
def test_native_conv_avgpool_matmul_softmax_model(seed):
    """AVGPOOL reading a CONV's output and SOFTMAX reading a MATMUL's (a classifier head as MobileNetV1's with a
    real 3x3 average pool): ``auto`` is native and every tensor is the definitions' bytes at 1 and 2 threads."""
    rng = np.random.default_rng(seed)
    b = Builder((1, 3, 9, 9), opset=13)
    b.quantize(np.float32(rng.uniform(0.02, 0.08)), np.uint8(rng.integers(90, 160)))
    b.conv(rng.integers(-128, 128, (6, 3, 3, 3)).astype(np.int8), np.float32(rng.uniform(0.005, 0.02)), np.int8(0),
           rng.integers(-800, 800, 6).astype(np.int32), np.float32(rng.uniform(0.05, 0.2)),
           np.uint8(rng.integers(0, 40)), pads=[1, 1, 1, 1])
    name, (N, C, H, W), s, z = b.cur
    ys, yz = np.float32(rng.uniform(0.03, 0.2)), np.uint8(rng.integers(0, 60))
    y = b.node("QLinearAveragePool", [name, b.c(s), b.c(z), b.c(ys), b.c(yz)], domain="com.microsoft",
               kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=int(seed % 2))
    OH = _pool_out(H, 3, 2, 1, 1, 1, 0)
    _set(b, y, (N, C, OH, OH), ys, yz)
    b.reshape((1, C * OH * OH))
    b.matmul(rng.integers(-128, 128, (C * OH * OH, 300)).astype(np.int8), np.float32(rng.uniform(0.002, 0.01)),
             np.int8(0), np.float32(rng.uniform(0.05, 0.3)), np.uint8(rng.integers(100, 156)))
    name, shape, s, z = b.cur
    y = b.node("QLinearSoftmax", [name, b.c(s), b.c(z), b.c(np.float32(1 / 256)), b.c(np.uint8(0))],
               domain="com.microsoft", axis=-1, opset=13)
    _set(b, y, shape, np.float32(1 / 256), np.uint8(0))
    graph = lower(b.model())
    assert {"CONV", "AVGPOOL", "MATMUL", "SOFTMAX"} <= {op.kind.name for op in graph.ops}
    xs = [(rng.standard_normal(graph.input.shape) * 3).astype(np.float32) for _ in range(3)]
    _same_bytes_on(graph, xs, f"conv-avgpool-matmul-softmax {seed}")
