"""Operating pinpoint on a real network: accounts, networks, deployment, tasks, games and the two daemons.

    pinpoint accounts new|import|list|export ALIAS
    pinpoint chain [--port 8545] [--block-time S] [--state PATH]        (a local anvil from node_modules)
    pinpoint fund WHO [--ether N]                                      (development networks)
    pinpoint deploy   --account ALIAS [--challenge-window S --move-window S --bond-gas-price WEI]
    pinpoint task post --model PATH --input PATH --fee WEI  --account ALIAS
    pinpoint task status ID
    pinpoint task cancel ID --account ALIAS                            (the requester of an open task)
    pinpoint games list [--json]                                       (bond, time left, winner)
    pinpoint games show ID [--out game.svg]                            (every move, its transaction and gas; a picture)
    pinpoint games timeout ID --account ALIAS                          (the side to move missed its deadline)
    pinpoint credits [ALIAS|ADDRESS ...]                     (what Pinpoint owes and has paid, balances)
    pinpoint withdraw --account ALIAS
    pinpoint doctor [--account ALIAS]                                  (node, deployment, code, balances)
    pinpoint evaluator run  --account ALIAS [--cheat-op J] [--max-games N --game-window S --replace-margin S]
    pinpoint challenger run --account ALIAS [--rebuild-state] [--max-games N ...]

Every command that sends transactions takes --max-fee / --priority-fee (gwei, EIP-1559; default the node's
suggestion) and --max-fee-cap; a daemon replaces a transaction stuck in the pool --replace-margin seconds before
its deadline (same nonce, fees +12.5%).

Every command that talks to a chain takes the shared options of `protocol.cli.options` (--network, --rpc-url,
--account, --deployments, --json and their environment variables); every other option has its environment
variable too (shown by --help). Passphrases come from the environment variable
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
    """The checked deployment on ``chain`` (a stale or missing record is a NetworkError: ``error: ...``)."""
    from protocol.inference.game import Deployment
    from protocol.operations.deployment import pinpoint_address

    return Deployment.at(chain, pinpoint_address(chain, opts.deployments))


def _store(store: Path | None):
    from protocol.operations.daemon.store import Store

    return Store(store or Path(os.environ.get(STORE_ENV) or home() / "store"))


def register(main, demo) -> None:
    """Attach the operations commands to the `pinpoint` group ``main`` (``demo`` unused)."""
    _accounts(main)
    _chain_commands(main)
    _task_commands(main)
    _game_commands(main)
    _money_commands(main)
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
    @click.option("--port", default=8545, show_default=True, envvar="PINPOINT_CHAIN_PORT", show_envvar=True)
    @click.option("--host", default="127.0.0.1", show_default=True, envvar="PINPOINT_CHAIN_HOST", show_envvar=True)
    @click.option("--block-time", type=int, default=None, envvar="PINPOINT_BLOCK_TIME", show_envvar=True,
                  help="seconds between blocks (default: mine on demand).")
    @click.option("--state", type=click.Path(path_type=Path), default=None, envvar="PINPOINT_CHAIN_STATE",
                  show_envvar=True, help="load the chain from / dump it to this file (survives restarts).")
    def chain_cmd(port, host, block_time, state):
        """Start a local anvil (the project's npm @foundry-rs/anvil) for development; replaces this process with the
        real anvil binary (not the npm launcher), so stopping it leaves nothing behind."""
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
    @click.option("--ether", type=float, default=100.0, show_default=True, envvar="PINPOINT_FUND_ETHER",
                  show_envvar=True)
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
    @click.option("--challenge-window", type=int, default=None, envvar="PINPOINT_CHALLENGE_WINDOW", show_envvar=True,
                  help="seconds (default: the network's).")
    @click.option("--move-window", type=int, default=None, envvar="PINPOINT_MOVE_WINDOW", show_envvar=True,
                  help="seconds per move (default: the network's).")
    @click.option("--bond-gas-price", type=int, default=None, envvar="PINPOINT_BOND_GAS_PRICE", show_envvar=True,
                  help="wei per gas (default: the network's).")
    def deploy_cmd(opts: ChainOptions, challenge_window, move_window, bond_gas_price):
        """Deploy OneStep and Pinpoint (only what changed), check the code on chain, record the deployment."""
        from protocol.operations.deployment import deploy_all

        net, chain = opts.connect(need_account=True)
        for k, v in (("challenge_window", challenge_window), ("move_window", move_window),
                     ("bond_gas_price", bond_gas_price)):
            if v is not None:
                setattr(net, k, v)
        res = deploy_all(chain, net, chain.accounts[0], opts.deployments, log=lambda m: click.echo(m, err=True))
        if chain.balance(chain.accounts[0]) == 0:
            click.echo(f"warning: {chain.accounts[0]} has 0 wei", err=True)
        out({"path": str(res.path), "actions": res.actions, **res.record})


# ---------------------------------------------------------------------------------------------------- tasks, games

def _task_commands(main) -> None:
    @main.group("task")
    def task_grp():
        """Post tasks and follow them."""

    @task_grp.command("post")
    @chain_options
    @click.option("--model", type=click.Path(exists=True, path_type=Path), required=True, envvar="PINPOINT_MODEL",
                  show_envvar=True)
    @click.option("--input", "input_path", type=click.Path(exists=True, path_type=Path), required=True,
                  envvar="PINPOINT_INPUT", show_envvar=True)
    @click.option("--fee", type=int, required=True, envvar="PINPOINT_FEE", show_envvar=True,
                  help="fee paid to the solver of an accepted result (wei).")
    @click.option("--store", type=click.Path(path_type=Path), default=None, envvar=STORE_ENV, show_envvar=True,
                  help="content-addressed store the daemons read (default: ~/.pinpoint/store).")
    def task_post(opts: ChainOptions, model, input_path, fee, store):
        """Evaluate the model on the input (for its commitments), put both in the store, post the task."""
        from offchain.inference.pipeline import run_files
        from protocol.inference.game import post_task
        from protocol.inference.types import decode_task

        net, chain = opts.connect(need_account=True)
        dep = _dep(chain, opts)  # a stale deployment record fails here, before the evaluation
        _need_funds(chain, fee)
        trace = run_files(model, input_path)
        m, x = _store(store).put(model, trace)
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
        from protocol.operations.inspect import task_info

        net, chain = opts.connect()
        out(task_info(_dep(chain, opts), task_id))

    @task_grp.command("cancel")
    @chain_options
    @click.argument("task_id", type=int)
    def task_cancel(opts: ChainOptions, task_id):
        """Cancel an open task (its requester); the fee is credited back: `pinpoint withdraw` collects it."""
        from protocol.operations.inspect import cancel

        net, chain = opts.connect(need_account=True)
        out(cancel(_dep(chain, opts), task_id, chain.accounts[0]))


def _need_funds(chain, value: int) -> None:
    """Refuse early, naming the account, when it cannot pay ``value`` wei plus gas."""
    me = chain.accounts[0]
    if chain.balance(me) <= value:
        fail(f"account {me} has {chain.balance(me)} wei, not enough for {value} wei plus gas: fund it "
             "(`pinpoint fund ALIAS` on a development network, a faucet on a testnet)")


def _game_commands(main) -> None:
    @main.group("games")
    def games_grp():
        """Inspect games and act on them by hand."""

    @games_grp.command("list")
    @chain_options
    def games_list(opts: ChainOptions):
        """Every game: task, challenger, phase, turn, bond (wei), time left (s), winner; credit of --account."""
        from protocol.operations.inspect import game_row

        net, chain = opts.connect()
        dep = _dep(chain, opts)
        now = chain.now()
        pp = dep.pinpoint.functions
        rows = [game_row(dep, g, now) for t in range(int(pp.taskCount().call())) for g in pp.queue(t).call()]
        if opts.as_json:
            return out(rows)
        click.echo(f"{'game':>5} {'task':>5} {'challenger':<42} {'phase':>5} {'turn':<10} {'bond (wei)':>20} "
                   f"{'left (s)':>9} winner")
        for r in rows:
            left = "-" if r["time_left"] is None else r["time_left"]
            click.echo(f"{r['game_id']:>5} {r['task_id']:>5} {r['challenger']:<42} {r['phase']:>5} {r['turn']:<10} "
                       f"{r['bond']:>20} {left:>9} {r['winner'] or '-'}")
        for who in {r["challenger"] for r in rows} | {r["solver"] for r in rows}:
            click.echo(f"credit {who}: {int(dep.pinpoint.functions.credit(who).call())} wei")

    @games_grp.command("show")
    @chain_options
    @click.argument("game_id", type=int)
    @click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="also draw the bisection path (phase 1 through the operators, phase 2 through the disputed "
                       "tensor; each move with its gas and time) as SVG to this file.")
    def games_show(opts: ChainOptions, game_id, out_path):
        """One game: phase, turn, time left, bonds, and every move with its transaction, block and gas."""
        from protocol.operations.inspect import game_view

        net, chain = opts.connect()
        v = game_view(_dep(chain, opts), game_id)
        if out_path is not None:
            from protocol.operations.picture import game_svg

            if out_path.suffix.lower() != ".svg":
                fail(f"--out {out_path}: only .svg pictures are drawn")
            times = {b: int(chain.w3.eth.get_block(b)["timestamp"]) for b in {m["block"] for m in v["moves"]}}
            out_path.write_text(game_svg(v, times))
            click.echo(f"wrote {out_path}", err=True)
        if opts.as_json:
            return out(v)
        left = "-" if v["time_left"] is None else f"{v['time_left']} s"
        click.echo(f"game {game_id} on task {v['task_id']}: phase {v['phase']}, turn {v['turn']}, time left {left}, "
                   f"bond {v['bond']} wei each, winner {v['winner'] or '-'}")
        click.echo(f"  solver {v['solver']}  challenger {v['challenger']}  node 0x..{v['node'][-8:]} "
                   f"(height {v['height']}, index {v['node_index']})")
        for m in v["moves"]:
            fields = ", ".join(f"{k}={m[k]}" for k in ("phase", "height", "nodeIndex", "opIndex", "reason")
                               if k in m)
            click.echo(f"  block {m['block']:>7} {m['who']:<10} {m['event']:<16} gas {m['gas']:>8}  {m['tx']}  "
                       f"{fields}")
        click.echo(f"  total gas {v['gas_total']}")

    @games_grp.command("timeout")
    @chain_options
    @click.argument("game_id", type=int)
    def games_timeout(opts: ChainOptions, game_id):
        """End a game whose side to move missed its deadline (anyone may call it; the other side wins)."""
        from protocol.operations.inspect import timeout

        net, chain = opts.connect(need_account=True)
        out(timeout(_dep(chain, opts), game_id, chain.accounts[0]))


def _money_commands(main) -> None:
    @main.command("withdraw")
    @chain_options
    def withdraw_cmd(opts: ChainOptions):
        """Withdraw what Pinpoint owes --account (won bonds, fees, refunds)."""
        from protocol.operations.inspect import withdraw

        net, chain = opts.connect(need_account=True)
        out(withdraw(_dep(chain, opts), chain.accounts[0]))

    @main.command("doctor")
    @chain_options
    def doctor_cmd(opts: ChainOptions):
        """Check the node (reachable, chain id), the deployment record, the code on chain against the local
        artifacts, and the balances of --account (else every keystore). Exit status 2 if a check fails."""
        from protocol.operations.doctor import diagnose

        net, chain = opts.connect()
        names = [opts.account] if opts.account else [a for a, _ in acc.list_accounts()]
        checks = diagnose(net, chain, opts.deployments, {n: acc.address(n) for n in names})
        if opts.as_json:
            out(checks)
        else:
            for c in checks:
                click.echo(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']:<20} {c['detail']}")
        if not all(c["ok"] for c in checks):
            fail("; ".join(f"{c['check']}: {c['detail']}" for c in checks if not c["ok"]))

    @main.command("credits")
    @chain_options
    @click.argument("who", nargs=-1)
    def credits_cmd(opts: ChainOptions, who):
        """What Pinpoint owes WHO (aliases or addresses; default --account, else every keystore), what it has paid them
        (pushed payouts and withdrawals, wei) and their balances."""
        from protocol.operations.inspect import credits

        net, chain = opts.connect()
        names = list(who) or ([opts.account] if opts.account else [a for a, _ in acc.list_accounts()])
        addresses = [w if w.startswith("0x") else acc.address(w) for w in names]
        out(credits(_dep(chain, opts), [chain.w3.to_checksum_address(a) for a in addresses]))


# ---------------------------------------------------------------------------------------------------- daemons

def _daemon_group(main, role: str) -> None:
    @main.group(role)
    def grp():
        pass

    grp.help = {"evaluator": "The evaluator daemon: solves posted tasks, defends its results, collects.",
                "challenger": "The challenger daemon: re-evaluates every result, disputes wrong ones, collects."}[role]

    @grp.command("run")
    @chain_options
    @click.option("--db", type=click.Path(path_type=Path), default=None, envvar="PINPOINT_DB", show_envvar=True,
                  help="SQLite state (default: $PINPOINT_HOME/db/<role>-<chainId>-<address>.sqlite).")
    @click.option("--rebuild-state", is_flag=True, envvar="PINPOINT_REBUILD_STATE", show_envvar=True,
                  help="delete the state database and rebuild it from the chain (e.g. after corruption).")
    @click.option("--store", type=click.Path(path_type=Path), default=None, envvar=STORE_ENV, show_envvar=True)
    @click.option("--confirmations", type=int, default=None, envvar="PINPOINT_CONFIRMATIONS", show_envvar=True,
                  help="blocks below the head (default: the network's).")
    @click.option("--reorg-depth", type=int, default=None, envvar="PINPOINT_REORG_DEPTH", show_envvar=True,
                  help="blocks after which a settled game is final (default: the network's).")
    @click.option("--receipt-wait", type=float, default=5.0, show_default=True, envvar="PINPOINT_RECEIPT_WAIT",
                  show_envvar=True, help="seconds a send waits for its receipt before leaving it in flight.")
    @click.option("--poll-interval", type=float, default=0.5, show_default=True, envvar="PINPOINT_POLL_INTERVAL",
                  show_envvar=True, help="seconds between head polls.")
    @click.option("--metrics-port", type=int, default=0, envvar="PINPOINT_METRICS_PORT", show_envvar=True,
                  help="serve Prometheus /metrics on 127.0.0.1:PORT (0: off).")
    @click.option("--log-file", type=click.Path(path_type=Path), default=None, envvar="PINPOINT_LOG_FILE",
                  show_envvar=True, help="JSON lines (default: stderr).")
    @click.option("--from-block", type=int, default=None, envvar="PINPOINT_FROM_BLOCK", show_envvar=True,
                  help="first block to scan (default: the deployment's).")
    @click.option("--max-seconds", type=float, default=None, envvar="PINPOINT_MAX_SECONDS", show_envvar=True,
                  help="stop after this many seconds.")
    @click.option("--replace-margin", type=click.FloatRange(min=0), default=120.0, show_default=True,
                  envvar="PINPOINT_REPLACE_MARGIN", show_envvar=True,
                  help="seconds before its deadline at which a transaction still in the pool is replaced (same "
                       "nonce, fees +12.5%, within --max-fee-cap).")
    @click.option("--max-games", type=click.IntRange(min=1), default=None, envvar="PINPOINT_MAX_GAMES",
                  show_envvar=True, help="live games beyond which no new task is taken on (default: no limit).")
    @click.option("--game-window", type=click.IntRange(min=1), default=None, envvar="PINPOINT_GAME_WINDOW",
                  show_envvar=True, help="seconds: ignore tasks older than this (default: all).")
    @click.option("--cheat-op", type=int, default=None, hidden=role != "evaluator",
                  help="(evaluator) alter one element of operator J's output: a cheating solver, for tests/demos.")
    @click.option("--cheat-element", type=int, default=None, hidden=True)
    def run(opts: ChainOptions, db, rebuild_state, store, confirmations, reorg_depth, receipt_wait, poll_interval,
            metrics_port, log_file, from_block, max_seconds, replace_margin, max_games, game_window, cheat_op,
            cheat_element):
        """Run until SIGTERM. An unreachable node at start-up is retried with backoff (as while running); fatal
        errors are written to the log and end the command with ``error: ...``."""
        from protocol.operations.daemon import DB, ROLES, Config, Metrics, json_logger
        from protocol.operations.daemon.startup import connect_with_backoff

        if cheat_op is not None and role != "evaluator":
            fail("--cheat-op is for the evaluator")
        logger = json_logger(role, log_file)
        metrics = Metrics(role)
        try:
            net, chain, rec = connect_with_backoff(opts, role, logger, metrics, max_seconds)
            if chain is None:
                return
            cid = int(chain.w3.eth.chain_id)
            addr = rec["contracts"]["Pinpoint"]["address"]
            start = from_block if from_block is not None else int(rec["contracts"]["Pinpoint"].get("block", 0))
            db_path = db or home() / "db" / f"{role}-{cid}-{chain.accounts[0]}.sqlite"
            cfg = Config(confirmations=net.confirmations if confirmations is None else confirmations,
                         reorg_depth=net.reorg_depth if reorg_depth is None else reorg_depth,
                         receipt_wait=receipt_wait, poll_interval=poll_interval, from_block=start,
                         replace_margin=replace_margin, max_games=max_games, game_window=game_window, cheat_op=cheat_op, cheat_element=cheat_element)
            if metrics_port:
                metrics.serve(metrics_port)
            daemon = ROLES[role](chain, addr, DB(db_path, rebuild=rebuild_state), _store(store), cfg, logger,
                                 metrics)
            daemon.run(max_seconds=max_seconds)
        except Exception as e:
            logger.error("fatal", extra={"fields": {"role": role, "error": f"{type(e).__name__}: {e}"[:1000]}})
            raise
