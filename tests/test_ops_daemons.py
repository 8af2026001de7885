"""The evaluator and challenger daemons as separate processes against anvil (1 s blocks), on the real MobileNetV2.

Each slow test posts one task with the CLI; a cheating evaluator daemon (`--cheat-op`) submits a wrong result; the
honest challenger daemon catches it. What varies is what the test does to the processes and the node in between.
The fast test runs an evaluator daemon in-process on a small model: the tasks it must refuse.
"""

from __future__ import annotations

import signal
import time
import urllib.request

import pytest
from web3 import Web3

from protocol.chain.connection import artifact
from tests.test_ops_helpers import IMAGE, MODEL, anvil, env, free_port, needs_anvil, wait_for  # noqa: F401

pytestmark = [needs_anvil, pytest.mark.anvil]
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


def _wait_daemons_saw_end(env, diag, outcome: dict | None = None) -> None:
    """Wait until each daemon has logged its game's end as the chain decided it (the payouts are pushed by the
    resolving move itself, so the chain is settled before the daemons have seen it confirmed)."""
    outcome = outcome or {"evaluator": "lost", "challenger": "won"}

    def seen():
        return all([e["to"] for e in env.logs(r) if e["event"] == "transition" and e.get("what") == "game"][-1:]
                   == [want] for r, want in outcome.items())
    wait_for(seen, 60, "both daemons to see the game end", interval=0.5, diag=diag)


def _settled(env, anvil, pp, w3, task_id: int, challenger: str, bond: int, balance0: int) -> None:
    """The cheat was caught: the game is resolved for the challenger, the task rejected, the challenger posted exactly
    one bond and was paid more than it (its bond back and its share of the solver's), nothing is left owed to it or to
    the requester (whose fee was paid back), and the contract holds exactly what it owes (credits, plus what it
    burned if the payout rule burns)."""
    from protocol.inference.types import Phase, Status, decode_game, decode_task

    games = pp.events.Challenged().get_logs(from_block=0, argument_filters={"taskId": task_id})
    assert len(games) == 1 and games[0]["args"]["challenger"] == challenger  # one bond posted, never two
    g = decode_game(pp, pp.functions.game(games[0]["args"]["gameId"]).call())
    assert g.phase == Phase.RESOLVED and g.challenger_won
    t = decode_task(pp, pp.functions.task(task_id).call())
    assert t.status == Status.REJECTED
    wd = [int(e["args"]["amount"]) for e in pp.events.Withdrawn().get_logs(from_block=0,
                                                                            argument_filters={"to": challenger})]
    assert len(wd) == 1 and wd[0] > bond
    assert pp.functions.credit(challenger).call() == 0
    names = {f["name"] for f in pp.abi if f.get("type") == "function"}
    burned = pp.functions.burned().call() if "burned" in names else 0
    owed = sum(pp.functions.credit(a).call() for a in {t.requester, t.solver, challenger})
    assert w3.eth.get_balance(pp.address) == owed + burned
    # the requester's fee was paid back by the resolving move (pushed; nothing left credited)
    paid = [int(e["args"]["amount"]) for e in pp.events.Withdrawn().get_logs(from_block=0,
                                                                              argument_filters={"to": t.requester})]
    assert paid == [FEE] and pp.functions.credit(t.requester).call() == 0
    # the challenger's balance moved by what it withdrew minus its bond and the gas of its own transactions
    spent = 0
    blk = w3.eth.block_number
    for n in range(blk + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] == challenger:
                r = w3.eth.get_transaction_receipt(tx["hash"])
                spent += r["gasUsed"] * r["effectiveGasPrice"]
    assert w3.eth.get_balance(challenger) == balance0 - bond + wd[0] - spent


def _metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(name))


def _challenger_moves(pp, gid: int) -> int:
    return len(pp.events.Picked().get_logs(from_block=0, argument_filters={"gameId": gid})) + \
        len(pp.events.OperatorSelected().get_logs(from_block=0, argument_filters={"gameId": gid}))


@pytest.mark.slow
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
    _wait_daemons_saw_end(env, diag)
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


@pytest.mark.slow
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
    _wait_daemons_saw_end(env, diag)
    _settled(env, anvil, pp, w3, task["task_id"], challenger, task["bond"], balance0)
    reorgs = [e for r in ("evaluator", "challenger") for e in env.logs(r) if e["event"] == "reorg"]
    assert reorgs, f"no daemon noticed the reorganization (game before {before}, after {after})"


def _gas_of(w3, who: str) -> int:
    return sum(w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"] for n in range(w3.eth.block_number + 1)
               for tx in w3.eth.get_block(n, full_transactions=True)["transactions"] if tx["from"] == who)


@pytest.mark.slow
def test_node_restart_daemons_reconnect(env, anvil):
    env.setup()
    w3, pp = _pp(env, anvil)
    challenger = env.json("accounts", "list")[0]["address"]
    balance0 = w3.eth.get_balance(challenger)
    mport = free_port()
    env.start("evaluator", "--cheat-op", CHEAT_OP)
    env.start("challenger", "--metrics-port", mport)
    task = _post(env)
    diag = _diag(env)
    gid = wait_for(lambda: [e["args"]["gameId"] for e in pp.events.Challenged().get_logs(from_block=0)],
                   90, "a challenge", diag=diag)[0]
    wait_for(lambda: _challenger_moves(pp, gid) >= 1, 90, "a challenger move", diag=diag)
    # the metrics while the game is live: the challenger's bond at stake, one game in flight, a deadline ahead
    wait_for(lambda: _metric(mport, "pinpoint_games_in_flight") == 1, 10, "the live game in the metrics", diag=diag)
    assert _metric(mport, 'pinpoint_bonds_at_stake_wei{role="challenger"}') == task["bond"]
    assert _metric(mport, "pinpoint_up") == 1 and _metric(mport, "pinpoint_info{") == 1
    assert 0 < _metric(mport, 'pinpoint_account_balance_wei{role="challenger"}') <= balance0
    def left():
        return [_metric(mport, f'pinpoint_nearest_deadline_seconds{{role="challenger",turn="{t}"}}')
                for t in ("ours", "theirs")]
    # a deadline ahead (read until the next metrics refresh: under a loaded CI it once read NaN for both turns)
    wait_for(lambda: any(0 < x <= 60 for x in left()), 10, "a deadline ahead in the metrics",
             diag=lambda: str(left()))
    anvil.stop()
    time.sleep(4)
    anvil.start()  # same port, state reloaded from its dump
    wait_for(lambda: pp.functions.game(gid).call()[2] == 3, 180, "the game to end", diag=diag)
    _wait_daemons_saw_end(env, diag)
    _settled(env, anvil, pp, w3, task["task_id"], challenger, task["bond"], balance0)
    for r in ("evaluator", "challenger"):
        events = [e["event"] for e in env.logs(r)]
        assert "node error" in events, f"{r} never lost the node"
        assert "node reachable again" in events
    # the metrics after the game: as the chain decided it, each transaction's gas once, what was withdrawn
    wait_for(lambda: _metric(mport, "pinpoint_games_in_flight") == 0, 10, "the game settled in the metrics")
    assert _metric(mport, 'pinpoint_games_tracked{role="challenger",state="won"}') == 1
    assert _metric(mport, 'pinpoint_games_tracked{role="challenger",state="lost"}') == 0
    assert _metric(mport, "pinpoint_bonds_at_stake_wei") == 0
    assert _metric(mport, "pinpoint_gas_spent_total") == _gas_of(w3, challenger)
    wd = sum(int(e["args"]["amount"]) for e in pp.events.Withdrawn().get_logs(from_block=0,
                                                                             argument_filters={"to": challenger}))
    wait_for(lambda: _metric(mport, "pinpoint_paid_wei") == wd, 10, "the payout in the metrics")
    # one "sent" per broadcast, each followed by its receipt; no receipt wait logged as a node error
    logs = env.logs("challenger")
    sent = [e["tx"] for e in logs if e["event"] == "sent"]
    receipts = [e["tx"] for e in logs if e["event"] == "receipt"]
    assert len(sent) == len(set(sent)) and set(receipts) <= set(sent) and len(receipts) == len(set(receipts))
    assert not [e for e in logs if e["event"] == "node error" and "TimeExhausted" in e.get("error", "")]


def test_evaluator_refuses_under_declared_depth_and_refused_model(anvil_url, tmp_path, caplog):
    """The evaluator daemon submits to a correctly declared task, and not to a task whose maxTensorDepth is smaller
    than the model's deepest tensor tree, nor to one whose model the loader refuses; it logs why, once."""
    import logging

    import onnx
    from eth_abi import encode as abi_encode
    from onnx import TensorProto, helper

    from offchain.common.hashing import keccak

    from offchain.inference.loader import lower
    from offchain.inference.pipeline import run
    from protocol.chain.connection import Chain
    from protocol.inference.game import Deployment
    from protocol.operations.daemon import DB, Config, EvaluatorDaemon, Store
    from tests.synth import make_input, make_model
    from tests.test_ops_helpers import dev_key

    model = make_model(5)
    trace = run(lower(model), make_input(5, (1, 4, 7, 6)))
    (tmp_path / "m.onnx").write_bytes(model.SerializeToString())
    store = Store(tmp_path / "store")
    store.put(tmp_path / "m.onnx", trace)
    # a model the loader refuses (a float operator), stored under the root a requester posted for it
    relu = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["input"], ["output"])], "float",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 7, 6])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 7, 6])]))
    bad_root = bytes(range(32))
    bad_model_root = keccak(abi_encode(["uint256", "bytes32"], [trace.graph.n_ops, bad_root]))  # Pinpoint.modelRoot
    onnx.save(relu, store.dir / f"0x{bad_model_root.hex()}.onnx")

    dep = Deployment.deploy(Chain(anvil_url))
    pp, ch = dep.pinpoint, dep.chain
    depth, n = trace.max_tensor_depth(), trace.graph.n_ops
    start = ch.w3.eth.block_number

    def post(root, d):
        tx = ch.send(pp.functions.postTask(root, n, trace.input_root, d), value=10**15)
        return int(pp.events.TaskPosted().process_receipt(tx.receipt)[0]["args"]["taskId"])

    shallow, good, refused = post(trace.ops_tree.root, depth - 1), post(trace.ops_tree.root, depth), \
        post(bad_root, depth)
    me = Chain(anvil_url, keys=[dev_key(7)])
    d = EvaluatorDaemon(me, pp.address, DB(tmp_path / "e.sqlite"), store,
                        Config(confirmations=0, reorg_depth=2, from_block=start), logging.getLogger("refusal"))
    with caplog.at_level(logging.INFO, logger="refusal"):
        for _ in range(4):
            d.tick()
            ch.w3.provider.make_request("evm_mine", [])
    submitted = {int(e["args"]["taskId"]) for e in pp.events.ResultSubmitted().get_logs(from_block=start)}
    assert submitted == {good}
    rows = {r["task_id"]: r for r in d.db.q("SELECT task_id, state, note FROM tasks")}
    assert rows[shallow]["state"] == rows[refused]["state"] == "unavailable"
    assert f"maxTensorDepth {depth - 1}" in rows[shallow]["note"]
    assert "loader refuses" in rows[refused]["note"]
    why = [r.fields for r in caplog.records if r.getMessage() == "task refused"]
    assert sorted(f["task_id"] for f in why) == [shallow, refused], why
