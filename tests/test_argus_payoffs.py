"""Who pays whom in every outcome of a licence (the README's payoff table), each row to the last wei: every account's
balance change equals what the table says minus the gas it paid, and what stays in the contract is exactly the
burned R - n*f(n). The owner's payoff never depends on the number n of reports (issue 11, item 2)."""

from __future__ import annotations

from offchain.campaign.codes import reward
from protocol.campaign.binding import LicenseStatus
from protocol.campaign.informer import prepare_report
from tests.test_argus_contract import P, World, gas_paid
from tests.test_argus_contract import _home  # noqa: F401  (autouse: PINPOINT_HOME in a temporary directory)

R, D = P.reward, P.deposit


def f(n: int) -> int:
    return reward(P.reward, P.rho_num, P.rho_den, n)


class Ledger:
    """Balances of every account from now on, and the gas each paid (charged to the tx's sender)."""

    def __init__(self, w: World):
        self.w, self.ch = w, w.ch
        self.start = {a: w.ch.balance(a) for a in w.A}
        self.gas = {a: 0 for a in w.A}

    def __call__(self, tx):
        self.gas[tx.receipt["from"]] += gas_paid(self.ch, tx)
        return tx

    def withdraw_all(self) -> None:
        for a in self.w.A:
            if self.w.camp.credit(a):
                self(self.w.camp.withdraw(a))

    def check(self, expected: dict[str, int], burned: int) -> None:
        """``expected``: account -> wei received (negative: paid) since the ledger started, gas excluded."""
        w = self.w
        for a in w.A:
            assert w.ch.balance(a) - self.start[a] == expected.get(a, 0) - self.gas[a], a
        assert w.camp.burned() == burned
        assert w.ch.balance(w.camp.address) == burned  # nothing else left: every wei accounted for


def _report(w: World, L: Ledger, informers: list[str], i: int, bits=None):
    reps = [prepare_report(w.camp, w.copy_of(i, bits), a, every=True) for a in informers]
    for r in reps:
        L(w.camp.commit(r.commitment, r.informer))
    w.ch.advance(P.min_age)
    for r in reps:
        L(w.camp.reveal(r.located, r.salt, r.informer))
    w.ch.advance(P.collection_window)
    for r in reps:
        L(w.camp.claim(r.commitment, r.informer))
    return reps


def _end(w: World, L: Ledger) -> None:
    """After the campaign: everyone withdraws; the owner takes its escrow."""
    L.withdraw_all()
    w.ch.advance(P.duration + P.min_age + P.collection_window)
    for i, lic in enumerate(w.lic):
        if w.camp.license(i).status == LicenseStatus.LICENSED:
            L(w.camp.refund(i, w.A[1 + i]))
    L.withdraw_all()
    if w.camp.escrow():
        L(w.camp.withdraw_escrow(w.owner))


def _guilty(n: int) -> tuple[int, int]:
    """Licensee 0 leaks, n independent informers report, no appeal: (owner's gain, burned)."""
    w = World(k=1, escrow=R + D)
    L = Ledger(w)
    informers = w.A[4:4 + n]
    _report(w, L, informers, 0)
    w.ch.advance(P.appeal_window)
    L(w.camp.set_guilty(0, w.A[9]))
    _end(w, L)
    exp = {w.owner: (R + D) + (D - R), **{a: f(n) for a in informers}}  # leaker (A[1]): its deposit is gone
    L.check(exp, R - n * f(n))
    return exp[w.owner], R - n * f(n)


def test_guilty_owner_payoff_independent_of_n():
    """Row "guilty": informers n*f(n) from the deposit, owner D_L - R, R - n*f(n) burned, the reserve back.
    Attack 2 (old contract): the owner's sock puppets revealing after an honest informer raised its credit
    D_L - n*f(n) from 0.2 ETH (n = 1) towards D_L; now it is D_L - R for n = 1, 3 and 5."""
    gains = {n: _guilty(n) for n in (1, 3, 5)}
    assert {g for g, _ in gains.values()} == {2 * D}  # escrow R + D_L back + D_L - R
    assert gains[1][1] == 0 and gains[5][1] == R - 5 * f(5) > 0


def test_self_reported_leak_loses_deposit_minus_r():
    """Row "self-report": the leaker reports its own copy through a sock puppet (the only report: f(1) = R);
    leaker + sock puppet lose D_L - R = 0.2 ETH; the owner gets D_L - R as in any guilty verdict."""
    w = World(k=1, escrow=R + D)
    L = Ledger(w)
    sock = w.A[7]
    _report(w, L, [sock], 0)
    w.ch.advance(P.appeal_window)
    L(w.camp.set_guilty(0, w.A[9]))
    _end(w, L)
    L.check({w.owner: (R + D) + (D - R), sock: R}, 0)  # the leaker's D_L (paid at join) is gone: net -(D_L - R)


def test_cleared_owner_loses_r_plus_deposit_whatever_n():
    """Row "cleared" (framed by the owner, appeal won): the licensee gets 2*D_L; the reserve's R pays the
    n informers of the forged copy (here the owner's own identity and one other) and R - n*f(n) is burned: the
    owner loses R + D_L, not R + D_L - (R - n*f(n))."""
    w = World(k=1, escrow=R + D)
    L = Ledger(w)
    sigma = w.lic[0].choice.sigma
    forged = [1 - sigma[0]] + sigma[1:]
    owner_id, friend = w.A[8], w.A[6]
    _report(w, L, [owner_id, friend], 0, forged)
    L(w.camp.appeal(0, w.lic[0].choice, 0, w.A[1]))
    assert w.camp.license(0).status == LicenseStatus.CLEARED
    _end(w, L)
    L.check({w.A[1]: 2 * D, owner_id: f(2), friend: f(2)}, R - 2 * f(2))  # the owner's escrow (R + D_L) is gone
    assert w.camp.escrow() == 0


def test_framed_by_a_lucky_guess_is_a_guilty_verdict():
    """Row "framed, guessed right" (probability 2^-S per attempt): the licensee cannot appeal and loses D_L; the
    owner gets D_L - R plus its informer identity's R. Its expected gain over an attempt,
    2^-S*D_L - (1 - 2^-S)*D_L, is negative for S >= 2 (S >= 4 enforced)."""
    w = World(k=1, escrow=R + D)
    L = Ledger(w)
    owner_id = w.A[8]
    _report(w, L, [owner_id], 0)  # the true bits: the owner's guess was right
    for j in range(P.segments):
        w.fails("BadOpening", w.camp.appeal, 0, w.lic[0].choice, j, w.A[1])
    w.ch.advance(P.appeal_window)
    L(w.camp.set_guilty(0, w.A[9]))
    _end(w, L)
    L.check({w.owner: (R + D) + (D - R), owner_id: R}, 0)


def test_expired_licence_refunded():
    """Row "expired": never accused; after `revealsClose` the deposit is refunded and the reserve returns to the
    escrow; nobody gains or loses but gas."""
    w = World(k=1, escrow=R + D)
    L = Ledger(w)
    w.ch.advance(P.duration)
    w.fails("CampaignNotEnded", w.camp.refund, 0, w.A[1])  # first reveals still open
    _end(w, L)
    L.check({w.owner: R + D, w.A[1]: D}, 0)


def test_escrow_exhausted_refuses_licensing_not_reports():
    """Row "escrow exhausted": the owner cannot license beyond its escrow (EscrowExhausted at `license`); the
    joined licensee takes its deposit back at once; reports of licensed copies never need escrow."""
    w = World(k=1, escrow=R + D)
    L = Ledger(w)
    from protocol.campaign.licensee import licensee_join
    from offchain.campaign.codes import code_leaves, new_codes

    lic, tx = licensee_join(w.camp, w.A[2])
    L(tx)
    leaves = code_leaves(w.camp.address, lic.id, new_codes(P.segments))
    w.fails("EscrowExhausted", w.camp.license_tx, lic.id, leaves, b"\1" * 32, w.owner)
    L(w.camp.refund(lic.id, w.A[2]))
    _end(w, L)
    L.check({w.owner: R + D, w.A[1]: D}, 0)  # licensee 1 (A[2]): deposit paid and refunded within the ledger
