"""Keystores, network configuration, code checks and the game decision function (no chain needed)."""

from __future__ import annotations

import json
import stat

import pytest

from protocol.operations import accounts
from protocol.inference.types import Game, Phase, Turn
from protocol.operations.daemon import GameProgress, decide_game
from protocol.operations.deployment import check_code
from protocol.operations.networks import NetworkError, load_networks, resolve
from tests.test_ops_helpers import PASS, dev_key


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PINPOINT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_keystore_round_trip(home):
    key = dev_key(5)
    addr = accounts.import_key("alice", key, PASS)
    f = home / "keystores" / "alice.json"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    text = f.read_text()
    assert key.removeprefix("0x") not in text  # never in plaintext on disk
    assert json.loads(text)["crypto"]["kdf"] == "scrypt"
    assert accounts.export("alice", PASS) == key
    assert accounts.unlock("alice", PASS).address == addr == accounts.address("alice")
    b = accounts.new("bob", PASS)
    assert accounts.list_accounts() == [("alice", addr), ("bob", b)]


def test_keystore_errors(home):
    accounts.import_key("alice", dev_key(5), PASS)
    with pytest.raises(accounts.AccountError, match="wrong passphrase"):
        accounts.unlock("alice", "not it")
    with pytest.raises(accounts.AccountError, match="already exists"):
        accounts.import_key("alice", dev_key(6), PASS)
    with pytest.raises(accounts.AccountError, match="no account"):
        accounts.unlock("carol", PASS)
    with pytest.raises(accounts.AccountError, match="bad alias"):
        accounts.new("../evil", PASS)
    with pytest.raises(accounts.AccountError, match="not a valid private key"):
        accounts.import_key("zero", "0x" + "00" * 32, PASS)


def test_networks_file(tmp_path, monkeypatch):
    nets = load_networks()  # the project's deploy/networks.toml
    assert nets["sepolia"].chain_id == 11155111 and nets["local"].dev
    monkeypatch.delenv("SEPOLIA_RPC_URL", raising=False)
    with pytest.raises(NetworkError, match="SEPOLIA_RPC_URL"):
        resolve("sepolia", None)
    monkeypatch.setenv("SEPOLIA_RPC_URL", "https://example.invalid/rpc")
    assert resolve("sepolia", None).rpc_url == "https://example.invalid/rpc"
    assert resolve("sepolia", "http://x:1").rpc_url == "http://x:1"
    assert resolve(None, "http://127.0.0.1:9").name == "custom"
    with pytest.raises(NetworkError, match="unknown network"):
        resolve("mainnet", None)
    bad = tmp_path / "n.toml"
    bad.write_text('[networks.x]\nrpc_url = "http://a"\nchainid = 1\n')
    with pytest.raises(NetworkError, match="unknown keys"):
        load_networks(bad)


def test_check_code_masks_only_immutables():
    from protocol.chain.connection import artifact

    ref = bytes.fromhex(artifact("Pinpoint")["deployedBytecode"].removeprefix("0x"))
    one = bytes.fromhex(artifact("OneStep")["deployedBytecode"].removeprefix("0x"))
    assert check_code("OneStep", one, []) is None
    assert "differs" in check_code("OneStep", one[:50] + bytes([one[50] ^ 1]) + one[51:], [])
    # artifact with its zero immutable slots left as they are cannot pass for code deployed with args != 0 ...
    args = ["0x" + "11" * 20, 60, 60, 10**9]
    assert check_code("Pinpoint", ref, args) is None  # (equal bytes everywhere: trivially consistent)
    # ... and a change outside an immutable slot is caught
    assert "differs" in check_code("Pinpoint", ref[:7] + bytes([ref[7] ^ 1]) + ref[8:], args)
    assert "size" in check_code("Pinpoint", ref + b"\x00", args)
    assert check_code("Pinpoint", b"", args) == "no code at the address"


def _g(phase=1, turn=0, won=False, deadline=100):
    return Game(challenger="0x" + "22" * 20, task_id=0, phase=Phase(phase), turn=Turn(turn), challenger_won=won,
                deadline=deadline, node_index=0, op_index=0, height=3, node=b"\0" * 32)


def test_decide_game_state_machine():
    assert decide_game(_g(turn=0), "solver", 50).kind == "move"
    assert decide_game(_g(turn=0), "challenger", 50) .kind == "wait"
    a = decide_game(_g(turn=0), "challenger", 101)
    assert (a.kind, a.state) == ("timeout", GameProgress.THEIR_TURN)
    assert decide_game(_g(turn=1), "challenger", 50).state == GameProgress.OUR_TURN
    assert decide_game(_g(turn=1), "solver", 100).kind == "wait"  # deadline inclusive, as the contract
    assert decide_game(_g(phase=3, won=True), "challenger", 0).state == GameProgress.WON
    assert decide_game(_g(phase=3, won=True), "solver", 0).state == GameProgress.LOST
    assert decide_game(_g(phase=3, won=False), "solver", 0).state == GameProgress.WON
    # a queued game waits (no deadline runs); a cancelled one is settled for both sides
    for side in ("solver", "challenger"):
        assert (decide_game(_g(phase=4), side, 10**9).kind, decide_game(_g(phase=4), side, 10**9).state) == \
            ("wait", GameProgress.QUEUED)
        assert decide_game(_g(phase=5), side, 0).state == GameProgress.CANCELLED


def test_state_database_corrupt_rebuild_and_migration(tmp_path):
    import sqlite3

    from protocol.operations.daemon.db import DB, StateError

    p = tmp_path / "d.sqlite"
    p.write_bytes(b"garbage" * 1000)
    with pytest.raises(StateError, match="--rebuild-state"):
        DB(p)
    db = DB(p, rebuild=True)
    db.set("scanned", 5)
    assert db.get("scanned") == 5
    db.close()
    # a database of the previous schema (no settled_block) gains the column
    old = tmp_path / "old.sqlite"
    c = sqlite3.connect(old)
    c.executescript("CREATE TABLE games (game_id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, side TEXT NOT NULL, "
                    "state TEXT NOT NULL, found_block INTEGER, bond TEXT, moves INTEGER NOT NULL DEFAULT 0, "
                    "pending_tx TEXT, pending_kind TEXT, note TEXT, updated REAL NOT NULL);")
    c.close()
    db = DB(old)
    assert "settled_block" in {r["name"] for r in db.q("PRAGMA table_info(games)")}
