"""`pinpoint` commands of Argus anti-piracy campaigns (registered into `protocol.cli.main` by `register`).

    owner     pinpoint campaign create [--work PATH...] [--reward WEI --rho 1/3 --deposit WEI ...]
                                       [--secret-key HEX | --no-secret-layer]
              pinpoint campaign license --campaign ADDR --licensee ID [--work PATH...] --out DELIVERY.json
              pinpoint campaign trace COPY... --campaign ADDR [--every-segment]   (secret layer; then report reveal)
    licensee  pinpoint license join --campaign ADDR
              pinpoint license accept DELIVERY.json [--out DIR]
              pinpoint license status --campaign ADDR
              pinpoint appeal --campaign ADDR --licensee ID
    informer  pinpoint report commit PIRATED... --campaign ADDR [--every-segment]
              pinpoint report reveal --campaign ADDR
              pinpoint report status [--campaign ADDR]
              pinpoint reward claim --campaign ADDR
    anyone    pinpoint campaign status --campaign ADDR
              pinpoint campaign set-guilty --campaign ADDR --licensee ID
              pinpoint campaign withdraw --campaign ADDR [--escrow]
    demo      pinpoint demo argus [--rpc-url URL] [--json]

Every command but the demo takes the shared options of `protocol.cli.options` (--network, --rpc-url, --account,
--deployments, --json, with their environment variables) and talks to a JSON-RPC node: with neither --rpc-url nor
--network, the "local" network of deploy/networks.toml (127.0.0.1:8545, e.g. `pinpoint chain`); the in-process
chain lives only inside one process. The keystore alias given by --account ($PINPOINT_ACCOUNT) signs; without it,
the node's first unlocked account (anvil). Secrets (the owner's OT key, secret watermark key and codes, a
licensee's OT choices, an informer's salt) are kept under $PINPOINT_HOME or ~/.pinpoint (files mode 0600). A user error prints
``error: ...`` and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from protocol.cli.options import ChainOptions, chain_options, fail, handle_errors, out


def _connect(opts: ChainOptions):
    """(Chain, sender): the node of the shared options and the address that signs (--account, else the node's
    first unlocked account)."""
    _, ch = opts.connect()
    return ch, ch.accounts[0]


def _campaign_opt(f):
    return click.option("--campaign", "campaign", required=True, help="campaign contract address.")(f)


def _work(paths: tuple) -> list:
    from protocol.campaign.demo import demo_work
    from protocol.campaign.storage import image_files, load_image

    return [load_image(p) for p in image_files(list(paths))] if paths else demo_work()


def _secret_key(text: str | None, off: bool) -> bytes | None:
    """The --secret-key bytes (None: generate one, or none with --no-secret-layer); user errors exit 2."""
    try:
        sk = bytes.fromhex(text.removeprefix("0x")) if text is not None else None
    except ValueError:
        sk = b""
    if sk is not None and (not sk or off):
        fail("--secret-key must be non-empty hex, and not given with --no-secret-layer")
    return sk


def _commit_all(opts, camp, reps: list, prefix: str) -> None:
    """Commit each report (`protocol.campaign.informer.informer_commit`: state saved 0600 first) and print them."""
    from protocol.campaign.informer import informer_commit

    rows = [{"commitment": r.commitment.hex(), "licensee": r.id, "segments": r.located.segments,
             "gas": informer_commit(camp, r).gas, "state": str(r.path())} for r in reps]
    out({**rows[0], "reports": rows}, opts.as_json, "\n".join(
        f"{prefix}committed {r['commitment']} (licensee {r['licensee']}, segments {r['segments']}; {r['gas']:,} gas)"
        f"; state in {r['state']}" for r in rows))


def _report_outcome(opts, key: str, done: list, errors: list, line, none: str) -> None:
    """Print what was done; then, if any report failed, every failure as ``error: ...`` (exit 2)."""
    if not done and not errors:
        fail(none)
    if done:
        out({key: done, "errors": errors}, opts.as_json, "\n".join(line(o) for o in done))
    if errors:
        fail("\n".join(errors))


def register(main: click.Group, demo: click.Group) -> None:
    """Add the `campaign`, `license`, `appeal`, `report`, `reward` commands and `demo argus`."""

    # ------------------------------------------------------------------------------------------------ campaign
    @main.group("campaign")
    def campaign() -> None:
        """Argus campaigns: create and license (owner); status, set-guilty, withdraw (anyone)."""

    @campaign.command("create")
    @chain_options
    @click.option("--work", "work", multiple=True, type=click.Path(path_type=Path, exists=True),
                  help="images (or a directory) of the work, one segment each; default: the 4 demo photos.")
    @click.option("--reward", type=int, default=10**17, show_default=True, help="R, wei per single report.")
    @click.option("--rho", default="1/3", show_default=True, help="decay num/den < 1/2.")
    @click.option("--deposit", type=int, default=3 * 10**17, show_default=True, help="D_L, wei (> R).")
    @click.option("--escrow", type=int, default=None, help="wei escrowed (default 3*(R + D_L)).")
    @click.option("--min-age", type=int, default=60, show_default=True, help="seconds.")
    @click.option("--collection-window", type=int, default=3600, show_default=True, help="seconds.")
    @click.option("--appeal-window", type=int, default=86400, show_default=True, help="seconds.")
    @click.option("--duration", type=int, default=30 * 86400, show_default=True, help="seconds.")
    @click.option("--watermark-key", default="argus-demo-watermark-key-0000000", show_default=True,
                  help="public watermark key (<= 32 bytes).")
    @click.option("--quorum", type=int, default=3, show_default=True,
                  help="k: segments a report opens (3..S; framing by guessing succeeds with 2^-k when m = 1).")
    @click.option("--appeal-quorum", type=int, default=1, show_default=True,
                  help="m: differing segments an appeal opens (repudiation costs ~m * 2^128 keccaks).")
    @click.option("--secret-key", default=None,
                  help="secret watermark key (hex); default: 32 random bytes. Only its commitment goes on chain.")
    @click.option("--no-secret-layer", is_flag=True,
                  help="no secret watermark layer (laundered copies then cannot be traced).")
    def create(opts, work, reward, rho, deposit, escrow, min_age, collection_window, appeal_window, duration,
               watermark_key, quorum, appeal_quorum, secret_key, no_secret_layer) -> None:
        """Owner: deploy a campaign and keep the OT secret and the secret watermark key locally (0600, saved
        before the deployment is sent); the campaign stores only the secret key's commitment."""
        from protocol.campaign.binding import Params
        from protocol.campaign.owner import owner_create

        ch, me = _connect(opts)
        try:
            num, den = (int(v) for v in rho.split("/"))
        except ValueError:
            fail(f"--rho must be NUM/DEN, got {rho!r}")
        sk = _secret_key(secret_key, no_secret_layer)
        segs = _work(work)
        p = Params(reward, num, den, deposit, len(segs), min_age, collection_window, appeal_window, duration,
                   watermark_key.encode(), quorum, appeal_quorum)
        camp, owner, tx = owner_create(ch, p, escrow or 3 * (reward + deposit), me, sk, not no_secret_layer)
        path = owner.path(camp.address)
        commit_hex = "0x" + owner.secret_commitment.hex()
        out({"campaign": camp.address, "gas": tx.gas, "owner_state": str(path),
             "secret_key_commitment": commit_hex}, opts.as_json,
            f"campaign {camp.address} ({len(segs)} segments; {tx.gas:,} gas); owner secrets in {path}; "
            f"secret-key commitment {commit_hex}")

    @campaign.command("license")
    @chain_options
    @_campaign_opt
    @click.option("--licensee", "lid", type=int, required=True)
    @click.option("--work", "work", multiple=True, type=click.Path(path_type=Path, exists=True))
    @click.option("--out", "out_path", type=click.Path(path_type=Path), required=True, help="delivery file to write.")
    def license_(opts, campaign, lid, work, out_path) -> None:
        """Owner: fresh codes for a joined licensee, watermark both variants of every segment, commit the code
        hashes on chain and write the OT delivery (send that file to the licensee)."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.owner import owner_license, recover_owner

        ch, me = _connect(opts)
        camp = Campaign(ch, campaign)
        owner = recover_owner(camp)
        # the codes and the delivery file are written before the transaction is sent
        delivery, tx = owner_license(camp, owner, lid, _work(work), me, delivery_path=out_path)
        out({"licensee": lid, "gas": tx.gas, "delivery": str(out_path)}, opts.as_json,
            f"licensee {lid} licensed ({tx.gas:,} gas); delivery written to {out_path}")

    @campaign.command("trace")
    @chain_options
    @_campaign_opt
    @click.argument("copy", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
    @click.option("--every-segment", is_flag=True,
                  help="open every segment found (default: the campaign's quorum k, the cheapest reveal).")
    def trace(opts, campaign, copy, every_segment) -> None:
        """Owner: extract the SECRET watermark layer of a suspected copy COPY (image files or a directory; e.g. one
        whose public layer was laundered) and commit one report per licensee found, exactly as an informer does
        (state saved 0600 first); then `pinpoint report reveal` and `pinpoint reward claim` from this account. The
        owner earns f(n) per report like any informer."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.owner import owner_trace, recover_owner
        from protocol.campaign.storage import image_files, load_image

        ch, me = _connect(opts)
        camp = Campaign(ch, campaign)
        images = [load_image(p) for p in image_files(list(copy))]
        _commit_all(opts, camp, owner_trace(camp, recover_owner(camp), images, me, every_segment), "secret layer: ")

    @campaign.command("status")
    @chain_options
    @_campaign_opt
    def status(opts, campaign) -> None:
        """Anyone: parameters with their safe bounds, the time left in every window, escrow and every
        licensee's status."""
        from protocol.campaign.binding import Campaign

        ch, _ = _connect(opts)
        st = Campaign(ch, campaign).status()
        b = st["bounds"]
        lines = [f"campaign {st['campaign']} owner {st['owner']} secret-key commitment {st['secret_key_commitment']}",
                 f"  R {st['reward_wei']} wei, rho {st['rho']} (bounds [1/{b['rho_inverse_at_most']}, "
                 f"1/{b['rho_inverse_above']})), D_L {st['deposit_wei']} wei (>= {b['min_deposit_over_reward']}*R), "
                 f"{st['segments']} segments ({b['min_segments']}..{b['max_segments']})",
                 f"  reports open k = {st['quorum']} segments, appeals m = {st['appeal_quorum']}: framing by guessing "
                 f"succeeds with probability {st['framing_probability']:.4f} (<= 1/{2 ** b['framing_bits']}), "
                 f"repudiation needs 2^{st['repudiation_keccaks_log2']} keccaks",
                 f"  min age {st['min_age_s']} s ({b['min_age_floor']}..{b['min_age_ceiling']}), collection window "
                 f"{st['collection_window_s']} s ({b['min_collection_window']}..{b['max_collection_window']}), "
                 f"appeal window {st['appeal_window_s']} s ({b['min_appeal_window']}..{b['max_appeal_window']})",
                 f"  ends in {st['ends_in_s']} s, first reveals close in {st['reveals_close_in_s']} s; escrow "
                 f"{st['escrow_wei']} wei, burned {st['burned_wei']} wei, balance {st['balance_wei']} wei",
                 "  parameters: " + ("SAFE" if not st["violations"] else "UNSAFE: " + "; ".join(st["violations"]))]
        for l in st["licensees"]:
            w = (f", collection window {l['collection_left_s']} s left, appeal window {l['appeal_left_s']} s left"
                 if l["accused_at"] else "")
            lines.append(f"  licensee {l['id']} {l['licensee']} {l['status']:<9} reports {l['reports']}{w}")
        out(st, opts.as_json, "\n".join(lines))

    @campaign.command("set-guilty")
    @chain_options
    @_campaign_opt
    @click.option("--licensee", "lid", type=int, required=True)
    def set_guilty(opts, campaign, lid) -> None:
        """Anyone: declare an accused licensee guilty after its appeal window (its deposit is slashed)."""
        from protocol.campaign.binding import Campaign

        ch, me = _connect(opts)
        tx = Campaign(ch, campaign).set_guilty(lid, me)
        out({"licensee": lid, "gas": tx.gas}, opts.as_json, f"licensee {lid} guilty ({tx.gas:,} gas)")

    @campaign.command("withdraw")
    @chain_options
    @_campaign_opt
    @click.option("--escrow", "escrow", is_flag=True, help="owner: the unreserved escrow after the end.")
    def withdraw(opts, campaign, escrow) -> None:
        """Anyone: withdraw one's credit (or, owner, --escrow)."""
        from protocol.campaign.binding import Campaign

        ch, me = _connect(opts)
        camp = Campaign(ch, campaign)
        tx = camp.withdraw_escrow(me) if escrow else camp.withdraw(me)
        out({"gas": tx.gas}, opts.as_json, f"withdrawn ({tx.gas:,} gas)")

    # ------------------------------------------------------------------------------------------------ licensee
    @main.group("license")
    def license_group() -> None:
        """Licensee: join a campaign and accept the delivered copy."""

    @license_group.command("join")
    @chain_options
    @_campaign_opt
    def join(opts, campaign) -> None:
        """Licensee: refuse a campaign outside the safe parameters (`protocol.campaign.safety`), else pay the
        deposit and publish the OT choice points (choices kept locally, 0600, saved before sending)."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.licensee import licensee_join

        ch, me = _connect(opts)
        lic, tx = licensee_join(Campaign(ch, campaign), me)
        out({"licensee": lic.id, "gas": tx.gas}, opts.as_json,
            f"joined as licensee {lic.id} ({tx.gas:,} gas); choices saved in {lic.path_for(lic.campaign, lic.id)}")

    @license_group.command("accept")
    @chain_options
    @click.argument("delivery", type=click.Path(path_type=Path, exists=True))
    @click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("licensed-copy"))
    @click.option("--no-watermark-check", is_flag=True, help="skip extracting each image's watermark.")
    def accept(opts, delivery, out_dir, no_watermark_check) -> None:
        """Licensee: run the OT receiver on a delivery file, check every code against the owner's on-chain
        commitments (and the images' watermarks), write the images. On a cheating delivery prints the segment;
        `offchain.campaign.ot.prove_cheating` makes the proof."""
        from offchain.campaign.ot import DeliveryError, prove_cheating
        from protocol.campaign.binding import Campaign
        from protocol.campaign.licensee import licensee_accept, load_or_recover
        from protocol.campaign.storage import load_delivery, png_bytes, write_private

        addr, lid, dl = load_delivery(delivery)
        ch, _ = _connect(opts)
        camp = Campaign(ch, addr)
        lic = load_or_recover(camp, lid)  # a join mined before a crash is found on chain
        try:
            images = licensee_accept(camp, lic, dl, check_watermark=not no_watermark_check)
        except DeliveryError as e:
            proof = prove_cheating(lic.choice, dl, e.segment)
            fail(f"cheating delivery: {e}; proof: segment {proof.segment}, sigma {proof.sigma}, b {hex(proof.b)}")
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for j, img in enumerate(images):  # the licensed copy is private: each file 0600 from its creation
            write_private(out_dir / f"segment-{j}.png", png_bytes(img))
        out({"licensee": lid, "segments": len(images), "out": str(out_dir)}, opts.as_json,
            f"accepted {len(images)} segments (codes match the commitments); written to {out_dir}/")

    @license_group.command("status")
    @chain_options
    @_campaign_opt
    def license_status(opts, campaign) -> None:
        """Licensee: reconcile the saved choices with the chain (a join mined before a crash, whose id the local
        file never learnt, is found by its choice points in the `Joined` events) and show each licence's status."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.licensee import recover
        from protocol.campaign.storage import state_dir

        ch, _ = _connect(opts)
        camp = Campaign(ch, campaign)
        recovered, pending = recover(camp)
        rows = []
        for path in sorted(state_dir().glob(f"licensee-{camp.address.lower()}-*.json")):
            tail = path.stem.rsplit("-", 1)[1]
            if not tail.isdigit():
                continue
            l = camp.license(int(tail))
            rows.append({"licensee": int(tail), "address": l.licensee, "status": l.status.label,
                         "reports": l.reports, "file": str(path)})
        lines = [f"recovered licensee {r.id} (join mined before the crash)" for r in recovered]
        lines += [f"licensee {r['licensee']} {r['address']} {r['status']} reports {r['reports']}" for r in rows]
        lines += [f"pending join not on chain (never mined): {p}" for p in pending]
        out({"licensees": rows, "recovered": [r.id for r in recovered], "pending": [str(p) for p in pending]},
            opts.as_json, "\n".join(lines) or "no saved licence for this campaign")

    @main.command("appeal")
    @chain_options
    @_campaign_opt
    @click.option("--licensee", "lid", type=int, required=True)
    def appeal(opts, campaign, lid) -> None:
        """Licensee: open the OT choice of a segment whose reported variant is not the one received (appeal
        window: after the collection window)."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.licensee import appeal_segments, load_or_recover

        ch, me = _connect(opts)
        camp = Campaign(ch, campaign)
        lic = load_or_recover(camp, lid)
        l, m = camp.license(lid), camp.params().appeal_quorum
        js = appeal_segments(lic, l.bits, l.mask, m)
        if js is None:
            fail(f"fewer than {m} reported variants differ from the ones this licensee received: no appeal is "
                 "possible")
        tx = camp.appeal(lid, lic.choice, js, me)
        out({"licensee": lid, "segments": js, "gas": tx.gas}, opts.as_json,
            f"appeal won on segments {js} ({tx.gas:,} gas): licensee {lid} cleared")

    # ------------------------------------------------------------------------------------------------ informer
    @main.group("report")
    def report() -> None:
        """Informer: report a pirated copy by commit and reveal."""

    @report.command("commit")
    @chain_options
    @_campaign_opt
    @click.argument("pirated", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
    @click.option("--every-segment", is_flag=True,
                  help="open every segment found (default: the campaign's quorum k, the cheapest reveal).")
    def commit(opts, campaign, pirated, every_segment) -> None:
        """Extract the watermark of PIRATED (image files or a directory; a partial or mixed copy is fine), find
        every licensee with at least the campaign's quorum of segments in it, save each report's salt (0600) and
        commit one report per licensee. Reveal after the minimum age."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.informer import extract_codes, prepare_reports
        from protocol.campaign.storage import image_files, load_image

        ch, me = _connect(opts)
        camp = Campaign(ch, campaign)
        images = [load_image(p) for p in image_files(list(pirated))]
        _commit_all(opts, camp, prepare_reports(camp, extract_codes(images, camp.params().watermark_key), me,
                                                every_segment), "")

    @report.command("reveal")
    @chain_options
    @_campaign_opt
    def reveal(opts, campaign) -> None:
        """Reveal this account's saved reports of the campaign that are committed and unrevealed on chain, each
        on its own (a failure is reported and the others go on; exit 2 if any failed)."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.informer import each_report, informer_reveal

        ch, me = _connect(opts)
        camp = Campaign(ch, campaign)

        def act(rep):
            tx = informer_reveal(camp, rep)
            return {"commitment": rep.commitment.hex(), "licensee": rep.id, "gas": tx.gas}

        done, errors = each_report(camp, me, "reveal", act)
        _report_outcome(opts, "revealed", done, errors,
                        lambda o: f"revealed {o['commitment'][:16]}... licensee {o['licensee']} ({o['gas']:,} gas)",
                        "no unrevealed report saved for this account and campaign")

    @report.command("status")
    @chain_options
    @click.option("--campaign", "campaign", default=None)
    def report_status(opts, campaign) -> None:
        """The saved reports (all accounts) and their on-chain state."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.informer import InformerReport

        ch, _ = _connect(opts)
        rows = []
        for rep in InformerReport.all(campaign):
            camp = Campaign(ch, rep.campaign)
            st = camp.license(rep.id)
            state = "claimed" if rep.claimed_tx else "revealed" if rep.revealed_tx else "committed"
            rows.append({"campaign": rep.campaign, "informer": rep.informer, "commitment": rep.commitment.hex(),
                         "licensee": rep.id, "state": state, "licensee_status": st.status.label,
                         "reports": st.reports, "reward_wei": camp.reward_for(st.reports) if rep.revealed_tx else 0})
        out({"reports": rows}, opts.as_json, "\n".join(
            f"{r['commitment'][:16]}... {r['informer'][:10]} licensee {r['licensee']} {r['state']:<9} "
            f"({r['licensee_status']}, n = {r['reports']}, f(n) = {r['reward_wei']} wei)" for r in rows)
            or "no saved reports")

    @main.group("reward")
    def reward_group() -> None:
        """Informer: claim rewards."""

    @reward_group.command("claim")
    @chain_options
    @_campaign_opt
    def claim(opts, campaign) -> None:
        """Claim f(n) for this account's reports revealed on chain once their collection window has closed, each
        on its own (a reveal mined before a crash is found on chain; exit 2 if any failed)."""
        from protocol.campaign.binding import Campaign
        from protocol.campaign.informer import each_report, informer_claim

        ch, me = _connect(opts)
        camp = Campaign(ch, campaign)

        def act(rep):
            n = camp.license(rep.id).reports
            tx = informer_claim(camp, rep)
            return {"licensee": rep.id, "reward_wei": camp.reward_for(n), "gas": tx.gas}

        done, errors = each_report(camp, me, "claim", act)
        _report_outcome(opts, "claimed", done, errors,
                        lambda o: f"claimed {o['reward_wei']} wei (licensee {o['licensee']}; {o['gas']:,} gas)",
                        "no revealed, unclaimed report saved for this account and campaign")

    # ------------------------------------------------------------------------------------------------ demo
    @demo.command("argus")
    @click.option("--rpc-url", default=None, help="JSON-RPC node (e.g. anvil); default: the in-process chain.")
    @click.option("--json", "as_json", is_flag=True, help="print the steps, gas per call and balances as JSON.")
    @handle_errors
    def demo_argus(rpc_url, as_json) -> None:
        """Argus: a work of 4 photos licensed to three licensees; a leak, re-encoded, resized and cropped;
        informers (a copied commitment, a late one, a Sybil pair) paid by f(n); the leaker slashed; a licensee
        framed by the owner wins its appeal. Every step with its gas, then the balances."""
        import os
        import tempfile

        from rich.console import Console

        from protocol.campaign.demo import run_demo

        os.environ.setdefault("PINPOINT_HOME", tempfile.mkdtemp(prefix="pinpoint-argus-demo-"))
        con = Console(highlight=False, width=150)
        rec = run_demo(rpc_url, log=None if as_json else con.print)
        if as_json:
            out(rec)
