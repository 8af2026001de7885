"""Reorganizations in the middle and at the end of a game (referee issue, item 5), against anvil with both daemons as
separate processes on the real MobileNetV2.

After the challenger's winning one-step: the block holding the one-step (and the blocks after it, up to 4 in all) is
replaced once both daemons have seen the game settled; the challenger must notice its `won` is undone, make its
one-step again and win, and the evaluator must notice its `lost` is undone. After a reveal or a pick: the blocks
from the move on are replaced the moment it is mined (a response the other side already sent then lands on the
wrong turn and reverts); the player whose move vanished must send it again, noticed from chain state alone; and when
the solver whose reveal vanished is dead, the challenger must call `timeout` once the deadline passes."""

from __future__ import annotations

import signal
import time

import pytest

from tests.test_ops_daemons import CHEAT_OP, _diag, _pp, _post, _settled, _wait_daemons_saw_end
from tests.test_ops_helpers import anvil, env, needs_anvil, wait_for  # noqa: F401

pytestmark = [needs_anvil, pytest.mark.anvil, pytest.mark.slow]


def _game_states(env, role: str, gid: int) -> list[str]:
    return [e["to"] for e in env.logs(role) if e["event"] == "transition" and e.get("game_id") == gid]


@pytest.mark.parametrize("depth", [4])
def test_reorg_after_winning_one_step(env, anvil, depth):
    env.setup()
    w3, pp = _pp(env, anvil)
    challenger = env.json("accounts", "list")[0]["address"]
    balance0 = w3.eth.get_balance(challenger)
    env.start("evaluator", "--cheat-op", CHEAT_OP)
    env.start("challenger")
    task = _post(env)
    diag = _diag(env)
    gid = wait_for(lambda: [e["args"]["gameId"] for e in pp.events.Challenged().get_logs(from_block=0)],
                   90, "a challenge", diag=diag)[0]
    # freeze block production the moment the one-step is mined, then mine by hand
    wait_for(lambda: pp.functions.game(gid).call()[2] == 3, 240, "the one-step", interval=0.1, diag=diag)
    anvil.rpc("evm_setIntervalMining", [0])
    step = pp.events.GameResolved().get_logs(from_block=0, argument_filters={"gameId": gid})[0]
    step_block = int(step["blockNumber"])
    assert pp.functions.game(gid).call()[4] is True  # the challenger won ...

    def seen_settled():
        if w3.eth.block_number < step_block + depth - 1:
            anvil.rpc("evm_mine", [])
        return "won" in _game_states(env, "challenger", gid) and "lost" in _game_states(env, "evaluator", gid)

    wait_for(seen_settled, 60, "both daemons to see the game settled", interval=1.0, diag=diag)
    while w3.eth.block_number < step_block + depth - 1:
        anvil.rpc("evm_mine", [])
    head = w3.eth.block_number
    assert head - step_block + 1 == depth, "the daemons took too long: the one-step is deeper than the reorg"
    # ... until the blocks from the one-step on are replaced by empty ones
    anvil.rpc("anvil_reorg", [depth, []])
    assert w3.eth.block_number == head and pp.functions.game(gid).call()[2] == 2  # back in phase 2
    anvil.rpc("evm_setIntervalMining", [1])
    wait_for(lambda: pp.functions.game(gid).call()[2] == 3, 120, "the one-step again", diag=diag)
    assert pp.functions.game(gid).call()[4] is True  # the honest challenger still wins
    _wait_daemons_saw_end(env, diag)
    time.sleep(2)
    _settled(env, anvil, pp, w3, task["task_id"], challenger, task["bond"], balance0)
    ch = _game_states(env, "challenger", gid)
    assert ch.index("won") < len(ch) - 1 and ch[-1] == "won", ch  # won, reopened, won again
    ev = _game_states(env, "evaluator", gid)
    assert ev.index("lost") < len(ev) - 1 and ev[-1] == "lost", ev
    assert any(e["event"] == "game reopened" for e in env.logs("challenger"))


def _moves(pp, event, gid: int, to_block="latest") -> list:
    return event().get_logs(from_block=0, to_block=to_block, argument_filters={"gameId": gid})


@pytest.mark.parametrize("after, kill_solver", [("reveal", False), ("pick", False), ("reveal", True)])
def test_reorg_after_a_move(env, anvil, after, kill_solver):
    env.setup()
    w3, pp = _pp(env, anvil)
    challenger = env.json("accounts", "list")[0]["address"]
    balance0 = w3.eth.get_balance(challenger)
    env.start("evaluator", "--cheat-op", CHEAT_OP)
    env.start("challenger")
    task = _post(env)
    diag = _diag(env)
    gid = wait_for(lambda: [e["args"]["gameId"] for e in pp.events.Challenged().get_logs(from_block=0)],
                   90, "a challenge", diag=diag)[0]
    event = pp.events.Revealed if after == "reveal" else pp.events.Picked
    # freeze block production the moment the game's second such move is mined
    second = wait_for(lambda: (m := _moves(pp, event, gid)) and len(m) >= 2 and m[1], 240, f"a second {after}",
                      interval=0.05, diag=diag)
    anvil.rpc("evm_setIntervalMining", [0])
    if kill_solver:
        env.procs["evaluator"].send_signal(signal.SIGKILL)
        env.procs["evaluator"].wait()
    head, blk = w3.eth.block_number, int(second["blockNumber"])
    depth = head - blk + 1
    assert 1 <= depth <= 4, f"the {after} is {depth} blocks deep already"
    key = (second["args"]["phase"], second["args"]["height"], second["args"]["nodeIndex"])
    anvil.rpc("anvil_reorg", [depth, []])
    assert w3.eth.block_number == head and len(_moves(pp, event, gid)) == 1  # the move is gone
    anvil.rpc("evm_setIntervalMining", [1])
    if kill_solver:  # nobody reveals again: past the deadline the challenger must call timeout
        anvil.rpc("evm_increaseTime", [61])
        wait_for(lambda: pp.functions.game(gid).call()[2] == 3, 120, "the timeout", diag=diag)
        reason = pp.events.GameResolved().get_logs(from_block=0, argument_filters={"gameId": gid})[0]["args"]
        assert reason["challengerWon"] and "timeout" in reason["reason"].lower(), reason
    else:
        wait_for(lambda: pp.functions.game(gid).call()[2] == 3, 240, "the game to end", diag=diag)
        again = [m for m in _moves(pp, event, gid) if int(m["blockNumber"]) > head and
                 (m["args"]["phase"], m["args"]["height"], m["args"]["nodeIndex"]) == key]
        assert again, f"the vanished {after} was not sent again"
    assert pp.functions.game(gid).call()[4] is True  # the honest challenger wins
    _wait_daemons_saw_end(env, diag, {"challenger": "won"} if kill_solver else None)  # a killed solver logs nothing
    time.sleep(2)
    _settled(env, anvil, pp, w3, task["task_id"], challenger, task["bond"], balance0)
