"""QUANTIZE rounds like onnxruntime's QuantizeLinear: ``sat(zp + rne(fl32(x / scale)))``, one IEEE binary32
division then round half to even (`offchain.inference.graph`, `offchain.inference.definitions.quantize_def`).

Held here: the Python definition against onnxruntime's QuantizeLinear (uint8 and int8) on random and adversarial
inputs (exact ties after the division, quotients just off a half-integer whose binary32 quotient is a tie, the ``tf``
preprocessing ``p / 127.5 - 1``, huge, tiny and subnormal values, +-Inf); the Solidity one-step
(`contracts/inference/OneStep.sol` ``_quantize``) against the Python definition element by element; every evaluator
byte for byte on QUANTIZE.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from offchain.inference.definitions import DEFINITIONS
from offchain.inference.evaluators import Evaluation, evaluate, make_evaluator
from offchain.inference.graph import Kind
from offchain.inference.loader import lower
from offchain.inference.ort import NotCompilable
from offchain.inference.trace import Trace
from protocol.chain.connection import Chain
from tests.synth import Builder

SCALES = [np.float32(2 / 255), np.float32(1 / 127.5), np.float32(0.0078125), np.float32(0.02352941),
          np.float32(0.1), np.float32(3.0), np.float32(1e-3), np.float32(0.0470588)]
CASES = [(s, zp) for s in SCALES for zp in (np.uint8(0), np.uint8(128), np.int8(0), np.int8(-5))]


def _adversarial(scale: np.float32, rng: np.random.Generator, n: int) -> np.ndarray:
    """Values whose exact quotient is a half-integer or within a few ulps of one, plus extremes and randoms."""
    k = rng.integers(-300, 300, n).astype(np.float64)
    ties = ((k + 0.5) * np.float64(scale)).astype(np.float32)  # fl32 of the tie: exact quotient just off .5
    parts = [ties]
    for d in (1, 2, 3):  # d ulps either side (same sign, so the same direction in magnitude)
        parts.append((ties.view(np.int32) + np.int32(d)).view(np.float32))
        parts.append((ties.view(np.int32) - np.int32(d)).view(np.float32))
    tf = (rng.integers(0, 256, n).astype(np.float32) / np.float32(127.5) - np.float32(1.0))  # `tf` preprocessing
    rand = rng.normal(0, 200 * float(scale), n).astype(np.float32)
    tiny = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-40, 1e-38, 1.1754944e-38, 3e-39, 1e-30], np.float32)
    huge = np.array([1e30, -1e30, 3.4028235e38, -3.4028235e38, 2.0 ** 40, 1e10, -1e10, np.inf, -np.inf], np.float32)
    return np.concatenate(parts + [tf, rand, tiny, huge]).astype(np.float32)


def _exact_tie_share(x: np.ndarray, scale: np.float32) -> tuple[int, int]:
    """(#elements whose binary32 quotient is a half-integer, #of those whose exact quotient is not one)."""
    with np.errstate(all="ignore"):
        f = (x / scale).astype(np.float64)
        tie = np.isfinite(f) & (np.abs(f) < 2 ** 22) & (f - np.floor(f) == 0.5)
    inexact = sum(1 for v in x[tie][:400] if (Fraction(float(v)) / Fraction(float(scale))).denominator != 2)
    return int(tie.sum()), inexact


def _ort_quantize(x: np.ndarray, scale: np.float32, zp) -> np.ndarray:
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    dt = TensorProto.INT8 if np.asarray(zp).dtype == np.int8 else TensorProto.UINT8
    g = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
                          [helper.make_tensor_value_info("y", dt, [x.size])],
                          [numpy_helper.from_array(np.asarray(scale, np.float32), "s"),
                           numpy_helper.from_array(np.asarray(zp), "z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _graph(scale, zp, shape):
    """QUANTIZE -> DEQUANTIZE over ``shape`` (NCHW), lowered."""
    graph = lower(Builder(shape).quantize(scale, zp).model())
    assert graph.ops[0].kind == Kind.QUANTIZE
    return graph


@pytest.mark.parametrize("scale,zp", CASES, ids=[f"{float(s):.6g}-{np.asarray(z).dtype}{int(z)}" for s, z in CASES])
def test_definition_equals_onnxruntime(scale, zp):
    rng = np.random.default_rng(int(np.asarray(scale).view(np.uint32)) + int(zp))
    x = _adversarial(scale, rng, 500)
    n = x.size
    graph = _graph(scale, zp, (1, 1, 1, n))
    ours = DEFINITIONS[Kind.QUANTIZE](graph.ops[0], x.reshape(1, 1, 1, n)).reshape(-1)
    theirs = _ort_quantize(x, scale, zp)
    assert ours.dtype == theirs.dtype
    bad = np.nonzero(ours != theirs)[0]
    assert bad.size == 0, f"{bad.size}/{n} differ, e.g. x={x[bad[:3]]} ours={ours[bad[:3]]} ort={theirs[bad[:3]]}"


def test_definition_equals_onnxruntime_many():
    """>= 10^5 elements over all cases, and the adversarial set really holds ties the old exact rule rounds apart."""
    total = inexact_ties = 0
    for i, (scale, zp) in enumerate(CASES):
        rng = np.random.default_rng(100 + i)
        x = np.concatenate([_adversarial(scale, rng, 300), rng.uniform(-300, 300, 1500).astype(np.float32)
                            * scale]).astype(np.float32)
        graph = _graph(scale, zp, (1, 1, 1, x.size))
        ours = DEFINITIONS[Kind.QUANTIZE](graph.ops[0], x.reshape(1, 1, 1, -1)).reshape(-1)
        assert ours.tobytes() == _ort_quantize(x, scale, zp).tobytes(), (float(scale), int(zp))
        total += x.size
        inexact_ties += _exact_tie_share(x, scale)[1]
    assert total >= 10 ** 5
    assert inexact_ties > 100  # binary32 ties whose exact quotient is not a half-integer: the old rule differed


def test_tf_preprocessing_ties():
    """The case that was measured wrong: ``p / 127.5 - 1`` quantized at scale fl32(2/255), zero point 128."""
    p = np.arange(256, dtype=np.float32)
    x = p / np.float32(127.5) - np.float32(1.0)
    scale, zp = np.float32(2 / 255), np.uint8(128)
    graph = _graph(scale, zp, (1, 1, 1, 256))
    ours = DEFINITIONS[Kind.QUANTIZE](graph.ops[0], x.reshape(1, 1, 1, 256)).reshape(-1)
    assert ours.tobytes() == _ort_quantize(x, scale, zp).tobytes()


@pytest.mark.parametrize("zp", [np.uint8(128), np.int8(-3)])
def test_evaluators_byte_identical(zp):
    scale = np.float32(2 / 255)
    rng = np.random.default_rng(7)
    x = _adversarial(scale, rng, 200)
    x = x[np.isfinite(x)][: 4 * 2 * 15 * 15].reshape(4, 2, 15, 15)  # model inputs are finite (inputs.py)
    graph = _graph(scale, zp, x.shape)
    ref = evaluate(graph, x, DEFINITIONS)
    ran = 0
    for kind in ("definitions", "fast", "ort", "native"):
        try:
            ev = make_evaluator(graph, kind)
        except NotCompilable:
            continue
        got = ev(x)
        assert got.tensors[1].tobytes() == ref.tensors[1].tobytes(), kind
        ran += 1
    assert ran >= 3 if zp.dtype == np.uint8 else ran >= 2


@pytest.fixture(scope="module")
def onestep(anvil_url):
    chain = Chain(anvil_url)
    c, _ = chain.deploy("OneStep")
    return chain, c


@pytest.mark.parametrize("scale,zp,min_diff", [(np.float32(2 / 255), np.uint8(128), 3),
                                               (np.float32(0.1), np.int8(-5), 3),
                                               (np.float32(1 / 127.5), np.uint8(3), 3),
                                               (np.float32(0.0470588), np.int8(0), 1),
                                               (np.float32(1e-3), np.uint8(3), 0), (np.float32(3.0), np.int8(0), 0)])
def test_solidity_equals_definition(onestep, scale, zp, min_diff):
    """OneStep.element on a QUANTIZE descriptor == the Python definition: every binary32 tie of the adversarial set
    first (``min_diff`` of them rounded differently by the old exact-quotient rule), subnormals, huge, +-Inf, NaN."""
    chain, c = onestep
    rng = np.random.default_rng(int(np.asarray(scale).view(np.uint32)))
    x = _adversarial(scale, rng, 12)
    x = np.concatenate([x, np.array([np.nan, -np.nan], np.float32)])
    # ties first: every binary32 tie of the set, then a sample of the rest
    with np.errstate(all="ignore"):
        f = (x / scale).astype(np.float64)
        tie = np.isfinite(f) & (f - np.floor(f) == 0.5)
    x = np.concatenate([x[tie], x[~tie]])[:160].astype(np.float32)
    n = x.size
    graph = _graph(scale, zp, (1, 1, 1, n))
    op = graph.ops[0]
    out = DEFINITIONS[Kind.QUANTIZE](op, x.reshape(1, 1, 1, n)).reshape(-1)
    assert (out[np.isnan(x)] == np.asarray(zp)).all()  # NaN -> the zero point (our stated rule)
    # the exact-quotient rule (the old one) rounds some of these elements differently: they test the division
    lo, hi = (-128, 127) if np.asarray(zp).dtype == np.int8 else (0, 255)
    old = [min(hi, max(lo, int(zp) + round(Fraction(float(v)) / Fraction(float(scale)))))
           for v in x if np.isfinite(v) and abs(float(v) / float(scale)) < 2 ** 30]
    fin = out[np.isfinite(x) & (np.abs(x.astype(np.float64) / float(scale)) < 2 ** 30)].astype(int)
    assert sum(a != b for a, b in zip(old, fin)) >= min_diff
    # the one-step on non-finite committed floats too (a model input cannot hold them: `check_input`; a float
    # activation could), so the evaluation is assembled by hand
    tensors = [x.reshape(1, 1, 1, n), out.reshape(op.out.shape)]
    tensors += [DEFINITIONS[o.kind](o, tensors[-1]) for o in graph.ops[1:]]
    trace = Trace.of(Evaluation(graph, tensors, 0.0))
    desc = op.descriptor()
    for e in range(n):
        roots, _, openings = trace.step_openings(0, e)
        got = chain.call(c.functions.element(desc, roots, e, [o.as_tuple() for o in openings]))
        assert got == int(out[e:e + 1].view(np.uint8)[0]), f"x={x[e]!r} ({x[e].view(np.uint32):#x})"
