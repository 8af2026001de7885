"""Adversarial game corpus (referee issue, item 6): N randomized pinpoint games on anvil, every wei counted.

Usage: ``python benchmarks/games.py --games N --seed S [--mobilenet-share F] [--big-share G] [--reorg-share R]
[--json]``

Each game posts a task on a random model (`benchmarks/game_models.py`: the real MobileNetV2-int8 with probability
F, a small model with one long reduction - a GAP over 64 x 64 or more pixels, a MATMUL with K >= 4096, a 3 x 3 CONV
over 512 channels - whose one-step is cut into chunks (phase 3) with probability G, else a random small synthetic
model of every operator and layout), a random disputed operator and element (the last operator, the last word of
a tensor, a long reduction half the time when the model has one and, for a lying challenger, padding leaves of the
trace and padding elements of the last word included), and plays one random strategy:

  * ``cheating solver``   - one element of a random operator altered; an honest challenger; in phase 3 the solver
                            reveals its honest partial sums, or (``sum liar``) sums shifted from a random chunk
                            on to match its wrong element;
  * ``lying challenger``  - an honest solver; a challenger disputing a random (correct) element or padding (in phase
                            3 a random interval, or the final requantization);
  * ``self-challenging``  - a cheating solver with k = 1-3 extra identities queued around the honest challenger,
                            each sock game thrown or won on purpose;
  * ``forwarder solver``  - a cheating solver that submits and moves through a contract wallet
                            (`contracts/testing/Forwarder.sol`);
  * ``last-second moves`` - both sides send every move in the last seconds before its deadline (anvil's clock
                            advanced with ``evm_increaseTime``);
  * ``missed move``       - the dishonest side (a cheating solver or a lying challenger) stops answering at a random
                            move; the honest side calls ``timeout``.

With probability R (``--reorg-share``) a game is also reorganized: after any move (the final one and a `timeout`
included) the last 1-4 blocks are replaced by empty ones (``anvil_reorg``; 0-3 empty blocks are mined on top of the
move first), so the move and possibly earlier ones vanish. The driver holds no game state: at every step each
player reads the game from the chain (`protocol.inference.game.read_game`) and the solver's reveal from its event,
so a dropped move is noticed from chain state and sent again by the same player. A dishonest player's move that
the contract refuses counts as a missed move (the honest side times it out).

Per game, each party's gross net (balance change + gas it paid, after withdrawing) is compared with what the payout
rule owes it (`contracts/inference/Pinpoint.sol`): an honest party below its due is an honest loss; any difference
is wei unaccounted (and the contract must keep exactly what it burned). ``honest_gas_uncovered`` counts games where
an honest winner's payout did not cover the gas it paid. An honest player whose move fails (the contract refuses
it, or its client raises) is an honest loss too, listed in "failures" with the game's seed: ``--replay SEED`` plays
that game alone. Prints a table; ``--json`` prints {"games", "honest_losses", "wei_unaccounted", "by_strategy":
{name: games}, "one_step_gas_max": {kind: gas}} and "failures", "honest_gas_uncovered", "disputed" (where the
final moves landed: padding leaf / padding element / last word / other, and games that reached phase 3),
"models_not_evaluable", "reorgs", "reorgs_after_final_move", "last_second_moves", "missed_moves", "lies_refused",
"seconds". ``by_strategy`` also counts the tags "reorganized", "sum liar", "long reduction" and "on MobileNetV2"
(a game has one strategy and any number of tags). Final-move kinds: "CONV" (phase 2's one-step), "CONV chunk" and
"CONV finish" (phase 3's chunk one-step and final requantization). One anvil and one deployment serve every game;
the MobileNetV2 trace is evaluated once.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.game_models import (PHASE3, SKIPPED, big, long_ops, mobilenet as load_mobilenet, pick_element,  # noqa: E402
                                    pick_op, synthetic)
from offchain.common.errors import PinpointError  # noqa: E402
from protocol.chain.anvil import start_anvil  # noqa: E402
from protocol.chain.connection import Chain, fee_paid  # noqa: E402
from protocol.inference.game import (Deployment, GameStuck, Move, challenge, challenger_move, post_task,  # noqa: E402
                                     read_game, read_task, send_as, solver_move, submit, submit_call, winner)
from protocol.inference.strategies import Challenger, LyingChallenger, Solver  # noqa: E402
from protocol.inference.types import Turn  # noqa: E402

if PHASE3:
    from offchain.inference.reduction import op_chunking  # noqa: E402
    from protocol.inference.strategies import SumLiar  # noqa: E402

FEE = 10**16  # wei
STRATEGIES = ("cheating solver", "lying challenger", "self-challenging", "forwarder solver", "last-second moves",
              "missed move")
LAST_SECOND = 5  # seconds before the deadline at which a last-second move is sent (anvil's clock is wall time)
MAX_REORGS = 3  # per game


class Book:
    """Gross net wei per address between its creation and `nets` (balance change + gas paid, read from the blocks
    of the canonical chain: a transaction a reorganization dropped paid nothing)."""

    def __init__(self, dep: Deployment, addrs):
        self.dep, self.addrs = dep, list(dict.fromkeys(addrs))
        self.start = dep.chain.w3.eth.block_number + 1
        self.before = {a: dep.chain.balance(a) for a in self.addrs}
        self.held, self.burned = dep.chain.balance(dep.pinpoint.address), dep.chain.call(dep.pinpoint.functions.burned())
        self.gas: Counter = Counter()

    def nets(self) -> dict[str, int]:
        w3, self.gas = self.dep.chain.w3, Counter()
        for b in range(self.start, w3.eth.block_number + 1):
            for tx in w3.eth.get_block(b, full_transactions=True)["transactions"]:
                self.gas[tx["from"]] += fee_paid(w3.eth.get_transaction_receipt(tx["hash"]))
        return {a: self.dep.chain.balance(a) - self.before[a] + self.gas[a] for a in self.addrs}

    def contract_drift(self) -> int:
        """|contract balance change - burned change|: 0 when everything else was paid out."""
        pp = self.dep.pinpoint.functions
        return abs(self.dep.chain.balance(self.dep.pinpoint.address) - self.held
                   - (self.dep.chain.call(pp.burned()) - self.burned))


@dataclass
class Player:
    """One side of a game as the driver sees it: ``impl`` (a `Solver` or a `Challenger`), whether it is honest,
    and after how many of its own moves it stops answering (None: never)."""

    impl: object
    honest: bool
    stop_at: int | None = None
    sent: int = 0

    @property
    def address(self) -> str:
        return self.impl.address

    def move(self, dep: Deployment, gid: int) -> Move:
        """Its move in ``gid``, decided from chain state only (the game and the solver's last Revealed event)."""
        if isinstance(self.impl, Solver):
            return solver_move(dep, gid, self.impl)
        return challenger_move(dep, gid, self.impl)


@dataclass
class Stats:
    """Counts over the corpus (see the module docstring)."""

    reorgs: int = 0
    reorgs_final: int = 0
    last_second: int = 0
    missed: int = 0
    refused: int = 0
    tags: Counter = field(default_factory=Counter)
    disputed: Counter = field(default_factory=Counter)


_AT = re.compile(r"(\w+) op (\d+) element (\d+)")


def final_kind(what: str) -> str | None:
    """The kind a final move recomputes ("CONV", phase 3: "CONV chunk", "CONV finish"), None for other moves."""
    if not what.startswith("one-step"):
        return None
    kind = _AT.search(what).group(1)
    return f"{kind} chunk" if " chunk " in what else f"{kind} finish" if "requantization" in what else kind


def _where(trace, what: str) -> str | None:
    """Which kind of place a final move disputes: "padding leaf", "padding element", "last word", "other"."""
    if what.startswith("select") and what.endswith("(padding) -> phase 2"):
        return "padding leaf"
    if not what.startswith("one-step"):
        return None
    _, j, e = _AT.search(what).groups()
    op = trace.graph.ops[int(j)].out
    e, per = int(e), 32 // op.dtype.itemsize
    return "padding element" if e >= op.numel else "last word" if e >= (op.numel - 1) // per * per else "other"


def reorg(dep: Deployment, rng: random.Random, floor: int, st: Stats) -> None:
    """Replace the last 1-4 blocks (never at or below block ``floor``) by empty ones, after mining 0-3 empty blocks
    on top of the head: the latest moves vanish from the chain, as in a reorganization."""
    mk = dep.chain.w3.provider.make_request
    d = rng.randint(1, 4)
    for _ in range(rng.randint(0, d - 1)):
        mk("evm_mine", [])
    d = max(1, min(d, dep.chain.w3.eth.block_number - floor))
    r = mk("anvil_reorg", [d, []])
    if "error" in r:
        raise RuntimeError(f"anvil_reorg failed: {r['error']}")
    st.reorgs += 1


def timeout(dep: Deployment, gid: int, who: str) -> Move:
    """Advance the clock past ``gid``'s deadline and call `timeout` from ``who``."""
    g = read_game(dep, gid)
    dep.chain.advance(max(0, g.deadline + 1 - dep.chain.now()))
    tx = dep.chain.send(dep.pinpoint.functions.timeout(gid), sender=who)
    return Move(who, "timeout", tx.gas, tx.hash)


def drive(dep: Deployment, gid: int, sol: Player, cha: Player, rng: random.Random, st: Stats,
          last_second: bool = False, reorg_p: float = 0.0, max_steps: int = 400) -> list[Move]:
    """Play ``gid`` to its end from chain state: whoever's turn it is moves (in the last seconds before the deadline
    with ``last_second``), a player past its ``stop_at`` is timed out by the other, and with ``reorg_p`` > 0 the
    chain is reorganized after a random move (after the final one if the game ends first) and after any other move
    with probability ``reorg_p``. Raises GameStuck after ``max_steps``, an honest player's error as is."""
    floor = dep.chain.w3.eth.block_number  # the game exists and is active at this block
    moves: list[Move] = []
    reorgs = 0
    forced = rng.randrange(1, 16) if reorg_p > 0 else None  # the move after which a reorganization surely comes
    for _ in range(max_steps):
        g = read_game(dep, gid)
        if g.resolved:
            return moves
        if not g.active:
            raise GameStuck(f"game {gid} is queued")
        p, other = (sol, cha) if g.turn == Turn.SOLVER else (cha, sol)
        if p.stop_at is not None and p.sent >= p.stop_at:
            moves.append(timeout(dep, gid, other.address))
            st.missed += 1
        else:
            if last_second:
                dep.chain.advance(max(0, g.deadline - LAST_SECOND - dep.chain.now()))
                st.last_second += 1
            try:
                moves.append(p.move(dep, gid))
            except PinpointError:
                if p.honest:
                    raise
                p.stop_at, st.refused = p.sent, st.refused + 1  # the contract refused its lie: it has missed
                continue
            p.sent += 1
        final = read_game(dep, gid).resolved
        if reorgs < MAX_REORGS and (rng.random() < reorg_p or (forced is not None and reorgs == 0 and
                                                                (len(moves) >= forced or final))):
            reorg(dep, rng, floor, st)
            reorgs += 1
            st.reorgs_final += final
    raise GameStuck(f"game {gid} did not end within {max_steps} steps")


def settle(dep: Deployment, task_id: int, addrs, finalizer: str) -> None:
    """Finalize the task if its result stands, reclaim queued bonds, and withdraw every credit."""
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


def play_game(dep: Deployment, rng: random.Random, honest, strategy: str, st: Stats, reorg_share: float) -> dict:
    """One game of ``strategy`` on ``honest``'s model and input; returns {"honest_loss", "unaccounted",
    "gas_uncovered", "one_step": [(kind, gas)], "tags"}."""
    A = dep.chain.accounts
    req, solver, hon, liar = A[0], A[1], A[2], A[3]
    socks = A[4:4 + rng.randint(1, 3)]
    longs = long_ops(honest)
    j = rng.choice(longs) if longs and rng.random() < 0.5 else pick_op(rng, honest)
    cheat = honest.altered(j, pick_element(rng, honest, j))
    book = Book(dep, [req, solver, hon, liar, *socks])
    task_id, _ = post_task(dep, honest, FEE, req)
    B = read_task(dep, task_id).bond
    half = B // 2
    reorg_p = 0.0
    tags = [strategy]
    if rng.random() < reorg_share:
        reorg_p = rng.choice((0.1, 0.25, 0.5))
    reorgs0 = st.reorgs

    def lying(addr: str, trace) -> Player:
        lj = rng.choice(longs) if longs and rng.random() < 0.5 else pick_op(rng, honest, padding=True)
        le = pick_element(rng, honest, lj, padding=True) if lj < honest.graph.n_ops else 0
        liar_ = LyingChallenger(trace, addr, lj, le)
        liar_.finish_lie = rng.random() < 0.3  # phase 3: claims the final requantization wrong
        return Player(liar_, False)

    def cheater(via=None) -> Player:
        """The cheating solver: in phase 3 half the time a `SumLiar` hiding behind shifted partial sums."""
        n = op_chunking(honest.graph.ops[j])[0] if PHASE3 else 1
        if n > 1 and rng.random() < 0.5:
            st.tags["sum liar"] += 1
            return Player(SumLiar(cheat, solver, from_chunk=rng.randint(1, n), via=via), False)
        return Player(Solver(cheat, solver, via=via), False)

    moves, due, winners = [], {}, []
    if strategy == "lying challenger" or (strategy == "missed move" and rng.random() < 0.5):
        submit(dep, task_id, honest, solver)
        gid, _ = challenge(dep, task_id, liar)
        lie = lying(liar, honest)
        if strategy == "missed move":
            lie.stop_at = rng.randrange(8)
        moves = drive(dep, gid, Player(Solver(honest, solver), True), lie, rng, st, reorg_p=reorg_p)
        due, winners = {req: -FEE, solver: FEE + half, liar: -B}, [solver]
    elif strategy == "forwarder solver":
        fwd, _ = dep.chain.deploy("Forwarder", sender=solver)
        send_as(dep, submit_call(dep, task_id, cheat), solver, value=B, via=fwd)
        gid, _ = challenge(dep, task_id, hon)
        moves = drive(dep, gid, cheater(fwd), Player(Challenger(honest, hon), True),
                      rng, st, reorg_p=reorg_p)
        due, winners = {req: 0, hon: half, solver: -B}, [hon]
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
            s = cheater()
            if w == hon:
                moves = drive(dep, gid, s, Player(Challenger(honest, hon), True), rng, st, reorg_p=reorg_p)
            elif rng.random() < 0.5:  # thrown: the sock disputes a correct element of the cheat
                drive(dep, gid, s, lying(w, cheat), rng, st)
                lost += 1
            else:  # the cheater lets its sock win
                timeout(dep, gid, req)
        refuted_by_hon = winner(dep, games[hon]) == "challenger"
        cheater = -half * lost - (B if refuted_by_hon else half)
        due = {req: 0, hon: half if refuted_by_hon else 0, "cheater": cheater}
        winners = [hon] if refuted_by_hon else []
    else:  # cheating solver, last-second moves, missed move (the cheating solver stops answering)
        submit(dep, task_id, cheat, solver)
        gid, _ = challenge(dep, task_id, hon)
        s, c = cheater(), Player(Challenger(honest, hon), True)
        if strategy == "missed move":
            s.stop_at = rng.randrange(8)
        moves = drive(dep, gid, s, c, rng, st, last_second=strategy == "last-second moves", reorg_p=reorg_p)
        due, winners = {req: 0, hon: half, solver: -B}, [hon]
    settle(dep, task_id, book.addrs, req)
    nets = book.nets()
    if "cheater" in due:
        nets["cheater"] = nets[solver] + sum(nets[s] for s in socks)
    loss = any(nets[a] < due[a] for a in due if a not in (solver, liar, "cheater") or a in winners)
    unaccounted = sum(abs(nets[a] - due[a]) for a in due) + book.contract_drift()
    uncovered = any(nets[a] - book.gas[a] < 0 for a in winners)
    if st.reorgs > reorgs0:
        tags.append("reorganized")
    steps = [(final_kind(m.what), m.gas) for m in moves if final_kind(m.what)]
    for m in moves:
        st.disputed[_where(honest, m.what)] += 1
        st.disputed["phase 3"] += m.what.startswith("phase 3")
    return {"honest_loss": loss, "unaccounted": unaccounted, "gas_uncovered": uncovered, "one_step": steps,
            "tags": tags}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mobilenet-share", type=float, default=0.1, help="fraction of games on MobileNetV2")
    ap.add_argument("--big-share", type=float, default=0.1 if PHASE3 else 0.0,
                    help="fraction of games on a small model with one long reduction (phase 3)")
    ap.add_argument("--reorg-share", type=float, default=0.35, help="fraction of games with reorganizations")
    ap.add_argument("--rpc-url", default=None, help="an anvil to use (default: start one)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--progress", action="store_true", help="print one line per game on stderr")
    ap.add_argument("--replay", type=int, default=None, metavar="GAME_SEED",
                    help="play only the game of this seed (as listed in \"failures\"; same shares)")
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    proc = None
    url = a.rpc_url
    t0 = time.perf_counter()
    if url is None:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated run still stops its anvil
        proc, url = start_anvil(None, "--gas-limit", "100000000", "--code-size-limit", "100000")
    st = Stats()
    out = {"games": 0, "honest_losses": 0, "wei_unaccounted": 0, "by_strategy": Counter(), "one_step_gas_max": {},
           "honest_gas_uncovered": 0, "failures": []}
    try:
        dep = Deployment.deploy(Chain(url))
        mobilenet = None
        seeds = [a.replay] if a.replay is not None else [rng.randrange(1 << 62) for _ in range(a.games)]
        for i, gseed in enumerate(seeds):
            g = random.Random(gseed)  # everything about game i follows from its seed (``--replay``)
            if g.random() < a.mobilenet_share:
                if mobilenet is None:
                    mobilenet = load_mobilenet()
                honest = mobilenet
            elif g.random() < a.big_share:
                honest = big(g)
                st.tags["long reduction"] += 1
            else:
                honest = synthetic(g)
            strategy = g.choice(STRATEGIES)
            out["games"] += 1
            try:
                r = play_game(dep, g, honest, strategy, st, a.reorg_share)
            except Exception as e:  # an honest player could not move: an honest loss, its game seed reported
                out["honest_losses"] += 1
                st.tags[strategy] += 1
                out["failures"].append({"game_seed": gseed, "strategy": strategy,
                                        "error": f"{type(e).__name__}: {e}"[:300]})
                print(f"game {i} (seed {gseed}): {strategy}: HONEST PLAYER FAILED: {e}", file=sys.stderr, flush=True)
                continue
            out["honest_losses"] += r["honest_loss"]
            out["wei_unaccounted"] += r["unaccounted"]
            out["honest_gas_uncovered"] += r["gas_uncovered"]
            st.tags.update(r["tags"])
            if honest is mobilenet:
                st.tags["on MobileNetV2"] += 1
            for kind, gas in r["one_step"]:
                out["one_step_gas_max"][kind] = max(gas, out["one_step_gas_max"].get(kind, 0))
            if a.progress:
                print(f"game {i} (seed {gseed}): {r['tags']} loss={r['honest_loss']} unaccounted={r['unaccounted']}",
                      file=sys.stderr, flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    out["by_strategy"] = dict(sorted(st.tags.items()))
    st.disputed.pop(None, None)
    out["disputed"] = dict(st.disputed)
    out["models_not_evaluable"] = dict(SKIPPED)
    out.update(reorgs=st.reorgs, reorgs_after_final_move=st.reorgs_final, last_second_moves=st.last_second,
               missed_moves=st.missed, lies_refused=st.refused, seconds=round(time.perf_counter() - t0, 1))
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{'strategy / tag':<24} games")
        for k, v in out["by_strategy"].items():
            print(f"{k:<24} {v:>5}")
        print(f"games {out['games']}, honest losses {out['honest_losses']}, wei unaccounted {out['wei_unaccounted']}, "
              f"honest gas uncovered {out['honest_gas_uncovered']}")
        print(f"reorganizations {st.reorgs} ({st.reorgs_final} after a game's final move), last-second moves "
              f"{st.last_second}, missed moves timed out {st.missed}, lies refused {st.refused}, {out['seconds']} s")
        for f in out["failures"]:
            print(f"FAILED game seed {f['game_seed']} ({f['strategy']}): {f['error']}")
        if SKIPPED:
            print(f"models accepted by the loader but not evaluable (skipped): {dict(SKIPPED)}")
        print("final moves at: " + ", ".join(f"{k} {v}" for k, v in sorted(out["disputed"].items())))
        print("worst one-step gas per kind: " + ", ".join(f"{k} {v:,}" for k, v in
                                                           sorted(out["one_step_gas_max"].items())))
    return out


if __name__ == "__main__":
    main()
