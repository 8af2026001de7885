"""The canonical ADD is onnxruntime's QLinearAdd arithmetic (offchain/inference/graph.py): the exact binary32
fused multiply-add (`fma_f32`) against exact rationals on double-rounding traps; the definition against onnxruntime's
own QLinearAdd on every pair of input values; FAST, the onnxruntime-compiled paths (QLinearAdd node and table Gather)
and the Solidity one-step against the definition; the limits the loader and the contract both enforce."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from fractions import Fraction

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from offchain.inference.definitions import DEFINITIONS, add_table, fma_f32
from offchain.inference.evaluators import OrtEvaluator, evaluate
from offchain.inference.fast import FAST
from offchain.inference.graph import Kind, f32_bits
from offchain.inference.limits import violation
from offchain.inference.loader import lower
from offchain.inference.ort_native import compile_native
from offchain.inference.ort_probe import qlinear_add_exact
from offchain.inference.trace import Trace
from protocol.chain.connection import Chain
from tests.conftest import ROOT
from tests.synth import Builder


def _rn32(q: Fraction) -> float:
    """q rounded to binary32, nearest, ties to even (normal range), exactly."""
    if q == 0:
        return 0.0
    sign, q = (-1 if q < 0 else 1), abs(q)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    e += 1 if Fraction(2) ** (e + 1) <= q else 0
    e -= 1 if Fraction(2) ** e > q else 0
    k = q / Fraction(2) ** (e - 23)
    n = int(k)
    if k - n > Fraction(1, 2) or (k - n == Fraction(1, 2) and n % 2):
        n += 1
    return sign * float(n * Fraction(2) ** (e - 23))


def test_fma_f32_rounds_once_even_where_float64_double_rounds():
    """x * r + t near binary32 midpoints, where rounding to float64 first then to float32 is wrong: `fma_f32` equals
    the exact rational rounded once (and the naive float64 form is wrong on some, so the cases bite)."""
    rng = np.random.default_rng(7)
    naive_wrong = 0
    for i in range(1500):
        r = np.float32(1 + int(rng.integers(0, 2 ** 23)) * 2.0 ** -23) * np.float32(2.0 ** int(rng.integers(-8, 8)))
        x = int(rng.integers(-128, 256)) or 1
        p = Fraction(x) * Fraction(float(r))
        E = int(np.floor(np.log2(abs(float(p)))))
        if i % 3 == 0:   # random addend
            t = np.float32(rng.uniform(-1, 1) * 2.0 ** int(rng.integers(-30, 12)))
        else:            # addend putting p + t within 2^-30 ulp of a binary32 midpoint
            mid = Fraction(_rn32(p)) + Fraction(2) ** (E - 24) * int(rng.choice([-1, 1]))
            t = np.float32(float(mid - p) + float(rng.choice([-1, 1])) * 2.0 ** (E - 54))
        want = _rn32(p + Fraction(float(t)))
        assert float(fma_f32(np.array([x]), r, np.array([t], np.float32))[0]) == want, (x, r, t)
        naive_wrong += float(np.float32(x * np.float64(r) + np.float64(t))) != want
    assert naive_wrong > 0


# (signed, a_scale, a_zp, b_scale, b_zp, c_scale, c_zp)
PARAMS = [(0, 0.0213, 131, 0.0347, 120, 0.0391, 127), (1, 0.0213, -3, 0.0347, 9, 0.0391, -1),
          (0, 0.05, 128, 0.05, 128, 0.1, 128), (1, 0.0625, 0, 0.125, 0, 0.25, 0),
          (0, 0.0071, 3, 0.093, 250, 0.00051, 17), (1, 0.0931, 127, 0.0012, -128, 0.0444, 40)]


def _all_pairs_model(signed, sa, za, sb, zb, sc, zc, rng=None):
    """QuantizeLinear(x) -> QLinearAdd(q, B) with B a constant: q runs over every value on the channels, B over
    every value on the pixels, so the ADD sees all 65536 pairs. Returns (model, x)."""
    dt = np.int8 if signed else np.uint8
    lo = -128 if signed else 0
    vals = np.arange(256) + lo
    bconst = np.broadcast_to(vals.reshape(1, 1, 16, 16), (1, 256, 16, 16)).astype(dt)
    if rng is not None:
        bconst = rng.permutation(bconst.reshape(-1)).reshape(bconst.shape).astype(dt)
    x = np.broadcast_to(((vals - za) * np.float64(sa)).astype(np.float32).reshape(1, 256, 1, 1), (1, 256, 16, 16))
    m = Builder((1, 256, 16, 16)).quantize(sa, dt(za)).add_const(bconst, sb, dt(zb), sc, dt(zc))
    m.nodes[-1].output[0] = "output"  # no DequantizeLinear: the model outputs the ADD's bytes
    g = helper.make_graph(m.nodes, "add", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 256, 16, 16])],
                          [helper.make_tensor_value_info("output", TensorProto.INT8 if signed else TensorProto.UINT8,
                                                         [1, 256, 16, 16])], m.inits)
    onnx_model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
                                   ir_version=10)
    return onnx_model, np.ascontiguousarray(x)


def _ort(model, x, threads=0):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]


@pytest.mark.parametrize("p", PARAMS, ids=[f"s{p[0]}_{i}" for i, p in enumerate(PARAMS)])
def test_definition_equals_onnxruntime_qlinearadd_on_all_pairs(p):
    """Loader + `add_def` give onnxruntime's QLinearAdd bytes for all 65536 input pairs (this CPU)."""
    model, x = _all_pairs_model(*p)
    graph = lower(model)
    add = graph.ops[1]
    assert add.kind == Kind.ADD
    ref = evaluate(graph, x, DEFINITIONS).tensors[2]
    q = ref.reshape(1, 16, 16, 256).transpose(0, 3, 1, 2)          # committed NHWC -> NCHW
    assert np.array_equal(q, _ort(model, x))
    a = evaluate(graph, x, DEFINITIONS).tensors[1]
    pairs = set(zip(a.reshape(-1).tolist(), add.const.tolist()))
    assert len(pairs) == 65536


@pytest.mark.parametrize("p", PARAMS[:3], ids=["u8", "s8", "u8eq"])
def test_fast_and_compiled_paths_equal_definition(p):
    """FAST (table lookup), OrtEvaluator (table Gather) and the native compiler with onnxruntime's QLinearAdd node
    and with the table Gather give the definition's bytes, at 1 and 2 threads."""
    model, x = _all_pairs_model(*p, rng=np.random.default_rng(3))
    graph = lower(model)
    ref = evaluate(graph, x, DEFINITIONS)
    assert evaluate(graph, x, FAST).tensors[2].tobytes() == ref.tensors[2].tobytes()
    assert OrtEvaluator(graph)(x).tensors[2].tobytes() == ref.tensors[2].tobytes()
    for ort_add in (True, False):
        m = compile_native(graph, ort_add=ort_add)
        assert ("QLinearAdd" in [n.op_type for n in m.graph.node]) == ort_add
        for th in (1, 2):
            so = ort.SessionOptions()
            so.intra_op_num_threads = th
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            outs = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
                None, {"x": x})
            assert outs[1].tobytes() == ref.tensors[2].tobytes(), (ort_add, th)
    op = graph.ops[1]
    assert qlinear_add_exact(*(op.p(k) for k in ("rac_bits", "rbc_bits", "a_zp", "b_zp", "c_zp", "c_signed",
                                                 "fixed_bits")))
    # a fixed part onnxruntime would not compute from these zero points: the probe refuses it
    assert not qlinear_add_exact(*(op.p(k) for k in ("rac_bits", "rbc_bits", "a_zp", "b_zp", "c_zp", "c_signed")),
                                 f32_bits(np.float32(0.3)))


def test_fast_broadcast_and_table():
    """FAST on b repeating over leading dimensions equals the definition; the table is the definition per pair."""
    model, x = _all_pairs_model(*PARAMS[0])
    op = lower(model).ops[1]
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, op.out.shape).astype(np.uint8)
    b = rng.integers(0, 256, op.out.numel).astype(np.uint8)
    assert np.array_equal(FAST[Kind.ADD](op, a, b), DEFINITIONS[Kind.ADD](op, a, b))
    P = dict(op.named())
    P["numel_b"] = 256
    op2 = type(op)(Kind.ADD, op.name, op.inputs, tuple(P.values()), op.out, const=b[:256])
    assert np.array_equal(FAST[Kind.ADD](op2, a, b[:256]), DEFINITIONS[Kind.ADD](op2, a, b[:256]))
    t = add_table(op)
    assert t[(200 << 8) | 7] == DEFINITIONS[Kind.ADD](op, np.full(op.out.shape, 200, np.uint8),
                                                      np.full(op.out.numel, 7, np.uint8)).reshape(-1)[0]


@pytest.fixture(scope="module")
def onestep(anvil_url):
    chain = Chain(anvil_url)
    c, _ = chain.deploy("OneStep")
    return chain, c


@pytest.mark.parametrize("p", [PARAMS[0], PARAMS[1], PARAMS[4]], ids=["u8", "s8", "u8tiny"])
def test_solidity_one_step_equals_definition_at_near_ties(onestep, p):
    """OneStep's integer binary32 emulation equals `add_def` on the 40 elements whose pre-rounding value is
    nearest a half-integer, plus random ones."""
    chain, c = onestep
    model, x = _all_pairs_model(*p)
    graph = lower(model)
    ev = evaluate(graph, x, DEFINITIONS)
    op = graph.ops[1]
    a = ev.tensors[1].reshape(-1).astype(np.float64)
    b = op.const.astype(np.float64)
    approx = a * float(np.float32(p[1] / p[5])) + b * float(np.float32(p[3] / p[5])) + op.p("c_zp") \
        - op.p("a_zp") * p[1] / p[5] - op.p("b_zp") * p[3] / p[5]
    near = np.argsort(np.abs(approx - np.floor(approx) - 0.5))[:40]
    rng = np.random.default_rng(1)
    elements = sorted(set(near.tolist()) | set(rng.integers(0, op.out.numel, 10).tolist()))
    trace = Trace.of(ev)
    out = ev.tensors[2].reshape(-1)
    for e in elements:
        roots, _, openings = trace.step_openings(1, e)
        got = chain.call(c.functions.element(op.descriptor(), roots, e, [o.as_tuple() for o in openings]))
        assert got == int(np.array(out[e]).view(np.uint8)), e


@pytest.mark.parametrize("bits", [(146 << 23 | 0x7FFFFF, 146 << 23 | 0x7FFFFF, 63 << 23 | 1),
                                  (95 << 23, 95 << 23, 155 << 23 | 0x7FFFFF),
                                  (95 << 23 | 5, 146 << 23 | 3, 1 << 31 | 63 << 23 | 77)], ids=["big", "small", "mixed"])
def test_solidity_one_step_at_the_limits(onestep, bits):
    """Descriptors at the edges of the ADD limits (ratios 2^-32 / just below 2^20, |fixed| 2^-64 / just below 2^29,
    negative fixed): the widest aligned sums; OneStep still equals `add_def`."""
    chain, c = onestep
    model, x = _all_pairs_model(*PARAMS[0])
    graph = lower(model)
    ev = evaluate(graph, x, DEFINITIONS)
    trace = Trace.of(ev)
    op = graph.ops[1]
    P = op.named()
    P["rac_bits"], P["rbc_bits"], P["fixed_bits"] = bits
    assert violation(Kind.ADD, tuple(P.values()), 1) is None
    op2 = type(op)(Kind.ADD, op.name, op.inputs, tuple(P.values()), op.out, const=op.const)
    want = DEFINITIONS[Kind.ADD](op2, ev.tensors[1], op.const).reshape(-1)
    for e in np.random.default_rng(0).integers(0, op.out.numel, 8).tolist():
        roots, _, openings = trace.step_openings(1, e)
        got = chain.call(c.functions.element(op2.descriptor(), roots, e, [o.as_tuple() for o in openings]))
        assert got == int(np.array(want[e]).view(np.uint8)), e


def test_limits_agree_with_the_contract(onestep):
    """Ratios outside [2^-32, 2^20) or a fixed part outside {0} U [2^-64, 2^29): the loader's rules and
    OneStep.check both refuse; the boundary values are accepted by both."""
    chain, c = onestep
    model, _ = _all_pairs_model(*PARAMS[0])
    op = lower(model).ops[1]
    names = list(op.named())
    cases = {("rac_bits", 95 << 23): True, ("rac_bits", (95 << 23) - 1): False, ("rbc_bits", (147 << 23) - 1): True,
             ("rbc_bits", 147 << 23): False, ("rac_bits", 1 << 31 | 127 << 23): False,
             ("fixed_bits", 0): True, ("fixed_bits", 1 << 31): True, ("fixed_bits", 1 << 31 | 63 << 23): True,
             ("fixed_bits", 62 << 23): False, ("fixed_bits", (156 << 23) - 1): True, ("fixed_bits", 156 << 23): False,
             ("fixed_bits", 1 << 32): False}
    for (k, v), ok in cases.items():
        params = list(op.params)
        params[names.index(k)] = v
        op2 = type(op)(Kind.ADD, op.name, op.inputs, tuple(params), op.out, const=op.const)
        assert (violation(Kind.ADD, params, len(op.inputs)) is None) == ok, (k, v)
        assert chain.call(c.functions.check(op2.descriptor()))[0] == ok, (k, v)


_QEMU_SCRIPT = """
import hashlib, sys
import numpy as np, onnxruntime as ort
sys.path.insert(0, sys.argv[1])
from tests.test_add_semantics import PARAMS, _all_pairs_model, _ort
from offchain.inference.loader import lower
from offchain.inference.ort_native import compile_native
from offchain.inference.ort_probe import qlinear_add_exact
for p in PARAMS:
    model, x = _all_pairs_model(*p)
    graph = lower(model)
    op = graph.ops[1]
    so = ort.SessionOptions(); so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    nat = ort.InferenceSession(compile_native(graph, ort_add=True).SerializeToString(), so,
                               providers=["CPUExecutionProvider"]).run(None, {"x": x})[1]
    probe = qlinear_add_exact(*(op.p(k) for k in ("rac_bits", "rbc_bits", "a_zp", "b_zp", "c_zp", "c_signed",
                                                  "fixed_bits")))
    print(hashlib.sha256(_ort(model, x).tobytes()).hexdigest(), hashlib.sha256(nat.tobytes()).hexdigest(), probe)
"""


@pytest.mark.slow
def test_onnxruntime_qlinearadd_equals_definition_on_emulated_haswell():
    """Under qemu-user -cpu Haswell-v4 (AVX2, no AVX-512): onnxruntime's QLinearAdd (the model's own and the native
    compiler's) gives the definition's bytes on all pairs, and the probe holds there."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-user not installed (Debian package qemu-user; .ci/run installs it)")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="2")
    r = subprocess.run([qemu, "-cpu", "Haswell-v4", sys.executable, "-c", _QEMU_SCRIPT, str(ROOT)], env=env,
                       capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [ln.split() for ln in r.stdout.strip().splitlines()]
    assert len(lines) == len(PARAMS)
    for p, (own, nat, probe) in zip(PARAMS, lines):
        model, x = _all_pairs_model(*p)
        graph = lower(model)
        ref = evaluate(graph, x, DEFINITIONS).tensors[2]
        want = hashlib.sha256(ref.reshape(1, 16, 16, 256).transpose(0, 3, 1, 2).tobytes()).hexdigest()
        assert own == want and nat == hashlib.sha256(ref.tobytes()).hexdigest() and probe == "True", p
