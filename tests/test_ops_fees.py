"""EIP-1559 fee settings and the replacement of a stuck transaction, against anvil (`FeePolicy`, `Chain.replace`,
the shared --max-fee / --priority-fee / --max-fee-cap options)."""

from __future__ import annotations

import pytest
from web3 import Web3

from protocol.chain.connection import GWEI, Chain, ChainError, FeePolicy
from tests.test_ops_helpers import anvil, dev_key, env, needs_anvil  # noqa: F401
from tests.test_ops_helpers import Anvil

pytestmark = [needs_anvil, pytest.mark.anvil]


@pytest.fixture
def paused(tmp_path):
    """An anvil that mines only when asked (evm_mine): a sent transaction waits in the pool."""
    a = Anvil(tmp_path, block_time=0)
    a.rpc("evm_setAutomine", [False])
    yield a
    a.proc.kill()
    a.proc.wait()


def _transfer(chain: Chain):
    """A contract-free transaction: deploy nothing, send 1 wei to ourselves through `Chain.send`'s signing path."""
    w3 = chain.w3
    me = chain.accounts[0]
    fees = chain.fees.fees(w3)
    tx = {"to": me, "value": 1, "gas": 21000, "nonce": w3.eth.get_transaction_count(me, "pending"),
          "chainId": w3.eth.chain_id, "type": 2, **fees}
    signed = chain.local_accounts[me].sign_transaction(tx)
    return "0x" + bytes(w3.eth.send_raw_transaction(signed.raw_transaction)).hex()


def test_fixed_fees_and_cap(paused):
    w3 = Web3(Web3.HTTPProvider(paused.url))
    fixed = FeePolicy(max_fee=3 * GWEI, priority_fee=GWEI // 2, cap=10 * GWEI).fees(w3)
    assert fixed == {"maxFeePerGas": 3 * GWEI, "maxPriorityFeePerGas": GWEI // 2}
    s_max, s_tip = FeePolicy().suggest(w3)
    assert s_max == 2 * int(w3.eth.get_block("latest")["baseFeePerGas"]) + s_tip
    assert FeePolicy().fees(w3) == {"maxFeePerGas": s_max, "maxPriorityFeePerGas": s_tip}
    capped = FeePolicy(cap=s_max - 1).fees(w3)  # the suggestion above the cap: the cap wins
    assert capped["maxFeePerGas"] == s_max - 1 and capped["maxPriorityFeePerGas"] <= s_max - 1


def test_replacement_same_nonce_bumped_and_mined_instead(paused):
    chain = Chain(paused.url, keys=[dev_key(4)])
    chain.fees = FeePolicy(max_fee=2 * GWEI, priority_fee=GWEI // 10, cap=50 * GWEI)
    old = _transfer(chain)
    seen = []
    chain.on_sent = seen.append
    new, fees = chain.replace(old)
    assert seen == [new] and new != old  # the new hash is reported before the broadcast
    t_new = chain.w3.eth.get_transaction(new)
    assert t_new["nonce"] == 0
    assert fees["maxFeePerGas"] * 8 >= 2 * GWEI * 9 and fees["maxPriorityFeePerGas"] * 8 >= GWEI // 10 * 9
    paused.rpc("evm_mine", [])
    r = chain.w3.eth.get_transaction_receipt(new)
    assert r["status"] == 1
    block = chain.w3.eth.get_block(r["blockNumber"])
    assert [("0x" + bytes(h).hex()) for h in block["transactions"]] == [new]  # the original never mined
    with pytest.raises(ChainError, match="already mined"):
        chain.replace(new)


def test_replacement_refused_by_the_cap(paused):
    chain = Chain(paused.url, keys=[dev_key(4)])
    chain.fees = FeePolicy(max_fee=2 * GWEI, priority_fee=GWEI // 10, cap=2 * GWEI)
    old = _transfer(chain)
    with pytest.raises(ChainError, match="max-fee-cap"):
        chain.replace(old)


def test_cli_fee_options_reach_the_transaction(env):
    env.setup()
    rec = env.json("withdraw", "--network", "local", "--rpc-url", env.rpc, "--account", "requester")
    assert rec["tx"] is None  # nothing owed: no transaction
    env.env["PINPOINT_MAX_FEE_GWEI"] = "7"
    r = env.cli("task", "cancel", "0", "--network", "local", "--rpc-url", env.rpc, "--account", "requester",
                "--priority-fee", "8", check=False)
    assert r.returncode == 2 and "exceeds --max-fee" in r.stderr
    r = env.cli("deploy", "--network", "local", "--rpc-url", env.rpc, "--account", "requester",
                "--max-fee", "600", check=False)
    assert r.returncode == 2 and "--max-fee-cap" in r.stderr
    w3 = Web3(Web3.HTTPProvider(env.rpc))
    me = env.json("accounts", "list")[2]["address"]  # requester
    env.json("fund", "requester", "--network", "local", "--rpc-url", env.rpc)
    n0 = w3.eth.get_transaction_count(me)
    env.json("deploy", "--network", "local", "--rpc-url", env.rpc, "--account", "requester",
             "--priority-fee", "1.5", "--challenge-window", "61")
    sent = [tx for b in range(w3.eth.block_number + 1)
            for tx in w3.eth.get_block(b, full_transactions=True)["transactions"] if tx["from"] == me]
    assert len(sent) > n0 and sent[-1]["maxFeePerGas"] == 7 * GWEI  # from $PINPOINT_MAX_FEE_GWEI
    assert sent[-1]["maxPriorityFeePerGas"] == int(1.5 * GWEI)
