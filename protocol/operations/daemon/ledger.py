"""The ledger half of a daemon (`Ledger`, mixed into `protocol.operations.daemon.monitor.Monitor`): the transactions
it has in flight (each hash written to the database before the broadcast), the gas and fees they cost (each
transaction counted once, from its receipt), what the account is owed and collects (`withdraw`), and the gauges."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Callable

from web3.exceptions import TimeExhausted, TransactionNotFound, Web3Exception

from protocol.chain.connection import ChainError, fee_paid

from .states import GAME_TERMINAL, GameProgress, TaskState


class Ledger:
    """In-flight transactions, costs, collection and gauges of a `Monitor` (uses its ``db``, ``chain``, ``me``,
    ``metrics``, ``role``, ``safe``, ``log`` and ``_call``)."""

    # ------------------------------------------------------------------------------------------------ in-flight ledger
    def _watch_broadcasts(self) -> None:
        """Log "sent" once the node has accepted a transaction (the hash was persisted before, by `_record`)."""
        eth = self.chain.w3.eth
        raw_send = eth.send_raw_transaction

        def send_raw(raw):
            h = raw_send(raw)
            self.log("sent", **{**self._sending, "tx": "0x" + bytes(h).hex()})
            return h

        eth.send_raw_transaction = send_raw
        self._sending: dict = {}

    def _mined(self, h: str, receipt) -> None:
        """Record a receipt; its gas and fee are counted once per transaction (the first time it is seen mined)."""
        fee = fee_paid(receipt)
        rows = self.db.q("SELECT kind, block FROM txs WHERE hash=?", h)
        new = not rows or rows[0]["block"] is None
        self.db.x("UPDATE txs SET block=?, gas=?, fee_wei=?, status=? WHERE hash=?", int(receipt["blockNumber"]),
                  int(receipt["gasUsed"]), str(fee), int(receipt["status"]), h)
        if new:
            kind = rows[0]["kind"] if rows else "unknown"
            self.log("receipt", tx=h, kind=kind, block=int(receipt["blockNumber"]), status=int(receipt["status"]),
                     gas=int(receipt["gasUsed"]), fee_wei=str(fee))
            self.metrics.gas.labels(self.role).inc(int(receipt["gasUsed"]))
            self.metrics.fees.labels(self.role).inc(fee)

    def _record(self, h: str, kind: str, key: int | None, table: str | None) -> None:
        """Persist our transaction ``h`` before it is broadcast (and mark row ``key`` of ``table`` as waiting on it)."""
        self.db.x("INSERT OR IGNORE INTO txs (hash, kind, ref, sent) VALUES (?, ?, ?, ?)", h, kind, key, time.time())
        if table == "meta":
            self.db.set("withdraw_tx", h)
        elif table:
            col = "task_id" if table == "tasks" else "game_id"
            self.db.x(f"UPDATE {table} SET pending_tx=?, pending_kind=?, updated=? WHERE {col}=?", h, kind,
                      time.time(), key)

    def _send(self, table: str, key: int | None, kind: str, thunk: Callable[[], object]):
        """Run ``thunk`` (which sends one transaction) recording the hash in row ``key`` of ``table`` before the
        broadcast, and waiting at most ``Config.receipt_wait`` seconds for the receipt (a slow one stays in flight,
        checked at the next heads, so it never holds up another game). Returns the thunk's result, or None if it
        reverted or its receipt is still pending (both logged; the next head recomputes)."""
        col = "task_id" if table == "tasks" else "game_id"
        ids = {col: key} if table in ("tasks", "games") else {}
        self.chain.on_sent = lambda h: self._record(h, kind, key, table)
        self._sending = {"kind": kind, **ids}
        try:
            out = thunk()
            self.metrics.moves.labels(self.role, kind).inc()
            return out
        except TimeExhausted:
            self.metrics.moves.labels(self.role, kind).inc()
            self.log("receipt pending", kind=kind, **ids)
            return None
        except ChainError as e:
            # reverted in estimation (nothing sent) or on chain (the in-flight check clears it once confirmed)
            self.log("reverted", logging.WARNING, kind=kind, error=e.error or str(e), **ids)
            return None
        finally:
            self.chain.on_sent = None
            self._sending = {}

    def _in_flight(self, h: str | None) -> str:
        """State of our transaction ``h``: "none", "confirmed", "waiting" (mined above the confirmed head or in
        the pool) or "dropped" (unknown to the node)."""
        self._pooled = False
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
            self._pooled = True
            return "waiting"
        except TransactionNotFound:
            return "dropped"

    _pooled = False

    def _count_replaced(self, key: int, kind: str, current: str) -> None:
        """When a replacement is dropped because the transaction it replaced was mined after all (same nonce), count
        that one's receipt (gas and fee once, `_mined`)."""
        for r in self.db.q("SELECT hash FROM txs WHERE ref=? AND kind=? AND block IS NULL AND hash<>?", key, kind,
                           current):
            try:
                receipt = self.chain.w3.eth.get_transaction_receipt(r["hash"])
            except TransactionNotFound:
                continue
            if receipt is not None:
                self._mined(r["hash"], receipt)

    def _row_deadline(self, table: str, row: sqlite3.Row) -> int | None:
        """The chain time (seconds) by which the transaction in flight on ``row`` must be mined: the game's move
        deadline for a game's move or timeout, the close of the challenge window for a challenge; None for
        the others (submit, finalize, withdraw: no deadline of ours)."""
        from protocol.inference.types import decode_game

        if table == "games":
            g = decode_game(self.pp, self._call(self.pp.functions.game(row["game_id"]), block="latest"))
            return None if g.resolved or g.queued else g.deadline
        if table == "tasks" and row["pending_kind"] == "challenge":
            t = self._task(row["task_id"])
            return t.submitted_at + self._challenge_window()
        return None

    def _maybe_replace(self, table: str, row: sqlite3.Row) -> None:
        """Replace our transaction stuck in the pool once chain time is within ``Config.replace_margin`` seconds of
        its deadline: same nonce, fees 12.5% over the old ones and over the node's suggestion (capped by
        ``--max-fee-cap``); the new hash is persisted before the broadcast and becomes the row's transaction in
        flight. Logged as "replaced" (or "replace failed")."""
        margin = getattr(self.cfg, "replace_margin", None)
        deadline = self._row_deadline(table, row) if margin is not None else None
        if deadline is None or self.now < deadline - margin:
            return
        col = "task_id" if table == "tasks" else "game_id"
        old, kind = row["pending_tx"], row["pending_kind"]
        self.chain.on_sent = lambda h: self._record(h, kind, row[col], table)
        self._sending = {"kind": kind, col: row[col], "replaces": old}
        try:
            new, fees = self.chain.replace(old)
        except (ChainError, ValueError, Web3Exception) as e:  # cap reached, or the old one was mined meanwhile
            self.log("replace failed", logging.WARNING, tx=old, kind=kind, error=str(e)[:300], **{col: row[col]})
            return
        finally:
            self.chain.on_sent = None
            self._sending = {}
        self.metrics.replaced.labels(self.role).inc()
        self.log("replaced", logging.WARNING, old=old, tx=new, kind=kind, deadline=deadline, now=self.now,
                 max_fee=fees["maxFeePerGas"], priority_fee=fees["maxPriorityFeePerGas"], **{col: row[col]})

    def _clear_if_settled(self, table: str, row: sqlite3.Row) -> bool:
        """True if the row may act now (no transaction in flight); clears a confirmed or dropped one."""
        st = self._in_flight(row["pending_tx"])
        if st == "waiting":
            if self._pooled:
                self._maybe_replace(table, row)
            return False
        if st in ("confirmed", "dropped"):
            col = "task_id" if table == "tasks" else "game_id"
            if st == "dropped":
                self.log("dropped", logging.WARNING, tx=row["pending_tx"], kind=row["pending_kind"],
                         **{col: row[col]})
                self._count_replaced(row[col], row["pending_kind"], row["pending_tx"])
            self.db.x(f"UPDATE {table} SET pending_tx=NULL, pending_kind=NULL WHERE {col}=?", row[col])
        return True

    def _account_idle(self) -> bool:
        """No transaction of ours waits in the node's pool (pending nonce == latest nonce)."""
        w3 = self.chain.w3
        return w3.eth.get_transaction_count(self.me, "pending") == w3.eth.get_transaction_count(self.me, "latest")

    # ------------------------------------------------------------------------------------------------ payments
    def _collect(self) -> None:
        """Withdraw what the account is owed (one withdrawal in flight at a time)."""
        h = self.db.get("withdraw_tx")
        st = self._in_flight(h)
        if st == "waiting":
            return
        if h:
            self.db.set("withdraw_tx", None)
        credit = int(self._call(self.pp.functions.credit(self.me)))
        self.metrics.credit.labels(self.role).set(credit)
        if credit == 0 or not self._account_idle():
            return
        if self._send("meta", None, "withdraw", lambda: self.chain.send(self.pp.functions.withdraw(), sender=self.me)):
            self.log("withdrawn", amount=str(credit))

    def _update_gauges(self) -> None:
        """Games and tasks by state (as the chain decided them), in-flight games, bonds at stake (posted and not
        settled, wei), the account's balance (wei) and the time to the nearest deadline (seconds, by whose turn)."""
        m, role = self.metrics, self.role
        for s in GameProgress:
            m.games.labels(role, s.value).set(0)
        for r in self.db.q("SELECT state, COUNT(*) AS n FROM games GROUP BY state"):
            m.games.labels(role, r["state"]).set(r["n"])
        for s in TaskState:
            m.tasks.labels(role, s.value).set(0)
        for r in self.db.q("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state"):
            m.tasks.labels(role, r["state"]).set(r["n"])
        live = [r for r in self.db.q("SELECT game_id, state FROM games")
                if GameProgress(r["state"]) not in GAME_TERMINAL]
        m.in_flight.labels(role).set(len(live))
        marks = ",".join("?" * len(self.BOND_STATES))
        staked = self.db.q(f"SELECT bond FROM tasks WHERE state IN ({marks})", *(s.value for s in self.BOND_STATES))
        m.bonds.labels(role).set(sum(int(r["bond"] or 0) for r in staked))
        m.balance.labels(role).set(int(self.chain.w3.eth.get_balance(self.me)))
        for turn in ("ours", "theirs"):
            left = [d - self.now for gid, (d, t) in self.deadlines.items() if t == turn]
            m.deadline.labels(role, turn).set(min(left) if left else float("nan"))
