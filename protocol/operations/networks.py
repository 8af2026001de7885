"""Networks (deploy/networks.toml) and deployments (deploy/deployments/<chainId>.json).

A `Network` names a JSON-RPC node, the chain id it must answer, how many confirmations a daemon waits for, and the
parameters Pinpoint is deployed with there. `deploy_all` deploys OneStep and Pinpoint idempotently: a contract whose
record matches the artifact and arguments, and whose code on chain checks out, is kept; anything else is deployed
and recorded (address, transaction hash, block, compiler, artifact hashes, code hash).

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
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from eth_abi import encode
from eth_utils import keccak

from protocol.config import PROJECT
from protocol.chain.connection import ARTIFACTS, Chain, ChainError, artifact
from offchain.common.errors import PinpointError

NETWORKS_ENV = "PINPOINT_NETWORKS"
DEPLOYMENTS_ENV = "PINPOINT_DEPLOYMENTS"


class NetworkError(PinpointError, RuntimeError):
    """A network cannot be used: unknown name, unset RPC URL, unreachable node, wrong chain id, missing deployment,
    or deployed code that does not match the artifacts."""


@dataclass
class Network:
    """One entry of networks.toml. Windows in seconds, bond_gas_price in wei per gas."""

    name: str
    rpc_url: str
    chain_id: int | None = None
    confirmations: int = 1
    challenge_window: int = 3600
    move_window: int = 1800
    bond_gas_price: int = 10**9
    dev: bool = False


def networks_file() -> Path:
    """$PINPOINT_NETWORKS, else the project's deploy/networks.toml."""
    return Path(os.environ.get(NETWORKS_ENV) or PROJECT / "deploy" / "networks.toml")


def deployments_dir() -> Path:
    """$PINPOINT_DEPLOYMENTS, else the project's deploy/deployments."""
    return Path(os.environ.get(DEPLOYMENTS_ENV) or PROJECT / "deploy" / "deployments")


def load_networks(path: Path | None = None) -> dict[str, Network]:
    """Parse networks.toml into {name: Network}. Raises NetworkError on a missing file or an unknown key."""
    path = path or networks_file()
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise NetworkError(f"no network file {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise NetworkError(f"{path}: {e}") from None
    out = {}
    known = set(Network.__dataclass_fields__) - {"name"}
    for name, entry in data.get("networks", {}).items():
        bad = set(entry) - known
        if bad:
            raise NetworkError(f"{path}: network {name!r} has unknown keys {sorted(bad)}")
        out[name] = Network(name=name, **entry)
    return out


def _expand(url: str, name: str) -> str:
    def sub(m):
        v = os.environ.get(m.group(1))
        if not v:
            raise NetworkError(f"network {name!r}: environment variable {m.group(1)} (its rpc_url) is not set")
        return v

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, url)


def resolve(network: str | None, rpc_url: str | None, path: Path | None = None) -> Network:
    """The network of the shared `--network` / `--rpc-url` options: a named entry (its URL replaced by ``rpc_url``
    if given), or an unnamed node at ``rpc_url``, or the entry "local" when neither is given."""
    if network is None and rpc_url is not None:
        return Network(name="custom", rpc_url=rpc_url)
    nets = load_networks(path)
    name = network or "local"
    if name not in nets:
        raise NetworkError(f"unknown network {name!r}; known: {', '.join(sorted(nets)) or 'none'}")
    n = nets[name]
    n.rpc_url = rpc_url or _expand(n.rpc_url, name)
    return n


def connect(net: Network, keys: list[str] | None = None, timeout: float = 30, cls: type = Chain) -> Chain:
    """A ``cls`` (`Chain` or a subclass) on ``net`` signing with ``keys`` (hex private keys); ``timeout`` seconds per
    request. Raises NetworkError if the node is unreachable or answers another chain id than the configured one."""
    try:
        chain = cls(net.rpc_url, keys=keys, timeout=timeout)
    except ChainError as e:
        raise NetworkError(f"network {net.name!r}: {e}") from None
    cid = int(chain.w3.eth.chain_id)
    if net.chain_id is not None and cid != net.chain_id:
        raise NetworkError(f"network {net.name!r} expects chain id {net.chain_id}, the node at {net.rpc_url} is {cid}")
    net.chain_id = cid
    return chain


# ---------------------------------------------------------------------------------------------------- deployments

def record_path(chain_id: int, directory: Path | None = None) -> Path:
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
