"""A daemon's transaction stuck in a congested pool is replaced before its move deadline (same nonce, fees +12.5%),
against anvil on the real MobileNetV2.

The test mines by hand (`evm_mine`). Once the game starts, every block is filled by a transaction of another account
that pays more than the evaluator's fixed --max-fee (anvil orders its pool by fee): the evaluator's first reveal waits
in the pool while chain time runs towards its deadline. Within --replace-margin seconds of it the daemon re-signs
the reveal with the same nonce and fees 12.5% over the old ones and over the node's suggestion, which outbids the
congestion; the replacement is mined before the deadline and the original never is.
"""

from __future__ import annotations

import time

import pytest

from protocol.chain.connection import GWEI
from tests.test_ops_daemons import CHEAT_OP, _diag, _post, _pp
from tests.test_ops_helpers import anvil, dev_key, env, needs_anvil, wait_for  # noqa: F401

pytestmark = [needs_anvil, pytest.mark.anvil, pytest.mark.slow]

SPAM_MAX_FEE, SPAM_TIP = 21 * GWEI, 2 * GWEI
LOOP = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: an endless loop, a creation that burns all the gas it is given


def _spam(w3, acct, nonce: int) -> None:
    """Fill the next block with one transaction paying SPAM_MAX_FEE / SPAM_TIP."""
    limit = int(w3.eth.get_block("latest")["gasLimit"])
    tx = {"data": LOOP, "value": 0, "gas": limit, "nonce": nonce, "chainId": w3.eth.chain_id, "type": 2,
          "maxFeePerGas": SPAM_MAX_FEE, "maxPriorityFeePerGas": SPAM_TIP}
    w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)


def test_stuck_move_replaced_before_deadline(env, anvil):
    from eth_account import Account

    from protocol.inference.types import decode_game

    env.setup()
    w3, pp = _pp(env, anvil)
    evaluator = env.json("accounts", "list")[1]["address"]  # aliases sorted: challenger, evaluator, requester
    spammer = Account.from_key(dev_key(9))
    env.start("evaluator", "--cheat-op", CHEAT_OP, "--max-fee", "20", "--priority-fee", "0.1",
              "--replace-margin", "40")
    env.start("challenger")
    diag = _diag(env)
    _post(env)
    wait_for(lambda: pp.events.ResultSubmitted().get_logs(from_block=0), 120, "the cheating result", diag=diag)
    anvil.rpc("evm_setIntervalMining", [0])  # from here on the test mines
    nonce = w3.eth.get_transaction_count(spammer.address)
    t_end = time.monotonic() + 240
    revealed, congested = [], 0
    while not revealed and time.monotonic() < t_end:
        challenged = pp.events.Challenged().get_logs(from_block=0)
        if challenged:  # congestion: every block full, paying more than the evaluator's 20 gwei
            _spam(w3, spammer, nonce)
            nonce += 1
            congested += 1
            anvil.rpc("evm_increaseTime", [5])
        anvil.rpc("evm_mine", [])
        time.sleep(1.0)
        revealed = [lg for lg in pp.events.Revealed().get_logs(from_block=0)]
    assert revealed, "the evaluator's reveal was never mined\n" + diag()
    gid = int(challenged[0]["args"]["gameId"])
    started = pp.events.GameStarted().get_logs(from_block=0, argument_filters={"gameId": gid})
    deadline = int(started[0]["args"]["deadline"])
    lg = revealed[0]
    mined_at = int(w3.eth.get_block(lg["blockNumber"])["timestamp"])
    assert mined_at <= deadline, (mined_at, deadline)
    # it was stuck: blocks were mined without it, the last of them within the replacement margin
    assert congested >= 2
    replaced = [e for e in env.logs("evaluator") if e["event"] == "replaced"]
    assert replaced, diag()
    new = "0x" + bytes(lg["transactionHash"]).hex()
    assert new == replaced[-1]["tx"]
    t_new = w3.eth.get_transaction(new)
    first = replaced[0]["old"]
    assert w3.eth.get_transaction_receipt(new)["status"] == 1
    assert t_new["maxFeePerGas"] * 8 >= 20 * GWEI * 9 and t_new["maxFeePerGas"] <= 500 * GWEI
    assert t_new["maxPriorityFeePerGas"] * 8 >= SPAM_TIP * 9
    # the original never mined: its nonce is the replacement's
    from web3.exceptions import TransactionNotFound

    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction_receipt(first)
    assert replaced[0]["now"] >= replaced[0]["deadline"] - 40
    # the replacement was logged as sent (persisted before the broadcast) and the game went on
    sent = [e for e in env.logs("evaluator") if e["event"] == "sent"]
    assert new in [e["tx"] for e in sent]
    anvil.rpc("evm_setIntervalMining", [1])
    wait_for(lambda: decode_game(pp, pp.functions.game(gid).call()).turn.name == "CHALLENGER", 30,
             "the challenger's turn", diag=diag)
