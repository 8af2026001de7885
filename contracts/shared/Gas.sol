// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Gas: the per-action gas table from which bonds are derived
/// @notice Upper bounds, in gas, of every action of a pinpoint game, measured on MobileNetV2-int8 by
///         `benchmarks/pinpoint_bench.py` and checked in CI by `tests/test_game.py` and, for phase 3 and the final
///         moves at ResNet-50 / VGG-16 / large-pool shapes, by `tests/test_reduction.py` (each fails if a measured
///         action exceeds its bound here). Half a bond must pay for the winner's whole game (the loser's other half is
///         burned): bond = 2 * worstCase(traceDepth, maxTensorDepth) * bondGasPrice (wei per gas).
///         Pattern after Cartesi Dave's `Gas.sol`; the bond formula is ours (Agatha leaves deposits open).
library Gas {
    /// @notice k-ary search: phase 3 expands 2**K_LOG children per move (k = 16), phases 1 and 2 up to 2**TAIL.
    uint256 internal constant K_LOG = 4;

    uint256 internal constant CHALLENGE = 120_000; // challenge(): the game's record, the arena (measured 71k)
    /// @notice Phase 3 dissects a reduction of at most 2**REDUCTION_DEPTH chunks (`OneStep.MAX_CHUNK_DEPTH`).
    uint256 internal constant REDUCTION_DEPTH = 16;

    uint256 internal constant REVEAL = 75_000; // reveal(): up to 32 children (phase 3: 17 sums) (measured <= 63.2k)
    uint256 internal constant PICK = 55_000; // pick() / pickSum(): one child (measured 43k)
    uint256 internal constant SELECT = 120_000; // selectOperator(): the phase-1 leaf, the descriptor (measured 98k)
    uint256 internal constant STEP = 330_000; // every final move: step(), chunkStep(), finish() (and step() that
        // starts phase 3): the one-step is bounded per chunk by `OneStep.ONE_STEP_GAS` (measured <= 300k with
        // payees that take ether, `tests/test_reduction.py`), plus up to 2 x 14k when both payees of the pushed
        // payouts refuse them (stipend burned, then the fallback credit: `Payments._payOrCredit`)
    uint256 internal constant RESOLVE = 80_000; // timeout() / withdraw() after the game

    /// @notice Phases 1 and 2 reveal at most 2**TAIL children per move, spread evenly (`split`): a phase of depth d
    ///         takes ceil(d / TAIL) rounds. (A reveal of 2**TAIL = 32 hashes is ~63k gas, at the EIP-7623 calldata
    ///         floor; one of 16 is ~47k: fewer, larger reveals make the cheaper game.)
    uint256 internal constant TAIL = K_LOG + 1;

    /// @notice Levels the next phase-1/2 reveal descends from a node `h` levels above the leaves: the `h` levels are
    ///         cut into ceil(h / TAIL) reveals of as equal sizes as possible, the larger first (e.g. 14 -> 5, 5, 4;
    ///         7 -> 4, 3; 6 -> 3, 3). 0 at a leaf.
    function split(uint256 h) internal pure returns (uint256) {
        if (h == 0) return 0;
        uint256 r = (h + TAIL - 1) / TAIL;
        return (h + r - 1) / r;
    }

    /// @notice Number of solver reveals (= challenger picks) of phases 1 and 2 of a full game (an upper bound).
    function rounds(uint256 traceDepth, uint256 tensorDepth) internal pure returns (uint256) {
        return (traceDepth + TAIL - 1) / TAIL + (tensorDepth + TAIL - 1) / TAIL;
    }

    /// @notice Worst-case gas either party spends answering one game to its end (the larger of the two sides),
    ///         phase 3 included: the challenger's step() that starts it, REDUCTION_DEPTH / K_LOG rounds of
    ///         reveals and picks, and the final chunk one-step or requantization.
    function worstCase(uint256 traceDepth, uint256 maxTensorDepth) internal pure returns (uint256) {
        uint256 r = rounds(traceDepth, maxTensorDepth);
        uint256 r3 = _ceil(REDUCTION_DEPTH);
        uint256 challenger = CHALLENGE + r * PICK + SELECT + STEP + r3 * PICK + STEP + RESOLVE;
        uint256 solver = (r + r3) * REVEAL + RESOLVE;
        return challenger > solver ? challenger : solver;
    }

    function _ceil(uint256 d) private pure returns (uint256) {
        return (d + K_LOG - 1) / K_LOG;
    }
}
