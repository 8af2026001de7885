"""The operator's manual commands against anvil: task cancel, credits, withdraw, games show/timeout/list, and the
early refusal of an unfunded account (naming it)."""

from __future__ import annotations

import pytest

from tests.test_ops_helpers import IMAGE, MODEL, anvil, env, needs_anvil  # noqa: F401

pytestmark = [needs_anvil, pytest.mark.anvil, pytest.mark.slow]
FEE = 10**15


def test_cancel_credits_withdraw_and_refusals(env):
    env.setup()
    net = ("--network", "local", "--rpc-url", env.rpc)
    post = env.json("task", "post", *net, "--account", "requester", "--model", MODEL, "--input", IMAGE, "--fee", FEE)
    tid = post["task_id"]
    requester = post["requester"] if "requester" in post else env.json("task", "status", tid, *net)["requester"]
    # only the requester cancels; the fee is credited back, then withdrawn
    r = env.cli("task", "cancel", tid, *net, "--account", "evaluator", check=False)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    c = env.json("task", "cancel", tid, *net, "--account", "requester")
    assert c["credit"] == FEE
    assert env.json("task", "status", tid, *net)["status"] == "cancelled"
    cr = {x["address"]: x for x in env.json("credits", *net)}
    assert cr[requester]["credit"] == FEE and len(cr) == 3  # every keystore
    balance = cr[requester]["balance"]
    w = env.json("withdraw", *net, "--account", "requester")
    assert w["amount"] == FEE and w["tx"].startswith("0x")
    after = env.json("credits", "requester", *net)[0]
    assert after["credit"] == 0 and balance < after["balance"] <= balance + FEE
    assert env.json("withdraw", *net, "--account", "requester")["amount"] == 0  # nothing more, nothing sent
    # a game that does not exist: a clear error, no traceback
    for args in (("games", "show", "0"), ("games", "timeout", "0", "--account", "requester")):
        r = env.cli(*args, *net, check=False)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert env.cli("games", "list", *net).stdout.splitlines()[0].split()[:8] == \
        ["game", "task", "challenger", "phase", "turn", "bond", "(wei)", "left"]


def test_unfunded_account_is_named(env):
    env.setup()
    env.cli("accounts", "import", "pauper", "--key-stdin", input="0x" + "77" * 32 + "\n")
    net = ("--network", "local", "--rpc-url", env.rpc)
    r = env.cli("task", "post", *net, "--account", "pauper", "--model", MODEL, "--input", IMAGE, "--fee", FEE,
                check=False)
    assert r.returncode == 2 and "has 0 wei" in r.stderr and "pinpoint fund" in r.stderr
