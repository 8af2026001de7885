"""Full pinpoint games on the real MobileNetV2-int8 against anvil, and every way a move can be rejected."""

from __future__ import annotations

import pytest

from offchain.inference.graph import Kind
from protocol.chain.connection import Chain, ChainError
from offchain.inference.merkle import subtree_siblings
from protocol.inference.game import (Deployment, challenge, challenger_move, last_reveal, play, post_task,
                                     read_game, solver_move, solver_trace_proofs, submit, winner)
from protocol.inference.strategies import Challenger, LyingChallenger, Solver
from protocol.inference.scenarios import run_scenario

FEE = 10**16


@pytest.fixture(scope="module")
def dep(anvil_url):
    return Deployment.deploy(Chain(anvil_url))


def _contract_holds_exactly(dep: Deployment) -> None:
    """INVARIANT: the contract's balance is what it owes: credits plus the escrow of live tasks and open games."""
    ch, pp = dep.chain, dep.pinpoint.functions
    owed = 0
    for t in range(ch.call(pp.taskCount())):
        task = ch.call(pp.task(t))
        status, fee, bond = task[1], task[8], task[9]
        if status == 1:
            owed += fee
        elif status == 2:
            owed += fee + bond
    for g in range(ch.call(pp.gameCount())):
        st = read_game(dep, g)
        if st.phase in (1, 2):
            owed += ch.call(pp.task(st.task_id))[9]
    addrs = set(ch.accounts)
    owed += sum(ch.call(pp.credit(a)) for a in addrs)
    assert ch.balance(dep.pinpoint.address) == owed


def _cheat_ops(graph):
    kinds = [op.kind for op in graph.ops]
    return {
        "first (QUANTIZE)": 0,
        "early conv": 1,
        "middle": graph.n_ops // 2,
        "GAP": kinds.index(Kind.GAP),
        "MATMUL": kinds.index(Kind.MATMUL),
        "last (DEQUANTIZE)": graph.n_ops - 1,
    }


@pytest.mark.slow
@pytest.mark.parametrize("where", ["first (QUANTIZE)", "early conv", "middle", "GAP", "MATMUL", "last (DEQUANTIZE)"])
def test_cheating_solver_loses(dep, honest_trace, where):
    graph = honest_trace.graph
    j = _cheat_ops(graph)[where]
    elem = (7919 * (j + 1)) % graph.ops[j].out.numel
    cheat = honest_trace.altered(j, elem)
    A = dep.chain.accounts
    rec = run_scenario(dep, where, honest_trace, cheat, Challenger(honest_trace, A[2]), A[0], A[1])
    assert rec["winner"] == "challenger"
    assert rec["every_wei_accounted"]
    one_step = [m for m in rec["moves"] if m["what"].startswith("one-step")]
    assert one_step and f"op {j} " in one_step[0]["what"], one_step
    _contract_holds_exactly(dep)


@pytest.mark.slow
@pytest.mark.parametrize("target", [1, 40, "GAP", -1])
def test_lying_challenger_loses(dep, honest_trace, target):
    graph = honest_trace.graph
    j = graph.n_ops - 1 if target == -1 else (_cheat_ops(graph)["GAP"] if target == "GAP" else target)
    A = dep.chain.accounts
    liar = LyingChallenger(honest_trace, A[3], j, graph.ops[j].out.numel // 3)
    rec = run_scenario(dep, f"liar at {j}", honest_trace, honest_trace, liar, A[0], A[1])
    assert rec["winner"] == "solver"
    assert rec["every_wei_accounted"]
    _contract_holds_exactly(dep)


def _fresh_game(dep, honest_trace, solver_trace=None):
    A = dep.chain.accounts
    task_id, _ = post_task(dep, honest_trace, FEE, A[0])
    submit(dep, task_id, solver_trace or honest_trace, A[1])
    game_id, _ = challenge(dep, task_id, A[2])
    return task_id, game_id


def _expect(error: str, fn, sender, chain):
    with pytest.raises(ChainError) as ei:
        chain.send(fn, sender=sender)
    assert ei.value.error == error, str(ei.value)


def test_moves_out_of_turn_and_forged(dep, honest_trace):
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    cheat = honest_trace.altered(5, 3)
    task_id, gid = _fresh_game(dep, honest_trace, cheat)
    st = read_game(dep, gid)
    kids = cheat.children(1, 0, st.height, 0, st.m)
    # the challenger cannot move first, a stranger cannot reveal, a forged reveal is rejected
    _expect("NotYourTurn", pp.pick(gid, 0, kids[0], [kids[1]] * st.m), A[2], ch)
    _expect("NotYourTurn", pp.reveal(gid, kids), A[4], ch)
    _expect("RevealMismatch", pp.reveal(gid, [kids[1]] + kids[1:]), A[1], ch)
    _expect("BadChildCount", pp.reveal(gid, kids[:-1]), A[1], ch)
    solver = Solver(cheat, A[1])
    mv = solver_move(dep, gid, solver)
    # the solver cannot move twice; a pick with a forged value or out-of-range child is rejected
    _expect("NotYourTurn", pp.reveal(gid, kids), A[1], ch)
    st = read_game(dep, gid)
    sib = subtree_siblings(kids, 0)
    _expect("BadSiblings", pp.pick(gid, 0, b"\x01" * 32, sib), A[2], ch)
    _expect("BadChild", pp.pick(gid, 16, kids[0], sib), A[2], ch)
    # a stale proof: siblings of the previous level
    _expect("BadSiblings", pp.pick(gid, 1, kids[1], sib), A[2], ch)
    # selecting an operator before the leaf level
    desc, dproof = honest_trace.descriptor_proof(0)
    _expect("NotFinalMove", pp.selectOperator(gid, 0, kids[0], sib, desc, dproof), A[2], ch)
    # play on: a wrong descriptor at the phase boundary is rejected
    ch_ = Challenger(honest_trace, A[2])
    challenger_move(dep, gid, ch_, mv.tx)
    mv = solver_move(dep, gid, solver)
    st = read_game(dep, gid)
    revealed = last_reveal(dep, mv.tx)
    child = ch_.choose(st, revealed)
    j = (st.node_index << st.m) | child
    wrong_desc, wrong_proof = honest_trace.descriptor_proof(j + 1)
    _expect("BadDescriptor", pp.selectOperator(gid, child, revealed[child], subtree_siblings(revealed, child),
                                               wrong_desc, wrong_proof), A[2], ch)
    _expect("BadDescriptor", pp.selectOperator(gid, child, revealed[child], subtree_siblings(revealed, child),
                                               wrong_desc, honest_trace.descriptor_proof(j)[1]), A[2], ch)
    # finish the game honestly
    play(dep, gid, solver, ch_)
    assert winner(dep, gid) == "challenger"
    # moves after resolution
    _expect("GameNotInProgress", pp.reveal(gid, kids), A[1], ch)
    _expect("GameNotInProgress", pp.timeout(gid), A[4], ch)
    _contract_holds_exactly(dep)


def test_forged_one_step_rejected(dep, honest_trace):
    """At the one-step, a forged trace proof, input root or opening reverts; the honest one then wins."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    j = 20
    cheat = honest_trace.altered(j, 11)
    _, gid = _fresh_game(dep, honest_trace, cheat)
    solver, chal = Solver(cheat, A[1]), Challenger(honest_trace, A[2])
    reveal_tx = None
    while True:
        st = read_game(dep, gid)
        if st.phase == 2 and st.turn == 1 and st.height <= st.m:
            break
        if st.turn == 0:
            reveal_tx = solver_move(dep, gid, solver).tx
        else:
            challenger_move(dep, gid, chal, reveal_tx)
    revealed = last_reveal(dep, reveal_tx)
    child = chal.choose(st, revealed)
    leaf = (st.node_index << st.m) | child
    elem = 0
    mine = honest_trace.node(2, j, 0, leaf)
    while revealed[child][elem] == mine[elem]:
        elem += 1
    e = leaf * 32 + elem
    desc, dproof = honest_trace.descriptor_proof(j)
    roots, naive_proofs, openings = honest_trace.step_openings(j, e)
    proofs = solver_trace_proofs(dep, gid, honest_trace, j)
    op_t = [o.as_tuple() for o in openings]
    sib = subtree_siblings(revealed, child)

    def step(roots_, proofs_, openings_, element=elem):
        return pp.step(gid, child, revealed[child], sib, element, desc, dproof, roots_, proofs_, openings_)

    # our own trace's proofs do not open the solver's trace root (its later leaves differ)
    _expect("BadTraceProof", step(roots, naive_proofs, op_t), A[2], ch)
    _expect("BadTraceProof", step([honest_trace.trees[3].root], proofs, op_t), A[2], ch)
    _expect("BadElement", step(roots, proofs, op_t, element=32), A[2], ch)
    tampered = [(list(op_t[0][0]), op_t[0][1]), op_t[1], op_t[2]]
    tampered[0][0][0] = bytes(32)
    _expect("BadOpening", step(roots, proofs, tampered), A[2], ch)
    ch.send(step(roots, proofs, op_t), sender=A[2])
    assert winner(dep, gid) == "challenger"
    _contract_holds_exactly(dep)


def test_deadlines(dep, honest_trace):
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    window = ch.call(pp.moveWindow())
    # the solver misses its first move: the challenger wins by timeout, not a second earlier
    task_id, gid = _fresh_game(dep, honest_trace)
    _expect("DeadlineNotPassed", pp.timeout(gid), A[4], ch)
    ch.advance(window + 1)
    _expect("DeadlinePassed", pp.reveal(gid, honest_trace.children(1, 0, 7, 0, 4)), A[1], ch)
    ch.send(pp.timeout(gid), sender=A[4])
    assert winner(dep, gid) == "challenger"
    assert ch.call(pp.task(task_id))[1] == 4  # Rejected
    # the challenger misses a move: the solver wins
    task_id, gid = _fresh_game(dep, honest_trace)
    solver_move(dep, gid, Solver(honest_trace, A[1]))
    ch.advance(window + 1)
    ch.send(pp.timeout(gid), sender=A[4])
    assert winner(dep, gid) == "solver"
    # challenges after the window are refused; finalize waits for it
    _expect("ChallengeWindowOpen", pp.finalize(task_id), A[1], ch)
    ch.advance(ch.call(pp.challengeWindow()) + 1)
    with pytest.raises(ChainError) as ei:
        ch.send(pp.challenge(task_id), sender=A[3], value=ch.call(pp.task(task_id))[9])
    assert ei.value.error == "ChallengeWindowClosed"
    ch.send(pp.finalize(task_id), sender=A[1])
    _expect("TaskNotSubmitted", pp.finalize(task_id), A[1], ch)
    _contract_holds_exactly(dep)


def test_two_challengers_each_play_their_own_game(dep, honest_trace):
    """Two honest challengers against one cheat: the first to win takes the solver's bond, the second gets its
    own bond back; every wei is accounted for."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    cheat = honest_trace.altered(60, 2)
    task_id, g1 = _fresh_game(dep, honest_trace, cheat)
    g2, _ = challenge(dep, task_id, A[3])
    bond = ch.call(pp.task(task_id))[9]
    c2_before = ch.call(pp.credit(A[3]))
    c1_before = ch.call(pp.credit(A[2]))
    play(dep, g1, Solver(cheat, A[1]), Challenger(honest_trace, A[2]))
    play(dep, g2, Solver(cheat, A[1]), Challenger(honest_trace, A[3]))
    assert winner(dep, g1) == winner(dep, g2) == "challenger"
    assert ch.call(pp.credit(A[2])) - c1_before == 2 * bond
    assert ch.call(pp.credit(A[3])) - c2_before == bond
    _contract_holds_exactly(dep)


def test_bad_submissions(dep, honest_trace):
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    task_id, _ = post_task(dep, honest_trace, FEE, A[0])
    bond = ch.call(pp.task(task_id))[9]
    t = honest_trace
    with pytest.raises(ChainError) as ei:
        ch.send(pp.submit(task_id, t.output_root, t.trace_root, t.output_proof()), sender=A[1], value=bond - 1)
    assert ei.value.error == "ValueMismatch"
    with pytest.raises(ChainError) as ei:
        ch.send(pp.submit(task_id, t.trees[3].root, t.trace_root, t.output_proof()), sender=A[1], value=bond)
    assert ei.value.error == "BadOutputProof"
    _expect("NotRequester", pp.cancel(task_id), A[1], ch)
    ch.send(pp.cancel(task_id), sender=A[0])
    _expect("TaskNotOpen", pp.cancel(task_id), A[0], ch)
    _contract_holds_exactly(dep)
