"""Disputes on every bundled model: a solver cheating at one element of the first operator of each canonical kind
the model contains, the honest challenger playing the game to the end on anvil. Prints, per model, the kinds, the
worst dispute gas (challenge + every move) with its operator and the most rounds (solver reveals), or with
``--json`` ``{model: {"kinds", "worst_dispute_gas", "worst_op", "rounds_max", "challenger_won"}}``.

    .venv/bin/python benchmarks/model_games.py [--models a,b] [--json]

The int8 models are the bundle's (`tests.bundle`: the two int8 ones as they are, the float ones quantized on their
first 16 images into the model cache).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.inference.evaluators import make_evaluator  # noqa: E402
from offchain.inference.inputs import load_input  # noqa: E402
from offchain.inference.loader import load  # noqa: E402
from offchain.inference.quantize import input_files  # noqa: E402
from offchain.inference.trace import Trace  # noqa: E402
from protocol.chain.anvil import start_anvil  # noqa: E402
from protocol.chain.connection import Chain  # noqa: E402
from protocol.inference.game import Deployment, challenge, play, post_task, submit, winner  # noqa: E402
from protocol.inference.strategies import Challenger, Solver  # noqa: E402
from tests.bundle import BY_NAME, MODELS, int8_model  # noqa: E402

FEE = 10**16


def model_disputes(dep: Deployment, name: str) -> dict:
    """Play one dispute at the first operator of each kind of bundle model ``name``."""
    m = BY_NAME[name]
    graph = load(int8_model(m))
    honest = Trace.of(make_evaluator(graph)(load_input(input_files(m.folder)[0], graph, m.preprocess)))
    A = dep.chain.accounts
    first = {}
    for j, op in enumerate(graph.ops):
        first.setdefault(op.kind.name, j)
    games = []
    for kind, j in first.items():
        cheat = honest.altered(j, (7919 * (j + 1)) % graph.ops[j].out.numel)
        tid, _ = post_task(dep, honest, FEE, A[0])
        submit(dep, tid, cheat, A[1])
        gid, ch = challenge(dep, tid, A[2])
        moves = play(dep, gid, Solver(cheat, A[1]), Challenger(honest, A[2]))
        games.append({"op": f"{j} {kind}", "gas": ch.gas + sum(mv.gas for mv in moves),
                      "rounds": sum(1 for mv in moves if mv.who == "solver"), "won": winner(dep, gid)})
    worst = max(games, key=lambda g: g["gas"])
    return {"kinds": sorted(first), "worst_dispute_gas": worst["gas"], "worst_op": worst["op"],
            "rounds_max": max(g["rounds"] for g in games),
            "challenger_won": all(g["won"] == "challenger" for g in games)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(m.name for m in MODELS))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    proc, url = start_anvil(None, "--gas-limit", "100000000")
    out = {}
    try:
        dep = Deployment.deploy(Chain(url))
        for name in a.models.split(","):
            out[name] = model_disputes(dep, name)
            if not a.json:
                r = out[name]
                print(f"{name:<18} worst dispute {r['worst_dispute_gas']:>10,} gas (op {r['worst_op']}), "
                      f"rounds <= {r['rounds_max']}, challenger won every game: {r['challenger_won']}; "
                      f"kinds {', '.join(r['kinds'])}", flush=True)
    finally:
        proc.terminate()
    if a.json:
        print(json.dumps(out))
    return 0 if all(r["challenger_won"] for r in out.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
