"""Loader-contract parity: the wrong answers of issue 8 (each a model on which the evaluators and OneStep disagreed
with the model's semantics), one set of descriptor rules in `offchain/inference/limits.py` and `OneStep.check`
(constants and verdicts compared), the cost model against measured gas, `Pinpoint.selectOperator` deciding an
undecidable operator against the solver, and a seeded share of the differential fuzzer
(`benchmarks/parity_fuzz.py`)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from eth_abi import encode as abi_encode

from benchmarks.parity_fuzz import (ELEMENT_TYPES, SELECTOR, OneStepCaller, _logical, calldata, encode_element,
                                    encoding, evaluators, logical_reference, run)
from offchain.inference.definitions import DEFINITIONS
from offchain.inference.evaluators import evaluate
from offchain.inference.graph import PARAM_NAMES, Kind, ModelError, Op, TensorInfo, UnsupportedOperator
from offchain.inference.limits import LIMITS, one_step_cost, violation
from offchain.inference.loader import lower
from offchain.inference.trace import Trace
from protocol.chain.connection import Chain
from tests.synth import Builder


@pytest.fixture(scope="module")
def onestep(anvil_url):
    chain = Chain(anvil_url)
    c, _ = chain.deploy("OneStep")
    return chain, c, OneStepCaller(anvil_url, c.address)


def _agree_everywhere(model, x, caller) -> None:
    """DEFINITIONS, every other evaluator that compiles the graph, every OneStep element and the logical
    reference agree exactly; returns the names of the evaluators compared."""
    graph = lower(model)
    ref = evaluate(graph, x, DEFINITIONS)
    evs = evaluators(graph)
    for name, ev in evs.items():
        assert not isinstance(ev, Exception), (name, ev)
        for a, b in zip(ref.tensors, ev(x).tensors):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    want = logical_reference(model, x)
    outs = {n.name: n.output[0] for n in model.graph.node}
    for j, op in enumerate(graph.ops):
        w = want[outs[op.name]]
        got = _logical(op, ref.tensors[j + 1], w.shape)
        assert (encoding(got) == encoding(w.astype(got.dtype))).all(), f"op {j} {op.kind.name} vs the model"
    trace = Trace.of(ref)
    for j, op in enumerate(graph.ops):  # the fuzzer's hand encoding is the ABI encoding
        roots, _, openings = trace.step_openings(j, 0)
        args = [op.descriptor(), roots, 0, [o.as_tuple() for o in openings]]
        assert encode_element(*args) == SELECTOR + abi_encode(ELEMENT_TYPES, args)
    jobs = [(j, e) for j, op in enumerate(graph.ops) for e in range(op.out.numel)]
    got = caller.values([calldata(trace, j, e) for j, e in jobs])
    want_enc = [int(encoding(ref.tensors[j + 1])[e]) for j, e in jobs]
    assert got == want_enc
    return set(evs)


def _run_model(model, x):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None,
                                                                                                      {"input": x})[0]


# ------------------------------------------------------------------------------------------- the wrong answers
def test_quantize_after_dequantize_reads_the_committed_layout(onestep):
    """Q -> DQ -> Q -> DQ: the second QUANTIZE reads the DEQUANTIZE output in its committed layout (NHWC); it read
    it as NCHW (21 of 24 elements wrong)."""
    b = Builder((1, 3, 2, 4)).quantize(0.25, np.uint8(100)).dequantize().quantize(0.5, np.int8(3)).dequantize()
    model = b.model()
    x = (np.random.default_rng(0).integers(-40, 40, (1, 3, 2, 4)) * 0.125).astype(np.float32)
    out = evaluate(lower(model), x).output
    assert (out.transpose(0, 3, 1, 2) == _run_model(model, x)).all()   # exact scales: onnxruntime agrees exactly
    _agree_everywhere(model, x, onestep[2])


def test_add_constant_of_activation_shape_is_committed_nhwc(onestep):
    """A QLinearAdd with a constant B of the activation's 4-D shape: B is committed in the activation's layout."""
    rng = np.random.default_rng(1)
    b = Builder((1, 3, 3, 4)).quantize(0.05, np.uint8(120))
    b.conv(rng.integers(-128, 128, (5, 3, 1, 1)).astype(np.int8), np.full(5, 0.01, np.float32), np.zeros(5, np.int8),
           None, 0.05, np.uint8(128))
    b.add_const(rng.integers(0, 256, (1, 5, 3, 4)).astype(np.uint8), 0.02, np.uint8(128), 0.06, np.uint8(128))
    model = b.model()
    x = rng.normal(0, 2, (1, 3, 3, 4)).astype(np.float32)
    assert {"fast", "ort"} <= _agree_everywhere(model, x, onestep[2])  # the compiled path runs it too


def test_quantize_output_dtype_is_honoured():
    """QuantizeLinear (opset 21) with output_dtype INT8 and no zero point: negatives stay negative."""
    model = Builder((1, 2, 2, 2)).quantize(0.5, None, output_dtype=TensorProto.INT8).model()
    x = np.linspace(-3, 3, 8, dtype=np.float32).reshape(1, 2, 2, 2)
    graph = lower(model)
    assert graph.ops[0].p("y_signed") == 1 and graph.ops[0].out.dtype == np.int8
    out = evaluate(graph, x).output
    assert (out.transpose(0, 3, 1, 2) == _run_model(model, x)).all() and (out < 0).any()
    with pytest.raises(UnsupportedOperator, match="output_dtype"):
        lower(Builder((1, 2, 2, 2)).quantize(0.5, None, output_dtype=TensorProto.INT16).model())
    with pytest.raises(ModelError, match="disagrees"):
        lower(Builder((1, 2, 2, 2)).quantize(0.5, np.uint8(3), output_dtype=TensorProto.INT8).model())


def test_reshape_that_reorders_committed_bytes_becomes_a_transpose():
    """[1,8,1,1] -> [1,4,2,1] is not a relabelling of NHWC bytes: it is lowered to a TRANSPOSE to the logical (NCHW)
    order, whose bytes then equal onnxruntime's reshaped tensor; [1,C,H,W] -> [1,C,H*W,1] is a relabelling (no op)."""
    b = Builder((1, 8, 1, 1)).quantize(0.1, np.uint8(3)).reshape((1, 4, 2, 1))
    graph = lower(b.model())
    assert Kind.TRANSPOSE in [op.kind for op in graph.ops]
    x = np.random.default_rng(5).normal(size=(1, 8, 1, 1)).astype(np.float32)
    ours = evaluate(graph, x, "definitions").tensors[-1]     # NHWC [1, 2, 1, 4]: the committed layout
    sess = ort.InferenceSession(b.model().SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert ours.transpose(0, 3, 1, 2).tobytes() == np.ascontiguousarray(theirs).tobytes()
    ok = Builder((1, 3, 2, 2)).quantize(0.1, np.uint8(3)).reshape((1, 3, 4, 1)).gap(0.1, np.uint8(5))
    assert [op.kind for op in lower(ok.model()).ops] == [Kind.QUANTIZE, Kind.GAP, Kind.DEQUANTIZE]


# ------------------------------------------------------------------------------------------------ one rule set
def test_limit_tables_match(onestep):
    chain, c, _ = onestep
    for name, value in LIMITS.items():
        assert chain.call(getattr(c.functions, name)()) == value, name


def _valid_descriptors():
    rng = np.random.default_rng(3)
    b = Builder((1, 4, 5, 5)).quantize(0.05, np.uint8(120))
    b.keep.append(b.cur)
    b.conv(rng.integers(-128, 128, (4, 2, 3, 3)).astype(np.int8), np.full(4, 0.01, np.float32), np.zeros(4, np.int8),
           None, 0.05, np.uint8(128), group=2, pads=[1, 1, 1, 1])
    b.add(b.keep[0], 0.1, np.uint8(3)).gap(0.05, np.uint8(100)).reshape((1, 4))
    b.matmul(rng.integers(-128, 128, (4, 3)).astype(np.int8), np.full(3, 0.01, np.float32), np.zeros(3, np.int8),
             0.05, np.int8(0))
    b.add_const(rng.integers(-128, 128, (3,)).astype(np.int8), 0.02, np.int8(1), 0.06, np.int8(2))
    return lower(b.model()).ops


def _mutations(ops, rng, n):
    """Descriptors from valid ones with one or two parameters set to edge values, wrong counts, unknown kinds."""
    edges = [0, -1, 1, 2, 62, 63, 127, 128, 255, 256, -128, -129, 1 << 24, (1 << 24) + 1, 1 << 40, -(1 << 255),
             (1 << 255) - 1, 0x7f7fffff, 0x7f800000, 0x00800000, 1024, 1025]
    out = []
    for _ in range(n):
        op = ops[int(rng.integers(len(ops)))]
        p = list(op.params)
        r = rng.random()
        kind, inputs = int(op.kind), list(op.inputs)
        if r < 0.05:
            kind = int(rng.choice([0, 7, 1 << 200]))
        elif r < 0.1:
            p = p + [0] if rng.random() < 0.5 else p[:-1]
        elif r < 0.15:
            inputs = inputs + [1]
        else:
            for _ in range(int(rng.integers(1, 3))):
                i = int(rng.integers(len(p)))
                p[i] = int(rng.choice(edges)) if rng.random() < 0.7 else p[i] + int(rng.integers(-3, 4))
        out.append((kind, inputs, p, op))
    return out


def test_loader_and_contract_decide_the_same_descriptors(onestep):
    """`violation` (Python) and `OneStep.check` (Solidity) agree on valid descriptors and on 600 mutations of
    them; for the valid ones `check` returns the output size."""
    chain, c, _ = onestep
    ops = _valid_descriptors()
    for op in ops:
        assert violation(op.kind, op.params, len(op.inputs)) is None
        ok, numel, esize = chain.call(c.functions.check(op.descriptor()))
        assert ok and numel == op.out.numel and esize == op.out.dtype.itemsize
    rng = np.random.default_rng(4)
    seen = {True: 0, False: 0}
    for kind, inputs, p, op in _mutations(ops, rng, 600):
        desc = Op.descriptor(Op(Kind.QUANTIZE, "m", tuple(inputs), tuple(p), op.out, op.weight, op.table, op.const))
        desc = kind.to_bytes(32, "big") + desc[32:]
        ok, _, _ = chain.call(c.functions.check(desc))
        py_ok = violation(kind, tuple(p), len(inputs)) is None
        assert ok == py_ok, (kind, p, violation(kind, tuple(p), len(inputs)))
        seen[ok] += 1
    assert seen[True] > 20 and seen[False] > 300
    for junk in (b"", b"\x01" * 100, bytes(192), (1).to_bytes(32, "big") + (2 ** 64).to_bytes(32, "big") * 5):
        assert chain.call(c.functions.check(junk))[0] is False


def test_long_reductions_are_chunked_not_refused(onestep):
    """The issue's shapes, a GAP over 160x160 (96M gas for the whole element) and VGG-16's first classifier
    (K = 25,088), are accepted by both rule tables: the bound applies per chunk (phase 3). A reduction of more
    than 2^MAX_CHUNK_DEPTH chunks, and a dilation of 0, are still refused by both."""
    chain, c, _ = onestep
    gap = Builder((1, 8, 160, 160)).quantize(0.05, np.uint8(120)).gap(0.05, np.uint8(100))
    op = next(o for o in lower(gap.model()).ops if o.kind == Kind.GAP)
    assert c.functions.check(op.descriptor()).call()[0]
    P = dict(zip(PARAM_NAMES[Kind.MATMUL], (1, 25088, 4096, 0, 0, 0, 1, 0)))
    assert violation(Kind.MATMUL, tuple(P.values()), 1) is None
    huge = dict(zip(PARAM_NAMES[Kind.GAP], (1, 1024, 1024, 1, 0, 0, 1 << 23, 40, 0, 0, 0)))
    assert "chunks" in violation(Kind.GAP, tuple(huge.values()), 1)
    desc = Op(Kind.GAP, "huge", (1,), tuple(huge.values()), TensorInfo((1, 1, 1, 1), np.dtype(np.uint8))).descriptor()
    assert not c.functions.check(desc).call()[0]
    dil0 = _valid_descriptors()[1]
    p = dict(zip(PARAM_NAMES[Kind.CONV], dil0.params), DH=0)
    assert "DH" in violation(Kind.CONV, tuple(p.values()), 1)


def test_cost_model_bounds_the_measured_gas(onestep):
    """`one_step_cost` is an upper bound of `OneStep.element`'s transaction gas and calldata, the gas within 2x
    of the worst element's."""
    chain, c, _ = onestep
    rng = np.random.default_rng(5)
    cases = []
    for Ci, K, G, H in ((256, 1, 1, 3), (64, 3, 1, 4), (8, 5, 8, 7), (32, 3, 32, 24)):
        b = Builder((1, Ci, H, H)).quantize(0.05, np.uint8(128))
        b.conv(rng.integers(-128, 128, (G, Ci // G, K, K)).astype(np.int8), np.full(G, 0.01, np.float32),
               np.zeros(G, np.int8), None, 1.0, np.uint8(128), group=G, pads=[K // 2] * 4)
        cases.append((b, Kind.CONV))
    b = Builder((1, 512, 1, 1)).quantize(0.05, np.uint8(128)).reshape((1, 512))
    b.matmul(rng.integers(-128, 128, (512, 16)).astype(np.int8), np.full(16, 0.01, np.float32), np.zeros(16, np.int8),
             1.0, np.uint8(128))
    cases.append((b, Kind.MATMUL))
    cases.append((Builder((1, 32, 6, 6)).quantize(0.05, np.uint8(128)).gap(0.05, np.uint8(1)), Kind.GAP))
    for b, kind in cases:
        graph = lower(b.model())
        trace = Trace.of(evaluate(graph, rng.normal(0, 1, graph.input.shape).astype(np.float32)))
        j = [op.kind for op in graph.ops].index(kind)
        op = graph.ops[j]
        mg, mc = one_step_cost(op.kind, dict(zip(PARAM_NAMES[op.kind], op.params)), len(op.inputs))
        worst, size = 0, 0
        for e in (0, op.out.numel // 2 + 1, op.out.numel - 1):  # a corner (padding), an inner element, the last
            d = calldata(trace, j, e)
            gas = chain.w3.eth.estimate_gas({"to": c.address, "data": "0x" + d.hex()})
            assert gas <= mg and len(d) <= mc, (kind.name, e, gas, mg, len(d), mc)
            worst, size = max(worst, gas), max(size, len(d))
        assert mg < 2 * worst, (kind.name, worst, mg)


def test_select_operator_decides_an_undecidable_operator_against_the_solver(anvil_url):
    """A model whose CONV descriptor has 23 parameters (the loader refuses it; a careless solver's client did not):
    the honest challenger wins at `selectOperator`, before any one-step (`outputSize` reverted on it: no one could
    dispute that operator)."""
    from protocol.inference.game import Deployment, challenge, play, post_task, submit, winner
    from protocol.inference.strategies import Challenger, Solver

    dep = Deployment.deploy(Chain(anvil_url))
    graph = lower(Builder((1, 3, 4, 4)).quantize(0.05, np.uint8(120)).conv(
        np.ones((2, 3, 1, 1), np.int8), np.full(2, 0.01, np.float32), np.zeros(2, np.int8), None, 0.05,
        np.uint8(128)).model())
    x = np.random.default_rng(6).normal(0, 1, (1, 3, 4, 4)).astype(np.float32)
    tensors = evaluate(graph, x, DEFINITIONS).tensors
    conv = graph.ops[1]
    conv.params = conv.params + (0,)
    assert violation(conv.kind, conv.params, 1) is not None
    honest = Trace(graph, tensors)
    cheat = honest.altered(1, 3)
    A = dep.chain.accounts
    task, _ = post_task(dep, honest, 10 ** 15, A[0])
    submit(dep, task, cheat, A[1])
    gid, _ = challenge(dep, task, A[2])
    moves = play(dep, gid, Solver(cheat, A[1]), Challenger(honest, A[2]))
    assert winner(dep, gid) == "challenger"
    assert moves[-1].what.startswith("select operator 1") and not any(m.what.startswith("one-step") for m in moves)


# ------------------------------------------------------------------------------------------------ fuzzer share
def test_fuzz_seeded_share(onestep):
    """A seeded share of `benchmarks/parity_fuzz.py`: every kind compared >= 1500 times against OneStep, and
    against the logical reference, with no mismatch."""
    res = run(seed=8, per_kind=1500, caller=onestep[2], max_graphs=3000)
    for kind, s in res["by_kind"].items():
        assert s["solidity"] >= 1500, kind
        assert s.get("solidity_mismatch", 0) == 0 and s.get("python_mismatch", 0) == 0, (kind, res["examples"])
        assert s["model"] > 0 and s.get("model_mismatch", 0) == 0, (kind, res["examples"])
    assert res["evaluated_graphs"].get("ort", 0) > 0
