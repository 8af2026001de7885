"""The latency benchmark's timing helpers (`benchmarks/pinpoint_bench.py`): what they call and how they pair
blocks. No timing is asserted (speed is the benchmark's to print, not a test's)."""

from __future__ import annotations

from benchmarks.pinpoint_bench import interleaved_blocks, paired_ratio


def test_interleaved_blocks_calls_each_the_same_way():
    calls = {"a": [], "b": []}
    order = []

    def make(name):
        def call():
            calls[name].append(1)
            order.append(name)
        return call

    med, blocks = interleaved_blocks({"a": make("a"), "b": make("b")}, runs=25, block=10, settle=2)
    # 5 warm-up calls each, then rounds of (2 untimed + up to 10 timed) per callable: 10 + 10 + 5 timed
    assert len(calls["a"]) == len(calls["b"]) == 5 + 3 * 2 + 25
    assert len(blocks["a"]) == len(blocks["b"]) == 3
    assert set(med) == {"a", "b"} and all(v >= 0 for v in med.values())
    # the order rotates from round to round: a's block first, then b's first, then a's first
    timed = order[10:]
    firsts = [timed[0], timed[24], timed[48]]  # each round: 2 x (2 untimed + 10 timed)
    assert firsts == ["a", "b", "a"]


def test_paired_ratio_is_the_median_of_round_ratios():
    # a slow middle round (both blocks twice as slow) does not move the paired ratio
    blocks = {"ours": [1.05, 2.10, 1.05, 1.06], "theirs": [1.00, 2.00, 1.00, 0.98]}
    assert abs(paired_ratio(blocks, "ours", "theirs") - 1.05) < 1e-9
    assert paired_ratio({"x": [3.0], "y": [2.0]}, "x", "y") == 1.5


def test_bench_json_shape():
    """`pinpoint_bench.py --json` prints the figures issue 10 names for each model; it plays its disputes on its own
    anvil and exits 1 if a move exceeds its `Gas.sol` bound."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "benchmarks/pinpoint_bench.py"), "--models", "mobilenetv2",
                        "--runs", "6", "--json"], capture_output=True, text=True, timeout=600, cwd=root)
    assert r.returncode == 0, r.stderr[-2000:]
    fig = json.loads(r.stdout.strip().splitlines()[-1])["models"]["mobilenetv2-12-int8"]
    for k in ("latency_ratio", "ours_ms", "onnxruntime_ms", "commitment_s", "peak_rss_mb", "submit_gas",
              "reveal_gas_max", "pick_gas_max", "worst_dispute_gas", "rounds_max"):
        assert k in fig, k
    assert fig["latency_ratio"] > 0 and fig["ours_ms"] > 0 and fig["onnxruntime_ms"] > 0 and fig["commitment_s"] > 0
    assert fig["worst_dispute_gas"] > fig["submit_gas"] > 21_000 and 1 <= fig["rounds_max"] <= 7
