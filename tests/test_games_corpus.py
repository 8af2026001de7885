"""The seeded CI share of the adversarial game corpus (`benchmarks/games.py`): 50 randomized games on anvil, every
strategy played, no honest party below its due and not one wei unaccounted."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_fifty_games_no_honest_loss_no_wei_unaccounted(anvil_url, capsys):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "games.py"
    spec = importlib.util.spec_from_file_location("games_bench", path)
    games = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(games)
    out = games.main(["--games", "50", "--seed", "3", "--mobilenet-share", "0.1", "--rpc-url", anvil_url, "--json"])
    assert out["games"] == 50
    assert set(out["by_strategy"]) == set(games.STRATEGIES), out["by_strategy"]
    assert out["honest_losses"] == 0 and out["wei_unaccounted"] == 0, out
    assert out["one_step_gas_max"], out
