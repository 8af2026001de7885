"""What an operator reads and does by hand (in the spirit of op-challenger's `list-claims` and `resolve`): one game
with every move and its transaction (`game_view`), the games table (`game_row`), a task with its games
(`task_info`), credits, and the manual `timeout`, `withdraw` and `cancel`. Values in wei, times in seconds; every
function takes a `protocol.inference.game.Deployment`. The moves are read from the contract's events, in bounded
block ranges."""

from __future__ import annotations

from protocol.inference.game import Deployment, read_game
from protocol.inference.types import Phase, decode_task

LOG_CHUNK = 5000
"""Blocks per log query (public endpoints limit the range of eth_getLogs)."""

MOVE_EVENTS = ("Challenged", "Revealed", "Picked", "OperatorSelected", "GameResolved")


def _logs(dep: Deployment, event: str, from_block: int = 0, **filters) -> list:
    ev = getattr(dep.pinpoint.events, event)()
    head = int(dep.chain.w3.eth.block_number)
    out = []
    for start in range(from_block, head + 1, LOG_CHUNK):
        out += ev.get_logs(from_block=start, to_block=min(head, start + LOG_CHUNK - 1), argument_filters=filters)
    return out


def game_row(dep: Deployment, gid: int, now: int | None = None) -> dict:
    """One game for the games table: task, challenger, phase (1 trace search, 2 tensor search, 3 resolved), turn
    ("solver" | "challenger"), deadline and time left (seconds, at the latest block's time ``now``), the bond each
    side posted (wei), height, op_index from phase 2 on, winner once resolved."""
    pp = dep.pinpoint
    g = read_game(dep, gid)
    t = decode_task(pp, dep.chain.call(pp.functions.task(g.task_id)))
    now = dep.chain.now() if now is None else now
    return {"game_id": gid, "task_id": g.task_id, "challenger": g.challenger, "solver": t.solver,
            "phase": int(g.phase), "turn": g.turn.name.lower(), "deadline": g.deadline,
            "time_left": None if g.resolved else g.deadline - now, "bond": t.bond, "height": g.height,
            "op_index": g.op_index if g.phase >= Phase.TENSOR_SEARCH else None, "winner": g.winner}


def game_view(dep: Deployment, gid: int) -> dict:
    """`game_row` plus every move so far, oldest first: who (solver/challenger/anyone), what (the event and its
    fields: phase, height, node index, operator), its transaction, block and gas used; and the current node."""
    w3 = dep.chain.w3
    row = game_row(dep, gid)
    moves = []
    for name in MOVE_EVENTS:
        for lg in _logs(dep, name, gameId=gid):
            r = w3.eth.get_transaction_receipt(lg["transactionHash"])
            args = {k: (("0x" + bytes(v).hex()) if isinstance(v, bytes) else v) for k, v in lg["args"].items()
                    if k not in ("gameId",)}
            moves.append({"event": name, "block": int(lg["blockNumber"]), "log_index": int(lg["logIndex"]),
                          "tx": "0x" + bytes(lg["transactionHash"]).hex(), "from": r["from"],
                          "gas": int(r["gasUsed"]), **args})
    moves.sort(key=lambda m: (m["block"], m["log_index"]))
    for m in moves:
        m["who"] = ("solver" if m["from"] == row["solver"] else "challenger" if m["from"] == row["challenger"]
                    else "anyone")
    g = read_game(dep, gid)
    return {**row, "node_index": g.node_index, "node": "0x" + g.node.hex(), "moves": moves,
            "gas_total": sum(m["gas"] for m in moves)}


def task_info(dep: Deployment, tid: int) -> dict:
    """The task record (fee and bond in wei, times in seconds, status a lowercase `Status` name) with its games."""
    pp = dep.pinpoint
    t = decode_task(pp, dep.chain.call(pp.functions.task(tid)))
    now = dep.chain.now()
    return {"task_id": tid, "status": t.status.name.lower(), "requester": t.requester, "solver": t.solver,
            "fee": t.fee, "bond": t.bond, "submitted_at": t.submitted_at, "open_games": t.open_games,
            "challenge_window": int(pp.functions.challengeWindow().call()),
            "model_root": "0x" + bytes(pp.functions.modelRoot(tid).call()).hex(),
            "input_root": "0x" + t.input_root.hex(), "trace_root": "0x" + t.trace_root.hex(),
            "games": [game_row(dep, int(lg["args"]["gameId"]), now) for lg in _logs(dep, "Challenged", taskId=tid)]}


def credits(dep: Deployment, addresses: list[str]) -> list[dict]:
    """What Pinpoint owes each address (``credit``, wei, withdrawable with `withdraw`), what it has paid the address
    so far (``paid``, wei: payouts pushed at a game's resolution plus withdrawals, from the `Withdrawn` events) and
    the address's balance (wei)."""
    pp = dep.pinpoint
    return [{"address": a, "credit": int(pp.functions.credit(a).call()),
             "paid": sum(int(lg["args"]["amount"]) for lg in _logs(dep, "Withdrawn", to=a)),
             "balance": dep.chain.balance(a)} for a in addresses]


def withdraw(dep: Deployment, sender: str) -> dict:
    """Withdraw ``sender``'s credit. Returns {amount, tx, gas} (tx None when there was nothing to withdraw)."""
    amount = int(dep.pinpoint.functions.credit(sender).call())
    if amount == 0:
        return {"address": sender, "amount": 0, "tx": None, "gas": 0}
    tx = dep.chain.send(dep.pinpoint.functions.withdraw(), sender=sender)
    return {"address": sender, "amount": amount, "tx": tx.hash, "gas": tx.gas}


def timeout(dep: Deployment, gid: int, sender: str) -> dict:
    """Call `timeout` on game ``gid`` (the side to move missed its deadline). Raises ChainError if it is refused
    (e.g. the deadline has not passed)."""
    tx = dep.chain.send(dep.pinpoint.functions.timeout(gid), sender=sender)
    return {"game_id": gid, "tx": tx.hash, "gas": tx.gas, "winner": read_game(dep, gid).winner}


def cancel(dep: Deployment, tid: int, sender: str) -> dict:
    """Cancel the open task ``tid`` (its requester only); the fee is credited back (withdraw it with `withdraw`).
    Raises ChainError if the contract refuses."""
    tx = dep.chain.send(dep.pinpoint.functions.cancel(tid), sender=sender)
    return {"task_id": tid, "tx": tx.hash, "gas": tx.gas,
            "credit": int(dep.pinpoint.functions.credit(sender).call())}
