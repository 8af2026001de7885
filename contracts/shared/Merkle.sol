// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title Merkle
/// @notice Binary Keccak-256 Merkle trees whose leaves are raw 32-byte words (the layout of
///         `offchain/inference/merkle.py`):
///         inner node = keccak256(left || right), depth fixed by the tensor's shape.
library Merkle {
    /// @notice Depth of a tree over `nBytes` bytes of tensor data: ceil(log2(ceil(nBytes / 32))), 0 for one word.
    function depthForBytes(uint256 nBytes) internal pure returns (uint256) {
        uint256 words = (nBytes + 31) >> 5;
        return depthForLeaves(words == 0 ? 1 : words);
    }

    /// @notice ceil(log2(n)) for n >= 1.
    function depthForLeaves(uint256 n) internal pure returns (uint256 d) {
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

    /// @notice Root of the complete binary tree over `nodes` (a power of two of them), computed in place.
    ///         Used to check the 2**m children a solver reveals against the node they expand.
    function subtreeRoot(bytes32[] memory nodes) internal pure returns (bytes32) {
        uint256 n = nodes.length;
        while (n > 1) {
            for (uint256 i = 0; i < n; i += 2) {
                nodes[i >> 1] = _hash(nodes[i], nodes[i + 1]);
            }
            n >>= 1;
        }
        return nodes[0];
    }

    /// @notice Root implied by one leaf at `index` of a tree of `siblings.length` levels (siblings bottom-up).
    function rootOf(bytes32 leaf, uint256 index, bytes32[] calldata siblings) internal pure returns (bytes32 h) {
        h = leaf;
        for (uint256 i = 0; i < siblings.length; ++i) {
            h = (index & 1) == 0 ? _hash(h, siblings[i]) : _hash(siblings[i], h);
            index >>= 1;
        }
    }

    /// @notice Verify a multiproof: `leaves` at `idx` (sorted, unique, the first `n` entries) of a tree of
    ///         `depth` hash to `root`, consuming every element of `proof` (siblings in verifier order: level by
    ///         level, left to right, exactly as `offchain.inference.merkle.Tree.multiproof` lists them).
    /// @dev `idx` is overwritten.
    function verifyMulti(
        bytes32 root,
        uint256 depth,
        uint256[] memory idx,
        uint256 n,
        bytes32[] calldata leaves,
        bytes32[] calldata proof
    ) internal pure returns (bool) {
        if (n == 0 || leaves.length != n) return false;
        bytes32[] memory val = new bytes32[](n);
        // INVARIANT: indices only shrink and every counter is bounded by n or proof.length: no overflow
        unchecked {
            for (uint256 i = 0; i < n; ++i) {
                val[i] = leaves[i];
            }
            uint256 p = 0;
            for (uint256 level = 0; level < depth; ++level) {
                uint256 w = 0;
                uint256 i = 0;
                while (i < n) {
                    uint256 j = idx[i];
                    bytes32 h;
                    if ((j & 1) == 0 && i + 1 < n && idx[i + 1] == j + 1) {
                        h = _hash(val[i], val[i + 1]);
                        i += 2;
                    } else {
                        if (p >= proof.length) return false;
                        h = (j & 1) == 0 ? _hash(val[i], proof[p]) : _hash(proof[p], val[i]);
                        ++p;
                        ++i;
                    }
                    idx[w] = j >> 1;
                    val[w] = h;
                    ++w;
                }
                n = w;
            }
            if (p != proof.length) return false;
        }
        return n == 1 && idx[0] == 0 && val[0] == root;
    }
}
