"""Adversarial game corpus (referee issue, item 6): N randomized pinpoint games on anvil, every wei counted.

Usage: ``python benchmarks/games.py --games N --seed S [--mobilenet-share F] [--json]``

Each game posts a task on a random model (MobileNetV2-int8 with probability F, else a random small synthetic
model, `tests/synth.py`), and plays one random strategy:

  * ``cheating solver``     - one element of a random operator altered; an honest challenger;
  * ``lying challenger``    - an honest solver; a challenger disputing a random correct element;
  * ``self-challenging``    - a cheating solver with 1-3 sock puppets queued around the honest challenger, each
                              sock game thrown or won on purpose;
  * ``forwarder solver``    - a cheating solver that submits and moves through a contract wallet;
  * ``last-second moves``   - cheating solver, every move sent in the last 5 seconds before its deadline;
  * ``missed move``         - the dishonest side stops answering at a random move (the other side times it out).

Per game, each party's net (balance change + gas it paid, after withdrawing) is compared with what the payout rule
owes it (`contracts/inference/Pinpoint.sol`): an honest party that ends below its due is an honest loss; any
difference is wei unaccounted (the contract must also keep exactly what it burned). Prints a table; ``--json``
prints {"games", "honest_losses", "wei_unaccounted", "by_strategy": {name: games}, "one_step_gas_max": {kind: gas}}.
Reorganizations are not played here (the daemons' re-examination is tested by `tests/test_ops_reorg.py`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.inference.loader import lower  # noqa: E402
from offchain.inference.pipeline import load_input, load_model, run  # noqa: E402
from protocol.chain.anvil import start_anvil  # noqa: E402
from protocol.chain.connection import Chain, fee_paid  # noqa: E402
from protocol.inference.game import (Deployment, challenge, challenger_move, play, post_task, read_game,  # noqa: E402
                                     read_task, send_as, solver_move, submit, submit_call, winner)
from protocol.inference.strategies import Challenger, LyingChallenger, Solver  # noqa: E402
from tests.synth import make_input, make_model  # noqa: E402

MODEL = ROOT / "offchain/assets/mobilenetv2-12-int8.onnx"
PHOTO = ROOT / "offchain/assets/bald_eagle.jpeg"
FEE = 10**16  # wei
STRATEGIES = ("cheating solver", "lying challenger", "self-challenging", "forwarder solver", "last-second moves",
              "missed move")


class Book:
    """Net wei per address between its creation and `net` (balance change + gas paid, read from the blocks)."""

    def __init__(self, dep: Deployment, addrs):
        self.dep, self.addrs = dep, list(dict.fromkeys(addrs))
        self.start = dep.chain.w3.eth.block_number + 1
        self.before = {a: dep.chain.balance(a) for a in self.addrs}
        self.held, self.burned = dep.chain.balance(dep.pinpoint.address), dep.chain.call(dep.pinpoint.functions.burned())

    def nets(self) -> dict[str, int]:
        w3, gas = self.dep.chain.w3, Counter()
        for b in range(self.start, w3.eth.block_number + 1):
            for tx in w3.eth.get_block(b, full_transactions=True)["transactions"]:
                gas[tx["from"]] += fee_paid(w3.eth.get_transaction_receipt(tx["hash"]))
        return {a: self.dep.chain.balance(a) - self.before[a] + gas[a] for a in self.addrs}

    def contract_drift(self) -> int:
        """|contract balance change - burned change|: 0 when everything else was paid out."""
        pp = self.dep.pinpoint.functions
        return abs(self.dep.chain.balance(self.dep.pinpoint.address) - self.held
                   - (self.dep.chain.call(pp.burned()) - self.burned))


def _settle(dep: Deployment, task_id: int, addrs, finalizer: str) -> None:
    ch, pp = dep.chain, dep.pinpoint.functions
    t = read_task(dep, task_id)
    if t.status == 2:
        ch.advance(max(0, t.submitted_at + ch.call(pp.challengeWindow()) + 1 - ch.now()))
        ch.send(pp.finalize(task_id), sender=finalizer)
    for gid in ch.call(pp.queue(task_id)):
        if read_game(dep, gid).queued:
            ch.send(pp.reclaim(gid), sender=finalizer)
    for a in set(addrs):
        if ch.call(pp.credit(a)):
            ch.send(pp.withdraw(), sender=a)


def _timeout(dep: Deployment, gid: int, who: str) -> None:
    g = read_game(dep, gid)
    dep.chain.advance(max(0, g.deadline + 1 - dep.chain.now()))
    dep.chain.send(dep.pinpoint.functions.timeout(gid), sender=who)


def _last_second(dep: Deployment, gid: int, solver: Solver, ch: Challenger, moves: list) -> None:
    """Both sides move in the last seconds before each deadline (5 s of margin for anvil's wall clock)."""
    while read_game(dep, gid).active:
        g = read_game(dep, gid)
        dep.chain.advance(max(0, g.deadline - 5 - dep.chain.now()))
        moves.append(solver_move(dep, gid, solver) if g.turn == 0 else challenger_move(dep, gid, ch))


def play_game(dep: Deployment, rng: random.Random, honest, strategy: str) -> dict:
    """One game of ``strategy`` on ``honest``'s model and input; returns {"honest_loss", "unaccounted",
    "one_step": [(kind, gas)]}."""
    A = dep.chain.accounts
    req, solver, hon, liar = A[0], A[1], A[2], A[3]
    socks = A[4:4 + rng.randint(1, 3)]
    j = rng.randrange(honest.graph.n_ops)
    cheat = honest.altered(j, rng.randrange(honest.graph.ops[j].out.numel))
    book = Book(dep, [req, solver, hon, liar, *socks])
    task_id, _ = post_task(dep, honest, FEE, req)
    B = read_task(dep, task_id).bond
    half = B // 2
    moves, due = [], {}
    if strategy == "lying challenger":
        submit(dep, task_id, honest, solver)
        gid, _ = challenge(dep, task_id, liar)
        lj = rng.randrange(honest.graph.n_ops)
        lie = LyingChallenger(honest, liar, lj, rng.randrange(honest.graph.ops[lj].out.numel))
        moves = play(dep, gid, Solver(honest, solver), lie)
        due = {req: -FEE, solver: FEE + half, liar: -B}
    elif strategy == "forwarder solver":
        fwd, _ = dep.chain.deploy("Forwarder", sender=solver)
        send_as(dep, submit_call(dep, task_id, cheat), solver, value=B, via=fwd)
        gid, _ = challenge(dep, task_id, hon)
        moves = play(dep, gid, Solver(cheat, solver, via=fwd), Challenger(honest, hon))
        due = {req: 0, hon: half, solver: -B}
    elif strategy == "self-challenging":
        submit(dep, task_id, cheat, solver)
        order = list(socks)
        order.insert(rng.randint(0, len(socks)), hon)
        games = {w: challenge(dep, task_id, w)[0] for w in order}
        lost = 0
        for w in order:
            gid = games[w]
            if not read_game(dep, gid).active:
                break
            if w == hon:
                moves = play(dep, gid, Solver(cheat, solver), Challenger(honest, hon))
            elif rng.random() < 0.5:  # thrown: the sock disputes a correct element of the cheat
                sj = rng.randrange(honest.graph.n_ops)
                play(dep, gid, Solver(cheat, solver), LyingChallenger(cheat, w, sj, 0))
                lost += 1
            else:  # the cheater lets its sock win
                _timeout(dep, gid, req)
        refuted_by_hon = winner(dep, games[hon]) == "challenger"
        cheater = -half * lost - (B if refuted_by_hon else half)
        due = {req: 0, hon: half if refuted_by_hon else 0, "cheater": cheater}
    else:  # cheating solver, last-second moves, missed move
        submit(dep, task_id, cheat, solver)
        gid, _ = challenge(dep, task_id, hon)
        s, c = Solver(cheat, solver), Challenger(honest, hon)
        if strategy == "last-second moves":
            _last_second(dep, gid, s, c, moves)
        elif strategy == "missed move":  # the cheater answers k reveals, then stops; the challenger times it out
            k, answered = rng.randrange(6), 0
            while read_game(dep, gid).active:
                if read_game(dep, gid).turn == 1:
                    moves.append(challenger_move(dep, gid, c))
                elif answered == k:
                    _timeout(dep, gid, hon)
                else:
                    moves.append(solver_move(dep, gid, s))
                    answered += 1
        else:
            moves = play(dep, gid, s, c)
        due = {req: 0, hon: half, solver: -B}
    _settle(dep, task_id, book.addrs, req)
    nets = book.nets()
    if "cheater" in due:
        nets["cheater"] = nets[solver] + sum(nets[s] for s in socks)
    loss = any(nets[a] < due[a] for a in due if a not in (solver, liar, "cheater"))
    unaccounted = sum(abs(nets[a] - due[a]) for a in due) + book.contract_drift()
    steps = [(m.what.split()[1], m.gas) for m in moves if m.what.startswith("one-step")]
    return {"honest_loss": loss, "unaccounted": unaccounted, "one_step": steps}


def _synthetic(rng: random.Random):
    s = rng.randrange(10**6)
    g = lower(make_model(s))
    return run(g, make_input(s, g.input.shape))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mobilenet-share", type=float, default=0.2, help="fraction of games on MobileNetV2")
    ap.add_argument("--rpc-url", default=None, help="an anvil to use (default: start one)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    proc = None
    url = a.rpc_url
    if url is None:
        proc, url = start_anvil(None, "--gas-limit", "100000000", "--code-size-limit", "100000")
    try:
        dep = Deployment.deploy(Chain(url))
        mobilenet = None
        out = {"games": 0, "honest_losses": 0, "wei_unaccounted": 0, "by_strategy": Counter(),
               "one_step_gas_max": {}}
        for _ in range(a.games):
            if rng.random() < a.mobilenet_share:
                if mobilenet is None:
                    g = load_model(MODEL)
                    mobilenet = run(g, load_input(PHOTO, g))
                honest = mobilenet
            else:
                honest = _synthetic(rng)
            strategy = rng.choice(STRATEGIES)
            r = play_game(dep, rng, honest, strategy)
            out["games"] += 1
            out["honest_losses"] += r["honest_loss"]
            out["wei_unaccounted"] += r["unaccounted"]
            out["by_strategy"][strategy] += 1
            for kind, gas in r["one_step"]:
                out["one_step_gas_max"][kind] = max(gas, out["one_step_gas_max"].get(kind, 0))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    out["by_strategy"] = dict(out["by_strategy"])
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{'strategy':<20} games")
        for k, v in sorted(out["by_strategy"].items()):
            print(f"{k:<20} {v:>5}")
        print(f"games {out['games']}, honest losses {out['honest_losses']}, wei unaccounted {out['wei_unaccounted']}")
        print("worst one-step gas per kind: " + ", ".join(f"{k} {v:,}" for k, v in
                                                           sorted(out["one_step_gas_max"].items())))
    return out


if __name__ == "__main__":
    main()
