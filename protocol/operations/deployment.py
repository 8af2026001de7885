"""Deployments (``<chainId>.json`` records): deploying OneStep and Pinpoint idempotently, checking the code.

Records live in $PINPOINT_DEPLOYMENTS if set, else in deploy/deployments for real networks and in
$PINPOINT_HOME/deployments for development networks (``dev = true`` in networks.toml, or chain id 31337): the
records of throwaway local chains never land in the checkout. A record names its chain by chain id AND genesis
block hash (every anvil is chain 31337): `find_deployment` refuses a record made on another chain with the same id,
or whose contract code is no longer on chain, with a clear error instead of failing calls.

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
from protocol.config import PROJECT, home
from protocol.operations.networks import Network, NetworkError

DEPLOYMENTS_ENV = "PINPOINT_DEPLOYMENTS"


DEV_CHAIN_IDS = {31337, 1337}
"""Chain ids of development nodes (anvil, hardhat, ganache): their records go under $PINPOINT_HOME."""


def is_dev(chain_id: int, dev: bool = False) -> bool:
    """True for a development network (``dev`` from networks.toml, or a development chain id)."""
    return dev or chain_id in DEV_CHAIN_IDS


def deployments_dir(dev: bool = False) -> Path:
    """$PINPOINT_DEPLOYMENTS, else $PINPOINT_HOME/deployments for development networks, else deploy/deployments."""
    if os.environ.get(DEPLOYMENTS_ENV):
        return Path(os.environ[DEPLOYMENTS_ENV])
    return home() / "deployments" if dev else PROJECT / "deploy" / "deployments"


def record_path(chain_id: int, directory: Path | None = None) -> Path:
    """The deployment record file of ``chain_id`` in ``directory`` (default `deployments_dir` of that chain)."""
    return Path(directory or deployments_dir(is_dev(chain_id))) / f"{chain_id}.json"


def load_record(chain_id: int, directory: Path | None = None) -> dict | None:
    """The deployment record of ``chain_id`` or None. Raises NetworkError if the file is not JSON."""
    p = record_path(chain_id, directory)
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError as e:
        raise NetworkError(f"deployment record {p} is not JSON ({e}): delete it and run `pinpoint deploy`") from None


def genesis_hash(chain: Chain) -> str:
    """0x-hex hash of block 0 of ``chain``: with the chain id, what names a chain (every anvil is chain 31337)."""
    return "0x" + bytes(chain.w3.eth.get_block(0)["hash"]).hex()


def find_deployment(chain: Chain, directory: Path | None = None) -> dict:
    """The deployment record of the chain ``chain`` is connected to, checked against it: same genesis block hash,
    and Pinpoint's and OneStep's code on chain with the recorded code hashes. Raises NetworkError (naming the record
    and what differs) if there is no record, or it was made on another chain with the same id (a stale record of an
    earlier development node), or the code is gone."""
    cid = int(chain.w3.eth.chain_id)
    path = record_path(cid, directory)
    rec = load_record(cid, directory)
    if not rec or "Pinpoint" not in rec.get("contracts", {}):
        raise NetworkError(f"no Pinpoint deployment recorded for chain {cid} in {path} (run `pinpoint deploy`)")
    genesis = genesis_hash(chain)
    if rec.get("genesisHash") not in (None, genesis):
        raise NetworkError(f"deployment record {path} is for another chain with id {cid} (genesis "
                           f"{rec['genesisHash']}, the node's is {genesis}): a stale record, e.g. of an earlier "
                           "development node; run `pinpoint deploy` to deploy on this one")
    for name, entry in rec["contracts"].items():
        code = bytes(chain.w3.eth.get_code(chain.w3.to_checksum_address(entry["address"])))
        if "0x" + keccak(code).hex() != entry.get("codehash"):
            what = "no code" if not code else "other code"
            raise NetworkError(f"deployment record {path} does not match the node: {name} at {entry['address']} has "
                               f"{what} on chain {cid}; run `pinpoint deploy`")
    return rec


def pinpoint_address(chain: Chain, directory: Path | None = None) -> str:
    """Address of Pinpoint on ``chain`` from its checked deployment record (`find_deployment`). Raises NetworkError
    if not deployed there."""
    return find_deployment(chain, directory)["contracts"]["Pinpoint"]["address"]


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
    on chain against the artifacts; write the record <chainId>.json (`deployments_dir`), naming the chain by id and
    genesis hash. A record of another chain with the same id is replaced. Raises NetworkError if freshly deployed
    code does not match, ChainError if a deployment transaction fails."""
    cid = int(chain.w3.eth.chain_id)
    if directory is None:
        directory = deployments_dir(is_dev(cid, net.dev))
    genesis = genesis_hash(chain)
    old = load_record(cid, directory) or {}
    if old.get("genesisHash") not in (None, genesis):
        if log:
            log(f"replacing the record of another chain with id {cid} (genesis {old['genesisHash']})")
        old = {}
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
    record = {"chainId": cid, "genesisHash": genesis, "network": net.name, "contracts": contracts,
              "updated": old.get("updated") if all(v == "unchanged" for v in result.actions.values())
              else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    p = record_path(cid, directory)
    p.parent.mkdir(parents=True, exist_ok=True)
    if record != old:
        p.write_text(json.dumps(record, indent=2) + "\n")
    result.record, result.path = record, p
    return result
