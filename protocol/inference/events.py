"""A game's moves as the chain's events hold them, read in bounded block ranges.

Every move's data is in its event (`Pinpoint.Revealed` carries the revealed children, in phase 3 the partial sums
as zigzag int256 words, `offchain.inference.reduction.from_word`; `Pinpoint.Picked` the picked value), so a client never
decodes transaction input: a move sent through a contract wallet, a multicall or a forwarder reads the same. Public
endpoints cap the block range of ``eth_getLogs``; `get_logs` walks the range in chunks of ``chunk`` blocks
(default `CHUNK`), starting from a block the caller knows (the game's ``active_block``), never from genesis.

    latest_reveal(dep, game_id)                  # [32-byte children] of the solver's last reveal
    reveals(dep, game_id)                        # every Revealed event of the game, oldest first
"""

from __future__ import annotations

from offchain.common.errors import PinpointError

from .types import Game, decode_game

CHUNK = 2000
"""Blocks per ``eth_getLogs`` request (public endpoints commonly allow 1,000-10,000)."""


class MoveNotFound(PinpointError, LookupError):
    """The event of a move the game state says happened is not (yet) in the logs read."""


def get_logs(w3, event, from_block: int, to_block: int | str = "latest", chunk: int = CHUNK,
             argument_filters: dict | None = None) -> list:
    """The logs of ``event`` (a web3 ContractEvent, e.g. ``pinpoint.events.Revealed``) in blocks
    [from_block, to_block] (inclusive; "latest" = the head now), fetched ``chunk`` blocks per request, oldest
    first. Raises ValueError if ``chunk`` < 1."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 block, got {chunk}")
    end = int(w3.eth.block_number) if to_block == "latest" else int(to_block)
    out: list = []
    start = max(0, int(from_block))
    while start <= end:
        stop = min(end, start + chunk - 1)
        out.extend(event().get_logs(from_block=start, to_block=stop, argument_filters=argument_filters or {}))
        start = stop + 1
    return out


def reveals(dep, game_id: int, from_block: int | None = None, to_block: int | str = "latest",
            chunk: int = CHUNK) -> list[dict]:
    """Every `Revealed` event of ``game_id`` from ``from_block`` (default: the game's active_block), oldest
    first, each as {"phase", "height", "node_index", "children": [32-byte bytes], "block"}."""
    if from_block is None:
        from_block = _game(dep, game_id).active_block
    logs = get_logs(dep.chain.w3, dep.pinpoint.events.Revealed, from_block, to_block, chunk,
                    {"gameId": game_id})
    return [{"phase": int(lg["args"]["phase"]), "height": int(lg["args"]["height"]),
             "node_index": int(lg["args"]["nodeIndex"]), "children": [bytes(c) for c in lg["args"]["children"]],
             "block": int(lg["blockNumber"])} for lg in logs]


def latest_reveal(dep, game_id: int, from_block: int | None = None, to_block: int | str = "latest",
                  chunk: int = CHUNK, game: Game | None = None) -> list[bytes]:
    """The children (32 bytes each) of the solver's reveal of the game's current node, from the events. ``game``:
    the `Game` as read (default: read now); the reveal must be of its phase, height and node index. Raises
    MoveNotFound if no such event is in [from_block, to_block]."""
    g = game or _game(dep, game_id)
    start = g.active_block if from_block is None else from_block
    for r in reversed(reveals(dep, game_id, start, to_block, chunk)):
        if (r["phase"], r["height"], r["node_index"]) == (int(g.phase), g.height, g.node_index):
            return r["children"]
    raise MoveNotFound(f"game {game_id}: no Revealed event for phase {int(g.phase)} height {g.height} node "
                       f"{g.node_index} in blocks [{start}, {to_block}]")


def _game(dep, game_id: int) -> Game:
    return decode_game(dep.pinpoint, dep.chain.call(dep.pinpoint.functions.game(game_id)))
