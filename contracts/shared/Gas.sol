// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Gas: the per-action gas table from which bonds are derived
/// @notice Upper bounds, in gas, of every action of a pinpoint game, measured on MobileNetV2-int8 by
///         `benchmarks/pinpoint_bench.py` and checked in CI by `tests/test_game.py` (both fail if a measured action
///         exceeds its bound here). Half a bond must pay for the winner's whole game (the loser's other half is
///         burned): bond = 2 * worstCase(traceDepth, maxTensorDepth) * bondGasPrice (wei per gas).
///         Pattern after Cartesi Dave's `Gas.sol`; the bond formula is ours (Agatha leaves deposits open).
library Gas {
    /// @notice k-ary search: each move expands 2**K_LOG children (k = 16).
    uint256 internal constant K_LOG = 4;

    uint256 internal constant CHALLENGE = 180_000; // challenge(): game creation and queue entry (measured 159k)
    uint256 internal constant REVEAL = 75_000; // reveal(): 16 children checked, and emitted (measured 65k)
    uint256 internal constant PICK = 60_000; // pick(): one child with K_LOG siblings (measured 50k)
    uint256 internal constant SELECT = 120_000; // selectOperator(): the phase-1 leaf, the descriptor (measured 96k)
    uint256 internal constant STEP = 450_000; // step(): the one-step of the most expensive operator (measured 361k)
    uint256 internal constant RESOLVE = 80_000; // timeout() / withdraw() after the game

    /// @notice Number of solver reveals (= challenger picks) of a full game.
    function rounds(uint256 traceDepth, uint256 tensorDepth) internal pure returns (uint256) {
        return _ceil(traceDepth) + _ceil(tensorDepth);
    }

    /// @notice Worst-case gas either party spends answering one game to its end (the larger of the two sides).
    function worstCase(uint256 traceDepth, uint256 maxTensorDepth) internal pure returns (uint256) {
        uint256 r = rounds(traceDepth, maxTensorDepth);
        uint256 challenger = CHALLENGE + r * PICK + SELECT + STEP + RESOLVE;
        uint256 solver = r * REVEAL + RESOLVE;
        return challenger > solver ? challenger : solver;
    }

    function _ceil(uint256 d) private pure returns (uint256) {
        return (d + K_LOG - 1) / K_LOG;
    }
}
