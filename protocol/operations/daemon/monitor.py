"""The head loop every daemon runs (`Monitor`): confirmations, reorganizations, event scanning, the ledger of
in-flight transactions, the game workers and collecting what the account is owed. The per-role logic (which events,
what to do with a task, how to move) lives in `evaluator.EvaluatorDaemon` and `challenger.ChallengerDaemon`; the
state machines and the loop are described in the package docstring (`protocol.operations.daemon`)."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable

import requests
from web3.exceptions import BadFunctionCallOutput, TimeExhausted, TransactionNotFound, Web3Exception

from offchain.common.errors import PinpointError
from offchain.inference.trace import Trace
from protocol.chain.connection import _REVERTS, Chain, ChainError, fee_paid
from protocol.inference.game import Deployment
from protocol.inference.types import Game, Task, decode_game, decode_task

from .db import DB
from .states import GAME_TERMINAL, TASK_TERMINAL, GameProgress, TaskState, decide_game
from .store import DataUnavailable, Store
from .telemetry import Metrics

NODE_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeExhausted)
RECEIPT_TIMEOUT = 90  # seconds a daemon waits for a receipt before leaving the transaction in flight


class DaemonError(PinpointError, RuntimeError):
    """The daemon cannot run: its database belongs to another deployment or account, or no deployment exists."""


@dataclass
class Config:
    """Daemon settings: ``confirmations`` blocks below the head, ``poll_interval`` seconds between head polls,
    ``from_block`` where scanning starts, ``scan_chunk`` blocks per log query, ``cheat_op`` / ``cheat_element``
    (evaluator only) the operator and flat element index its committed trace alters (for tests and demos)."""

    confirmations: int = 1
    poll_interval: float = 0.5
    from_block: int = 0
    scan_chunk: int = 2000
    cheat_op: int | None = None
    cheat_element: int | None = None


class Monitor:
    """The loop of one daemon. ``run()`` loops until SIGTERM/SIGINT (or ``stop()``). A role subclass sets ``ROLE``,
    ``SIDE`` and ``BOND_STATES`` (the task states whose bond is at stake) and implements `scan`, `task_step` and
    `move`."""

    ROLE: str = ""
    SIDE: str = ""
    BOND_STATES: tuple[TaskState, ...] = ()

    def __init__(self, chain: Chain, pinpoint_address: str, db: DB, store: Store, cfg: Config,
                 log: logging.Logger, metrics: Metrics | None = None):
        self.chain, self.db, self.store, self.cfg, self.logger = chain, db, store, cfg, log
        self.role = self.ROLE
        self.metrics = metrics or Metrics(self.role)
        self.me = chain.accounts[0]
        if self.me not in chain.local_accounts:
            raise DaemonError(f"no key for {self.me}: a daemon signs locally (--account)")
        self.dep = Deployment.at(chain, pinpoint_address)
        self.pp = self.dep.pinpoint
        self.traces: dict[int, tuple[Trace, Trace]] = {}  # task id -> (honest, committed)
        self._stop = False
        self.last_head: int | None = None
        self.safe = 0
        self.now = 0
        chain.on_mined = self._mined
        chain.receipt_timeout = RECEIPT_TIMEOUT
        ident = {"chain_id": int(chain.w3.eth.chain_id), "pinpoint": self.pp.address, "account": self.me,
                 "role": self.role}
        known = db.get("identity")
        if known is None:
            db.set("identity", ident)
            db.set("scanned", cfg.from_block - 1)
        elif known != ident:
            raise DaemonError(f"database belongs to {known}, not {ident}")

    # ------------------------------------------------------------------------------------------------ role hooks
    def scan(self, start: int, end: int) -> None:
        """Record the tasks and games of interest in confirmed blocks [start, end] (`_found_task`, `_found_game`)."""
        raise NotImplementedError

    def task_step(self, tid: int, state: TaskState, t: Task) -> None:
        """Advance task ``tid`` (tracked in ``state``, on chain ``t`` at the confirmed head)."""
        raise NotImplementedError

    def move(self, gid: int, g: Game, row: sqlite3.Row, honest: Trace, served: Trace) -> Callable[[], object]:
        """A thunk that sends our move in game ``gid`` (state ``g``) and returns its `Move`."""
        raise NotImplementedError

    def served_trace(self, tid: int, honest: Trace) -> Trace:
        """The trace we commit for task ``tid``: the honest one (an evaluator may alter it, see `Config`)."""
        return honest

    def game_found(self, gid: int, tid: int) -> None:
        """Called once when game ``gid`` on task ``tid`` is first tracked."""

    # ------------------------------------------------------------------------------------------------ plumbing
    def log(self, event: str, level: int = logging.INFO, **fields) -> None:
        """Log ``event`` with ``fields`` (one JSON line)."""
        self.logger.log(level, event, extra={"fields": {"role": self.role, **fields}})

    def stop(self, *_args) -> None:
        """Ask the loop to end after the current step (the SIGTERM / SIGINT handler)."""
        self._stop = True

    def _call(self, fn, block="safe"):
        try:
            return fn.call({"from": self.me}, block_identifier=self.safe if block == "safe" else block)
        except _REVERTS as e:
            raise Chain._revert(e) from None

    def _task(self, tid: int) -> Task:
        return decode_task(self.pp, self._call(self.pp.functions.task(tid)))

    def _challenge_window(self) -> int:
        return int(self._call(self.pp.functions.challengeWindow()))

    # ------------------------------------------------------------------------------------------------ in-flight ledger
    def _mined(self, h: str, receipt) -> None:
        fee = fee_paid(receipt)
        new = not self.db.q("SELECT 1 FROM txs WHERE hash=? AND block IS NOT NULL", h)
        self.db.x("UPDATE txs SET block=?, gas=?, fee_wei=?, status=? WHERE hash=?", int(receipt["blockNumber"]),
                  int(receipt["gasUsed"]), str(fee), int(receipt["status"]), h)
        if new:
            self.metrics.gas.labels(self.role).inc(int(receipt["gasUsed"]))
            self.metrics.fees.labels(self.role).inc(fee)

    def _send(self, table: str, key: int, kind: str, thunk: Callable[[], object]):
        """Run ``thunk`` (which sends one transaction) recording the hash in row ``key`` of ``table`` before the
        broadcast. Returns the thunk's result, or None if it reverted (logged; the next head recomputes)."""
        col = "task_id" if table == "tasks" else "game_id"

        def sent(h: str) -> None:
            self.db.x("INSERT OR IGNORE INTO txs (hash, kind, ref, sent) VALUES (?, ?, ?, ?)", h, kind, key,
                      time.time())
            self.db.x(f"UPDATE {table} SET pending_tx=?, pending_kind=?, updated=? WHERE {col}=?", h, kind,
                      time.time(), key)
            self.log("sent", kind=kind, tx=h, **{col: key})

        self.chain.on_sent = sent
        try:
            out = thunk()
            self.metrics.moves.labels(self.role, kind).inc()
            return out
        except ChainError as e:
            # reverted in estimation (nothing sent) or on chain (the in-flight check clears it once confirmed)
            self.log("reverted", logging.WARNING, kind=kind, error=e.error or str(e), **{col: key})
            return None
        finally:
            self.chain.on_sent = None

    def _in_flight(self, h: str | None) -> str:
        """State of our transaction ``h``: "none", "confirmed", "waiting" (mined above the confirmed head or in
        the pool) or "dropped" (unknown to the node)."""
        if not h:
            return "none"
        try:
            r = self.chain.w3.eth.get_transaction_receipt(h)
        except TransactionNotFound:
            r = None
        if r is not None:
            self._mined(h, r)
            return "confirmed" if int(r["blockNumber"]) <= self.safe else "waiting"
        try:
            self.chain.w3.eth.get_transaction(h)
            return "waiting"
        except TransactionNotFound:
            return "dropped"

    def _clear_if_settled(self, table: str, row: sqlite3.Row) -> bool:
        """True if the row may act now (no transaction in flight); clears a confirmed or dropped one."""
        st = self._in_flight(row["pending_tx"])
        if st == "waiting":
            return False
        if st in ("confirmed", "dropped"):
            col = "task_id" if table == "tasks" else "game_id"
            if st == "dropped":
                self.log("dropped", logging.WARNING, tx=row["pending_tx"], kind=row["pending_kind"],
                         **{col: row[col]})
            self.db.x(f"UPDATE {table} SET pending_tx=NULL, pending_kind=NULL WHERE {col}=?", row[col])
        return True

    def _account_idle(self) -> bool:
        """No transaction of ours waits in the node's pool (pending nonce == latest nonce)."""
        w3 = self.chain.w3
        return w3.eth.get_transaction_count(self.me, "pending") == w3.eth.get_transaction_count(self.me, "latest")

    def _task_state(self, tid: int, new: TaskState, **fields) -> None:
        old = self.db.q("SELECT state FROM tasks WHERE task_id=?", tid)
        if old and old[0]["state"] == new.value:
            return
        self.db.x("UPDATE tasks SET state=?, updated=?, note=? WHERE task_id=?", new.value, time.time(),
                  json.dumps(fields) if fields else None, tid)
        self.log("transition", what="task", task_id=tid, frm=old[0]["state"] if old else None, to=new.value,
                 **fields)

    def _game_state(self, gid: int, new: GameProgress, **fields) -> None:
        old = self.db.q("SELECT state FROM games WHERE game_id=?", gid)
        if old and old[0]["state"] == new.value:
            return
        self.db.x("UPDATE games SET state=?, updated=? WHERE game_id=?", new.value, time.time(), gid)
        self.log("transition", what="game", game_id=gid, frm=old[0]["state"] if old else None, to=new.value,
                 **fields)

    # ------------------------------------------------------------------------------------------------ traces
    def traces_for(self, tid: int) -> tuple[Trace, Trace]:
        """(honest trace, trace we commit) of task ``tid``: evaluated from the store once per process. Raises
        DataUnavailable, or DaemonError for a bad cheat setting."""
        if tid not in self.traces:
            t = self._task(tid)
            model_root = bytes(self._call(self.pp.functions.modelRoot(tid)))
            t0 = time.perf_counter()
            honest = self.store.evaluate(model_root, t.input_root)
            served = self.served_trace(tid, honest)
            dt = time.perf_counter() - t0
            self.metrics.eval.labels(self.role).observe(dt)
            self.log("evaluated", task_id=tid, seconds=round(dt, 3), trace_root="0x" + served.trace_root.hex())
            self.traces[tid] = (honest, served)
        return self.traces[tid]

    # ------------------------------------------------------------------------------------------------ loop
    def run(self, max_seconds: float | None = None) -> None:
        """Loop over new heads until stopped (SIGTERM, SIGINT, `stop`) or ``max_seconds``. Node failures are logged
        and retried with backoff (up to 10 s): a restarted node is picked up again."""
        try:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        except ValueError:  # not the main thread
            pass
        self.log("started", account=self.me, pinpoint=self.pp.address, confirmations=self.cfg.confirmations,
                 resumed_games=[r["game_id"] for r in self.db.q("SELECT game_id FROM games")])
        t_end = None if max_seconds is None else time.monotonic() + max_seconds
        delay = self.cfg.poll_interval
        while not self._stop and (t_end is None or time.monotonic() < t_end):
            try:
                self.tick()
                if delay > self.cfg.poll_interval:
                    self.log("node reachable again")
                delay = self.cfg.poll_interval
            except NODE_ERRORS + (Web3Exception, OSError) as e:
                self.metrics.rpc_errors.labels(self.role).inc()
                self.log("node error", logging.WARNING, error=f"{type(e).__name__}: {e}"[:300])
                delay = min(max(delay * 2, 0.5), 10.0)
            end = time.monotonic() + delay
            while not self._stop and time.monotonic() < end:
                time.sleep(min(0.1, delay))
        self.log("stopped")

    def tick(self) -> bool:
        """One step at the current head; returns False if the head has not moved since the last step."""
        head = int(self.chain.w3.eth.block_number)
        self.metrics.head.labels(self.role).set(head)
        if head == self.last_head:
            return False
        self.safe = max(0, head - self.cfg.confirmations)
        self._check_reorg(head)
        self._scan()
        self.now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        for row in self.db.q("SELECT * FROM games WHERE found_block IS NOT NULL ORDER BY game_id"):
            if GameProgress(row["state"]) not in GAME_TERMINAL and not self._stop:
                self._guard(self._game_worker, row, game_id=row["game_id"])
        for row in self.db.q("SELECT * FROM tasks WHERE found_block IS NOT NULL ORDER BY task_id"):
            if TaskState(row["state"]) not in TASK_TERMINAL and not self._stop:
                self._guard(self._task_worker, row, task_id=row["task_id"])
        self._collect()
        self._update_gauges()
        self.metrics.acted.labels(self.role).set(self.safe)
        self.last_head = head
        return True

    def _guard(self, worker, row, **ids) -> None:
        """Run one worker; node failures propagate to the loop (backoff), anything else is logged and the worker
        is retried at the next head."""
        try:
            worker(row)
        except NODE_ERRORS:
            raise
        except Exception as e:  # a bug in one game must not stop the others
            self.log("worker failed", logging.ERROR, error=f"{type(e).__name__}: {e}"[:500], **ids)

    # ------------------------------------------------------------------------------------------------ reorgs
    def _check_reorg(self, head: int) -> None:
        rows = self.db.q("SELECT number, hash FROM blocks ORDER BY number DESC")
        if not rows:
            return
        ancestor = None
        for r in rows:
            if r["number"] <= head:
                b = self.chain.w3.eth.get_block(r["number"])
                if "0x" + bytes(b["hash"]).hex() == r["hash"]:
                    ancestor = r["number"]
                    break
        if ancestor == rows[0]["number"]:
            return
        scanned = self.db.get("scanned")
        back_to = ancestor if ancestor is not None else self.cfg.from_block - 1
        self.metrics.reorgs.labels(self.role).inc()
        self.log("reorg", logging.WARNING, scanned=scanned, rewind_to=back_to, head=head)
        self.db.x("DELETE FROM blocks WHERE number > ?", back_to)
        # what was learnt from the replaced blocks is unconfirmed until the rescan finds it again
        self.db.x("UPDATE tasks SET found_block=NULL WHERE found_block > ?", back_to)
        self.db.x("UPDATE games SET found_block=NULL WHERE found_block > ?", back_to)
        self.db.set("scanned", min(scanned, back_to))

    # ------------------------------------------------------------------------------------------------ scanning
    def _scan(self) -> None:
        start = self.db.get("scanned") + 1
        while start <= self.safe:
            end = min(self.safe, start + self.cfg.scan_chunk - 1)
            self.scan(start, end)
            b = self.chain.w3.eth.get_block(end)
            self.db.x("INSERT OR REPLACE INTO blocks VALUES (?, ?)", end, "0x" + bytes(b["hash"]).hex())
            self.db.x("DELETE FROM blocks WHERE number < ?", end - 256)
            self.db.set("scanned", end)
            start = end + 1

    def _found_task(self, tid: int, block: int, bond: str | None) -> None:
        if self.db.q("SELECT 1 FROM tasks WHERE task_id=?", tid):
            self.db.x("UPDATE tasks SET found_block=? WHERE task_id=?", block, tid)
            return
        self.db.x("INSERT INTO tasks (task_id, state, found_block, bond, updated) VALUES (?, ?, ?, ?, ?)", tid,
                  TaskState.DISCOVERED.value, block, bond, time.time())
        self.log("transition", what="task", task_id=tid, frm=None, to=TaskState.DISCOVERED.value, block=block)

    def _found_game(self, gid: int, tid: int, block: int) -> None:
        if self.db.q("SELECT 1 FROM games WHERE game_id=?", gid):
            self.db.x("UPDATE games SET found_block=?, task_id=? WHERE game_id=?", block, tid, gid)
            return
        bond = str(self._task(tid).bond)
        self.db.x("INSERT INTO games (game_id, task_id, side, state, found_block, bond, updated) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", gid, tid, self.SIDE, GameProgress.THEIR_TURN.value, block, bond,
                  time.time())
        self.log("transition", what="game", game_id=gid, task_id=tid, frm=None, to=GameProgress.THEIR_TURN.value,
                 block=block)
        self.game_found(gid, tid)

    # ------------------------------------------------------------------------------------------------ workers
    def _task_worker(self, row: sqlite3.Row) -> None:
        if not self._clear_if_settled("tasks", row):
            return
        try:
            t = self._task(row["task_id"])
        except (ChainError, BadFunctionCallOutput):
            return  # not (yet) at the confirmed head
        self.task_step(row["task_id"], TaskState(row["state"]), t)

    def _game_worker(self, row: sqlite3.Row) -> None:
        gid, tid = row["game_id"], row["task_id"]
        if not self._clear_if_settled("games", row):
            return
        try:
            g = decode_game(self.pp, self._call(self.pp.functions.game(gid)))
        except (ChainError, BadFunctionCallOutput):
            return
        if g.task_id != tid or (self.SIDE == "challenger" and g.challenger != self.me):
            self.log("game mismatch", logging.WARNING, game_id=gid, task_id=tid)
            self.db.x("UPDATE games SET found_block=NULL WHERE game_id=?", gid)
            return
        act = decide_game(g, self.SIDE, self.now)
        self._game_state(gid, act.state, phase=int(g.phase), height=g.height, deadline=g.deadline)
        if act.kind == "resolved":
            self.log("game over", game_id=gid, task_id=tid, winner=g.winner, we=act.state.value)
        elif act.kind == "timeout":
            if self._send("games", gid, "timeout",
                          lambda: self.chain.send(self.pp.functions.timeout(gid), sender=self.me)):
                self._game_state(gid, GameProgress.TIMEOUT_PENDING)
        elif act.kind == "move":
            try:
                honest, served = self.traces_for(tid)
            except DataUnavailable as e:
                self.log("cannot move", logging.ERROR, game_id=gid, reason=str(e))
                return
            mv = self._send("games", gid, "move", self.move(gid, g, row, honest, served))
            if mv is not None:
                self.db.x("UPDATE games SET moves=moves+1 WHERE game_id=?", gid)
                self._game_state(gid, GameProgress.MOVE_PENDING, move=mv.what, gas=mv.gas)

    # ------------------------------------------------------------------------------------------------ payments
    def _collect(self) -> None:
        h = self.db.get("withdraw_tx")
        st = self._in_flight(h)
        if st == "waiting":
            return
        if h:
            self.db.set("withdraw_tx", None)
        credit = int(self._call(self.pp.functions.credit(self.me)))
        if credit == 0 or not self._account_idle():
            return

        def sent(hh):
            self.db.set("withdraw_tx", hh)
            self.log("sent", kind="withdraw", tx=hh, amount=str(credit))

        self.chain.on_sent = sent
        try:
            self.chain.send(self.pp.functions.withdraw(), sender=self.me)
            self.metrics.moves.labels(self.role, "withdraw").inc()
            self.metrics.withdrawn.labels(self.role).inc(credit)
            self.log("withdrawn", amount=str(credit))
        except ChainError as e:
            self.log("reverted", logging.WARNING, kind="withdraw", error=e.error or str(e))
        finally:
            self.chain.on_sent = None

    def _update_gauges(self) -> None:
        m, role = self.metrics, self.role
        for s in GameProgress:
            m.games.labels(role, s.value).set(0)
        for r in self.db.q("SELECT state, COUNT(*) AS n FROM games GROUP BY state"):
            m.games.labels(role, r["state"]).set(r["n"])
        for s in TaskState:
            m.tasks.labels(role, s.value).set(0)
        for r in self.db.q("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state"):
            m.tasks.labels(role, r["state"]).set(r["n"])
        marks = ",".join("?" * len(self.BOND_STATES))
        live = self.db.q(f"SELECT bond FROM tasks WHERE state IN ({marks})", *(s.value for s in self.BOND_STATES))
        m.bonds.labels(role).set(sum(int(r["bond"] or 0) for r in live))
