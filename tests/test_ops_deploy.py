"""The operations CLI against an anvil started here: accounts, idempotent deployment with code checks, tasks."""

from __future__ import annotations

import json

import pytest

from tests.test_ops_helpers import IMAGE, MODEL, anvil, env, needs_anvil  # noqa: F401  (fixtures)

pytestmark = [needs_anvil, pytest.mark.anvil]


def test_cli_accounts(env):
    r = env.cli("accounts", "import", "ev", "--key-stdin", input="0x" + "42" * 32 + "\n")
    addr = json.loads(r.stdout)["address"]
    assert env.json("accounts", "list") == [{"alias": "ev", "address": addr}]
    assert env.cli("accounts", "export", "ev").stdout.strip() == "0x" + "42" * 32
    funded = env.json("fund", "ev", "--network", "local", "--rpc-url", env.rpc, "--ether", "5")
    assert funded == {"address": addr, "balance": 5 * 10**18}
    env.env["PINPOINT_PASSPHRASE"] = "wrong"
    r = env.cli("accounts", "export", "ev", check=False)
    assert r.returncode == 2 and "wrong passphrase" in r.stderr


@pytest.mark.slow
def test_deploy_is_idempotent_and_checked(env, anvil, tmp_path):
    from web3 import Web3

    first = env.setup()
    assert first["actions"] == {"OneStep": "deployed", "Pinpoint": "deployed"}
    rec = json.loads((tmp_path / "deployments" / "31337.json").read_text())
    pp = rec["contracts"]["Pinpoint"]
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    assert w3.eth.get_transaction_receipt(pp["transactionHash"])["contractAddress"] == pp["address"]
    assert pp["compiler"].startswith("solc 0.8.28") and pp["args"][1] == "60"
    assert "0x" + bytes(w3.keccak(bytes(w3.eth.get_code(pp["address"])))).hex() == pp["codehash"]
    nonce = w3.eth.get_transaction_count(pp["deployer"])
    again = env.json("deploy", "--network", "local", "--rpc-url", env.rpc, "--account", "requester",
                     "--challenge-window", "60", "--move-window", "60")
    assert again["actions"] == {"OneStep": "unchanged", "Pinpoint": "unchanged"}
    assert w3.eth.get_transaction_count(pp["deployer"]) == nonce  # nothing sent
    assert again["contracts"] == rec["contracts"]
    # a changed parameter redeploys Pinpoint only
    third = env.json("deploy", "--network", "local", "--rpc-url", env.rpc, "--account", "requester",
                     "--challenge-window", "120")
    assert third["actions"] == {"OneStep": "unchanged", "Pinpoint": "deployed"}
    # code replaced behind the record's back is detected and redeployed
    anvil.rpc("anvil_setCode", [third["contracts"]["OneStep"]["address"], "0x6000"])
    fourth = env.json("deploy", "--network", "local", "--rpc-url", env.rpc, "--account", "requester",
                      "--challenge-window", "120")
    assert fourth["actions"] == {"OneStep": "deployed", "Pinpoint": "deployed"}
    # a node with another chain id than the configured network is refused
    r = env.cli("deploy", "--network", "sepolia", "--rpc-url", env.rpc, "--account", "requester", check=False)
    assert r.returncode == 2 and "chain id 11155111" in r.stderr


@pytest.mark.slow
def test_task_post_status_and_games_list(env, tmp_path):
    env.setup()
    post = env.json("task", "post", "--network", "local", "--rpc-url", env.rpc, "--account", "requester",
                    "--model", MODEL, "--input", IMAGE, "--fee", 10**15)
    assert post["task_id"] == 0 and post["bond"] > 0
    stored = sorted(p.name for p in (tmp_path / "store").iterdir())
    assert stored == sorted([post["model_root"] + ".onnx", post["input_root"] + ".npy"])
    st = env.json("task", "status", "0", "--network", "local", "--rpc-url", env.rpc)
    assert st["status"] == "open" and st["fee"] == 10**15 and st["model_root"] == post["model_root"]
    assert st["input_root"] == post["input_root"] and st["games"] == []
    assert env.json("games", "list", "--json", "--network", "local", "--rpc-url", env.rpc) == []
    r = env.cli("task", "status", "7", "--network", "local", "--rpc-url", env.rpc, check=False)
    assert r.returncode == 2 and "BadTask" in r.stderr
