"""The evaluator and challenger daemons: long-running players of pinpoint games against a JSON-RPC node.

Structure (after op-challenger): one loop over new chain heads. At each new head the daemon
  1. computes the confirmed head ``safe = head - confirmations`` and checks the block hashes it recorded for a
     reorganization (rewinding its event scan to the common ancestor if one happened),
  2. scans the confirmed blocks it has not seen for the events it cares about (TaskPosted, ResultSubmitted,
     Challenged) and records what they reveal in its SQLite database,
  3. runs one worker per tracked task and per tracked game: each reads the contract state *at the confirmed head*
     and moves an explicit state machine (below), sending at most one transaction,
  4. collects what the account is owed (`withdraw`).
Every decision is recomputed from chain state plus the daemon's own evaluation of the task, so a daemon killed at
any point and restarted resumes the same games; the database only remembers what the chain cannot tell it cheaply
(which blocks it scanned, which transactions it has in flight).

State machines (`TaskState`, `GameState`; every transition is logged as {"event": "transition", ...}):

  evaluator task:  discovered -> submitting -> submitted -> finalizing -> finalized
                   discovered -> unavailable (model or input not in the store, or roots differ)
                   submitting -> taken (another solver was first, or the task was cancelled)
                   submitted | finalizing -> rejected (a challenger won a game)
  challenger task: discovered -> agreed (our trace root equals the submitted one)
                   discovered -> challenging -> disputed -> done
                   discovered -> unavailable | missed (the challenge window closed first)
  game (either side):  their_turn <-> our_turn -> move_pending -> their_turn ...
                       their_turn -> timeout_pending (the opponent missed its deadline)
                       -> won | lost

In-flight transactions: the hash of every transaction is written to the database before the daemon waits for it.
A row with a transaction in flight is not acted on again until that transaction is confirmed (mined at or below
the confirmed head), or until the node no longer knows it (dropped, e.g. by a reorganization), in which case the
next action is recomputed from chain state. Value-carrying transactions (submit, challenge) are only sent when the
account has no unknown transaction in the node's pool, and a challenge only when the chain (up to the latest
block) shows no game of ours on that task: a bond is never posted twice.

Data availability is assumed, as in Agatha: the daemons find a task's model and input in a local content-addressed
store (`Store`, filled by `pinpoint task post`) keyed by the roots posted on chain, and check both roots after
loading.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable

import numpy as np
import requests
from web3.exceptions import BadFunctionCallOutput, TimeExhausted, TransactionNotFound, Web3Exception

from offchain.inference.kernels import InputError, evaluate, load_input
from offchain.inference.graph import ModelError, load
from offchain.inference.trace import Trace

from protocol.chain.connection import _REVERTS, Chain, ChainError, Tx
from protocol.inference.game import Challenger, Deployment, Solver, challenger_move, read_game, solver_move
from protocol.inference.game import GameState as ChainGame
from offchain.common.errors import PinpointError

EVALUATOR, CHALLENGER = "evaluator", "challenger"
# indices of the fields of Pinpoint.Task as returned by task(id)
T_SOLVER, T_STATUS, T_SUBMITTED_AT, T_OPEN_GAMES, T_FEE, T_BOND, T_INPUT_ROOT, T_TRACE_ROOT = 0, 1, 5, 7, 8, 9, 11, 12
S_OPEN, S_SUBMITTED, S_FINALIZED, S_REJECTED, S_CANCELLED = 1, 2, 3, 4, 5


class DaemonError(PinpointError, RuntimeError):
    """The daemon cannot run: its database belongs to another deployment or account, or no deployment exists."""


class DataUnavailable(PinpointError, RuntimeError):
    """The model or input of a task is not in the local store, or what is there does not hash to the posted roots."""


# ---------------------------------------------------------------------------------------------------- store

class Store:
    """Content-addressed store of models and inputs: ``<dir>/<modelRoot>.onnx`` and ``<dir>/<inputRoot>.npy``
    (roots as 0x-hex, as posted on chain)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def put(self, model_path: Path, trace: Trace) -> tuple[Path, Path]:
        """Copy the model and save the (preprocessed float32) input tensor of ``trace``; returns both paths."""
        self.dir.mkdir(parents=True, exist_ok=True)
        m = self.dir / f"0x{trace.graph.model_root().hex()}.onnx"
        x = self.dir / f"0x{trace.input_root.hex()}.npy"
        if not m.exists():
            shutil.copyfile(model_path, m)
        if not x.exists():
            np.save(x, trace.tensors[0], allow_pickle=False)
        return m, x

    def evaluate(self, model_root: bytes, input_root: bytes) -> Trace:
        """Load and evaluate the task with these roots (XCE fast path) and commit. Raises DataUnavailable if a file
        is missing or unreadable, or the loaded model or input does not hash to its root."""
        m = self.dir / f"0x{model_root.hex()}.onnx"
        x = self.dir / f"0x{input_root.hex()}.npy"
        if not m.exists() or not x.exists():
            raise DataUnavailable(f"not in the store {self.dir}: " + ", ".join(p.name for p in (m, x) if not p.exists()))
        try:
            graph = load(m)
            if graph.model_root() != model_root:
                raise DataUnavailable(f"{m.name} has model root 0x{graph.model_root().hex()}")
            trace = Trace.of(evaluate(graph, load_input(x, graph)))
        except (ModelError, InputError) as e:
            raise DataUnavailable(str(e)) from None
        if trace.input_root != input_root:
            raise DataUnavailable(f"{x.name} has input root 0x{trace.input_root.hex()}")
        return trace


# ---------------------------------------------------------------------------------------------------- states

class TaskState(str, Enum):
    DISCOVERED = "discovered"
    UNAVAILABLE = "unavailable"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    FINALIZING = "finalizing"
    FINALIZED = "finalized"
    REJECTED = "rejected"
    TAKEN = "taken"
    AGREED = "agreed"
    CHALLENGING = "challenging"
    DISPUTED = "disputed"
    MISSED = "missed"
    DONE = "done"


TASK_TERMINAL = {TaskState.UNAVAILABLE, TaskState.FINALIZED, TaskState.REJECTED, TaskState.TAKEN, TaskState.AGREED,
                 TaskState.MISSED, TaskState.DONE}


class GameState(str, Enum):
    THEIR_TURN = "their_turn"
    OUR_TURN = "our_turn"
    MOVE_PENDING = "move_pending"
    TIMEOUT_PENDING = "timeout_pending"
    WON = "won"
    LOST = "lost"


GAME_TERMINAL = {GameState.WON, GameState.LOST}


@dataclass(frozen=True)
class GameAction:
    """What a game worker does next: ``kind`` in {"wait", "move", "timeout", "resolved"}; ``state`` the new state."""

    kind: str
    state: GameState


def decide_game(g: ChainGame, side: str, now: int) -> GameAction:
    """The next action in a game from its on-chain state ``g`` (read at the confirmed head), for ``side``
    ("solver" or "challenger") at chain time ``now`` (seconds, latest block).

    Pure: it depends on chain state only, which is what lets a restarted daemon resume."""
    if g.phase == 3:
        won = g.challenger_won == (side == "challenger")
        return GameAction("resolved", GameState.WON if won else GameState.LOST)
    ours = (g.turn == 0) == (side == "solver")
    if ours:
        # past our own deadline the opponent can claim a timeout: still try (the chain will refuse if too late)
        return GameAction("move", GameState.OUR_TURN)
    if now > g.deadline:
        return GameAction("timeout", GameState.THEIR_TURN)
    return GameAction("wait", GameState.THEIR_TURN)


# ---------------------------------------------------------------------------------------------------- chain

class DaemonChain(Chain):
    """A `Chain` whose `send` reports each transaction hash (``on_sent(hash)``) before waiting for its receipt, so
    the daemon can persist it first, and waits at most ``receipt_timeout`` seconds (web3 TimeExhausted after)."""

    on_sent: Callable[[str], None] | None = None
    on_mined: Callable[[str, object], None] | None = None
    receipt_timeout: float = 90

    def send(self, fn, sender: str | None = None, value: int = 0, gas: int | None = None) -> Tx:
        """Estimate, sign locally, send, report the hash, wait. Raises ChainError on a revert (estimation or
        execution), TimeExhausted if not mined in time (the hash was reported: it stays in flight)."""
        sender = sender or self.accounts[0]
        if sender not in self.local_accounts:
            raise ChainError(f"no key for {sender}")
        params = {"from": sender, "value": value}
        try:
            params["gas"] = gas or int(fn.estimate_gas(params) * 1.2) + 20_000
            params["nonce"] = self.w3.eth.get_transaction_count(sender, "pending")
            params["chainId"] = self.w3.eth.chain_id
            signed = self.local_accounts[sender].sign_transaction(fn.build_transaction(params))
        except _REVERTS as e:
            raise self._revert(e) from None
        h = "0x" + bytes(signed.hash).hex()
        if self.on_sent:
            self.on_sent(h)
        self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=self.receipt_timeout, poll_latency=0.2)
        if self.on_mined:
            self.on_mined(h, receipt)
        if receipt["status"] != 1:
            raise ChainError(f"transaction {h} reverted", None)
        return Tx(h, int(receipt["gasUsed"]), receipt)


NODE_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeExhausted)


# ---------------------------------------------------------------------------------------------------- database

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY, state TEXT NOT NULL, found_block INTEGER, bond TEXT,
    pending_tx TEXT, pending_kind TEXT, note TEXT, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS games (
    game_id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, side TEXT NOT NULL, state TEXT NOT NULL,
    found_block INTEGER, bond TEXT, moves INTEGER NOT NULL DEFAULT 0,
    pending_tx TEXT, pending_kind TEXT, note TEXT, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    hash TEXT PRIMARY KEY, kind TEXT NOT NULL, ref INTEGER, sent REAL NOT NULL, block INTEGER, gas INTEGER,
    fee_wei TEXT, status INTEGER);
"""


class DB:
    """The daemon's SQLite state (autocommit: every statement is durable on return)."""

    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    def get(self, key: str, default=None):
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(r[0]) if r else default

    def set(self, key: str, value) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def q(self, sql: str, *args) -> list[sqlite3.Row]:
        return self.conn.execute(sql, args).fetchall()

    def x(self, sql: str, *args) -> None:
        self.conn.execute(sql, args)

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------------------------------------------- logging

class JsonFormatter(logging.Formatter):
    def format(self, rec: logging.LogRecord) -> str:
        d = {"ts": round(rec.created, 3), "level": rec.levelname.lower(), "event": rec.getMessage()}
        d.update(getattr(rec, "fields", {}))
        return json.dumps(d, default=str)


def json_logger(name: str, path: Path | None = None) -> logging.Logger:
    """A logger writing JSON lines to ``path`` (appending) or to stderr."""
    lg = logging.getLogger(f"pinpoint.{name}.{id(path)}")
    lg.setLevel(logging.INFO)
    lg.propagate = False
    h = logging.FileHandler(path) if path else logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonFormatter())
    lg.handlers[:] = [h]
    return lg


# ---------------------------------------------------------------------------------------------------- metrics

class Metrics:
    """Prometheus metrics of one daemon (own registry; served by `serve`)."""

    def __init__(self, role: str):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry()
        self.role = role
        self.games = Gauge("pinpoint_games_tracked", "Games tracked, by state", ["role", "state"], registry=r)
        self.tasks = Gauge("pinpoint_tasks_tracked", "Tasks tracked, by state", ["role", "state"], registry=r)
        self.moves = Counter("pinpoint_moves", "Transactions sent, by kind", ["role", "kind"], registry=r)
        self.gas = Counter("pinpoint_gas_spent", "Gas used by the daemon's mined transactions (gas)", ["role"],
                           registry=r)
        self.fees = Counter("pinpoint_fees_spent_wei", "Transaction fees paid (wei)", ["role"], registry=r)
        self.bonds = Gauge("pinpoint_bonds_at_stake_wei", "Bonds posted and not yet settled (wei)", ["role"],
                           registry=r)
        self.eval = Histogram("pinpoint_evaluation_seconds", "Evaluation and commitment latency (s)", ["role"],
                              buckets=(0.5, 1, 2, 4, 8, 16, 32, 64), registry=r)
        self.acted = Gauge("pinpoint_highest_acted_block", "Highest confirmed block acted on", ["role"], registry=r)
        self.head = Gauge("pinpoint_head_block", "Latest block seen", ["role"], registry=r)
        self.reorgs = Counter("pinpoint_reorgs", "Reorganizations detected", ["role"], registry=r)
        self.rpc_errors = Counter("pinpoint_rpc_errors", "Failed node requests", ["role"], registry=r)
        self.withdrawn = Counter("pinpoint_withdrawn_wei", "Wei withdrawn from Pinpoint", ["role"], registry=r)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve /metrics on ``addr:port`` (a daemon thread)."""
        from prometheus_client import start_http_server

        start_http_server(port, addr=addr, registry=self.registry)


# ---------------------------------------------------------------------------------------------------- daemon

@dataclass
class Config:
    """Daemon settings: ``confirmations`` blocks below the head, ``poll_interval`` seconds between head polls,
    ``from_block`` where scanning starts, ``cheat_op`` / ``cheat_element`` (evaluator only) the operator and flat
    element index its committed trace alters (for tests and demonstrations)."""

    role: str
    confirmations: int = 1
    poll_interval: float = 0.5
    from_block: int = 0
    scan_chunk: int = 2000
    cheat_op: int | None = None
    cheat_element: int | None = None


class Daemon:
    """One evaluator or challenger. ``run()`` loops until SIGTERM/SIGINT (or ``stop()``)."""

    def __init__(self, chain: DaemonChain, pinpoint_address: str, db: DB, store: Store, cfg: Config,
                 log: logging.Logger, metrics: Metrics | None = None):
        if cfg.role not in (EVALUATOR, CHALLENGER):
            raise DaemonError(f"unknown role {cfg.role!r}")
        self.chain, self.db, self.store, self.cfg, self.logger = chain, db, store, cfg, log
        self.metrics = metrics or Metrics(cfg.role)
        self.me = chain.accounts[0]
        self.dep = Deployment.at(chain, pinpoint_address)
        self.pp = self.dep.pinpoint
        self.side = "solver" if cfg.role == EVALUATOR else "challenger"
        self.traces: dict[int, tuple[Trace, Trace]] = {}  # task id -> (honest, committed)
        self._stop = False
        self.last_head: int | None = None
        self.safe = 0
        chain.on_mined = self._mined
        ident = {"chain_id": int(chain.w3.eth.chain_id), "pinpoint": self.pp.address, "account": self.me,
                 "role": cfg.role}
        known = db.get("identity")
        if known is None:
            db.set("identity", ident)
            db.set("scanned", cfg.from_block - 1)
        elif known != ident:
            raise DaemonError(f"database belongs to {known}, not {ident}")

    # ------------------------------------------------------------------------------------------------ plumbing
    def log(self, event: str, level: int = logging.INFO, **fields) -> None:
        self.logger.log(level, event, extra={"fields": {"role": self.cfg.role, **fields}})

    def stop(self, *_args) -> None:
        """Ask the loop to end after the current step (the SIGTERM / SIGINT handler)."""
        self._stop = True

    def _call(self, fn, block="safe"):
        try:
            return fn.call({"from": self.me}, block_identifier=self.safe if block == "safe" else block)
        except _REVERTS as e:
            raise Chain._revert(e) from None

    def _mined(self, h: str, receipt) -> None:
        fee = int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice", 0) or 0)
        new = not self.db.q("SELECT 1 FROM txs WHERE hash=? AND block IS NOT NULL", h)
        self.db.x("UPDATE txs SET block=?, gas=?, fee_wei=?, status=? WHERE hash=?", int(receipt["blockNumber"]),
                  int(receipt["gasUsed"]), str(fee), int(receipt["status"]), h)
        if new:
            self.metrics.gas.labels(self.cfg.role).inc(int(receipt["gasUsed"]))
            self.metrics.fees.labels(self.cfg.role).inc(fee)

    def _send(self, table: str, key: int, kind: str, thunk: Callable[[], object]):
        """Run ``thunk`` (which sends one transaction) recording the hash in row ``key`` of ``table`` before the
        wait. Returns the thunk's result, or None if it reverted (logged; the next head recomputes)."""
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
            self.metrics.moves.labels(self.cfg.role, kind).inc()
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

    def _game_state(self, gid: int, new: GameState, **fields) -> None:
        old = self.db.q("SELECT state FROM games WHERE game_id=?", gid)
        if old and old[0]["state"] == new.value:
            return
        self.db.x("UPDATE games SET state=?, updated=? WHERE game_id=?", new.value, time.time(), gid)
        self.log("transition", what="game", game_id=gid, frm=old[0]["state"] if old else None, to=new.value,
                 **fields)

    # ------------------------------------------------------------------------------------------------ traces
    def traces_for(self, tid: int) -> tuple[Trace, Trace]:
        """(honest trace, trace we commit) of task ``tid``: evaluated from the store once per process. The
        committed trace differs from the honest one only for an evaluator run with ``cheat_op``. Raises
        DataUnavailable."""
        if tid not in self.traces:
            t = self._call(self.pp.functions.task(tid))
            model_root = bytes(self._call(self.pp.functions.modelRoot(tid)))
            t0 = time.perf_counter()
            honest = self.store.evaluate(model_root, bytes(t[T_INPUT_ROOT]))
            served = honest
            if self.cfg.role == EVALUATOR and self.cfg.cheat_op is not None:
                j = self.cfg.cheat_op
                if not 0 <= j < honest.graph.n_ops:
                    raise DaemonError(f"--cheat-op must be in [0, {honest.graph.n_ops})")
                n = honest.graph.ops[j].out.numel
                e = self.cfg.cheat_element if self.cfg.cheat_element is not None else n // 2
                served = honest.altered(j, e % n)
                self.log("cheating", logging.WARNING, task_id=tid, op=j, element=e % n)
            dt = time.perf_counter() - t0
            self.metrics.eval.labels(self.cfg.role).observe(dt)
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
                self.metrics.rpc_errors.labels(self.cfg.role).inc()
                self.log("node error", logging.WARNING, error=f"{type(e).__name__}: {e}"[:300])
                delay = min(max(delay * 2, 0.5), 10.0)
            end = time.monotonic() + delay
            while not self._stop and time.monotonic() < end:
                time.sleep(min(0.1, delay))
        self.log("stopped")

    def tick(self) -> bool:
        """One step at the current head; returns False if the head has not moved since the last step."""
        head = int(self.chain.w3.eth.block_number)
        self.metrics.head.labels(self.cfg.role).set(head)
        if head == self.last_head:
            return False
        self.safe = max(0, head - self.cfg.confirmations)
        self._check_reorg(head)
        self._scan()
        self.now = int(self.chain.w3.eth.get_block("latest")["timestamp"])
        for row in self.db.q("SELECT * FROM games WHERE found_block IS NOT NULL ORDER BY game_id"):
            if GameState(row["state"]) not in GAME_TERMINAL and not self._stop:
                self._guard(self._game_worker, row, game_id=row["game_id"])
        for row in self.db.q("SELECT * FROM tasks WHERE found_block IS NOT NULL ORDER BY task_id"):
            if TaskState(row["state"]) not in TASK_TERMINAL and not self._stop:
                self._guard(self._task_worker, row, task_id=row["task_id"])
        self._collect()
        self._update_gauges()
        self.metrics.acted.labels(self.cfg.role).set(self.safe)
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
        self.metrics.reorgs.labels(self.cfg.role).inc()
        self.log("reorg", logging.WARNING, scanned=scanned, rewind_to=back_to, head=head)
        self.db.x("DELETE FROM blocks WHERE number > ?", back_to)
        # what was learnt from the replaced blocks is unconfirmed until the rescan finds it again
        self.db.x("UPDATE tasks SET found_block=NULL WHERE found_block > ?", back_to)
        self.db.x("UPDATE games SET found_block=NULL WHERE found_block > ?", back_to)
        self.db.set("scanned", min(scanned, back_to))

    # ------------------------------------------------------------------------------------------------ scanning
    def _scan(self) -> None:
        start = self.db.get("scanned") + 1
        ev = self.pp.events
        while start <= self.safe:
            end = min(self.safe, start + self.cfg.scan_chunk - 1)
            if self.cfg.role == EVALUATOR:
                for lg in ev.TaskPosted().get_logs(from_block=start, to_block=end):
                    self._found_task(int(lg["args"]["taskId"]), int(lg["blockNumber"]), str(lg["args"]["bond"]))
                for lg in ev.Challenged().get_logs(from_block=start, to_block=end):
                    tid = int(lg["args"]["taskId"])
                    if self._call(self.pp.functions.task(tid))[T_SOLVER] == self.me:
                        self._found_game(int(lg["args"]["gameId"]), tid, int(lg["blockNumber"]))
            else:
                for lg in ev.ResultSubmitted().get_logs(from_block=start, to_block=end):
                    if lg["args"]["solver"] != self.me:
                        self._found_task(int(lg["args"]["taskId"]), int(lg["blockNumber"]), None)
                for lg in ev.Challenged().get_logs(from_block=start, to_block=end,
                                                   argument_filters={"challenger": self.me}):
                    self._found_game(int(lg["args"]["gameId"]), int(lg["args"]["taskId"]), int(lg["blockNumber"]))
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
        bond = str(int(self._call(self.pp.functions.task(tid))[T_BOND]))
        self.db.x("INSERT INTO games (game_id, task_id, side, state, found_block, bond, updated) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", gid, tid, self.side, GameState.THEIR_TURN.value, block, bond,
                  time.time())
        self.log("transition", what="game", game_id=gid, task_id=tid, frm=None, to=GameState.THEIR_TURN.value,
                 block=block)
        if self.cfg.role == CHALLENGER:
            self._task_state(tid, TaskState.DISPUTED, game_id=gid)

    # ------------------------------------------------------------------------------------------------ tasks
    def _task_worker(self, row: sqlite3.Row) -> None:
        if not self._clear_if_settled("tasks", row):
            return
        tid = row["task_id"]
        try:
            t = self._call(self.pp.functions.task(tid))
        except (ChainError, BadFunctionCallOutput):
            return  # not (yet) at the confirmed head
        if self.cfg.role == EVALUATOR:
            self._evaluator_task(tid, TaskState(row["state"]), t)
        else:
            self._challenger_task(tid, TaskState(row["state"]), t)

    def _evaluator_task(self, tid: int, state: TaskState, t) -> None:
        status, mine = t[T_STATUS], t[T_SOLVER] == self.me
        if status == S_REJECTED and mine:
            return self._task_state(tid, TaskState.REJECTED)
        if status == S_FINALIZED and mine:
            return self._task_state(tid, TaskState.FINALIZED)
        if status != S_OPEN and not mine:
            return self._task_state(tid, TaskState.TAKEN, status=status)
        if status == S_OPEN:
            if state not in (TaskState.DISCOVERED, TaskState.SUBMITTING):
                self._task_state(tid, TaskState.DISCOVERED)
            try:
                _, served = self.traces_for(tid)
            except DataUnavailable as e:
                return self._task_state(tid, TaskState.UNAVAILABLE, reason=str(e))
            if not self._account_idle():
                return
            fn = self.pp.functions.submit(tid, served.output_root, served.trace_root, served.output_proof())
            bond = int(t[T_BOND])
            if self._send("tasks", tid, "submit", lambda: self.chain.send(fn, sender=self.me, value=bond)):
                self._task_state(tid, TaskState.SUBMITTING, bond=str(bond))
            return
        # submitted by us
        if state in (TaskState.DISCOVERED, TaskState.SUBMITTING):
            self._task_state(tid, TaskState.SUBMITTED)
        closes = int(t[T_SUBMITTED_AT]) + int(self._call(self.pp.functions.challengeWindow()))
        if int(t[T_OPEN_GAMES]) == 0 and self.now > closes:
            if self._send("tasks", tid, "finalize",
                          lambda: self.chain.send(self.pp.functions.finalize(tid), sender=self.me)):
                self._task_state(tid, TaskState.FINALIZING)

    def _challenger_task(self, tid: int, state: TaskState, t) -> None:
        if state == TaskState.DISPUTED:
            open_ = [r for r in self.db.q("SELECT state FROM games WHERE task_id=?", tid)
                     if GameState(r["state"]) not in GAME_TERMINAL]
            if not open_:
                self._task_state(tid, TaskState.DONE)
            return
        if t[T_STATUS] != S_SUBMITTED:
            if state == TaskState.DISCOVERED:
                self._task_state(tid, TaskState.MISSED, status=t[T_STATUS])
            return
        try:
            honest, _ = self.traces_for(tid)
        except DataUnavailable as e:
            return self._task_state(tid, TaskState.UNAVAILABLE, reason=str(e))
        if bytes(t[T_TRACE_ROOT]) == honest.trace_root:
            return self._task_state(tid, TaskState.AGREED)
        closes = int(t[T_SUBMITTED_AT]) + int(self._call(self.pp.functions.challengeWindow()))
        if self.now >= closes:
            return self._task_state(tid, TaskState.MISSED, reason="challenge window closed")
        # never a second bond: no game of ours on this task up to the latest block, nothing of ours in the pool
        ours = self.pp.events.Challenged().get_logs(from_block=self.cfg.from_block, to_block="latest",
                                                    argument_filters={"taskId": tid, "challenger": self.me})
        if ours or not self._account_idle():
            return
        bond = int(t[T_BOND])
        self.log("disagree", task_id=tid, theirs="0x" + bytes(t[T_TRACE_ROOT]).hex(),
                 ours="0x" + honest.trace_root.hex())
        if self._send("tasks", tid, "challenge",
                      lambda: self.chain.send(self.pp.functions.challenge(tid), sender=self.me, value=bond)):
            self._task_state(tid, TaskState.CHALLENGING, bond=str(bond))

    # ------------------------------------------------------------------------------------------------ games
    def _game_worker(self, row: sqlite3.Row) -> None:
        gid, tid = row["game_id"], row["task_id"]
        if not self._clear_if_settled("games", row):
            return
        try:
            g = ChainGame(*self._chain_game(gid))
        except (ChainError, BadFunctionCallOutput):
            return
        if g.task_id != tid or (self.side == "challenger" and g.challenger != self.me):
            self.log("game mismatch", logging.WARNING, game_id=gid, task_id=tid)
            self.db.x("UPDATE games SET found_block=NULL WHERE game_id=?", gid)
            return
        act = decide_game(g, self.side, self.now)
        self._game_state(gid, act.state, phase=g.phase, height=g.height, deadline=g.deadline)
        if act.kind == "resolved":
            self.log("game over", game_id=gid, task_id=tid, winner="challenger" if g.challenger_won else "solver",
                     we=act.state.value)
        elif act.kind == "timeout":
            if self._send("games", gid, "timeout",
                          lambda: self.chain.send(self.pp.functions.timeout(gid), sender=self.me)):
                self._game_state(gid, GameState.TIMEOUT_PENDING)
        elif act.kind == "move":
            try:
                honest, served = self.traces_for(tid)
            except DataUnavailable as e:
                self.log("cannot move", logging.ERROR, game_id=gid, reason=str(e))
                return
            if self.side == "solver":
                thunk = lambda: solver_move(self.dep, gid, Solver(served, self.me))  # noqa: E731
            else:
                rtx = self._last_reveal_tx(gid, row["found_block"]) if g.m > 0 else None
                thunk = lambda: challenger_move(self.dep, gid, Challenger(honest, self.me), rtx)  # noqa: E731
            mv = self._send("games", gid, "move", thunk)
            if mv is not None:
                self.db.x("UPDATE games SET moves=moves+1 WHERE game_id=?", gid)
                self._game_state(gid, GameState.MOVE_PENDING, move=mv.what, gas=mv.gas)

    def _chain_game(self, gid: int):
        g = self._call(self.pp.functions.game(gid))
        return (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], bytes(g[9]))

    def _last_reveal_tx(self, gid: int, from_block: int) -> str:
        logs = self.pp.events.Revealed().get_logs(from_block=from_block, to_block=self.safe,
                                                  argument_filters={"gameId": gid})
        if not logs:
            raise ChainError(f"no Revealed event for game {gid}")
        return "0x" + bytes(logs[-1]["transactionHash"]).hex()

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
            self.metrics.moves.labels(self.cfg.role, "withdraw").inc()
            self.metrics.withdrawn.labels(self.cfg.role).inc(credit)
            self.log("withdrawn", amount=str(credit))
        except ChainError as e:
            self.log("reverted", logging.WARNING, kind="withdraw", error=e.error or str(e))
        finally:
            self.chain.on_sent = None

    def _update_gauges(self) -> None:
        m, role = self.metrics, self.cfg.role
        for s in GameState:
            m.games.labels(role, s.value).set(0)
        for r in self.db.q("SELECT state, COUNT(*) AS n FROM games GROUP BY state"):
            m.games.labels(role, r["state"]).set(r["n"])
        for s in TaskState:
            m.tasks.labels(role, s.value).set(0)
        for r in self.db.q("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state"):
            m.tasks.labels(role, r["state"]).set(r["n"])
        if role == EVALUATOR:
            live = self.db.q("SELECT bond FROM tasks WHERE state IN (?, ?, ?)", TaskState.SUBMITTING.value,
                             TaskState.SUBMITTED.value, TaskState.FINALIZING.value)
        else:
            live = self.db.q("SELECT bond FROM tasks WHERE state IN (?, ?)", TaskState.CHALLENGING.value,
                             TaskState.DISPUTED.value)
        m.bonds.labels(role).set(sum(int(r["bond"] or 0) for r in live))
