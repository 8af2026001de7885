"""The reward schedule: Sybil-proofness as a property (Python) and the contract held against the Python."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from offchain.campaign import ot
from offchain.campaign.codes import reward
from protocol.campaign.binding import Campaign, Params
from protocol.chain.connection import Chain

R = st.integers(1, 10**24)
RHO = st.integers(2, 10**6).flatmap(lambda den: st.tuples(st.integers(0, (den - 1) // 2), st.just(den)))
# rho in the contract's bounds [1/10, 1/2) (`contracts/campaign/Bounds.sol`)
SAFE_RHO = st.integers(3, 10**6).flatmap(lambda den: st.tuples(st.integers(-(-den // 10), (den - 1) // 2),
                                                                st.just(den)))


@settings(max_examples=400, deadline=None)
@given(r=R, rho=RHO, m=st.integers(1, 200), k=st.integers(2, 200))
def test_sybil_identities_earn_less(r, rho, m, k):
    """k identities among m+k-1 reports earn k*f(m+k-1) < f(m), what one identity earns among m (while f(m) > 0)."""
    num, den = rho
    fm = reward(r, num, den, m)
    if fm > 0:
        assert k * reward(r, num, den, m + k - 1) < fm
    else:
        assert reward(r, num, den, m + k - 1) == 0


@settings(max_examples=300, deadline=None)
@given(r=R, rho=RHO, n=st.integers(1, 300))
def test_total_rewards_within_the_escrow(r, rho, n):
    num, den = rho
    assert n * reward(r, num, den, n) <= r


def test_rho_of_one_half_is_not_sybil_proof():
    """The bound is tight: with rho = 1/2 two identities earn as much as one (why the contract demands < 1/2)."""
    assert 2 * reward(2**40, 1, 2, 2) == reward(2**40, 1, 2, 1)


_CHAIN = {}


def _campaign(r, num, den):
    if "c" not in _CHAIN:
        _CHAIN["c"] = Chain()
    ch = _CHAIN["c"]
    p = Params(reward=r, rho_num=num, rho_den=den, deposit=2 * r)
    return Campaign.create(ch, p, ot.OwnerKey.generate().A, r + p.deposit)[0]


@settings(max_examples=12, deadline=None)
@given(r=st.integers(1, 10**21), rho=SAFE_RHO)
def test_contract_reward_equals_python(r, rho):
    num, den = rho
    camp = _campaign(r, num, den)
    for n in (0, 1, 2, 3, 7, 40, 300):
        assert camp.reward_for(n) == reward(r, num, den, n)
