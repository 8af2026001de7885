"""The two demonstration scenarios of verifiable inference, on any chain.

Scenario 1: a cheating solver (one element of one intermediate tensor altered, later operators recomputed from
it) against an honest challenger. Scenario 2: an honest solver against a lying challenger who disputes a correct
element. Each scenario posts its own task, plays the game to its end, settles and withdraws, and accounts for
every wei: each party's balance change equals what the contract paid it minus what it paid, minus its gas, and the
contract keeps exactly what it burned (half the loser's bond).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from offchain.common.errors import PinpointError
from offchain.inference.pipeline import run_files
from offchain.inference.trace import Trace

from web3.logs import DISCARD

from protocol.chain.connection import Chain, fee_paid
from .game import Deployment, challenge, play, post_task, submit, task_bond, winner
from .strategies import Challenger, LyingChallenger, Solver

FEE = 10**16  # wei


class ScenarioError(PinpointError, ValueError):
    """A scenario cannot be set up as asked (e.g. the operator to cheat at does not exist)."""


def run_scenario(dep: Deployment, name: str, honest: Trace, solver_trace: Trace, challenger: Challenger,
                 requester: str, solver_addr: str, log: Callable | None = None, solver: Solver | None = None) -> dict:
    """Post, submit, challenge, play, settle and withdraw; return the scenario record (JSON-ready): winner,
    rounds, gas per move and totals, balances before and after (wei, as strings) and whether every wei is
    accounted for. ``honest`` gives the task (model and input), ``solver_trace`` what the solver commits, ``solver``
    its strategy (default `Solver` on ``solver_trace`` from ``solver_addr``). Raises
    ChainError if a transaction is rejected."""
    ch = dep.chain
    parties = {"requester": requester, "solver": solver_addr, "challenger": challenger.address}
    before = {k: ch.balance(a) for k, a in parties.items()}
    pp = dep.pinpoint.functions
    held_before, burned_before = ch.balance(dep.pinpoint.address), int(ch.call(pp.burned()))
    spent = {k: 0 for k in parties}
    pushed = {k: 0 for k in parties}  # wei the contract paid straight to a party at the end of the game
    by_address = {a: k for k, a in parties.items()}
    moves = []

    def paid_out(receipt):
        for ev in dep.pinpoint.events.Withdrawn().process_receipt(receipt, errors=DISCARD):
            if ev["args"]["to"] in by_address:
                pushed[by_address[ev["args"]["to"]]] += int(ev["args"]["amount"])

    def record(who, what, tx):
        spent[who] += fee_paid(tx.receipt)
        paid_out(tx.receipt)
        moves.append({"who": who, "what": what, "gas": tx.gas})
        if log:
            log(f"  [bold]{who:>10}[/]  {what:<66} {tx.gas:>9,} gas")

    if log:
        log(f"\n[bold underline]{name}[/]")
    task_id, tx = post_task(dep, honest, FEE, requester)
    record("requester", f"post task {task_id} (fee {FEE} wei)", tx)
    bond = task_bond(dep, task_id)
    tx = submit(dep, task_id, solver_trace, solver_addr)
    record("solver", f"submit result (bond {bond} wei)", tx)
    game_id, tx = challenge(dep, task_id, challenger.address)
    record("challenger", f"challenge -> game {game_id}", tx)
    for mv in play(dep, game_id, solver or Solver(solver_trace, solver_addr), challenger):
        receipt = ch.w3.eth.get_transaction_receipt(mv.tx)
        spent[mv.who] += fee_paid(receipt)
        paid_out(receipt)  # the last move pushes the payouts (`Payments._payOrCredit`)
        moves.append({"who": mv.who, "what": mv.what, "gas": mv.gas})
        if log:
            log(f"  [bold]{mv.who:>10}[/]  {mv.what:<66} {mv.gas:>9,} gas")
    w = winner(dep, game_id)
    if w == "solver":
        ch.advance(int(ch.call(pp.challengeWindow())) + 1)
        record("solver", "finalize after the challenge window", ch.send(pp.finalize(task_id), sender=solver_addr))
    credits = {k: int(ch.call(pp.credit(a))) for k, a in parties.items()}
    for k, a in parties.items():
        if credits[k]:
            pushed[k] -= credits[k]  # the withdrawal's Withdrawn event is counted as credits[k] below
            record(k, f"withdraw {credits[k]} wei", ch.send(pp.withdraw(), sender=a))
    after = {k: ch.balance(a) for k, a in parties.items()}
    # every wei: balance change = paid by the contract (pushed + credit withdrawn) - value sent - gas paid
    paid = {k: pushed[k] + credits[k] for k in parties}
    sent = {"requester": FEE, "solver": bond, "challenger": bond}
    burned = int(ch.call(pp.burned())) - burned_before
    accounted = (all(after[k] - before[k] == paid[k] - sent[k] - spent[k] for k in parties)
                 and ch.balance(dep.pinpoint.address) - held_before == burned == sum(sent.values()) - sum(
                     paid.values()))
    game_moves = [m for m in moves if m["what"].startswith(("reveal", "pick", "select", "one-step", "phase 3"))]
    rec = {
        "name": name,
        "winner": w,
        "rounds": sum(1 for m in game_moves if m["who"] == "solver"),
        "gas_total": sum(m["gas"] for m in moves),
        "gas_game": sum(m["gas"] for m in game_moves) + moves[2]["gas"],
        "moves": moves,
        "balances_before": {k: str(v) for k, v in before.items()},
        "balances_after": {k: str(v) for k, v in after.items()},
        "paid_by_contract": {k: str(v) for k, v in paid.items()},
        "burned": str(burned),
        "every_wei_accounted": accounted,
        "task_id": task_id,
        "game_id": game_id,
    }
    if log:
        log(f"  winner: [bold]{w}[/]   rounds: {rec['rounds']}   gas, all transactions: {rec['gas_total']:,}   "
            f"gas, the dispute (challenge to one-step): {rec['gas_game']:,}")
        from rich.table import Table

        t = Table(title="balances (ETH)", title_justify="left", show_edge=False)
        t.add_column("")
        for k in parties:
            t.add_column(k, justify="right")
        eth = lambda v: f"{v / 1e18:,.9f}"
        t.add_row("before", *(eth(before[k]) for k in parties))
        t.add_row("after", *(eth(after[k]) for k in parties))
        t.add_row("change", *(eth(after[k] - before[k]) for k in parties))
        t.add_row("paid by contract", *(eth(paid[k]) for k in parties))
        t.add_row("gas paid", *(eth(spent[k]) for k in parties))
        log(t)
        log(f"  burned (half the loser's bond, kept by the contract): {eth(burned)} ETH")
        log(f"  every wei accounted for (change = paid by contract - value sent - gas paid; contract keeps the "
            f"burned half): {accounted}")
    return rec


def run_demo(model: Path, input_path: Path, rpc_url: str | None = None, cheat_op: int | None = None,
             log: Callable | None = None) -> dict:
    """Both scenarios on the in-process chain (or ``rpc_url``); returns {"chain", "model", "input", "top1",
    "scenarios": [...]}. ``cheat_op``: the operator the cheating solver alters (default: the middle one). Raises
    ModelError, InputError, ScenarioError (cheat_op out of range) or ChainError."""
    honest = run_files(model, input_path)
    graph = honest.graph
    top1 = int(np.argmax(honest.tensors[-1].reshape(honest.tensors[-1].shape[0], -1)[0]))
    chain = Chain(rpc_url)
    if log:
        log(f"[bold]pinpoint demo[/] on {chain.kind}: {Path(model).name} ({graph.n_ops} canonical operators) on "
            f"{Path(input_path).name}")
        log(f"  XCE evaluation {honest.seconds_eval * 1000:.0f} ms, commitments {honest.seconds_commit * 1000:.0f} ms, "
            f"top-1 class {top1}")
        log(f"  trace root {honest.trace_root.hex()[:16]}...  output root {honest.output_root.hex()[:16]}...")
    dep = Deployment.deploy(chain)
    if log:
        log(f"  deployed OneStep and Pinpoint at {dep.pinpoint.address} "
            f"({sum(dep.gas.values()):,} gas)")
    A = chain.accounts
    j = graph.n_ops // 2 if cheat_op is None else cheat_op
    if not 0 <= j < graph.n_ops:
        raise ScenarioError(f"--cheat-op must be in [0, {graph.n_ops})")
    n_out = graph.ops[j].out.numel
    elem = int(np.random.default_rng(7).integers(n_out))
    cheat = honest.altered(j, elem)
    s1 = run_scenario(dep, f"scenario 1: cheating solver (op {j} {graph.ops[j].kind.name}, element {elem}) "
                      "vs honest challenger", honest, cheat, Challenger(honest, A[2]), A[0], A[1], log)
    lj = max(0, graph.n_ops - 3)
    le = int(np.random.default_rng(8).integers(graph.ops[lj].out.numel))
    s2 = run_scenario(dep, f"scenario 2: honest solver vs lying challenger (disputes op {lj} "
                      f"{graph.ops[lj].kind.name}, element {le})", honest, honest,
                      LyingChallenger(honest, A[3], lj, le), A[0], A[1], log)
    return {"chain": chain.kind, "model": str(model), "input": str(input_path), "top1": top1,
            "scenarios": [s1, s2]}
