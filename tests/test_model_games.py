"""A full game on anvil at one operator of each kind each bundled model contains (issue 9, item 6): the model as a
user brings it (the int8 ones as they are, the float32 ones after `pinpoint quantize`'s library, cached at run
time by `tests.bundle.int8_model`), evaluated on one of its own images, a solver cheating at one element of that
operator, the honest challenger playing the game to the end through `Pinpoint` (phases 1-2, phase 3 for long
reductions, the one-step routed by `OneStep` to `Pooling` or `Elementwise` for kinds 7-14). The challenger must win
and every wei must be accounted for. CI plays the small models and SqueezeNet (which covers MAXPOOL, LUT, CONCAT and SOFTMAX); the others are `slow`.
"""

from __future__ import annotations

import pytest

from offchain.inference.loader import load
from offchain.inference.pipeline import load_input
from offchain.inference.evaluators import make_evaluator
from offchain.inference.trace import Trace
from protocol.chain.connection import Chain
from protocol.inference.game import Deployment, challenge, play, post_task, submit, winner
from protocol.inference.strategies import Challenger, Solver
from tests.bundle import BY_NAME, available, int8_model
from offchain.inference.quantize import input_files
from tests.solvency import assert_solvent

pytestmark = pytest.mark.skipif(not available(), reason="the data bundle (../shared/data) is not present")
FEE = 10**16
SMALL = ["mnist-opset7", "resnet8-int8", "resnet20", "squeezenet1.1"]
BIG = ["mobilenetv1-0.25", "mobilenetv2", "mobilenetv2-int8", "resnet8", "mnist-opset8"]


@pytest.fixture(scope="module")
def dep(anvil_url):
    return Deployment.deploy(Chain(anvil_url))


def _trace(name: str) -> Trace:
    m = BY_NAME[name]
    graph = load(int8_model(m))
    x = load_input(input_files(m.folder)[0], graph, m.preprocess)
    return Trace.of(make_evaluator(graph)(x))


def _one_per_kind(graph) -> dict[str, int]:
    first: dict[str, int] = {}
    for j, op in enumerate(graph.ops):
        first.setdefault(op.kind.name, j)
    return first


def _play_cheats(dep, honest: Trace) -> dict[str, str]:
    A = dep.chain.accounts
    out = {}
    for kind, j in _one_per_kind(honest.graph).items():
        elem = (7919 * (j + 1)) % honest.graph.ops[j].out.numel
        cheat = honest.altered(j, elem)
        tid, _ = post_task(dep, honest, FEE, A[0])
        submit(dep, tid, cheat, A[1])
        gid, _ = challenge(dep, tid, A[2])
        moves = play(dep, gid, Solver(cheat, A[1]), Challenger(honest, A[2]))
        out[kind] = moves[-1].what
        assert winner(dep, gid) == "challenger", f"{kind} at op {j}: the challenger did not win ({out[kind]})"
        assert_solvent(dep)
    return out


@pytest.mark.parametrize("name", SMALL)
def test_game_at_every_kind_small_models(dep, name):
    honest = _trace(name)
    played = _play_cheats(dep, honest)
    assert set(played) == {op.kind.name for op in honest.graph.ops}


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_game_at_every_kind_big_models(dep, name):
    honest = _trace(name)
    played = _play_cheats(dep, honest)
    assert set(played) == {op.kind.name for op in honest.graph.ops}
