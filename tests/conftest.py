"""Shared fixtures: the real model and photos, a local anvil node started from the project's npm install."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MODEL = ROOT / "offchain" / "assets" / "mobilenetv2-12-int8.onnx"
PHOTO = ROOT / "offchain" / "assets" / "bald_eagle.jpeg"
IMAGENET = DATA / "images" / "imagenet"
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_anvil(port: int | None = None, *extra: str) -> tuple[subprocess.Popen, str]:
    """Start the project's anvil on 127.0.0.1; returns (process, rpc url). Waits until it answers."""
    if not ANVIL.exists():
        pytest.skip("anvil not installed: run `npm ci` (node_modules/.bin/anvil)")
    port = port or free_port()
    proc = subprocess.Popen([str(ANVIL), "--port", str(port), "--silent", "--gas-limit", "100000000",
                             "--code-size-limit", "100000", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("anvil did not start")


@pytest.fixture(scope="session")
def anvil_url():
    proc, url = start_anvil()
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def mobilenet():
    from offchain.model import load

    return load(MODEL)


@pytest.fixture(scope="session")
def honest_trace(mobilenet):
    from offchain.kernels import evaluate, load_input
    from offchain.trace import Trace

    return Trace.of(evaluate(mobilenet, load_input(PHOTO, mobilenet)))
