// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Rewards: the Sybil-proof reward schedule of an Argus campaign
/// @notice When n valid reports of one leaked copy arrive, each earns f(n) = R * rho^(n-1), rho = num/den < 1/2,
///         computed as n-1 successive floor(f * num / den) (the same as `reward` in `offchain/campaign/codes.py`,
///         held against this by tests/test_argus_props.py). Since f(m+1) <= f(m) * rho < f(m)/2 whenever
///         f(m) > 0, an informer with k >= 2 identities earns k * f(m+k-1) < f(m): less than alone
///         (Sybil-proofness). n * f(n) <= R, so R of escrow per leaked copy pays every report whatever n is.
library Rewards {
    /// @notice f(n) in wei for reward `r` (wei) and decay num/den; 0 for n == 0.
    function perReport(uint256 r, uint256 num, uint256 den, uint256 n) internal pure returns (uint256 f) {
        if (n == 0) return 0;
        f = r;
        for (uint256 i = 1; i < n && f != 0; ++i) {
            f = (f * num) / den;
        }
    }
}
