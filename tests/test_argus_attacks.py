"""Issue 11's attacks on the campaign contract, each of which succeeded on the previous contract: unsafe parameters
(item 1), a sock-puppet licensee exhausting the escrow ahead of an honest report (attack 7), a commitment made in
time shut out by the campaign's end (item 6). The payoff attacks (item 2) are in test_argus_payoffs.py."""

from __future__ import annotations

import pytest

from offchain.campaign.codes import code_leaves, new_codes
from protocol.campaign.binding import Campaign, LicenseStatus, Params
from protocol.campaign.licensee import licensee_join
from protocol.campaign.safety import BOUNDS, UnsafeCampaign, require_safe, violations
from tests.test_argus_contract import ESCROW, P, World
from tests.test_argus_contract import _home  # noqa: F401  (autouse: PINPOINT_HOME in a temporary directory)

R, D = P.reward, P.deposit
DAY = 86400

UNSAFE = [  # (change, custom error): the unsafe parameters first, then every other floor and ceiling
    (dict(appeal_window=0), "BadAppealWindow"),  # the owner framed with certainty (no appeal could succeed)
    (dict(min_age=0), "BadMinAge"),  # a mempool watcher committed and revealed in the first reveal's block
    (dict(rho_num=0, rho_den=1), "BadRho"),  # one extra report cut the honest informer's reward to 0
    (dict(deposit=R + 1), "DepositTooSmall"),  # a self-reporting leaker lost 1 wei
    (dict(reward=0), "BadReward"),
    (dict(rho_num=1, rho_den=11), "BadRho"),
    (dict(rho_num=1, rho_den=2), "BadRho"),
    (dict(deposit=2 * R - 1), "DepositTooSmall"),
    (dict(segments=3), "BadSegments"),
    (dict(segments=65), "BadSegments"),
    (dict(min_age=59), "BadMinAge"),
    (dict(min_age=DAY + 1), "BadMinAge"),
    (dict(collection_window=3599), "BadCollectionWindow"),
    (dict(collection_window=30 * DAY + 1), "BadCollectionWindow"),
    (dict(appeal_window=DAY - 1), "BadAppealWindow"),
    (dict(appeal_window=30 * DAY + 1), "BadAppealWindow"),
    (dict(duration=DAY - 1), "BadDuration"),
    (dict(duration=5 * 365 * DAY + 1), "BadDuration"),
    (dict(quorum=2), "BadQuorum"),  # framing by guessing 2 segments succeeds 1 time in 4
    (dict(quorum=5), "BadQuorum"),  # more than the S = 4 segments
    (dict(appeal_quorum=0), "BadQuorum"),
    (dict(quorum=4, appeal_quorum=2), "BadQuorum"),  # framing succeeds unless 2 of 4 guesses are wrong: 5/16
]


def test_unsafe_parameters_rejected_by_contract_and_client():
    w = World(k=0)
    assert list(w.ch.call(w.camp.fn.bounds())) == BOUNDS.words()  # parity: Bounds.sol == protocol.campaign.safety
    assert violations(P) == []
    for change, err in UNSAFE:
        q = Params(**{**P.__dict__, **change})
        w.fails(err, Campaign.create, w.ch, q, w.key.A, 10**19, sender=w.owner)
        assert violations(q), change
        with pytest.raises(UnsafeCampaign):
            require_safe(q)
    # the edges themselves are accepted (floors and ceilings are inclusive; rho < 1/2 is strict)
    edge = Params(**{**P.__dict__, **dict(rho_num=1, rho_den=10, deposit=2 * R, segments=64, min_age=DAY,
                                          collection_window=3600, appeal_window=30 * DAY, duration=DAY)})
    assert violations(edge) == []
    Campaign.create(w.ch, edge, w.key.A, R + edge.deposit, sender=w.owner)


def test_mempool_copier_cannot_share_the_first_reveal():
    """With minAge >= 60 a watcher that sees the first reveal's codes commits too late, even in the same block."""
    w = World(k=1)
    honest = w.report(w.A[5], 0)
    w.ch.advance(P.min_age)
    w.camp.reveal(honest.located, honest.salt, honest.informer)
    copier = w.report(w.A[6], 0)  # committed right after the reveal (its codes are public now)
    w.fails("CommitmentTooYoung", w.camp.reveal, copier.located, copier.salt, copier.informer)
    w.ch.advance(P.min_age)
    w.fails("CommitmentTooLate", w.camp.reveal, copier.located, copier.salt, copier.informer)
    assert w.camp.license(0).reports == 1


def test_sock_puppet_self_reports_cannot_shut_out_an_honest_report():
    """Attack 7: the owner funded two accusations; sock-puppet licensees joined and reported themselves first, and
    the honest informer's report of licensee 0 reverted EscrowExhausted. Now each licence carries its own reserve
    from `license` on: the owner cannot license a sock puppet beyond its escrow, and no report needs escrow."""
    w = World(k=1, escrow=2 * (R + D))
    honest = w.report(w.A[5], 0)  # committed in time, before any sock puppet acts
    socks = []
    for acct in (w.A[2], w.A[3]):
        lic, _ = licensee_join(w.camp, acct)
        socks.append(lic)
    sock_codes = new_codes(P.segments)
    w.camp.license_tx(socks[0].id, code_leaves(w.camp.address, socks[0].id, sock_codes), b"\1" * 32, w.owner)
    w.fails("EscrowExhausted", w.camp.license_tx, socks[1].id,
            code_leaves(w.camp.address, socks[1].id, new_codes(P.segments)), b"\1" * 32,
            w.owner)
    # the licensed sock puppet reports itself through another identity, ahead of the honest informer
    w.lic.append(socks[0])
    w.codes.append(sock_codes)
    self_report = w.report(w.A[7], socks[0].id)
    w.ch.advance(P.min_age)
    w.camp.reveal(self_report.located, self_report.salt, self_report.informer)
    w.camp.reveal(honest.located, honest.salt, honest.informer)
    assert w.camp.license(0).status == LicenseStatus.ACCUSED and w.camp.license(0).reports == 1
    assert w.camp.escrow() == 0


def test_commitment_made_in_time_may_accuse_after_the_end():
    """Item 6: a commitment made one second before the end was shut out (CampaignEnded at its reveal, minAge
    later) and the licensee took its deposit back. Now first reveals stay open until revealsClose = endsAt + minAge
    + collectionWindow, and a licensed deposit is refundable only from then."""
    w = World(k=2)
    ends = w.ch.call(w.camp.fn.endsAt())
    close = w.camp.reveals_close()
    assert close == ends + P.min_age + P.collection_window
    late = w.report(w.A[6], 1)  # committed long before the end, revealed too late
    w.at(ends - 1)
    rep = w.report(w.A[5], 0)
    w.at(ends - 1 + P.min_age)
    w.fails("CampaignNotEnded", w.camp.refund, 0, w.A[1])
    w.camp.reveal(rep.located, rep.salt, rep.informer)
    assert w.camp.license(0).status == LicenseStatus.ACCUSED
    w.at(close)
    w.fails("RevealsClosed", w.camp.reveal, late.located, late.salt, late.informer)
    w.camp.refund(1, w.A[2])
    assert w.camp.credit(w.A[2]) == D and w.camp.escrow() == ESCROW - (R + D)


def test_clients_save_before_they_send(monkeypatch, tmp_path):
    """Item 7: the owner's codes and the delivery file, and a licensee's OT choices, are on disk (0600) before
    their transaction is sent: a crash at the send (here the send itself fails) loses nothing. The old owner
    flow kept the codes in memory until after the licence was mined."""
    import json
    import stat

    from offchain.campaign import ot
    from protocol.campaign import owner as owner_mod
    from protocol.campaign.binding import ot_context
    from protocol.campaign.owner import Owner, owner_license
    from offchain.campaign.codes import CODE_BYTES, code_leaf
    from protocol.campaign.storage import load_delivery, state_dir

    w = World(k=0)
    sent = []

    def crash(*a, **kw):
        sent.append(a)
        raise RuntimeError("crash at send")

    with monkeypatch.context() as m, pytest.raises(RuntimeError):
        m.setattr(Campaign, "join", crash)
        licensee_join(w.camp, w.A[1])
    pending = list(state_dir().glob("licensee-*-pending-*.json"))
    assert len(pending) == 1 and stat.S_IMODE(pending[0].stat().st_mode) == 0o600
    assert json.loads(pending[0].read_text())["B"] == [[hex(x), hex(y)] for x, y in sent[0][1].B]
    lic, _ = licensee_join(w.camp, w.A[1])
    own = Owner(w.key)
    monkeypatch.setattr(owner_mod, "make_variants",
                        lambda segs, codes, key, secret_key=None: [(c0 + b"img0", c1 + b"img1") for c0, c1 in codes])
    monkeypatch.setattr(Campaign, "license_tx", crash)
    with pytest.raises(RuntimeError):
        owner_license(w.camp, own, lic.id, [None] * P.segments, w.owner, delivery_path=tmp_path / "d.json")
    saved = Owner.load(w.camp.address)
    assert saved.codes[lic.id] == own.codes[lic.id]
    assert stat.S_IMODE(own.path(w.camp.address).stat().st_mode) == 0o600
    addr, i, delivery = load_delivery(tmp_path / "d.json")
    assert i == lic.id  # and the saved delivery carries exactly the saved codes:
    leaves = code_leaves(addr, i, saved.codes[lic.id])
    got = ot.receive(lic.choice, w.key.A, delivery, leaves, ot_context(addr, i),
                     lambda j, v, c: code_leaf(addr, i, j, v, c))
    assert [g[:CODE_BYTES] for g in got] == [saved.codes[i][j][s] for j, s in enumerate(lic.choice.sigma)]
