// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Merkle} from "../shared/Merkle.sol";
import {Desc, Descriptors, Opening, Gather, Openings, BadOpening, BadOpeningCount} from "./Openings.sol";

/// @title Pooling: the Solidity definition of MAXPOOL (7), AVGPOOL (8) and PAD (9)
/// @notice Recomputes ONE element of a pooling or padding operator's output from the Merkle-proven bytes of its
///         input, exactly as `offchain/inference/pooling.py` (DEFINITIONS) computes the whole tensor; the semantics
///         and the validity rules are stated in that module's docstring. Tensors are int8/uint8, NHWC. A window's
///         taps are ih = oh SH - PT + kh DH, iw = ow SW - PL + kw DW; MAXPOOL is the max of the in-bounds taps,
///         AVGPOOL sat(y_zp + rne(x_scale sum(x - x_zp) / (y_scale cnt))) over the rationals (ONNX AveragePool then
///         QuantizeLinear; com.microsoft QLinearAveragePool), PAD copies x or writes the committed `value`.
///         Descriptor: abi.encode(uint256 kind, uint256[] inputs, int256[] params, bytes32 weightRoot,
///         bytes32 tableRoot, bytes32 constRoot), params named by `PARAM_NAMES` of `offchain/inference/graph.py`.
/// @dev Stateless and pure, the same ABI as `OneStep` (`check`, `outputSize`, `element`).
contract Pooling {
    /// @notice The descriptor names an operator kind this contract does not define.
    error UnknownKind(uint256 kind);
    /// @notice The descriptor breaks the validity rules (see `check`); `element` refuses to decide it.
    error BadParams(uint256 kind);

    uint256 internal constant MAXPOOL = 7;
    uint256 internal constant AVGPOOL = 8;
    uint256 internal constant PAD = 9;

    uint256 public constant MAX_DIM = 1 << 24;
    uint256 public constant MAX_PAD = 1 << 10;
    uint256 public constant MAX_NUMEL = 1 << 28;
    uint256 public constant ONE_STEP_CALLDATA = 23_000;
    uint256 public constant CALLDATA_BASE = 1_000;
    uint256 public constant POOL_ONE_STEP_GAS = 300_000;
    uint256 public constant POOL_GAS_BASE = 52_000;
    uint256 public constant POOL_GAS_PER_WORD = 1_230;
    uint256 public constant POOL_GAS_PER_TAP = 690;
    uint256 internal constant MAX_ARRAY = 64;


    /// @dev MAXPOOL parameters in descriptor order (each one word; a memory view of the decoded int256[]).
    struct MaxParams {
        uint256 N;
        uint256 H;
        uint256 W;
        uint256 C;
        uint256 OH;
        uint256 OW;
        uint256 KH;
        uint256 KW;
        uint256 SH;
        uint256 SW;
        uint256 PT;
        uint256 PL;
        uint256 DH;
        uint256 DW;
        uint256 signed_;
    }

    /// @dev AVGPOOL parameters in descriptor order.
    struct AvgParams {
        uint256 N;
        uint256 H;
        uint256 W;
        uint256 C;
        uint256 OH;
        uint256 OW;
        uint256 KH;
        uint256 KW;
        uint256 SH;
        uint256 SW;
        uint256 PT;
        uint256 PL;
        uint256 countPad;
        int256 xZp;
        int256 yZp;
        uint256 xScaleBits;
        uint256 yScaleBits;
        uint256 xSigned;
        uint256 ySigned;
    }

    /// @dev PAD parameters in descriptor order.
    struct PadParams {
        uint256 N;
        uint256 H;
        uint256 W;
        uint256 C;
        uint256 PT;
        uint256 PL;
        uint256 PB;
        uint256 PR;
        int256 value;
        uint256 signed_;
    }

    /// @dev The window geometry shared by MAXPOOL and AVGPOOL (AVGPOOL: DH = DW = 1).
    struct Window {
        uint256 N;
        uint256 H;
        uint256 W;
        uint256 C;
        uint256 OH;
        uint256 OW;
        uint256 KH;
        uint256 KW;
        uint256 SH;
        uint256 SW;
        uint256 PT;
        uint256 PL;
        uint256 DH;
        uint256 DW;
    }

    function _ptr(Desc memory d, uint256 n) private pure returns (uint256 ptr) {
        int256[] memory p = d.p;
        if (p.length != n) revert BadParams(d.kind);
        assembly ("memory-safe") {
            ptr := add(p, 32)
        }
    }

    function _maxParams(Desc memory d) private pure returns (MaxParams memory q) {
        uint256 ptr = _ptr(d, 15);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _avgParams(Desc memory d) private pure returns (AvgParams memory q) {
        uint256 ptr = _ptr(d, 19);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _padParams(Desc memory d) private pure returns (PadParams memory q) {
        uint256 ptr = _ptr(d, 10);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    /// @dev The window of a MAXPOOL or AVGPOOL descriptor (the first 12 parameters are shared).
    function _window(Desc memory d) private pure returns (Window memory w) {
        if (d.kind == MAXPOOL) {
            MaxParams memory q = _maxParams(d);
            assembly ("memory-safe") {
                w := q // the first 14 fields coincide
            }
        } else {
            AvgParams memory q = _avgParams(d);
            w = Window(q.N, q.H, q.W, q.C, q.OH, q.OW, q.KH, q.KW, q.SH, q.SW, q.PT, q.PL, 1, 1);
        }
    }

    /// @notice Decode an operator descriptor (reverts on malformed bytes, as abi.decode).
    function decode(bytes calldata desc) public pure returns (Desc memory d) {
        (d.kind, d.inputs, d.p, d.weightRoot, d.tableRoot, d.constRoot) =
            abi.decode(desc, (uint256, uint256[], int256[], bytes32, bytes32, bytes32));
    }

    /// @notice Number of elements and bytes per element (1: int8/uint8) of the operator's output tensor.
    /// @custom:reverts UnknownKind, BadParams (wrong parameter count)
    function outputSize(bytes calldata desc) external pure returns (uint256 numel, uint256 esize) {
        return _outputSize(decode(desc));
    }

    function _outputSize(Desc memory d) private pure returns (uint256 numel, uint256 esize) {
        esize = 1;
        if (d.kind == MAXPOOL || d.kind == AVGPOOL) {
            Window memory w = _window(d);
            numel = w.N * w.OH * w.OW * w.C;
        } else if (d.kind == PAD) {
            PadParams memory q = _padParams(d);
            numel = q.N * (q.PT + q.H + q.PB) * (q.PL + q.W + q.PR) * q.C;
        } else {
            revert UnknownKind(d.kind);
        }
    }

    // ------------------------------------------------------------------------------------------- validity

    /// @notice Whether `desc` is a pooling descriptor this contract can decide: well formed, kind 7-9 with its
    ///         number of parameters and one runtime input, every parameter in range, no empty window, and a
    ///         one-step within POOL_ONE_STEP_GAS gas and ONE_STEP_CALLDATA bytes (the rules of `violation` in
    ///         `offchain/inference/pooling.py`). Never reverts, whatever the bytes (only out of gas).
    /// @return ok the verdict; numel elements and esize bytes per element of the output (0 when not ok)
    function check(bytes calldata desc) external pure returns (bool ok, uint256 numel, uint256 esize) {
        Desc memory d;
        (ok, d) = Descriptors.tryDecode(desc, MAX_ARRAY);
        if (!ok || !_valid(d, true)) return (false, 0, 0);
        (numel, esize) = _outputSize(d);
    }

    function _size(uint256 v) private pure returns (bool) {
        return v >= 1 && v <= MAX_DIM;
    }

    function _zpOk(int256 zp, uint256 signed) private pure returns (bool) {
        return signed != 0 ? zp >= -128 && zp <= 127 : zp >= 0 && zp <= 255;
    }

    function _scaleOk(uint256 bits) private pure returns (bool) {
        uint256 ex = bits >> 23;
        return bits < 1 << 31 && ex >= 1 && ex <= 254;
    }

    /// @dev The rules of `check`; the one-step bound only when `bounded`.
    function _valid(Desc memory d, bool bounded) private pure returns (bool) {
        uint256 k = d.kind;
        if (d.inputs.length != 1) return false;
        if (k == MAXPOOL) return d.p.length == 15 && _validMax(d, bounded);
        if (k == AVGPOOL) return d.p.length == 19 && _validAvg(d, bounded);
        if (k == PAD) return d.p.length == 10 && _validPad(d, bounded);
        return false;
    }

    function _validMax(Desc memory d, bool bounded) private pure returns (bool) {
        MaxParams memory q = _maxParams(d);
        if (q.signed_ > 1) return false;
        return _validWindow(d, _window(d), bounded);
    }

    function _validAvg(Desc memory d, bool bounded) private pure returns (bool) {
        AvgParams memory q = _avgParams(d);
        if (q.countPad > 1 || q.xSigned > 1 || q.ySigned > 1) return false;
        if (!_zpOk(q.xZp, q.xSigned) || !_zpOk(q.yZp, q.ySigned)) return false;
        if (!_scaleOk(q.xScaleBits) || !_scaleOk(q.yScaleBits)) return false;
        return _validWindow(d, _window(d), bounded);
    }

    function _validWindow(Desc memory d, Window memory w, bool bounded) private pure returns (bool) {
        if (!(_size(w.N) && _size(w.H) && _size(w.W) && _size(w.C) && _size(w.OH) && _size(w.OW))) return false;
        if (!(_size(w.KH) && _size(w.KW) && _size(w.SH) && _size(w.SW) && _size(w.DH) && _size(w.DW))) return false;
        if (!_axis(w.OH, w.SH, w.PT, w.DH, w.KH, w.H) || !_axis(w.OW, w.SW, w.PL, w.DW, w.KW, w.W)) return false;
        uint256 nx = w.N * w.H * w.W * w.C;
        if (nx > MAX_NUMEL || w.N * w.OH * w.OW * w.C > MAX_NUMEL) return false;
        if (!bounded) return true;
        return _bounded(d, _words(w, Merkle.depthForBytes(nx)), w.KH * w.KW);
    }

    /// @dev The cost model's W: at level l of a tree of depth `depth` the window's words have at most
    ///      n_l = min(T, KH (R / (32 2^l) + 2), S / (32 2^l) + 2, 2^(depth - l)) ancestors (R, S: the bytes a row and
    ///      the window span, minus one) and the multiproof consumes at most min(n_l, 2^(depth - l - 1)) siblings;
    ///      W = n_0 + the siblings. Sizes are checked (below 2^24): no overflow.
    function _words(Window memory w, uint256 depth) private pure returns (uint256 words) {
        uint256 taps = w.KH * w.KW;
        uint256 row = (w.KW - 1) * w.DW * w.C;
        uint256 span = ((w.KH - 1) * w.DH * w.W + (w.KW - 1) * w.DW) * w.C;
        for (uint256 l = 0; l <= depth; ++l) {
            uint256 m = 32 << l;
            uint256 n = taps;
            uint256 v = w.KH * (row / m + 2);
            if (v < n) n = v;
            v = span / m + 2;
            if (v < n) n = v;
            v = 1 << (depth - l);
            if (v < n) n = v;
            if (l == 0) words += n;
            if (l < depth) words += n < v / 2 ? n : v / 2;
        }
    }

    /// @dev One axis: padding in range; the implied end padding (o - 1) s + dil (k - 1) + 1 - i - pad in
    ///      [1 - s, MAX_PAD]; no empty window: pad <= (k - 1) dil, (o - 1) s <= i - 1 + pad, and k == 1 or dil <= i.
    function _axis(uint256 o, uint256 s, uint256 pad, uint256 dil, uint256 k, uint256 i) private pure returns (bool) {
        if (pad > MAX_PAD) return false;
        int256 implied = int256((o - 1) * s + dil * (k - 1) + 1) - int256(i + pad);
        if (implied < 1 - int256(s) || implied > int256(MAX_PAD)) return false;
        if (k > 1 && dil > i) return false;
        return pad <= (k - 1) * dil && (o - 1) * s <= i - 1 + pad;
    }

    function _validPad(Desc memory d, bool bounded) private pure returns (bool) {
        PadParams memory q = _padParams(d);
        if (!(_size(q.N) && _size(q.H) && _size(q.W) && _size(q.C)) || q.signed_ > 1) return false;
        if (q.PT > MAX_PAD || q.PL > MAX_PAD || q.PB > MAX_PAD || q.PR > MAX_PAD || !_zpOk(q.value, q.signed_)) {
            return false;
        }
        uint256 nx = q.N * q.H * q.W * q.C;
        if (nx > MAX_NUMEL || q.N * (q.PT + q.H + q.PB) * (q.PL + q.W + q.PR) * q.C > MAX_NUMEL) return false;
        return !bounded || _bounded(d, 1 + Merkle.depthForBytes(nx), 0);
    }

    function _bounded(Desc memory d, uint256 words, uint256 taps) private pure returns (bool) {
        uint256 gas = POOL_GAS_BASE + POOL_GAS_PER_WORD * words + POOL_GAS_PER_TAP * taps;
        uint256 cd = CALLDATA_BASE + 32 * (words + d.p.length + d.inputs.length);
        return gas <= POOL_ONE_STEP_GAS && cd <= ONE_STEP_CALLDATA;
    }

    // ------------------------------------------------------------------------------------------- one-step

    /// @notice The canonical value of output element `e` of the operator `desc` (kind 7, 8 or 9).
    /// @param desc the operator descriptor (its leaf preimage in the model commitment)
    /// @param inputRoots the Merkle root of the operator's one runtime input
    /// @param e flat element index in the output's committed layout (NHWC)
    /// @param o one opening of the input: the words holding the window's in-bounds taps in (kh, kw) order
    ///        (MAXPOOL, AVGPOOL), or the one word of the copied byte (PAD; empty, and unread, in the padding)
    /// @return value the byte of the int8/uint8 element; 0 for an index past the end of the tensor
    /// @custom:reverts BadOpening, BadOpeningCount, UnknownKind, BadParams (a descriptor breaking a rule of
    ///         `check` other than the one-step bound; the bound is `check`'s alone, so a one-step beyond it can
    ///         still be measured)
    function element(bytes calldata desc, bytes32[] calldata inputRoots, uint256 e, Opening[] calldata o)
        external
        pure
        returns (uint256 value)
    {
        Desc memory d = decode(desc);
        if (d.kind < MAXPOOL || d.kind > PAD) revert UnknownKind(d.kind);
        if (!_valid(d, false)) revert BadParams(d.kind);
        (uint256 numel,) = _outputSize(d);
        if (e >= numel) return 0;
        if (inputRoots.length != 1) revert BadOpeningCount(1, inputRoots.length);
        Openings.checkCount(o, 1);
        if (d.kind == PAD) return _pad(d, inputRoots[0], e, o[0]);
        Window memory w = _window(d);
        if (d.kind == MAXPOOL) {
            (int256 m,,) = _reduce(w, inputRoots[0], e, o[0], _maxParams(d).signed_ != 0, 0);
            return uint256(m) & 0xff;
        }
        AvgParams memory q = _avgParams(d);
        (, int256 total, uint256 cnt) = _reduce(w, inputRoots[0], e, o[0], q.xSigned != 0, q.xZp);
        if (q.countPad != 0) cnt = w.KH * w.KW;
        return Openings.sat(q.yZp + _avgRound(total, cnt, q.xScaleBits, q.yScaleBits), q.ySigned != 0);
    }

    /// @dev One pass over the window of output element e: the max of its in-bounds taps, the sum of (x - zp) over
    ///      them and their count, read from the opened words of the input (leaf positions derived here, as
    ///      `Openings.range` would), then the words are verified against `root` (reverts BadOpening).
    function _reduce(Window memory w, bytes32 root, uint256 e, Opening calldata op, bool signed, int256 zp)
        private
        pure
        returns (int256 m, int256 total, uint256 n)
    {
        Gather memory g = Openings.gather(w.KH * w.KW);
        uint256[] memory idx = g.idx;
        bytes32[] calldata leaves = op.leaves;
        uint256 base;
        assembly {
            base := leaves.offset
        }
        m = type(int256).min;
        uint256 nw;
        // every size was checked by `_valid` (below 2^24, tensors below 2^28 bytes): no overflow
        unchecked {
            uint256 c = e % w.C;
            uint256 t = e / w.C;
            uint256 w0 = (t % w.OW) * w.SW;
            t /= w.OW;
            uint256 h0 = (t % w.OH) * w.SH;
            uint256 b = t / w.OH;
            (uint256 H, uint256 W, uint256 C, uint256 PT, uint256 PL) = (w.H, w.W, w.C, w.PT, w.PL);
            (uint256 KW, uint256 DH, uint256 DW) = (w.KW, w.DH, w.DW);
            for (uint256 kh = 0; kh < w.KH; ++kh) {
                uint256 ih = h0 + kh * DH;
                if (ih < PT || ih - PT >= H) continue;
                uint256 row = (b * H + ih - PT) * W;
                for (uint256 kw = 0; kw < KW; ++kw) {
                    uint256 iw = w0 + kw * DW;
                    if (iw < PL || iw - PL >= W) continue;
                    uint256 off = (row + iw - PL) * C + c;
                    int256 v;
                    assembly ("memory-safe") {
                        let word := shr(5, off)
                        if or(iszero(nw), iszero(eq(mload(add(idx, shl(5, nw))), word))) {
                            nw := add(nw, 1)
                            mstore(add(idx, shl(5, nw)), word)
                        }
                        // a position past the leaves reads zeros; verification then fails (count mismatch)
                        v := byte(0, calldataload(add(add(base, shl(5, sub(nw, 1))), and(off, 31))))
                        if signed { v := signextend(0, v) }
                    }
                    if (v > m) m = v;
                    total += v - zp;
                    ++n;
                }
            }
        }
        g.n = nw;
        Openings.verify(g, root, w.N * w.H * w.W * w.C, op, 0);
    }

    /// @dev PAD (`PadParams`): the input byte, or `value` in the padding (the opening is then not read).
    function _pad(Desc memory d, bytes32 root, uint256 e, Opening calldata op) private pure returns (uint256) {
        PadParams memory q = _padParams(d);
        uint256 OW = q.PL + q.W + q.PR;
        uint256 OH = q.PT + q.H + q.PB;
        uint256 c = e % q.C;
        uint256 t = e / q.C;
        uint256 ow = t % OW;
        t /= OW;
        uint256 oh = t % OH;
        uint256 b = t / OH;
        if (oh < q.PT || ow < q.PL || oh - q.PT >= q.H || ow - q.PL >= q.W) return uint256(q.value) & 0xff;
        uint256 off = ((b * q.H + oh - q.PT) * q.W + ow - q.PL) * q.C + c;
        Gather memory g = Openings.gather(1);
        uint256 pos = Openings.range(g, off, 1);
        uint256 base = Openings.verify(g, root, q.N * q.H * q.W * q.C, op, 0);
        return uint256(Openings.ld(Openings.at(base, pos, off), q.signed_ != 0)) & 0xff;
    }

    /// @dev rne(x_scale total / (y_scale cnt)) over the rationals, x_scale = mx 2^(ex - 150) from normal float32
    ///      bits (checked by `_valid`), clamped to +-2^40 (any such value saturates). With mx, my < 2^24, |total|
    ///      <= 255 cnt and the quotient's exponent difference clamped to [-80, 80], every product fits in 256 bits.
    function _avgRound(int256 total, uint256 cnt, uint256 xb, uint256 yb) private pure returns (int256) {
        if (total == 0) return 0;
        uint256 mx = (xb & 0x7fffff) | 0x800000;
        uint256 my = (yb & 0x7fffff) | 0x800000;
        int256 dd = int256((xb >> 23) & 0xff) - int256((yb >> 23) & 0xff);
        uint256 a = uint256(total < 0 ? -total : total);
        uint256 r;
        if (dd > 80) {
            r = 1 << 40;
        } else if (dd < -80) {
            r = 0;
        } else {
            (uint256 num, uint256 den) = dd >= 0 ? (mx * a << uint256(dd), my * cnt) : (mx * a, my * cnt << uint256(-dd));
            r = num / den;
            uint256 rem = num % den;
            if (rem > den - rem || (rem == den - rem && (r & 1) == 1)) r += 1;
            if (r > 1 << 40) r = 1 << 40;
        }
        return total < 0 ? -int256(r) : int256(r);
    }
}
