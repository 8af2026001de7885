"""Operating pinpoint on a real network: accounts, networks, deployment, tasks, games and the two daemons.

    pinpoint accounts new|import|list|export ALIAS
    pinpoint chain [--port 8545] [--block-time S] [--state PATH]        (a local anvil from node_modules)
    pinpoint deploy   --network NAME | --rpc-url URL  --account ALIAS
    pinpoint task post --model PATH --input PATH --fee WEI  --account ALIAS
    pinpoint task status ID
    pinpoint games list
    pinpoint evaluator run  --account ALIAS [--cheat-op J]
    pinpoint challenger run --account ALIAS

Every command that talks to a chain takes ``--network`` (an entry of deploy/networks.toml) and/or ``--rpc-url``.
Passphrases come from the environment variable PINPOINT_PASSPHRASE, else from a prompt.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from protocol.operations import accounts as acc
from protocol.chain.connection import anvil_binary
from protocol.operations.networks import NetworkError, Network, connect, deploy_all, load_record, pinpoint_address, resolve

STORE_ENV = "PINPOINT_STORE"


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


def _passphrase(confirm: bool = False) -> str:
    p = os.environ.get(acc.PASSPHRASE_ENV)
    if p:
        return p
    return click.prompt("passphrase", hide_input=True, confirmation_prompt=confirm)


def _out(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def net_options(f):
    """The shared --network / --rpc-url / --deployments options."""

    @click.option("--network", default=None, help="network name in deploy/networks.toml (default: local).")
    @click.option("--rpc-url", default=None, help="JSON-RPC URL (overrides the network's).")
    @click.option("--deployments", type=click.Path(path_type=Path), default=None,
                  help="deployment records directory (default: $PINPOINT_DEPLOYMENTS or deploy/deployments).")
    @functools.wraps(f)
    def wrapper(*a, **kw):
        from web3.exceptions import Web3RPCError

        from protocol.chain.connection import _REVERTS, Chain, ChainError

        try:
            return f(*a, **kw)
        except (NetworkError, acc.AccountError, ChainError) as e:
            _fail(str(e))
        except _REVERTS as e:
            _fail(str(Chain._revert(e)))
        except Web3RPCError as e:
            _fail(f"node refused: {e}")

    return wrapper


def _chain(network, rpc_url, account=None, cls=None):
    from protocol.chain.connection import Chain

    net = resolve(network, rpc_url)
    keys = None
    if account:
        keys = ["0x" + bytes(acc.unlock(account, _passphrase()).key).hex()]
    return net, connect(net, keys=keys, cls=cls or Chain)


def _dep(chain, deployments):
    from protocol.inference.game import Deployment

    return Deployment.at(chain, pinpoint_address(int(chain.w3.eth.chain_id), deployments))


def _store(store: Path | None):
    from protocol.operations.daemons import Store

    return Store(store or Path(os.environ.get(STORE_ENV) or acc.home() / "store"))


def register(main, demo) -> None:
    """Attach the operations commands to the `pinpoint` group."""

    # ------------------------------------------------------------------------------------------------ accounts
    @main.group("accounts")
    def accounts_grp():
        """Encrypted keystores under $PINPOINT_HOME/keystores (default ~/.pinpoint)."""

    @accounts_grp.command("new")
    @click.argument("alias")
    def accounts_new(alias):
        """Create a random key stored encrypted as ALIAS; prints its address."""
        try:
            _out({"alias": alias, "address": acc.new(alias, _passphrase(confirm=True))})
        except acc.AccountError as e:
            _fail(str(e))

    @accounts_grp.command("import")
    @click.argument("alias")
    @click.option("--key-stdin", is_flag=True, help="read the private key from standard input (else a prompt).")
    def accounts_import(alias, key_stdin):
        """Encrypt an existing private key as ALIAS (the key is never written in plaintext)."""
        key = sys.stdin.readline().strip() if key_stdin else click.prompt("private key", hide_input=True)
        try:
            _out({"alias": alias, "address": acc.import_key(alias, key, _passphrase(confirm=True))})
        except acc.AccountError as e:
            _fail(str(e))

    @accounts_grp.command("list")
    def accounts_list():
        """Aliases and addresses (no passphrase needed)."""
        _out([{"alias": a, "address": ad} for a, ad in acc.list_accounts()])

    @accounts_grp.command("export")
    @click.argument("alias")
    def accounts_export(alias):
        """Print the private key of ALIAS (needs its passphrase)."""
        try:
            click.echo(acc.export(alias, _passphrase()))
        except acc.AccountError as e:
            _fail(str(e))

    # ------------------------------------------------------------------------------------------------ chain
    @main.command("chain")
    @click.option("--port", default=8545, show_default=True)
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--block-time", type=int, default=None, help="seconds between blocks (default: mine on demand).")
    @click.option("--state", type=click.Path(path_type=Path), default=None,
                  help="load the chain from / dump it to this file (survives restarts).")
    def chain_cmd(port, host, block_time, state):
        """Start a local anvil (the project's npm @foundry-rs/anvil) for development; replaces this process."""
        anvil = anvil_binary()
        if anvil is None:
            _fail("anvil not found: run `npm install` in the project (node_modules/.bin/anvil)")
        args = [str(anvil), "--host", host, "--port", str(port)]
        if block_time:
            args += ["--block-time", str(block_time)]
        if state:
            args += ["--state", str(state)]
        os.execv(args[0], args)

    @main.command("fund")
    @net_options
    @click.argument("who")
    @click.option("--ether", type=float, default=100.0, show_default=True)
    def fund_cmd(network, rpc_url, deployments, who, ether):
        """Development networks only: set the balance of WHO (alias or address) with anvil_setBalance."""
        net, chain = _chain(network, rpc_url)
        if not (net.dev or net.chain_id == 31337):
            _fail(f"network {net.name!r} is not a development network: fund the account from a faucet")
        address = who if who.startswith("0x") else acc.address(who)
        wei = int(ether * 10**18)
        chain.w3.provider.make_request("anvil_setBalance", [address, hex(wei)])
        _out({"address": address, "balance": int(chain.w3.eth.get_balance(address))})

    # ------------------------------------------------------------------------------------------------ deploy
    @main.command("deploy")
    @net_options
    @click.option("--account", required=True, help="keystore alias that pays for the deployment.")
    @click.option("--challenge-window", type=int, default=None, help="seconds (default: the network's).")
    @click.option("--move-window", type=int, default=None, help="seconds per move (default: the network's).")
    @click.option("--bond-gas-price", type=int, default=None, help="wei per gas (default: the network's).")
    def deploy_cmd(network, rpc_url, deployments, account, challenge_window, move_window, bond_gas_price):
        """Deploy OneStep and Pinpoint (only what changed), check the code on chain, record the deployment."""
        net, chain = _chain(network, rpc_url, account)
        for k, v in (("challenge_window", challenge_window), ("move_window", move_window),
                     ("bond_gas_price", bond_gas_price)):
            if v is not None:
                setattr(net, k, v)
        res = deploy_all(chain, net, chain.accounts[0], deployments, log=lambda m: click.echo(m, err=True))
        _out({"path": str(res.path), "actions": res.actions, **res.record})

    # ------------------------------------------------------------------------------------------------ tasks
    @main.group("task")
    def task_grp():
        """Post tasks and follow them."""

    @task_grp.command("post")
    @net_options
    @click.option("--account", required=True)
    @click.option("--model", type=click.Path(exists=True, path_type=Path), required=True)
    @click.option("--input", "input_path", type=click.Path(exists=True, path_type=Path), required=True)
    @click.option("--fee", type=int, required=True, help="fee paid to the solver of an accepted result (wei).")
    @click.option("--store", type=click.Path(path_type=Path), default=None,
                  help="content-addressed store the daemons read (default: $PINPOINT_STORE or ~/.pinpoint/store).")
    def task_post(network, rpc_url, deployments, account, model, input_path, fee, store):
        """Evaluate the model on the input (for its commitments), put both in the store, post the task."""
        from offchain.inference.kernels import InputError
        from offchain.inference.graph import ModelError

        from protocol.cli.main import evaluate_file
        from protocol.inference.game import post_task

        try:
            trace = evaluate_file(model, input_path)
        except (ModelError, InputError) as e:
            _fail(str(e))
        m, x = _store(store).put(model, trace)
        net, chain = _chain(network, rpc_url, account)
        dep = _dep(chain, deployments)
        tid, tx = post_task(dep, trace, fee, chain.accounts[0])
        bond = int(dep.pinpoint.functions.task(tid).call()[9])
        _out({"task_id": tid, "tx": tx.hash, "fee": fee, "bond": bond,
              "model_root": "0x" + trace.graph.model_root().hex(), "input_root": "0x" + trace.input_root.hex(),
              "stored": [str(m), str(x)]})

    @task_grp.command("status")
    @net_options
    @click.argument("task_id", type=int)
    def task_status(network, rpc_url, deployments, task_id):
        """The task's on-chain record and its games (JSON)."""
        net, chain = _chain(network, rpc_url)
        dep = _dep(chain, deployments)
        _out(task_info(dep, task_id))

    @main.group("games")
    def games_grp():
        """Inspect games."""

    @games_grp.command("list")
    @net_options
    @click.option("--json", "as_json", is_flag=True)
    def games_list(network, rpc_url, deployments, as_json):
        """Every game: task, challenger, phase, turn, deadline, winner."""
        net, chain = _chain(network, rpc_url)
        dep = _dep(chain, deployments)
        rows = [game_info(dep, g) for g in range(int(dep.pinpoint.functions.gameCount().call()))]
        if as_json:
            return _out(rows)
        click.echo(f"{'game':>5} {'task':>5} {'challenger':<42} {'phase':>5} {'turn':<10} {'deadline':>11} winner")
        for r in rows:
            click.echo(f"{r['game_id']:>5} {r['task_id']:>5} {r['challenger']:<42} {r['phase']:>5} {r['turn']:<10} "
                       f"{r['deadline']:>11} {r['winner']}")

    # ------------------------------------------------------------------------------------------------ daemons
    for role in ("evaluator", "challenger"):
        _daemon_group(main, role)


def _daemon_group(main, role: str) -> None:
    @main.group(role)
    def grp():
        pass

    grp.help = {"evaluator": "The evaluator daemon: solves posted tasks, defends its results, collects.",
                "challenger": "The challenger daemon: re-evaluates every result, disputes wrong ones, collects."}[role]

    @grp.command("run")
    @net_options
    @click.option("--account", required=True)
    @click.option("--db", type=click.Path(path_type=Path), default=None,
                  help="SQLite state (default: $PINPOINT_HOME/db/<role>-<chainId>-<address>.sqlite).")
    @click.option("--store", type=click.Path(path_type=Path), default=None)
    @click.option("--confirmations", type=int, default=None, help="blocks below the head (default: the network's).")
    @click.option("--poll-interval", type=float, default=0.5, show_default=True, help="seconds between head polls.")
    @click.option("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on 127.0.0.1:PORT (0: off).")
    @click.option("--log-file", type=click.Path(path_type=Path), default=None, help="JSON lines (default: stderr).")
    @click.option("--from-block", type=int, default=None, help="first block to scan (default: the deployment's).")
    @click.option("--max-seconds", type=float, default=None, help="stop after this many seconds.")
    @click.option("--cheat-op", type=int, default=None, hidden=role != "evaluator",
                  help="(evaluator) alter one element of operator J's output: a cheating solver, for tests/demos.")
    @click.option("--cheat-element", type=int, default=None, hidden=True)
    def run(network, rpc_url, deployments, account, db, store, confirmations, poll_interval, metrics_port, log_file,
            from_block, max_seconds, cheat_op, cheat_element):
        """Run until SIGTERM."""
        from protocol.operations.daemons import DB, Config, Daemon, DaemonChain, DaemonError, Metrics, json_logger

        if cheat_op is not None and role != "evaluator":
            _fail("--cheat-op is for the evaluator")
        net, chain = _chain(network, rpc_url, account, cls=DaemonChain)
        cid = int(chain.w3.eth.chain_id)
        addr = pinpoint_address(cid, deployments)
        rec = load_record(cid, deployments) or {}
        start = from_block if from_block is not None else int(rec["contracts"]["Pinpoint"].get("block", 0))
        db_path = db or acc.home() / "db" / f"{role}-{cid}-{chain.accounts[0]}.sqlite"
        cfg = Config(role=role, confirmations=net.confirmations if confirmations is None else confirmations,
                     poll_interval=poll_interval, from_block=start, cheat_op=cheat_op, cheat_element=cheat_element)
        metrics = Metrics(role)
        if metrics_port:
            metrics.serve(metrics_port)
        try:
            d = Daemon(chain, addr, DB(db_path), _store(store), cfg, json_logger(role, log_file), metrics)
        except DaemonError as e:
            _fail(str(e))
        d.run(max_seconds=max_seconds)


# ---------------------------------------------------------------------------------------------------- helpers

STATUS = ["none", "open", "submitted", "finalized", "rejected", "cancelled"]


def game_info(dep, gid: int) -> dict:
    """One game as JSON-ready dict (phase 1 trace search, 2 tensor search, 3 resolved)."""
    g = dep.pinpoint.functions.game(gid).call()
    return {"game_id": gid, "task_id": int(g[1]), "challenger": g[0], "phase": int(g[2]),
            "turn": "solver" if g[3] == 0 else "challenger", "deadline": int(g[5]), "height": int(g[8]),
            "op_index": int(g[7]) if g[2] >= 2 else None,
            "winner": ("challenger" if g[4] else "solver") if g[2] == 3 else None}


def task_info(dep, tid: int) -> dict:
    """The task record (fee and bond in wei, times in seconds) with its games."""
    pp = dep.pinpoint
    t = pp.functions.task(tid).call()
    logs = pp.events.Challenged().get_logs(from_block=0, argument_filters={"taskId": tid})
    return {"task_id": tid, "status": STATUS[t[1]], "requester": t[6], "solver": t[0], "fee": int(t[8]),
            "bond": int(t[9]), "submitted_at": int(t[5]), "open_games": int(t[7]),
            "challenge_window": int(pp.functions.challengeWindow().call()),
            "model_root": "0x" + bytes(pp.functions.modelRoot(tid).call()).hex(),
            "input_root": "0x" + bytes(t[11]).hex(), "trace_root": "0x" + bytes(t[12]).hex(),
            "games": [game_info(dep, int(lg["args"]["gameId"])) for lg in logs]}
