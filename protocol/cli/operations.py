"""Operating pinpoint on a real network: accounts, networks, deployment, tasks, games and the two daemons.

    pinpoint accounts new|import|list|export ALIAS
    pinpoint chain [--port 8545] [--block-time S] [--state PATH]        (a local anvil from node_modules)
    pinpoint fund WHO [--ether N]                                      (development networks)
    pinpoint deploy   --account ALIAS [--challenge-window S --move-window S --bond-gas-price WEI]
    pinpoint task post --model PATH --input PATH --fee WEI  --account ALIAS
    pinpoint task status ID
    pinpoint games list [--json]
    pinpoint evaluator run  --account ALIAS [--cheat-op J]
    pinpoint challenger run --account ALIAS

Every command that talks to a chain takes the shared options of `protocol.cli.options` (--network, --rpc-url,
--account, --deployments, --json and their environment variables). Passphrases come from the environment variable
PINPOINT_PASSPHRASE, else from a prompt. User errors end with ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from protocol.cli.options import ChainOptions, chain_options, fail, handle_errors, out
from protocol.config import home
from protocol.operations import accounts as acc

STORE_ENV = "PINPOINT_STORE"


def _passphrase(confirm: bool = False) -> str:
    return os.environ.get(acc.PASSPHRASE_ENV) or click.prompt("passphrase", hide_input=True,
                                                               confirmation_prompt=confirm)


def _dep(chain, opts: ChainOptions):
    from protocol.inference.game import Deployment
    from protocol.operations.deployment import pinpoint_address

    return Deployment.at(chain, pinpoint_address(int(chain.w3.eth.chain_id), opts.deployments))


def _store(store: Path | None):
    from protocol.operations.daemon.store import Store

    return Store(store or Path(os.environ.get(STORE_ENV) or home() / "store"))


def register(main, demo) -> None:
    """Attach the operations commands to the `pinpoint` group ``main`` (``demo`` unused)."""
    _accounts(main)
    _chain_commands(main)
    _task_commands(main)
    for role in ("evaluator", "challenger"):
        _daemon_group(main, role)


# ---------------------------------------------------------------------------------------------------- accounts

def _accounts(main) -> None:
    @main.group("accounts")
    def accounts_grp():
        """Encrypted keystores under $PINPOINT_HOME/keystores (default ~/.pinpoint)."""

    @accounts_grp.command("new")
    @click.argument("alias")
    @handle_errors
    def accounts_new(alias):
        """Create a random key stored encrypted as ALIAS; prints its address."""
        out({"alias": alias, "address": acc.new(alias, _passphrase(confirm=True))})

    @accounts_grp.command("import")
    @click.argument("alias")
    @click.option("--key-stdin", is_flag=True, help="read the private key from standard input (else a prompt).")
    @handle_errors
    def accounts_import(alias, key_stdin):
        """Encrypt an existing private key as ALIAS (the key is never written in plaintext)."""
        key = sys.stdin.readline().strip() if key_stdin else click.prompt("private key", hide_input=True)
        out({"alias": alias, "address": acc.import_key(alias, key, _passphrase(confirm=True))})

    @accounts_grp.command("list")
    @handle_errors
    def accounts_list():
        """Aliases and addresses (no passphrase needed)."""
        out([{"alias": a, "address": ad} for a, ad in acc.list_accounts()])

    @accounts_grp.command("export")
    @click.argument("alias")
    @handle_errors
    def accounts_export(alias):
        """Print the private key of ALIAS (needs its passphrase)."""
        click.echo(acc.export(alias, _passphrase()))


# ---------------------------------------------------------------------------------------------------- chain, deploy

def _chain_commands(main) -> None:
    @main.command("chain")
    @click.option("--port", default=8545, show_default=True)
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--block-time", type=int, default=None, help="seconds between blocks (default: mine on demand).")
    @click.option("--state", type=click.Path(path_type=Path), default=None,
                  help="load the chain from / dump it to this file (survives restarts).")
    def chain_cmd(port, host, block_time, state):
        """Start a local anvil (the project's npm @foundry-rs/anvil) for development; replaces this process."""
        from protocol.chain.anvil import anvil_binary

        anvil = anvil_binary()
        if anvil is None:
            fail("anvil not found: run `npm install` in the project (node_modules/.bin/anvil)")
        args = [str(anvil), "--host", host, "--port", str(port)]
        if block_time:
            args += ["--block-time", str(block_time)]
        if state:
            args += ["--state", str(state)]
        os.execv(args[0], args)

    @main.command("fund")
    @chain_options
    @click.argument("who")
    @click.option("--ether", type=float, default=100.0, show_default=True)
    def fund_cmd(opts: ChainOptions, who, ether):
        """Development networks only: set the balance of WHO (alias or address) with anvil_setBalance."""
        net, chain = opts.connect()
        if not (net.dev or net.chain_id == 31337):
            fail(f"network {net.name!r} is not a development network: fund the account from a faucet")
        address = who if who.startswith("0x") else acc.address(who)
        chain.w3.provider.make_request("anvil_setBalance", [address, hex(int(ether * 10**18))])
        out({"address": address, "balance": int(chain.w3.eth.get_balance(address))})

    @main.command("deploy")
    @chain_options
    @click.option("--challenge-window", type=int, default=None, help="seconds (default: the network's).")
    @click.option("--move-window", type=int, default=None, help="seconds per move (default: the network's).")
    @click.option("--bond-gas-price", type=int, default=None, help="wei per gas (default: the network's).")
    def deploy_cmd(opts: ChainOptions, challenge_window, move_window, bond_gas_price):
        """Deploy OneStep and Pinpoint (only what changed), check the code on chain, record the deployment."""
        from protocol.operations.deployment import deploy_all

        net, chain = opts.connect(need_account=True)
        for k, v in (("challenge_window", challenge_window), ("move_window", move_window),
                     ("bond_gas_price", bond_gas_price)):
            if v is not None:
                setattr(net, k, v)
        res = deploy_all(chain, net, chain.accounts[0], opts.deployments, log=lambda m: click.echo(m, err=True))
        out({"path": str(res.path), "actions": res.actions, **res.record})


# ---------------------------------------------------------------------------------------------------- tasks, games

def _task_commands(main) -> None:
    @main.group("task")
    def task_grp():
        """Post tasks and follow them."""

    @task_grp.command("post")
    @chain_options
    @click.option("--model", type=click.Path(exists=True, path_type=Path), required=True)
    @click.option("--input", "input_path", type=click.Path(exists=True, path_type=Path), required=True)
    @click.option("--fee", type=int, required=True, help="fee paid to the solver of an accepted result (wei).")
    @click.option("--store", type=click.Path(path_type=Path), default=None,
                  help="content-addressed store the daemons read (default: $PINPOINT_STORE or ~/.pinpoint/store).")
    def task_post(opts: ChainOptions, model, input_path, fee, store):
        """Evaluate the model on the input (for its commitments), put both in the store, post the task."""
        from offchain.inference.pipeline import run_files
        from protocol.inference.game import post_task
        from protocol.inference.types import decode_task

        trace = run_files(model, input_path)
        m, x = _store(store).put(model, trace)
        net, chain = opts.connect(need_account=True)
        dep = _dep(chain, opts)
        tid, tx = post_task(dep, trace, fee, chain.accounts[0])
        bond = decode_task(dep.pinpoint, dep.pinpoint.functions.task(tid).call()).bond
        out({"task_id": tid, "tx": tx.hash, "fee": fee, "bond": bond,
             "model_root": "0x" + trace.graph.model_root().hex(), "input_root": "0x" + trace.input_root.hex(),
             "stored": [str(m), str(x)]})

    @task_grp.command("status")
    @chain_options
    @click.argument("task_id", type=int)
    def task_status(opts: ChainOptions, task_id):
        """The task's on-chain record and its games (JSON)."""
        net, chain = opts.connect()
        out(task_info(_dep(chain, opts), task_id))

    @main.group("games")
    def games_grp():
        """Inspect games."""

    @games_grp.command("list")
    @chain_options
    def games_list(opts: ChainOptions):
        """Every game: task, challenger, phase, turn, deadline, winner."""
        net, chain = opts.connect()
        dep = _dep(chain, opts)
        rows = [game_info(dep, g) for g in range(int(dep.pinpoint.functions.gameCount().call()))]
        if opts.as_json:
            return out(rows)
        click.echo(f"{'game':>5} {'task':>5} {'challenger':<42} {'phase':>5} {'turn':<10} {'deadline':>11} winner")
        for r in rows:
            click.echo(f"{r['game_id']:>5} {r['task_id']:>5} {r['challenger']:<42} {r['phase']:>5} {r['turn']:<10} "
                       f"{r['deadline']:>11} {r['winner']}")


# ---------------------------------------------------------------------------------------------------- daemons

def _daemon_group(main, role: str) -> None:
    @main.group(role)
    def grp():
        pass

    grp.help = {"evaluator": "The evaluator daemon: solves posted tasks, defends its results, collects.",
                "challenger": "The challenger daemon: re-evaluates every result, disputes wrong ones, collects."}[role]

    @grp.command("run")
    @chain_options
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
    def run(opts: ChainOptions, db, store, confirmations, poll_interval, metrics_port, log_file, from_block,
            max_seconds, cheat_op, cheat_element):
        """Run until SIGTERM."""
        from protocol.operations.daemon import DB, ROLES, Config, Metrics, json_logger
        from protocol.operations.deployment import load_record, pinpoint_address

        if cheat_op is not None and role != "evaluator":
            fail("--cheat-op is for the evaluator")
        net, chain = opts.connect(need_account=True)
        cid = int(chain.w3.eth.chain_id)
        addr = pinpoint_address(cid, opts.deployments)
        rec = load_record(cid, opts.deployments) or {}
        start = from_block if from_block is not None else int(rec["contracts"]["Pinpoint"].get("block", 0))
        db_path = db or home() / "db" / f"{role}-{cid}-{chain.accounts[0]}.sqlite"
        cfg = Config(confirmations=net.confirmations if confirmations is None else confirmations,
                     poll_interval=poll_interval, from_block=start, cheat_op=cheat_op, cheat_element=cheat_element)
        metrics = Metrics(role)
        if metrics_port:
            metrics.serve(metrics_port)
        daemon = ROLES[role](chain, addr, DB(db_path), _store(store), cfg, json_logger(role, log_file), metrics)
        daemon.run(max_seconds=max_seconds)


# ---------------------------------------------------------------------------------------------------- helpers

def game_info(dep, gid: int) -> dict:
    """One game as a JSON-ready dict: phase 1 trace search, 2 tensor search, 3 resolved; turn "solver" or
    "challenger"; deadline in seconds; op_index from phase 2 on; winner once resolved."""
    from protocol.inference.types import Phase, decode_game

    g = decode_game(dep.pinpoint, dep.pinpoint.functions.game(gid).call())
    return {"game_id": gid, "task_id": g.task_id, "challenger": g.challenger, "phase": int(g.phase),
            "turn": g.turn.name.lower(), "deadline": g.deadline, "height": g.height,
            "op_index": g.op_index if g.phase >= Phase.TENSOR_SEARCH else None, "winner": g.winner}


def task_info(dep, tid: int) -> dict:
    """The task record (fee and bond in wei, times in seconds, status a lowercase `Status` name) with its games."""
    from protocol.inference.types import decode_task

    pp = dep.pinpoint
    t = decode_task(pp, pp.functions.task(tid).call())
    logs = pp.events.Challenged().get_logs(from_block=0, argument_filters={"taskId": tid})
    return {"task_id": tid, "status": t.status.name.lower(), "requester": t.requester, "solver": t.solver,
            "fee": t.fee, "bond": t.bond, "submitted_at": t.submitted_at, "open_games": t.open_games,
            "challenge_window": int(pp.functions.challengeWindow().call()),
            "model_root": "0x" + bytes(pp.functions.modelRoot(tid).call()).hex(),
            "input_root": "0x" + t.input_root.hex(), "trace_root": "0x" + t.trace_root.hex(),
            "games": [game_info(dep, int(lg["args"]["gameId"])) for lg in logs]}
