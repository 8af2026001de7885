"""The evaluator daemon: solves posted tasks (bond attached), defends its results in games, finalizes them."""

from __future__ import annotations

import logging
import sqlite3
from typing import Callable

from offchain.inference.trace import Trace
from protocol.inference.types import Game, Status, Task

from .monitor import DaemonError, Monitor
from .states import SOLVER, TaskState
from .store import DataUnavailable

from protocol.inference.strategies import Solver
from protocol.inference.game import solver_move, submit_call


class EvaluatorDaemon(Monitor):
    """Task: discovered -> submitting -> submitted -> finalizing -> finalized (or unavailable, taken, rejected).
    Plays the solver side of every game on its results. ``Config.cheat_op`` makes it commit an altered trace."""

    ROLE, SIDE = "evaluator", SOLVER
    BOND_STATES = (TaskState.SUBMITTING, TaskState.SUBMITTED, TaskState.FINALIZING)

    def scan(self, start: int, end: int) -> None:
        """Every posted task, and every challenge of a result we submitted."""
        ev = self.pp.events
        for lg in ev.TaskPosted().get_logs(from_block=start, to_block=end):
            self._found_task(int(lg["args"]["taskId"]), int(lg["blockNumber"]), str(lg["args"]["bond"]))
        for lg in ev.Challenged().get_logs(from_block=start, to_block=end):
            tid = int(lg["args"]["taskId"])
            if self._task(tid).solver == self.me:
                self._found_game(int(lg["args"]["gameId"]), tid, int(lg["blockNumber"]))

    def task_step(self, tid: int, state: TaskState, t: Task) -> None:
        """Submit an open task's result with its bond; finalize ours once the window closed with no open game."""
        mine = t.solver == self.me
        if t.status == Status.REJECTED and mine:
            return self._task_state(tid, TaskState.REJECTED)
        if t.status == Status.FINALIZED and mine:
            return self._task_state(tid, TaskState.FINALIZED)
        if t.status != Status.OPEN and not mine:
            return self._task_state(tid, TaskState.TAKEN, status=int(t.status))
        if t.status == Status.OPEN:
            if state not in (TaskState.DISCOVERED, TaskState.SUBMITTING):
                self._task_state(tid, TaskState.DISCOVERED)
            try:
                _, served = self.traces_for(tid)
            except DataUnavailable as e:
                return self._task_state(tid, TaskState.UNAVAILABLE, reason=str(e))
            if not self._account_idle() or self.at_capacity(tid):
                return
            fn = submit_call(self.dep, tid, served)
            if self._send("tasks", tid, "submit", lambda: self.chain.send(fn, sender=self.me, value=t.bond)):
                self._task_state(tid, TaskState.SUBMITTING, bond=str(t.bond))
            return
        # submitted by us
        if state not in (TaskState.SUBMITTED, TaskState.FINALIZING):  # also a rejection undone by a reorganization
            self._task_state(tid, TaskState.SUBMITTED)
        closes = t.submitted_at + self._challenge_window()
        if t.open_games == 0 and self.now > closes:
            if self._send("tasks", tid, "finalize",
                          lambda: self.chain.send(self.pp.functions.finalize(tid), sender=self.me)):
                self._task_state(tid, TaskState.FINALIZING)

    def move(self, gid: int, g: Game, row: sqlite3.Row, honest: Trace, served: Trace) -> Callable[[], object]:
        """Reveal the children of the current node from the trace we committed."""
        return lambda: solver_move(self.dep, gid, Solver(served, self.me))

    def served_trace(self, tid: int, honest: Trace) -> Trace:
        """The honest trace, or with ``cheat_op`` set, one element of that operator's output altered (flat index
        ``cheat_element``, default the middle). Raises DaemonError if ``cheat_op`` is out of range."""
        j = self.cfg.cheat_op
        if j is None:
            return honest
        if not 0 <= j < honest.graph.n_ops:
            raise DaemonError(f"--cheat-op must be in [0, {honest.graph.n_ops})")
        n = honest.graph.ops[j].out.numel
        e = self.cfg.cheat_element if self.cfg.cheat_element is not None else n // 2
        self.log("cheating", logging.WARNING, task_id=tid, op=j, element=e % n)
        return honest.altered(j, e % n)
