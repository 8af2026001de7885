"""The payout rule against the attacks of the referee issue (items 1, 4, 5, 7), on anvil with MobileNetV2-int8.

Every test counts every wei: each identity's net (balance change + gas it paid, after withdrawing all it is owed)
is asserted exactly, and the contract's solvency invariant (`tests/solvency.py`) after each test. B is the bond.

  * a cheating solver with k extra identities (sock puppets), in any order and any outcome of each sock game,
    ends at least B/2 down (`burned`); an honest challenger never loses wei and, when it plays, gains B/2 >= its
    gas; a lying challenger pays the honest solver B/2 >= the solver's gas;
  * a solver moving through a contract wallet (`contracts/testing/Forwarder.sol`) is still played to the end:
    the honest challenger reads the reveals from the events;
  * a `submit` or `challenge` replayed after a reorganization reverts (WrongTask, WrongResult); a copied submit
    wins the race but its copier, who cannot answer reveals, loses its bond;
  * a fee >= 2**128 wei reverts; an operator deeper than the declared maxTensorDepth voids the task.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from eth_account import Account
from web3.logs import DISCARD

from protocol.chain.connection import Chain, ChainError, fee_paid
from protocol.inference.game import (Deployment, challenge, play, post_task, read_game, read_task, send_as,
                                     solver_move, submit, submit_call, winner)
from protocol.inference.strategies import Challenger, LyingChallenger, Solver
from protocol.inference.types import Status
from tests.solvency import assert_solvent
from tests.test_ops_helpers import dev_key

FEE = 10**16  # wei


@pytest.fixture(scope="module")
def dep(anvil_url):
    return Deployment.deploy(Chain(anvil_url))


class Ledger:
    """Net wei each identity got from the protocol between `Ledger(...)` and `net()`: balance change plus the gas
    it paid (every transaction it sent in between, read from the blocks)."""

    def __init__(self, dep: Deployment, *addrs: str):
        self.dep, self.addrs = dep, addrs
        self.start = dep.chain.w3.eth.block_number + 1
        self.before = {a: dep.chain.balance(a) for a in addrs}
        self.held, self.burned = dep.chain.balance(dep.pinpoint.address), dep.chain.call(dep.pinpoint.functions.burned())

    def gas(self, addr: str) -> int:
        w3, total = self.dep.chain.w3, 0
        for b in range(self.start, w3.eth.block_number + 1):
            for tx in w3.eth.get_block(b, full_transactions=True)["transactions"]:
                if tx["from"] == addr:
                    total += fee_paid(w3.eth.get_transaction_receipt(tx["hash"]))
        return total

    def net(self, addr: str) -> int:
        return self.dep.chain.balance(addr) - self.before[addr] + self.gas(addr)

    def burned_since(self) -> int:
        """Wei burned since; asserts the contract's balance grew by exactly that (all else was paid out)."""
        d = self.dep.chain.call(self.dep.pinpoint.functions.burned()) - self.burned
        assert self.dep.chain.balance(self.dep.pinpoint.address) - self.held == d
        return d


def _withdraw_all(dep: Deployment, *addrs: str) -> None:
    pp = dep.pinpoint.functions
    for a in addrs:
        if dep.chain.call(pp.credit(a)):
            dep.chain.send(pp.withdraw(), sender=a)


def _reclaim_all(dep: Deployment, task_id: int) -> None:
    pp = dep.pinpoint.functions
    for gid in dep.chain.call(pp.queue(task_id)):
        if read_game(dep, gid).queued:
            dep.chain.send(pp.reclaim(gid), sender=dep.chain.accounts[9])


def _expect(error: str, fn, sender: str, dep: Deployment, value: int = 0):
    with pytest.raises(ChainError) as ei:
        dep.chain.send(fn, sender=sender, value=value)
    assert ei.value.error == error, str(ei.value)


def _timeout(dep: Deployment, gid: int) -> None:
    dep.chain.advance(dep.chain.call(dep.pinpoint.functions.moveWindow()) + 1)
    dep.chain.send(dep.pinpoint.functions.timeout(gid), sender=dep.chain.accounts[9])


def _setup(dep, honest_trace, solver_trace, solver):
    task_id, _ = post_task(dep, honest_trace, FEE, dep.chain.accounts[0])
    submit(dep, task_id, solver_trace, solver)
    return task_id, read_task(dep, task_id).bond


# ---------------------------------------------------------------------------------------------------- item 1

@pytest.mark.parametrize("seed", range(6))
def test_self_challenging_cheater_loses_half_its_bond(dep, honest_trace, seed):
    """A cheating solver with k = 1..3 sock puppets, the honest challenger anywhere in the queue, each sock game
    won or lost on purpose (by a timeout of the side that throws it), and the cheater answering the honest game
    with its trace or not at all. Net: cheater <= -B/2 (exactly -B/2 per sock game lost, -B/2 if a sock refutes,
    -B if the honest challenger does); honest challenger: +B/2 if it plays, 0 if its bond is reclaimed; requester
    0 (fee refunded); burned = everything the cheater lost."""
    rng = random.Random(seed)
    A = dep.chain.accounts
    requester, cheater, honest = A[0], A[1], A[2]
    k = rng.randint(1, 3)
    socks = A[3:3 + k]
    order = socks[:]
    order.insert(rng.randint(0, k), honest)
    throws = {s: rng.random() < 0.5 for s in socks}  # True: the sock loses on purpose
    cheat = honest_trace.altered(rng.choice([1, 20, 33, 60]), rng.randrange(1000))
    led = Ledger(dep, requester, cheater, honest, *socks)
    task_id, bond = _setup(dep, honest_trace, cheat, cheater)
    games = {who: challenge(dep, task_id, who)[0] for who in order}
    for who in order:
        gid = games[who]
        g = read_game(dep, gid)
        if not g.active:
            break  # the result was refuted by an earlier game: the rest are reclaimed
        if who == honest:
            if rng.random() < 0.5:
                play(dep, gid, Solver(cheat, cheater), Challenger(honest_trace, honest))
            else:
                _timeout(dep, gid)  # the cheater does not answer
            assert winner(dep, gid) == "challenger"
        elif throws[who]:
            if rng.random() < 0.5:  # the sock plays to the end and disputes a correct element of the cheat
                play(dep, gid, Solver(cheat, cheater), LyingChallenger(cheat, who, rng.randrange(60), 7))
            else:  # the sock walks away after the solver's first reveal
                solver_move(dep, gid, Solver(cheat, cheater))
                _timeout(dep, gid)
            assert winner(dep, gid) == "solver"
        else:
            _timeout(dep, gid)  # the cheater lets its sock win
            assert winner(dep, gid) == "challenger"
    assert read_task(dep, task_id).status == Status.REJECTED
    _reclaim_all(dep, task_id)
    _withdraw_all(dep, requester, cheater, honest, *socks)
    played = [w for w in order[:order.index(next(w for w in order if winner(dep, games[w]) == "challenger")) + 1]]
    lost_socks = sum(1 for w in played if w != honest and throws[w])
    refuted_by_sock = played[-1] != honest
    cheater_net = led.net(cheater) + sum(led.net(s) for s in socks)
    expected = -(bond // 2) * lost_socks - (bond // 2 if refuted_by_sock else bond)
    assert cheater_net == expected and cheater_net <= -(bond // 2)
    assert led.net(honest) == (0 if refuted_by_sock or honest not in played else bond // 2)
    assert led.net(requester) == 0
    assert led.burned_since() == -cheater_net - led.net(honest)
    assert_solvent(dep)


def test_lying_challenger_pays_the_solvers_gas(dep, honest_trace):
    """An honest solver against a challenger disputing a correct element: the liar loses B, the solver gets B/2,
    more than the gas of its reveals; the other B/2 is burned; the solver is then paid fee + bond."""
    A = dep.chain.accounts
    led = Ledger(dep, A[0], A[1], A[2])
    task_id, bond = _setup(dep, honest_trace, honest_trace, A[1])
    gid, _ = challenge(dep, task_id, A[2])
    moves = play(dep, gid, Solver(honest_trace, A[1]), LyingChallenger(honest_trace, A[2], 40, 123))
    assert winner(dep, gid) == "solver"
    solver_gas = sum(m.gas for m in moves if m.who == "solver") * dep.chain.call(dep.pinpoint.functions.bondGasPrice())
    assert solver_gas <= bond // 2
    dep.chain.advance(dep.chain.call(dep.pinpoint.functions.challengeWindow()) + 1)
    dep.chain.send(dep.pinpoint.functions.finalize(task_id), sender=A[1])
    _withdraw_all(dep, A[0], A[1], A[2])
    assert (led.net(A[0]), led.net(A[1]), led.net(A[2])) == (-FEE, FEE + bond // 2, -bond)
    assert led.burned_since() == bond - bond // 2
    assert_solvent(dep)


def test_finalize_waits_for_queued_games(dep, honest_trace):
    """A queued game keeps the result open past the window; when the liar ahead of it loses, it starts with a
    fresh deadline; finalize only after it too is decided (the solver then holds fee + bond + 2 * B/2)."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    task_id, bond = _setup(dep, honest_trace, honest_trace, A[1])
    ch.advance(ch.call(pp.challengeWindow()) - 20)
    g1, _ = challenge(dep, task_id, A[2])
    g2, _ = challenge(dep, task_id, A[3])
    ch.advance(30)
    _expect("GamesPending", pp.finalize(task_id), A[1], dep)
    play(dep, g1, Solver(honest_trace, A[1]), LyingChallenger(honest_trace, A[2], 3, 3))
    g = read_game(dep, g2)
    assert g.active and g.deadline == ch.now() + ch.call(pp.moveWindow())
    _expect("GamesPending", pp.finalize(task_id), A[1], dep)
    play(dep, g2, Solver(honest_trace, A[1]), LyingChallenger(honest_trace, A[3], 50, 9))
    assert winner(dep, g2) == "solver"
    ch.send(pp.finalize(task_id), sender=A[1])
    assert read_task(dep, task_id).status == Status.FINALIZED
    _withdraw_all(dep, A[0], A[1], A[2], A[3])
    assert_solvent(dep)


# ---------------------------------------------------------------------------------------------------- item 4

def test_solver_through_a_forwarder_is_played_to_the_end(dep, honest_trace):
    """A cheating solver that submits and reveals through a contract wallet: no reveal is in any transaction's
    input as a call to Pinpoint, yet the honest challenger reads every reveal from the events and wins."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    fwd, _ = ch.deploy("Forwarder", sender=A[1])
    cheat = honest_trace.altered(33, 71117)
    led = Ledger(dep, A[0], A[1], A[2])
    task_id, _ = post_task(dep, honest_trace, FEE, A[0])
    bond = read_task(dep, task_id).bond
    send_as(dep, submit_call(dep, task_id, cheat), A[1], value=bond, via=fwd)
    assert read_task(dep, task_id).solver == fwd.address
    gid, _ = challenge(dep, task_id, A[2])
    moves = play(dep, gid, Solver(cheat, A[1], via=fwd), Challenger(honest_trace, A[2]))
    assert winner(dep, gid) == "challenger" and any(m.what.startswith("one-step") for m in moves)
    for m in moves:
        if m.who == "solver":
            assert ch.w3.eth.get_transaction(m.tx)["to"] == fwd.address
    _withdraw_all(dep, A[0], A[2])
    assert (led.net(A[0]), led.net(A[1]), led.net(A[2])) == (0, -bond, bond // 2)
    assert ch.balance(fwd.address) == 0 and ch.call(pp.credit(fwd.address)) == 0
    assert_solvent(dep, [fwd.address])


# ---------------------------------------------------------------------------------------------------- item 5

def _signed(chain: Chain, key: str, fn, value: int) -> bytes:
    acct = Account.from_key(key)
    w3 = chain.w3
    tx = fn.build_transaction({"from": acct.address, "value": value, "gas": 1_000_000, "chainId": w3.eth.chain_id,
                               "nonce": w3.eth.get_transaction_count(acct.address),
                               "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9})
    return acct.sign_transaction(tx).raw_transaction


def _replay(dep: Deployment, raw: bytes, fn, sender: str, value: int) -> str:
    """Broadcast ``raw`` again; it must be mined and revert. Returns the custom error (from an eth_call)."""
    w3 = dep.chain.w3
    h = w3.eth.send_raw_transaction(raw)
    assert w3.eth.wait_for_transaction_receipt(h)["status"] == 0
    try:
        fn.call({"from": sender, "value": value})
    except Exception as e:  # noqa: BLE001 - decoded below
        return Chain._revert(e).error
    raise AssertionError("the replayed call succeeds now")


def test_replayed_submit_lands_nowhere_else(dep, honest_trace, anvil_url):
    """The solver's signed submit of task i is mined; a reorganization drops it and another requester's task with
    another input takes id i; the same signed transaction, broadcast again, reverts (WrongTask)."""
    w3, pp, A = dep.chain.w3, dep.pinpoint.functions, dep.chain.accounts
    key = dev_key(6)
    solver = Account.from_key(key).address
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    task_id, _ = post_task(dep, honest_trace, FEE, A[0])
    bond = read_task(dep, task_id).bond
    fn = submit_call(dep, task_id, honest_trace)
    raw = _signed(dep.chain, key, fn, bond)
    assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))["status"] == 1
    assert read_task(dep, task_id).solver == solver
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True  # the reorganization
    g = honest_trace.graph
    other = dep.chain.send(pp.postTask(honest_trace.ops_tree.root, g.n_ops, b"\x42" * 32,
                                       honest_trace.max_tensor_depth()), sender=A[3], value=FEE)
    assert int(dep.pinpoint.events.TaskPosted().process_receipt(other.receipt)[0]["args"]["taskId"]) == task_id
    assert _replay(dep, raw, fn, solver, bond) == "WrongTask"
    assert read_task(dep, task_id).status == Status.OPEN
    dep.chain.send(pp.cancel(task_id), sender=A[3])
    _withdraw_all(dep, A[3])
    assert_solvent(dep)


def test_replayed_challenge_lands_on_no_other_result(dep, honest_trace):
    """A challenge of a wrong result is mined; a reorganization drops the wrong result and its challenge, and the
    honest result is submitted instead; the same signed challenge, broadcast again, reverts (WrongResult)."""
    w3, pp, A = dep.chain.w3, dep.pinpoint.functions, dep.chain.accounts
    key = dev_key(7)
    challenger = Account.from_key(key).address
    task_id, _ = post_task(dep, honest_trace, FEE, A[0])
    bond = read_task(dep, task_id).bond
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    cheat = honest_trace.altered(20, 5)
    submit(dep, task_id, cheat, A[1])
    fn = pp.challenge(task_id, cheat.trace_root)
    raw = _signed(dep.chain, key, fn, bond)
    assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))["status"] == 1
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True
    submit(dep, task_id, honest_trace, A[2])
    assert _replay(dep, raw, fn, challenger, bond) == "WrongResult"
    assert read_task(dep, task_id).open_games == 0
    dep.chain.advance(dep.chain.call(pp.challengeWindow()) + 1)
    dep.chain.send(pp.finalize(task_id), sender=A[2])
    _withdraw_all(dep, A[2])
    assert_solvent(dep)


def test_copied_submit_first_wins_and_the_copier_cannot_defend(dep, honest_trace):
    """First submission wins: a copier front-runs the honest solver's submit with the same roots. The honest
    solver's own submit then reverts (TaskNotOpen); it challenges the copied result, the copier (no trace) cannot
    reveal, times out and loses B: B/2 to the honest solver, B/2 burned, the fee back to the requester."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    requester, honest, copier = A[0], A[1], A[5]
    led = Ledger(dep, requester, honest, copier)
    task_id, _ = post_task(dep, honest_trace, FEE, requester)
    bond = read_task(dep, task_id).bond
    ch.send(submit_call(dep, task_id, honest_trace), sender=copier, value=bond)  # copied from the mempool
    _expect("TaskNotOpen", submit_call(dep, task_id, honest_trace), honest, dep, value=bond)
    gid, _ = challenge(dep, task_id, honest, honest_trace.trace_root)
    _timeout(dep, gid)
    assert winner(dep, gid) == "challenger"
    _withdraw_all(dep, requester, honest, copier)
    assert (led.net(requester), led.net(honest), led.net(copier)) == (0, bond // 2, -bond)
    assert led.burned_since() == bond - bond // 2
    assert_solvent(dep)


# ---------------------------------------------------------------------------------------------------- item 7

def test_fee_of_2_128_wei_reverts(dep, honest_trace):
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    rich = A[8]
    old = ch.balance(rich)
    ch.w3.provider.make_request("anvil_setBalance", [rich, hex(2**130)])
    g = honest_trace.graph
    fn = pp.postTask(honest_trace.ops_tree.root, g.n_ops, honest_trace.input_root, honest_trace.max_tensor_depth())
    try:
        _expect("FeeTooLarge", fn, rich, dep, value=2**128)
        tx = ch.send(fn, sender=rich, value=2**127 + 12345)  # a fee below 2**128 is stored exactly (anvil refuses
        # to send 2**128 - 1)
        tid = int(dep.pinpoint.events.TaskPosted().process_receipt(tx.receipt)[0]["args"]["taskId"])
        assert read_task(dep, tid).fee == 2**127 + 12345
        ch.send(pp.cancel(tid), sender=rich)
        ch.send(pp.withdraw(), sender=rich)
    finally:
        ch.w3.provider.make_request("anvil_setBalance", [rich, hex(old)])
    assert_solvent(dep)


def test_under_declared_tensor_depth_voids_the_task(dep, honest_trace):
    """The requester declares maxTensorDepth one less than the depth of an operator's output (bonds too small).
    The game that reaches that operator voids the task: the solver, the active and the queued challenger get
    their bonds back, the requester's fee is burned."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    depths = [t.depth for t in honest_trace.trees[1:]]
    j = depths.index(max(depths))
    led = Ledger(dep, A[0], A[1], A[2], A[3])
    g = honest_trace.graph
    tx = ch.send(pp.postTask(honest_trace.ops_tree.root, g.n_ops, honest_trace.input_root, max(depths) - 1),
                 sender=A[0], value=FEE)
    task_id = int(dep.pinpoint.events.TaskPosted().process_receipt(tx.receipt)[0]["args"]["taskId"])
    cheat = honest_trace.altered(j, 17)
    submit(dep, task_id, cheat, A[1])
    g1, _ = challenge(dep, task_id, A[2])
    g2, _ = challenge(dep, task_id, A[3])
    play(dep, g1, Solver(cheat, A[1]), Challenger(honest_trace, A[2]))
    assert winner(dep, g1) == "cancelled" and read_task(dep, task_id).status == Status.VOIDED
    assert read_game(dep, g1).op_index == 0  # phase 2 never started
    _expect("TaskNotSubmitted", pp.finalize(task_id), A[1], dep)
    ch.send(pp.reclaim(g2), sender=A[3])
    _withdraw_all(dep, A[0], A[1], A[2], A[3])
    assert [led.net(a) for a in A[:4]] == [-FEE, 0, 0, 0]
    assert led.burned_since() == FEE
    assert_solvent(dep)


# ---------------------------------------------------------------------------------------------------- pushed payouts

def _gas_bound(name: str) -> int:
    text = (Path(__file__).resolve().parents[1] / "contracts/shared/Gas.sol").read_text()
    return int(re.search(rf"constant {name} = ([\d_]+);", text).group(1).replace("_", ""))


def _pushed(dep: Deployment, tx_hash) -> dict[str, int]:
    """wei the contract pushed per payee in one transaction (its `Withdrawn` events)."""
    receipt = dep.chain.w3.eth.get_transaction_receipt(tx_hash)
    out: dict[str, int] = {}
    for ev in dep.pinpoint.events.Withdrawn().process_receipt(receipt, errors=DISCARD):
        out[ev["args"]["to"]] = out.get(ev["args"]["to"], 0) + int(ev["args"]["amount"])
    return out


def test_payouts_are_pushed_and_a_griefing_payee_only_delays_its_own(dep, honest_trace):
    """A game's payouts are pushed by its last move with the call stipend only (`Payments._payOrCredit`). Attack:
    the requester is a wallet that burns every gas it is sent and fails, to make the honest challenger's final
    move dearer or revert. The final move still succeeds within Gas.STEP; the challenger (an account) is paid
    B + B/2 in that move; the requester's fee is credited instead of pushed, and it can withdraw it once it takes
    ether again. Every wei is accounted for."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    fwd, _ = ch.deploy("Forwarder", sender=A[0])
    ch.send(fwd.functions.setRefuse(True), sender=A[0])
    cheat = honest_trace.altered(40, 555)
    led = Ledger(dep, A[1], A[2])
    g = honest_trace.graph
    post = pp.postTask(honest_trace.ops_tree.root, g.n_ops, honest_trace.input_root, honest_trace.max_tensor_depth())
    tx = send_as(dep, post, A[0], value=FEE, via=fwd)
    task_id = int(dep.pinpoint.events.TaskPosted().process_receipt(tx.receipt, errors=DISCARD)[0]["args"]["taskId"])
    assert read_task(dep, task_id).requester == fwd.address
    bond = read_task(dep, task_id).bond
    credit_before = ch.call(pp.credit(A[2]))
    submit_tx = dep.chain.send(submit_call(dep, task_id, cheat), sender=A[1], value=bond)
    gid, _ = challenge(dep, task_id, A[2])
    moves = play(dep, gid, Solver(cheat, A[1]), Challenger(honest_trace, A[2]))
    assert winner(dep, gid) == "challenger" and submit_tx.gas > 0
    last = moves[-1]
    assert last.who == "challenger" and last.gas <= _gas_bound("STEP"), last
    assert _pushed(dep, last.tx) == {A[2]: bond + bond // 2}
    assert ch.call(pp.credit(A[2])) == credit_before
    assert ch.call(pp.credit(fwd.address)) == FEE and ch.balance(fwd.address) == 0
    assert (led.net(A[1]), led.net(A[2])) == (-bond, bond // 2)
    assert_solvent(dep, [fwd.address])
    with pytest.raises(ChainError):  # it still refuses: only its own withdrawal fails
        send_as(dep, pp.withdraw(), A[0], via=fwd)
    ch.send(fwd.functions.setRefuse(False), sender=A[0])
    send_as(dep, pp.withdraw(), A[0], via=fwd)
    assert ch.call(pp.credit(fwd.address)) == 0 and ch.balance(fwd.address) == FEE
    assert_solvent(dep, [fwd.address])


def test_griefing_solver_wallet_is_credited_its_half(dep, honest_trace):
    """Attack from the other side: an honest solver's payout goes to a wallet that burns the stipend and fails; the
    lying challenger's losing final move (which pushes it) still fits Gas.STEP and the solver's B/2 is credited,
    then paid with its bond and fee at `finalize`."""
    ch, pp, A = dep.chain, dep.pinpoint.functions, dep.chain.accounts
    fwd, _ = ch.deploy("Forwarder", sender=A[1])
    ch.send(fwd.functions.setRefuse(True), sender=A[1])
    task_id, _ = post_task(dep, honest_trace, FEE, A[0])
    bond = read_task(dep, task_id).bond
    send_as(dep, submit_call(dep, task_id, honest_trace), A[1], value=bond, via=fwd)
    gid, _ = challenge(dep, task_id, A[3])
    moves = play(dep, gid, Solver(honest_trace, A[1], via=fwd), LyingChallenger(honest_trace, A[3], 20, 77))
    assert winner(dep, gid) == "solver"
    assert moves[-1].who == "challenger" and moves[-1].gas <= _gas_bound("STEP")
    assert _pushed(dep, moves[-1].tx) == {} and ch.call(pp.credit(fwd.address)) == bond // 2
    ch.advance(ch.call(pp.challengeWindow()) + 1)
    ch.send(pp.finalize(task_id), sender=A[5])
    assert ch.call(pp.credit(fwd.address)) == bond // 2 + bond + FEE
    assert_solvent(dep, [fwd.address])
    ch.send(fwd.functions.setRefuse(False), sender=A[1])
    send_as(dep, pp.withdraw(), A[1], via=fwd)
    assert ch.balance(fwd.address) == bond // 2 + bond + FEE
    assert_solvent(dep, [fwd.address])
