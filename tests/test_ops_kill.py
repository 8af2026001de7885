"""SIGKILL of either daemon at three points of a game (right after the challenge, in the middle of phase 1, in phase
2), against anvil on the real MobileNetV2: the restarted daemon resumes from its database and the chain, and the game
ends with the right winner (the cheating evaluator loses), nothing lost, one bond posted. Two schedules, so that each
daemon is killed at each point once. The finished game is then drawn with `pinpoint games show ID --out game.svg`."""

from __future__ import annotations

import signal
import time
import xml.etree.ElementTree as ET

import pytest

from tests.test_ops_daemons import CHEAT_OP, _diag, _post, _pp, _settled, _wait_daemons_saw_end
from tests.test_ops_helpers import anvil, env, needs_anvil, wait_for  # noqa: F401

pytestmark = [needs_anvil, pytest.mark.anvil, pytest.mark.slow]
SVG = "{http://www.w3.org/2000/svg}"


def _kill_restart(env, role: str, extra: tuple) -> None:
    env.procs[role].send_signal(signal.SIGKILL)
    env.procs[role].wait()
    time.sleep(1)
    env.start(role, *extra)


@pytest.mark.parametrize("schedule", [("challenger", "evaluator", "challenger"),
                                      ("evaluator", "challenger", "evaluator")], ids=["c-e-c", "e-c-e"])
def test_sigkill_at_three_points(env, anvil, schedule):
    from protocol.inference.types import Phase, decode_game

    env.setup(("--challenge-window", "90", "--move-window", "90"))
    w3, pp = _pp(env, anvil)
    challenger = env.json("accounts", "list")[0]["address"]
    balance0 = w3.eth.get_balance(challenger)
    extra = {"evaluator": ("--cheat-op", CHEAT_OP), "challenger": ()}
    for role in ("evaluator", "challenger"):
        env.start(role, *extra[role])
    task = _post(env)
    diag = _diag(env)
    game = lambda: decode_game(pp, pp.functions.game(gid).call())  # noqa: E731
    picks = lambda phase: [lg for lg in pp.events.Picked().get_logs(from_block=0)  # noqa: E731
                           if lg["args"]["phase"] == phase]
    gid = wait_for(lambda: [e["args"]["gameId"] for e in pp.events.Challenged().get_logs(from_block=0)],
                   120, "a challenge", interval=0.2, diag=diag)[0]
    _kill_restart(env, schedule[0], extra[schedule[0]])  # 1. right after the challenge
    wait_for(lambda: picks(1), 150, "a pick in phase 1", interval=0.2, diag=diag)
    assert game().phase == Phase.TRACE_SEARCH
    _kill_restart(env, schedule[1], extra[schedule[1]])  # 2. in the middle of phase 1
    wait_for(lambda: game().phase >= Phase.TENSOR_SEARCH, 150, "phase 2", interval=0.2, diag=diag)
    assert game().phase == Phase.TENSOR_SEARCH, "the game ended before the daemon could be killed in phase 2"
    _kill_restart(env, schedule[2], extra[schedule[2]])  # 3. in phase 2
    wait_for(lambda: game().resolved, 200, "the game to end", diag=diag)
    assert game().winner == "challenger"
    _wait_daemons_saw_end(env, diag)
    _settled(env, anvil, pp, w3, task["task_id"], challenger, task["bond"], balance0)
    for role, outcome in (("evaluator", "lost"), ("challenger", "won")):
        logs = env.logs(role)
        assert sum(e["event"] == "started" for e in logs) == 1 + schedule.count(role)
        states = [e["to"] for e in logs if e["event"] == "transition" and e.get("what") == "game"]
        assert states[-1] == outcome
    # the picture of the finished game: phase 1 narrows through the operators to the altered one, then phase 2
    out = env.tmp / "game.svg"
    env.cli("games", "show", gid, "--network", "local", "--rpc-url", env.rpc, "--out", out)
    root = ET.fromstring(out.read_text())
    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    assert any(f"select operator {CHEAT_OP} " in t for t in texts)
    bars = [(float(r.get("x")), float(r.get("width"))) for r in root.iter(SVG + "rect") if r.get("class") == "move"]
    view = env.json("games", "show", gid, "--network", "local", "--rpc-url", env.rpc, "--json")
    moving = [m for m in view["moves"] if m["event"] in ("Revealed", "Picked", "OperatorSelected")]
    assert len(bars) == len(moving)
    phase1 = bars[:[m["event"] for m in moving].index("OperatorSelected") + 1]
    assert all(w1 <= w0 for (_, w0), (_, w1) in zip(phase1, phase1[1:])) and phase1[-1][1] < phase1[0][1]
    for m in moving:
        assert any(f"block {m['block']} " in t and f"gas {m['gas']}" in t for t in texts)
