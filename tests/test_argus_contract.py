"""Campaign contract on the in-process chain: the happy path to the last wei, front-running, framing and
repudiation, window edges (exact seconds) and every rejected input by its custom error name."""

from __future__ import annotations

import pytest

from offchain.campaign import ot
from offchain.campaign.codes import Located, code_leaves, commitment, new_codes, reward
from protocol.campaign.binding import Campaign, LicenseStatus, Params
from protocol.campaign.informer import InformerReport, prepare_report
from protocol.campaign.licensee import Licensee, licensee_join
from protocol.chain.connection import Chain, ChainError

P = Params(reward=10**17, rho_num=1, rho_den=3, deposit=3 * 10**17, segments=4, min_age=60,
           collection_window=3600, appeal_window=86400, duration=30 * 86400)
ESCROW = 2 * (P.reward + P.deposit)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("PINPOINT_HOME", str(tmp_path))


class World:
    """A campaign with licensees 0..k-1 (accounts 1..k), licensed with known codes (no images: the OT itself
    is exercised in test_argus_ot.py)."""

    def __init__(self, k: int = 2, params: Params = P, escrow: int = ESCROW):
        self.ch = Chain()
        self.A = self.ch.accounts
        self.owner = self.A[0]
        self.key = ot.OwnerKey.generate()
        self.p = params
        self.camp, self.create_tx = Campaign.create(self.ch, params, self.key.A, escrow, sender=self.owner)
        self.lic: list[Licensee] = []
        self.codes = []
        for i in range(k):
            lic, _ = licensee_join(self.camp, self.A[1 + i])
            codes = new_codes(params.segments)
            self.camp.license_tx(lic.id, code_leaves(self.camp.address, lic.id, codes), b"\x11" * 32, self.owner)
            self.lic.append(lic)
            self.codes.append(codes)

    def copy_of(self, i: int, bits: list[int] | None = None) -> list[bytes]:
        """The codes of licensee i's variants ``bits`` (default: the ones it really chose)."""
        bits = self.lic[i].choice.sigma if bits is None else bits
        return [self.codes[i][j][b] for j, b in enumerate(bits)]

    def report(self, informer: str, i: int, bits=None, every: bool = True) -> InformerReport:
        """Commit a report of licensee i's copy (variants ``bits``), opening every segment (``every``) or the
        quorum."""
        rep = prepare_report(self.camp, self.copy_of(i, bits), informer, every=every)
        self.camp.commit(rep.commitment, informer)
        return rep

    def at(self, t: int) -> None:
        """The next transaction is mined at exactly t (seconds)."""
        self.ch.tester.time_travel(t)

    def committed_at(self, rep: InformerReport) -> int:
        return self.ch.call(self.camp.fn.committedAt(rep.informer, rep.commitment))

    def fails(self, error: str, fn, *args, **kw):
        with pytest.raises(ChainError) as e:
            fn(*args, **kw)
        assert e.value.error == error, str(e.value)
        return e.value


def gas_paid(ch: Chain, tx) -> int:
    return int(tx.receipt["gasUsed"]) * int(tx.receipt["effectiveGasPrice"])


def test_guilty_leak_every_wei_accounted():
    w = World(k=2)
    ch, camp = w.ch, w.camp
    informers = w.A[4:7]
    start = {a: ch.balance(a) for a in w.A[:7]}
    gas = {a: 0 for a in w.A[:7]}
    # creation (escrow ESCROW), joins and licences happened in World, before `start`
    reps = []
    for a in informers:
        rep = prepare_report(camp, w.copy_of(0), a)
        gas[a] += gas_paid(ch, camp.commit(rep.commitment, a))
        reps.append(rep)
    ch.advance(P.min_age)
    for rep in reps:
        gas[rep.informer] += gas_paid(ch, camp.reveal(rep.located, rep.salt, rep.informer))
    lic0 = camp.license(0)
    assert lic0.status == LicenseStatus.ACCUSED and lic0.reports == 3
    assert bin(lic0.mask).count("1") == P.quorum  # each report opens the quorum k (the cheapest run)
    assert lic0.bits == sum(s << j for j, s in enumerate(w.lic[0].choice.sigma) if lic0.mask >> j & 1)
    held = P.reward + 2 * P.deposit  # per licence: deposit + reserve R + D_L (licensee 1's too)
    assert camp.escrow() == 0 and ch.balance(camp.address) == 2 * held
    ch.advance(P.collection_window)
    f3 = reward(P.reward, P.rho_num, P.rho_den, 3)
    assert camp.reward_for(3) == f3 == P.reward // 9
    for rep in reps:
        gas[rep.informer] += gas_paid(ch, camp.claim(rep.commitment, rep.informer))
    ch.advance(P.appeal_window)
    gas[w.A[6]] += gas_paid(ch, camp.set_guilty(0, w.A[6]))
    assert camp.license(0).status == LicenseStatus.GUILTY
    assert camp.credit(w.owner) == P.deposit - P.reward  # whatever n (owner-neutral)
    assert camp.burned() == P.reward - 3 * f3
    gas[w.owner] += gas_paid(ch, camp.withdraw(w.owner))
    ch.advance(P.duration + P.min_age + P.collection_window)  # first reveals closed: licensee 1 refundable
    gas[w.A[2]] += gas_paid(ch, camp.refund(1, w.A[2]))
    gas[w.A[2]] += gas_paid(ch, camp.withdraw(w.A[2]))
    gas[w.owner] += gas_paid(ch, camp.withdraw_escrow(w.owner))
    assert ch.balance(camp.address) == camp.burned()
    end = {a: ch.balance(a) for a in w.A[:7]}
    for a in informers[:2]:
        assert end[a] - start[a] == f3 - gas[a]
    assert end[w.A[6]] - start[w.A[6]] == f3 - gas[w.A[6]]
    # the owner: its whole escrow back, plus D_L - R of the slashed deposit (R - 3*f(3) of it burned)
    assert end[w.owner] - start[w.owner] == ESCROW + P.deposit - P.reward - gas[w.owner]
    assert end[w.A[2]] - start[w.A[2]] == P.deposit - gas[w.A[2]]  # innocent licensee 1: its deposit back


def test_framed_licensee_wins_appeal_and_is_compensated():
    w = World(k=1)
    ch, camp = w.ch, w.camp
    true_bits = w.lic[0].choice.sigma
    forged = [1 - true_bits[0]] + true_bits[1:]  # the owner guesses wrong on segment 0
    rep = w.report(w.A[5], 0, forged)
    ch.advance(P.min_age)
    camp.reveal(rep.located, rep.salt, rep.informer)
    escrow_after_accuse = camp.escrow()
    assert escrow_after_accuse == ESCROW - P.reward - P.deposit
    w.fails("AppealWindowNotOpen", camp.appeal, 0, w.lic[0].choice, 0, w.A[1])
    ch.advance(P.collection_window)
    # segments where the report matches the choice cannot be opened the other way
    w.fails("BadOpening", camp.appeal, 0, w.lic[0].choice, 1, w.A[1])
    before = ch.balance(w.A[1])
    tx = camp.appeal(0, w.lic[0].choice, 0, w.A[1])
    assert camp.license(0).status == LicenseStatus.CLEARED
    assert camp.credit(w.A[1]) == 2 * P.deposit
    assert camp.escrow() == escrow_after_accuse + P.reward - P.reward  # R - 1*f(1) = 0 back
    tx2 = camp.withdraw(w.A[1])
    assert ch.balance(w.A[1]) - before == 2 * P.deposit - gas_paid(ch, tx) - gas_paid(ch, tx2)
    camp.claim(rep.commitment, w.A[5])  # the informer is paid from the licence's reserve
    assert ch.balance(camp.address) == camp.escrow()
    w.fails("WrongStatus", camp.set_guilty, 0, w.A[6])
    assert tx.gas < 80_000  # two precompile calls and the choice points in calldata


def test_guilty_licensee_cannot_repudiate():
    w = World(k=1)
    camp = w.camp
    rep = w.report(w.A[5], 0)
    w.ch.advance(P.min_age)
    camp.reveal(rep.located, rep.salt, rep.informer)
    w.ch.advance(P.collection_window)
    for j in range(P.segments):
        w.fails("BadOpening", camp.appeal, 0, w.lic[0].choice, j, w.A[1])
    fake = ot.Choice(w.lic[0].choice.sigma, w.lic[0].choice.b, list(reversed(w.lic[0].choice.B)))
    w.fails("BadChoice", camp.appeal, 0, fake, 0, w.A[1])
    w.fails("NotLicensee", camp.appeal, 0, w.lic[0].choice, 0, w.A[2])
    w.fails("BadSegment", w.ch.send, camp.fn.appeal(0, w.lic[0].choice.words(), [P.segments], [1]), sender=w.A[1])
    w.fails("AppealWindowOpen", camp.set_guilty, 0, w.A[6])
    w.ch.advance(P.appeal_window)
    w.fails("AppealWindowClosed", camp.appeal, 0, w.lic[0].choice, 0, w.A[1])
    camp.set_guilty(0, w.A[6])
    w.fails("WrongStatus", camp.set_guilty, 0, w.A[6])


def test_copied_commitment_is_useless():
    w = World(k=1)
    camp = w.camp
    honest = w.report(w.A[5], 0)
    # the copier commits the very same hash (e.g. front-running it): allowed, and it neither blocks the
    # original (commitments are keyed by sender) nor can be revealed by the copier, even once the codes are public
    camp.commit(honest.commitment, w.A[6])
    w.ch.advance(P.min_age)
    camp.reveal(honest.located, honest.salt, honest.informer)
    w.fails("UnknownCommitment", camp.reveal, honest.located, honest.salt, w.A[6])
    assert camp.license(0).reports == 1


def test_commitment_after_first_reveal_earns_nothing():
    w = World(k=1)
    camp = w.camp
    first = w.report(w.A[5], 0)
    w.ch.advance(P.min_age)
    camp.reveal(first.located, first.salt, first.informer)
    # a second informer sees the reveal (the codes are now public) and commits, then waits the minimum age
    late = prepare_report(camp, w.copy_of(0), w.A[6])
    camp.commit(late.commitment, w.A[6])
    w.ch.advance(P.min_age)
    w.fails("CommitmentTooLate", camp.reveal, late.located, late.salt, w.A[6])
    assert camp.license(0).reports == 1


def test_window_edges_exact_seconds():
    w = World(k=1)
    camp = w.camp
    a, b, c = w.report(w.A[5], 0), None, None
    t_a = w.committed_at(a)
    b = w.report(w.A[6], 0)
    t_b = w.committed_at(b)
    # reveal exactly one second before the minimum age: too young; at the minimum age: accepted
    w.at(t_a + P.min_age - 1)
    w.fails("CommitmentTooYoung", camp.reveal, a.located, a.salt, a.informer)
    w.at(t_b + P.min_age)  # b reveals first, at exactly its minimum age
    camp.reveal(b.located, b.salt, b.informer)
    first = camp.license(0).accused_at
    assert first == t_b + P.min_age
    # a was committed earlier than b, so it is at least min_age old at the first reveal: counts
    c = prepare_report(camp, w.copy_of(0), w.A[7])
    camp.commit(c.commitment, w.A[7])
    assert w.committed_at(c) + P.min_age > first
    w.at(first + P.collection_window - 1)  # last second of the collection window
    w.fails("CommitmentTooLate", camp.reveal, c.located, c.salt, c.informer)  # (a failed call mines nothing)
    camp.reveal(a.located, a.salt, a.informer)
    w.at(first + P.collection_window)
    w.fails("CollectionClosed", camp.reveal, c.located, c.salt, c.informer)
    # claims: not before the window closes
    w2 = World(k=1)
    r = w2.report(w2.A[5], 0)
    w2.ch.advance(P.min_age)
    w2.camp.reveal(r.located, r.salt, r.informer)
    t0 = w2.camp.license(0).accused_at
    w2.at(t0 + P.collection_window - 1)
    w2.fails("RewardNotFinal", w2.camp.claim, r.commitment, r.informer)
    w2.at(t0 + P.collection_window)
    w2.camp.claim(r.commitment, r.informer)
    w2.at(t0 + P.collection_window + P.appeal_window - 1)
    w2.fails("AppealWindowOpen", w2.camp.set_guilty, 0, w2.A[8])
    w2.at(t0 + P.collection_window + P.appeal_window)
    w2.camp.set_guilty(0, w2.A[8])


def test_appeal_window_edges():
    w = World(k=1)
    camp = w.camp
    sigma = w.lic[0].choice.sigma
    r = w.report(w.A[5], 0, [1 - s for s in sigma])
    w.ch.advance(P.min_age)
    camp.reveal(r.located, r.salt, r.informer)
    t0 = camp.license(0).accused_at
    w.at(t0 + P.collection_window - 1)
    w.fails("AppealWindowNotOpen", camp.appeal, 0, w.lic[0].choice, 2, w.A[1])
    w.at(t0 + P.collection_window + P.appeal_window)
    w.fails("AppealWindowClosed", camp.appeal, 0, w.lic[0].choice, 2, w.A[1])
    w2 = World(k=1)
    s2 = w2.lic[0].choice.sigma
    r2 = w2.report(w2.A[5], 0, [1 - s for s in s2])
    w2.ch.advance(P.min_age)
    w2.camp.reveal(r2.located, r2.salt, r2.informer)
    t2 = w2.camp.license(0).accused_at
    w2.at(t2 + P.collection_window + P.appeal_window - 1)  # last second
    w2.camp.appeal(0, w2.lic[0].choice, 3, w2.A[1])
    assert w2.camp.license(0).status == LicenseStatus.CLEARED


def test_bad_reports_rejected_by_name():
    w = World(k=2)
    camp = w.camp
    inf = w.A[5]
    good = prepare_report(camp, w.copy_of(0), inf)
    camp.commit(good.commitment, inf)
    w.fails("CommitmentExists", camp.commit, good.commitment, inf)
    w.fails("CommitmentTooYoung", camp.reveal, good.located, good.salt, inf)
    w.ch.advance(P.min_age)
    # wrong licensee: licensee 1's commitment does not cover licensee 0's codes
    loc = good.located
    wrong_lic = Located(1, loc.mask, loc.bits, loc.items, loc.proof)
    w.fails("CodeMismatch", camp.reveal, wrong_lic, good.salt, inf)  # leaves are bound to the licensee id
    w.fails("WrongStatus", camp.reveal, Located(9, loc.mask, loc.bits, loc.items, loc.proof), good.salt, inf)
    # wrong codes (one code altered): a different commitment, so first the commitment check fails ...
    def altered(byte: int) -> InformerReport:
        items = [bytearray(w) for w in loc.items]
        items[0][byte] ^= 1
        items = [bytes(w) for w in items]
        return InformerReport(camp.address, inf, 0, loc.mask, loc.bits, items, loc.proof, good.salt,
                              commitment(inf, b"".join(items), good.salt))

    bad, bad_sibling = altered(0), altered(31)  # a code bit, or a bit of the other variant's leaf
    w.fails("UnknownCommitment", camp.reveal, bad.located, bad.salt, inf)
    camp.commit(bad.commitment, inf)  # ... and once committed, the proof of possession fails
    camp.commit(bad_sibling.commitment, inf)
    w.ch.advance(P.min_age)
    w.fails("CodeMismatch", camp.reveal, bad.located, bad.salt, inf)
    w.fails("CodeMismatch", camp.reveal, bad_sibling.located, bad_sibling.salt, inf)
    # wrong bits (claims the other variant): the hashes land in the wrong slots
    low = loc.mask & -loc.mask
    w.fails("CodeMismatch", camp.reveal, Located(0, loc.mask, loc.bits ^ low, loc.items, loc.proof), good.salt, inf)
    w.fails("BadBits", camp.reveal, Located(0, loc.mask, loc.bits | 1 << 4, loc.items, loc.proof), good.salt, inf)
    w.fails("BadBits", camp.reveal, Located(0, loc.mask | 1 << 4, loc.bits, loc.items, loc.proof), good.salt, inf)
    w.fails("CodeMismatch", camp.reveal, Located(0, loc.mask, loc.bits, loc.items, loc.proof[:-1]), good.salt, inf)
    w.fails("BadLength", camp.reveal, Located(0, loc.mask ^ low, loc.bits & ~low, loc.items, loc.proof), good.salt,
            inf)
    camp.reveal(good.located, good.salt, inf)
    w.fails("UnknownCommitment", camp.reveal, good.located, good.salt, inf)  # revealed once only
    # the same informer again with a fresh commitment, made after the first reveal: too late (a second
    # commitment made in time would count, as a second identity would: k identities earn k*f(m+k-1) < f(m))
    again = w.report(inf, 0)
    w.ch.advance(P.min_age)
    w.fails("CommitmentTooLate", camp.reveal, again.located, again.salt, inf)
    # another copy of the same licensee with different variants (only the owner can make one), committed after
    # the first reveal: too late (one committed in time counts, and the first-reported bits stand:
    # tests/test_argus_partial.py::test_later_reports_add_segments_first_bits_stand)
    other = w.report(w.A[6], 0, [1 - s for s in w.lic[0].choice.sigma])
    w.ch.advance(P.min_age)
    w.fails("CommitmentTooLate", camp.reveal, other.located, other.salt, w.A[6])
    # claims
    w.fails("RewardNotFinal", camp.claim, good.commitment, inf)
    w.ch.advance(P.collection_window)
    w.fails("NoReward", camp.claim, other.commitment, w.A[6])  # its reveal failed: committed, not revealed
    w.fails("NoReward", camp.claim, good.commitment, w.A[6])  # not its commitment
    w.fails("NoReward", camp.claim, b"\7" * 32, inf)  # no such commitment
    camp.claim(good.commitment, inf)
    w.fails("AlreadyClaimed", camp.claim, good.commitment, inf)
    w.fails("NothingToWithdraw", camp.withdraw, inf)


def test_bad_setup_and_licensing_rejected_by_name():
    w = World(k=1)
    ch, camp = w.ch, w.camp
    choice = ot.choose(w.key.A, [0, 1, 0, 1])
    w.fails("ValueMismatch", ch.send, camp.fn.join(choice.words()), sender=w.A[3], value=P.deposit - 1)
    w.fails("BadLength", ch.send, camp.fn.join(choice.words()[:6]), sender=w.A[3], value=P.deposit)
    lic, _ = camp.join(choice, w.A[3])
    hashes = code_leaves(camp.address, lic, new_codes(4))
    w.fails("NotOwner", camp.license_tx, lic, hashes, b"\0" * 32, w.A[3])
    w.fails("BadLength", camp.license_tx, lic, hashes[:6], b"\0" * 32, w.owner)
    w.fails("WrongStatus", camp.license_tx, 0, hashes, b"\0" * 32, w.owner)  # licensee 0 is licensed already
    w.fails("UnknownLicensee", camp.license_tx, 7, hashes, b"\0" * 32, w.owner)
    w.fails("CampaignNotEnded", camp.refund, 0, w.A[1])
    w.fails("CampaignNotEnded", camp.withdraw_escrow, w.owner)
    w.fails("NotOwner", camp.withdraw_escrow, w.A[1])
    w.fails("NotOwner", ch.send, camp.fn.fund(), sender=w.A[1], value=1)
    camp.refund(lic, w.A[3])  # never licensed: may leave at once
    w.fails("WrongStatus", camp.refund, lic, w.A[3])
    for bad, err in [(dict(deposit=P.reward), "DepositTooSmall"), (dict(rho_num=1, rho_den=2), "BadRho"),
                     (dict(rho_den=0), "BadRho"), (dict(segments=0), "BadSegments"),
                     (dict(segments=65), "BadSegments")]:
        q = Params(**{**P.__dict__, **bad})
        w.fails(err, Campaign.create, ch, q, w.key.A, 10**19, sender=w.owner)
    w.fails("EscrowTooSmall", Campaign.create, ch, P, w.key.A, P.reward + P.deposit - 1, sender=w.owner)
    w.fails("BadPoint", Campaign.create, ch, P, (1, 3), ESCROW, sender=w.owner)
    w.ch.advance(P.duration)
    w.fails("CampaignEnded", camp.commit, b"\1" * 32, w.A[5])
    w.fails("CampaignEnded", camp.join, choice, w.A[4])
