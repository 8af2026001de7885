"""`pinpoint demo argus`: the whole Argus story on one chain, every step with its gas, then the balances.

A simulation: the pirate's crop, resize and JPEG re-encoding come from `offchain.campaign.attacks`.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict
from pathlib import Path

import numpy as np

from offchain.campaign import ot
from protocol.campaign.binding import ArgusError, Campaign, Params
from protocol.campaign.informer import extract_codes, informer_claim, informer_commit, informer_reveal, prepare_report
from protocol.campaign.licensee import appeal_segments, licensee_accept, licensee_join
from protocol.campaign.owner import Owner, owner_license
from protocol.campaign.storage import load_image
from protocol.chain.connection import Chain, Tx, fee_paid

DEMO_WORK = ("kitten.png", "fish.png", "pelican.jpeg", "bald_eagle.jpeg")
DEMO_SHORT_SIDE = 448


def demo_work() -> list[np.ndarray]:
    """The embedded demo work: four MIT / Apache-2.0 photos (offchain/assets, see ATTRIBUTION.md), each rendered
    with its shorter side at DEMO_SHORT_SIDE pixels (bicubic), as a distributor delivers segments of one size.
    (Two of the photos are 224 x 224: after the pirate's crop and 0.6x resize they would end near 130 px, below
    the ~170 px where the watermark's recovery is no longer reliable; see `offchain.campaign.watermark`.)"""
    from importlib import resources

    from PIL import Image

    out = []
    for n in DEMO_WORK:
        img = load_image(Path(str(resources.files("offchain.assets").joinpath(n))))
        h, w = img.shape[:2]
        r = DEMO_SHORT_SIDE / min(h, w)
        pil = Image.fromarray(img).resize((round(w * r), round(h * r)), Image.BICUBIC)
        out.append(np.asarray(pil, dtype=np.uint8))
    return out


def run_demo(rpc_url: str | None = None, log=None) -> dict:
    """The whole Argus story on one chain (in-process by default): a work of 4 photos licensed to three
    licensees by OT; licensee 0 leaks its copy, which is cropped, resized and JPEG re-encoded; informers report
    it (one copies another's commitment, one commits after seeing the first reveal, a Sybil pair); rewards f(n);
    the guilty licensee slashed; licensee 2, framed by the owner, wins its appeal. Returns the steps (gas per
    call) and the balances; ``every_wei_accounted`` checks balance change == received - sent - gas per party."""
    from offchain.campaign.attacks import chain as pirate  # the demo simulates the pirate's processing

    chain = Chain(rpc_url)
    A = chain.accounts
    roles = {"owner": A[0], "licensee0": A[1], "licensee1": A[2], "licensee2": A[3], "alice": A[4],
             "bob": A[5], "sybil1": A[6], "sybil2": A[7], "mallory": A[8], "carol": A[9]}
    name = {v: k for k, v in roles.items()}
    before = {k: chain.balance(a) for k, a in roles.items()}
    spent = {k: 0 for k in roles}
    sent = {k: 0 for k in roles}
    steps = []
    say = log or (lambda *_: None)

    def step(who: str, what: str, tx: Tx | None = None, value: int = 0):
        g = tx.gas if tx is not None else 0
        if tx is not None:
            spent[who] += fee_paid(tx.receipt)
        sent[who] += value
        steps.append({"who": who, "what": what, "gas": g})
        say(f"  [bold]{who:>10}[/] {what:<78} [dim]{(f'{g:>9,} gas' if tx else '')}[/]")

    def refused(who: str, what: str, fn, *args):
        from protocol.chain.connection import ChainError

        try:
            fn(*args)
        except ChainError as e:
            steps.append({"who": who, "what": what, "gas": 0, "reverted": e.error})
            say(f"  [bold]{who:>10}[/] {what:<78} [red]reverts {e.error}[/]")
            return e.error
        raise ArgusError(f"{what}: expected a revert")

    p = Params()
    say(f"[bold]pinpoint demo argus[/] on {chain.kind}: R = {p.reward} wei, rho = {p.rho_num}/{p.rho_den}, "
        f"D_L = {p.deposit} wei, {p.segments} segments, windows {p.min_age}/{p.collection_window}/"
        f"{p.appeal_window} s")
    work = demo_work()
    owner = Owner(ot.OwnerKey.generate())
    escrow = 3 * (p.reward + p.deposit)
    camp, tx = Campaign.create(chain, p, owner.key.A, escrow, sender=roles["owner"])
    step("owner", f"create campaign {camp.address[:10]}... escrow {escrow} wei", tx, escrow)
    owner.save(camp.address)
    lics, copies = [], []
    for i in range(3):
        who = f"licensee{i}"
        lic, tx = licensee_join(camp, roles[who])
        step(who, f"join with deposit {p.deposit} wei and {p.segments} OT choice points", tx, p.deposit)
        delivery, tx = owner_license(camp, owner, lic.id, work, roles["owner"])
        owner.save(camp.address)
        step("owner", f"license {i}: commit the root of {2 * p.segments} code leaves + delivery hash; OT delivery", tx)
        images = licensee_accept(camp, lic, delivery)
        step(who, "accept: decrypt its variants, codes match the commitments and the watermarks", None)
        lics.append(lic)
        copies.append(images)
    # licensee 0 leaks; the pirate crops, resizes, re-encodes
    pirated = [pirate(img, (0.03, 0.02, 0.04, 0.03), 0.6, 60) for img in copies[0]]
    say(f"  licensee0 leaks its copy; pirated: crop 2-4 %, resize x0.6, JPEG q60 "
        f"({copies[0][0].shape[1]}x{copies[0][0].shape[0]} -> {pirated[0].shape[1]}x{pirated[0].shape[0]} ...)")
    import time as _time

    t0 = _time.time()
    codes = extract_codes(pirated, p.watermark_key)
    say(f"  watermark extracted from the pirated copy: {len(codes)} codes in {_time.time() - t0:.1f} s "
        "(every informer below holds this copy)")
    reps = {}
    for who in ("alice", "bob", "sybil1", "sybil2"):
        reps[who] = prepare_report(camp, codes, roles[who])
        step(who, f"commit report {reps[who].commitment.hex()[:12]}... (licensee {reps[who].id})",
             informer_commit(camp, reps[who]))
    step("mallory", "copies alice's commitment", camp.commit(reps["alice"].commitment, roles["mallory"]))
    chain.advance(p.min_age)
    step("alice", "reveal (first reveal: licensee 0 accused)", informer_reveal(camp, reps["alice"]))
    refused("mallory", "reveal alice's commitment with alice's codes and salt", camp.reveal,
            reps["alice"].located, reps["alice"].salt, roles["mallory"])
    late = prepare_report(camp, codes, roles["carol"])
    step("carol", "saw alice's reveal; commits", informer_commit(camp, late))
    for who in ("bob", "sybil1", "sybil2"):
        step(who, "reveal", informer_reveal(camp, reps[who]))
    chain.advance(p.min_age)
    refused("carol", "reveal after the minimum age", informer_reveal, camp, late)
    # the owner frames licensee 2: it builds a copy with variants it guesses (it does not know the choices)
    guess = [secrets.randbelow(2) for _ in range(p.segments)]
    if guess == lics[2].choice.sigma:  # a lucky 1/16 guess would succeed: flip one bit for the demo's story
        guess[0] ^= 1
    framed = [owner.codes[2][j][b] for j, b in enumerate(guess)]
    frame = prepare_report(camp, framed, roles["owner"], every=True)  # it opens all its guesses
    step("owner", "frames licensee 2: commits a forged copy of guessed variants", informer_commit(camp, frame))
    chain.advance(p.min_age)
    step("owner", "reveals it (licensee 2 accused)", informer_reveal(camp, frame))
    n = camp.license(0).reports
    chain.advance(p.collection_window)
    fn = camp.reward_for(n)
    say(f"  collection windows closed: {n} valid reports of licensee 0's copy, f({n}) = {fn} wei each "
        f"(f(1) = {camp.reward_for(1)}; the Sybil pair gets 2*f({n}) = {2 * fn} < f({n - 1}) = "
        f"{camp.reward_for(n - 1)})")
    for who in ("alice", "bob", "sybil1", "sybil2"):
        step(who, f"claim reward {fn} wei", informer_claim(camp, reps[who]))
    refused("alice", "claim again", camp.claim, reps["alice"].commitment, roles["alice"])
    l0 = camp.license(0)
    refused("licensee0", "appeal (its own variants were reported: no opening exists)", camp.appeal, 0,
            lics[0].choice, (l0.mask & -l0.mask).bit_length() - 1, roles["licensee0"])
    l2 = camp.license(2)
    js = appeal_segments(lics[2], l2.bits, l2.mask, p.appeal_quorum)
    step("licensee2", f"appeal: opens its choices of segments {js} (ecMul + ecAdd each)",
         camp.appeal(2, lics[2].choice, js, roles["licensee2"]))
    step("owner", "claims the reward of its own forged report", informer_claim(camp, frame))
    chain.advance(p.appeal_window)
    step("carol", "set licensee 0 guilty (deposit slashed)", camp.set_guilty(0, roles["carol"]))
    for who in ("owner", "licensee2"):
        c = camp.credit(roles[who])
        step(who, f"withdraw {c} wei", camp.withdraw(roles[who]))
    chain.advance(p.duration + p.min_age + p.collection_window)
    step("licensee1", "refund deposit once first reveals have closed", camp.refund(1, roles["licensee1"]))
    step("licensee1", f"withdraw {camp.credit(roles['licensee1'])} wei", camp.withdraw(roles["licensee1"]))
    e = camp.escrow()
    step("owner", f"withdraw the remaining escrow {e} wei", camp.withdraw_escrow(roles["owner"]))
    after = {k: chain.balance(a) for k, a in roles.items()}
    # what the contract paid each party: read back from the Withdrawn events
    received = {k: 0 for k in roles}
    for lg in camp.c.events.Withdrawn().get_logs(from_block=0):
        received[name[lg["args"]["to"]]] += int(lg["args"]["amount"])
    burned = camp.burned()
    accounted = all(after[k] - before[k] == received[k] - sent[k] - spent[k] for k in roles) \
        and chain.balance(camp.address) == burned
    say("\n  [bold]balances[/] (wei)        before                     after               paid by campaign      sent")
    for k in roles:
        say(f"  {k:>10} {before[k]:>28,} {after[k]:>28,} {received[k]:>22,} {sent[k]:>22,}")
    say(f"  campaign balance at the end: {chain.balance(camp.address)} wei, all burned (R - n*f(n) of each verdict, "
        f"so that no one's payoff grows with n); every wei accounted for: {accounted}")
    rep_gas = [s["gas"] for s in steps if s["what"].startswith("commit report")][:1] + \
        [s["gas"] for s in steps if s["who"] == "bob" and s["what"] == "reveal"]
    say(f"  one report (commit + reveal): {sum(rep_gas):,} gas (the paper: ~294,000)")
    return {"chain": chain.kind, "campaign": camp.address, "params": {k: (v.hex() if isinstance(v, bytes) else v)
                                                                       for k, v in asdict(p).items()},
            "steps": steps, "reports_of_leak": n, "reward_per_report_wei": fn,
            "balances_before": {k: str(v) for k, v in before.items()},
            "balances_after": {k: str(v) for k, v in after.items()},
            "paid_by_campaign": {k: str(v) for k, v in received.items()},
            "sent_to_campaign": {k: str(v) for k, v in sent.items()},
            "gas_fees_paid": {k: str(v) for k, v in spent.items()},
            "report_gas": sum(rep_gas), "burned_wei": burned, "every_wei_accounted": accounted}
