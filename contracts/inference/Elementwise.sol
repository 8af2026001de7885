// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Merkle} from "../shared/Merkle.sol";
import {Desc, Descriptors, Opening, Gather, Openings, BadOpeningCount} from "./Openings.sol";

/// @title Elementwise: the Solidity definition of canonical operators 10-14 (LUT, CONCAT, TRANSPOSE, MUL, SOFTMAX)
/// @notice Recomputes ONE element of an operator's output from Merkle-proven inputs and committed constants,
///         exactly as `offchain/inference/elementwise.py` (DEFINITIONS) computes the whole tensor; the semantics
///         are stated in that module's docstring. Same ABI and descriptor encoding as `OneStep`:
///         `abi.encode(uint256 kind, uint256[] inputs, int256[] params, bytes32 weightRoot, bytes32 tableRoot,
///         bytes32 constRoot)`, parameters read by name (one struct per kind, the names of `PARAM_NAMES` in
///         `offchain/inference/graph.py`, camelCase).
/// @dev Stateless and pure.
contract Elementwise {
    /// @notice The descriptor names an operator kind this contract does not define.
    error UnknownKind(uint256 kind);
    /// @notice The descriptor breaks the rules of `check` (wrong parameter count or values, input count).
    error BadParams(uint256 kind);

    uint256 internal constant LUT = 10;
    uint256 internal constant CONCAT = 11;
    uint256 internal constant TRANSPOSE = 12;
    uint256 internal constant MUL = 13;
    uint256 internal constant SOFTMAX = 14;


    struct LutParams {
        uint256 numel;
        uint256 xSigned;
        uint256 ySigned;
    }

    struct ConcatParams {
        uint256 outer;
        uint256 inner;
        uint256 L0;
        uint256 L1;
        uint256 L2;
        uint256 L3;
        uint256 signed;
    }

    struct TransposeParams {
        uint256 D0;
        uint256 D1;
        uint256 D2;
        uint256 D3;
        uint256 P0;
        uint256 P1;
        uint256 P2;
        uint256 P3;
        uint256 signed;
    }

    struct MulParams {
        uint256 numelA;
        uint256 numelB; // b repeats over a (b's element for e: e mod numelB)
        int256 aZp;
        int256 bZp;
        int256 cZp;
        uint256 aScaleBits;
        uint256 bScaleBits;
        uint256 cScaleBits;
        uint256 aSigned;
        uint256 bSigned;
        uint256 cSigned;
    }

    struct SoftmaxParams {
        uint256 rows;
        uint256 cols;
        uint256 xSigned;
        int256 yZp;
        uint256 ySigned;
        uint256 yScaleBits;
    }

    // ------------------------------------------------------------------------------------------- rules
    // The rules of `offchain/inference/elementwise.py` (`violation`; constants compared by the tests): gas =
    // GAS_BASE + GAS_PER_WORD * W + GAS_PER_COL * cols (SOFTMAX), calldata = CALLDATA_BASE + 32 * (W + parameters
    // + inputs), W = words and multiproof siblings opened.
    uint256 public constant MAX_DIM = 1 << 24;
    uint256 public constant MAX_NUMEL = 1 << 28;
    uint256 public constant ONE_STEP_GAS = 300_000;
    uint256 public constant ONE_STEP_CALLDATA = 23_000;
    uint256 public constant GAS_BASE = 45_000;
    uint256 public constant GAS_PER_WORD = 1_750;
    uint256 public constant GAS_PER_COL = 100;
    uint256 public constant CALLDATA_BASE = 1_000;
    uint256 internal constant MAX_ARRAY = 64;

    /// @dev A memory struct of n word fields has the layout of the data of an int256[] of length n.
    function _ptr(Desc memory d, uint256 n) private pure returns (uint256 ptr) {
        int256[] memory p = d.p;
        if (p.length != n) revert BadParams(d.kind);
        assembly ("memory-safe") {
            ptr := add(p, 32)
        }
    }

    function _lut(Desc memory d) private pure returns (LutParams memory q) {
        uint256 ptr = _ptr(d, 3);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _concat(Desc memory d) private pure returns (ConcatParams memory q) {
        uint256 ptr = _ptr(d, 7);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _transpose(Desc memory d) private pure returns (TransposeParams memory q) {
        uint256 ptr = _ptr(d, 9);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _mul(Desc memory d) private pure returns (MulParams memory q) {
        uint256 ptr = _ptr(d, 11);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _softmax(Desc memory d) private pure returns (SoftmaxParams memory q) {
        uint256 ptr = _ptr(d, 6);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    /// @notice Decode an operator descriptor (reverts on malformed ABI).
    function decode(bytes calldata desc) public pure returns (Desc memory d) {
        (d.kind, d.inputs, d.p, d.weightRoot, d.tableRoot, d.constRoot) =
            abi.decode(desc, (uint256, uint256[], int256[], bytes32, bytes32, bytes32));
    }

    /// @notice Number of elements and bytes per element (always 1: int8/uint8) of the operator's output tensor.
    /// @custom:reverts UnknownKind, BadParams (wrong parameter count)
    function outputSize(bytes calldata desc) external pure returns (uint256 numel, uint256 esize) {
        return (_numelOut(decode(desc)), 1);
    }

    function _numelOut(Desc memory d) private pure returns (uint256) {
        uint256 k = d.kind;
        if (k == LUT) return _lut(d).numel;
        if (k == CONCAT) {
            ConcatParams memory q = _concat(d);
            return q.outer * (q.L0 + q.L1 + q.L2 + q.L3) * q.inner;
        }
        if (k == TRANSPOSE) {
            TransposeParams memory q = _transpose(d);
            return q.D0 * q.D1 * q.D2 * q.D3;
        }
        if (k == MUL) return _mul(d).numelA;
        if (k == SOFTMAX) {
            SoftmaxParams memory q = _softmax(d);
            return q.rows * q.cols;
        }
        revert UnknownKind(k);
    }

    /// @notice Whether `desc` is a descriptor this contract can decide (the rules of `violation` in
    ///         `offchain/inference/elementwise.py`: known kind, parameter and runtime-input counts, parameters in
    ///         range, a one-step within ONE_STEP_GAS gas and ONE_STEP_CALLDATA bytes). Never reverts (only out of
    ///         gas), whatever the bytes.
    /// @return ok the verdict; numel elements and esize bytes per element of the output (0 when not ok)
    function check(bytes calldata desc) external pure returns (bool ok, uint256 numel, uint256 esize) {
        Desc memory d;
        (ok, d) = Descriptors.tryDecode(desc, MAX_ARRAY);
        if (!ok || !_valid(d)) return (false, 0, 0);
        return (true, _numelOut(d), 1);
    }

    function _in(uint256 v, uint256 hi) private pure returns (bool) {
        return v >= 1 && v <= hi;
    }

    function _flags(uint256 a, uint256 b) private pure returns (bool) {
        return a <= 1 && b <= 1;
    }

    function _zpOk(int256 zp, uint256 signed) private pure returns (bool) {
        return signed != 0 ? zp >= -128 && zp <= 127 : zp >= 0 && zp <= 255;
    }

    function _scaleOk(uint256 bits) private pure returns (bool) {
        uint256 ex = bits >> 23;
        return bits < 1 << 31 && ex >= 1 && ex <= 254;
    }

    function _bounded(Desc memory d, uint256 w, uint256 cols) private pure returns (bool) {
        uint256 gas = GAS_BASE + GAS_PER_WORD * w + GAS_PER_COL * cols;
        uint256 cd = CALLDATA_BASE + 32 * (w + d.p.length + d.inputs.length);
        return gas <= ONE_STEP_GAS && cd <= ONE_STEP_CALLDATA;
    }

    function _valid(Desc memory d) private pure returns (bool) {
        uint256 k = d.kind;
        uint256 n = d.p.length;
        uint256 ni = d.inputs.length;
        if (k == LUT) {
            if (n != 3 || ni != 1) return false;
            LutParams memory q = _lut(d);
            if (!_in(q.numel, MAX_NUMEL) || !_flags(q.xSigned, q.ySigned)) return false;
            return _bounded(d, 9 + Merkle.depthForBytes(q.numel), 0);
        }
        if (k == CONCAT) return n == 7 && _validConcat(d, ni);
        if (k == TRANSPOSE) {
            if (n != 9 || ni != 1) return false;
            TransposeParams memory q = _transpose(d);
            if (!_in(q.D0, MAX_DIM) || !_in(q.D1, MAX_DIM) || !_in(q.D2, MAX_DIM) || !_in(q.D3, MAX_DIM)) {
                return false;
            }
            if (q.P0 > 3 || q.P1 > 3 || q.P2 > 3 || q.P3 > 3 || q.signed > 1) return false;
            if ((1 << q.P0) | (1 << q.P1) | (1 << q.P2) | (1 << q.P3) != 15) return false;
            uint256 numel = q.D0 * q.D1 * q.D2 * q.D3;
            return numel <= MAX_NUMEL && _bounded(d, 1 + Merkle.depthForBytes(numel), 0);
        }
        if (k == MUL) {
            if (n != 11 || (ni != 1 && ni != 2)) return false;
            MulParams memory q = _mul(d);
            if (!_in(q.numelA, MAX_NUMEL) || !_in(q.numelB, MAX_NUMEL) || q.numelA % q.numelB != 0) return false;
            if (!_flags(q.aSigned, q.bSigned) || q.cSigned > 1) return false;
            if (!_zpOk(q.aZp, q.aSigned) || !_zpOk(q.bZp, q.bSigned) || !_zpOk(q.cZp, q.cSigned)) return false;
            if (!_scaleOk(q.aScaleBits) || !_scaleOk(q.bScaleBits) || !_scaleOk(q.cScaleBits)) return false;
            return _bounded(d, 2 + Merkle.depthForBytes(q.numelA) + Merkle.depthForBytes(q.numelB), 0);
        }
        if (k == SOFTMAX) {
            if (n != 6 || ni != 1) return false;
            SoftmaxParams memory q = _softmax(d);
            if (!_in(q.rows, MAX_DIM) || !_in(q.cols, MAX_DIM) || q.rows * q.cols > MAX_NUMEL) return false;
            if (!_flags(q.xSigned, q.ySigned) || !_zpOk(q.yZp, q.ySigned) || !_scaleOk(q.yScaleBits)) return false;
            return _bounded(d, q.cols / 32 + 2 + Merkle.depthForBytes(q.rows * q.cols) + 32, q.cols);
        }
        return false;
    }

    function _validConcat(Desc memory d, uint256 ni) private pure returns (bool) {
        ConcatParams memory q = _concat(d);
        if (!_in(q.outer, MAX_DIM) || !_in(q.inner, MAX_DIM) || q.signed > 1) return false;
        uint256[4] memory L = [q.L0, q.L1, q.L2, q.L3];
        uint256 count;
        uint256 total;
        uint256 depth;
        for (uint256 i = 0; i < 4; ++i) {
            if (L[i] > MAX_DIM) return false;
            if (L[i] == 0) continue;
            if (count != i) return false; // the non-zero lengths come first
            ++count;
            total += L[i];
            uint256 dd = Merkle.depthForBytes(q.outer * L[i] * q.inner);
            if (dd > depth) depth = dd;
        }
        if (count == 0 || count != ni || q.outer * total * q.inner > MAX_NUMEL) return false;
        return _bounded(d, 1 + depth, 0);
    }

    // ------------------------------------------------------------------------------------------- one-step

    /// @notice The canonical value of output element `e` of the operator `desc` (kinds 10-14).
    /// @param desc the operator descriptor (its leaf preimage in the model commitment)
    /// @param inputRoots Merkle roots of the operator's runtime inputs, in `inputs` order
    /// @param e flat element index in the output's committed layout
    /// @param o openings, per kind: LUT [x, all of the table (const)]; CONCAT [the input element e comes from];
    ///        TRANSPOSE [x]; MUL [a, b (runtime input 1 or const)]; SOFTMAX [x's row, all of E (const)]
    /// @return value the output byte (int8 as its two's complement byte); 0 past the end of the tensor
    /// @custom:reverts BadOpening, BadOpeningCount, UnknownKind, BadParams (a descriptor `check` refuses)
    function element(bytes calldata desc, bytes32[] calldata inputRoots, uint256 e, Opening[] calldata o)
        external
        pure
        returns (uint256 value)
    {
        Desc memory d = decode(desc);
        if (d.kind < LUT || d.kind > SOFTMAX) revert UnknownKind(d.kind);
        if (!_valid(d)) revert BadParams(d.kind);
        if (e >= _numelOut(d)) return 0;
        if (inputRoots.length != d.inputs.length) revert BadOpeningCount(d.inputs.length, inputRoots.length);
        uint256 k = d.kind;
        if (k == LUT) return _stepLut(d, inputRoots, e, o);
        if (k == CONCAT) return _stepConcat(d, inputRoots, e, o);
        if (k == TRANSPOSE) return _stepTranspose(d, inputRoots, e, o);
        if (k == MUL) return _stepMul(d, inputRoots, e, o);
        return _stepSoftmax(d, inputRoots, e, o);
    }

    /// @dev Byte `off` of the tensor of `nBytes` bytes with root `root`, opened by `o[which]`.
    function _byte(bytes32 root, uint256 nBytes, uint256 off, Opening[] calldata o, uint256 which, bool signed)
        private
        pure
        returns (int256)
    {
        Gather memory g = Openings.gather(1);
        uint256 pos = Openings.range(g, off, 1);
        uint256 base = Openings.verify(g, root, nBytes, o[which], which);
        return Openings.ld(Openings.at(base, pos, off), signed);
    }

    function _stepLut(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 2);
        LutParams memory q = _lut(d);
        uint256 x = uint256(_byte(roots[0], q.numel, e, o, 0, false));
        Gather memory g = Openings.gather(8); // the whole table: what the solver opens does not depend on x
        Openings.range(g, 0, 256);
        uint256 tb = Openings.verify(g, d.constRoot, 256, o[1], 1);
        return uint256(Openings.ld(tb + x, false));
    }

    function _stepConcat(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 1);
        ConcatParams memory q = _concat(d);
        uint256[4] memory L = [q.L0 * q.inner, q.L1 * q.inner, q.L2 * q.inner, q.L3 * q.inner];
        uint256 rowLen = L[0] + L[1] + L[2] + L[3];
        uint256 row = e / rowLen;
        uint256 col = e % rowLen;
        uint256 i = 0;
        while (col >= L[i]) {
            col -= L[i];
            ++i;
        }
        uint256 v = uint256(_byte(roots[i], q.outer * L[i], row * L[i] + col, o, 0, false));
        return v;
    }

    function _stepTranspose(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 1);
        TransposeParams memory q = _transpose(d);
        uint256[4] memory D = [q.D0, q.D1, q.D2, q.D3];
        uint256[4] memory P = [q.P0, q.P1, q.P2, q.P3];
        uint256[4] memory j;
        uint256 t = e;
        for (uint256 k = 4; k > 0; --k) {
            uint256 dim = D[P[k - 1]]; // output axis k - 1 is input axis P[k - 1]
            j[P[k - 1]] = t % dim;
            t /= dim;
        }
        uint256 off = ((j[0] * D[1] + j[1]) * D[2] + j[2]) * D[3] + j[3];
        return uint256(_byte(roots[0], D[0] * D[1] * D[2] * D[3], off, o, 0, false));
    }

    function _stepMul(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 2);
        MulParams memory q = _mul(d);
        int256 a = _byte(roots[0], q.numelA, e, o, 0, q.aSigned != 0) - q.aZp;
        bytes32 rb = d.inputs.length > 1 ? roots[1] : d.constRoot;
        int256 b = _byte(rb, q.numelB, e % q.numelB, o, 1, q.bSigned != 0) - q.bZp;
        int256 p = a * b;
        uint256 r = _mulRne(uint256(p < 0 ? -p : p), q.aScaleBits, q.bScaleBits, q.cScaleBits);
        int256 y = p < 0 ? -int256(r) : int256(r);
        return Openings.sat(q.cZp + y, q.cSigned != 0);
    }

    /// @dev rne(p * a * b / c) for an integer p < 2^17 and normal float32 scales (bits), exact over the
    ///      rationals, clamped to 2^40 (anything beyond saturates).
    function _mulRne(uint256 p, uint256 ab, uint256 bb, uint256 cb) private pure returns (uint256 r) {
        if (p == 0) return 0;
        uint256 num = p * ((ab & 0x7fffff) | 0x800000) * ((bb & 0x7fffff) | 0x800000);
        uint256 mc = (cb & 0x7fffff) | 0x800000;
        int256 sh = int256(ab >> 23) + int256(bb >> 23) - int256(cb >> 23) - 150;
        if (sh > 100) return 1 << 40;
        if (sh < -200) return 0;
        r = sh >= 0 ? _divRne(num << uint256(sh), mc) : _divRne(num, mc << uint256(-sh));
        if (r > 1 << 40) r = 1 << 40;
    }

    /// @dev num / den rounded to nearest, ties to even (den > 0, both below 2^250).
    function _divRne(uint256 num, uint256 den) private pure returns (uint256 r) {
        r = num / den;
        uint256 rem2 = 2 * (num % den);
        if (rem2 > den || (rem2 == den && (r & 1) == 1)) r += 1;
    }

    function _stepSoftmax(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 2);
        SoftmaxParams memory q = _softmax(d);
        uint256 cols = q.cols;
        uint256 off = (e / cols) * cols;
        Gather memory gx = Openings.gather(cols / 32 + 2);
        Openings.range(gx, off, cols);
        uint256 xb = Openings.verify(gx, roots[0], q.rows * cols, o[0], 0) + (off & 31);
        Gather memory gt = Openings.gather(32);
        Openings.range(gt, 0, 1024);
        uint256 tb = Openings.verify(gt, d.constRoot, 1024, o[1], 1);
        // A byte b of an int8 read as b xor 0x80 (uint8: b) keeps the order and the differences, so
        // d = x - max + 255 = u - max(u) + 255 in either dtype. E[d] is the big-endian uint32 at tb + 4 d.
        uint256 flip = q.xSigned != 0 ? 0x80 : 0;
        uint256 mine = e - off;
        uint256 s;
        uint256 ei;
        assembly ("memory-safe") {
            // max over the row: 32 bytes per calldataload, unrolled, then the tail byte by byte
            let m := 0
            let u := 0
            let i := 0
            for {} iszero(gt(add(i, 32), cols)) { i := add(i, 32) } {
                let w := calldataload(add(xb, i))
                    u := xor(byte(0, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(1, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(2, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(3, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(4, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(5, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(6, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(7, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(8, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(9, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(10, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(11, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(12, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(13, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(14, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(15, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(16, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(17, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(18, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(19, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(20, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(21, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(22, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(23, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(24, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(25, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(26, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(27, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(28, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(29, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(30, w), flip)
                    if gt(u, m) { m := u }
                    u := xor(byte(31, w), flip)
                    if gt(u, m) { m := u }
            }
            for {} lt(i, cols) { i := add(i, 1) } {
                u := xor(byte(0, calldataload(add(xb, i))), flip)
                if gt(u, m) { m := u }
            }
            // E[u - m + 255] is the uint32 at base + 4 u
            let base := sub(add(tb, 1020), shl(2, m))
            i := 0
            for {} iszero(gt(add(i, 32), cols)) { i := add(i, 32) } {
                let w := calldataload(add(xb, i))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(0, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(1, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(2, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(3, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(4, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(5, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(6, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(7, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(8, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(9, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(10, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(11, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(12, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(13, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(14, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(15, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(16, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(17, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(18, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(19, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(20, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(21, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(22, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(23, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(24, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(25, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(26, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(27, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(28, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(29, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(30, w), flip))))))
                    s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(31, w), flip))))))
            }
            for {} lt(i, cols) { i := add(i, 1) } {
                s := add(s, shr(224, calldataload(add(base, shl(2, xor(byte(0, calldataload(add(xb, i))), flip))))))
            }
            ei := shr(224, calldataload(add(base, shl(2, xor(byte(0, calldataload(add(xb, mine))), flip)))))
        }
        uint256 r;
        if (s != 0) {
            uint256 bits = q.yScaleBits;
            uint256 my = (bits & 0x7fffff) | 0x800000;
            uint256 ex = bits >> 23; // y_scale = my * 2^(ex - 150)
            r = ex <= 150 ? _divRne(ei << (150 - ex), my * s) : _divRne(ei, (my * s) << (ex - 150));
            if (r > 1 << 40) r = 1 << 40;
        }
        return Openings.sat(q.yZp + int256(r), q.ySigned != 0);
    }
}
