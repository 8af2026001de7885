// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Gas: the per-action gas table from which bonds are derived
/// @notice Upper bounds, in gas, of every action of a pinpoint game, measured on MobileNetV2-int8 by
///         `benchmarks/pinpoint_bench.py` (which fails if a measured action exceeds its bound here). A bond must pay
///         for the winner's whole game: bond = worstCaseGas(nOps, maxTensorDepth) * bondGasPrice (wei per gas).
///         Pattern after Cartesi Dave's `Gas.sol`; the bond formula is ours (Agatha leaves deposits open).
library Gas {
    /// @notice k-ary search: each move expands 2**K_LOG children (k = 16).
    uint256 internal constant K_LOG = 4;

    uint256 internal constant CHALLENGE = 140_000; // challenge(): game creation
    uint256 internal constant REVEAL = 70_000; // reveal(): 16 children checked against their parent
    uint256 internal constant PICK = 60_000; // pick(): one child with K_LOG siblings
    uint256 internal constant SELECT = 90_000; // selectOperator(): the phase-1 leaf and the operator descriptor
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
