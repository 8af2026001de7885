"""Phase 3 of the game: the chunked reduction of CONV, MATMUL and GAP elements (`offchain/inference/reduction.py`)
against `OneStep.chunks` / `chunk` / `finish`, and games on anvil in which a solver lying inside a long reduction
(a wrong partial sum, a final accumulator inconsistent with its element, a wrong bias) loses, a lying challenger
loses, and forged phase-3 moves revert with the contract's custom errors."""

from __future__ import annotations

import numpy as np
import pytest

from offchain.inference.definitions import DEFINITIONS
from offchain.inference.evaluators import evaluate
from offchain.inference.graph import PARAM_NAMES, TABLE_DTYPE, Kind, Op, TensorInfo
from offchain.inference.limits import chunking, violation
from offchain.inference.loader import lower
from offchain.inference import reduction as rd
from offchain.inference.merkle import subtree_siblings, tensor_tree
from offchain.inference.trace import Trace
from protocol.chain.connection import Chain, ChainError
from protocol.inference.events import latest_reveal
from protocol.inference.game import (Deployment, challenge, challenger_move, play, post_task, read_game,
                                     read_task, solver_move, solver_trace_proofs, submit, winner)
from protocol.inference.scenarios import run_scenario
from protocol.inference.strategies import Challenger, LyingChallenger, Solver, SumLiar
from protocol.inference.types import Phase
from tests.reduction_models import conv_model, gap_nchw_model, gap_nhwc_model, make_x, matmul_model
from tests.solvency import assert_solvent

FEE = 10**16


def _trace(model_fn, seed=1) -> Trace:
    model, shape = model_fn(seed)
    graph = lower(model)
    return Trace.of(evaluate(graph, make_x(seed, shape), DEFINITIONS))


@pytest.fixture(scope="module")
def traces():
    return {"conv": _trace(conv_model), "gap_nhwc": _trace(gap_nhwc_model), "matmul": _trace(matmul_model),
            "gap_nchw": _trace(gap_nchw_model)}


@pytest.fixture(scope="module")
def dep(anvil_url):
    return Deployment.deploy(Chain(anvil_url))


def _chunked(trace):
    return [j for j, op in enumerate(trace.graph.ops) if rd.op_chunking(op)[0] > 1]


def _encoding(t: np.ndarray, e: int) -> int:
    return int(np.array(t.reshape(-1)[e]).astype(t.dtype).view(np.uint8))


def test_partial_sums_requantize_to_the_element(traces):
    """Python: acc_n of the chunked sums requantizes to the DEFINITIONS element, for every element."""
    for trace in traces.values():
        for j in _chunked(trace):
            op = trace.graph.ops[j]
            out = trace.tensors[j + 1]
            for e in range(0, op.out.numel, max(1, op.out.numel // 97)):
                acc = rd.element_sums(trace, j, e)
                assert len(acc) == rd.op_chunking(op)[0] + 1 and acc[0] == 0
                assert rd.finish_value(op, e, acc[-1]) == _encoding(out, e), (op.kind.name, e)
                assert all(-(1 << 31) < a < 1 << 31 for a in acc)


def test_python_and_solidity_chunks_agree(dep, traces):
    """`chunk_sum` == `OneStep.chunk` on every chunk of seeded random elements, the padding leaves included;
    `finish_value` == `OneStep.finish`; `chunking` == `OneStep.chunks`."""
    rng = np.random.default_rng(8)
    one = dep.onestep.functions
    kinds = set()
    for trace in traces.values():
        for j in _chunked(trace):
            op = trace.graph.ops[j]
            kinds.add(op.kind)
            n, L = rd.op_chunking(op)
            desc = op.descriptor()
            assert tuple(one.chunks(desc).call()) == (n, L) == chunking(op.kind, op.named(), len(op.inputs))
            x = trace.tensors[op.inputs[0]]
            for e in [0, op.out.numel - 1] + [int(v) for v in rng.integers(0, op.out.numel, 3)]:
                for i in list(range(n)) + [n, (1 << rd.root_height(n)) - 1]:
                    roots, _, opens = rd.chunk_openings(trace, j, e, i)
                    got = one.chunk(desc, roots, e, i, [o.as_tuple() for o in opens]).call()
                    assert got == rd.chunk_sum(op, x, e, i), (op.kind.name, e, i)
                acc = rd.element_sums(trace, j, e)
                for a in (acc[-1], acc[-1] + 1, acc[-1] - 977, 1 << 31, -(1 << 31)):
                    got = one.finish(desc, e, a, [o.as_tuple() for o in rd.finish_openings(op, e)]).call()
                    want = rd.finish_value(op, e, a)
                    assert got == (want if want >= 0 else 2**256 - 1), (op.kind.name, e, a)
    assert kinds == {Kind.CONV, Kind.MATMUL, Kind.GAP}


def test_chunk_fuzz_seeded_share(dep, anvil_url):
    """A seeded share of `benchmarks/parity_fuzz.py --chunks`: random long-reduction models, every chunk of random
    elements, Python against `OneStep.chunk`."""
    from benchmarks.parity_fuzz import OneStepCaller, run_chunks

    res = run_chunks(11, 60, OneStepCaller(anvil_url, dep.onestep.address))
    assert set(res["by_kind"]) == {"CONV", "MATMUL", "GAP"}
    assert all(v["solidity"] >= 60 and v["solidity_mismatch"] == 0 for v in res["by_kind"].values()), res


def test_forged_chunk_openings_revert(dep, traces):
    trace = traces["matmul"]
    j = _chunked(trace)[0]
    op = trace.graph.ops[j]
    roots, _, opens = rd.chunk_openings(trace, j, 3, 1)
    tup = [o.as_tuple() for o in opens]
    bad = [(list(tup[0][0]), list(tup[0][1])), tup[1], tup[2]]
    bad[0][0][0] = bytes(32)
    with pytest.raises(ChainError, match="BadOpening"):
        dep.chain.call(dep.onestep.functions.chunk(op.descriptor(), roots, 3, 1, bad))
    with pytest.raises(ChainError, match="BadOpeningCount"):
        dep.chain.call(dep.onestep.functions.chunk(op.descriptor(), roots, 3, 1, tup[:2]))
    wrong = rd.finish_openings(trace.graph.ops[j], 4)  # another column's table word
    with pytest.raises(ChainError, match="BadOpening"):
        dep.chain.call(dep.onestep.functions.finish(op.descriptor(), 3, 5, [o.as_tuple() for o in wrong]))


# ---------------------------------------------------------------------------------------------------- games

def _play(dep, honest, solver_trace, challenger, solver=None):
    A = dep.chain.accounts
    rec = run_scenario(dep, "phase 3", honest, solver_trace, challenger, A[0], A[1], solver=solver)
    assert rec["every_wei_accounted"]
    assert_solvent(dep)
    return rec


def _withdraw_all(dep) -> None:
    """Leave no credit behind (the scenarios account for every wei from a clean slate)."""
    pp = dep.pinpoint.functions
    for a in dep.chain.accounts[:6]:
        if dep.chain.call(pp.credit(a)):
            dep.chain.send(pp.withdraw(), sender=a)


def _element(trace, j, seed=3):
    return int(np.random.default_rng(seed + j).integers(0, trace.graph.ops[j].out.numel))


@pytest.mark.parametrize("model", ["conv", "gap_nhwc", "matmul", "gap_nchw"])
def test_inconsistent_final_accumulator_loses(dep, traces, model):
    """A solver whose element is wrong but whose partial sums are honest: the challenger's final move is the
    requantization of acc_n."""
    honest = traces[model]
    for j in _chunked(honest):
        e = _element(honest, j)
        rec = _play(dep, honest, honest.altered(j, e), Challenger(honest, dep.chain.accounts[2]))
        assert rec["winner"] == "challenger"
        last = rec["moves"][-1]["what"] if rec["moves"][-1]["who"] == "challenger" else ""
        finals = [m["what"] for m in rec["moves"] if m["what"].startswith("one-step")]
        assert finals and finals[-1].startswith("one-step: final requantization"), (finals, last)


@pytest.mark.parametrize("model,from_chunk", [("conv", 1), ("conv", 2), ("matmul", 1), ("matmul", 3),
                                              ("gap_nhwc", 23), ("gap_nchw", 4)])
def test_solver_lying_inside_the_reduction_loses(dep, traces, model, from_chunk):
    """A solver whose wrong element is backed by partial sums consistent with it (shifted from chunk
    ``from_chunk`` on; 1: a wrong bias) loses at the chunk one-step of that chunk."""
    honest = traces[model]
    A = dep.chain.accounts
    for j in _chunked(honest):
        n, _ = rd.op_chunking(honest.graph.ops[j])
        e = _element(honest, j)
        cheat = honest.altered(j, e)
        k = min(from_chunk, n)
        rec = _play(dep, honest, cheat, Challenger(honest, A[2]), solver=SumLiar(cheat, A[1], from_chunk=k))
        assert rec["winner"] == "challenger"
        finals = [m["what"] for m in rec["moves"] if m["what"].startswith("one-step")]
        assert finals[-1].startswith(f"one-step: chunk {k - 1} of"), finals


@pytest.mark.parametrize("finish_lie", [False, True])
def test_lying_challenger_in_phase_3_loses(dep, traces, finish_lie):
    honest = traces["gap_nhwc"]
    A = dep.chain.accounts
    for j in _chunked(honest):
        liar = LyingChallenger(honest, A[3], j, _element(honest, j))
        liar.finish_lie = finish_lie
        rec = _play(dep, honest, honest, liar)
        assert rec["winner"] == "solver"
        assert any(m["what"].startswith("phase 3") for m in rec["moves"])


def _phase3_game(dep, honest, cheat, j, e):
    """A game driven to phase 3 at element e of operator j; returns (game id, solver, challenger)."""
    A = dep.chain.accounts
    task_id, _ = post_task(dep, honest, FEE, A[0])
    submit(dep, task_id, cheat, A[1])
    gid, _ = challenge(dep, task_id, A[2])
    s, c = Solver(cheat, A[1]), Challenger(honest, A[2])
    for _ in range(60):
        g = read_game(dep, gid)
        if g.phase == Phase.REDUCTION:
            return gid, s, c
        solver_move(dep, gid, s) if g.turn == 0 else challenger_move(dep, gid, c)
    raise AssertionError("phase 3 not reached")


def test_forged_phase_3_moves_revert(dep, traces):
    honest = traces["gap_nhwc"]
    j = next(j for j in _chunked(honest) if honest.graph.ops[j].kind == Kind.GAP)
    e = _element(honest, j)
    cheat = honest.altered(j, e)
    gid, s, c = _phase3_game(dep, honest, cheat, j, e)
    A, pp, ch = dep.chain.accounts, dep.pinpoint.functions, dep.chain
    g = read_game(dep, gid)
    assert g.element == e and g.claimed == _encoding(cheat.tensors[j + 1], e)
    sums = s.reveal(g)
    forged = [rd.to_word(1)] + sums[1:]
    with pytest.raises(ChainError, match="RevealMismatch"):  # the root's left end is acc_0 = 0
        ch.send(pp.reveal(gid, forged), sender=A[1])
    with pytest.raises(ChainError, match="NotYourTurn"):  # phase 3's sums are the solver's choice: only its own
        ch.send(pp.reveal(gid, sums), sender=A[2])
    with pytest.raises(ChainError, match="BadChildCount"):
        ch.send(pp.reveal(gid, sums[:-1]), sender=A[1])
    solver_move(dep, gid, s)
    g = read_game(dep, gid)
    desc, dproof = c.trace.descriptor_proof(j)
    with pytest.raises(ChainError, match="BadSiblings"):  # sums not the ones revealed
        ch.send(pp.pickSum(gid, 0, [rd.to_word(7)] + sums[1:]), sender=A[2])
    with pytest.raises(ChainError, match="WrongPhase"):  # phase 2's pick in phase 3
        ch.send(pp.pick(gid, 0, sums[1], [bytes(32)] * g.m), sender=A[2])
    with pytest.raises(ChainError, match="NotYourTurn"):
        ch.send(pp.pickSum(gid, 0, sums), sender=A[1])
    with pytest.raises(ChainError, match="NotFinalMove"):  # height 5: not a leaf yet
        ch.send(pp.chunkStep(gid, 0, sums, desc, dproof, [], [], []), sender=A[2])
    ch.send(pp.pickSum(gid, 0, sums), sender=A[2])
    solver_move(dep, gid, s)
    g = read_game(dep, gid)
    sums2 = latest_reveal(dep, gid, game=g)
    with pytest.raises(ChainError, match="NotAtRoot"):
        ch.send(pp.finish(gid, sums2, desc, dproof, []), sender=A[2])
    roots, _, opens = rd.chunk_openings(honest, j, e, g.node_index << g.m)
    tup = [o.as_tuple() for o in opens]
    tup[0] = ([bytes(32)] + list(tup[0][0][1:]), tup[0][1])  # a forged input word
    with pytest.raises(ChainError, match="BadOpening"):
        ch.send(pp.chunkStep(gid, 0, sums2, desc, dproof, roots, solver_trace_proofs(dep, gid, honest, j), tup),
                sender=A[2])
    # the challenger followed child 0, where the (honest) partial sums agree: it has no move and times out
    ch.advance(int(ch.call(pp.moveWindow())) + 1)
    ch.send(pp.timeout(gid), sender=A[5])
    assert winner(dep, gid) == "solver"
    assert_solvent(dep)
    _withdraw_all(dep)


def test_phase_3_timeout(dep, traces):
    honest = traces["matmul"]
    j = _chunked(honest)[0]
    e = _element(honest, j)
    gid, s, c = _phase3_game(dep, honest, honest.altered(j, e), j, e)
    ch, pp = dep.chain, dep.pinpoint.functions
    with pytest.raises(ChainError, match="DeadlineNotPassed"):
        ch.send(pp.timeout(gid), sender=ch.accounts[5])
    ch.advance(int(ch.call(pp.moveWindow())) + 1)
    ch.send(pp.timeout(gid), sender=ch.accounts[5])
    assert winner(dep, gid) == "challenger"
    assert_solvent(dep)
    _withdraw_all(dep)


# ---------------------------------------------------------------------------------------------------- big shapes

def _op(kind: Kind, P: dict, rng, channels: int | None = None, K: int | None = None) -> Op:
    """An Op of ``kind`` with parameters ``P`` (by name) and seeded random weights and table."""
    names = PARAM_NAMES[kind]
    out = {Kind.CONV: lambda: (P["N"], P["OH"], P["OW"], P["Co"]), Kind.MATMUL: lambda: (P["M"], P["N"]),
           Kind.GAP: lambda: (P["N"], 1, 1, P["C"])}[kind]()
    weight = table = None
    if channels:
        weight = rng.integers(-128, 128, size=(channels, K)).astype(np.int8)
        table = np.zeros(channels, TABLE_DTYPE)
        table["bias"] = rng.integers(-10000, 10000, channels)
        table["sbits"] = int(np.array(np.float32(0.0007)).view(np.uint32))
        table["wzp"] = 0
    return Op(kind, "big", (0,), tuple(int(P[k]) for k in names), TensorInfo(out, np.dtype(np.uint8)), weight, table)


def _conv_p(H, Ci, Co, K, S=1, pad=None):
    pad = K // 2 if pad is None else pad
    O = (H + 2 * pad - K) // S + 1
    return dict(N=1, H=H, W=H, Ci=Ci, Co=Co, OH=O, OW=O, KH=K, KW=K, SH=S, SW=S, PT=pad, PL=pad, DH=1, DW=1, G=1,
                x_zp=3, y_zp=0, x_signed=1, w_signed=1, y_signed=0, out_nchw=0)


def _gap_p(hw, C, nchw):
    return dict(N=1, H=hw, W=hw, C=C, x_zp=128, y_zp=0, M0=1 << 23, s=30, x_signed=0, y_signed=0, x_nchw=nchw)


BIG = {  # name: (kind, parameters, input elements, weight rows, taps per row)
    "VGG-16 fc6 MATMUL K=25088": (Kind.MATMUL, dict(M=1, K=25088, N=4096, a_zp=0, y_zp=0, a_signed=0, b_signed=1,
                                                    y_signed=0), 25088, 4096, 25088),
    "VGG-16 conv 3x3x512": (Kind.CONV, _conv_p(14, 512, 512, 3), 14 * 14 * 512, 512, 9 * 512),
    "ResNet-50 conv 1x1 Ci=2048": (Kind.CONV, _conv_p(7, 2048, 512, 1), 7 * 7 * 2048, 512, 2048),
    "ResNet-50 stem 7x7x3 s2": (Kind.CONV, _conv_p(224, 3, 64, 7, 2, 3), 224 * 224 * 3, 64, 147),
    "GAP 56x56 NHWC": (Kind.GAP, _gap_p(56, 256, 0), 56 * 56 * 256, 0, 0),
    "GAP 56x56 NCHW": (Kind.GAP, _gap_p(56, 256, 1), 56 * 56 * 256, 0, 0),
    "GAP 160x160 NHWC": (Kind.GAP, _gap_p(160, 32, 0), 160 * 160 * 32, 0, 0),
    "GAP 160x160 NCHW": (Kind.GAP, _gap_p(160, 32, 1), 160 * 160 * 32, 0, 0),
}
FINAL_MOVE_GAS = 300_000
FINAL_MOVE_CALLDATA = 24 * 1024


class _Big:
    """The little of a trace that `reduction.chunk_openings` reads: one operator reading the model input."""

    def __init__(self, op: Op, x: np.ndarray):
        self.graph = type("G", (), {"ops": [op]})()
        self.trees = [tensor_tree(x)]
        self.tensors = [x]
        self.trace_tree = None


def _chunk_step_overhead(dep, traces) -> tuple[int, int]:
    """(gas, calldata bytes) a `Pinpoint.chunkStep` costs beyond its `OneStep.chunk` call, measured on a
    phase-3 game of the MATMUL model (proofs, the game's state and the payout)."""
    honest = traces["matmul"]
    A = dep.chain.accounts
    j = _chunked(honest)[0]
    e = _element(honest, j)
    cheat = honest.altered(j, e)
    rec = _play(dep, honest, cheat, Challenger(honest, A[2]), solver=SumLiar(cheat, A[1], from_chunk=2))
    step = next(m for m in rec["moves"] if m["what"].startswith("one-step: chunk 1"))
    op = honest.graph.ops[j]
    roots, _, opens = rd.chunk_openings(honest, j, e, 1)
    fn = dep.onestep.functions.chunk(op.descriptor(), roots, e, 1, [o.as_tuple() for o in opens])
    data = fn._encode_transaction_data()
    direct = dep.chain.w3.eth.estimate_gas({"to": dep.onestep.address, "data": data})
    assert step["gas"] > direct
    return step["gas"] - direct, 2048  # calldata: sums (<= 17 words), descriptor proof, trace proofs, head words


@pytest.mark.parametrize("name", list(BIG))
def test_final_moves_bounded_at_big_shapes(dep, traces, name):
    """The chunk one-step at ResNet-50 / VGG-16 / large-pool shapes (synthetic seeded weights): Python and
    Solidity agree, and the final move it makes costs <= 300k gas and <= 24 KB of calldata (the chunk's measured
    gas and calldata plus the measured overhead of `Pinpoint.chunkStep`); the final requantization too."""
    kind, P, nx, rows, k = BIG[name]
    rng = np.random.default_rng(len(name))
    op = _op(kind, P, rng, rows or None, k or None)
    assert violation(int(kind), op.params, 1) is None, name
    n, L = rd.op_chunking(op)
    assert n > 1, name  # refused before phase 3 (the whole element's one-step is over the bound)
    x = rng.integers(0, 256, nx).astype(np.uint8).view(np.int8 if P.get("x_signed") else np.uint8)
    big = _Big(op, x)
    overhead, overhead_cd = _chunk_step_overhead(dep, traces) if not hasattr(dep, "_oh") else dep._oh
    dep._oh = (overhead, overhead_cd)
    one, w3 = dep.onestep.functions, dep.chain.w3
    worst = (0, 0)
    e = int(rng.integers(0, op.out.numel))
    for i in sorted({0, 1, n // 2, n - 1}):
        roots, _, opens = rd.chunk_openings(big, 0, e, i)
        fn = one.chunk(op.descriptor(), roots, e, i, [o.as_tuple() for o in opens])
        assert dep.chain.call(fn) == rd.chunk_sum(op, x, e, i)
        data = fn._encode_transaction_data()
        gas = w3.eth.estimate_gas({"to": dep.onestep.address, "data": data})
        worst = max(worst, (gas, len(data)))
    acc = rd.partial_sums(op, x, e)
    fin = one.finish(op.descriptor(), e, acc[-1], [o.as_tuple() for o in rd.finish_openings(op, e)])
    assert dep.chain.call(fin) == rd.finish_value(op, e, acc[-1])
    fin_gas = w3.eth.estimate_gas({"to": dep.onestep.address, "data": fin._encode_transaction_data()})
    print(f"{name}: {n} chunks of {L} taps, chunk one-step {worst[0]:,} gas {worst[1]:,} B, "
          f"final move <= {worst[0] + overhead:,} gas; finish {fin_gas + overhead:,} gas")
    assert worst[0] + overhead <= FINAL_MOVE_GAS and worst[1] + overhead_cd <= FINAL_MOVE_CALLDATA
    assert fin_gas + overhead <= FINAL_MOVE_GAS


@pytest.mark.parametrize("model,from_chunk", [("gap_nhwc", 23), ("conv", 2)])
def test_phase_3_moves_within_gas_bounds(dep, traces, model, from_chunk):
    """Every move of a game that goes through phase 3 (two rounds of it on the NHWC GAP) stays within its
    `contracts/shared/Gas.sol` bound, and half the bond covers the honest challenger's gas."""
    from tests.test_game import _gas_bounds

    bound = _gas_bounds()
    honest = traces[model]
    A = dep.chain.accounts
    j = _chunked(honest)[0]
    cheat = honest.altered(j, _element(honest, j))
    rec = _play(dep, honest, cheat, Challenger(honest, A[2]), solver=SumLiar(cheat, A[1], from_chunk=from_chunk))
    assert rec["winner"] == "challenger"
    kind = {"reveal": "REVEAL", "pick": "PICK", "select": "SELECT", "one-step": "STEP", "phase": "STEP",
            "challenge": "CHALLENGE", "withdraw": "RESOLVE"}
    used = 0
    for mv in rec["moves"]:
        k = kind.get(mv["what"].split()[0].rstrip(":"))
        if k is None:
            continue
        assert mv["gas"] <= bound[k], (mv["what"], mv["gas"], bound[k])
        used += mv["gas"] if mv["who"] == "challenger" else 0
    assert sum(1 for m in rec["moves"] if m["what"].startswith("pick partial")) >= (model == "gap_nhwc")
    bond = read_task(dep, rec["task_id"]).bond
    assert used * dep.chain.call(dep.pinpoint.functions.bondGasPrice()) <= bond // 2


def test_kept_chunk_count_never_outlives_its_game(dep, traces):
    """`selectOperator` keeps the selected operator's sizes and chunk count in the task's shared arena, so that the
    step starting phase 3 carries no descriptor. Attack: an honest solver's task, game 1 (a lying challenger)
    selects a chunked operator and reaches phase 3, then times out; game 2 (another liar) disputes a one-chunk
    operator and tries, at its last phase-2 move, to start phase 3 with the stale count and no descriptor (or to
    decide it without one): refused (BadDescriptor), and the liar loses its game the honest way."""
    honest = traces["conv"]
    A, pp, ch = dep.chain.accounts, dep.pinpoint.functions, dep.chain
    j = _chunked(honest)[0]
    j2 = next(i for i, op in enumerate(honest.graph.ops) if rd.op_chunking(op)[0] == 1 and op.out.numel > 64)
    task_id, _ = post_task(dep, honest, FEE, A[0])
    submit(dep, task_id, honest, A[1])
    g1, _ = challenge(dep, task_id, A[2])
    g2, _ = challenge(dep, task_id, A[3])
    s = Solver(honest, A[1])
    liar1, liar2 = LyingChallenger(honest, A[2], j, _element(honest, j)), LyingChallenger(honest, A[3], j2, 5)
    for _ in range(60):
        g = read_game(dep, g1)
        if g.phase == Phase.REDUCTION:
            break
        solver_move(dep, g1, s) if g.turn == 0 else challenger_move(dep, g1, liar1)
    n, _ = rd.op_chunking(honest.graph.ops[j])
    assert n > 1 and g.phase == Phase.REDUCTION and g.height == (n - 1).bit_length()
    solver_move(dep, g1, s)  # the solver reveals its partial sums; the liar then misses its move
    ch.advance(int(ch.call(pp.moveWindow())) + 1)
    ch.send(pp.timeout(g1), sender=A[5])
    assert winner(dep, g1) == "solver" and read_game(dep, g2).active
    for _ in range(60):
        g = read_game(dep, g2)
        if g.phase == Phase.TENSOR_SEARCH and g.turn == 1 and g.height == g.m:
            break
        solver_move(dep, g2, s) if g.turn == 0 else challenger_move(dep, g2, liar2)
    assert g.op_index == j2
    kids = latest_reveal(dep, g2, game=g)
    sib = subtree_siblings(kids, 0)
    for desc, dproof in ((b"", []), honest.descriptor_proof(j)):  # none, or the chunked operator's
        with pytest.raises(ChainError, match="BadDescriptor"):
            ch.send(pp.step(g2, 0, kids[0], sib, 0, desc, dproof, [], [], []), sender=A[3])
    play(dep, g2, s, liar2)
    assert winner(dep, g2) == "solver"
    assert_solvent(dep)
    _withdraw_all(dep)


def test_zigzag_words_round_trip():
    """Phase-3 sums travel as zigzag words (`Pinpoint._sum`): small sums of either sign are mostly zero bytes."""
    for v in (0, 1, -1, 2**31 - 1, -2**31, 2**255 - 1, -2**255, -123456789):
        w = rd.to_word(v)
        assert len(w) == 32 and rd.from_word(w) == v
    assert rd.to_word(-1) == (1).to_bytes(32, "big") and rd.to_word(1) == (2).to_bytes(32, "big")
    assert sum(b != 0 for b in rd.to_word(-2**31)) == 4
    with pytest.raises(ValueError):
        rd.to_word(2**255)
