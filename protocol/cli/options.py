"""The options every `pinpoint` command shares, and the one way a command fails.

    --network NAME     $PINPOINT_NETWORK      an entry of deploy/networks.toml (default: local)
    --rpc-url URL      $PINPOINT_RPC_URL      JSON-RPC node (overrides the network's URL)
    --account ALIAS    $PINPOINT_ACCOUNT      keystore alias that signs (`pinpoint accounts`); without it, the node's
                                              first unlocked account (development nodes such as anvil)
    --deployments DIR  $PINPOINT_DEPLOYMENTS  deployment records (default: deploy/deployments; development
                                              chains: $PINPOINT_HOME/deployments)
    --max-fee GWEI     $PINPOINT_MAX_FEE_GWEI       EIP-1559 max fee per gas (default: 2 x base fee + priority fee)
    --priority-fee GWEI $PINPOINT_PRIORITY_FEE_GWEI EIP-1559 priority fee (default: eth_maxPriorityFeePerGas)
    --max-fee-cap GWEI $PINPOINT_MAX_FEE_CAP_GWEI   bound on every max fee, replacements included (default 500)
    --json                                    machine-readable output

Passphrases come from $PINPOINT_PASSPHRASE, else a prompt. No private key is ever taken on the command line.
A user error (any `offchain.common.errors.PinpointError`, a node that refuses a request) ends the command with
``error: ...`` on stderr and exit status 2, never a traceback (`handle_errors`).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from offchain.common.errors import PinpointError

DEFAULT_CAP_GWEI = 500.0
"""Default bound on the max fee per gas of every transaction (gwei)."""
MAX_FEE_ENV, PRIORITY_FEE_ENV, MAX_FEE_CAP_ENV = ("PINPOINT_MAX_FEE_GWEI", "PINPOINT_PRIORITY_FEE_GWEI",
                                                  "PINPOINT_MAX_FEE_CAP_GWEI")
NETWORK_ENV, RPC_URL_ENV, ACCOUNT_ENV, DEPLOYMENTS_ENV = ("PINPOINT_NETWORK", "PINPOINT_RPC_URL", "PINPOINT_ACCOUNT",
                                                           "PINPOINT_DEPLOYMENTS")


def fail(msg: str) -> None:
    """Print ``error: msg`` to stderr and exit with status 2."""
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


def out(obj, as_json: bool = True, text: str | None = None) -> None:
    """Print ``obj`` as indented JSON, or ``text`` when given and not ``as_json``."""
    click.echo(json.dumps(obj, indent=2, default=str) if as_json or text is None else text)


def handle_errors(f):
    """Turn every user error raised by ``f`` into `fail` (exit 2): project errors, reverts, node refusals and
    unreachable nodes."""

    @functools.wraps(f)
    def wrapper(*a, **kw):
        import requests
        from web3.exceptions import Web3Exception

        from protocol.chain.connection import _REVERTS, Chain

        try:
            return f(*a, **kw)
        except PinpointError as e:
            fail(str(e))
        except _REVERTS as e:
            fail(str(Chain._revert(e)))
        except Web3Exception as e:
            fail(f"node refused the request: {e}")
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError) as e:
            fail(f"cannot reach the node: {type(e).__name__}")

    return wrapper


@dataclass
class ChainOptions:
    """The shared chain options of one command invocation (see the module docstring)."""

    network: str | None
    rpc_url: str | None
    account: str | None
    deployments: Path | None
    as_json: bool
    max_fee: float | None = None
    priority_fee: float | None = None
    max_fee_cap: float | None = DEFAULT_CAP_GWEI

    def fee_policy(self):
        """The `protocol.chain.connection.FeePolicy` of these options (gwei converted to wei per gas)."""
        from protocol.chain.connection import GWEI, FeePolicy

        wei = (lambda g: None if g is None else int(round(g * GWEI)))
        return FeePolicy(wei(self.max_fee), wei(self.priority_fee), wei(self.max_fee_cap))

    def passphrase(self, confirm: bool = False) -> str:
        from protocol.operations.accounts import PASSPHRASE_ENV

        return os.environ.get(PASSPHRASE_ENV) or click.prompt("passphrase", hide_input=True,
                                                               confirmation_prompt=confirm)

    def connect(self, cls=None, need_account: bool = False):
        """(Network, Chain) for these options: the keystore ``--account`` unlocked to sign locally, else the node's
        unlocked accounts. Raises NetworkError / AccountError (a `PinpointError`)."""
        from protocol.chain.connection import Chain
        from protocol.operations import accounts
        from protocol.operations.networks import connect, resolve

        net = resolve(self.network, self.rpc_url)
        if need_account and not self.account:
            raise accounts.AccountError(f"this command signs transactions: give --account ALIAS (or ${ACCOUNT_ENV})")
        keys = ["0x" + bytes(accounts.unlock(self.account, self.passphrase()).key).hex()] if self.account else None
        chain = connect(net, keys=keys, cls=cls or Chain)
        chain.fees = self.fee_policy()
        return net, chain


def chain_options(f):
    """Add --network, --rpc-url, --account, --deployments and --json to a command; it receives one ``opts:
    ChainOptions`` argument instead, and its user errors become ``error: ...`` with exit status 2."""

    @click.option("--network", envvar=NETWORK_ENV, default=None,
                  help=f"network name in deploy/networks.toml (default: local; ${NETWORK_ENV}).")
    @click.option("--rpc-url", envvar=RPC_URL_ENV, default=None,
                  help=f"JSON-RPC URL, overrides the network's (${RPC_URL_ENV}).")
    @click.option("--account", envvar=ACCOUNT_ENV, default=None,
                  help=f"keystore alias that signs (${ACCOUNT_ENV}); default: the node's first unlocked account.")
    @click.option("--deployments", envvar=DEPLOYMENTS_ENV, type=click.Path(path_type=Path), default=None,
                  help=f"deployment records directory (default: deploy/deployments, development chains "
                       f"$PINPOINT_HOME/deployments; ${DEPLOYMENTS_ENV}).")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output.")
    @click.option("--max-fee", type=click.FloatRange(min=0), envvar=MAX_FEE_ENV, default=None, show_envvar=True,
                  help="EIP-1559 max fee per gas, gwei (default: 2 x the latest base fee + the priority fee).")
    @click.option("--priority-fee", type=click.FloatRange(min=0), envvar=PRIORITY_FEE_ENV, default=None,
                  show_envvar=True, help="EIP-1559 priority fee per gas, gwei (default: the node's suggestion).")
    @click.option("--max-fee-cap", type=click.FloatRange(min=0), envvar=MAX_FEE_CAP_ENV, default=DEFAULT_CAP_GWEI,
                  show_default=True, show_envvar=True,
                  help="bound on every max fee per gas, gwei, replacements of stuck transactions included.")
    @functools.wraps(f)
    def wrapper(*a, network, rpc_url, account, deployments, as_json, max_fee, priority_fee, max_fee_cap, **kw):
        if max_fee is not None and priority_fee is not None and priority_fee > max_fee:
            fail(f"--priority-fee {priority_fee} gwei exceeds --max-fee {max_fee} gwei")
        if max_fee is not None and max_fee > max_fee_cap:
            fail(f"--max-fee {max_fee} gwei exceeds --max-fee-cap {max_fee_cap} gwei")
        return f(*a, opts=ChainOptions(network, rpc_url, account, deployments, as_json, max_fee, priority_fee,
                                       max_fee_cap), **kw)

    return handle_errors(wrapper)
