"""The safe parameters of a campaign, client side: the Python copy of `contracts/campaign/Bounds.sol` (held against
the contract's `Campaign.bounds` by tests/test_argus_attacks.py) and the check a licensee runs before it joins.

Each bound stops one attack (the NatSpec of `Bounds.sol` says which): framing by guessing (segments, and the
report and appeal quorums k and m: probability 2^-k * sum_{i<m} C(k, i) <= 1/8), an extra
report wiping out an honest informer's reward (rho >= 1/10), Sybil identities (rho < 1/2), a cheap self-report
(D_L >= 2R), mempool front-running of a reveal (min age >= 60 s), a collection window too short to reveal in, an
appeal window too short to appeal in, and deposits locked for ever (duration).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from offchain.campaign.codes import framing_probability

from offchain.common.errors import PinpointError

DAY = 86400


@dataclass(frozen=True)
class Bounds:
    """Floors and ceilings (inclusive unless said), the order of `Campaign.bounds`. Seconds for times."""

    min_segments: int = 4
    max_segments: int = 64
    rho_inverse_above: int = 2     # rho < 1/2: den > 2*num (exclusive)
    rho_inverse_at_most: int = 10  # rho >= 1/10: den <= 10*num
    min_deposit_over_reward: int = 2
    max_deposit_over_reward: int = 0  # 0: no ceiling
    min_age_floor: int = 60
    min_age_ceiling: int = DAY
    min_collection_window: int = 3600
    max_collection_window: int = 30 * DAY
    min_appeal_window: int = DAY
    max_appeal_window: int = 30 * DAY
    min_duration: int = DAY
    max_duration: int = 5 * 365 * DAY
    min_quorum: int = 3  # k >= 3 segments per report (and k <= S)
    framing_bits: int = 3  # framing by guessing succeeds with probability <= 2^-3

    def words(self) -> list[int]:
        """The 16 words `Campaign.bounds()` returns."""
        return list(self.__dict__.values())


BOUNDS = Bounds()


class UnsafeCampaign(PinpointError, ValueError):
    """A campaign's parameters are outside `BOUNDS`: joining it would expose the licensee to a known attack."""


def violations(p, ends_at: int | None = None, now: int | None = None, b: Bounds = BOUNDS) -> list[str]:
    """Every bound ``p`` (a `protocol.campaign.binding.Params`) breaks, as readable sentences (empty if safe). With ``ends_at`` and ``now`` (seconds),
    the remaining campaign time is checked instead of ``p.duration`` (which the chain does not store)."""
    out = []
    if p.reward <= 0:
        out.append("reward R is 0: no incentive to report")
    if not (b.rho_inverse_above * p.rho_num < p.rho_den <= b.rho_inverse_at_most * p.rho_num):
        out.append(f"rho = {p.rho_num}/{p.rho_den} is not in [1/{b.rho_inverse_at_most}, 1/{b.rho_inverse_above}) "
                   "(Sybil-proofness needs < 1/2; one extra report may cut an informer's reward 10x at most)")
    if p.deposit < b.min_deposit_over_reward * p.reward:
        out.append(f"deposit D_L = {p.deposit} wei < {b.min_deposit_over_reward}*R: a leaker reporting itself "
                   "loses too little")
    if not b.min_segments <= p.segments <= b.max_segments:
        out.append(f"{p.segments} segments not in {b.min_segments}..{b.max_segments} (framing by guessing)")
    for name, v, lo, hi, why in (
            ("min age", p.min_age, b.min_age_floor, b.min_age_ceiling, "mempool front-running of a reveal"),
            ("collection window", p.collection_window, b.min_collection_window, b.max_collection_window,
             "time for committed informers to reveal"),
            ("appeal window", p.appeal_window, b.min_appeal_window, b.max_appeal_window,
             "time for a framed licensee to appeal")):
        if not lo <= v <= hi:
            out.append(f"{name} {v} s not in {lo}..{hi} s ({why})")
    k, m = getattr(p, "quorum", 0), getattr(p, "appeal_quorum", 0)
    if not (b.min_quorum <= k <= p.segments and 1 <= m <= k) \
            or framing_probability(k, m) > Fraction(1, 2 ** b.framing_bits):
        out.append(f"quorum k = {k}, appeal quorum m = {m}: need {b.min_quorum} <= k <= S, 1 <= m <= k and framing by "
                   f"guessing at most 1/{2 ** b.framing_bits} likely (2^-k * sum_(i<m) C(k, i))")
    if ends_at is not None and now is not None:
        if not 0 < ends_at - now <= b.max_duration:
            out.append(f"the campaign ends in {ends_at - now} s, not in 1..{b.max_duration} s")
    elif not b.min_duration <= p.duration <= b.max_duration:
        out.append(f"duration {p.duration} s not in {b.min_duration}..{b.max_duration} s")
    return out


def require_safe(p, ends_at: int | None = None, now: int | None = None) -> None:
    """Raise UnsafeCampaign listing every violated bound (see `violations`)."""
    bad = violations(p, ends_at, now)
    if bad:
        raise UnsafeCampaign("campaign outside the safe parameters: " + "; ".join(bad))
