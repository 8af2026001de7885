"""The Argus CLI flow end to end against a real node (anvil from node_modules, started here; skipped if
missing), through click's CliRunner: owner, licensee and informer commands in separate invocations, each identity
a keystore (anvil's dev keys imported under a temporary PINPOINT_HOME) chosen by --account."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _run(args, expect=0):
    from protocol.cli.main import main

    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == expect, r.output
    return r.output


def test_cli_flow(anvil, tmp_path, monkeypatch):
    from offchain.campaign.attacks import jpeg, resize
    from protocol.chain.connection import Chain
    from protocol.operations.accounts import import_key
    from tests.test_ops_helpers import PASS, dev_key

    monkeypatch.setenv("PINPOINT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PINPOINT_PASSPHRASE", PASS)
    monkeypatch.setenv("PINPOINT_RPC_URL", anvil)
    monkeypatch.delenv("PINPOINT_ACCOUNT", raising=False)
    monkeypatch.delenv("PINPOINT_NETWORK", raising=False)
    for i, alias in ((1, "licensee"), (4, "informer"), (7, "carol")):
        import_key(alias, dev_key(i), PASS)
    work = tmp_path / "work"
    work.mkdir()
    for n in ("kitten.png", "fish.png"):
        shutil.copy(ROOT / "offchain" / "assets" / n, work / n)
    for n in ("pelican.jpeg", "bald_eagle.jpeg"):  # 4 segments (the floor), at most 320 px wide
        Image.open(ROOT / "offchain" / "assets" / n).convert("RGB").resize((320, 240)).save(work / (n + ".png"))
    out = json.loads(_run(["campaign", "create", "--work", str(work), "--min-age", "60", "--collection-window",
                           "3600", "--appeal-window", "86400", "--json"]))
    camp = out["campaign"]
    owner_file = tmp_path / "home" / "argus" / f"owner-{camp.lower()}.json"
    assert stat.S_IMODE(owner_file.stat().st_mode) == 0o600
    # the licensee's client refuses a campaign outside the safe parameters (e.g. one deployed by older code)
    from protocol.campaign.binding import Campaign, Params

    with monkeypatch.context() as m:
        m.setattr(Campaign, "params", lambda self: Params(appeal_window=0))
        err = _run(["license", "join", "--campaign", camp, "--account", "licensee"], expect=2)
    assert err.startswith("error: campaign outside the safe parameters") and "appeal window 0 s" in err
    # a crash (here Ctrl-C) right after the join was mined, before the licence file was written: nothing is lost,
    # `license status` finds the join on chain by its choice points and saves the file under its id
    from protocol.campaign.licensee import Licensee

    with monkeypatch.context() as m:
        def crash(self):
            raise KeyboardInterrupt

        m.setattr(Licensee, "save", crash)
        _run(["license", "join", "--campaign", camp, "--account", "licensee"], expect=1)
    assert not list((tmp_path / "home" / "argus").glob(f"licensee-{camp.lower()}-0.json"))
    st = json.loads(_run(["license", "status", "--campaign", camp, "--json"]))
    assert st["recovered"] == [0] and st["pending"] == [] and st["licensees"][0]["status"] == "Joined"
    lid = st["licensees"][0]["licensee"]
    assert stat.S_IMODE(Path(st["licensees"][0]["file"]).stat().st_mode) == 0o600
    delivery = tmp_path / "delivery.json"
    _run(["campaign", "license", "--campaign", camp, "--licensee", str(lid), "--work", str(work), "--out",
          str(delivery)])
    copy = tmp_path / "copy"
    _run(["license", "accept", str(delivery), "--out", str(copy)])
    assert {stat.S_IMODE(f.stat().st_mode) for f in copy.iterdir()} == {0o600}  # the licensed copy is private
    # the licensee leaks; the pirate re-encodes and resizes
    pirated = tmp_path / "pirated"
    pirated.mkdir()
    for f in sorted(copy.iterdir()):
        img = np.asarray(Image.open(f).convert("RGB"))
        Image.fromarray(jpeg(resize(img, 0.7), 70)).save(pirated / (f.stem + ".jpg"))
    rec = json.loads(_run(["report", "commit", str(pirated), "--campaign", camp, "--account", "informer", "--json"]))
    assert rec["licensee"] == lid
    assert stat.S_IMODE(Path(rec["state"]).stat().st_mode) == 0o600
    # a second commitment of the same copy (it counts, like a second identity: 2*f(2) < f(1)) and a report saved
    # but never
    # committed (a crash before the commit was mined), named so that it comes first: the old client stopped there
    _run(["report", "commit", str(pirated), "--campaign", camp, "--account", "informer"])
    from offchain.campaign.codes import commitment
    from protocol.campaign.informer import InformerReport

    saved = InformerReport.all(camp)
    first = min(r.commitment for r in saved)
    a = saved[0]
    salt = 0
    while True:
        c = commitment(a.informer, a.located.blob, salt.to_bytes(32, "big"))
        if c < first:
            break
        salt += 1
    InformerReport(a.campaign, a.informer, a.id, a.mask, a.bits, a.items, a.proof, salt.to_bytes(32, "big"), c).save()
    err = _run(["report", "reveal", "--campaign", camp, "--account", "informer"], expect=2)
    assert err.count("CommitmentTooYoung") == 2 and "never mined" in err
    ch = Chain(anvil)
    ch.advance(61)
    err = _run(["report", "reveal", "--campaign", camp, "--account", "informer"], expect=2)
    assert err.count("revealed") == 2 and "never mined" in err  # each report on its own
    st = json.loads(_run(["report", "status", "--campaign", camp, "--json"]))["reports"]
    revealed = [r for r in st if r["state"] == "revealed"]
    assert len(revealed) == 2 and revealed[0]["licensee_status"] == "Accused" and revealed[0]["reports"] == 2
    # a crash right after a reveal was mined: the file never learnt it; the chain (`commitmentOf`) says so
    path = next(p for p in (tmp_path / "home" / "argus").glob("report-*.json")
                if json.loads(p.read_text())["revealed_tx"])
    d = json.loads(path.read_text())
    d["revealed_tx"] = None
    path.write_text(json.dumps(d))
    assert "RewardNotFinal" in _run(["reward", "claim", "--campaign", camp, "--account", "informer"], expect=2)
    ch.advance(3601)
    before = ch.balance(ch.accounts[4])
    claimed = json.loads(_run(["reward", "claim", "--campaign", camp, "--account", "informer", "--json"]))["claimed"]
    assert [c["reward_wei"] for c in claimed] == [10**17 // 3] * 2 and ch.balance(ch.accounts[4]) > before
    # the real leaker has no segment to appeal on
    assert "no appeal is possible" in _run(["appeal", "--campaign", camp, "--licensee", str(lid), "--account", "licensee"],
                                           expect=2)
    assert "AppealWindowOpen" in _run(["campaign", "set-guilty", "--campaign", camp, "--licensee", str(lid)],
                                      expect=2)
    text = _run(["campaign", "status", "--campaign", camp])
    assert "parameters: SAFE" in text and "appeal window 86400 s (86400..2592000)" in text
    assert "collection window 0 s left, appeal window 86399 s left" in text or "appeal window 8639" in text
    ch.advance(86401)
    _run(["campaign", "set-guilty", "--campaign", camp, "--licensee", str(lid), "--account", "carol"])
    status = json.loads(_run(["campaign", "status", "--campaign", camp, "--json"]))
    assert status["licensees"][0]["status"] == "Guilty" and status["violations"] == []
    assert status["licensees"][0]["appeal_left_s"] == 0 and status["chain_bounds"][10] == 86400
    _run(["campaign", "withdraw", "--campaign", camp])  # the owner's share of the slashed deposit


def test_cli_needs_a_node(tmp_path, monkeypatch):
    """Without --rpc-url or --network the "local" network is used; no node there is a clean user error."""
    from protocol.chain.anvil import free_port

    url = f"http://127.0.0.1:{free_port()}"
    nets = tmp_path / "networks.toml"
    nets.write_text(f'[networks.local]\nrpc_url = "{url}"\nchain_id = 31337\n')
    monkeypatch.setenv("PINPOINT_HOME", str(tmp_path))
    monkeypatch.setenv("PINPOINT_NETWORKS", str(nets))
    for var in ("PINPOINT_RPC_URL", "PINPOINT_NETWORK", "PINPOINT_ACCOUNT"):
        monkeypatch.delenv(var, raising=False)
    err = _run(["campaign", "status", "--campaign", "0x" + "00" * 20], expect=2)
    assert err.startswith("error: ") and "cannot reach" in err and url in err
    assert "--private-key" in _run(["campaign", "status", "--private-key", "0x" + "11" * 32], expect=2)


def test_demo_argus_json(tmp_path, monkeypatch):
    """The embedded demo on the in-process chain: the story's outcomes and every wei accounted for."""
    monkeypatch.setenv("PINPOINT_HOME", str(tmp_path))
    rec = json.loads(_run(["demo", "argus", "--json"]))
    assert rec["every_wei_accounted"] is True
    reverted = {(s["who"], s.get("reverted")) for s in rec["steps"] if s.get("reverted")}
    assert reverted == {("mallory", "UnknownCommitment"), ("carol", "CommitmentTooLate"),
                        ("alice", "AlreadyClaimed"), ("licensee0", "BadOpening")}
    n = rec["reports_of_leak"]
    assert n == 4 and rec["reward_per_report_wei"] == 10**17 // 27
    # the Sybil pair (two identities) earned less than one identity would have among n - 1 reports
    assert 2 * rec["reward_per_report_wei"] < 10**17 // 9
    paid = {k: int(v) for k, v in rec["paid_by_campaign"].items()}
    assert paid["licensee2"] == 2 * 3 * 10**17 and paid["licensee0"] == 0 and paid["licensee1"] == 3 * 10**17
    assert all(s["gas"] > 0 for s in rec["steps"] if not s.get("reverted") and "accept" not in s["what"])
    assert rec["report_gas"] <= 147_000
