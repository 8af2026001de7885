"""Shared fixtures and helpers of the operations tests: an anvil on a free port, the `pinpoint` CLI in a subprocess
with its own PINPOINT_HOME, the daemons as separate processes. (No tests here.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocol.chain.anvil import anvil_binary, free_port, start_anvil

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "offchain" / "assets" / "mobilenetv2-12-int8.onnx"
IMAGE = ROOT / "offchain" / "assets" / "bald_eagle.jpeg"
MNEMONIC = "test test test test test test test test test test test junk"  # anvil's dev accounts
PASS = "correct horse battery staple"

needs_anvil = pytest.mark.skipif(anvil_binary() is None, reason="anvil not installed (run `npm install`)")


def dev_key(i: int) -> str:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return "0x" + bytes(Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key).hex()


class Anvil:
    """An anvil process on a free port (``block_time`` seconds per block), restartable with its state."""

    def __init__(self, tmp: Path, block_time: int = 1):
        self.port, self.tmp, self.block_time = free_port(), tmp, block_time
        self.state = tmp / "anvil-state.json"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.start()

    def start(self) -> None:
        extra = ["--state", str(self.state)] + (["--block-time", str(self.block_time)] if self.block_time else [])
        self.proc, _ = start_anvil(self.port, *extra)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # anvil dumps its state on exit
            self.proc.wait(timeout=20)

    def rpc(self, method: str, params: list):
        from web3 import Web3

        r = Web3(Web3.HTTPProvider(self.url)).provider.make_request(method, params)
        if "error" in r:
            raise RuntimeError(r["error"])
        return r["result"]


@pytest.fixture
def anvil(tmp_path):
    a = Anvil(tmp_path)
    yield a
    if a.proc and a.proc.poll() is None:
        a.proc.kill()
        a.proc.wait()


class Env:
    """A pinpoint installation: its own home, store and deployment records; runs CLI commands and daemons."""

    def __init__(self, tmp: Path, rpc_url: str):
        self.tmp, self.rpc = tmp, rpc_url
        self.env = {**os.environ, "PINPOINT_HOME": str(tmp / "home"), "PINPOINT_PASSPHRASE": PASS,
                    "PINPOINT_DEPLOYMENTS": str(tmp / "deployments"), "PINPOINT_STORE": str(tmp / "store"),
                    "PYTHONUNBUFFERED": "1"}
        self.procs: dict[str, subprocess.Popen] = {}

    def cli(self, *args, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "protocol.cli", *map(str, args)], cwd=ROOT, env=self.env,
                           capture_output=True, text=True, input=input, timeout=300)
        if check and r.returncode != 0:
            raise AssertionError(f"pinpoint {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
        return r

    def json(self, *args) -> dict:
        return json.loads(self.cli(*args).stdout)

    def setup(self, deploy_args=("--challenge-window", "60", "--move-window", "60")) -> dict:
        """Import anvil dev keys 1..3 as requester, evaluator, challenger; deploy; returns the deploy JSON."""
        for i, alias in ((1, "requester"), (2, "evaluator"), (3, "challenger")):
            self.cli("accounts", "import", alias, "--key-stdin", input=dev_key(i) + "\n")
        return self.json("deploy", "--network", "local", "--rpc-url", self.rpc, "--account", "requester",
                         *deploy_args)

    def start(self, role: str, *extra) -> subprocess.Popen:
        log = self.tmp / f"{role}.jsonl"
        args = [sys.executable, "-m", "protocol.cli", role, "run", "--network", "local", "--rpc-url", self.rpc,
                "--account", role, "--db", str(self.tmp / f"{role}.sqlite"), "--log-file", str(log),
                "--poll-interval", "0.3", *map(str, extra)]
        err = open(self.tmp / f"{role}.stderr", "a")
        p = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=err, stderr=err)
        self.procs[role] = p
        return p

    def logs(self, role: str) -> list[dict]:
        p = self.tmp / f"{role}.jsonl"
        return [json.loads(ln) for ln in p.read_text().splitlines()] if p.exists() else []

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture
def env(tmp_path, anvil):
    e = Env(tmp_path, anvil.url)
    yield e
    e.stop_all()


def wait_for(pred, timeout: float, what: str, interval: float = 0.5, diag=None):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f"\n{diag()}" if diag else ""))
