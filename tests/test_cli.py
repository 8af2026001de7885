"""The `pinpoint` CLI as a user runs it."""

import json
import subprocess
import sys

import pytest

from tests.conftest import MODEL, PHOTO, ROOT

PINPOINT = [sys.executable, "-m", "protocol.cli"]


def run(*args, ok=True):
    r = subprocess.run(PINPOINT + list(args), capture_output=True, text=True, cwd=ROOT, timeout=1200)
    if ok:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def test_eval_json_prints_the_commitments(honest_trace):
    out = json.loads(run("eval", "--model", str(MODEL), "--input", str(PHOTO), "--json").stdout)
    assert set(out) == {"model_root", "input_root", "output_root", "trace_root", "top1", "evaluation_s", "commitment_s"}
    assert 0 < out["evaluation_s"] < 60 and 0 < out["commitment_s"] < 60
    assert out["trace_root"] == "0x" + honest_trace.trace_root.hex()
    assert out["model_root"] == "0x" + honest_trace.graph.model_root().hex()
    assert out["top1"] == 22  # bald eagle


def test_eval_npy_input_equals_image_input(tmp_path, honest_trace):
    import numpy as np

    np.save(tmp_path / "x.npy", honest_trace.tensors[0])
    out = json.loads(run("eval", "--model", str(MODEL), "--input", str(tmp_path / "x.npy"), "--json").stdout)
    assert out["input_root"] == "0x" + honest_trace.input_root.hex()


def test_eval_rejects_bad_input_clearly(tmp_path):
    r = run("eval", "--model", str(MODEL), "--input", str(tmp_path / "nope.png"), ok=False)
    assert r.returncode == 2 and "no such input file" in r.stderr
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"garbage")
    r = run("eval", "--model", str(bad), "--input", str(PHOTO), ok=False)
    assert r.returncode == 2 and "cannot parse" in r.stderr


@pytest.mark.slow
def test_demo_on_the_in_process_chain():
    out = json.loads(run("demo", "--json").stdout)
    s1, s2 = out["scenarios"]
    assert s1["winner"] == "challenger" and s2["winner"] == "solver"
    for s in (s1, s2):
        assert set(s) >= {"name", "winner", "rounds", "gas_total", "moves"}
        assert s["every_wei_accounted"] and s["rounds"] >= 2
        assert s["gas_total"] == sum(m["gas"] for m in s["moves"])


@pytest.mark.slow
def test_demo_against_anvil(anvil_url):
    out = json.loads(run("demo", "--rpc-url", anvil_url, "--json").stdout)
    assert [s["winner"] for s in out["scenarios"]] == ["challenger", "solver"]
    assert out["chain"] == anvil_url


def _stderr_on_a_terminal(*args: str) -> tuple[str, str]:
    """(stdout, stderr) of `pinpoint` run with stderr on a pseudo-terminal (where the progress display shows)."""
    import os
    import pty
    import select
    import subprocess
    import sys

    master, slave = pty.openpty()
    r = subprocess.run([sys.executable, "-m", "protocol.cli", *args], stdout=subprocess.PIPE, stderr=slave,
                       text=True, timeout=600)
    os.close(slave)
    chunks = []
    while select.select([master], [], [], 0.5)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return r.stdout, b"".join(chunks).decode(errors="replace")


def test_eval_shows_progress_on_a_terminal_but_not_with_json():
    out, err = _stderr_on_a_terminal("eval")
    assert "evaluating 67 operators" in err and "committing" in err, err[-500:]
    assert "trace_root" in out
    out, err = _stderr_on_a_terminal("eval", "--json")
    assert "evaluating" not in err and json.loads(out)["commitment_s"] > 0
