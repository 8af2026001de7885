"""The daemons' limits: at most --max-games live games (a task beyond them waits, the next is taken on once a game
ends) and a --game-window (older tasks are not taken on), against anvil.

One slow receipt never holds up another game: a send waits at most --receipt-wait seconds for its receipt and leaves
the transaction in flight, checked at the next heads (`protocol.operations.daemon.ledger.Ledger._send`)."""

from __future__ import annotations

import logging

import pytest

from tests.test_ops_daemons import CHEAT_OP, _diag, _post, _pp
from tests.test_ops_helpers import anvil, env, needs_anvil, wait_for  # noqa: F401

pytestmark = [needs_anvil, pytest.mark.anvil]


@pytest.mark.slow
def test_max_games_defers_the_second_challenge(env, anvil):
    from protocol.inference.types import decode_game

    env.setup(("--challenge-window", "400", "--move-window", "60"))
    w3, pp = _pp(env, anvil)
    env.start("evaluator", "--cheat-op", CHEAT_OP)
    env.start("challenger", "--max-games", "1")
    diag = _diag(env)
    a, b = _post(env), _post(env)
    first = wait_for(lambda: pp.events.Challenged().get_logs(from_block=0), 120, "a challenge", diag=diag)
    gid = int(first[0]["args"]["gameId"])
    other = b["task_id"] if int(first[0]["args"]["taskId"]) == a["task_id"] else a["task_id"]
    # both results submitted and seen, the second held back while the first game is live
    wait_for(lambda: [e for e in env.logs("challenger") if e["event"] == "max games" and e["task_id"] == other],
             60, "the second task held back", diag=diag)
    assert len(pp.events.Challenged().get_logs(from_block=0)) == 1
    assert decode_game(pp, pp.functions.game(gid).call()).active
    # the first game ends; the second task is then challenged, within its window
    wait_for(lambda: decode_game(pp, pp.functions.game(gid).call()).resolved, 240, "the first game to end",
             diag=diag)
    second = wait_for(lambda: pp.events.Challenged().get_logs(from_block=0, argument_filters={"taskId": other}),
                      60, "the second challenge", diag=diag)
    started = int(w3.eth.get_block(second[0]["blockNumber"])["timestamp"])
    resolved = pp.events.GameResolved().get_logs(from_block=0, argument_filters={"gameId": gid})
    assert started >= int(w3.eth.get_block(resolved[0]["blockNumber"])["timestamp"])


def test_game_window_ignores_old_tasks(env, anvil):
    """A daemon started with --game-window does not take on a task posted before the window."""
    import json

    from protocol.chain.connection import Chain
    from protocol.operations.daemon import DB, ChallengerDaemon, Config, Store
    from tests.test_ops_helpers import dev_key

    env.setup()
    w3, pp = _pp(env, anvil)
    rec = json.loads((env.tmp / "deployments" / "31337.json").read_text())
    chain = Chain(anvil.url, keys=[dev_key(3)])
    d = ChallengerDaemon(chain, rec["contracts"]["Pinpoint"]["address"], DB(env.tmp / "c.sqlite"),
                         Store(env.tmp / "store"), Config(game_window=100), logging.getLogger("t"))
    old = int(w3.eth.block_number)
    anvil.rpc("evm_increaseTime", [150])
    anvil.rpc("evm_mine", [])
    d._found_task(7, old, None)  # posted 150 s ago: outside the window
    assert d.db.q("SELECT * FROM tasks") == []
    d._found_task(8, int(w3.eth.block_number), None)  # just now: taken on
    assert [r["task_id"] for r in d.db.q("SELECT task_id FROM tasks")] == [8]
    d.cfg.game_window = None
    d._found_task(7, old, None)
    assert sorted(r["task_id"] for r in d.db.q("SELECT task_id FROM tasks")) == [7, 8]
