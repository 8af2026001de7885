// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Merkle} from "../shared/Merkle.sol";
import {Opening, Gather, Openings, BadOpeningCount} from "./Openings.sol";


/// @title OneStep: the Solidity definition of pinpoint's canonical integer operators
/// @notice Recomputes ONE element of an operator's output from Merkle-proven inputs, weights and parameters,
///         exactly as `offchain/inference/definitions.py` (DEFINITIONS) computes the whole tensor. The
///         semantics are stated in `offchain/inference/graph.py`; kinds: 1 QUANTIZE, 2 CONV, 3 ADD, 4 GAP,
///         5 MATMUL, 6 DEQUANTIZE. Parameters are read by name (`QuantizeParams`, ...).
///         Requantization: CONV and MATMUL y = sat(zp + rne(fl32(fl32(acc) * S))) (IEEE-754 binary32, emulated
///         with integers); ADD and GAP y = sat(zp + floor((acc * M0 + 2^(s-1)) / 2^s)).
/// @dev Stateless and pure; `Pinpoint` calls it for the final move of a game, tests call it directly.
contract OneStep {
    /// @notice The descriptor names an operator kind this contract does not define.
    error UnknownKind(uint256 kind);
    /// @notice The descriptor's parameters are inconsistent (e.g. channels not divisible by groups).
    error BadParams(uint256 kind);

    uint256 internal constant QUANTIZE = 1;
    uint256 internal constant CONV = 2;
    uint256 internal constant ADD = 3;
    uint256 internal constant GAP = 4;
    uint256 internal constant MATMUL = 5;
    uint256 internal constant DEQUANTIZE = 6;

    struct Desc {
        uint256 kind;
        uint256[] inputs;
        int256[] p; // the parameters: read them by name through the kind's struct (`_quantizeParams`, ...)
        bytes32 weightRoot;
        bytes32 tableRoot;
        bytes32 constRoot;
    }

    // ------------------------------------------------------------------------------------------- parameters
    // One struct per kind: its fields are the kind's parameters in descriptor order, the names of
    // `PARAM_NAMES` in `offchain/inference/graph.py` (camelCase). Every field is one 256-bit word: sizes, scale
    // bits and shifts as uint256, zero points and multipliers as int256, flags (0 or 1) as uint256 read `!= 0`.
    // A memory struct of n word fields has the layout of the data of an int256[] of length n, so `_params`
    // views the decoded array as the struct without copying (two's complement: uint256(x) is x's bits).

    struct QuantizeParams {
        uint256 N;
        uint256 C;
        uint256 H;
        uint256 W;
        uint256 scaleBits;
        int256 zp;
        uint256 ySigned;
    }

    struct ConvParams {
        uint256 N;
        uint256 H;
        uint256 W;
        uint256 Ci;
        uint256 Co;
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
        uint256 G;
        int256 xZp;
        int256 yZp;
        uint256 xSigned;
        uint256 wSigned;
        uint256 ySigned;
        uint256 outNchw; // the output's committed layout: 0 NHWC, 1 NCHW
    }

    struct AddParams {
        uint256 numelA;
        uint256 numelB; // b repeats over a
        int256 aZp;
        int256 bZp;
        int256 cZp;
        int256 Ma;
        int256 Mb;
        uint256 s;
        uint256 aSigned;
        uint256 bSigned;
        uint256 cSigned;
    }

    struct GapParams {
        uint256 N;
        uint256 H;
        uint256 W;
        uint256 C;
        int256 xZp;
        int256 yZp;
        int256 M0;
        uint256 s;
        uint256 xSigned;
        uint256 ySigned;
        uint256 xNchw; // the input's committed layout: 0 NHWC, 1 NCHW
    }

    struct MatmulParams {
        uint256 M;
        uint256 K;
        uint256 N;
        int256 aZp;
        int256 yZp;
        uint256 aSigned;
        uint256 bSigned;
        uint256 ySigned;
    }

    struct DequantizeParams {
        uint256 numel;
        int256 zp;
        uint256 scaleBits;
        uint256 xSigned;
    }

    /// @dev Memory address of the first of the `n` parameters of `d` (kind `d.kind`), to be viewed as the kind's
    ///      parameter struct. Reverts BadParams unless the descriptor has exactly `n` parameters.
    function _params(Desc memory d, uint256 n) private pure returns (uint256 ptr) {
        int256[] memory p = d.p;
        if (p.length != n) revert BadParams(d.kind);
        assembly ("memory-safe") {
            ptr := add(p, 32)
        }
    }

    function _quantizeParams(Desc memory d) private pure returns (QuantizeParams memory q) {
        uint256 ptr = _params(d, 7);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _convParams(Desc memory d) private pure returns (ConvParams memory q) {
        uint256 ptr = _params(d, 22);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _addParams(Desc memory d) private pure returns (AddParams memory q) {
        uint256 ptr = _params(d, 11);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _gapParams(Desc memory d) private pure returns (GapParams memory q) {
        uint256 ptr = _params(d, 11);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _matmulParams(Desc memory d) private pure returns (MatmulParams memory q) {
        uint256 ptr = _params(d, 8);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    function _dequantizeParams(Desc memory d) private pure returns (DequantizeParams memory q) {
        uint256 ptr = _params(d, 4);
        assembly ("memory-safe") {
            q := ptr
        }
    }

    /// @notice Decode an operator descriptor `abi.encode(uint256 kind, uint256[] inputs, int256[] params,
    ///         bytes32 weightRoot, bytes32 tableRoot, bytes32 constRoot)`.
    function decode(bytes calldata desc) public pure returns (Desc memory d) {
        (d.kind, d.inputs, d.p, d.weightRoot, d.tableRoot, d.constRoot) =
            abi.decode(desc, (uint256, uint256[], int256[], bytes32, bytes32, bytes32));
    }

    /// @notice Number of elements and bytes per element of the operator's output tensor.
    /// @return numel elements; esize bytes per element (1 for int8/uint8, 4 for float32)
    function outputSize(bytes calldata desc) external pure returns (uint256 numel, uint256 esize) {
        return _outputSize(decode(desc));
    }

    function _outputSize(Desc memory d) internal pure returns (uint256 numel, uint256 esize) {
        esize = 1;
        if (d.kind == QUANTIZE) {
            QuantizeParams memory q = _quantizeParams(d);
            numel = q.N * q.C * q.H * q.W;
        } else if (d.kind == CONV) {
            ConvParams memory q = _convParams(d);
            numel = q.N * q.OH * q.OW * q.Co;
        } else if (d.kind == ADD) {
            numel = _addParams(d).numelA;
        } else if (d.kind == GAP) {
            GapParams memory q = _gapParams(d);
            numel = q.N * q.C;
        } else if (d.kind == MATMUL) {
            MatmulParams memory q = _matmulParams(d);
            numel = q.M * q.N;
        } else if (d.kind == DEQUANTIZE) {
            (numel, esize) = (_dequantizeParams(d).numel, 4);
        } else {
            revert UnknownKind(d.kind);
        }
    }

    // ------------------------------------------------------------------------------------------- validity
    // One set of rules for operator descriptors, the table of `offchain/inference/limits.py` (its docstring states
    // them; `tests/test_parity.py` compares the constants and the verdicts). The cost model bounds `element`'s gas
    // (transaction gas, calldata included) and calldata: gas = GAS_BASE + GAS_PER_WORD * W + GAS_PER_REDUCE * R
    // + GAS_PER_SUM * S, calldata = CALLDATA_BASE + 32 * (W + parameters + inputs), W = words and multiproof
    // siblings opened, R = dot-product length (CONV, MATMUL), S = pixels summed (GAP).

    uint256 public constant MAX_DIM = 1 << 24;
    uint256 public constant MAX_PAD = 1 << 10;
    uint256 public constant MAX_NUMEL = 1 << 28;
    uint256 public constant ONE_STEP_GAS = 360_000;
    uint256 public constant ONE_STEP_CALLDATA = 23_000;
    uint256 public constant GAS_BASE = 70_000;
    uint256 public constant GAS_PER_WORD = 870;
    uint256 public constant GAS_PER_REDUCE = 105;
    uint256 public constant GAS_PER_SUM = 370;
    uint256 public constant CALLDATA_BASE = 1_000;
    uint256 internal constant MAX_ARRAY = 64;

    /// @notice Whether `desc` is an operator descriptor this contract can decide: well formed, a known kind with
    ///         its number of parameters and runtime inputs, every parameter in range, and a one-step within
    ///         ONE_STEP_GAS gas and ONE_STEP_CALLDATA bytes (the rules of `offchain/inference/limits.py`).
    ///         Never reverts, whatever the bytes (only out of gas).
    /// @return ok the verdict; numel elements and esize bytes per element of the output tensor (0 when not ok)
    function check(bytes calldata desc) external pure returns (bool ok, uint256 numel, uint256 esize) {
        Desc memory d;
        (ok, d) = _tryDecode(desc);
        if (!ok || !_valid(d)) return (false, 0, 0);
        (numel, esize) = _outputSize(d);
    }

    /// @dev `decode` that returns false instead of reverting; accepts exactly the encodings `abi.decode` accepts
    ///      (offsets and lengths inside `desc`), with at most MAX_ARRAY inputs and parameters.
    function _tryDecode(bytes calldata desc) private pure returns (bool ok, Desc memory d) {
        if (desc.length < 192) return (false, d);
        bool okI;
        bool okP;
        uint256[] memory p;
        (okI, d.inputs) = _tryArray(desc, uint256(bytes32(desc[32:64])));
        (okP, p) = _tryArray(desc, uint256(bytes32(desc[64:96])));
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

    function _tryArray(bytes calldata desc, uint256 off) private pure returns (bool, uint256[] memory a) {
        uint256 len = desc.length;
        if (off > len || len - off < 32) return (false, a);
        uint256 n = uint256(bytes32(desc[off:off + 32]));
        if (n > MAX_ARRAY || (len - off - 32) / 32 < n) return (false, a);
        a = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 at = off + 32 + 32 * i;
            a[i] = uint256(bytes32(desc[at:at + 32]));
        }
        return (true, a);
    }

    function _size(uint256 v) private pure returns (bool) {
        return v >= 1 && v <= MAX_DIM;
    }

    function _numel(uint256 v) private pure returns (bool) {
        return v >= 1 && v <= MAX_NUMEL;
    }

    function _flag(uint256 v) private pure returns (bool) {
        return v <= 1;
    }

    function _zpOk(int256 zp, uint256 signed) private pure returns (bool) {
        return signed != 0 ? zp >= -128 && zp <= 127 : zp >= 0 && zp <= 255;
    }

    function _scaleOk(uint256 bits) private pure returns (bool) {
        uint256 ex = bits >> 23;
        return bits < 1 << 31 && ex >= 1 && ex <= 254;
    }

    function _rqOk(int256 m, uint256 s) private pure returns (bool) {
        return m >= 1 && m <= int256(1 << 24) && s >= 1 && s <= 62;
    }

    function _words(uint256 n) private pure returns (uint256) {
        return n / 32 + 2;
    }

    function _bounded(Desc memory d, uint256 w, uint256 r, uint256 sum) private pure returns (bool) {
        uint256 gas = GAS_BASE + GAS_PER_WORD * w + GAS_PER_REDUCE * r + GAS_PER_SUM * sum;
        uint256 cd = CALLDATA_BASE + 32 * (w + d.p.length + d.inputs.length);
        return gas <= ONE_STEP_GAS && cd <= ONE_STEP_CALLDATA;
    }

    function _valid(Desc memory d) private pure returns (bool) {
        uint256 k = d.kind;
        uint256 np = d.p.length;
        uint256 ni = d.inputs.length;
        if (k == QUANTIZE) return np == 7 && ni == 1 && _validQuantize(d);
        if (k == CONV) return np == 22 && ni == 1 && _validConv(d);
        if (k == ADD) return np == 11 && (ni == 1 || ni == 2) && _validAdd(d);
        if (k == GAP) return np == 11 && ni == 1 && _validGap(d);
        if (k == MATMUL) return np == 8 && ni == 1 && _validMatmul(d);
        if (k == DEQUANTIZE) return np == 4 && ni == 1 && _validDequantize(d);
        return false;
    }

    function _validQuantize(Desc memory d) private pure returns (bool) {
        QuantizeParams memory q = _quantizeParams(d);
        if (!(_size(q.N) && _size(q.C) && _size(q.H) && _size(q.W) && _flag(q.ySigned))) return false;
        if (!_zpOk(q.zp, q.ySigned) || !_scaleOk(q.scaleBits)) return false;
        uint256 n = q.N * q.C * q.H * q.W;
        return n <= MAX_NUMEL && _bounded(d, 1 + Merkle.depthForBytes(n * 4), 0, 0);
    }

    function _validConv(Desc memory d) private pure returns (bool) {
        ConvParams memory c = _convParams(d);
        if (!(_size(c.N) && _size(c.H) && _size(c.W) && _size(c.Ci) && _size(c.Co) && _size(c.OH) && _size(c.OW))) {
            return false;
        }
        if (!(_size(c.KH) && _size(c.KW) && _size(c.SH) && _size(c.SW) && _size(c.DH) && _size(c.DW) && _size(c.G))) {
            return false;
        }
        if (!(_flag(c.xSigned) && _flag(c.wSigned) && _flag(c.ySigned) && _flag(c.outNchw))) return false;
        if (!_zpOk(c.xZp, c.xSigned) || !_zpOk(c.yZp, c.ySigned)) return false;
        if (c.Ci % c.G != 0 || c.Co % c.G != 0 || c.PT > MAX_PAD || c.PL > MAX_PAD) return false;
        if (!_implied(c.OH, c.SH, c.DH, c.KH, c.H, c.PT) || !_implied(c.OW, c.SW, c.DW, c.KW, c.W, c.PL)) return false;
        uint256 cig = c.Ci / c.G;
        uint256 taps = c.KH * c.KW;
        uint256 K = taps * cig;
        uint256 nx = c.N * c.H * c.W * c.Ci;
        if (nx > MAX_NUMEL || c.N * c.OH * c.OW * c.Co > MAX_NUMEL || c.Co * K > MAX_NUMEL) return false;
        uint256 w = taps * (_words(cig) + Merkle.depthForBytes(nx)) + _words(K) + Merkle.depthForBytes(c.Co * K) + 1
            + Merkle.depthForBytes(c.Co * 32);
        return _bounded(d, w, K, 0);
    }

    /// @dev The bottom (right) padding implied by the output size, (o - 1) s + dil (k - 1) + 1 - i - pad, is in
    ///      [1 - s, MAX_PAD]: the output size is the loader's floor((i + pads - dil (k - 1) - 1) / s) + 1.
    function _implied(uint256 o, uint256 s, uint256 dil, uint256 k, uint256 i, uint256 pad)
        private
        pure
        returns (bool)
    {
        int256 implied = int256((o - 1) * s + dil * (k - 1) + 1) - int256(i + pad);
        return implied >= 1 - int256(s) && implied <= int256(MAX_PAD);
    }

    function _validAdd(Desc memory d) private pure returns (bool) {
        AddParams memory q = _addParams(d);
        if (!(_numel(q.numelA) && _numel(q.numelB) && _flag(q.aSigned) && _flag(q.bSigned) && _flag(q.cSigned))) {
            return false;
        }
        if (!_zpOk(q.aZp, q.aSigned) || !_zpOk(q.bZp, q.bSigned) || !_zpOk(q.cZp, q.cSigned)) return false;
        if (!_rqOk(q.Ma, q.s) || !_rqOk(q.Mb, q.s) || q.numelA % q.numelB != 0) return false;
        return _bounded(d, 2 + Merkle.depthForBytes(q.numelA) + Merkle.depthForBytes(q.numelB), 0, 0);
    }

    function _validGap(Desc memory d) private pure returns (bool) {
        GapParams memory q = _gapParams(d);
        if (!(_size(q.N) && _size(q.H) && _size(q.W) && _size(q.C))) return false;
        if (!(_flag(q.xSigned) && _flag(q.ySigned) && _flag(q.xNchw))) return false;
        if (!_zpOk(q.xZp, q.xSigned) || !_zpOk(q.yZp, q.ySigned) || !_rqOk(q.M0, q.s)) return false;
        uint256 hw = q.H * q.W;
        uint256 n = q.N * hw * q.C;
        if (n > MAX_NUMEL) return false;
        uint256 depth = Merkle.depthForBytes(n);
        return _bounded(d, q.xNchw != 0 ? _words(hw) + depth : hw * (1 + depth), 0, hw);
    }

    function _validMatmul(Desc memory d) private pure returns (bool) {
        MatmulParams memory q = _matmulParams(d);
        if (!(_size(q.M) && _size(q.K) && _size(q.N))) return false;
        if (!(_flag(q.aSigned) && _flag(q.bSigned) && _flag(q.ySigned))) return false;
        if (!_zpOk(q.aZp, q.aSigned) || !_zpOk(q.yZp, q.ySigned)) return false;
        if (q.M * q.K > MAX_NUMEL || q.K * q.N > MAX_NUMEL || q.M * q.N > MAX_NUMEL) return false;
        uint256 w = 2 * _words(q.K) + Merkle.depthForBytes(q.M * q.K) + Merkle.depthForBytes(q.N * q.K) + 1
            + Merkle.depthForBytes(q.N * 32);
        return _bounded(d, w, q.K, 0);
    }

    function _validDequantize(Desc memory d) private pure returns (bool) {
        DequantizeParams memory q = _dequantizeParams(d);
        if (!_numel(q.numel) || !_flag(q.xSigned) || !_zpOk(q.zp, q.xSigned) || !_scaleOk(q.scaleBits)) return false;
        return _bounded(d, 1 + Merkle.depthForBytes(q.numel), 0, 0);
    }

    /// @notice The canonical value of output element `e` of the operator `desc`.
    /// @param desc the operator descriptor (its leaf preimage in the model commitment)
    /// @param inputRoots Merkle roots of the operator's runtime inputs, in `inputs` order
    /// @param e flat element index in the output's committed layout (NHWC for activations)
    /// @param o openings, per kind: QUANTIZE [x]; CONV [x, weight, table]; ADD [a, b]; GAP [x];
    ///        MATMUL [a, weight, table]; DEQUANTIZE [q]
    /// @return value the element's encoding: the byte of an int8/uint8 element, the bits of a float32 one;
    ///         0 for an index past the end of the tensor (the zero padding of the last word and of the tree)
    /// @custom:reverts BadOpening, BadOpeningCount, UnknownKind, BadParams
    function element(bytes calldata desc, bytes32[] calldata inputRoots, uint256 e, Opening[] calldata o)
        external
        pure
        returns (uint256 value)
    {
        Desc memory d = decode(desc);
        (uint256 numel,) = _outputSize(d);
        if (e >= numel) return 0;
        if (inputRoots.length != d.inputs.length) revert BadOpeningCount(d.inputs.length, inputRoots.length);
        if (d.kind == QUANTIZE) return _quantize(d, inputRoots, e, o);
        if (d.kind == CONV) return _conv(d, inputRoots, e, o);
        if (d.kind == ADD) return _add(d, inputRoots, e, o);
        if (d.kind == GAP) return _gap(d, inputRoots, e, o);
        if (d.kind == MATMUL) return _matmul(d, inputRoots, e, o);
        return _dequantize(d, inputRoots, e, o);
    }

    // ------------------------------------------------------------------------------------------------ helpers

    function _rq(int256 acc, int256 m0, uint256 s) private pure returns (int256) {
        return (acc * m0 + int256(1 << (s - 1))) >> s;
    }

    /// @dev Table word of an output channel: bias int32 | S float32 bits | 0 | w_zp int8.
    function _table(Desc memory d, uint256 nChannels, uint256 ch, Opening calldata op, uint256 which)
        private
        pure
        returns (int256 bias, uint256 sbits, int256 wzp)
    {
        Gather memory g = Openings.gather(1);
        Openings.range(g, ch * 32, 32);
        Openings.verify(g, d.tableRoot, nChannels * 32, op, which);
        uint256 w = uint256(op.leaves[0]);
        bias = int256(int32(uint32(w >> 224)));
        sbits = uint32(w >> 192);
        wzp = int256(int8(uint8(w >> 176)));
    }

    /// @dev Round x * 2^e to 24 significant bits, to nearest, ties to even (IEEE binary32 rounding of a value
    ///      in the normal range). Returns (m, e') with m < 2^24 and x * 2^e ~ m * 2^e'.
    function _round24(uint256 x, int256 e) private pure returns (uint256, int256) {
        uint256 len = 0;
        for (uint256 t = x >> 24; t > 0; t >>= 1) ++len;
        if (len == 0) return (x, e);
        uint256 m = x >> len;
        uint256 rem = x & ((1 << len) - 1);
        uint256 half = 1 << (len - 1);
        if (rem > half || (rem == half && (m & 1) == 1)) m += 1;
        if (m == 1 << 24) return (m >> 1, e + int256(len) + 1);
        return (m, e + int256(len));
    }

    /// @dev RQF(acc, S) = rne(fl32(fl32(acc) * S)) for |acc| < 2^31 and S a normal float32 below 2^64 (the
    ///      loader checks both): the IEEE-754 binary32 requantization of ONNX Runtime's CPU kernels.
    function _rqF32(int256 acc, uint256 sbits) private pure returns (int256) {
        if (acc == 0) return 0;
        uint256 a = uint256(acc < 0 ? -acc : acc);
        (uint256 ma, int256 ea) = _round24(a, 0); // fl32(acc)
        uint256 ms = (sbits & 0x7fffff) | 0x800000;
        int256 es = int256((sbits >> 23) & 0xff) - 150;
        (uint256 mp, int256 ep) = _round24(ma * ms, ea + es); // fl32(fl32(acc) * S)
        uint256 r;
        if (ep >= 0) {
            r = mp << uint256(ep);
        } else if (ep < -25) {
            r = 0; // below 2^-1: rounds to 0
        } else {
            uint256 sh = uint256(-ep);
            r = mp >> sh;
            uint256 rem = mp & ((1 << sh) - 1);
            uint256 half = 1 << (sh - 1);
            if (rem > half || (rem == half && (r & 1) == 1)) r += 1;
        }
        return acc < 0 ? -int256(r) : int256(r);
    }

    // ---------------------------------------------------------------------------------------------- operators

    /// @dev QUANTIZE (`QuantizeParams`). Output NHWC; input float32, NCHW when it is the model input (input
    ///      reference 0, as given), else in its committed layout (a DEQUANTIZE output, NHWC: element e reads e).
    ///      q = sat(zp + rne(x / scale)) over the reals; NaN -> zp, +-Inf saturate.
    function _quantize(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 1);
        QuantizeParams memory q = _quantizeParams(d);
        (uint256 N, uint256 C, uint256 H, uint256 W) = (q.N, q.C, q.H, q.W);
        uint256 off = e * 4;
        if (d.inputs[0] == 0) {
            uint256 c = e % C;
            uint256 t = e / C;
            uint256 w = t % W;
            t /= W;
            uint256 h = t % H;
            uint256 n = t / H;
            off = (((n * C + c) * H + h) * W + w) * 4;
        }
        Gather memory g = Openings.gather(1);
        Openings.range(g, off, 4);
        Openings.verify(g, roots[0], N * C * H * W * 4, o[0], 0);
        uint256 bits = uint32(uint256(o[0].leaves[0]) >> (224 - 8 * (off & 31)));
        int256 r = _roundDiv(bits, q.scaleBits);
        return Openings.sat(q.zp + r, q.ySigned != 0);
    }

    /// @dev rne(x / scale) for float32 bit patterns, clamped to +-2^40 (anything beyond saturates).
    function _roundDiv(uint256 xb, uint256 sb) private pure returns (int256) {
        uint256 ex = (xb >> 23) & 0xff;
        uint256 mx = xb & 0x7fffff;
        bool neg = (xb >> 31) != 0;
        if (ex == 0xff) {
            if (mx != 0) return 0; // NaN: the zero point
            return neg ? -int256(1 << 40) : int256(1 << 40);
        }
        if (ex == 0) ex = 1;
        else mx |= 0x800000;
        if (mx == 0) return 0;
        uint256 es = (sb >> 23) & 0xff;
        uint256 ms = (sb & 0x7fffff) | 0x800000; // scales are normal (checked by the model loader)
        int256 dd = int256(ex) - int256(es);
        uint256 r;
        if (dd > 40) {
            r = 1 << 40;
        } else if (dd < -60) {
            r = 0;
        } else {
            (uint256 num, uint256 den) = dd >= 0 ? (mx << uint256(dd), ms) : (mx, ms << uint256(-dd));
            r = num / den;
            uint256 rem2 = 2 * (num % den);
            if (rem2 > den || (rem2 == den && (r & 1) == 1)) r += 1;
            if (r > 1 << 40) r = 1 << 40;
        }
        return neg ? -int256(r) : int256(r);
    }

    /// @dev CONV (`ConvParams`). Input NHWC; output NHWC or, if outNchw, NCHW.
    function _conv(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 3);
        ConvParams memory c = _convParams(d);
        if (c.G == 0 || c.Ci % c.G != 0 || c.Co % c.G != 0) revert BadParams(CONV);
        uint256 co;
        uint256 ow;
        uint256 oh;
        uint256 n;
        if (c.outNchw != 0) {
            // output committed NCHW
            ow = e % c.OW;
            uint256 t = e / c.OW;
            oh = t % c.OH;
            t /= c.OH;
            co = t % c.Co;
            n = t / c.Co;
        } else {
            co = e % c.Co;
            uint256 t = e / c.Co;
            ow = t % c.OW;
            t /= c.OW;
            oh = t % c.OH;
            n = t / c.OH;
        }
        uint256 cig = c.Ci / c.G;
        uint256 K = c.KH * c.KW * cig;
        uint256 taps = c.KH * c.KW;
        // input words, tap by tap (in-bounds taps give increasing byte offsets)
        uint256[] memory toff = new uint256[](taps);
        uint256[] memory tpos = new uint256[](taps);
        Gather memory gx = Openings.gather(taps * ((cig + 31) / 32 + 1));
        {
            uint256 g0 = (co / (c.Co / c.G)) * cig;
            for (uint256 kh = 0; kh < c.KH; ++kh) {
                int256 ih = int256(oh * c.SH + kh * c.DH) - int256(c.PT);
                for (uint256 kw = 0; kw < c.KW; ++kw) {
                    int256 iw = int256(ow * c.SW + kw * c.DW) - int256(c.PL);
                    uint256 t = kh * c.KW + kw;
                    if (ih < 0 || iw < 0 || uint256(ih) >= c.H || uint256(iw) >= c.W) {
                        toff[t] = type(uint256).max; // padding: contributes (x_zp - x_zp) * w = 0
                        continue;
                    }
                    uint256 off = ((n * c.H + uint256(ih)) * c.W + uint256(iw)) * c.Ci + g0;
                    toff[t] = off;
                    tpos[t] = Openings.range(gx, off, cig);
                }
            }
        }
        int256 acc;
        {
            uint256 sbits;
            int256 wzp;
            (acc, sbits, wzp) = _table(d, c.Co, co, o[2], 2);
            uint256 xb = gx.n == 0 ? 0 : Openings.verify(gx, roots[0], c.N * c.H * c.W * c.Ci, o[0], 0);
            Gather memory gw = Openings.gather(K / 32 + 2);
            Openings.range(gw, co * K, K);
            uint256 wb = Openings.verify(gw, d.weightRoot, c.Co * K, o[1], 1) + ((co * K) & 31);
            acc += _convAcc(c, toff, tpos, xb, wb, cig, wzp);
            acc = _rqF32(acc, sbits);
        }
        return Openings.sat(c.yZp + acc, c.ySigned != 0);
    }

    function _convAcc(
        ConvParams memory c,
        uint256[] memory toff,
        uint256[] memory tpos,
        uint256 xb,
        uint256 wb,
        uint256 cig,
        int256 wzp
    ) private pure returns (int256 acc) {
        int256 xzp = c.xZp;
        bool xs = c.xSigned != 0;
        bool ws = c.wSigned != 0;
        for (uint256 t = 0; t < toff.length; ++t) {
            uint256 off = toff[t];
            if (off == type(uint256).max) continue;
            acc += _dot(Openings.at(xb, tpos[t], off), wb + t * cig, cig, xzp, wzp, xs, ws);
        }
    }

    /// @dev sum_{i < n} (x[i] - xzp) * (w[i] - wzp) over bytes at calldata addresses xp and wp (int8 when the
    ///      flag is set, else uint8). Branch-free: a byte b read as int8 is (b xor 0x80) - 0x80, as uint8
    ///      (b xor 0) - 0, so x - xzp = (b xor xf) - xa with xa = xzp + (signed ? 0x80 : 0). One calldataload per
    ///      32 bytes (calldata reads need no alignment), 32 products unrolled. Two's complement throughout;
    ///      |result| < 2^31 for loader-checked models.
    function _dot(uint256 xp, uint256 wp, uint256 n, int256 xzp, int256 wzp, bool xs, bool ws)
        private
        pure
        returns (int256 acc)
    {
        assembly {
            let xf := mul(xs, 0x80)
            let wf := mul(ws, 0x80)
            let xa := add(xzp, xf)
            let wa := add(wzp, wf)
            let i := 0
            for {} iszero(gt(add(i, 32), n)) { i := add(i, 32) } {
                let xw := calldataload(add(xp, i))
                let ww := calldataload(add(wp, i))
                    acc := add(acc, mul(sub(xor(byte(0, xw), xf), xa), sub(xor(byte(0, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(1, xw), xf), xa), sub(xor(byte(1, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(2, xw), xf), xa), sub(xor(byte(2, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(3, xw), xf), xa), sub(xor(byte(3, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(4, xw), xf), xa), sub(xor(byte(4, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(5, xw), xf), xa), sub(xor(byte(5, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(6, xw), xf), xa), sub(xor(byte(6, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(7, xw), xf), xa), sub(xor(byte(7, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(8, xw), xf), xa), sub(xor(byte(8, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(9, xw), xf), xa), sub(xor(byte(9, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(10, xw), xf), xa), sub(xor(byte(10, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(11, xw), xf), xa), sub(xor(byte(11, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(12, xw), xf), xa), sub(xor(byte(12, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(13, xw), xf), xa), sub(xor(byte(13, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(14, xw), xf), xa), sub(xor(byte(14, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(15, xw), xf), xa), sub(xor(byte(15, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(16, xw), xf), xa), sub(xor(byte(16, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(17, xw), xf), xa), sub(xor(byte(17, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(18, xw), xf), xa), sub(xor(byte(18, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(19, xw), xf), xa), sub(xor(byte(19, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(20, xw), xf), xa), sub(xor(byte(20, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(21, xw), xf), xa), sub(xor(byte(21, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(22, xw), xf), xa), sub(xor(byte(22, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(23, xw), xf), xa), sub(xor(byte(23, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(24, xw), xf), xa), sub(xor(byte(24, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(25, xw), xf), xa), sub(xor(byte(25, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(26, xw), xf), xa), sub(xor(byte(26, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(27, xw), xf), xa), sub(xor(byte(27, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(28, xw), xf), xa), sub(xor(byte(28, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(29, xw), xf), xa), sub(xor(byte(29, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(30, xw), xf), xa), sub(xor(byte(30, ww), wf), wa)))
                    acc := add(acc, mul(sub(xor(byte(31, xw), xf), xa), sub(xor(byte(31, ww), wf), wa)))
            }
            for {} lt(i, n) { i := add(i, 1) } {
                acc := add(acc, mul(sub(xor(byte(0, calldataload(add(xp, i))), xf), xa),
                    sub(xor(byte(0, calldataload(add(wp, i))), wf), wa)))
            }
        }
    }

    /// @dev ADD (`AddParams`): c = a + b, b repeated over a.
    function _add(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 2);
        AddParams memory q = _addParams(d);
        uint256 nb = q.numelB;
        uint256 eb = e % nb;
        Gather memory ga = Openings.gather(1);
        uint256 pa = Openings.range(ga, e, 1);
        uint256 ba = Openings.verify(ga, roots[0], q.numelA, o[0], 0);
        Gather memory gb = Openings.gather(1);
        uint256 pb = Openings.range(gb, eb, 1);
        bytes32 rb = d.inputs.length > 1 ? roots[1] : d.constRoot;
        uint256 bb = Openings.verify(gb, rb, nb, o[1], 1);
        int256 a = Openings.ld(Openings.at(ba, pa, e), q.aSigned != 0) - q.aZp;
        int256 b = Openings.ld(Openings.at(bb, pb, eb), q.bSigned != 0) - q.bZp;
        uint256 s = q.s;
        int256 y = (a * q.Ma + b * q.Mb + int256(1 << (s - 1))) >> s;
        return Openings.sat(q.cZp + y, q.cSigned != 0);
    }

    /// @dev GAP (`GapParams`). Input NHWC (NCHW if xNchw), output [N, C].
    function _gap(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 1);
        GapParams memory q = _gapParams(d);
        (uint256 H, uint256 W, uint256 C) = (q.H, q.W, q.C);
        uint256 c = e % C;
        uint256 n = e / C;
        uint256 hw = H * W;
        int256 acc;
        bool xs = q.xSigned != 0;
        int256 xzp = q.xZp;
        if (q.xNchw != 0) {
            // input committed NCHW: the channel is hw contiguous bytes
            Gather memory g = Openings.gather(hw / 32 + 2);
            uint256 off = (n * C + c) * hw;
            Openings.range(g, off, hw);
            uint256 base = Openings.verify(g, roots[0], q.N * hw * C, o[0], 0) + (off & 31);
            for (uint256 i = 0; i < hw; ++i) {
                acc += Openings.ld(base + i, xs) - xzp;
            }
        } else {
            uint256[] memory pos = new uint256[](hw);
            Gather memory g = Openings.gather(hw);
            for (uint256 i = 0; i < hw; ++i) {
                pos[i] = Openings.range(g, (n * hw + i) * C + c, 1);
            }
            uint256 base = Openings.verify(g, roots[0], q.N * hw * C, o[0], 0);
            for (uint256 i = 0; i < hw; ++i) {
                acc += Openings.ld(Openings.at(base, pos[i], (n * hw + i) * C + c), xs) - xzp;
            }
        }
        return Openings.sat(q.yZp + _rq(acc, q.M0, q.s), q.ySigned != 0);
    }

    /// @dev MATMUL (`MatmulParams`): y = a b; weight = b transposed [N, K].
    function _matmul(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 3);
        MatmulParams memory q = _matmulParams(d);
        (uint256 M, uint256 K, uint256 N) = (q.M, q.K, q.N);
        uint256 col = e % N;
        uint256 row = e / N;
        (int256 acc, uint256 sbits, int256 bzp) = _table(d, N, col, o[2], 2);
        Gather memory ga = Openings.gather(K / 32 + 2);
        Openings.range(ga, row * K, K);
        uint256 ab = Openings.verify(ga, roots[0], M * K, o[0], 0) + ((row * K) & 31);
        Gather memory gw = Openings.gather(K / 32 + 2);
        Openings.range(gw, col * K, K);
        uint256 wb = Openings.verify(gw, d.weightRoot, N * K, o[1], 1) + ((col * K) & 31);
        acc += _dot(ab, wb, K, q.aZp, bzp, q.aSigned != 0, q.bSigned != 0);
        return Openings.sat(q.yZp + _rqF32(acc, sbits), q.ySigned != 0);
    }

    /// @dev DEQUANTIZE (`DequantizeParams`). y = fl32((x - zp) * scale), IEEE-754 RNE.
    function _dequantize(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        Openings.checkCount(o, 1);
        DequantizeParams memory q = _dequantizeParams(d);
        Gather memory g = Openings.gather(1);
        uint256 pos = Openings.range(g, e, 1);
        uint256 base = Openings.verify(g, roots[0], q.numel, o[0], 0);
        int256 v = Openings.ld(Openings.at(base, pos, e), q.xSigned != 0) - q.zp;
        return _mulF32(v, q.scaleBits);
    }

    /// @dev IEEE-754 binary32 product of a small integer v (|v| < 2^9) and a normal float32 (bits sb),
    ///      rounded to nearest, ties to even; +0 for v = 0, infinity on overflow. The product of a non-zero
    ///      integer and a normal float is never subnormal.
    function _mulF32(int256 v, uint256 sb) private pure returns (uint256) {
        if (v == 0) return 0;
        uint256 sign = ((sb >> 31) ^ (v < 0 ? 1 : 0)) << 31;
        uint256 av = uint256(v < 0 ? -v : v);
        uint256 es = (sb >> 23) & 0xff;
        uint256 P = av * ((sb & 0x7fffff) | 0x800000); // value = P * 2^(es - 150)
        uint256 L = 0;
        for (uint256 t = P; t > 0; t >>= 1) ++L;
        uint256 m = P;
        int256 ebias = int256(es) - 150 + int256(L) - 1 + 127; // biased exponent of the leading bit
        if (L > 24) {
            uint256 sh = L - 24;
            m = P >> sh;
            uint256 rem = P & ((1 << sh) - 1);
            uint256 half = 1 << (sh - 1);
            if (rem > half || (rem == half && (m & 1) == 1)) m += 1;
            if (m == 1 << 24) {
                m >>= 1;
                ebias += 1;
            }
        } else {
            m = P << (24 - L);
        }
        if (ebias >= 255) return sign | 0x7f800000;
        return sign | (uint256(ebias) << 23) | (m & 0x7fffff);
    }
}
