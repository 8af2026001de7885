"""No anvil left behind: `pinpoint chain` and the test fixtures start the real anvil binary (not the npm launcher,
whose real child survives the launcher's death), so stopping what was started stops the node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.chain.anvil import anvil_binary, free_port
from tests.test_ops_helpers import ROOT, Anvil, needs_anvil

pytestmark = [needs_anvil, pytest.mark.anvil]


def _anvils_on(port: int) -> list[int]:
    """Pids of live processes whose command line is an anvil serving ``port``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            state = (d / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if state != "Z" and any(b"anvil" in a for a in argv) and str(port).encode() in argv:
            pids.append(int(d.name))
    return pids


def _wait_gone(port: int, seconds: float = 10) -> list[int]:
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end and _anvils_on(port):
        time.sleep(0.1)
    return _anvils_on(port)


def test_anvil_binary_is_the_real_one():
    head = anvil_binary().read_bytes()[:4]
    assert head == b"\x7fELF", "anvil_binary() is a launcher script: stopping it would orphan the real node"


def test_pinpoint_chain_leaves_no_process(tmp_path):
    from protocol.operations.daemon.startup import reachable

    port = free_port()
    p = subprocess.Popen([sys.executable, "-m", "protocol.cli", "chain", "--port", str(port)], cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t_end = time.monotonic() + 30
        while not reachable(f"http://127.0.0.1:{port}", timeout=1) and time.monotonic() < t_end:
            time.sleep(0.2)
        assert reachable(f"http://127.0.0.1:{port}")
        assert _anvils_on(port) == [p.pid]  # the command became anvil itself: one process, no launcher
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
    assert _wait_gone(port) == []


def test_anvil_fixture_leaves_no_process(tmp_path):
    a = Anvil(tmp_path, block_time=0)
    port = a.port
    assert _anvils_on(port) == [a.proc.pid]
    a.stop()
    assert _wait_gone(port) == []
    assert not any(os.path.exists(f"/proc/{pid}") for pid in [a.proc.pid] if a.proc.poll() is None)


def test_session_check_sees_an_anvil_of_this_session(tmp_path):
    """The session-finish check (`tests/conftest.py`) finds an anvil this session started, and only while it runs."""
    from tests.conftest import session_anvils

    a = Anvil(tmp_path, block_time=0)
    try:
        assert a.proc.pid in session_anvils()
        assert a.proc.pid not in session_anvils("another-session")
    finally:
        a.stop()
    assert a.proc.pid not in session_anvils()
