"""A start that survives (issue 12, items 2 and 6): a stale deployment record, a corrupt state database and a node
that is down at start-up each end in a clear ``error: ...`` or a wait, never a traceback; records of development
chains land under $PINPOINT_HOME, not in the checkout."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from protocol.chain.anvil import free_port
from tests.test_ops_helpers import ROOT, Anvil, anvil, env, needs_anvil, wait_for  # noqa: F401

pytestmark = [needs_anvil, pytest.mark.anvil]


def _run(env, role: str, *extra, rpc: str | None = None):
    return env.cli(role, "run", "--network", "local", "--rpc-url", rpc or env.rpc, "--account", role,
                   "--db", env.tmp / f"{role}.sqlite", "--log-file", env.tmp / f"{role}.jsonl", *extra, check=False)


def test_stale_deployment_record_is_refused(env, tmp_path):
    env.setup()
    rec = json.loads((tmp_path / "deployments" / "31337.json").read_text())
    assert rec["genesisHash"].startswith("0x") and len(rec["genesisHash"]) == 66
    (tmp_path / "other").mkdir()
    other = Anvil(tmp_path / "other", block_time=0)
    try:
        for args in (("games", "list"), ("task", "status", "0"), ("credits",)):
            r = env.cli(*args, "--network", "local", "--rpc-url", other.url, check=False)
            assert r.returncode == 2, r.stderr
            assert r.stderr.startswith("error: deployment record") and "another chain with id 31337" in r.stderr
            assert "Traceback" not in r.stderr and len(r.stderr.splitlines()) == 1
        r = _run(env, "challenger", rpc=other.url)
        assert r.returncode == 2 and "another chain" in r.stderr and "Traceback" not in r.stderr
        assert not (env.tmp / "challenger.sqlite").exists()  # refused before any state is created
        assert env.logs("challenger")[-1]["event"] == "fatal"  # and the log says why
        # deploying on the new chain replaces the stale record
        env.json("deploy", "--network", "local", "--rpc-url", other.url, "--account", "requester")
        assert env.json("games", "list", "--json", "--network", "local", "--rpc-url", other.url) == []
    finally:
        other.proc.kill()
        other.proc.wait()


def test_corrupt_state_database_and_rebuild(env):
    env.setup()
    db = env.tmp / "challenger.sqlite"
    assert _run(env, "challenger", "--max-seconds", 2).returncode == 0
    db.write_bytes(b"this is not a database" * 300)
    r = _run(env, "challenger", "--max-seconds", 2)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: state database") and "--rebuild-state" in r.stderr
    r = _run(env, "challenger", "--max-seconds", 2, "--rebuild-state")
    assert r.returncode == 0, r.stderr
    started = [e for e in env.logs("challenger") if e["event"] == "started"]
    assert len(started) == 2  # the first run and the rebuilt one


def test_dev_records_stay_out_of_the_checkout(env, tmp_path):
    del env.env["PINPOINT_DEPLOYMENTS"]
    env.setup()
    assert (tmp_path / "home" / "deployments" / "31337.json").exists()
    assert not (ROOT / "deploy" / "deployments" / "31337.json").exists()


def test_unreachable_node_at_start_is_waited_for(env, anvil):
    env.setup()
    anvil.stop()
    log = env.tmp / "challenger.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "protocol.cli", "challenger", "run", "--network", "local",
                          "--rpc-url", env.rpc, "--account", "challenger", "--db", str(env.tmp / "c.sqlite"),
                          "--log-file", str(log), "--poll-interval", "0.3"], cwd=ROOT, env=env.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: sum(e["event"] == "node unreachable" for e in env.logs("challenger")) >= 2, 30,
                 "two attempts at the node")
        assert p.poll() is None  # still waiting, not crashed
        anvil.start()  # same port, state reloaded
        wait_for(lambda: any(e["event"] == "started" for e in env.logs("challenger")), 30, "the daemon to start")
        waits = [e["retry_in"] for e in env.logs("challenger") if e["event"] == "node unreachable"]
        assert waits[:3] == sorted(waits[:3]) and waits[1] > waits[0]  # backoff
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0, p.stderr.read()
    assert env.logs("challenger")[-1]["event"] == "stopped"


def test_unreachable_node_never_back_ends_cleanly(env):
    port = free_port()
    t0 = time.monotonic()
    r = _run(env, "challenger", "--max-seconds", 2, rpc=f"http://127.0.0.1:{port}")
    assert r.returncode == 0 and time.monotonic() - t0 < 30 and "Traceback" not in r.stderr
    assert [e["event"] for e in env.logs("challenger")][-1] == "stopped"


def test_doctor(env, anvil):
    env.setup()
    net = ("--network", "local", "--rpc-url", env.rpc)
    checks = env.json("doctor", *net, "--json")
    assert [c["check"] for c in checks][:3] == ["node", "deployment", "code"] and all(c["ok"] for c in checks)
    assert {c["check"] for c in checks} >= {"account requester", "account evaluator", "account challenger"}
    env.cli("accounts", "import", "pauper", "--key-stdin", input="0x" + "77" * 32 + "\n")
    r = env.cli("doctor", *net, "--account", "pauper", check=False)
    assert r.returncode == 2 and "FAIL account pauper" in r.stdout and "balance 0 wei" in r.stderr
    rec = json.loads((env.tmp / "deployments" / "31337.json").read_text())
    anvil.rpc("anvil_setCode", [rec["contracts"]["OneStep"]["address"], "0x6000"])
    r = env.cli("doctor", *net, check=False)
    assert r.returncode == 2 and "FAIL deployment" in r.stdout and "OneStep" in r.stderr
    r = _run(env, "challenger", "--max-seconds", 2)
    assert r.returncode == 2 and "OneStep" in r.stderr and "Traceback" not in r.stderr
