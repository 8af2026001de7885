// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title CodeTree: the Merkle tree over one licensee's watermark codes, and its multiproofs
/// @notice Leaf 2*j + v is the code leaf of variant v of segment j (`leaf`); the 2*S leaves are padded with zero
///         words to the next power of two; inner node = keccak256(left || right). A report opens only the
///         segments it uses with one multiproof (siblings level by level, left to right: the order of
///         `multiproof` in `offchain/campaign/codes.py`, held against this by tests/test_argus_partial.py).
///         Domain separation: a leaf binds the campaign, the licensee, the segment and the variant, so each
///         other-variant leaf is its own 2^64 preimage search (no multi-target speed-up over the 2*S*N leaves of a
///         campaign, no table shared across campaigns).
library CodeTree {
    /// @notice keccak256(code(8) || campaign(20) || id(4) || segment(1) || variant(1)) (34 bytes; id taken mod
    ///         2^32, segment and variant mod 2^8), hashed in the scratch space.
    function leaf(bytes8 code, address campaign, uint256 id, uint256 segment, uint256 variant)
        internal
        pure
        returns (bytes32 h)
    {
        assembly ("memory-safe") {
            mstore(0x00, code)
            mstore(0x08, shl(96, campaign))
            mstore(0x1c, shl(224, id))
            mstore8(0x20, segment)
            mstore8(0x21, variant)
            h := keccak256(0x00, 0x22)
        }
    }

    /// @notice ceil(log2(n)) for n >= 1: the depth of the tree over n leaves.
    function depthFor(uint256 n) internal pure returns (uint256 d) {
        n -= 1;
        while (n > 0) {
            n >>= 1;
            ++d;
        }
    }

    function _hash(bytes32 a, bytes32 b) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            h := keccak256(0x00, 0x40)
        }
    }

    /// @notice Root of the tree over `leaves` (padded with zero words to 2^depth), computed in memory.
    function root(bytes32[] calldata leaves, uint256 depth) internal pure returns (bytes32) {
        uint256 n = 1 << depth;
        bytes32[] memory nodes = new bytes32[](n);
        for (uint256 i = 0; i < leaves.length; ++i) {
            nodes[i] = leaves[i];
        }
        while (n > 1) {
            for (uint256 i = 0; i < n; i += 2) {
                nodes[i >> 1] = _hash(nodes[i], nodes[i + 1]);
            }
            n >>= 1;
        }
        return nodes[0];
    }

    /// @notice True iff the `n` leaves `val` at the sorted, unique positions `idx` of a tree of `depth` levels
    ///         hash to `root`, consuming every element of `proof`. `idx` and `val` (at least n long) are
    ///         overwritten. The loop of `offchain.campaign.codes.verify_multiproof`, in assembly (no bounds checks:
    ///         i, w < n <= length; p < proof.length is checked).
    function verify(bytes32 root_, uint256 depth, uint256[] memory idx, bytes32[] memory val, uint256 n,
        bytes32[] calldata proof) internal pure returns (bool ok)
    {
        assembly ("memory-safe") {
            let ix := add(idx, 0x20)
            let vx := add(val, 0x20)
            let p := 0
            let plen := proof.length
            ok := 1
            for { let level := 0 } and(ok, lt(level, depth)) { level := add(level, 1) } {
                let w := 0
                for { let i := 0 } lt(i, n) {} {
                    let j := mload(add(ix, shl(5, i)))
                    let h
                    // j is a left child and its right sibling is the next opened node: hash the two
                    let pair := and(lt(add(i, 1), n), eq(mload(add(ix, shl(5, add(i, 1)))), add(j, 1)))
                    switch and(iszero(and(j, 1)), pair)
                    case 1 {
                        mstore(0x00, mload(add(vx, shl(5, i))))
                        mstore(0x20, mload(add(vx, shl(5, add(i, 1)))))
                        h := keccak256(0x00, 0x40)
                        i := add(i, 2)
                    }
                    default {
                        if iszero(lt(p, plen)) {
                            ok := 0
                            i := n
                        }
                        if ok {
                            let sib := calldataload(add(proof.offset, shl(5, p)))
                            let v := mload(add(vx, shl(5, i)))
                            switch and(j, 1)
                            case 0 {
                                mstore(0x00, v)
                                mstore(0x20, sib)
                            }
                            default {
                                mstore(0x00, sib)
                                mstore(0x20, v)
                            }
                            h := keccak256(0x00, 0x40)
                            p := add(p, 1)
                            i := add(i, 1)
                        }
                    }
                    mstore(add(ix, shl(5, w)), shr(1, j))
                    mstore(add(vx, shl(5, w)), h)
                    w := add(w, 1)
                }
                n := w
            }
            ok := and(ok, and(eq(p, plen), and(eq(n, 1), eq(mload(vx), root_))))
        }
    }
}
