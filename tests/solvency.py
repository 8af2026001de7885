"""The solvency invariant of `contracts/inference/Pinpoint.sol`, read from the chain, for the game tests.

address(this).balance == sum(credit) + burned + fee of every Open task + fee and solver bond of every Submitted
task + the challenger bond of every active or Queued game (the INVARIANT of the contract's NatSpec).
"""

from __future__ import annotations

from protocol.inference.game import Deployment, read_game, read_task
from protocol.inference.types import Status


def owed(dep: Deployment, holders) -> int:
    """Wei the contract owes or keeps: credits of ``holders`` (every address that may hold credit), burned wei,
    and the escrow of live tasks and games."""
    ch, pp = dep.chain, dep.pinpoint.functions
    total = int(ch.call(pp.burned()))
    for t in range(ch.call(pp.taskCount())):
        task = read_task(dep, t)
        if task.status == Status.OPEN:
            total += task.fee
        elif task.status == Status.SUBMITTED:
            total += task.fee + task.bond
        for g in ch.call(pp.queue(t)):  # the task's games (ids taskId << 32 | i)
            st = read_game(dep, g)
            if st.active or st.queued:
                total += task.bond
    return total + sum(int(ch.call(pp.credit(a))) for a in set(holders))


def assert_solvent(dep: Deployment, extra=()) -> None:
    """The contract's balance is exactly what it owes (credits of the chain's accounts and of ``extra``)."""
    assert dep.chain.balance(dep.pinpoint.address) == owed(dep, [*dep.chain.accounts, *extra])
