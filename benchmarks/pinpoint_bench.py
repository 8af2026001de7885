"""Pinpoint benchmark on MobileNetV2-int8: gas of every action, worst-case dispute, rounds, evaluator latency
against onnxruntime on the same model in the same run, and the time to produce all intermediates with their
commitments. Prints a table next to Agatha's figures (arXiv 2105.04919).

    .venv/bin/python benchmarks/pinpoint_bench.py [--rpc-url URL] [--runs N]

Without --rpc-url it starts the project's anvil (node_modules/.bin/anvil) on a free port.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.inference.graph import Kind  # noqa: E402
from offchain.inference.pipeline import Trace, load_input, load_model, make_evaluator, run  # noqa: E402
from protocol.chain.anvil import start_anvil  # noqa: E402
from protocol.chain.connection import Chain  # noqa: E402
from protocol.inference.game import Deployment, challenge, play, post_task, submit  # noqa: E402
from protocol.inference.strategies import Challenger, Solver  # noqa: E402
from protocol.inference.scenarios import FEE  # noqa: E402

MODEL = ROOT / "offchain/assets/mobilenetv2-12-int8.onnx"
PHOTO = ROOT / "offchain/assets/bald_eagle.jpeg"


def gas_table() -> dict[str, int]:
    """The per-action bounds of contracts/shared/Gas.sol (the bond is derived from them)."""
    import re

    text = (ROOT / "contracts/shared/Gas.sol").read_text()
    return {k: int(v.replace("_", "")) for k, v in re.findall(r"constant (\w+) = ([\d_]+);", text)}


def latency(evaluator, x, runs: int) -> tuple[float, float]:
    """Median seconds of one evaluation: ours (``evaluator``, built beforehand) and onnxruntime on the ONNX model."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for _ in range(3):
        sess.run(None, {name: x})
        evaluator(x)
    ours, theirs = [], []
    for _ in range(runs):
        t = time.perf_counter(); sess.run(None, {name: x}); theirs.append(time.perf_counter() - t)
        t = time.perf_counter(); evaluator(x); ours.append(time.perf_counter() - t)
    return statistics.median(ours), statistics.median(theirs)


def one_step_costs(dep: Deployment, trace: Trace) -> dict[int, int]:
    """Gas of OneStep.element for one element in the middle of every operator's output (eth_estimateGas)."""
    out = {}
    for j, op in enumerate(trace.graph.ops):
        e = op.out.numel // 2 + 1
        roots, _, openings = trace.step_openings(j, e)
        fn = dep.onestep.functions.element(op.descriptor(), roots, e, [o.as_tuple() for o in openings])
        out[j] = int(fn.estimate_gas()) - 21_000
    return out


def game_at(dep: Deployment, honest: Trace, j: int, elem: int) -> dict:
    A = dep.chain.accounts
    cheat = honest.altered(j, elem)
    tid, _ = post_task(dep, honest, FEE, A[0])
    sub = submit(dep, tid, cheat, A[1])
    gid, ch = challenge(dep, tid, A[2])
    moves = play(dep, gid, Solver(cheat, A[1]), Challenger(honest, A[2]))
    return {"op": j, "kind": honest.graph.ops[j].kind.name, "submit": sub.gas, "challenge": ch.gas,
            "moves": moves, "dispute": ch.gas + sum(m.gas for m in moves),
            "rounds": sum(1 for m in moves if m.who == "solver")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rpc-url")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    graph = load_model(MODEL)
    x = load_input(PHOTO, graph)
    evaluator = make_evaluator(graph)
    ours, ort_t = latency(evaluator, x, args.runs)
    t0 = time.perf_counter()
    honest = run(graph, x, evaluator)
    t_all = time.perf_counter() - t0

    proc = None
    url = args.rpc_url
    if url is None:
        proc, url = start_anvil(None, "--gas-limit", "100000000")
    try:
        dep = Deployment.deploy(Chain(url))
        costs = one_step_costs(dep, honest)
        worst_op = max(costs, key=costs.get)
        deepest = max(range(graph.n_ops), key=lambda j: honest.trees[j + 1].depth)
        kinds = [op.kind for op in graph.ops]
        sites = sorted({0, 1, deepest, graph.n_ops // 2, kinds.index(Kind.GAP), worst_op, graph.n_ops - 1})
        games = [game_at(dep, honest, j, (honest.graph.ops[j].out.numel * 2) // 3) for j in sites]
    finally:
        if proc:
            proc.terminate()
    worst = max(games, key=lambda g: g["dispute"])
    moves = [m for g in games for m in g["moves"]]
    reveal = [m.gas for m in moves if m.what.startswith("reveal")]
    pick = [m.gas for m in moves if m.what.startswith("pick")]
    select = [m.gas for m in moves if m.what.startswith("select")]
    step = [m.gas for m in moves if m.what.startswith("one-step")]

    print(f"\npinpoint benchmark: {MODEL.name}, {graph.n_ops} canonical operators, input {PHOTO.name}, "
          f"chain {url}\n")
    print(f"{'metric':<58}{'pinpoint':>16}{'Agatha':>16}")
    rows = [
        ("submit gas (normal case, no dispute)", f"{games[0]['submit']:,}", "63.0k"),
        ("challenge gas (opens a game)", f"{games[0]['challenge']:,}", "-"),
        ("solver reveal gas, mean / max (k = 16 children)",
         f"{statistics.mean(reveal):,.0f} / {max(reveal):,}", "65.6k"),
        ("challenger pick gas, mean / max", f"{statistics.mean(pick):,.0f} / {max(pick):,}", "52.7k"),
        ("challenger select-operator gas (phase binding), max", f"{max(select):,}", "-"),
        ("one-step gas, max over the games played", f"{max(step):,}", "-"),
        (f"worst-case dispute gas (op {worst['op']} {worst['kind']})", f"{worst['dispute']:,}", "1,495k"),
        ("rounds (solver reveals) in that dispute", f"{worst['rounds']}", "~10"),
        ("rounds, max over the games played", f"{max(g['rounds'] for g in games)}", "~10"),
        ("XCE evaluator latency (median)", f"{ours * 1000:.1f} ms", "43.9 ms"),
        ("onnxruntime int8 latency, same model, same run", f"{ort_t * 1000:.2f} ms", "41.2 ms"),
        ("evaluator latency / onnxruntime", f"{ours / ort_t:.1f}x", "1.066x"),
        ("all intermediates + commitments", f"{t_all:.2f} s", "7.3 s"),
    ]
    for r in rows:
        print(f"{r[0]:<58}{r[1]:>16}{r[2]:>16}")
    print(f"\ndisputes played (cheat at op, dispute gas, rounds): " +
          ", ".join(f"{g['op']} {g['kind']} {g['dispute']:,} {g['rounds']}" for g in games))
    top = sorted(costs.items(), key=lambda kv: -kv[1])[:5]
    print("most expensive one-step cores (OneStep.element, estimateGas - 21000): " +
          ", ".join(f"op {j} {graph.ops[j].kind.name} {c:,}" for j, c in top))
    bound = gas_table()
    over = [k for k, v in {"STEP": max(step), "REVEAL": max(reveal), "PICK": max(pick), "SELECT": max(select),
                           "CHALLENGE": max(g["challenge"] for g in games)}.items() if v > bound[k]]
    print("Gas.sol bounds respected" if not over else f"EXCEEDS Gas.sol bounds: {over}")
    if over:
        sys.exit(1)


if __name__ == "__main__":
    main()
