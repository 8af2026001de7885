"""The daemons' explicit state machines: `TaskState` (per task), `GameProgress` (per game, our view of it) and the
pure decision `decide_game` (see the package docstring for the transitions)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from protocol.inference.types import Game, Turn

SOLVER, CHALLENGER = "solver", "challenger"
"""The two sides of a game (the evaluator daemon plays the solver)."""


class TaskState(str, Enum):
    """A tracked task, as the daemon sees it (stored in its database by value)."""

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


class GameProgress(str, Enum):
    """A tracked game from our side (not the on-chain `protocol.inference.types.Game`, which it is derived from)."""

    QUEUED = "queued"
    THEIR_TURN = "their_turn"
    OUR_TURN = "our_turn"
    MOVE_PENDING = "move_pending"
    TIMEOUT_PENDING = "timeout_pending"
    WON = "won"
    LOST = "lost"
    CANCELLED = "cancelled"


GAME_TERMINAL = {GameProgress.WON, GameProgress.LOST, GameProgress.CANCELLED}


@dataclass(frozen=True)
class GameAction:
    """What a game worker does next: ``kind`` in {"wait", "move", "timeout", "resolved"}; ``state`` the new state."""

    kind: str
    state: GameProgress


def decide_game(g: Game, side: str, now: int) -> GameAction:
    """The next action in a game from its on-chain state ``g`` (read at the confirmed head), for ``side``
    ("solver" or "challenger") at chain time ``now`` (seconds, latest block).

    Pure: it depends on chain state only, which is what lets a restarted daemon resume."""
    if g.winner == "cancelled":  # ended undecided, bonds returned
        return GameAction("resolved", GameProgress.CANCELLED)
    if g.resolved:
        won = g.challenger_won == (side == CHALLENGER)
        return GameAction("resolved", GameProgress.WON if won else GameProgress.LOST)
    if g.queued:  # behind the task's active game: no move, no deadline yet
        return GameAction("wait", GameProgress.QUEUED)
    ours = (g.turn == Turn.SOLVER) == (side == SOLVER)
    if ours:
        # past our own deadline the opponent can claim a timeout: still try (the chain will refuse if too late)
        return GameAction("move", GameProgress.OUR_TURN)
    if now > g.deadline:
        return GameAction("timeout", GameProgress.THEIR_TURN)
    return GameAction("wait", GameProgress.THEIR_TURN)
