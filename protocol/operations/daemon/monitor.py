"""The head loop every daemon runs (`Monitor`): confirmations, reorganizations, event scanning, re-examining
settled games until they are final, and the task and game workers (the in-flight transactions, costs and
withdrawals are in `protocol.operations.daemon.ledger`). The per-role logic (which events,
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
from web3.exceptions import BadFunctionCallOutput, Web3Exception

from offchain.common.errors import PinpointError
from offchain.inference.trace import Trace
from protocol.chain.connection import _REVERTS, Chain, ChainError
from protocol.inference.game import Deployment
from protocol.inference.types import Game, Task, decode_game, decode_task

from .db import DB
from .ledger import Ledger
from .states import GAME_TERMINAL, SOLVER, TASK_TERMINAL, GameProgress, TaskState, decide_game
from .store import DataUnavailable, Store, TaskRefused
from .telemetry import Metrics

NODE_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)


class DaemonError(PinpointError, RuntimeError):
    """The daemon cannot run: its database belongs to another deployment or account, or no deployment exists."""


@dataclass
class Config:
    """Daemon settings: ``confirmations`` blocks below the head, ``poll_interval`` seconds between head polls,
    ``reorg_depth`` blocks after which a settled task or game is final (until then it is re-examined at every head,
    won and lost games included), ``receipt_wait`` seconds a send waits for its receipt before leaving the
    transaction in flight, ``from_block`` where scanning starts, ``scan_chunk`` blocks per log query,
    ``replace_margin`` seconds before its deadline at which a transaction still in the pool is replaced with higher
    fees (None: never), ``max_games`` the live games beyond which the daemon takes on no new one (no challenge, no
    submission; None: no limit), ``game_window`` seconds: a task first seen in a block older than this is ignored
    (None: all; a game on a task already taken on is always played, its bond is at stake), ``cheat_op`` / ``cheat_element`` (evaluator only) the operator and flat element index its
    committed trace alters (for tests and demos)."""

    confirmations: int = 1
    poll_interval: float = 0.5
    reorg_depth: int = 64
    receipt_wait: float = 5.0
    from_block: int = 0
    scan_chunk: int = 2000
    replace_margin: float | None = 120.0
    max_games: int | None = None
    game_window: int | None = None
    cheat_op: int | None = None
    cheat_element: int | None = None


class Monitor(Ledger):
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
        self.refused: dict[int, str] = {}  # task id -> why it is not taken on (`TaskRefused`)
        self._stop = False
        self.last_head: int | None = None
        self.safe = 0
        self.now = 0
        self.deadlines: dict[int, tuple[int, str]] = {}  # live game id -> (deadline, "ours" | "theirs")
        self._deferred: set[int] = set()  # tasks held back by max_games (logged once)
        chain.on_mined = self._mined
        chain.receipt_timeout = cfg.receipt_wait
        self._watch_broadcasts()
        ident = {"chain_id": int(chain.w3.eth.chain_id), "pinpoint": self.pp.address, "account": self.me,
                 "role": self.role}
        self.metrics.info.labels(self.role, self.me, self.pp.address, str(ident["chain_id"]),
                                 str(cfg.cheat_op is not None).lower()).set(1)
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

    def _task_state(self, tid: int, new: TaskState, **fields) -> None:
        old = self.db.q("SELECT state, settled_block FROM tasks WHERE task_id=?", tid)
        self._settle("tasks", tid, new in TASK_TERMINAL, old)
        if old and old[0]["state"] == new.value:
            return
        self.db.x("UPDATE tasks SET state=?, updated=?, note=? WHERE task_id=?", new.value, time.time(),
                  json.dumps(fields) if fields else None, tid)
        if "bond" in fields:  # the bond we posted (the challenger learns it when it challenges)
            self.db.x("UPDATE tasks SET bond=? WHERE task_id=?", str(fields["bond"]), tid)
        self.log("transition", what="task", task_id=tid, frm=old[0]["state"] if old else None, to=new.value,
                 **fields)

    def _game_state(self, gid: int, new: GameProgress, **fields) -> None:
        old = self.db.q("SELECT state, settled_block FROM games WHERE game_id=?", gid)
        self._settle("games", gid, new in GAME_TERMINAL, old)
        if old and old[0]["state"] == new.value:
            return
        self.db.x("UPDATE games SET state=?, updated=? WHERE game_id=?", new.value, time.time(), gid)
        self.log("transition", what="game", game_id=gid, frm=old[0]["state"] if old else None, to=new.value,
                 **fields)

    def _settle(self, table: str, key: int, terminal: bool, old: list) -> None:
        """Record the confirmed head at which a row is first seen settled; forget it when the row is live again."""
        col = "task_id" if table == "tasks" else "game_id"
        if not terminal:
            if old and old[0]["settled_block"] is not None:
                self.db.x(f"UPDATE {table} SET settled_block=NULL WHERE {col}=?", key)
        elif not old or old[0]["settled_block"] is None:
            self.db.x(f"UPDATE {table} SET settled_block=? WHERE {col}=?", self.safe, key)

    # ------------------------------------------------------------------------------------------------ traces
    def traces_for(self, tid: int) -> tuple[Trace, Trace]:
        """(honest trace, trace we commit) of task ``tid``: evaluated from the store once per process. Raises
        DataUnavailable, TaskRefused (remembered: the task is not evaluated again) if the loader refuses the model
        or, on the solver's side, if the model's deepest tensor tree is deeper than the task's declared
        ``maxTensorDepth`` (a solver that took such a task would have its bond returned and the fee burned at the
        first challenge of that operator: no fee to earn), or DaemonError for a bad cheat setting."""
        if tid in self.refused:
            raise TaskRefused(self.refused[tid])
        if tid not in self.traces:
            t = self._task(tid)
            model_root = bytes(self._call(self.pp.functions.modelRoot(tid)))
            t0 = time.perf_counter()
            try:
                honest = self.store.evaluate(model_root, t.input_root)
                if self.SIDE == SOLVER and honest.max_tensor_depth() > t.max_tensor_depth:
                    raise TaskRefused(f"the model's deepest tensor tree has depth {honest.max_tensor_depth()}, "
                                      f"more than the task's declared maxTensorDepth {t.max_tensor_depth}: a "
                                      f"challenge at that operator voids the task")
            except TaskRefused as e:
                self.refused[tid] = str(e)
                self.log("task refused", logging.WARNING, task_id=tid, reason=str(e))
                raise
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
        if self.cfg.cheat_op is not None:
            self.log("cheat mode", logging.WARNING, op=self.cfg.cheat_op, element=self.cfg.cheat_element)
        self.log("started", account=self.me, pinpoint=self.pp.address, confirmations=self.cfg.confirmations,
                 reorg_depth=self.cfg.reorg_depth, cheat=self.cfg.cheat_op is not None,
                 resumed_games=[r["game_id"] for r in self.db.q("SELECT game_id FROM games")])
        t_end = None if max_seconds is None else time.monotonic() + max_seconds
        delay = self.cfg.poll_interval
        while not self._stop and (t_end is None or time.monotonic() < t_end):
            try:
                self.tick()
                self.metrics.up.labels(self.role).set(1)
                if delay > self.cfg.poll_interval:
                    self.log("node reachable again")
                delay = self.cfg.poll_interval
            except NODE_ERRORS + (Web3Exception, OSError) as e:
                self.metrics.up.labels(self.role).set(0)
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
        for row in self._unsettled("games", GAME_TERMINAL):
            if not self._stop:
                self._guard(self._game_worker, row, game_id=row["game_id"])
        for row in self._unsettled("tasks", TASK_TERMINAL):
            if not self._stop:
                self._guard(self._task_worker, row, task_id=row["task_id"])
        self._collect()
        self._update_gauges()
        self.metrics.acted.labels(self.role).set(self.safe)
        self.last_head = head
        return True

    def final_block(self) -> int:
        """The highest block that can no longer be reorganized away (``reorg_depth`` below the confirmed head)."""
        return self.safe - max(self.cfg.reorg_depth, 0)

    def _unsettled(self, table: str, terminal) -> list[sqlite3.Row]:
        """Rows of ``table`` a worker examines at this head: every one not in a ``terminal`` state, and the terminal
        ones until the block where they were seen settled is final (a reorganization may undo a win or a loss)."""
        key = "game_id" if table == "games" else "task_id"
        marks = ",".join("?" * len(terminal))
        return self.db.q(f"SELECT * FROM {table} WHERE found_block IS NOT NULL AND (state NOT IN ({marks}) "
                         f"OR settled_block IS NULL OR settled_block > ?) ORDER BY {key}",
                         *(s.value for s in terminal), self.final_block())

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
        # a settlement seen in a replaced block is re-examined from scratch (won and lost games included)
        self.db.x("UPDATE tasks SET settled_block=NULL WHERE settled_block > ?", back_to)
        self.db.x("UPDATE games SET settled_block=NULL WHERE settled_block > ?", back_to)
        self.db.x("DELETE FROM paid WHERE block > ?", back_to)  # found again by the rescan if still there
        self.db.set("scanned", min(scanned, back_to))

    # ------------------------------------------------------------------------------------------------ scanning
    def _scan(self) -> None:
        start = self.db.get("scanned") + 1
        while start <= self.safe:
            end = min(self.safe, start + self.cfg.scan_chunk - 1)
            self.scan(start, end)
            self._scan_paid(start, end)
            b = self.chain.w3.eth.get_block(end)
            self.db.x("INSERT OR REPLACE INTO blocks VALUES (?, ?)", end, "0x" + bytes(b["hash"]).hex())
            self.db.x("DELETE FROM blocks WHERE number < ?", end - max(256, self.cfg.reorg_depth + 1))
            self.db.set("scanned", end)
            start = end + 1

    def _scan_paid(self, start: int, end: int) -> None:
        """Record what Pinpoint paid us in blocks ``start..end`` (its `Withdrawn` events: payouts pushed by a game's
        resolution and our withdrawals), once per log, and set the ``pinpoint_paid_wei`` gauge to their sum."""
        for lg in self.pp.events.Withdrawn().get_logs(from_block=start, to_block=end, argument_filters={"to": self.me}):
            self.db.x("INSERT OR IGNORE INTO paid VALUES (?, ?, ?, ?)", "0x" + bytes(lg["transactionHash"]).hex(),
                      int(lg["logIndex"]), int(lg["blockNumber"]), str(int(lg["args"]["amount"])))
        self.metrics.paid.labels(self.role).set(sum(int(r["amount"]) for r in self.db.q("SELECT amount FROM paid")))

    def _outside_window(self, block: int, **ids) -> bool:
        """True (logged once) if ``block`` is older than ``Config.game_window`` seconds: not taken on."""
        if self.cfg.game_window is None:
            return False
        ts = int(self.chain.w3.eth.get_block(block)["timestamp"])
        latest = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        if ts >= latest - self.cfg.game_window:
            return False
        self.log("outside game window", block=block, age=latest - ts, game_window=self.cfg.game_window, **ids)
        return True

    def live_games(self) -> int:
        """Games tracked and not settled (the count ``Config.max_games`` bounds)."""
        marks = ",".join("?" * len(GAME_TERMINAL))
        return self.db.q(f"SELECT COUNT(*) AS n FROM games WHERE state NOT IN ({marks})",
                         *(s.value for s in GAME_TERMINAL))[0]["n"]

    def at_capacity(self, tid: int) -> bool:
        """True (logged once per task) if ``Config.max_games`` live games leave no room for a new one."""
        if self.cfg.max_games is None or self.live_games() < self.cfg.max_games:
            return False
        if tid not in self._deferred:
            self._deferred.add(tid)
            self.log("max games", task_id=tid, live=self.live_games(), max_games=self.cfg.max_games)
        return True

    def _found_task(self, tid: int, block: int, bond: str | None) -> None:
        if self.db.q("SELECT 1 FROM tasks WHERE task_id=?", tid):
            self.db.x("UPDATE tasks SET found_block=? WHERE task_id=?", block, tid)
            return
        if self._outside_window(block, task_id=tid):
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
        if row["state"] in (s.value for s in GAME_TERMINAL) and act.kind != "resolved":
            self.log("game reopened", logging.WARNING, game_id=gid, task_id=tid, was=row["state"],
                     phase=int(g.phase), turn=g.turn.name.lower())
        self._game_state(gid, act.state, phase=int(g.phase), height=g.height, deadline=g.deadline)
        if act.kind == "resolved" or g.queued:
            self.deadlines.pop(gid, None)
        else:
            self.deadlines[gid] = (g.deadline, "ours" if act.state == GameProgress.OUR_TURN else "theirs")
        if act.kind == "resolved":
            if row["state"] != act.state.value:
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
