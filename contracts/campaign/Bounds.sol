// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Bounds: the floors and ceilings of an Argus campaign's parameters, each with the attack it stops
/// @notice `Campaign`'s constructor reverts unless every parameter is within these bounds; the licensee's client
///         (`protocol/campaign/safety.py`, held against `Campaign.bounds` by tests/test_argus_attacks.py) refuses to
///         join a campaign outside them. Times in seconds, rho = rhoNum / rhoDen.
library Bounds {
    /// @notice S >= 4: an owner framing a licensee by guessing its variants is right with probability 2^-S; with
    ///         S >= 4 its expected payoff D_L*(2^(1-S) - 1) is negative (a lost appeal costs it R + D_L).
    uint256 internal constant MIN_SEGMENTS = 4;
    /// @notice S <= 64: the reported variants fit the 64-bit `bits` of a licence.
    uint256 internal constant MAX_SEGMENTS = 64;
    /// @notice k >= 3 segments per report (the quorum; k <= S): a report may carry any k or more segments of one
    ///         licensee's copy (partial and mixed copies). The owner knows both variants of every segment and the
    ///         licensee's choice is hidden by OT, so each reported segment is one guessed bit: framing with k
    ///         segments succeeds only if the licensee cannot appeal, with probability 2^-k <= 1/8 (m = 1).
    uint256 internal constant MIN_QUORUM = 3;
    /// @notice Framing by guessing succeeds with probability P(k, m) = 2^-k * sum_{i<m} C(k, i) <= 2^-3: the
    ///         framed licensee wins its appeal unless fewer than m (the appeal quorum) of the owner's k guesses are
    ///         wrong. With m = 1 this is k >= 3; m = 2 needs k >= 6, m = 3 needs k >= 9. The owner's expected
    ///         payoff of an attempt is then negative (it loses R + D_L when cleared, gains at most D_L).
    uint256 internal constant FRAMING_BITS = 3;
    /// @notice rho >= 1/10 (10*rhoNum >= rhoDen): with rho = 0 one extra report (the owner's or a sock puppet's)
    ///         cuts an honest informer's reward from R to 0; with rho >= 1/10 it cuts it by at most a factor 10.
    uint256 internal constant MIN_RHO_INVERSE = 10;
    /// @notice rho < 1/2 (2*rhoNum < rhoDen): Sybil-proofness, k*f(m+k-1) < f(m) (`Rewards`).
    uint256 internal constant MAX_RHO_INVERSE = 2;
    /// @notice D_L >= 2*R: a leaker that reports its own copy through sock puppets recovers at most R, so it
    ///         loses at least D_L - R >= D_L/2 (with D_L = R + 1 it lost 1 wei).
    uint256 internal constant MIN_DEPOSIT_OVER_REWARD = 2;
    /// @notice minAge >= 60 s: a mempool watcher that sees the first reveal cannot get a commitment mined minAge
    ///         before it (with minAge = 0 it committed and revealed in the reveal's block and shared R).
    uint256 internal constant MIN_AGE_FLOOR = 60;
    /// @notice minAge <= 1 day (ENS's ceiling): commitments must be revealable well within the campaign.
    uint256 internal constant MIN_AGE_CEILING = 1 days;
    /// @notice collectionWindow >= 1 hour: informers that committed before the first reveal have time to
    ///         reveal once it is public (with 0, only the first revealer's block counted).
    uint256 internal constant MIN_COLLECTION_WINDOW = 1 hours;
    /// @notice collectionWindow <= 30 days: rewards become final (claimable) within a month.
    uint256 internal constant MAX_COLLECTION_WINDOW = 30 days;
    /// @notice appealWindow >= 1 day: a framed licensee has a day to open one choice (with 0 no appeal could
    ///         ever succeed and the owner framed with certainty).
    uint256 internal constant MIN_APPEAL_WINDOW = 1 days;
    /// @notice appealWindow <= 30 days: a verdict (and the reserve it holds) is final within a month.
    uint256 internal constant MAX_APPEAL_WINDOW = 30 days;
    /// @notice duration >= 1 day: licensees can be accused at all (a campaign that ends at once is a deposit trap
    ///         with no campaign).
    uint256 internal constant MIN_DURATION = 1 days;
    /// @notice duration <= 5 years: deposits are refundable within a bounded time (an endless campaign locks them).
    uint256 internal constant MAX_DURATION = 5 * 365 days;

    error BadReward(uint256 reward);
    error BadRho(uint256 num, uint256 den);
    error DepositTooSmall(uint256 deposit, uint256 reward);
    error BadSegments(uint256 segments);
    error BadMinAge(uint256 minAge);
    error BadCollectionWindow(uint256 window);
    error BadAppealWindow(uint256 window);
    error BadDuration(uint256 duration);
    error BadQuorum(uint256 quorum, uint256 appealQuorum);

    /// @notice Revert with the parameter's custom error unless every parameter is within bounds.
    /// @custom:reverts BadReward (R == 0), BadRho, DepositTooSmall, BadSegments, BadMinAge, BadCollectionWindow,
    ///         BadAppealWindow, BadDuration, BadQuorum (k not in MIN_QUORUM..S, m not in 1..k, or framing odds
    ///         P(k, m) above 2^-FRAMING_BITS)
    function check(
        uint256 reward,
        uint256 rhoNum,
        uint256 rhoDen,
        uint256 deposit,
        uint256 segments,
        uint256 minAge,
        uint256 collectionWindow,
        uint256 appealWindow,
        uint256 duration,
        uint256 quorum,
        uint256 appealQuorum
    ) internal pure {
        if (reward == 0) revert BadReward(reward);
        if (MAX_RHO_INVERSE * rhoNum >= rhoDen || MIN_RHO_INVERSE * rhoNum < rhoDen) revert BadRho(rhoNum, rhoDen);
        if (deposit < MIN_DEPOSIT_OVER_REWARD * reward) revert DepositTooSmall(deposit, reward);
        if (segments < MIN_SEGMENTS || segments > MAX_SEGMENTS) revert BadSegments(segments);
        if (minAge < MIN_AGE_FLOOR || minAge > MIN_AGE_CEILING) revert BadMinAge(minAge);
        if (collectionWindow < MIN_COLLECTION_WINDOW || collectionWindow > MAX_COLLECTION_WINDOW) {
            revert BadCollectionWindow(collectionWindow);
        }
        if (appealWindow < MIN_APPEAL_WINDOW || appealWindow > MAX_APPEAL_WINDOW) revert BadAppealWindow(appealWindow);
        if (duration < MIN_DURATION || duration > MAX_DURATION) revert BadDuration(duration);
        if (quorum < MIN_QUORUM || quorum > segments || appealQuorum == 0 || appealQuorum > quorum
            || (framingOdds(quorum, appealQuorum) << FRAMING_BITS) > (1 << quorum)) {
            revert BadQuorum(quorum, appealQuorum);
        }
    }

    /// @notice sum_{i<m} C(k, i): the number of the 2^k guesses of k segments that leave fewer than m wrong (so
    ///         the framed licensee cannot appeal). k <= 64, m <= k.
    function framingOdds(uint256 k, uint256 m) internal pure returns (uint256 s) {
        uint256 c = 1; // C(k, i)
        for (uint256 i = 0; i < m; ++i) {
            s += c;
            c = (c * (k - i)) / (i + 1);
        }
    }

    /// @notice The bounds as (floor, ceiling) pairs in this order: segments, 1/rho (ceiling exclusive: rho < 1/2),
    ///         deposit/R (ceiling 0: none), minAge, collectionWindow, appealWindow, duration (seconds), then the
    ///         quorum floor and the framing bound's FRAMING_BITS.
    function all() internal pure returns (uint256[16] memory b) {
        b = [MIN_SEGMENTS, MAX_SEGMENTS, MAX_RHO_INVERSE, MIN_RHO_INVERSE, MIN_DEPOSIT_OVER_REWARD, 0,
            MIN_AGE_FLOOR, MIN_AGE_CEILING, MIN_COLLECTION_WINDOW, MAX_COLLECTION_WINDOW, MIN_APPEAL_WINDOW,
            MAX_APPEAL_WINDOW, MIN_DURATION, MAX_DURATION, MIN_QUORUM, FRAMING_BITS];
    }
}
