"""`pinpoint games show ID --out game.svg`: the picture of a finished game parses as SVG and draws every move.

A game is played to its end on the in-process chain with a small synthetic model (a cheating solver, an honest
challenger), then drawn from what `protocol.operations.inspect.game_view` reads back from the chain."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from offchain.inference.loader import lower
from offchain.inference.pipeline import run
from protocol.chain.connection import Chain
from protocol.inference.game import Deployment, challenge, play, post_task, submit
from protocol.inference.strategies import Challenger, Solver
from protocol.operations.inspect import game_view
from protocol.operations.picture import game_svg
from tests.synth import make_input, make_model

SVG = "{http://www.w3.org/2000/svg}"


def _finished_game():
    g = lower(make_model(3))
    honest = run(g, make_input(3, g.input.shape))
    cheat = honest.altered(1, 40)
    chain = Chain()
    dep = Deployment.deploy(chain)
    req, sol, ch = chain.accounts[:3]
    tid, _ = post_task(dep, honest, 10**15, req)
    submit(dep, tid, cheat, sol)
    gid, _ = challenge(dep, tid, ch)
    play(dep, gid, Solver(cheat, sol), Challenger(honest, ch))
    view = game_view(dep, gid)
    times = {b: int(chain.w3.eth.get_block(b)["timestamp"]) for b in {m["block"] for m in view["moves"]}}
    return view, times, 1


def test_picture_of_a_finished_game():
    view, times, op = _finished_game()
    assert view["winner"] == "challenger"
    svg = game_svg(view, times)
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == SVG + "svg"
    texts = ["".join(t.itertext()) for t in root.iter(SVG + "text")]
    bars = [r for r in root.iter(SVG + "rect") if r.get("class") == "move"]
    moving = [m for m in view["moves"] if m["event"] in ("Revealed", "Picked", "OperatorSelected")]
    assert len(bars) == len(moving) >= 3  # one bar per move of either phase
    assert {m["event"] for m in moving} == {"Revealed", "OperatorSelected"}
    for m in moving:  # each move is drawn with its block and gas
        assert any(f"block {m['block']} " in t and f"gas {m['gas']}" in t for t in texts), m
    assert any(f"select operator {op} " in t for t in texts)  # phase 1 narrowed to the altered operator
    assert any(t.startswith("phase 2: the output of operator") for t in texts)
    assert any("resolved at block" in t and "challenger won" in t for t in texts)
    # phase 1 ends on the altered operator's leaf: its bar lies inside the first reveal's (the whole trace)
    x0, w0 = float(bars[0].get("x")), float(bars[0].get("width"))
    x1, w1 = float(bars[1].get("x")), float(bars[1].get("width"))
    assert x0 <= x1 and x1 + w1 <= x0 + w0 and w1 < w0


def narrowing(svg: str) -> list[tuple[float, float, str]]:
    """(x, width, text) of each move bar of a picture, in order (for the MobileNetV2 game in the daemon test)."""
    root = ET.fromstring(svg)
    return [(float(r.get("x")), float(r.get("width")), "") for r in root.iter(SVG + "rect") if r.get("class") == "move"]
