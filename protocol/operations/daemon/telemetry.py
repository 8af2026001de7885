"""What a daemon tells its operator: JSON-lines logs (`json_logger`) and Prometheus metrics (`Metrics`)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (seconds), level, event (the message) and the record's ``fields``."""

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
        self.paid = Gauge("pinpoint_paid_wei", "Wei Pinpoint has paid the account in confirmed blocks (Withdrawn "
                          "events: payouts pushed at a game's resolution and withdrawals)", ["role"], registry=r)
        self.credit = Gauge("pinpoint_credit_wei", "Wei Pinpoint owes the account (not yet withdrawn)", ["role"],
                            registry=r)
        self.balance = Gauge("pinpoint_account_balance_wei", "Balance of the daemon's account (wei)", ["role"],
                             registry=r)
        self.in_flight = Gauge("pinpoint_games_in_flight", "Games tracked and not settled", ["role"], registry=r)
        self.deadline = Gauge("pinpoint_nearest_deadline_seconds", "Seconds to the nearest move deadline of a live "
                              "game (negative: passed; NaN: none), by whose turn it is", ["role", "turn"],
                              registry=r)
        self.replaced = Counter("pinpoint_replaced_transactions", "Stuck transactions replaced with higher fees",
                                ["role"], registry=r)
        self.up = Gauge("pinpoint_up", "1 if the last step at the head succeeded, 0 if the node failed", ["role"],
                        registry=r)
        self.info = Gauge("pinpoint_info", "Constant 1, labelled with what the daemon runs as",
                          ["role", "account", "pinpoint", "chain_id", "cheat"], registry=r)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve /metrics on ``addr:port`` (a daemon thread)."""
        from prometheus_client import start_http_server

        start_http_server(port, addr=addr, registry=self.registry)
