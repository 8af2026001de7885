"""deploy/WALKTHROUGH.md typed literally: its `sh` blocks run in order in one bash (so `&` jobs and `kill %1` work as
for a user), from the project root with the venv's `pinpoint` on PATH and a fresh PINPOINT_HOME; only the port
numbers 8545, 9101 and 9102 are replaced by free ones. Between blocks the test waits only where a user would (for
the node to answer, for the game to end)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web3 import Web3

from protocol.chain.anvil import free_port
from protocol.chain.connection import artifact
from protocol.operations.daemon.startup import reachable
from tests.test_ops_helpers import ROOT, needs_anvil, wait_for

pytestmark = [needs_anvil, pytest.mark.anvil]
WALKTHROUGH = ROOT / "deploy" / "WALKTHROUGH.md"


def sh_blocks(text: str) -> list[str]:
    """The ```sh blocks of a markdown text, in order."""
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def test_walkthrough_blocks_are_self_contained():
    blocks = sh_blocks(WALKTHROUGH.read_text())
    text = "\n".join(blocks)
    assert len(blocks) >= 8 and "pinpoint fund" in text and "pinpoint withdraw" in text
    defined = set(re.findall(r"(?:export |for )\s*([A-Z_a-z]+)", text))
    defined |= {n for line in re.findall(r"export (.*)", text) for n in re.findall(r"([A-Z_]+)=", line)}
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used <= defined, f"undefined variables in the walkthrough: {used - defined}"


class Shell:
    """One bash fed the walkthrough block by block (set -e: a failing command ends it)."""

    def __init__(self, env: dict, cwd: Path):
        self.p = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env, start_new_session=True)
        self.run("set -e -m")
        self.out: list[str] = []

    def run(self, block: str, timeout: float = 300) -> str:
        marker = f"__block_done_{time.monotonic_ns()}__"
        self.p.stdin.write(block + f"\necho {marker}\n")
        self.p.stdin.flush()
        lines, t_end = [], time.monotonic() + timeout
        while time.monotonic() < t_end:
            line = self.p.stdout.readline()
            if not line:
                raise AssertionError(f"the shell ended in block:\n{block}\noutput:\n{''.join(lines)}")
            if line.strip() == marker:
                return "".join(lines)
            lines.append(line)
        raise AssertionError(f"block timed out:\n{block}")

    def close(self) -> None:
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait(10)


@pytest.mark.slow
def test_walkthrough_typed_literally(tmp_path):
    ports = {"8545": str(free_port()), "9101": str(free_port()), "9102": str(free_port())}
    blocks = [re.sub(r"\b(8545|9101|9102)\b", lambda m: ports[m.group(1)], b)
              for b in sh_blocks(WALKTHROUGH.read_text())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINPOINT_")}
    env.update(PINPOINT_HOME=str(tmp_path / "home"), PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
               PYTHONUNBUFFERED="1")
    work = tmp_path / "work"
    work.mkdir()
    # the walkthrough is run from the project root (its model paths are relative to it); its files go to `work`
    blocks = [b.replace("./anvil-state.json", str(work / "anvil-state.json"))
               .replace("anvil.log", str(work / "anvil.log"))
               .replace("evaluator.jsonl", str(work / "evaluator.jsonl"))
               .replace("challenger.jsonl", str(work / "challenger.jsonl"))
               .replace("game.svg", str(work / "game.svg")) for b in blocks]
    url = f"http://127.0.0.1:{ports['8545']}"
    sh = Shell(env, ROOT)
    outputs = []
    try:
        for b in blocks:
            if "games show" in b:  # "once the game is over"
                w3 = Web3(Web3.HTTPProvider(url))
                rec = json.loads((tmp_path / "home" / "deployments" / "31337.json").read_text())
                pp = w3.eth.contract(address=rec["contracts"]["Pinpoint"]["address"], abi=artifact("Pinpoint")["abi"])
                wait_for(lambda: pp.functions.taskCount().call() >= 1 and len(pp.functions.queue(0).call()) >= 1 and pp.functions.game(0).call()[2] == 3, 300,
                         "the game to end")
            outputs.append(sh.run(b))
            if "pinpoint chain" in b:
                wait_for(lambda: reachable(url, 1), 30, "the walkthrough's anvil")
        joined = "\n".join(outputs)
        assert not (ROOT / "deploy" / "deployments" / "31337.json").exists()  # dev records stay out of the checkout
        assert "pinpoint_games_tracked" in joined and "pinpoint_up" in joined
        assert "winner challenger" in joined and "GameResolved" in joined  # games show: the cheat was caught
        assert re.search(r'"credit": 0,\s*"paid": 1000000000000000,', joined)  # the requester's fee was paid back
        import xml.etree.ElementTree as ET

        svg = ET.parse(work / "game.svg").getroot()  # the picture of the game
        assert sum(r.get("class") == "move" for r in svg.iter("{http://www.w3.org/2000/svg}rect")) >= 3
    finally:
        sh.close()
    # nothing left running: `kill %1 %2 %3` stopped the chain and both daemons, the process group is empty
    time.sleep(1)
    assert not reachable(url, 1)
