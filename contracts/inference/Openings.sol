// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Merkle} from "../shared/Merkle.sol";

/// @notice Merkle-proven words of one tensor: `leaves` are the 32-byte words the operator needs (in the order of
///         their leaf indices, which the contract derives itself) and `proof` the multiproof siblings.
struct Opening {
    bytes32[] leaves;
    bytes32[] proof;
}

/// @dev One tensor's needed words: sorted unique leaf indices, built from byte ranges in increasing order.
struct Gather {
    uint256[] idx;
    uint256 n;
}

/// @notice A decoded operator descriptor: `abi.encode(uint256 kind, uint256[] inputs, int256[] params, bytes32 weightRoot,
///         bytes32 tableRoot, bytes32 constRoot)`, the leaf preimage of `Graph.ops_tree` in `offchain/inference/graph.py`.
struct Desc {
    uint256 kind;
    uint256[] inputs;
    int256[] p; // the parameters: read them by name through the kind's struct
    bytes32 weightRoot;
    bytes32 tableRoot;
    bytes32 constRoot;
}

/// @notice An opening does not verify against its tensor root. `which` = position in the openings array.
error BadOpening(uint256 which);
/// @notice Wrong number of openings or input roots for the operator kind.
error BadOpeningCount(uint256 expected, uint256 given);

/// @title Openings: reading Merkle-proven bytes of committed tensors, shared by every operator-definition contract
/// @notice An operator's one-step names the byte ranges it needs of each tensor (`range`, in increasing order), checks
///         the opened words against the tensor's root with one multiproof (`verify`), then reads bytes out of the
///         calldata leaves (`ld`, `at`). `sat` saturates to int8/uint8. Internal functions: inlined into each user.
library Openings {

    function gather(uint256 cap) internal pure returns (Gather memory g) {
        g.idx = new uint256[](cap);
    }

    /// @dev Add the words covering bytes [off, off + len); return the position (in the leaves) of the first one.
    function range(Gather memory g, uint256 off, uint256 len) internal pure returns (uint256 pos) {
        uint256 first = off >> 5;
        uint256 last = (off + len - 1) >> 5;
        uint256 n = g.n;
        if (n > 0 && g.idx[n - 1] == first) {
            pos = n - 1;
            first += 1;
        } else {
            pos = n;
        }
        uint256[] memory idx = g.idx;
        unchecked {
            for (uint256 w = first; w <= last; ++w) {
                idx[n++] = w;
            }
        }
        g.n = n;
    }

    function verify(Gather memory g, bytes32 root, uint256 nBytes, Opening calldata op, uint256 which)
        internal
        pure
        returns (uint256 base)
    {
        if (!Merkle.verifyMulti(root, Merkle.depthForBytes(nBytes), g.idx, g.n, op.leaves, op.proof)) {
            revert BadOpening(which);
        }
        bytes32[] calldata l = op.leaves;
        assembly {
            base := l.offset
        }
    }

    /// @dev Byte at calldata address `ptr`, as a signed or unsigned integer.
    function ld(uint256 ptr, bool signed) internal pure returns (int256 v) {
        assembly {
            v := byte(0, calldataload(ptr))
            if signed { v := signextend(0, v) }
        }
    }

    /// @dev Calldata address of byte `off` of a tensor, given the leaf position of its word.
    function at(uint256 base, uint256 pos, uint256 off) internal pure returns (uint256) {
        return base + (pos << 5) + (off & 31);
    }

    function sat(int256 y, bool signed) internal pure returns (uint256) {
        if (signed) {
            if (y < -128) y = -128;
            if (y > 127) y = 127;
            return uint256(y) & 0xff;
        }
        if (y < 0) y = 0;
        if (y > 255) y = 255;
        return uint256(y);
    }


    function checkCount(Opening[] calldata o, uint256 n) internal pure {
        if (o.length != n) revert BadOpeningCount(n, o.length);
    }
}

/// @title Descriptors: the non-reverting decoding of an operator descriptor, shared by `OneStep`, `Pooling` and
///        `Elementwise` (their `check` must never revert, whatever the bytes)
library Descriptors {
    /// @dev `decode` that returns false instead of reverting; accepts exactly the encodings `abi.decode` accepts
    ///      (offsets and lengths inside `desc`), with at most `maxArray` inputs and parameters.
    function tryDecode(bytes calldata desc, uint256 maxArray) internal pure returns (bool ok, Desc memory d) {
        if (desc.length < 192) return (false, d);
        bool okI;
        bool okP;
        uint256[] memory p;
        (okI, d.inputs) = _tryArray(desc, maxArray, uint256(bytes32(desc[32:64])));
        (okP, p) = _tryArray(desc, maxArray, uint256(bytes32(desc[64:96])));
        if (!okI || !okP) return (false, d);
        int256[] memory q;
        assembly ("memory-safe") {
            q := p
        }
        d.kind = uint256(bytes32(desc[0:32]));
        d.p = q;
        d.weightRoot = bytes32(desc[96:128]);
        d.tableRoot = bytes32(desc[128:160]);
        d.constRoot = bytes32(desc[160:192]);
        return (true, d);
    }

    function _tryArray(bytes calldata desc, uint256 maxArray, uint256 off) private pure returns (bool, uint256[] memory a) {
        uint256 len = desc.length;
        if (off > len || len - off < 32) return (false, a);
        uint256 n = uint256(bytes32(desc[off:off + 32]));
        if (n > maxArray || (len - off - 32) / 32 < n) return (false, a);
        a = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 at = off + 32 + 32 * i;
            a[i] = uint256(bytes32(desc[at:at + 32]));
        }
        return (true, a);
    }
}
