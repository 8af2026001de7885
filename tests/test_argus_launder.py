"""Issue 11, item 5 (laundering), protocol side: the owner's secret watermark key. A licensee holds the public key
and overwrites the public layer of its own copy (`offchain.campaign.attacks.launder`): informers then find no
licensee in it. The owner, holding the secret key whose commitment the campaign stored at creation, extracts the
secret layer and reports the copy through the ordinary commit/reveal (`pinpoint campaign trace`), earning what any
informer earns; its owner payoff is unchanged. Also: the key is saved (0600) before the deployment is sent, a crash
in between loses nothing, and a key that does not match the commitment is refused."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from offchain.campaign.secret import commitment as secret_key_commitment
from protocol.campaign.binding import ArgusError, Campaign
from tests.test_argus_contract import P, World
from tests.test_argus_contract import _home  # noqa: F401  (autouse: PINPOINT_HOME in a temporary directory)
from tests.test_argus_payoffs import Ledger, _end, _report, f

ROOT = Path(__file__).resolve().parents[1]
R, D = P.reward, P.deposit


def test_owner_as_informer_earns_what_any_informer_earns():
    """The owner reporting (e.g. a laundered copy it alone can trace) is one more informer: f(n) per report from
    the licence's R, nothing from its owner side, which stays D_L - R on a guilty verdict whatever n. Row by row,
    to the last wei: the owner alone (n = 1: owner D_L - R, informer R), the owner and an honest informer (n = 2:
    each f(2), R - 2 f(2) burned), and the same two reports by two outsiders (the owner's total is then exactly
    f(2) less: its informer reward, nothing else)."""
    totals = {}
    for case, informers in (("owner alone", ["owner"]), ("owner + honest", ["owner", 5]), ("outsiders", [6, 5])):
        w = World(k=1, escrow=R + D)
        L = Ledger(w)
        accts = [w.owner if a == "owner" else w.A[a] for a in informers]
        _report(w, L, accts, 0)
        w.ch.advance(P.appeal_window)
        L(w.camp.set_guilty(0, w.A[9]))
        _end(w, L)
        n = len(accts)
        exp = {w.owner: (R + D) + (D - R)}
        for a in accts:
            exp[a] = exp.get(a, 0) + f(n)
        L.check(exp, R - n * f(n))
        totals[case] = exp[w.owner]
    # net of its escrow R + D_L (returned): alone it gets D_L - R as owner and R = f(1) as informer
    assert totals["owner alone"] - (R + D) == D and totals["owner + honest"] - totals["outsiders"] == f(2)


def test_secret_key_saved_before_deploying_and_checked_against_the_commitment(monkeypatch):
    """`owner_create` writes the OT key and the secret key (0600) before the deployment is sent; after a crash
    once it was mined, `recover_owner` finds the pending file by the campaign's OT key. The campaign holds only the
    key's commitment; a saved key that does not match it is refused."""
    from protocol.campaign import owner as owner_mod
    from protocol.campaign.owner import Owner, owner_create, recover_owner
    from protocol.campaign.storage import state_dir

    w = World(k=0)
    real = Owner.save

    def crash(self, campaign):
        raise KeyboardInterrupt  # the process dies after the deployment was mined, before the state is renamed

    monkeypatch.setattr(Owner, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        owner_create(w.ch, P, R + D, w.owner, b"k" * 32)
    monkeypatch.setattr(Owner, "save", real)
    pending = list(state_dir().glob("owner-pending-*.json"))
    assert len(pending) == 1 and stat.S_IMODE(pending[0].stat().st_mode) == 0o600
    assert json.loads(pending[0].read_text())["secret_key"] == (b"k" * 32).hex()
    last = w.ch.w3.eth.get_block("latest")["transactions"][-1]  # the deployment, mined before the crash
    camp = Campaign(w.ch, w.ch.w3.eth.get_transaction_receipt(last)["contractAddress"])
    assert camp.params().secret_key_commitment == secret_key_commitment(b"k" * 32)
    owner = recover_owner(camp)
    assert owner.secret_key == b"k" * 32 and not list(state_dir().glob("owner-pending-*.json"))
    assert stat.S_IMODE(Owner.path_for(camp.address).stat().st_mode) == 0o600
    # a key that is not the committed one (a file edited after the fact) is refused
    owner.secret_key = b"j" * 32
    owner.save(camp.address)
    with pytest.raises(ArgusError, match="does not match"):
        recover_owner(camp)
    # without a secret layer: commitment 0, and tracing is refused
    camp2, owner2, _ = owner_create(w.ch, P, R + D, w.owner, secret_layer=False)
    assert camp2.params().secret_key_commitment == bytes(32) and owner2.secret_key is None
    with pytest.raises(ArgusError, match="no secret watermark layer"):
        owner_mod.owner_trace(camp2, owner2, [], w.owner)


def test_cli_trace_reports_a_laundered_copy(anvil, tmp_path, monkeypatch):
    """On anvil through the CLI: a licensee launders the public layer of its copy (a random code re-embedded with
    the public key, then JPEG q80); an informer's `report commit` finds no licensee in it; the owner's `campaign
    trace` reads the secret layer, commits the report like an informer, reveals it with `report reveal`, claims
    f(1) = R with `reward claim`; the licensee is slashed and the owner's share is D_L - R, as for any report."""
    from click.testing import CliRunner

    from offchain.campaign.attacks import jpeg, launder
    from offchain.campaign.codes import CODE_BYTES
    from protocol.chain.connection import Chain
    from protocol.cli.main import main
    from protocol.operations.accounts import import_key
    from tests.test_ops_helpers import PASS, dev_key

    def run(args, expect=0):
        r = CliRunner().invoke(main, args, catch_exceptions=False)
        assert r.exit_code == expect, r.output
        return r.output

    home = tmp_path / "home"
    monkeypatch.setenv("PINPOINT_HOME", str(home))
    monkeypatch.setenv("PINPOINT_PASSPHRASE", PASS)
    monkeypatch.setenv("PINPOINT_RPC_URL", anvil)
    for var in ("PINPOINT_ACCOUNT", "PINPOINT_NETWORK"):
        monkeypatch.delenv(var, raising=False)
    for i, alias in ((1, "licensee"), (4, "informer"), (7, "carol")):
        import_key(alias, dev_key(i), PASS)
    work = tmp_path / "work"
    work.mkdir()
    for n in ("kitten.png", "fish.png"):
        shutil.copy(ROOT / "offchain" / "assets" / n, work / n)
    for n in ("pelican.jpeg", "bald_eagle.jpeg"):
        Image.open(ROOT / "offchain" / "assets" / n).convert("RGB").resize((320, 240)).save(work / (n + ".png"))
    made = json.loads(run(["campaign", "create", "--work", str(work), "--json"]))
    camp = made["campaign"]
    ch = Chain(anvil)
    c = Campaign(ch, camp)
    saved = json.loads((home / "argus" / f"owner-{camp.lower()}.json").read_text())
    sk = bytes.fromhex(saved["secret_key"])
    assert len(sk) == 32 and c.params().secret_key_commitment == secret_key_commitment(sk)
    assert made["secret_key_commitment"] == "0x" + secret_key_commitment(sk).hex()
    lid = json.loads(run(["license", "join", "--campaign", camp, "--account", "licensee", "--json"]))["licensee"]
    run(["campaign", "license", "--campaign", camp, "--licensee", str(lid), "--work", str(work), "--out",
         str(tmp_path / "delivery.json")])
    copy = tmp_path / "copy"
    run(["license", "accept", str(tmp_path / "delivery.json"), "--out", str(copy), "--account", "licensee"])
    # the licensee launders the public layer of its copy before leaking it
    key = c.params().watermark_key
    laundered = tmp_path / "laundered"
    laundered.mkdir()
    for j, f_ in enumerate(sorted(copy.iterdir())):
        img = np.asarray(Image.open(f_).convert("RGB"))
        Image.fromarray(jpeg(launder(img, key, seed=j, code_bytes=CODE_BYTES), 80)).save(laundered / f"{j}.jpg")
    err = run(["report", "commit", str(laundered), "--campaign", camp, "--account", "informer"], expect=2)
    assert "fewer than 3 segments" in err or "no watermark found" in err  # no licensee's code in the public layer
    traced = json.loads(run(["campaign", "trace", str(laundered), "--campaign", camp, "--json"]))
    assert traced["licensee"] == lid and len(traced["segments"]) == 3
    assert stat.S_IMODE(Path(traced["state"]).stat().st_mode) == 0o600
    # once the owner discloses its key, anyone checks it against the commitment and repeats the detection
    from protocol.campaign.informer import audit_trace

    images = [np.asarray(Image.open(p_).convert("RGB")) for p_ in sorted(laundered.iterdir())]
    assert [loc.id for loc in audit_trace(c, sk, images)] == [lid]
    with pytest.raises(ArgusError, match="not the secret key"):
        audit_trace(c, bytes(32), images)
    ch.advance(P.min_age + 1)
    assert "revealed" in run(["report", "reveal", "--campaign", camp])
    assert c.license(lid).status.label == "Accused" and c.license(lid).reports == 1
    ch.advance(P.collection_window + 1)
    claimed = json.loads(run(["reward", "claim", "--campaign", camp, "--json"]))["claimed"]
    assert [x["reward_wei"] for x in claimed] == [R]  # f(1), as any single informer
    ch.advance(P.appeal_window + 1)
    run(["campaign", "set-guilty", "--campaign", camp, "--licensee", str(lid), "--account", "carol"])
    assert c.credit(ch.accounts[0]) == D - R  # the owner's share, whatever the number of reports
