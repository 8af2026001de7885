"""`pinpoint` commands of Argus anti-piracy campaigns (registered into `protocol.cli.main` by `register`).

    owner     pinpoint campaign create [--work PATH...] [--reward WEI --rho 1/3 --deposit WEI ...]
              pinpoint campaign license --campaign ADDR --licensee ID [--work PATH...] --out DELIVERY.json
    licensee  pinpoint license join --campaign ADDR
              pinpoint license accept DELIVERY.json [--out DIR]
              pinpoint appeal --campaign ADDR --licensee ID
    informer  pinpoint report commit PIRATED... --campaign ADDR
              pinpoint report reveal --campaign ADDR
              pinpoint report status [--campaign ADDR]
              pinpoint reward claim --campaign ADDR
    anyone    pinpoint campaign status --campaign ADDR
              pinpoint campaign set-guilty --campaign ADDR --licensee ID
              pinpoint campaign withdraw --campaign ADDR [--escrow]
    demo      pinpoint demo argus [--rpc-url URL] [--json]

The in-process chain lives inside one process, so every command but the demo needs a JSON-RPC node:
`--rpc-url` or $PINPOINT_RPC_URL (e.g. `node_modules/.bin/anvil`). Secrets (the owner's OT key and codes, a
licensee's OT choices, an informer's salt) are kept under $PINPOINT_HOME or ~/.pinpoint (files mode 0600).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

NEEDS_NODE = ("Needs a JSON-RPC node (--rpc-url or $PINPOINT_RPC_URL, e.g. anvil): the in-process chain lives only "
              "inside one process.")


def _chain(rpc_url: str | None, private_key: str | None):
    from protocol.chain.connection import Chain, ChainError

    if not rpc_url:
        _fail("this command needs --rpc-url (or $PINPOINT_RPC_URL): the in-process chain does not outlive one "
              "command; start a node, e.g. node_modules/.bin/anvil")
    try:
        return Chain(rpc_url, keys=[private_key] if private_key else None)
    except ChainError as e:
        _fail(str(e))


def _sender(chain, sender: str | None) -> str:
    from web3 import Web3

    if sender is None:
        return chain.accounts[0]
    if sender.isdigit():
        return chain.accounts[int(sender)]
    return Web3.to_checksum_address(sender)


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


def _common(f):
    f = click.option("--rpc-url", envvar="PINPOINT_RPC_URL", default=None, help="JSON-RPC node URL (required).")(f)
    f = click.option("--sender", default=None, help="account address, or index among the node's accounts "
                     "(default 0).")(f)
    f = click.option("--private-key", envvar="PINPOINT_PRIVATE_KEY", default=None,
                     help="hex private key to sign locally (else the node's unlocked accounts).")(f)
    f = click.option("--json", "as_json", is_flag=True, help="machine-readable output.")(f)
    return f


def _campaign_opt(f):
    return click.option("--campaign", "campaign", required=True, help="campaign contract address.")(f)


def _out(as_json: bool, data: dict, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def _run(fn):
    """Run a chain action, turning reverts and flow errors into a clean exit with the custom error name."""
    from protocol.campaign.flows import ArgusError
    from protocol.chain.connection import ChainError
    from offchain.campaign.ot import OTError
    from offchain.campaign.codes import CodeError

    try:
        return fn()
    except ChainError as e:
        _fail(f"{e.error or 'reverted'}: {e}")
    except (ArgusError, OTError, CodeError) as e:
        _fail(str(e))


def _work(paths: tuple) -> list:
    from protocol.campaign.flows import demo_work, image_files, load_image

    return [load_image(p) for p in image_files(list(paths))] if paths else demo_work()


def register(main: click.Group, demo: click.Group) -> None:
    """Add the `campaign`, `license`, `appeal`, `report`, `reward` commands and `demo argus`."""

    # ------------------------------------------------------------------------------------------------ campaign
    @main.group("campaign")
    def campaign() -> None:
        """Argus campaigns: create and license (owner); status, set-guilty, withdraw (anyone)."""

    @campaign.command("create")
    @_common
    @click.option("--work", "work", multiple=True, type=click.Path(path_type=Path, exists=True),
                  help="images (or a directory) of the work, one segment each; default: the 4 demo photos.")
    @click.option("--reward", type=int, default=10**17, show_default=True, help="R, wei per single report.")
    @click.option("--rho", default="1/3", show_default=True, help="decay num/den < 1/2.")
    @click.option("--deposit", type=int, default=3 * 10**17, show_default=True, help="D_L, wei (> R).")
    @click.option("--escrow", type=int, default=None, help="wei escrowed (default 3*(R + D_L)).")
    @click.option("--min-age", type=int, default=60, show_default=True, help="seconds.")
    @click.option("--collection-window", type=int, default=3600, show_default=True, help="seconds.")
    @click.option("--appeal-window", type=int, default=3600, show_default=True, help="seconds.")
    @click.option("--duration", type=int, default=30 * 86400, show_default=True, help="seconds.")
    @click.option("--watermark-key", default="argus-demo-watermark-key-0000000", show_default=True,
                  help="public watermark key (<= 32 bytes).")
    def create(rpc_url, sender, private_key, as_json, work, reward, rho, deposit, escrow, min_age,
               collection_window, appeal_window, duration, watermark_key) -> None:
        """Owner: deploy a campaign and keep the OT secret locally.  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from offchain.campaign import ot

        from protocol.campaign.flows import Campaign, Owner, Params

        ch = _chain(rpc_url, private_key)
        num, den = (int(v) for v in rho.split("/"))
        segs = _work(work)
        p = Params(reward, num, den, deposit, len(segs), min_age, collection_window, appeal_window, duration,
                   watermark_key.encode())
        owner = Owner(ot.OwnerKey.generate())
        camp, tx = _run(lambda: Campaign.create(ch, p, owner.key.A, escrow or 3 * (reward + deposit),
                                                sender=_sender(ch, sender)))
        path = owner.save(camp.address)
        _out(as_json, {"campaign": camp.address, "gas": tx.gas, "owner_state": str(path)},
             f"campaign {camp.address} ({len(segs)} segments; {tx.gas:,} gas); owner secrets in {path}")

    @campaign.command("license")
    @_common
    @_campaign_opt
    @click.option("--licensee", "lid", type=int, required=True)
    @click.option("--work", "work", multiple=True, type=click.Path(path_type=Path, exists=True))
    @click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="delivery file to write.")
    def license_(rpc_url, sender, private_key, as_json, campaign, lid, work, out) -> None:
        """Owner: fresh codes for a joined licensee, watermark both variants of every segment, commit the code
        hashes on chain and write the OT delivery (send that file to the licensee).  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign, Owner, owner_license, save_delivery

        ch = _chain(rpc_url, private_key)
        camp = Campaign(ch, campaign)
        owner = _run(lambda: Owner.load(camp.address))
        delivery, tx = _run(lambda: owner_license(camp, owner, lid, _work(work), _sender(ch, sender)))
        owner.save(camp.address)
        save_delivery(out, camp.address, lid, delivery)
        _out(as_json, {"licensee": lid, "gas": tx.gas, "delivery": str(out)},
             f"licensee {lid} licensed ({tx.gas:,} gas); delivery written to {out}")

    @campaign.command("status")
    @_common
    @_campaign_opt
    def status(rpc_url, sender, private_key, as_json, campaign) -> None:
        """Anyone: parameters, escrow and every licensee's status.  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign

        st = _run(lambda: Campaign(_chain(rpc_url, private_key), campaign).status())
        lines = [f"campaign {st['campaign']} owner {st['owner']}",
                 f"  R {st['reward_wei']} wei, rho {st['rho']}, D_L {st['deposit_wei']} wei, {st['segments']} "
                 f"segments; escrow {st['escrow_wei']} wei, balance {st['balance_wei']} wei"]
        for l in st["licensees"]:
            lines.append(f"  licensee {l['id']} {l['licensee']} {l['status']:<9} reports {l['reports']}")
        _out(as_json, st, "\n".join(lines))

    @campaign.command("set-guilty")
    @_common
    @_campaign_opt
    @click.option("--licensee", "lid", type=int, required=True)
    def set_guilty(rpc_url, sender, private_key, as_json, campaign, lid) -> None:
        """Anyone: declare an accused licensee guilty after its appeal window (its deposit is slashed).  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign

        ch = _chain(rpc_url, private_key)
        tx = _run(lambda: Campaign(ch, campaign).set_guilty(lid, _sender(ch, sender)))
        _out(as_json, {"licensee": lid, "gas": tx.gas}, f"licensee {lid} guilty ({tx.gas:,} gas)")

    @campaign.command("withdraw")
    @_common
    @_campaign_opt
    @click.option("--escrow", "escrow", is_flag=True, help="owner: the unreserved escrow after the end.")
    def withdraw(rpc_url, sender, private_key, as_json, campaign, escrow) -> None:
        """Anyone: withdraw one's credit (or, owner, --escrow).  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign

        ch = _chain(rpc_url, private_key)
        camp, who = Campaign(ch, campaign), _sender(ch, sender)
        tx = _run(lambda: camp.withdraw_escrow(who) if escrow else camp.withdraw(who))
        _out(as_json, {"gas": tx.gas}, f"withdrawn ({tx.gas:,} gas)")

    # ------------------------------------------------------------------------------------------------ licensee
    @main.group("license")
    def license_group() -> None:
        """Licensee: join a campaign and accept the delivered copy."""

    @license_group.command("join")
    @_common
    @_campaign_opt
    def join(rpc_url, sender, private_key, as_json, campaign) -> None:
        """Licensee: pay the deposit and publish the OT choice points (choices kept locally, 0600).  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign, licensee_join

        ch = _chain(rpc_url, private_key)
        lic, tx = _run(lambda: licensee_join(Campaign(ch, campaign), _sender(ch, sender)))
        _out(as_json, {"licensee": lic.id, "gas": tx.gas},
             f"joined as licensee {lic.id} ({tx.gas:,} gas); choices saved in {lic.path_for(lic.campaign, lic.id)}")

    @license_group.command("accept")
    @_common
    @click.argument("delivery", type=click.Path(path_type=Path, exists=True))
    @click.option("--out", "out", type=click.Path(path_type=Path), default=Path("licensed-copy"))
    @click.option("--no-watermark-check", is_flag=True, help="skip extracting each image's watermark.")
    def accept(rpc_url, sender, private_key, as_json, delivery, out, no_watermark_check) -> None:
        """Licensee: run the OT receiver on a delivery file, check every code against the owner's on-chain
        commitments (and the images' watermarks), write the images. On a cheating delivery prints the segment;
        `offchain.campaign.ot.prove_cheating` makes the proof.  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from offchain.campaign.ot import DeliveryError, prove_cheating

        from protocol.campaign.flows import Campaign, Licensee, licensee_accept, load_delivery

        addr, lid, dl = load_delivery(delivery)
        camp = Campaign(_chain(rpc_url, private_key), addr)
        lic = _run(lambda: Licensee.load(camp.address, lid))
        try:
            images = licensee_accept(camp, lic, dl, check_watermark=not no_watermark_check)
        except DeliveryError as e:
            proof = prove_cheating(lic.choice, dl, e.segment)
            _fail(f"cheating delivery: {e}; proof: segment {proof.segment}, sigma {proof.sigma}, "
                  f"b {hex(proof.b)}")
        from PIL import Image

        out.mkdir(parents=True, exist_ok=True)
        for j, img in enumerate(images):
            Image.fromarray(img).save(out / f"segment-{j}.png")
        _out(as_json, {"licensee": lid, "segments": len(images), "out": str(out)},
             f"accepted {len(images)} segments (codes match the commitments); written to {out}/")

    @main.command("appeal")
    @_common
    @_campaign_opt
    @click.option("--licensee", "lid", type=int, required=True)
    def appeal(rpc_url, sender, private_key, as_json, campaign, lid) -> None:
        """Licensee: open the OT choice of a segment whose reported variant is not the one received (appeal
        window: after the collection window).  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign, Licensee, appeal_segment

        ch = _chain(rpc_url, private_key)
        camp = Campaign(ch, campaign)
        lic = _run(lambda: Licensee.load(camp.address, lid))
        st = camp.license(lid)
        j = appeal_segment(lic, st.bits)
        if j is None:
            _fail("every reported variant is the one this licensee received: no appeal is possible")
        tx = _run(lambda: camp.appeal(lid, lic.choice, j, _sender(ch, sender)))
        _out(as_json, {"licensee": lid, "segment": j, "gas": tx.gas},
             f"appeal won on segment {j} ({tx.gas:,} gas): licensee {lid} cleared")

    # ------------------------------------------------------------------------------------------------ informer
    @main.group("report")
    def report() -> None:
        """Informer: report a pirated copy by commit and reveal."""

    @report.command("commit")
    @_common
    @_campaign_opt
    @click.argument("pirated", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
    def commit(rpc_url, sender, private_key, as_json, campaign, pirated) -> None:
        """Extract the watermark of PIRATED (image files or a directory), find the licensee in the campaign's
        index, save the salt (0600) and commit. Reveal after the minimum age.  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign, extract_codes, image_files, informer_commit, load_image, prepare_report

        ch = _chain(rpc_url, private_key)
        camp = Campaign(ch, campaign)
        who = _sender(ch, sender)
        images = [load_image(p) for p in _run(lambda: image_files(list(pirated)))]
        codes = _run(lambda: extract_codes(images, camp.params().watermark_key))
        rep = _run(lambda: prepare_report(camp, codes, who))
        tx = _run(lambda: informer_commit(camp, rep))
        _out(as_json, {"commitment": rep.commitment.hex(), "licensee": rep.id, "gas": tx.gas,
                       "state": str(rep.path())},
             f"committed {rep.commitment.hex()} (licensee {rep.id}; {tx.gas:,} gas); state in {rep.path()}")

    def _mine(campaign: str, who: str, stage: str):
        from protocol.campaign.flows import InformerReport

        reps = [r for r in InformerReport.all(campaign) if r.informer.lower() == who.lower()]
        return [r for r in reps if (stage == "reveal" and not r.revealed_tx)
                or (stage == "claim" and r.revealed_tx and not r.claimed_tx)]

    @report.command("reveal")
    @_common
    @_campaign_opt
    def reveal(rpc_url, sender, private_key, as_json, campaign) -> None:
        """Reveal this sender's saved, unrevealed reports of the campaign.  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign, informer_reveal

        ch = _chain(rpc_url, private_key)
        camp = Campaign(ch, campaign)
        reps = _mine(camp.address, _sender(ch, sender), "reveal")
        if not reps:
            _fail("no unrevealed report saved for this sender and campaign")
        out = []
        for rep in reps:
            tx = _run(lambda: informer_reveal(camp, rep))
            out.append({"commitment": rep.commitment.hex(), "licensee": rep.id, "gas": tx.gas})
        _out(as_json, {"revealed": out},
             "\n".join(f"revealed {o['commitment'][:16]}... licensee {o['licensee']} ({o['gas']:,} gas)" for o in out))

    @report.command("status")
    @_common
    @click.option("--campaign", "campaign", default=None)
    def report_status(rpc_url, sender, private_key, as_json, campaign) -> None:
        """The saved reports (all senders) and their on-chain state.  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign, InformerReport

        ch = _chain(rpc_url, private_key)
        rows = []
        for rep in InformerReport.all(campaign):
            camp = Campaign(ch, rep.campaign)
            st = camp.license(rep.id)
            state = "claimed" if rep.claimed_tx else "revealed" if rep.revealed_tx else "committed"
            rows.append({"campaign": rep.campaign, "informer": rep.informer, "commitment": rep.commitment.hex(),
                         "licensee": rep.id, "state": state, "licensee_status": st.status, "reports": st.reports,
                         "reward_wei": camp.reward_for(st.reports) if rep.revealed_tx else 0})
        _out(as_json, {"reports": rows}, "\n".join(
            f"{r['commitment'][:16]}... {r['informer'][:10]} licensee {r['licensee']} {r['state']:<9} "
            f"({r['licensee_status']}, n = {r['reports']}, f(n) = {r['reward_wei']} wei)" for r in rows)
            or "no saved reports")

    @main.group("reward")
    def reward_group() -> None:
        """Informer: claim rewards."""

    @reward_group.command("claim")
    @_common
    @_campaign_opt
    def claim(rpc_url, sender, private_key, as_json, campaign) -> None:
        """Claim f(n) for this sender's revealed reports once their collection window has closed.  Needs --rpc-url (a JSON-RPC node such as anvil): the in-process chain lives only inside one process."""
        from protocol.campaign.flows import Campaign, informer_claim

        ch = _chain(rpc_url, private_key)
        camp = Campaign(ch, campaign)
        reps = _mine(camp.address, _sender(ch, sender), "claim")
        if not reps:
            _fail("no revealed, unclaimed report saved for this sender and campaign")
        out = []
        for rep in reps:
            n = camp.license(rep.id).reports
            tx = _run(lambda: informer_claim(camp, rep))
            out.append({"licensee": rep.id, "reward_wei": camp.reward_for(n), "gas": tx.gas})
        _out(as_json, {"claimed": out},
             "\n".join(f"claimed {o['reward_wei']} wei (licensee {o['licensee']}; {o['gas']:,} gas)" for o in out))

    # ------------------------------------------------------------------------------------------------ demo
    @demo.command("argus")
    @click.option("--rpc-url", default=None, help="JSON-RPC node (e.g. anvil); default: the in-process chain.")
    @click.option("--json", "as_json", is_flag=True, help="print the steps, gas per call and balances as JSON.")
    def demo_argus(rpc_url, as_json) -> None:
        """Argus: a work of 4 photos licensed to three licensees; a leak, re-encoded, resized and cropped;
        informers (a copied commitment, a late one, a Sybil pair) paid by f(n); the leaker slashed; a licensee
        framed by the owner wins its appeal. Every step with its gas, then the balances."""
        import os
        import tempfile

        from rich.console import Console

        from protocol.campaign.flows import run_demo

        os.environ.setdefault("PINPOINT_HOME", tempfile.mkdtemp(prefix="pinpoint-argus-demo-"))
        con = Console(highlight=False, width=150)
        rec = run_demo(rpc_url, log=None if as_json else con.print)
        if as_json:
            click.echo(json.dumps(rec, indent=2))
