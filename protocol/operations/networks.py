"""Networks (deploy/networks.toml): which node, which chain id, how many confirmations, which parameters.

A `Network` names a JSON-RPC node, the chain id it must answer, how many confirmations a daemon waits for, and the
parameters Pinpoint is deployed with there. `resolve` turns the shared --network / --rpc-url options into one,
`connect` opens a `Chain` on it and checks the chain id. Deploying and the deployment records:
`protocol.operations.deployment`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from protocol.config import PROJECT
from protocol.chain.connection import Chain, ChainError
from offchain.common.errors import PinpointError

NETWORKS_ENV = "PINPOINT_NETWORKS"


class NetworkError(PinpointError, RuntimeError):
    """A network cannot be used: unknown name, unset RPC URL, unreachable node, wrong chain id, missing deployment,
    or deployed code that does not match the artifacts."""


@dataclass
class Network:
    """One entry of networks.toml. Windows in seconds, bond_gas_price in wei per gas, confirmations and reorg_depth
    in blocks."""

    name: str
    rpc_url: str
    chain_id: int | None = None
    confirmations: int = 1
    reorg_depth: int = 64
    challenge_window: int = 3600
    move_window: int = 1800
    bond_gas_price: int = 10**9
    dev: bool = False


def networks_file() -> Path:
    """$PINPOINT_NETWORKS, else the project's deploy/networks.toml."""
    return Path(os.environ.get(NETWORKS_ENV) or PROJECT / "deploy" / "networks.toml")


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
