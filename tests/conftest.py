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


@pytest.fixture(scope="session")
def mobilenet():
    from offchain.inference.pipeline import load_model

    return load_model(MODEL)


@pytest.fixture(scope="session")
def honest_trace(mobilenet):
    from offchain.inference.pipeline import load_input, run

    return run(mobilenet, load_input(PHOTO, mobilenet))
