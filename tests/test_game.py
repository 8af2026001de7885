"""Full pinpoint games on the real MobileNetV2-int8 against anvil, and every way a move can be rejected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from web3.logs import DISCARD

from offchain.inference.graph import Kind
from protocol.chain.connection import Chain, ChainError
from offchain.inference.merkle import subtree_siblings
from protocol.inference.events import latest_reveal
from protocol.inference.game import (Deployment, challenge, challenger_move, play, post_task, read_game, read_task,
                                     solver_move, solver_trace_proofs, submit, winner)
from protocol.inference.strategies import Challenger, LyingChallenger, Solver
from protocol.inference.scenarios import run_scenario
from tests.solvency import assert_solvent

FEE = 10**16


@pytest.fixture(scope="module")
def dep(anvil_url):
    return Deployment.deploy(Chain(anvil_url))


def _contract_holds_exactly(dep: Deployment) -> None:
    """INVARIANT: the contract's balance is what it owes: credits, burned wei, the escrow of live tasks and games."""
    assert_solvent(dep)


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
    # the challenger cannot move first; a forged reveal is rejected, from the solver or from anyone (phase 1 and
    # 2 reveals are open to anyone: only the children the solver committed to hash to the node)
    _expect("NotYourTurn", pp.pick(gid, 0, kids[0], [kids[1]] * st.m), A[2], ch)
    _expect("RevealMismatch", pp.reveal(gid, [kids[1]] + kids[1:]), A[4], ch)
    _expect("RevealMismatch", pp.reveal(gid, [kids[1]] + kids[1:]), A[1], ch)
    _expect("GameNotInProgress", pp.reveal(gid + 1, kids), A[1], ch)  # no such game of the task
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
    challenger_move(dep, gid, ch_)
    mv = solver_move(dep, gid, solver)
    st = read_game(dep, gid)
    revealed = latest_reveal(dep, gid)
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
    while True:
        st = read_game(dep, gid)
        if st.phase == 2 and st.turn == 1 and st.height <= st.m:
            break
        if st.turn == 0:
            solver_move(dep, gid, solver)
        else:
            challenger_move(dep, gid, chal)
    revealed = latest_reveal(dep, gid)
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
    assert read_task(dep, task_id).status == 4  # Rejected
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
        challenge(dep, task_id, A[3])
    assert ei.value.error == "ChallengeWindowClosed"
    ch.send(pp.finalize(task_id), sender=A[1])
    _expect("TaskNotSubmitted", pp.finalize(task_id), A[1], ch)
    _contract_holds_exactly(dep)


def test_two_challengers_play_one_after_the_other(dep, honest_trace):
    """Two honest challengers against one cheat: the second game waits in the queue (no deadline, no move
    accepted); the first refutes the result and takes its bond + half the solver's (the other half burned); the
    second reclaims its whole bond. Every wei is accounted for."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    cheat = honest_trace.altered(60, 2)
    task_id, g1 = _fresh_game(dep, honest_trace, cheat)
    g2, _ = challenge(dep, task_id, A[3])
    bond = read_task(dep, task_id).bond
    assert read_game(dep, g2).queued and read_game(dep, g2).deadline == 0
    assert list(ch.call(pp.queue(task_id))) == [g1, g2]
    _expect("GameNotInProgress", pp.reveal(g2, honest_trace.children(1, 0, 7, 0, 4)), A[1], ch)
    _expect("GameNotInProgress", pp.timeout(g2), A[4], ch)
    _expect("NotReclaimable", pp.reclaim(g2), A[3], ch)
    c1_before, c2_before, burned = ch.call(pp.credit(A[2])), ch.call(pp.credit(A[3])), ch.call(pp.burned())
    moves = play(dep, g1, Solver(cheat, A[1]), Challenger(honest_trace, A[2]))
    assert winner(dep, g1) == "challenger"
    pushed = dep.pinpoint.events.Withdrawn().process_receipt(ch.w3.eth.get_transaction_receipt(moves[-1].tx),
                                                           errors=DISCARD)
    assert {(e["args"]["to"], e["args"]["amount"]) for e in pushed} == {(A[2], bond + bond // 2), (A[0], FEE)}
    assert ch.call(pp.credit(A[2])) == c1_before  # pushed by the last move, not credited
    assert ch.call(pp.burned()) - burned == bond - bond // 2
    _expect("GameNotInProgress", pp.reveal(g2, honest_trace.children(1, 0, 7, 0, 4)), A[1], ch)
    ch.send(pp.reclaim(g2), sender=A[4])
    assert winner(dep, g2) == "cancelled"
    assert ch.call(pp.credit(A[3])) - c2_before == bond
    _expect("NotReclaimable", pp.reclaim(g2), A[3], ch)
    _expect("NotReclaimable", pp.reclaim(g1), A[2], ch)
    _contract_holds_exactly(dep)


def test_shared_arena_and_open_reveals(dep, honest_trace):
    """The games of a task share one arena (`Pinpoint.Arena`): a move addressed to the task's other game, or sent
    by another game's challenger, is refused; the next game starts afresh at the trace root. A reveal of phase 1 or
    2 may come from anyone, but only the children the solver committed to hash to the node; a stranger still
    cannot pick. Every wei is accounted for."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    task_id, g1 = _fresh_game(dep, honest_trace)  # an honest solver, two lying challengers
    g2, _ = challenge(dep, task_id, A[3])
    t = read_task(dep, task_id)
    assert (g1 >> 32, g1 & 0xFFFFFFFF, g2 & 0xFFFFFFFF) == (task_id, 0, 1)
    st = read_game(dep, g1)
    kids = honest_trace.children(1, 0, st.height, 0, st.m)
    _expect("GameNotInProgress", pp.reveal(g2, kids), A[1], ch)  # g2 is queued: the arena is g1's
    ch.send(pp.reveal(g1, kids), sender=A[5])  # a stranger sends the solver's committed children
    st = read_game(dep, g1)
    assert st.turn.name == "CHALLENGER" and latest_reveal(dep, g1) == kids
    _expect("NotYourTurn", pp.pick(g1, 0, kids[0], subtree_siblings(kids, 0)), A[5], ch)  # nor pick for anyone
    _expect("NotYourTurn", pp.pick(g1, 0, kids[0], subtree_siblings(kids, 0)), A[3], ch)  # g2's challenger
    _expect("GameNotInProgress", pp.pick(g2, 0, kids[0], subtree_siblings(kids, 0)), A[3], ch)
    liar1 = LyingChallenger(honest_trace, A[2], 5, 3)
    play(dep, g1, Solver(honest_trace, A[1]), liar1)
    assert winner(dep, g1) == "solver"
    g = read_game(dep, g2)  # the second game starts at the trace root, in the same arena
    assert g.active and (g.phase, g.height, g.node_index, g.node) == (1, t.trace_depth, 0, t.trace_root)
    assert read_game(dep, g1).winner == "solver"
    _expect("GameNotInProgress", pp.reveal(g1, kids), A[1], ch)  # the ended game's id no longer moves
    _expect("GameNotInProgress", pp.timeout(g1), A[4], ch)
    ch.send(pp.reveal(g2, kids), sender=A[1])
    _expect("NotYourTurn", pp.pick(g2, 0, kids[0], subtree_siblings(kids, 0)), A[2], ch)  # g1's challenger
    play(dep, g2, Solver(honest_trace, A[1]), LyingChallenger(honest_trace, A[3], 9, 1))
    assert winner(dep, g2) == "solver"
    _contract_holds_exactly(dep)


def _gas_bounds() -> dict[str, int]:
    text = (Path(__file__).resolve().parents[1] / "contracts/shared/Gas.sol").read_text()
    return {k: int(v.replace("_", "")) for k, v in re.findall(r"constant (\w+) = ([\d_]+);", text)}


def test_gas_bounds_and_half_bond_cover_the_winner(dep, honest_trace):
    """Each move of a full game on MobileNetV2 stays within its `Gas.sol` bound, and half the bond (what the loser
    pays the winner) covers the honest challenger's whole gas at the bond gas price."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    bound = _gas_bounds()
    cheat = honest_trace.altered(33, 71117)
    task_id, _ = post_task(dep, honest_trace, FEE, A[0])
    submit(dep, task_id, cheat, A[1])
    gid, tx = challenge(dep, task_id, A[2])
    g2, tx2 = challenge(dep, task_id, A[3])  # a queued challenge costs less than the first
    assert max(tx.gas, tx2.gas) <= bound["CHALLENGE"], (tx.gas, tx2.gas)
    moves = play(dep, gid, Solver(cheat, A[1]), Challenger(honest_trace, A[2]))
    kind = {"reveal": "REVEAL", "pick": "PICK", "select": "SELECT", "one-step": "STEP", "phase": "STEP"}
    for mv in moves:
        k = kind[mv.what.split()[0].rstrip(":")]
        assert mv.gas <= bound[k], (mv.what, mv.gas, bound[k])
    # the last move pushed the challenger's B + B/2 (`Payments._payOrCredit`): no withdrawal to pay for
    pushed = dep.pinpoint.events.Withdrawn().process_receipt(ch.w3.eth.get_transaction_receipt(moves[-1].tx),
                                                           errors=DISCARD)
    bond = read_task(dep, task_id).bond
    assert [(e["args"]["to"], e["args"]["amount"]) for e in pushed][0] == (A[2], bond + bond // 2)
    used = tx.gas + sum(m.gas for m in moves if m.who == "challenger")
    assert used * ch.call(pp.bondGasPrice()) <= bond // 2
    ch.send(pp.reclaim(g2), sender=A[3])
    _contract_holds_exactly(dep)


def test_bad_submissions(dep, honest_trace):
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    task_id, _ = post_task(dep, honest_trace, FEE, A[0])
    bond = read_task(dep, task_id).bond
    t = honest_trace
    roots = (t.ops_tree.root, t.input_root)
    with pytest.raises(ChainError) as ei:
        ch.send(pp.submit(task_id, *roots, t.output_root, t.trace_root, t.output_proof()), sender=A[1],
                value=bond - 1)
    assert ei.value.error == "ValueMismatch"
    with pytest.raises(ChainError) as ei:
        ch.send(pp.submit(task_id, *roots, t.trees[3].root, t.trace_root, t.output_proof()), sender=A[1], value=bond)
    assert ei.value.error == "BadOutputProof"
    # while Open, the traceRoot slot holds keccak256(abi.encode(opsRoot, inputRoot)), shown as zero; the roots in
    # the other order (or that hash given as either root) do not pass
    assert read_task(dep, task_id).trace_root == bytes(32)
    for wrong in ((t.ops_tree.root, t.trees[3].root), (t.trees[3].root, t.input_root), roots[::-1]):
        with pytest.raises(ChainError) as ei:
            ch.send(pp.submit(task_id, *wrong, t.output_root, t.trace_root, t.output_proof()), sender=A[1],
                    value=bond)
        assert ei.value.error == "WrongTask"
    _expect("NotRequester", pp.cancel(task_id), A[1], ch)
    ch.send(pp.cancel(task_id), sender=A[0])
    _expect("TaskNotOpen", pp.cancel(task_id), A[0], ch)
    _contract_holds_exactly(dep)
