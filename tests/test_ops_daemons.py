"""The evaluator and challenger daemons as separate processes against anvil (1 s blocks), on the real MobileNetV2.

Each test posts one task with the CLI; a cheating evaluator daemon (`--cheat-op`) submits a wrong result; the honest
challenger daemon catches it. What varies is what the test does to the processes and the node in between.
"""

from __future__ import annotations

import signal
import time
import urllib.request

import pytest
from web3 import Web3

from protocol.chain.connection import artifact
from tests.test_ops_helpers import IMAGE, MODEL, anvil, env, free_port, needs_anvil, wait_for  # noqa: F401

pytestmark = [needs_anvil, pytest.mark.anvil, pytest.mark.slow]
FEE = 10**15
CHEAT_OP = 40


def _pp(env, anvil):
    import json

    rec = json.loads((env.tmp / "deployments" / "31337.json").read_text())
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    return w3, w3.eth.contract(address=rec["contracts"]["Pinpoint"]["address"], abi=artifact("Pinpoint")["abi"])


def _post(env) -> dict:
    return env.json("task", "post", "--network", "local", "--rpc-url", env.rpc, "--account", "requester",
                    "--model", MODEL, "--input", IMAGE, "--fee", FEE)


def _diag(env):
    return lambda: "\n".join(f"--- {r}\n" + "\n".join(map(str, env.logs(r)[-15:])) +
                             "\n" + (env.tmp / f"{r}.stderr").read_text()[-2000:]
                             for r in ("evaluator", "challenger") if (env.tmp / f"{r}.stderr").exists())


def _settled(env, anvil, pp, w3, task_id: int, challenger: str, bond: int, balance0: int) -> None:
    """The cheat was caught: the game is resolved for the challenger, the task rejected, the challenger withdrew
    exactly both bonds, posted exactly one bond, and the contract holds only the requester's refunded fee."""
    games = pp.events.Challenged().get_logs(from_block=0, argument_filters={"taskId": task_id})
    assert len(games) == 1 and games[0]["args"]["challenger"] == challenger  # one bond posted, never two
    g = pp.functions.game(games[0]["args"]["gameId"]).call()
    assert g[2] == 3 and g[4] is True  # resolved, challenger won
    assert pp.functions.task(task_id).call()[1] == 4  # Rejected
    wd = pp.events.Withdrawn().get_logs(from_block=0, argument_filters={"to": challenger})
    assert [int(e["args"]["amount"]) for e in wd] == [2 * bond]
    assert pp.functions.credit(challenger).call() == 0
    assert w3.eth.get_balance(pp.address) == FEE == pp.functions.credit(pp.functions.task(task_id).call()[6]).call()
    # the challenger's balance moved by +bond minus the gas of its own transactions
    spent = 0
    blk = w3.eth.block_number
    for n in range(blk + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] == challenger:
                r = w3.eth.get_transaction_receipt(tx["hash"])
                spent += r["gasUsed"] * r["effectiveGasPrice"]
    assert w3.eth.get_balance(challenger) == balance0 + bond - spent


def _metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(name))


def _challenger_moves(pp, gid: int) -> int:
    return len(pp.events.Picked().get_logs(from_block=0, argument_filters={"gameId": gid})) + \
        len(pp.events.OperatorSelected().get_logs(from_block=0, argument_filters={"gameId": gid}))


def test_cheat_caught_challenger_killed_and_restarted(env, anvil):
    env.setup()
    w3, pp = _pp(env, anvil)
    challenger = env.json("accounts", "list")[0]["address"]  # aliases sorted: challenger, evaluator, requester
    balance0 = w3.eth.get_balance(challenger)
    mport = free_port()
    env.start("evaluator", "--cheat-op", CHEAT_OP)
    env.start("challenger", "--metrics-port", mport)
    task = _post(env)
    diag = _diag(env)
    gid = wait_for(lambda: [e["args"]["gameId"] for e in pp.events.Challenged().get_logs(from_block=0)],
                   90, "a challenge", diag=diag)[0]
    # kill the challenger (SIGKILL: no cleanup) once it has made a move, in the middle of the game
    wait_for(lambda: _challenger_moves(pp, gid) >= 1, 90, "a challenger move", diag=diag)
    # challenge + a move (counted once the daemon has seen its receipt, a poll after the event is visible)
    wait_for(lambda: _metric(mport, "pinpoint_moves_total") >= 2, 10, "the move in the metrics", diag=diag)
    assert _metric(mport, 'pinpoint_games_tracked{role="challenger",state=') >= 1
    env.procs["challenger"].send_signal(signal.SIGKILL)
    env.procs["challenger"].wait()
    assert pp.functions.game(gid).call()[2] in (1, 2)  # still in play
    time.sleep(2)
    env.start("challenger")
    wait_for(lambda: pp.functions.game(gid).call()[2] == 3, 150, "the game to end", diag=diag)
    wait_for(lambda: pp.events.Withdrawn().get_logs(from_block=0, argument_filters={"to": challenger}), 60,
             "the challenger to withdraw", diag=diag)
    _settled(env, anvil, pp, w3, task["task_id"], challenger, task["bond"], balance0)
    # the restarted process resumed the game from its database, and its game state machine was logged
    logs = env.logs("challenger")
    starts = [e for e in logs if e["event"] == "started"]
    assert len(starts) == 2 and starts[1]["resumed_games"] == [gid]
    states = [e["to"] for e in logs if e["event"] == "transition" and e.get("what") == "game"]
    assert "move_pending" in states and states[-1] == "won"
    ev_states = [e["to"] for e in env.logs("evaluator") if e["event"] == "transition" and e.get("what") == "game"]
    assert ev_states[-1] == "lost"
    # SIGTERM: a clean shutdown
    for role in ("evaluator", "challenger"):
        env.procs[role].send_signal(signal.SIGTERM)
        assert env.procs[role].wait(timeout=30) == 0
        assert env.logs(role)[-1]["event"] == "stopped"


def test_reorg_nothing_lost_or_double_spent(env, anvil):
    env.setup()
    w3, pp = _pp(env, anvil)
    challenger = env.json("accounts", "list")[0]["address"]
    balance0 = w3.eth.get_balance(challenger)
    env.start("evaluator", "--cheat-op", CHEAT_OP, "--confirmations", 2)
    env.start("challenger", "--confirmations", 2)
    task = _post(env)
    diag = _diag(env)
    gid = wait_for(lambda: [e["args"]["gameId"] for e in pp.events.Challenged().get_logs(from_block=0)],
                   90, "a challenge", diag=diag)[0]
    wait_for(lambda: _challenger_moves(pp, gid) >= 1, 90, "a challenger move", diag=diag)
    # replace the last 4 blocks (deeper than the confirmations): the transactions in them are dropped
    before = pp.functions.game(gid).call()
    anvil.rpc("anvil_reorg", [4, []])
    after = pp.functions.game(gid).call()
    wait_for(lambda: pp.functions.game(gid).call()[2] == 3, 180, "the game to end", diag=diag)
    wait_for(lambda: pp.events.Withdrawn().get_logs(from_block=0, argument_filters={"to": challenger}), 60,
             "the challenger to withdraw", diag=diag)
    _settled(env, anvil, pp, w3, task["task_id"], challenger, task["bond"], balance0)
    reorgs = [e for r in ("evaluator", "challenger") for e in env.logs(r) if e["event"] == "reorg"]
    assert reorgs, f"no daemon noticed the reorganization (game before {before}, after {after})"


def test_node_restart_daemons_reconnect(env, anvil):
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
    wait_for(lambda: _challenger_moves(pp, gid) >= 1, 90, "a challenger move", diag=diag)
    anvil.stop()
    time.sleep(4)
    anvil.start()  # same port, state reloaded from its dump
    wait_for(lambda: pp.functions.game(gid).call()[2] == 3, 180, "the game to end", diag=diag)
    wait_for(lambda: pp.events.Withdrawn().get_logs(from_block=0, argument_filters={"to": challenger}), 60,
             "the challenger to withdraw", diag=diag)
    _settled(env, anvil, pp, w3, task["task_id"], challenger, task["bond"], balance0)
    for r in ("evaluator", "challenger"):
        events = [e["event"] for e in env.logs(r)]
        assert "node error" in events, f"{r} never lost the node"
        assert "node reachable again" in events
