"""Each canonical operator: the Python definition (offchain/inference/definitions.py DEFINITIONS) against the
Solidity one-step (contracts/inference/OneStep.sol), element by element, on random and edge values: zero points,
saturation, rounding of negative values and exact ties, grouped/depthwise convolution borders with strides, padding
and dilation."""

from __future__ import annotations

import numpy as np
import pytest

from offchain.inference.definitions import DEFINITIONS
from offchain.inference.evaluators import evaluate
from offchain.inference.fast import FAST
from offchain.inference.graph import Kind
from offchain.inference.loader import lower
from offchain.inference.trace import Trace
from protocol.chain.connection import Chain, ChainError
from tests.synth import make_input, make_model

CONFIGS = [
    dict(seed=1),
    dict(seed=2, sat_scale=True),
    dict(seed=3, x_scale=0.0625, H=6, W=5, Ci=3, G=1, cig_out=4, K=3, stride=1, pad=(1, 1, 1, 1)),
    dict(seed=4, H=9, W=8, Ci=6, G=3, cig_out=2, K=2, stride=3, pad=(0, 2, 1, 0), dil=2),
    dict(seed=5, signed_out=True, sat_scale=True, Ci=8, G=4, cig_out=1),
    dict(seed=6, H=5, W=5, Ci=40, G=1, cig_out=36, K=1, stride=1, pad=(0, 0, 0, 0), n_out=7),
    dict(seed=7, H=3, W=3, Ci=1600, G=1, cig_out=6, K=1, stride=1, pad=(0, 0, 0, 0), extreme=True),
    dict(seed=8, H=12, W=11, Ci=4, G=2, cig_out=40, gap_reads_conv=True),
]


@pytest.fixture(scope="module")
def onestep(anvil_url):
    chain = Chain(anvil_url)
    c, _ = chain.deploy("OneStep")
    return chain, c


def _encoding(t: np.ndarray, e: int) -> int:
    v = t.reshape(-1)[e]
    if t.dtype == np.float32:
        return int(np.array(v, np.float32).view(np.uint32))
    return int(np.array(v).astype(t.dtype).view(np.uint8))


def _elements(op, rng, n=12):
    numel = op.out.numel
    if op.kind == Kind.CONV:
        N, OH, OW, Co = op.out.shape
        corners = [((0 * OH + oh) * OW + ow) * Co + co for oh in (0, OH - 1) for ow in (0, OW - 1) for co in (0, Co - 1)]
    else:
        corners = [0, numel - 1]
    return sorted(set(corners + [int(i) for i in rng.integers(0, numel, n)]))


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"seed{c['seed']}" for c in CONFIGS])
def test_python_and_solidity_agree(onestep, cfg):
    chain, c = onestep
    model = make_model(**cfg)
    graph = lower(model)
    if cfg.get("gap_reads_conv"):
        assert [op.kind for op in graph.ops] == [Kind.QUANTIZE, Kind.CONV, Kind.CONV, Kind.GAP, Kind.MATMUL,
                                                 Kind.ADD, Kind.DEQUANTIZE]
        assert graph.ops[2].p("out_nchw") == 1 and graph.ops[3].p("x_nchw") == 1
    else:
        assert [op.kind for op in graph.ops] == [Kind.QUANTIZE, Kind.CONV, Kind.CONV, Kind.ADD, Kind.GAP,
                                                 Kind.MATMUL, Kind.ADD, Kind.DEQUANTIZE]
        assert all(op.p("out_nchw") == 0 for op in graph.ops if op.kind == Kind.CONV)
    x = make_input(cfg["seed"], graph.input.shape, cfg.get("x_scale"))
    if cfg.get("extreme"):
        x = np.abs(x) * 100 + 10  # saturates high: |x - x_zp| large on every channel
    ref = evaluate(graph, x, DEFINITIONS)
    for other in (evaluate(graph, x, FAST), evaluate(graph, x)):  # numpy fast path, onnxruntime-compiled path
        for a, b in zip(ref.tensors, other.tensors):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    trace = Trace.of(ref)
    rng = np.random.default_rng(cfg["seed"])
    saturated = 0
    for j, op in enumerate(graph.ops):
        out = ref.tensors[j + 1]
        if out.dtype != np.float32:
            info = np.iinfo(out.dtype)
            saturated += int(((out == info.min) | (out == info.max)).sum())
        desc = op.descriptor()
        for e in _elements(op, rng):
            roots, _, openings = trace.step_openings(j, e)
            got = chain.call(c.functions.element(desc, roots, e, [o.as_tuple() for o in openings]))
            assert got == _encoding(out, e), f"op {j} {op.kind.name} element {e}"
        # past the end: the zero padding
        assert chain.call(c.functions.element(desc, [trace.trees[r].root for r in op.inputs], op.out.numel, [])) == 0
    if cfg.get("sat_scale"):
        assert saturated > 0
    if cfg.get("extreme"):  # the case where fl32(acc) itself rounds
        import offchain.inference.definitions as K

        t = graph.ops[1].table
        xd = ref.tensors[1].astype(np.int64) - graph.ops[1].p("x_zp")
        acc = xd.reshape(-1, xd.shape[-1]) @ (graph.ops[1].weight.reshape(graph.ops[1].weight.shape[0], -1).T
                                              .astype(np.int64))
        assert np.abs(acc).max() >= 2 ** 24


def test_quantize_ties_round_half_to_even():
    """Exact ties x = (k + 1/2) * scale go to the even integer, as ONNX QuantizeLinear specifies."""
    model = make_model(seed=3, x_scale=0.0625, H=6, W=5, Ci=3, G=1, cig_out=4, K=3, stride=1, pad=(1, 1, 1, 1))
    graph = lower(model)
    op = graph.ops[0]
    zp = op.p("zp")
    k = np.arange(-20, 20)
    x = np.zeros(graph.input.shape, np.float32).reshape(-1)
    x[: k.size] = ((k + 0.5) * 0.0625).astype(np.float32)
    q = DEFINITIONS[Kind.QUANTIZE](op, x.reshape(graph.input.shape)).transpose(0, 3, 1, 2).reshape(-1)[: k.size]
    expect = np.clip(zp + np.where(k % 2 == 0, k, k + 1), 0, 255)
    assert (q.astype(int) == expect).all()


def test_forged_openings_revert(onestep):
    chain, c = onestep
    graph = lower(make_model(seed=1))
    trace = Trace.of(evaluate(graph, make_input(1, graph.input.shape)))
    j = 1  # grouped conv
    e = 5
    desc = graph.ops[j].descriptor()
    roots, _, openings = trace.step_openings(j, e)
    ok = [o.as_tuple() for o in openings]
    # a tampered input word
    bad = [list(t) for t in ok]
    bad[0] = ([bytes([bad[0][0][0][0] ^ 1]) + bad[0][0][0][1:]] + bad[0][0][1:], bad[0][1])
    with pytest.raises(ChainError) as ei:
        chain.call(c.functions.element(desc, roots, e, bad))
    assert ei.value.error == "BadOpening" and ei.value.error_args == (0,)
    # a weight opening for another output channel (stale: valid, but for a different element)
    _, _, other = trace.step_openings(j, e + 1)
    mixed = [ok[0], other[1].as_tuple(), ok[2]]
    with pytest.raises(ChainError) as ei:
        chain.call(c.functions.element(desc, roots, e, mixed))
    assert ei.value.error == "BadOpening"
    # a missing opening
    with pytest.raises(ChainError) as ei:
        chain.call(c.functions.element(desc, roots, e, ok[:2]))
    assert ei.value.error == "BadOpeningCount"
    # the wrong input root
    with pytest.raises(ChainError) as ei:
        chain.call(c.functions.element(desc, [trace.trees[2].root], e, ok))
    assert ei.value.error == "BadOpening"
