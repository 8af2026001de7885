"""Shared fixtures: the real model and photos, a local anvil node started from the project's npm install."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MODEL = ROOT / "offchain" / "assets" / "mobilenetv2-12-int8.onnx"
PHOTO = ROOT / "offchain" / "assets" / "bald_eagle.jpeg"
IMAGENET = DATA / "images" / "imagenet"


def start_anvil(port: int | None = None, *extra: str) -> tuple[subprocess.Popen, str]:
    """The project's anvil for tests (a 100M gas limit); skips the test if anvil is not installed."""
    from protocol.chain.anvil import anvil_binary, start_anvil as _start

    if anvil_binary() is None:
        pytest.skip("anvil not installed: run `npm install` (node_modules/.bin/anvil)")
    return _start(port, "--gas-limit", "100000000", "--code-size-limit", "100000", *extra)


@pytest.fixture(scope="session")
def anvil_url():
    proc, url = start_anvil()
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def anvil():
    """A fresh anvil for one test module (its clock and accounts not shared with other modules): its URL."""
    proc, url = start_anvil()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def mobilenet():
    from offchain.inference.pipeline import load_model

    return load_model(MODEL)


@pytest.fixture(scope="session")
def honest_trace(mobilenet):
    from offchain.inference.pipeline import load_input, run

    return run(mobilenet, load_input(PHOTO, mobilenet))


# ---------------------------------------------------------------------------------------------------- no anvil left
SESSION_MARK = "PINPOINT_TEST_SESSION"
"""Environment variable naming this test session: every process the session starts (anvil included, also through
the CLI and the daemons) inherits it, which is how `session_anvils` tells the session's anvils from others'."""


def pytest_configure(config):
    import os
    import uuid

    os.environ.setdefault(SESSION_MARK, uuid.uuid4().hex)  # xdist workers inherit the controller's


def pytest_report_header(config):
    """Say whether the data bundle (../shared/data) is there: without it every test on its models and photos skips."""
    if DATA.is_dir():
        return f"data bundle: {DATA}"
    return f"data bundle: MISSING at {DATA} (its model and photo tests will be skipped)"


def session_anvils(mark: str | None = None) -> list[int]:
    """Pids of live (non-zombie) anvil processes started by the test session ``mark`` (default: this one)."""
    import os

    mark = (mark or os.environ[SESSION_MARK]).encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            exe = (d / "cmdline").read_bytes().split(b"\0")[0]
            if not exe.endswith(b"anvil"):
                continue
            state = (d / "stat").read_text().split(") ", 1)[1][0]
            env = (d / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if state != "Z" and SESSION_MARK.encode() + b"=" + mark in env:
            pids.append(int(d.name))
    return pids


def pytest_sessionfinish(session, exitstatus):
    """Fail the session if an anvil it started is still running (after a 10 s grace); the survivors are killed."""
    import os
    import signal
    import time

    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checks once all have ended
        return
    t_end = time.monotonic() + 10
    while (left := session_anvils()) and time.monotonic() < t_end:
        time.sleep(0.2)
    if left:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        msg = f"the test session left {len(left)} anvil process(es) running (pids {left}); killed them"
        if reporter:
            reporter.write_line(f"ERROR: {msg}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
