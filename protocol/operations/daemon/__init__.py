"""The evaluator and challenger daemons: long-running players of pinpoint games against a JSON-RPC node.

    store.py       `Store`: the content-addressed models and inputs a task is evaluated from
    db.py          `DB`: the SQLite state
    telemetry.py   `json_logger`, `Metrics` (Prometheus)
    states.py      `TaskState`, `GameProgress` and the pure `decide_game`
    monitor.py     `Monitor`: the head loop below (confirmations, reorgs, scanning, the workers)
    ledger.py      `Ledger`: transactions in flight, their gas and fees (each counted once), withdrawals, gauges
    startup.py     `connect_with_backoff`: waiting for a node that is down at start-up, the checked deployment
    evaluator.py   `EvaluatorDaemon`: the evaluator's task logic and solver moves
    challenger.py  `ChallengerDaemon`: the challenger's task logic and challenger moves

Structure (after op-challenger): one loop over new chain heads. At each new head the daemon
  1. computes the confirmed head ``safe = head - confirmations`` and checks the block hashes it recorded for a
     reorganization (rewinding its event scan to the common ancestor if one happened),
  2. scans the confirmed blocks it has not seen for the events it cares about (TaskPosted, ResultSubmitted,
     Challenged) and records what they reveal in its SQLite database,
  3. runs one worker per tracked task and per tracked game: each reads the contract state *at the confirmed head*
     and moves an explicit state machine (below), sending at most one transaction,
  4. collects what the account is owed (`withdraw`).
A task or game that reached a terminal state (won, lost, finalized, rejected...) is still re-examined at every head
until the confirmed head at which it was seen settled is ``reorg_depth`` blocks deep (and from scratch if a
reorganization replaced that block): a reorganization that undoes a winning one-step reopens the game
({"event": "game reopened"}), the winner moves again and the loser calls `timeout` if the other side misses its
deadline. A send waits at most ``receipt_wait`` seconds for its receipt; a slower one stays in flight and is checked
at the next heads, so it never holds up another game.
Every decision is recomputed from chain state plus the daemon's own evaluation of the task, so a daemon killed at
any point and restarted resumes the same games; the database only remembers what the chain cannot tell it cheaply
(which blocks it scanned, which transactions it has in flight).

State machines (`TaskState`, `GameProgress`; every transition is logged as {"event": "transition", ...}):

  evaluator task:  discovered -> submitting -> submitted -> finalizing -> finalized
                   discovered -> unavailable (model or input not in the store, or roots differ)
                   submitting -> taken (another solver was first, or the task was cancelled)
                   submitted | finalizing -> rejected (a challenger won a game)
  challenger task: discovered -> agreed (our trace root equals the submitted one)
                   discovered -> challenging -> disputed -> done
                   discovered -> unavailable | missed (the challenge window closed first)
  game (either side):  queued -> their_turn <-> our_turn -> move_pending -> their_turn ...
                       their_turn -> timeout_pending (the opponent missed its deadline)
                       -> won | lost | cancelled   (and back to their_turn / our_turn if a reorganization undoes it)

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

from .challenger import ChallengerDaemon
from .db import DB
from .evaluator import EvaluatorDaemon
from .monitor import Config, DaemonError, Monitor
from .states import GameAction, GameProgress, TaskState, decide_game
from .store import DataUnavailable, Store
from .telemetry import Metrics, json_logger

ROLES: dict[str, type[Monitor]] = {"evaluator": EvaluatorDaemon, "challenger": ChallengerDaemon}
"""The daemon class of each role (the `pinpoint <role> run` commands)."""

__all__ = ["ROLES", "ChallengerDaemon", "Config", "DB", "DaemonError", "DataUnavailable", "EvaluatorDaemon",
           "GameAction", "GameProgress", "Metrics", "Monitor", "Store", "TaskState", "decide_game", "json_logger"]
