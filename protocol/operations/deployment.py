"""Deployments (deploy/deployments/<chainId>.json): deploying OneStep and Pinpoint idempotently, checking the code.

`deploy_all` deploys OneStep and Pinpoint idempotently: a contract whose record matches the artifact and arguments,
and whose code on chain checks out, is kept; anything else is deployed and recorded (address, transaction hash,
block, compiler, artifact hashes, code hash).

Code checks (`check_code`): OneStep has no immutables, so its runtime code must equal the artifact's
deployedBytecode byte for byte. Pinpoint has four immutables (oneStep, challengeWindow, moveWindow, bondGasPrice);
solc leaves zero words at their positions in deployedBytecode, so the code on chain must equal the artifact
everywhere except in 32-byte words where the artifact is zero and the chain holds one of the ABI-encoded
constructor arguments it was deployed with.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_abi import encode
from eth_utils import keccak

from protocol.chain.connection import ARTIFACTS, Chain, artifact
from protocol.config import PROJECT
from protocol.operations.networks import Network, NetworkError

DEPLOYMENTS_ENV = "PINPOINT_DEPLOYMENTS"


def deployments_dir() -> Path:
    """$PINPOINT_DEPLOYMENTS, else the project's deploy/deployments."""
    return Path(os.environ.get(DEPLOYMENTS_ENV) or PROJECT / "deploy" / "deployments")


def record_path(chain_id: int, directory: Path | None = None) -> Path:
    """The deployment record file of ``chain_id`` in ``directory`` (default `deployments_dir`)."""
    return Path(directory or deployments_dir()) / f"{chain_id}.json"


def load_record(chain_id: int, directory: Path | None = None) -> dict | None:
    """The deployment record of ``chain_id`` or None."""
    p = record_path(chain_id, directory)
    return json.loads(p.read_text()) if p.exists() else None


def pinpoint_address(chain_id: int, directory: Path | None = None) -> str:
    """Address of Pinpoint on ``chain_id`` from its deployment record. Raises NetworkError if not deployed."""
    rec = load_record(chain_id, directory)
    if not rec or "Pinpoint" not in rec.get("contracts", {}):
        raise NetworkError(f"no Pinpoint deployment recorded for chain {chain_id} in {record_path(chain_id, directory)}"
                           " (run `pinpoint deploy`)")
    return rec["contracts"]["Pinpoint"]["address"]


def _hex(b: str) -> bytes:
    return bytes.fromhex(b.removeprefix("0x"))


def artifact_hash(name: str) -> str:
    """sha256 of the committed artifact file (hex)."""
    return "0x" + hashlib.sha256((ARTIFACTS / f"{name}.json").read_bytes()).hexdigest()


def _immutable_words(name: str, args: list) -> set[bytes]:
    if name != "Pinpoint":
        return set()
    onestep, cw, mw, bgp = args
    return {encode(["address"], [onestep]), *(encode(["uint256"], [v]) for v in (cw, mw, bgp))}


def check_code(name: str, code: bytes, args: list) -> str | None:
    """Compare runtime ``code`` read from chain with artifact ``name`` deployed with constructor ``args``.

    Returns None if it matches, else a reason. Bytes may differ only inside 32-byte words that are zero in the
    artifact and hold an ABI-encoded constructor argument on chain (the immutables)."""
    ref = _hex(artifact(name)["deployedBytecode"])
    if not code:
        return "no code at the address"
    if len(code) != len(ref):
        return f"code size {len(code)} != artifact {len(ref)}"
    words, zero = _immutable_words(name, args), bytes(32)
    i = 0
    while i < len(ref):
        if code[i] == ref[i]:
            i += 1
            continue
        for s in range(max(0, i - 31), i + 1):
            if ref[s:s + 32] == zero and code[s:s + 32] in words:
                i = s + 32
                break
        else:
            return f"code differs from the artifact at byte {i} (not an immutable)"
    return None


@dataclass
class DeployResult:
    """What `deploy_all` did: the record written and, per contract, "deployed" or "unchanged"."""

    record: dict
    actions: dict = field(default_factory=dict)
    path: Path | None = None


def _entry_current(chain: Chain, name: str, entry: dict | None, args: list) -> bool:
    if not entry:
        return False
    if entry.get("bytecodeHash") != "0x" + keccak(_hex(artifact(name)["bytecode"])).hex():
        return False
    if [str(a) for a in entry.get("args", [])] != [str(a) for a in args]:
        return False
    code = bytes(chain.w3.eth.get_code(chain.w3.to_checksum_address(entry["address"])))
    return check_code(name, code, args) is None


def deploy_all(chain: Chain, net: Network, sender: str, directory: Path | None = None,
               log=None) -> DeployResult:
    """Deploy OneStep and Pinpoint on ``chain`` from ``sender`` unless the recorded ones are current; check the code
    on chain against the artifacts; write deploy/deployments/<chainId>.json. Raises NetworkError if freshly deployed
    code does not match, ChainError if a deployment transaction fails."""
    cid = int(chain.w3.eth.chain_id)
    old = load_record(cid, directory) or {}
    contracts = dict(old.get("contracts", {}))
    result = DeployResult(record={}, actions={})
    plan = [("OneStep", lambda: []),
            ("Pinpoint", lambda: [contracts["OneStep"]["address"], net.challenge_window, net.move_window,
                                  net.bond_gas_price])]
    for name, args_of in plan:
        args = args_of()
        if _entry_current(chain, name, contracts.get(name), args):
            result.actions[name] = "unchanged"
            if log:
                log(f"{name}: unchanged at {contracts[name]['address']}")
            continue
        contract, tx = chain.deploy(name, *args, sender=sender)
        code = bytes(chain.w3.eth.get_code(contract.address))
        why = check_code(name, code, args)
        if why:
            raise NetworkError(f"{name} deployed at {contract.address} does not match its artifact: {why}")
        a = artifact(name)
        contracts[name] = {
            "address": contract.address,
            "transactionHash": tx.hash,
            "block": int(tx.receipt["blockNumber"]),
            "gasUsed": tx.gas,
            "deployer": sender,
            "args": [str(x) for x in args],
            "compiler": a["compiler"],
            "sourceHash": a["sourceHash"],
            "artifactHash": artifact_hash(name),
            "bytecodeHash": "0x" + keccak(_hex(a["bytecode"])).hex(),
            "codehash": "0x" + keccak(code).hex(),
        }
        result.actions[name] = "deployed"
        if log:
            log(f"{name}: deployed at {contract.address} (tx {tx.hash}, block {contracts[name]['block']})")
    record = {"chainId": cid, "network": net.name, "contracts": contracts,
              "updated": old.get("updated") if all(v == "unchanged" for v in result.actions.values())
              else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    p = record_path(cid, directory)
    p.parent.mkdir(parents=True, exist_ok=True)
    if record != old:
        p.write_text(json.dumps(record, indent=2) + "\n")
    result.record, result.path = record, p
    return result
