"""Typed views of `contracts/inference/Pinpoint.sol` state: `Task`, `Game` and the enums `Status`, `Phase`, `Turn`.

Decoded by field name from the ABI (`protocol.chain.bindings.decode`), so a reordered or extended struct fails
loudly instead of being read by position. The enum values are those of the Solidity enums of the same names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from protocol.chain.bindings import decode

K_LOG = 4
"""log2 of the search arity k of phase 3 (`Gas.K_LOG`): the solver reveals 2**K_LOG descendants per move."""
TAIL = K_LOG + 1
"""Phases 1 and 2 reveal at most 2**TAIL descendants per move (`Gas.TAIL`)."""


def split(h: int) -> int:
    """Levels a phase-1/2 reveal descends from a node ``h`` levels above the leaves (`Gas.split`): ``h`` cut into
    ceil(h / TAIL) reveals of as equal sizes as possible, the larger first (14 -> 5, 5, 4); 0 at a leaf."""
    if h <= 0:
        return 0
    r = -(-h // TAIL)
    return -(-h // r)


class Status(IntEnum):
    """`Pinpoint.Status`: the life of a task."""

    NONE = 0
    OPEN = 1        # posted, waiting for a result
    SUBMITTED = 2   # result posted, challengeable / in dispute
    FINALIZED = 3   # result accepted, solver paid
    REJECTED = 4    # a challenger won: result refuted, fee refunded
    CANCELLED = 5   # the requester withdrew the unsolved task
    VOIDED = 6      # an operator deeper than the declared max_tensor_depth was selected: bonds back, fee burned


class Phase(IntEnum):
    """`Pinpoint.Phase`: where a game is."""

    NONE = 0
    TRACE_SEARCH = 1   # phase 1: k-ary search over the trace for the first disputed operator
    TENSOR_SEARCH = 2  # phase 2: k-ary search over that operator's output tensor
    RESOLVED = 3       # decided: see challenger_won
    QUEUED = 4         # waiting behind the task's active game (games of a task are played one at a time)
    CANCELLED = 5      # ended undecided (task rejected or voided): the bond was returned
    REDUCTION = 6      # phase 3: dissection of the disputed element's partial sums down to one chunk


class Turn(IntEnum):
    """`Pinpoint.Turn`: who must move."""

    SOLVER = 0      # reveal the children of the current node
    CHALLENGER = 1  # pick one child (or make the phase's final move)


@dataclass(frozen=True)
class Task:
    """`Pinpoint.Task`. fee and bond in wei, submitted_at in seconds (block timestamp); open_games counts the
    active and queued games, head is the position of the active one in ``Pinpoint.queue(task_id)``."""

    CONVERTERS = {"status": Status}

    solver: str
    status: Status
    n_ops: int
    trace_depth: int
    max_tensor_depth: int
    submitted_at: int
    requester: str
    open_games: int
    head: int
    fee: int
    bond: int
    ops_root: bytes
    input_root: bytes
    trace_root: bytes


@dataclass(frozen=True)
class Game:
    """`Pinpoint.Game` (the view `Pinpoint.game(id)`; the id of a task's i-th challenge is task_id << 32 | i,
    `Pinpoint.gameIdOf`). deadline in seconds; node_index the current node's index at its level, height the levels
    between it and the leaves; op_index the disputed operator (phase 2); active_block the block at which the game
    became active (0 while queued): its moves' events are at or after it; element and claimed (phase 3) the
    disputed element's flat index in the operator's output and the solver's byte for it."""

    CONVERTERS = {"phase": Phase, "turn": Turn}

    challenger: str
    task_id: int
    phase: Phase
    turn: Turn
    challenger_won: bool
    deadline: int
    node_index: int
    op_index: int
    height: int
    node: bytes
    active_block: int = 0
    element: int = 0
    claimed: int = 0

    @property
    def m(self) -> int:
        """Levels the next reveal descends (`Pinpoint._m`): in phases 1 and 2 `split(height)` (the height cut evenly
        into ceil(height / TAIL) reveals), in phase 3 min(K_LOG, height)."""
        if self.phase != Phase.REDUCTION:
            return split(self.height)
        return min(K_LOG, self.height)

    @property
    def resolved(self) -> bool:
        """The game is over: decided (RESOLVED) or cancelled with its bond returned (CANCELLED)."""
        return self.phase in (Phase.RESOLVED, Phase.CANCELLED)

    @property
    def active(self) -> bool:
        """Moves are due (phase 1, 2 or 3, deadline running)."""
        return self.phase in (Phase.TRACE_SEARCH, Phase.TENSOR_SEARCH, Phase.REDUCTION)

    @property
    def queued(self) -> bool:
        """Waiting behind the task's active game, no deadline yet."""
        return self.phase == Phase.QUEUED

    @property
    def winner(self) -> str | None:
        """"challenger" or "solver" once decided, "cancelled" if cancelled, else None."""
        if self.phase == Phase.CANCELLED:
            return "cancelled"
        if self.phase != Phase.RESOLVED:
            return None
        return "challenger" if self.challenger_won else "solver"


def decode_task(pinpoint, value) -> Task:
    """A `Task` from the tuple returned by ``pinpoint.functions.task(id)``."""
    return decode(Task, pinpoint, "task", value)


def decode_game(pinpoint, value) -> Game:
    """A `Game` from the tuple returned by ``pinpoint.functions.game(id)``."""
    return decode(Game, pinpoint, "game", value)
