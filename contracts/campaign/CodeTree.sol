// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title CodeTree: the Merkle tree over one licensee's watermark codes, and its multiproofs
/// @notice Code leaf (16 bytes) of variant v of segment j: `leaf`. Tree leaf j is the PAIR word of segment j,
///         leaf(j, 0) || leaf(j, 1) (32 bytes); the S pair words are padded with zero words to the next power of
///         two; inner node = keccak256(left || right). A report opens only the segments it uses: for each, an ITEM
///         word = its 128-bit code || the other variant's 16-byte leaf (public, from the `Licensed` event), from
///         which `pairWords` recomputes the pair word, and one multiproof over the pair words (`verify`: siblings
///         level by level, left to right: the order of `multiproof` in `offchain/campaign/codes.py`, held against
///         this by tests/test_argus_partial.py).
///         Binding: a code opens variant v of segment j only if its 128-bit leaf is the committed one, so opening
///         the variant one did not receive is a 2^128 second-preimage search (or a keccak collision in the tree).
///         Domain separation: a leaf binds the campaign, the licensee, the segment and the variant, so each
///         other-variant leaf is its own search (no multi-target speed-up over the 2*S*N leaves of a campaign, no
///         table shared across campaigns).
library CodeTree {
    uint256 private constant _LOW128 = 0xffffffffffffffffffffffffffffffff;
    /// @dev De Bruijn sequence B(2, 6) and its position table (two words): the index of the single set bit b of a
    ///      64-bit word is byte ((b * DEBRUIJN mod 2^64) >> 58) of the table.
    uint256 private constant _DEBRUIJN = 0x03f79d71b4cb0a89;
    uint256 private constant _TABLE0 = 0x0001300239311c033d3a322a261d11043e373b2435332b162d27211e18120c05;
    uint256 private constant _TABLE1 = 0x3f2f381b3c292510362334152c20170b2e1a280f22141f0a190e13090d080706;

    /// @notice bytes16(keccak256(campaign(20) || id(4) || segment(1) || variant(1) || code(16))) (42 bytes; id
    ///         taken mod 2^32, segment and variant mod 2^8), left-aligned in the word.
    function leaf(bytes16 code, address campaign, uint256 id, uint256 segment, uint256 variant)
        internal
        pure
        returns (bytes16 h)
    {
        assembly ("memory-safe") {
            mstore(0x00, or(or(shl(96, campaign), shl(64, and(id, 0xffffffff))),
                or(shl(56, and(segment, 0xff)), shl(48, and(variant, 0xff)))))
            mstore(0x1a, code)
            h := and(keccak256(0x00, 0x2a), not(_LOW128))
        }
    }

    /// @notice The pair words of the reported segments: for the i-th set bit j of `mask` (ascending), with
    ///         v = bit j of `bits` and items[i] = code || other (16 bytes each), the pair word is
    ///         leaf(code, campaign, id, j, v) || other if v == 0, else other || leaf(code, ...).
    /// @return nodes memory pointer to items.length (index, word) pairs of 32-byte words: (j, pair word) for each
    ///         set bit of `mask` (the input of `verify`); 0 (nothing written) unless `mask` (< 2^64) has exactly
    ///         items.length bits set (one item per reported segment)
    function pairWords(uint256 mask, uint256 bits, bytes32[] calldata items, address campaign, uint256 id)
        internal
        pure
        returns (uint256 nodes)
    {
        assembly ("memory-safe") {
            // popcount of the 64-bit mask (SWAR)
            let c := sub(mask, and(shr(1, mask), 0x5555555555555555))
            c := add(and(c, 0x3333333333333333), and(shr(2, c), 0x3333333333333333))
            c := and(add(c, shr(4, c)), 0x0f0f0f0f0f0f0f0f)
            c := shr(56, and(mul(c, 0x0101010101010101), 0xffffffffffffffff))
            if and(eq(c, items.length), lt(mask, shl(64, 1))) {
                nodes := mload(0x40)
                let end := add(nodes, shl(6, c))
                mstore(0x40, end)
                // scratch 0x00..0x29 = campaign(20) || id(4) || j(1) || v(1) || code(16): the leaf's preimage,
                // campaign and id written once
                mstore(0x00, or(shl(96, campaign), shl(64, and(id, 0xffffffff))))
                let src := items.offset
                let m := mask
                for { let out := nodes } lt(out, end) { out := add(out, 0x40) } {
                    let t := shr(58, and(mul(and(m, sub(0, m)), _DEBRUIJN), 0xffffffffffffffff))
                    let j := byte(and(t, 31), xor(_TABLE1, mul(lt(t, 32), xor(_TABLE0, _TABLE1))))
                    m := and(m, sub(m, 1))
                    let v := and(shr(j, bits), 1)
                    let item := calldataload(src)
                    src := add(src, 0x20)
                    mstore8(0x18, j)
                    mstore8(0x19, v)
                    mstore(0x1a, item)
                    let h := keccak256(0x00, 0x2a)
                    // v = 0: leaf(16) || other (the item's low half); v = 1: other (the item's low half) || leaf
                    let w := xor(h, and(xor(h, item), _LOW128))
                    if v { w := or(shl(128, item), shr(128, h)) }
                    mstore(out, j)
                    mstore(add(out, 0x20), w)
                }
            }
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

    /// @notice True iff the `n` >= 1 (position, value) word pairs at memory `nodes` (positions sorted and unique,
    ///         as `pairWords` writes them) hash to `root_` in a tree of `depth` levels, consuming every element of
    ///         `proof`: at each level, a left child followed by its right sibling is hashed with it, any other node
    ///         with the next proof element. The pairs are overwritten. The loop of
    ///         `offchain.campaign.codes.verify_multiproof`. A proof too short reads past its end (zero words or
    ///         later calldata) and fails the final check p == end of proof.
    function verify(bytes32 root_, uint256 depth, uint256 nodes, uint256 n, bytes32[] calldata proof)
        internal
        pure
        returns (bool ok)
    {
        assembly ("memory-safe") {
            let p := proof.offset
            let pend := add(p, shl(5, proof.length))
            let end := add(nodes, shl(6, n))
            for { let level := 0 } lt(level, depth) { level := add(level, 1) } {
                let r := nodes
                let w := nodes
                for {} lt(r, end) {} {
                    let j := mload(r)
                    let nx := add(r, 0x40)
                    switch and(j, 1)
                    case 0 {
                        mstore(0x00, mload(add(r, 0x20)))
                        switch and(lt(nx, end), eq(mload(nx), add(j, 1)))
                        case 1 {
                            mstore(0x20, mload(add(nx, 0x20)))
                            r := add(nx, 0x40)
                        }
                        default {
                            mstore(0x20, calldataload(p))
                            p := add(p, 0x20)
                            r := nx
                        }
                    }
                    default {
                        mstore(0x00, calldataload(p))
                        mstore(0x20, mload(add(r, 0x20)))
                        p := add(p, 0x20)
                        r := nx
                    }
                    mstore(w, shr(1, j))
                    mstore(add(w, 0x20), keccak256(0x00, 0x40))
                    w := add(w, 0x40)
                }
                end := w
            }
            ok := and(eq(p, pend), and(eq(end, add(nodes, 0x40)), eq(mload(add(nodes, 0x20)), root_)))
        }
    }
}
