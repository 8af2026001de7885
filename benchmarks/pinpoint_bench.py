"""Pinpoint benchmark, one table per model (the zoo MobileNetV2-int8 with its real weights; ResNet-50 and VGG-16 at
their real layer shapes with SEEDED SYNTHETIC weights, `benchmarks/synthetic_models.py`, built and quantized on first
use into ``$PINPOINT_HOME/cache/models``): gas of every action, worst-case dispute, rounds, evaluator latency
against onnxruntime's own int8 kernels on the same model in the same run (interleaved, medians), the time of the
commitments alone and of all intermediates with their commitments, and the peak RSS. Prints a table next to
Agatha's figures (arXiv 2105.04919), or with ``--json``
``{"models": {name: {"latency_ratio", "ours_ms", "onnxruntime_ms", "commitment_s", "peak_rss_mb", "submit_gas",
"reveal_gas_max", "pick_gas_max", "worst_dispute_gas", "rounds_max"}}}``.

    .venv/bin/python benchmarks/pinpoint_bench.py [--models mobilenetv2,resnet50,vgg16] [--rpc-url URL] [--runs N]
        [--json] [--no-gas] [--fallback]

Without --rpc-url it starts the project's anvil (node_modules/.bin/anvil) on a free port; ``--no-gas`` skips the
chain (gas fields null). ``--models`` also takes ``mobilenetv1`` and ``squeezenet``: the data bundle's float32
MobileNetV1 0.25 and SqueezeNet 1.1 quantized as `tests/bundle.py` does (QOperator, uint8, per tensor; cached), the
bundled models that end in a SOFTMAX. ``--fallback`` also times the evaluator ``auto`` falls back to when the native
compiler refuses a graph (`OrtEvaluator` if the graph compiles, else the numpy `FastEvaluator`: the latency before
a kind was lowered natively), interleaved with ours in a loop of its own (runs / 5, at least 5) so that the slow
fallback does not disturb the ours / onnxruntime loop (adds a table row and ``fallback_ms``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.inference.pipeline import Trace, load_input, load_model, make_evaluator  # noqa: E402
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


def model_paths(names: list[str]) -> dict[str, tuple[Path, str]]:
    """name -> (int8 ONNX path, provenance) for the names asked (mobilenetv2, resnet50, vgg16)."""
    from benchmarks.synthetic_models import ensure

    out = {}
    for n in names:
        if n == "mobilenetv2":
            out["mobilenetv2-12-int8"] = (MODEL, "real weights (ONNX model zoo)")
        elif n in ("resnet50", "vgg16"):
            out[f"{n}-synthetic"] = (ensure(n), "real layer shapes, seeded synthetic weights")
        elif n in BUNDLE:
            from tests.bundle import BY_NAME, available, int8_model

            if not available():
                raise SystemExit(f"error: {n} needs the data bundle (../shared/data)")
            out[f"{BUNDLE[n]}-int8"] = (int8_model(BY_NAME[BUNDLE[n]], "qoperator"),
                                        "data bundle fp32, quantized: QOperator, uint8")
        else:
            raise SystemExit(f"error: unknown model {n!r} (mobilenetv2, resnet50, vgg16, {', '.join(BUNDLE)})")
    return out


BUNDLE = {"mobilenetv1": "mobilenetv1-0.25", "squeezenet": "squeezenet1.1"}
"""--models names of data-bundle models (their `tests/bundle.py` names)."""


def fallback_evaluator(graph):
    """The evaluator ``make_evaluator(graph, "auto")`` takes when the native compiler refuses ``graph``: the
    onnxruntime graph of `offchain.inference.ort` if it compiles, else the numpy fast path."""
    from offchain.inference.evaluators import FastEvaluator, OrtEvaluator
    from offchain.inference.ort import NotCompilable

    try:
        return OrtEvaluator(graph)
    except NotCompilable:
        return FastEvaluator(graph)


def fallback_latency(evaluator, fallback, x, runs: int) -> tuple[float, float]:
    """Median seconds of one evaluation by ``evaluator`` and by ``fallback`` (`fallback_evaluator`), interleaved
    in blocks (`interleaved_blocks`)."""
    med, _ = interleaved_blocks({"ours": lambda: evaluator(x), "fallback": lambda: fallback(x)}, runs,
                                block=max(1, min(10, runs // 5)), settle=1)
    return med["ours"], med["fallback"]


def interleaved_blocks(calls: dict, runs: int, block: int = 100, settle: int = 10) -> tuple[dict, dict]:
    """Time each of ``calls`` (name -> callable) ``runs`` times, interleaved block by block: ``block`` timed calls
    of one after ``settle`` untimed ones, then the next, the order of the callables rotating from block to block.
    Returns (name -> median seconds of one call, name -> list of per-block median seconds, block i of every name
    taken in the same round, one after the other).

    Why long blocks and not call by call: each onnxruntime session has its own intra-op thread pool whose workers
    spin for a while after a run; alternating sessions call by call makes each run contend with the other session's
    spinning workers (measured on 2 cores, MobileNetV2: both latencies about double, 1.9-2.2 ms, and their ratio
    swings between 1.03 and 1.31 from one process to the next). Short blocks (10 calls after 3 untimed) still time
    each session coming back to cold caches, which costs the evaluator that writes 7 MB of intermediates more
    (ratio 1.19-1.28); blocks of 100 after 10 untimed calls time the steady state of each (ratio 1.08-1.12, both at
    their lowest latency)."""
    names = list(calls)
    times = {n: [] for n in names}
    blocks = {n: [] for n in names}
    for n in names:  # warm up: first-run allocations, page faults, lazy initialisations
        for _ in range(5):
            calls[n]()
    r = 0
    while min(len(t) for t in times.values()) < runs:
        for n in names[r % len(names):] + names[:r % len(names)]:
            for _ in range(settle):
                calls[n]()
            mine = []
            for _ in range(max(1, min(block, runs - len(times[n])))):
                t = time.perf_counter(); calls[n](); mine.append(time.perf_counter() - t)
            times[n] += mine
            blocks[n].append(statistics.median(mine))
        r += 1
    return {n: statistics.median(t) for n, t in times.items()}, blocks


def paired_ratio(blocks: dict, a: str, b: str) -> float:
    """Median over rounds of (a's block median / b's block median) from `interleaved_blocks`: each ratio compares
    two blocks run back to back, so a slow phase of the machine (a noisy neighbour, a frequency change) cancels."""
    return statistics.median(x / y for x, y in zip(blocks[a], blocks[b]))


def latency(evaluator, x, runs: int, model: Path = MODEL) -> tuple[float, float, float]:
    """(ours, theirs, paired ratio): median seconds of one evaluation, interleaved in blocks
    (`interleaved_blocks`), and `paired_ratio` of ours to theirs. Ours: ``evaluator``, built beforehand, every
    intermediate in its committed layout, in numpy arrays the call returns. Theirs: onnxruntime's own int8 kernels
    on the ONNX model (default session options: all graph optimizations, default threads; the model output only)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    med, blocks = interleaved_blocks({"ours": lambda: evaluator(x), "theirs": lambda: sess.run(None, {name: x})},
                                     runs, block=max(5, min(100, runs // 4)), settle=max(2, min(10, runs // 20)))
    return med["ours"], med["theirs"], paired_ratio(blocks, "ours", "theirs")


def commitment_times(evaluator, x, runs: int) -> tuple[float, float, float, Trace]:
    """(first, median) seconds of committing one evaluation (every tensor's tree, the trace tree; the first call
    in the process includes loading the compiled Keccak), and the median seconds of evaluation + commitments."""
    ev = evaluator(x)
    t = time.perf_counter(); Trace.of(ev); first = time.perf_counter() - t
    commit, total = [], []
    for _ in range(max(3, runs // 3)):
        t = time.perf_counter(); ev = evaluator(x); t1 = time.perf_counter(); trace = Trace.of(ev)
        commit.append(time.perf_counter() - t1); total.append(time.perf_counter() - t)
    return first, statistics.median(commit), statistics.median(total), trace


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
    for a in A[:3]:  # leave no credit behind: the next game must not find a party's credit slot already nonzero
        if dep.chain.call(dep.pinpoint.functions.credit(a)):
            dep.chain.send(dep.pinpoint.functions.withdraw(), sender=a)
    return {"op": j, "kind": honest.graph.ops[j].kind.name, "submit": sub.gas, "challenge": ch.gas,
            "moves": moves, "dispute": ch.gas + sum(m.gas for m in moves),
            "rounds": sum(1 for m in moves if m.who == "solver")}


def bench_model(name: str, path: Path, note: str, args) -> tuple[dict, list[str]]:
    """The figures of one model and its printed table (lines)."""
    graph = load_model(path)
    x = load_input(PHOTO, graph)
    evaluator = make_evaluator(graph)
    first_commit, t_commit, t_all, honest = commitment_times(evaluator, x, args.runs)
    ours, ort_t, ratio = latency(evaluator, x, args.runs, path)
    fallback = fallback_evaluator(graph) if args.fallback else None
    old = fallback_latency(evaluator, fallback, x, max(5, args.runs // 5)) if fallback is not None else None
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    fig = {"latency_ratio": ratio, "ours_ms": ours * 1000, "onnxruntime_ms": ort_t * 1000,
           "commitment_s": t_commit, "peak_rss_mb": peak_rss_mb, "submit_gas": None, "reveal_gas_max": None,
           "pick_gas_max": None, "worst_dispute_gas": None, "rounds_max": None}
    url, over, g = args.rpc_url, [], None
    if not args.no_gas:
        g = gas_figures(graph, honest, url)
        url, over = g.pop("url"), g.pop("over")
        fig.update({k: g[k] for k in ("submit_gas", "reveal_gas_max", "pick_gas_max", "worst_dispute_gas",
                                      "rounds_max")})
    if old is not None:
        fig["fallback_ms"] = old[1] * 1000
    fig["over"] = over
    lines = [f"\npinpoint benchmark: {name} ({note}), {graph.n_ops} canonical operators, input {PHOTO.name}, "
             f"evaluator {type(evaluator).__name__}" + ("" if args.no_gas else f", chain {url}") + "\n",
             f"{'metric':<58}{'pinpoint':>16}{'Agatha':>16}"]
    rows = [] if g is None else g["rows"]
    rows += [
        ("XCE evaluator latency (median, every intermediate)", f"{ours * 1000:.2f} ms", "43.9 ms"),
        ("onnxruntime int8 latency, same model, same run", f"{ort_t * 1000:.2f} ms", "41.2 ms"),
        ("evaluator latency / onnxruntime (median of paired blocks)", f"{ratio:.2f}x", "1.066x"),
        *([(f"fallback {type(fallback).__name__} / ours (own loop, medians)",
            f"{old[1] * 1000:.1f} / {old[0] * 1000:.2f} ms", "-")] if old is not None else []),
        ("commitments of every tensor + trace (median)", f"{t_commit:.3f} s", "-"),
        ("  first in the process (loads compiled Keccak, hashes model)", f"{first_commit:.3f} s", "-"),
        ("all intermediates + commitments (median)", f"{t_all:.3f} s", "7.3 s"),
        ("peak RSS of the benchmark process so far", f"{peak_rss_mb:.0f} MB", "-"),
    ]
    lines += [f"{r[0]:<58}{r[1]:>16}{r[2]:>16}" for r in rows]
    if g is not None:
        lines += g["notes"]
    return fig, lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="mobilenetv2,resnet50,vgg16",
                    help="comma-separated: mobilenetv2, resnet50, vgg16 (synthetic weights), mobilenetv1, "
                         "squeezenet (data bundle)")
    ap.add_argument("--rpc-url")
    ap.add_argument("--runs", type=int, default=400, help="timed evaluations per evaluator (latency: blocks of up to 100)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    ap.add_argument("--no-gas", action="store_true", help="skip the chain: timings and memory only")
    ap.add_argument("--fallback", action="store_true",
                    help="also time the evaluator auto takes when the native compiler refuses the graph")
    args = ap.parse_args()
    figs, over = {}, []
    for name, (path, note) in model_paths(args.models.split(",")).items():
        fig, lines = bench_model(name, path, note, args)
        over += fig.pop("over")
        figs[name] = fig
        if not args.json:
            print("\n".join(lines), flush=True)
    if args.json:
        print(json.dumps({"models": figs}))
    if over:
        sys.exit(1)


def gas_figures(graph, honest: Trace, url: str | None) -> dict:
    """Play disputes at a spread of operators on a chain (``url``, or a fresh anvil) and gather the gas figures,
    the table rows and notes, and the Gas.sol bounds exceeded (``over``)."""
    proc = None
    if url is None:
        proc, url = start_anvil(None, "--gas-limit", "100000000")
    try:
        dep = Deployment.deploy(Chain(url))
        costs = one_step_costs(dep, honest)
        worst_op = max(costs, key=costs.get)
        deepest = max(range(graph.n_ops), key=lambda j: honest.trees[j + 1].depth)
        kinds = [op.kind for op in graph.ops]
        first_of_kind = [kinds.index(k) for k in dict.fromkeys(kinds)]
        sites = sorted({0, 1, deepest, graph.n_ops // 2, worst_op, graph.n_ops - 1, *first_of_kind})
        games = [game_at(dep, honest, j, (honest.graph.ops[j].out.numel * 2) // 3) for j in sites]
    finally:
        if proc:
            proc.terminate()
    worst = max(games, key=lambda g: g["dispute"])
    moves = [m for g in games for m in g["moves"]]
    reveal = [m.gas for m in moves if m.what.startswith("reveal")]
    pick = [m.gas for m in moves if m.what.startswith("pick")]
    select = [m.gas for m in moves if m.what.startswith("select")]
    step = [m.gas for m in moves if m.what.startswith(("one-step", "phase 3"))]  # every final move, and the
    # step() that starts phase 3 (a long reduction: `offchain/inference/reduction.py`)
    phase3 = [g for g in games if any(m.what.startswith("phase 3") for m in g["moves"])]
    rows = [
        ("submit gas (normal case, no dispute)", f"{games[0]['submit']:,}", "63.0k"),
        ("challenge gas (opens a game)", f"{games[0]['challenge']:,}", "-"),
        ("solver reveal gas, mean / max (up to 32 children)",
         f"{statistics.mean(reveal):,.0f} / {max(reveal):,}", "65.6k"),
        ("challenger pick gas, mean / max", f"{statistics.mean(pick):,.0f} / {max(pick):,}", "52.7k"),
        ("challenger select-operator gas (phase binding), max", f"{max(select):,}", "-"),
        ("final move gas (one-step, chunk, requantization), max", f"{max(step):,}", "-"),
        ("disputes that went through phase 3 (chunked reduction)", f"{len(phase3)} of {len(games)}", "-"),
        (f"worst-case dispute gas (op {worst['op']} {worst['kind']})", f"{worst['dispute']:,}", "1,495k"),
        ("rounds (solver reveals) in that dispute", f"{worst['rounds']}", "~10"),
        ("rounds, max over the games played", f"{max(g['rounds'] for g in games)}", "~10"),
    ]
    top = sorted(costs.items(), key=lambda kv: -kv[1])[:5]
    bound = gas_table()
    over = [k for k, v in {"STEP": max(step), "REVEAL": max(reveal), "PICK": max(pick), "SELECT": max(select),
                           "CHALLENGE": max(g["challenge"] for g in games)}.items() if v > bound[k]]
    notes = ["\ndisputes played (cheat at op, dispute gas, rounds): " +
             ", ".join(f"{g['op']} {g['kind']} {g['dispute']:,} {g['rounds']}" for g in games),
             "whole-element OneStep.element cores, estimateGas - 21000 (an element of more than one chunk is never "
             "decided this way: its final move is one chunk, phase 3): " +
             ", ".join(f"op {j} {graph.ops[j].kind.name} {c:,}" for j, c in top),
             f"worst dispute (op {worst['op']} {worst['kind']}) move by move: challenge {worst['challenge']:,}, " +
             ", ".join(f"{m.what.split(' (')[0].split(':')[0]} {m.gas:,}" for m in worst["moves"]),
             "Gas.sol bounds respected" if not over else f"EXCEEDS Gas.sol bounds: {over}"]
    return {"url": url, "over": over, "rows": rows, "notes": notes, "submit_gas": games[0]["submit"],
            "reveal_gas_max": max(reveal), "pick_gas_max": max(pick), "worst_dispute_gas": worst["dispute"],
            "rounds_max": max(g["rounds"] for g in games)}


if __name__ == "__main__":
    main()
