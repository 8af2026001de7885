"""The seeded CI share of the adversarial game corpus (`benchmarks/games.py`): 50 randomized games on anvil, every
strategy played, reorganizations (one after a game's final move included), last-second and missed moves, games on
MobileNetV2 and on long reductions (phase 3) among them, no honest party below its due, every honest winner's gas
covered and not one wei unaccounted. A bigger run is marked slow."""

from __future__ import annotations

import importlib

import pytest

pytestmark = pytest.mark.anvil


def _games():
    return importlib.import_module("benchmarks.games")


def _check(out: dict, n: int, games) -> None:
    assert out["games"] == n
    assert set(games.STRATEGIES) <= set(out["by_strategy"]), out["by_strategy"]
    assert out["honest_losses"] == 0 and out["wei_unaccounted"] == 0, out
    assert out["honest_gas_uncovered"] == 0, out
    assert out["one_step_gas_max"], out


def test_fifty_games_no_honest_loss_no_wei_unaccounted(anvil_url):
    games = _games()
    out = games.main(["--games", "50", "--seed", "3", "--mobilenet-share", "0.1", "--reorg-share", "0.4",
                      "--big-share", "0.2" if games.PHASE3 else "0", "--rpc-url", anvil_url, "--json"])
    _check(out, 50, games)
    if games.PHASE3:  # long reductions reach phase 3, each final move of it played
        assert out["disputed"].get("phase 3", 0) >= 2, out["disputed"]
        assert {"chunk", "finish"} <= {k.split()[-1] for k in out["one_step_gas_max"]}, out["one_step_gas_max"]
    assert out["by_strategy"].get("reorganized", 0) >= 5, out
    assert out["reorgs_after_final_move"] >= 1 and out["last_second_moves"] >= 1 and out["missed_moves"] >= 1, out
    assert out["by_strategy"].get("on MobileNetV2", 0) >= 1, out


def test_drive_replays_a_move_a_reorganization_dropped(anvil_url):
    """A reorganization right after the honest challenger's winning one-step undoes it; the driver sees the game
    active again from chain state alone and the challenger wins it again."""
    import random

    from protocol.chain.connection import Chain
    from protocol.inference.game import Deployment, challenge, post_task, read_game, submit
    from protocol.inference.strategies import Challenger, Solver

    games = _games()
    dep = Deployment.deploy(Chain(anvil_url))
    A = dep.chain.accounts
    honest = games.synthetic(random.Random(1))
    cheat = honest.altered(2, 0)
    tid, _ = post_task(dep, honest, games.FEE, A[0])
    submit(dep, tid, cheat, A[1])
    gid, _ = challenge(dep, tid, A[2])
    st = games.Stats()
    s, c = games.Player(Solver(cheat, A[1]), False), games.Player(Challenger(honest, A[2]), True)
    moves = games.drive(dep, gid, s, c, random.Random(0), st)
    assert read_game(dep, gid).winner == "challenger" and moves[-1].what.startswith("one-step")
    dep.chain.w3.provider.make_request("anvil_reorg", [2, []])  # the one-step and the reveal before it vanish
    assert read_game(dep, gid).active
    again = games.drive(dep, gid, s, c, random.Random(0), st)
    assert [m.what for m in again] == [m.what for m in moves[-2:]]
    assert read_game(dep, gid).winner == "challenger"


@pytest.mark.slow
def test_three_hundred_games(anvil_url):
    games = _games()
    out = games.main(["--games", "300", "--seed", "17", "--rpc-url", anvil_url, "--json"])
    _check(out, 300, games)
