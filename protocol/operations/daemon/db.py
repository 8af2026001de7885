"""The daemon's SQLite state: what it scanned (``meta``, ``blocks``), what it tracks (``tasks``, ``games``) and the
transactions it sent (``txs``), what Pinpoint paid it in confirmed blocks (``paid``: its `Withdrawn` events). Everything else is recomputed from chain state."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from offchain.common.errors import PinpointError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY, state TEXT NOT NULL, found_block INTEGER, bond TEXT,
    pending_tx TEXT, pending_kind TEXT, note TEXT, updated REAL NOT NULL, settled_block INTEGER);
CREATE TABLE IF NOT EXISTS games (
    game_id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, side TEXT NOT NULL, state TEXT NOT NULL,
    found_block INTEGER, bond TEXT, moves INTEGER NOT NULL DEFAULT 0,
    pending_tx TEXT, pending_kind TEXT, note TEXT, updated REAL NOT NULL, settled_block INTEGER);
CREATE TABLE IF NOT EXISTS txs (
    hash TEXT PRIMARY KEY, kind TEXT NOT NULL, ref INTEGER, sent REAL NOT NULL, block INTEGER, gas INTEGER,
    fee_wei TEXT, status INTEGER);
CREATE TABLE IF NOT EXISTS paid (
    tx TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL, amount TEXT NOT NULL,
    PRIMARY KEY (tx, log_index));
"""


class StateError(PinpointError, RuntimeError):
    """The state database cannot be used (corrupt, not a database, unwritable): rebuild it from the chain with
    ``--rebuild-state``."""


class DB:
    """The daemon's SQLite state (autocommit: every statement is durable on return). ``settled_block`` of a task or
    game is the confirmed head at which it was first seen in a terminal state (NULL while it is not, or after a
    reorganization replaced that block): a daemon re-examines it until that block is final.

    Raises StateError if ``path`` is not a usable SQLite database; ``rebuild=True`` deletes it (and its WAL files)
    first, so the daemon starts over from the chain."""

    def __init__(self, path: Path, rebuild: bool = False):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if rebuild:
            for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                p.unlink(missing_ok=True)
        self.path = path
        try:
            self.conn = sqlite3.connect(str(path), isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
            for table in ("tasks", "games"):  # databases created before settled_block existed
                cols = {r["name"] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                if "settled_block" not in cols:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN settled_block INTEGER")
            bad = self.conn.execute("PRAGMA quick_check").fetchone()[0]
            if bad != "ok":
                raise sqlite3.DatabaseError(bad)
        except sqlite3.Error as e:
            raise StateError(f"state database {path} is unusable ({e}): restart with --rebuild-state to rebuild it "
                             "from the chain (it holds nothing the chain cannot tell again)") from None

    def get(self, key: str, default=None):
        """The JSON value stored under ``key`` in ``meta``, else ``default``."""
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(r[0]) if r else default

    def set(self, key: str, value) -> None:
        """Store the JSON-encodable ``value`` under ``key`` in ``meta``."""
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def q(self, sql: str, *args) -> list[sqlite3.Row]:
        """The rows of query ``sql`` with parameters ``args``."""
        return self.conn.execute(sql, args).fetchall()

    def x(self, sql: str, *args) -> None:
        """Execute statement ``sql`` with parameters ``args`` (durable on return)."""
        self.conn.execute(sql, args)

    def close(self) -> None:
        self.conn.close()
