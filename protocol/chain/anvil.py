"""A local anvil node (the project's npm @foundry-rs/anvil) for the CLI, the benchmarks and the tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from protocol.chain.connection import ChainError
from protocol.config import PROJECT


def anvil_binary() -> Path | None:
    """The project's anvil ($PINPOINT_ANVIL, else the real binary of the npm package, else node_modules/.bin/anvil),
    or one on PATH; None if absent. The real binary (node_modules/@foundry-rs/anvil-<platform>/bin/anvil) is preferred
    to the npm launcher, which spawns it as a child: stopping the launcher would orphan a running anvil."""
    real = sorted((PROJECT / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil"))
    for p in (os.environ.get("PINPOINT_ANVIL"), *real, PROJECT / "node_modules" / ".bin" / "anvil",
              shutil.which("anvil")):
        if p and Path(p).exists() and os.access(p, os.X_OK):
            return Path(p)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_anvil(port: int | None = None, *extra: str, timeout: float = 30) -> tuple[subprocess.Popen, str]:
    """Start the project's anvil on 127.0.0.1 (``port`` or a free one, ``extra`` anvil arguments) and wait until it
    accepts connections (at most ``timeout`` seconds); returns (process, rpc url). Raises ChainError if anvil is
    missing or does not start."""
    anvil = anvil_binary()
    if anvil is None:
        raise ChainError("anvil not installed: run `npm install` in the project (node_modules/.bin/anvil)")
    port = port or free_port()
    proc = subprocess.Popen([str(anvil), "--port", str(port), "--silent", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise ChainError(f"anvil did not start on port {port}")
