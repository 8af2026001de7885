"""Issue 11, items 3 and 4: reports of partial and mixed copies (any k >= quorum segments of one licensee's copy,
one report per licensee of a mixed copy), framing with fewer than k segments refused, and an appeal that needs m
differing segments (repudiation through one flipped segment no longer wins). Each attack succeeded on the previous
contract (`tests/test_argus_old.py` replays them there)."""

from __future__ import annotations

import random

import pytest

from offchain.campaign.codes import (Located, code_leaf, code_pairs, code_root, commitment, depth_for,
                                     framing_probability, multiproof, report_of, repudiation_work, verify_multiproof)
from protocol.campaign.binding import Campaign, LicenseStatus, Params
from protocol.campaign.informer import InformerReport, prepare_report, prepare_reports, report_for
from protocol.campaign.safety import violations
from tests.test_argus_contract import P, World
from tests.test_argus_contract import _home  # noqa: F401  (autouse: PINPOINT_HOME in a temporary directory)
from tests.test_argus_payoffs import Ledger, f

R, D = P.reward, P.deposit
MIXED = Params(**{**P.__dict__, "segments": 6})  # k = 3: a copy of 3 + 3 segments accuses both licensees
STRICT = Params(**{**P.__dict__, "segments": 8, "quorum": 6, "appeal_quorum": 2})  # framing 7/64, repudiation 2^129


def _reveal_all(w: World, L: Ledger, reps: list[InformerReport]) -> None:
    for r in reps:
        L(w.camp.commit(r.commitment, r.informer))
    w.ch.advance(w.p.min_age)
    for r in reps:
        L(w.camp.reveal(r.located, r.salt, r.informer))


def _verdicts_and_end(w: World, L: Ledger, reps: list[InformerReport], guilty: list[int], appeals=None) -> None:
    w.ch.advance(w.p.collection_window)
    for r in reps:
        L(w.camp.claim(r.commitment, r.informer))
    if appeals:
        appeals()
    w.ch.advance(w.p.appeal_window)
    for i in guilty:
        L(w.camp.set_guilty(i, w.A[9]))
    L.withdraw_all()
    w.ch.advance(w.p.duration + w.p.min_age + w.p.collection_window)
    L(w.camp.withdraw_escrow(w.owner))


def test_copy_missing_one_of_four_segments_is_reported_and_pays():
    """Attack 4 (old contract: CodeMismatch, "not the complete watermark of any licensee"): a pirated copy that lost
    one of its four segments. Now any k = 3 segments of one licensee's copy make a report: the leaker is slashed and
    the informer paid, every wei accounted for."""
    w = World(k=1, escrow=R + D)
    L = Ledger(w)
    partial = w.copy_of(0)[:3]
    rep = prepare_report(w.camp, partial, w.A[5])
    assert rep.id == 0 and rep.mask == 0b0111
    _reveal_all(w, L, [rep])
    lic = w.camp.license(0)
    assert lic.status == LicenseStatus.ACCUSED and lic.mask == 0b0111
    assert lic.bits == sum(s << j for j, s in enumerate(w.lic[0].choice.sigma[:3]))

    def appeals():  # the real leaker has no reported segment to open the other way
        for j in range(3):
            w.fails("BadOpening", w.camp.appeal, 0, w.lic[0].choice, j, w.A[1])
        w.fails("NotReported", w.camp.appeal, 0, w.lic[0].choice, 3, w.A[1])

    _verdicts_and_end(w, L, [rep], [0], appeals)
    L.check({w.owner: (R + D) + (D - R), w.A[5]: R}, 0)


def test_mixed_copy_accuses_each_licensee():
    """Attack 4: a copy mixing two licensees' segments (3 of licensee 0, 3 of licensee 1, shuffled) matched no
    licensee. Now it makes one report per licensee; both are accused, slashed, and the informer paid twice."""
    w = World(k=2, params=MIXED, escrow=2 * (R + D))
    L = Ledger(w)
    mixed = w.copy_of(0)[:3] + w.copy_of(1)[3:]
    random.Random(7).shuffle(mixed)
    reps = prepare_reports(w.camp, mixed, w.A[5])
    assert sorted(r.id for r in reps) == [0, 1]
    assert {r.id: r.mask for r in reps} == {0: 0b000111, 1: 0b111000}
    _reveal_all(w, L, reps)
    assert [w.camp.license(i).status for i in (0, 1)] == [LicenseStatus.ACCUSED] * 2
    _verdicts_and_end(w, L, reps, [0, 1])
    L.check({w.owner: 2 * (R + D) + 2 * (D - R), w.A[5]: 2 * R}, 0)


def test_framing_with_fewer_than_k_segments_refused():
    """The owner knows both variants of every segment; with fewer than k segments its guess would succeed more
    often than 2^-k. A report of k - 1 segments is refused (TooFewSegments), one of k guessed segments is
    accepted and, guessed wrong, lost on appeal."""
    w = World(k=1)
    owner_id = w.A[8]
    sigma = w.lic[0].choice.sigma
    guess = [sigma[0], 1 - sigma[1]] + sigma[2:]  # segment 1 guessed wrong (in every run of 3 segments)
    codes = w.copy_of(0, guess)
    leaves = w.camp.code_index()[0]
    two = report_of(w.camp.address, 0, leaves, {j: (guess[j], codes[j]) for j in (0, 1)}, None)
    assert two.mask == 0b11 and two.bits == guess[0] | guess[1] << 1
    short = report_for(w.camp, two, owner_id)
    w.camp.commit(short.commitment, owner_id)
    w.ch.advance(P.min_age)
    w.fails("TooFewSegments", w.camp.reveal, short.located, short.salt, owner_id)
    assert w.camp.license(0).status == LicenseStatus.LICENSED
    full = w.report(owner_id, 0, guess, every=False)  # k = 3 segments, segment 1 guessed wrong
    assert full.mask & 2 and bin(full.mask).count("1") == 3
    w.ch.advance(P.min_age)
    w.camp.reveal(full.located, full.salt, owner_id)
    w.ch.advance(P.collection_window)
    w.camp.appeal(0, w.lic[0].choice, 1, w.A[1])
    assert w.camp.license(0).status == LicenseStatus.CLEARED


def test_framing_and_repudiation_bounds():
    """k and m are bounded campaign parameters: framing by guessing succeeds with probability
    2^-k * sum_{i<m} C(k, i) <= 1/8 (contract and client agree), repudiation needs m * 2^128 keccaks."""
    assert framing_probability(3, 1) == pytest.approx(1 / 8) and framing_probability(6, 2) == 7 / 64
    assert repudiation_work(1) == 2**128 and repudiation_work(2) == 2**129
    w = World(k=0)
    for k, m, ok in ((3, 1, True), (2, 1, False), (4, 2, False), (6, 2, True), (8, 3, False), (9, 3, True),
                     (9, 0, False), (5, 6, False)):
        q = Params(**{**P.__dict__, "segments": 10, "quorum": k, "appeal_quorum": m})
        assert (violations(q) == []) is ok, (k, m)
        if ok:
            Campaign.create(w.ch, q, w.key.A, R + D, sender=w.owner)
        else:
            w.fails("BadQuorum", Campaign.create, w.ch, q, w.key.A, R + D, sender=w.owner)
    w.fails("BadQuorum", Campaign.create, w.ch, Params(**{**P.__dict__, "quorum": 5}), w.key.A, R + D,
            sender=w.owner)  # k > S


def _flipped_report(w: World, informer: str, i: int, flip: list[int]) -> InformerReport:
    """A friend's report of licensee i's copy with segments ``flip`` switched to the other variant (whose codes a
    guilty licensee gets only by a 2^128 second-preimage search each; the test takes them from the owner's
    codes)."""
    bits = [s ^ (j in flip) for j, s in enumerate(w.lic[i].choice.sigma)]
    return prepare_report(w.camp, w.copy_of(i, bits), informer, every=True)


def test_one_flipped_segment_no_longer_wins_an_appeal():
    """Attack 5 (old contract: a friend's report of the leaked copy with ONE segment flipped let the guilty
    licensee open that segment, win its appeal and collect 2*D_L). With appeal quorum m = 2 one flipped segment
    is not enough (TooFewSegments): the licensee is slashed. Two flips (2 * 2^128 keccaks) would be needed, and
    framing by guessing 6 segments still fails with probability 57/64."""
    w = World(k=1, params=STRICT, escrow=R + D)
    L = Ledger(w)
    friend = _flipped_report(w, w.A[6], 0, [2])
    _reveal_all(w, L, [friend])
    w.ch.advance(STRICT.collection_window)
    w.fails("TooFewSegments", w.camp.appeal, 0, w.lic[0].choice, [2], w.A[1])
    w.fails("BadOpening", w.camp.appeal, 0, w.lic[0].choice, [1, 2], w.A[1])
    w.fails("BadSegment", w.camp.appeal, 0, w.lic[0].choice, [2, 2], w.A[1])
    L(w.camp.claim(friend.commitment, friend.informer))
    w.ch.advance(STRICT.appeal_window)
    L(w.camp.set_guilty(0, w.A[9]))
    L.withdraw_all()
    w.ch.advance(STRICT.duration + STRICT.min_age + STRICT.collection_window)
    L(w.camp.withdraw_escrow(w.owner))
    L.check({w.owner: (R + D) + (D - R), friend.informer: R}, 0)  # leaker + friend: -(D_L - R), as a self-report
    # two flipped segments (two preimages) do clear it, as a framing owner's two wrong guesses would
    w2 = World(k=1, params=STRICT)
    two = _flipped_report(w2, w2.A[6], 0, [2, 5])
    w2.camp.commit(two.commitment, two.informer)
    w2.ch.advance(STRICT.min_age)
    w2.camp.reveal(two.located, two.salt, two.informer)
    w2.ch.advance(STRICT.collection_window)
    w2.camp.appeal(0, w2.lic[0].choice, [2, 5], w2.A[1])
    assert w2.camp.license(0).status == LicenseStatus.CLEARED


def test_later_reports_add_segments_first_bits_stand():
    """Reports of one licensee may open different segments; the licence records their union. A report that
    contradicts an earlier one on a shared segment (only the owner, or a preimage search, makes one) still counts:
    refusing it (as an earlier version did) let a holder of other variants reveal first with fewer than m flipped
    segments and shut out every honest report sharing them, taking f(1) = R. The first-reported bits stand, so the
    contradiction never helps an appeal."""
    w = World(k=1, params=STRICT, escrow=R + D)
    L = Ledger(w)
    sigma = w.lic[0].choice.sigma
    leaves = w.camp.code_index()[0]
    first = _flipped_report(w, w.A[6], 0, [0])  # the owner's (or a preimage finder's) copy, one segment flipped
    honest = prepare_report(w.camp, w.copy_of(0), w.A[5], every=True)
    extra = [6, 7, 0, 1, 2, 3]  # another honest informer's partial copy
    extra.sort()
    loc = report_of(w.camp.address, 0, leaves, {j: (sigma[j], w.codes[0][j][sigma[j]]) for j in extra}, None)
    reps = [first, honest, report_for(w.camp, loc, w.A[7])]
    first_loc = first.located
    reps[0] = report_for(w.camp, report_of(w.camp.address, 0, leaves, {j: (first_loc.bits >> j & 1,
                                                                            first_loc.codes[j]) for j in range(6)},
                                           None), w.A[6])
    _reveal_all(w, L, reps)  # the flipped copy first: segments 0-5, segment 0 flipped
    lic = w.camp.license(0)
    assert lic.reports == 3 and lic.mask == 0xFF
    assert lic.bits == (sum(s << j for j, s in enumerate(sigma)) ^ 1)  # first-reported bit of segment 0 stands
    w.ch.advance(STRICT.collection_window)
    w.fails("TooFewSegments", w.camp.appeal, 0, w.lic[0].choice, [0], w.A[1])  # one flip: not enough (m = 2)
    fn = f(3)
    for r in reps:
        L(w.camp.claim(r.commitment, r.informer))
    w.ch.advance(STRICT.appeal_window)
    L(w.camp.set_guilty(0, w.A[9]))
    L.withdraw_all()
    w.ch.advance(STRICT.duration + STRICT.min_age + STRICT.collection_window)
    L(w.camp.withdraw_escrow(w.owner))
    L.check({w.owner: (R + D) + (D - R), w.A[5]: fn, w.A[6]: fn, w.A[7]: fn}, R - 3 * fn)


def test_multiproof_parity_and_malformed_reveals():
    """`offchain.campaign.codes.multiproof`/`verify_multiproof` against `CodeTree.verify` (through `reveal`) on
    random subsets; malformed reveals refused by name."""
    rng = random.Random(11)
    q = Params(**{**P.__dict__, "segments": 13})
    w = World(k=1, params=q, escrow=R + D)
    leaves = w.camp.code_index()[0]
    sigma = w.lic[0].choice.sigma
    root, pairs, depth = code_root(leaves), code_pairs(leaves), depth_for(13)
    reps = []
    for t in range(6):
        segs = sorted(rng.sample(range(13), rng.randint(3, 13)))
        proof = multiproof(leaves, segs)
        assert verify_multiproof(root, depth, segs, [pairs[j] for j in segs], proof)
        assert not verify_multiproof(root, depth, segs, [pairs[j] for j in segs], proof[::-1]) or len(proof) < 2
        j0 = segs[0]
        assert leaves[2 * j0 + sigma[j0]] == code_leaf(w.camp.address, 0, j0, sigma[j0], w.codes[0][j0][sigma[j0]])
        loc = report_of(w.camp.address, 0, leaves, {j: (sigma[j], w.codes[0][j][sigma[j]]) for j in segs}, None)
        assert loc.proof == proof
        reps.append(report_for(w.camp, loc, w.A[4 + t % 4]))
        w.camp.commit(reps[-1].commitment, reps[-1].informer)
    # not one item per reported segment (4 items, 3 segments; committed as such): BadLength
    good = report_of(w.camp.address, 0, leaves, {j: (sigma[j], w.codes[0][j][sigma[j]]) for j in range(4)}, None)
    loc = Located(0, 0b111, good.bits & 0b111, good.items, good.proof)
    odd = InformerReport(w.camp.address, w.A[8], 0, loc.mask, loc.bits, loc.items, loc.proof, b"\2" * 32,
                         commitment(w.A[8], loc.blob, b"\2" * 32))
    w.camp.commit(odd.commitment, w.A[8])
    w.ch.advance(q.min_age)
    for rep in reps:
        w.camp.reveal(rep.located, rep.salt, rep.informer)  # every subset of >= k segments opens (parity)
    assert w.camp.license(0).reports == len(reps)
    w.fails("BadLength", w.camp.reveal, odd.located, odd.salt, w.A[8])


def test_every_segment_position_opens_at_64_segments():
    """`CodeTree.pairWords` finds segment j as the lowest set bit of the remaining mask (a de Bruijn table over two
    words): reports whose segments sit at both ends of each table word and of the 64-bit mask open, in one
    multiproof each; a mask with more or fewer bits than items is BadLength."""
    q = Params(**{**P.__dict__, "segments": 64})
    w = World(k=1, params=q, escrow=R + D)
    leaves = w.camp.code_index()[0]
    sigma = w.lic[0].choice.sigma
    found = {j: (sigma[j], w.codes[0][j][sigma[j]]) for j in range(64)}
    picks = [[0, 31, 32, 63], [1, 30, 33, 62], [5, 17, 40, 58]]
    reps = [report_for(w.camp, report_of(w.camp.address, 0, leaves, {j: found[j] for j in segs}, None), w.A[4 + n])
            for n, segs in enumerate(picks)]
    good = reps[0].located
    short = Located(0, good.mask, good.bits, good.items[:3], good.proof)  # 4 segments, 3 items
    bad = report_for(w.camp, short, w.A[8])
    for r in reps + [bad]:
        w.camp.commit(r.commitment, r.informer)
    w.ch.advance(q.min_age)
    w.fails("BadLength", w.camp.reveal, bad.located, bad.salt, w.A[8])
    for r in reps:
        w.camp.reveal(r.located, r.salt, r.informer)
    lic = w.camp.license(0)
    assert lic.reports == 3 and lic.mask == sum(1 << j for segs in picks for j in segs)
    assert lic.bits == sum(sigma[j] << j for segs in picks for j in segs)
