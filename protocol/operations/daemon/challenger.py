"""The challenger daemon: re-evaluates every submitted result, challenges a wrong one (one bond, never two) and
plays the challenger side of its games."""

from __future__ import annotations

import sqlite3
from typing import Callable

from offchain.inference.trace import Trace
from protocol.chain.connection import ChainError
from protocol.inference.types import Game, Status, Task

from .monitor import Monitor
from .states import CHALLENGER, GAME_TERMINAL, GameProgress, TaskState
from .store import DataUnavailable

from protocol.inference.strategies import Challenger
from protocol.inference.game import challenger_move
from protocol.inference.events import MoveNotFound, latest_reveal


class ChallengerDaemon(Monitor):
    """Task: discovered -> agreed | challenging -> disputed -> done (or unavailable, missed)."""

    ROLE, SIDE = "challenger", CHALLENGER
    BOND_STATES = (TaskState.CHALLENGING, TaskState.DISPUTED)

    def scan(self, start: int, end: int) -> None:
        """Every result submitted by someone else, and every game we opened."""
        ev = self.pp.events
        for lg in ev.ResultSubmitted().get_logs(from_block=start, to_block=end):
            if lg["args"]["solver"] != self.me:
                self._found_task(int(lg["args"]["taskId"]), int(lg["blockNumber"]), None)
        for lg in ev.Challenged().get_logs(from_block=start, to_block=end, argument_filters={"challenger": self.me}):
            self._found_game(int(lg["args"]["gameId"]), int(lg["args"]["taskId"]), int(lg["blockNumber"]))

    def game_found(self, gid: int, tid: int) -> None:
        self._task_state(tid, TaskState.DISPUTED, game_id=gid)

    def task_step(self, tid: int, state: TaskState, t: Task) -> None:
        """Agree with a result whose trace root equals ours, else challenge it within the window."""
        if state in (TaskState.DISPUTED, TaskState.DONE):  # DONE too: a reorganization may reopen a game
            open_ = [r for r in self.db.q("SELECT state FROM games WHERE task_id=?", tid)
                     if GameProgress(r["state"]) not in GAME_TERMINAL]
            self._task_state(tid, TaskState.DISPUTED if open_ else TaskState.DONE)
            return
        if t.status != Status.SUBMITTED:
            if state == TaskState.DISCOVERED:
                self._task_state(tid, TaskState.MISSED, status=int(t.status))
            return
        try:
            honest, _ = self.traces_for(tid)
        except DataUnavailable as e:
            return self._task_state(tid, TaskState.UNAVAILABLE, reason=str(e))
        if t.trace_root == honest.trace_root:
            return self._task_state(tid, TaskState.AGREED)
        if self.now >= t.submitted_at + self._challenge_window():
            return self._task_state(tid, TaskState.MISSED, reason="challenge window closed")
        # never a second bond: no game of ours on this task up to the latest block, nothing of ours in the pool
        ours = self.pp.events.Challenged().get_logs(from_block=self.cfg.from_block, to_block="latest",
                                                    argument_filters={"taskId": tid, "challenger": self.me})
        if ours or not self._account_idle() or self.at_capacity(tid):
            return
        self.log("disagree", task_id=tid, theirs="0x" + t.trace_root.hex(), ours="0x" + honest.trace_root.hex())
        if self._send("tasks", tid, "challenge",
                      lambda: self.chain.send(self.pp.functions.challenge(tid, t.trace_root), sender=self.me, value=t.bond)):
            self._task_state(tid, TaskState.CHALLENGING, bond=str(t.bond))

    def move(self, gid: int, g: Game, row: sqlite3.Row, honest: Trace, served: Trace) -> Callable[[], object]:
        """Pick the leftmost child that differs from our trace (or make the phase's final move)."""
        revealed = self._last_reveal(gid, g) if g.m > 0 else None
        return lambda: challenger_move(self.dep, gid, Challenger(honest, self.me), revealed)

    def _last_reveal(self, gid: int, g: Game) -> list[bytes]:
        """The children of the solver's reveal of the current node, from its Revealed event (confirmed blocks)."""
        try:
            return latest_reveal(self.dep, gid, to_block=self.safe, game=g)
        except MoveNotFound as e:
            raise ChainError(str(e)) from None
