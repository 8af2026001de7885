// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Merkle} from "../shared/Merkle.sol";
import {Desc, Descriptors, Opening, Gather, Openings, BadOpeningCount} from "./Openings.sol";
import {Pooling} from "./Pooling.sol";
import {Elementwise} from "./Elementwise.sol";

/// @notice What every operator-definition contract exposes (`OneStep`, `Pooling`, `Elementwise`): the same descriptor
///         encoding and the same semantics of `check`, `outputSize` and `element` (see `OneStep`).
interface IOperators {
    function check(bytes calldata desc) external view returns (bool ok, uint256 numel, uint256 esize);
    function outputSize(bytes calldata desc) external view returns (uint256 numel, uint256 esize);
    function element(bytes calldata desc, bytes32[] calldata inputRoots, uint256 e, Opening[] calldata o)
        external
        view
        returns (uint256 value);
}


/// @title OneStep: the Solidity definition of pinpoint's canonical integer operators
/// @notice Recomputes ONE element of an operator's output from Merkle-proven inputs, weights and parameters,
///         exactly as `offchain/inference/definitions.py` (DEFINITIONS) computes the whole tensor. The
///         semantics are stated in `offchain/inference/graph.py`; kinds: 1 QUANTIZE, 2 CONV, 3 ADD, 4 GAP,
///         5 MATMUL, 6 DEQUANTIZE here; 7 MAXPOOL, 8 AVGPOOL, 9 PAD are decided by `Pooling` and 10 LUT,
///         11 CONCAT, 12 TRANSPOSE, 13 MUL, 14 SOFTMAX by `Elementwise` (contracts/inference/Pooling.sol and
///         Elementwise.sol), which this contract creates and to which `check`, `outputSize`, `sizes` and
///         `element` forward those kinds (one chunk each: never phase 3). Parameters are read by name
///         (`QuantizeParams`, ...).
///         Requantization: CONV and MATMUL y = sat(zp + rne(fl32(fl32(acc) * S))) (IEEE-754 binary32, emulated
///         with integers); ADD and GAP y = sat(zp + floor((acc * M0 + 2^(s-1)) / 2^s)).
/// @dev Stateless but for the two addresses set at construction; `Pinpoint` calls it for the final move of a game,
///      tests call it directly. The addresses are storage, not immutables, so the runtime code is the artifact's.
contract OneStep {
    /// @notice The definitions of kinds 7-9 (MAXPOOL, AVGPOOL, PAD), created by the constructor.
    Pooling public pooling;
    /// @notice The definitions of kinds 10-14 (LUT, CONCAT, TRANSPOSE, MUL, SOFTMAX), created by the constructor.
    Elementwise public elementwise;

    constructor() {
        pooling = new Pooling();
        elementwise = new Elementwise();
    }

    /// @dev The contract that decides `desc`'s kind when it is not this one (kinds 7-14), else address(0). Reads
    ///      only the first word (the kind); a shorter `desc` stays here (and is refused by the decoding).
    function _forward(bytes calldata desc) private view returns (address) {
        if (desc.length < 32) return address(0);
        uint256 kind = uint256(bytes32(desc[0:32]));
        if (kind >= 7 && kind <= 9) return address(pooling);
        if (kind >= 10 && kind <= 14) return address(elementwise);
        return address(0);
    }

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
        uint256 racBits; // float32 bits of rAC = fl32(a_scale / c_scale)
        uint256 rbcBits; // float32 bits of rBC = fl32(b_scale / c_scale)
        uint256 fixedBits; // float32 bits of fixed = fl32(c_zp - fma32(a_zp, rAC, fl32(rBC * b_zp)))
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
    function outputSize(bytes calldata desc) external view returns (uint256 numel, uint256 esize) {
        address fwd = _forward(desc);
        if (fwd != address(0)) return IOperators(fwd).outputSize(desc);
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
    uint256 public constant ONE_STEP_GAS = 160_000;
    uint256 public constant ONE_STEP_CALLDATA = 22_000;
    uint256 public constant GAS_BASE = 70_000;
    uint256 public constant GAS_PER_WORD = 870;
    uint256 public constant GAS_PER_REDUCE = 105;
    uint256 public constant GAS_PER_SUM = 370;
    uint256 public constant CALLDATA_BASE = 1_000;
    /// @notice Gas a chunk one-step costs beyond the element's cost model (its chunking, measured at the ResNet-50
    ///         and VGG-16 shapes of `tests/test_reduction.py`).
    uint256 public constant CHUNK_GAS = 30_000;
    /// @notice At most 2**MAX_CHUNK_DEPTH chunks per reduction (bounds phase 3's rounds; `Gas.REDUCTION_DEPTH`).
    uint256 public constant MAX_CHUNK_DEPTH = 16;
    uint256 internal constant MAX_ARRAY = 64;

    /// @notice Whether `desc` is an operator descriptor this contract can decide: well formed, a known kind with
    ///         its number of parameters and runtime inputs, every parameter in range, and a one-step within
    ///         ONE_STEP_GAS gas and ONE_STEP_CALLDATA bytes (the rules of `offchain/inference/limits.py`).
    ///         Never reverts, whatever the bytes (only out of gas).
    /// @return ok the verdict; numel elements and esize bytes per element of the output tensor (0 when not ok)
    function check(bytes calldata desc) external view returns (bool ok, uint256 numel, uint256 esize) {
        address fwd = _forward(desc);
        if (fwd != address(0)) {
            try IOperators(fwd).check(desc) returns (bool ok_, uint256 numel_, uint256 esize_) {
                return (ok_, numel_, esize_);
            } catch {
                return (false, 0, 0);
            }
        }
        Desc memory d;
        (ok, d) = Descriptors.tryDecode(desc, MAX_ARRAY);
        if (!ok || !_valid(d)) return (false, 0, 0);
        (numel, esize) = _outputSize(d);
    }

    /// @notice `check` and the chunk count of `chunks` in one call (what `Pinpoint.selectOperator` keeps for the
    ///         rest of the game, so that no later move re-derives them from the descriptor). Never reverts.
    /// @return ok the verdict of `check`; numel, esize as `outputSize`; n the number of chunks of its reduction
    ///         (1 for kinds that are not reductions; all 0 when not ok)
    function profile(bytes calldata desc) external view returns (bool ok, uint256 numel, uint256 esize, uint256 n) {
        address fwd = _forward(desc);
        if (fwd != address(0)) {
            try IOperators(fwd).check(desc) returns (bool ok_, uint256 numel_, uint256 esize_) {
                return ok_ ? (true, numel_, esize_, 1) : (false, 0, 0, 0);
            } catch {
                return (false, 0, 0, 0);
            }
        }
        Desc memory d;
        (ok, d) = Descriptors.tryDecode(desc, MAX_ARRAY);
        if (!ok || !_validParams(d)) return (false, 0, 0, 0);
        (n,) = _chunks(d); // its one computation: `_valid` = `_validParams` and this count in range
        if (n < 1 || n > 1 << MAX_CHUNK_DEPTH) return (false, 0, 0, 0);
        (numel, esize) = _outputSize(d);
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

    /// @dev An ADD scale ratio: a positive float32 in [2^-32, 2^20) (biased exponent 95..146).
    function _ratioOk(uint256 bits) private pure returns (bool) {
        uint256 ex = bits >> 23;
        return bits < 1 << 31 && ex >= 95 && ex <= 146;
    }

    function _words(uint256 n) private pure returns (uint256) {
        return n / 32 + 2;
    }

    function _bounded(Desc memory d, uint256 w, uint256 r, uint256 sum) private pure returns (bool) {
        uint256 gas = GAS_BASE + GAS_PER_WORD * w + GAS_PER_REDUCE * r + GAS_PER_SUM * sum;
        uint256 cd = CALLDATA_BASE + 32 * (w + d.p.length + d.inputs.length);
        return gas <= ONE_STEP_GAS && cd <= ONE_STEP_CALLDATA;
    }

    /// @dev The rules of `check` for kinds 1-6: parameters in range and a reduction of 1 to 2**MAX_CHUNK_DEPTH chunks.
    function _valid(Desc memory d) private pure returns (bool) {
        return _validParams(d) && _chunked(d);
    }

    /// @dev `_valid` but for the chunk count (computed once by `profile`).
    function _validParams(Desc memory d) private pure returns (bool) {
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
        uint256 K = c.KH * c.KW * (c.Ci / c.G);
        uint256 nx = c.N * c.H * c.W * c.Ci;
        if (nx > MAX_NUMEL || c.N * c.OH * c.OW * c.Co > MAX_NUMEL || c.Co * K > MAX_NUMEL) return false;
        return true;
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
        if (!_ratioOk(q.racBits) || !_ratioOk(q.rbcBits) || q.numelA % q.numelB != 0) return false;
        uint256 fe = (q.fixedBits & 0x7fffffff) >> 23;
        if (q.fixedBits >= 1 << 32 || ((q.fixedBits & 0x7fffffff) != 0 && (fe < 63 || fe > 155))) return false;
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
        return true;
    }

    function _validMatmul(Desc memory d) private pure returns (bool) {
        MatmulParams memory q = _matmulParams(d);
        if (!(_size(q.M) && _size(q.K) && _size(q.N))) return false;
        if (!(_flag(q.aSigned) && _flag(q.bSigned) && _flag(q.ySigned))) return false;
        if (!_zpOk(q.aZp, q.aSigned) || !_zpOk(q.yZp, q.ySigned)) return false;
        if (q.M * q.K > MAX_NUMEL || q.K * q.N > MAX_NUMEL || q.M * q.N > MAX_NUMEL) return false;
        return true;
    }

    function _validDequantize(Desc memory d) private pure returns (bool) {
        DequantizeParams memory q = _dequantizeParams(d);
        if (!_numel(q.numel) || !_flag(q.xSigned) || !_zpOk(q.zp, q.xSigned) || !_scaleOk(q.scaleBits)) return false;
        return _bounded(d, 1 + Merkle.depthForBytes(q.numel), 0, 0);
    }

    // ------------------------------------------------------------------------------------------- reductions
    // CONV, MATMUL and GAP elements are sums of R taps (`offchain/inference/reduction.py` orders them): one chunk
    // (n = 1, L = R: `element` decides it) when the whole element's one-step fits the cost model (no CHUNK_GAS),
    // else n chunks of L taps: L the largest number whose chunk one-step the cost model bounds by ONE_STEP_GAS and
    // ONE_STEP_CALLDATA (`offchain/inference/limits.py` `chunking`, the same binary search). A descriptor is valid
    // when one tap fits and n <= 2**MAX_CHUNK_DEPTH. `Pinpoint`'s phase 3 dissects the partial sums
    // acc_i = acc_{i-1} + chunk_i (acc_0 = 0, chunk 1 adds the bias) down to one chunk (`chunk`) or proves the
    // final requantization wrong (`finish`).

    /// @dev What the cost of a chunk depends on besides its length L, computed once per descriptor.
    struct Shape {
        uint256 kind;
        uint256 R; // taps of one element
        uint256 cig; // CONV: channels per group
        uint256 taps; // CONV: kernel taps
        uint256 dx; // CONV: depth of the input tree; GAP: depth of the input tree
        uint256 fixedW; // words and siblings opened whatever L (weight and table proofs)
        bool nchw; // GAP: input committed NCHW
        uint256 extra; // parameters + runtime inputs (calldata words)
    }

    function _shape(Desc memory d) private pure returns (Shape memory sh) {
        sh.kind = d.kind;
        sh.extra = d.p.length + d.inputs.length;
        if (d.kind == CONV) {
            ConvParams memory c = _convParams(d);
            if (c.G == 0) revert BadParams(CONV);
            sh.cig = c.Ci / c.G;
            sh.taps = c.KH * c.KW;
            sh.R = sh.taps * sh.cig;
            sh.dx = Merkle.depthForBytes(c.N * c.H * c.W * c.Ci);
            sh.fixedW = Merkle.depthForBytes(c.Co * sh.R) + 1 + Merkle.depthForBytes(c.Co * 32);
        } else if (d.kind == MATMUL) {
            MatmulParams memory q = _matmulParams(d);
            sh.R = q.K;
            sh.fixedW = Merkle.depthForBytes(q.M * q.K) + Merkle.depthForBytes(q.N * q.K) + 1
                + Merkle.depthForBytes(q.N * 32);
        } else if (d.kind == GAP) {
            GapParams memory q = _gapParams(d);
            sh.R = q.H * q.W;
            sh.dx = Merkle.depthForBytes(q.N * q.H * q.W * q.C);
            sh.nchw = q.xNchw != 0;
        }
    }

    /// @dev Whether a chunk of L taps fits the cost model's bounds (`chunk_cost` in `offchain/inference/limits.py`:
    ///      W words and siblings, R byte pairs, S bytes summed at the chunk's worst position); `chunkGas` is
    ///      CHUNK_GAS for a chunk one-step, 0 for the whole element's (`element`).
    function _fits(Shape memory sh, uint256 L, uint256 chunkGas) private pure returns (bool) {
        uint256 w;
        uint256 r;
        uint256 sum;
        if (sh.kind == CONV) {
            uint256 tc = (L + sh.cig - 2) / sh.cig + 1; // kernel taps L consecutive terms can touch
            if (tc > sh.taps) tc = sh.taps;
            w = tc * (_words(sh.cig < L ? sh.cig : L) + sh.dx) + _words(L) + sh.fixedW;
            r = L;
        } else if (sh.kind == MATMUL) {
            w = 2 * _words(L) + sh.fixedW;
            r = L;
        } else {
            w = sh.nchw ? _words(L) + sh.dx : L * (1 + sh.dx);
            sum = L;
        }
        uint256 gas = GAS_BASE + chunkGas + GAS_PER_WORD * w + GAS_PER_REDUCE * r + GAS_PER_SUM * sum;
        return gas <= ONE_STEP_GAS && CALLDATA_BASE + 32 * (w + sh.extra) <= ONE_STEP_CALLDATA;
    }

    function _taps(Desc memory d) private pure returns (uint256) {
        return _shape(d).R;
    }

    /// @dev (n, L); (1, 0) for a kind that does not reduce; (1, R) if the whole element's one-step fits (no
    ///      chunking cost); (0, 0) if one tap does not fit.
    function _chunks(Desc memory d) private pure returns (uint256 n, uint256 L) {
        Shape memory sh = _shape(d);
        uint256 R = sh.R;
        if (R == 0) return (1, 0);
        if (_fits(sh, R, 0)) return (1, R);
        if (!_fits(sh, 1, CHUNK_GAS)) return (0, 0);
        uint256 lo = 1;
        uint256 hi = R;
        while (lo < hi) {
            uint256 mid = (lo + hi + 1) / 2;
            if (_fits(sh, mid, CHUNK_GAS)) lo = mid;
            else hi = mid - 1;
        }
        return ((R + lo - 1) / lo, lo);
    }

    function _chunked(Desc memory d) private pure returns (bool) {
        (uint256 n,) = _chunks(d);
        return n >= 1 && n <= 1 << MAX_CHUNK_DEPTH;
    }

    /// @notice The chunking of the operator's reduction: n chunks of L taps (the last may be shorter); (1, 0) for
    ///         QUANTIZE, ADD, DEQUANTIZE. For a descriptor `check` accepts, 1 <= n <= 2**MAX_CHUNK_DEPTH.
    /// @custom:reverts UnknownKind, BadParams (malformed descriptors)
    function chunks(bytes calldata desc) external pure returns (uint256 n, uint256 L) {
        Desc memory d = decode(desc);
        _outputSize(d);
        return _chunks(d);
    }

    /// @notice `outputSize` and the number of chunks of `chunks` in one call (what `Pinpoint.step` needs).
    /// @custom:reverts UnknownKind, BadParams (malformed descriptors)
    function sizes(bytes calldata desc) external view returns (uint256 numel, uint256 esize, uint256 n) {
        address fwd = _forward(desc);
        if (fwd != address(0)) {
            (numel, esize) = IOperators(fwd).outputSize(desc);
            return (numel, esize, 1);
        }
        Desc memory d = decode(desc);
        (numel, esize) = _outputSize(d);
        (n,) = _chunks(d);
    }

    /// @notice The sum of chunk i + 1 (0-based leaf i) of output element `e`: the taps [i L, min(R, (i + 1) L)),
    ///         plus the channel's bias when i == 0 (CONV, MATMUL); 0 for i >= n (the padding leaves of phase 3's
    ///         tree) and for e past the end of the tensor. Exact int256 (|sum| < 2^31 for loader-checked models).
    /// @param o openings of the bytes the chunk reads: CONV [x, weight, table], MATMUL [a, weight, table], GAP [x]
    /// @custom:reverts BadOpening, BadOpeningCount, UnknownKind, BadParams (not CONV, MATMUL or GAP)
    function chunk(bytes calldata desc, bytes32[] calldata inputRoots, uint256 e, uint256 i, Opening[] calldata o)
        external
        pure
        returns (int256 sum)
    {
        Desc memory d = decode(desc);
        (uint256 numel,) = _outputSize(d);
        (uint256 n, uint256 L) = _chunks(d);
        if (L == 0) revert BadParams(d.kind);
        if (e >= numel || i >= n) return 0;
        if (inputRoots.length != d.inputs.length) revert BadOpeningCount(d.inputs.length, inputRoots.length);
        uint256 R = _taps(d);
        Span memory sp = Span(i * L, (i + 1) * L < R ? (i + 1) * L : R);
        int256 bias;
        if (d.kind == CONV) (sum, bias,) = _convTaps(d, inputRoots, e, sp, o);
        else if (d.kind == MATMUL) (sum, bias,) = _matmulTaps(d, inputRoots, e, sp, o);
        else sum = _gapTaps(d, inputRoots, e, sp, o);
        if (i == 0) sum += bias;
        return sum;
    }

    /// @notice Output element `e` requantized from the accumulator `acc` (bias included): CONV/MATMUL
    ///         sat(y_zp + RQF(acc, S)), GAP sat(y_zp + RQ(acc)); type(uint256).max (no element's encoding) for an
    ///         accumulator outside int32, which no honest solver reveals.
    /// @param o CONV/MATMUL [table] (the output channel's word), GAP []
    /// @custom:reverts BadOpening, BadOpeningCount, UnknownKind, BadParams (not CONV, MATMUL or GAP)
    function finish(bytes calldata desc, uint256 e, int256 acc, Opening[] calldata o)
        external
        pure
        returns (uint256 value)
    {
        Desc memory d = decode(desc);
        (uint256 numel,) = _outputSize(d);
        if (e >= numel) return 0;
        if (acc <= -int256(1 << 31) || acc >= int256(1 << 31)) return type(uint256).max;
        if (d.kind == GAP) {
            Openings.checkCount(o, 0);
            GapParams memory q = _gapParams(d);
            return Openings.sat(q.yZp + _rq(acc, q.M0, q.s), q.ySigned != 0);
        }
        Openings.checkCount(o, 1);
        if (d.kind == CONV) {
            ConvParams memory c = _convParams(d);
            (,,, uint256 co) = _convSite(c, e);
            (, uint256 sbits,) = _table(d, c.Co, co, o[0], 0);
            return Openings.sat(c.yZp + _rqF32(acc, sbits), c.ySigned != 0);
        }
        if (d.kind != MATMUL) revert BadParams(d.kind);
        MatmulParams memory m = _matmulParams(d);
        (, uint256 sb,) = _table(d, m.N, e % m.N, o[0], 0);
        return Openings.sat(m.yZp + _rqF32(acc, sb), m.ySigned != 0);
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
        view
        returns (uint256 value)
    {
        address fwd = _forward(desc);
        if (fwd != address(0)) return IOperators(fwd).element(desc, inputRoots, e, o);
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
    ///      q = sat(zp + rne(fl32(x / scale))), one IEEE binary32 division; NaN -> zp, +-Inf saturate.
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

    /// @dev rne(fl32(x / scale)) for float32 bit patterns (scale positive and normal: checked by the model loader
    ///      and `valid`), clamped to +-2^40 (anything beyond saturates). fl32 is one IEEE-754 binary32 division,
    ///      round to nearest even, as onnxruntime's QuantizeLinear divides (MLAS `_mm_div_ps`): the significand
    ///      quotient to 25-26 bits plus a sticky remainder, rounded to 24 bits. Results below 2^-126 (subnormal
    ///      or zero in binary32) and all results below 0.25 give 0 either way; results at or above 2^40, and
    ///      binary32 overflow to +-Inf, saturate. NaN -> 0 (the zero point), +-Inf -> +-2^40.
    function _roundDiv(uint256 xb, uint256 sb) private pure returns (int256) {
        uint256 ex = (xb >> 23) & 0xff;
        uint256 mx = xb & 0x7fffff;
        bool neg = (xb >> 31) != 0;
        if (ex == 0xff) {
            if (mx != 0) return 0; // NaN: the zero point
            return neg ? -int256(1 << 40) : int256(1 << 40);
        }
        if (mx == 0 && ex == 0) return 0;
        int256 e = int256(ex);
        if (ex == 0) {
            e = 1; // subnormal: normalize the significand to [2^23, 2^24)
            while (mx < 0x800000) {
                mx <<= 1;
                e -= 1;
            }
        } else {
            mx |= 0x800000;
        }
        uint256 ms = (sb & 0x7fffff) | 0x800000;
        // x / scale = (mx / ms) * 2^dd, mx / ms in (1/2, 2)
        int256 dd = e - int256((sb >> 23) & 0xff);
        uint256 r = dd > 41 ? 1 << 40 : dd < -3 ? 0 : _divRne(mx, ms, dd); // dd < -3: |x / scale| < 0.125
        return neg ? -int256(r) : int256(r);
    }

    /// @dev rne(fl32((mx / ms) * 2^dd)) for significands mx, ms in [2^23, 2^24) and dd in [-3, 41], clamped to 2^40.
    function _divRne(uint256 mx, uint256 ms, int256 dd) private pure returns (uint256 r) {
        uint256 num = mx << 25;
        uint256 qq = num / ms; // in (2^24, 2^26)
        uint256 sh = qq >= 1 << 25 ? 2 : 1; // keep the top 24 bits
        uint256 m = qq >> sh;
        uint256 low = qq & ((1 << sh) - 1);
        uint256 halfb = 1 << (sh - 1);
        if (low > halfb || (low == halfb && (num % ms != 0 || (m & 1) == 1))) m += 1; // binary32 RNE
        // fl32 of the quotient = m * 2^E, E = dd - 25 + sh in [-27, 18]
        int256 E = dd - 25 + int256(sh);
        if (E >= 0) {
            r = m << uint256(E);
            return r > 1 << 40 ? 1 << 40 : r;
        }
        uint256 s = uint256(-E);
        r = m >> s;
        uint256 rem = m & ((1 << s) - 1);
        uint256 half = 1 << (s - 1);
        if (rem > half || (rem == half && (r & 1) == 1)) r += 1; // integer RNE
    }

    /// @dev CONV (`ConvParams`). Input NHWC; output NHWC or, if outNchw, NCHW.
    function _conv(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        ConvParams memory c = _convParams(d);
        if (c.G == 0) revert BadParams(CONV);
        (int256 acc, int256 bias, uint256 sbits) = _convTaps(d, roots, e, Span(0, c.KH * c.KW * (c.Ci / c.G)), o);
        return Openings.sat(c.yZp + _rqF32(acc + bias, sbits), c.ySigned != 0);
    }

    /// @dev (n, oh, ow, co) of CONV output element e in its committed layout.
    function _convSite(ConvParams memory c, uint256 e)
        private
        pure
        returns (uint256 n, uint256 oh, uint256 ow, uint256 co)
    {
        if (c.outNchw != 0) {
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
    }

    /// @dev Taps [lo, hi) of a reduction (`offchain/inference/reduction.py` orders them).
    struct Span {
        uint256 lo;
        uint256 hi;
    }

    /// @dev CONV: sum over taps [lo, hi) (r = (kh * KW + kw) * Ci/G + c) of element e, and the channel's table
    ///      bias and S bits. Openings [x, weight, table].
    function _convTaps(Desc memory d, bytes32[] calldata roots, uint256 e, Span memory sp, Opening[] calldata o)
        private
        pure
        returns (int256 acc, int256 bias, uint256 sbits)
    {
        Openings.checkCount(o, 3);
        ConvParams memory c = _convParams(d);
        if (c.G == 0 || c.Ci % c.G != 0 || c.Co % c.G != 0) revert BadParams(CONV);
        (uint256 n, uint256 oh, uint256 ow, uint256 co) = _convSite(c, e);
        uint256 cig = c.Ci / c.G;
        uint256 t0 = sp.lo / cig;
        uint256 nt = (sp.hi - 1) / cig + 1 - t0; // kernel taps touched
        // input words, tap by tap (in-bounds taps give increasing byte offsets)
        uint256[] memory toff = new uint256[](nt);
        uint256[] memory tpos = new uint256[](nt);
        Gather memory gx = Openings.gather(nt * ((cig + 31) / 32 + 1));
        {
            uint256 g0 = (co / (c.Co / c.G)) * cig;
            for (uint256 k = 0; k < nt; ++k) {
                uint256 t = t0 + k;
                int256 ih = int256(oh * c.SH + (t / c.KW) * c.DH) - int256(c.PT);
                int256 iw = int256(ow * c.SW + (t % c.KW) * c.DW) - int256(c.PL);
                if (ih < 0 || iw < 0 || uint256(ih) >= c.H || uint256(iw) >= c.W) {
                    toff[k] = type(uint256).max; // padding: contributes (x_zp - x_zp) * w = 0
                    continue;
                }
                (uint256 c0, uint256 c1) = _clip(t, cig, sp);
                uint256 off = ((n * c.H + uint256(ih)) * c.W + uint256(iw)) * c.Ci + g0 + c0;
                toff[k] = off;
                tpos[k] = Openings.range(gx, off, c1 - c0);
            }
        }
        int256 wzp;
        (bias, sbits, wzp) = _table(d, c.Co, co, o[2], 2);
        uint256 xb = gx.n == 0 ? 0 : Openings.verify(gx, roots[0], c.N * c.H * c.W * c.Ci, o[0], 0);
        uint256 K = c.KH * c.KW * cig;
        Gather memory gw = Openings.gather((sp.hi - sp.lo) / 32 + 2);
        Openings.range(gw, co * K + sp.lo, sp.hi - sp.lo);
        uint256 wb = Openings.verify(gw, d.weightRoot, c.Co * K, o[1], 1) + ((co * K + sp.lo) & 31);
        acc = _convAcc(c, toff, tpos, xb, wb, wzp, sp);
    }

    /// @dev The channels [c0, c1) of kernel tap t that the taps [lo, hi) cover.
    function _clip(uint256 t, uint256 cig, Span memory sp) private pure returns (uint256 c0, uint256 c1) {
        uint256 a = t * cig;
        c0 = sp.lo > a ? sp.lo - a : 0;
        c1 = sp.hi < a + cig ? sp.hi - a : cig;
    }

    function _convAcc(
        ConvParams memory c,
        uint256[] memory toff,
        uint256[] memory tpos,
        uint256 xb,
        uint256 wb,
        int256 wzp,
        Span memory sp
    ) private pure returns (int256 acc) {
        int256 xzp = c.xZp;
        bool xs = c.xSigned != 0;
        bool ws = c.wSigned != 0;
        uint256 cig = c.Ci / c.G;
        uint256 t0 = sp.lo / cig;
        for (uint256 k = 0; k < toff.length; ++k) {
            uint256 off = toff[k];
            if (off == type(uint256).max) continue;
            (uint256 c0, uint256 c1) = _clip(t0 + k, cig, sp);
            acc += _dot(Openings.at(xb, tpos[k], off), wb + (t0 + k) * cig + c0 - sp.lo, c1 - c0, xzp, wzp, xs, ws);
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

    /// @dev ADD (`AddParams`): c = sat(rne(fma32(a, rAC, fma32(b, rBC, fixed)))), b repeated over a
    ///      (onnxruntime's AVX2 QLinearAdd arithmetic; offchain/inference/graph.py states it in words).
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
        int256 a = Openings.ld(Openings.at(ba, pa, e), q.aSigned != 0);
        int256 b = Openings.ld(Openings.at(bb, pb, eb), q.bSigned != 0);
        uint256 fb = q.fixedBits;
        int256 m = int256((fb & 0x7fffff) | ((fb & 0x7fffffff) == 0 ? 0 : 0x800000));
        int256 ex = int256((fb >> 23) & 0xff) - 150;
        (m, ex) = _fma32(b, q.rbcBits, fb >> 31 == 0 ? m : -m, ex);
        (m, ex) = _fma32(a, q.racBits, m, ex);
        return Openings.sat(_rneInt(m, ex), q.cSigned != 0);
    }

    /// @dev fma32(x, r, t) = x * r + t rounded once to IEEE-754 binary32 (nearest, ties to even), the fused
    ///      multiply-add of onnxruntime's AVX2 QLinearAdd. x a small integer, r a normal float32 (bits rb),
    ///      t = mt * 2^et (|mt| <= 2^24). Exact in int256 under the ADD limits (aligned sums below 2^120;
    ///      results zero or normal). Returns (m, e) with fma32 = m * 2^e.
    function _fma32(int256 x, uint256 rb, int256 mt, int256 et) private pure returns (int256, int256) {
        int256 er = int256((rb >> 23) & 0xff) - 150;
        int256 p = x * int256((rb & 0x7fffff) | 0x800000);
        if (mt == 0) et = er;
        int256 lo = er < et ? er : et;
        int256 sum = p * int256(1 << uint256(er - lo)) + mt * int256(1 << uint256(et - lo));
        if (sum == 0) return (0, 0);
        (uint256 m, int256 e) = _round24(uint256(sum < 0 ? -sum : sum), lo);
        return (sum < 0 ? -int256(m) : int256(m), e);
    }

    /// @dev rne(m * 2^e): m * 2^e rounded to an integer, half to even (|m| <= 2^24).
    function _rneInt(int256 m, int256 e) private pure returns (int256) {
        uint256 u = uint256(m < 0 ? -m : m);
        uint256 r;
        if (e >= 0) {
            r = u << uint256(e);
        } else if (e < -25) {
            r = 0; // |m * 2^e| < 2^-1
        } else {
            uint256 sh = uint256(-e);
            r = u >> sh;
            uint256 rem = u & ((1 << sh) - 1);
            uint256 half = 1 << (sh - 1);
            if (rem > half || (rem == half && (r & 1) == 1)) r += 1;
        }
        return m < 0 ? -int256(r) : int256(r);
    }

    /// @dev GAP (`GapParams`). Input NHWC (NCHW if xNchw), output [N, C].
    function _gap(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        GapParams memory q = _gapParams(d);
        int256 acc = _gapTaps(d, roots, e, Span(0, q.H * q.W), o);
        return Openings.sat(q.yZp + _rq(acc, q.M0, q.s), q.ySigned != 0);
    }

    /// @dev GAP: sum over the pixels [lo, hi) (r = h * W + w) of x - x_zp for element e. Openings [x].
    function _gapTaps(Desc memory d, bytes32[] calldata roots, uint256 e, Span memory sp, Opening[] calldata o)
        private
        pure
        returns (int256 acc)
    {
        Openings.checkCount(o, 1);
        GapParams memory q = _gapParams(d);
        uint256 C = q.C;
        uint256 c = e % C;
        uint256 n = e / C;
        uint256 hw = q.H * q.W;
        uint256 len = sp.hi - sp.lo;
        bool xs = q.xSigned != 0;
        int256 xzp = q.xZp;
        if (q.xNchw != 0) {
            // input committed NCHW: the channel is hw contiguous bytes
            Gather memory g = Openings.gather(len / 32 + 2);
            uint256 off = (n * C + c) * hw + sp.lo;
            Openings.range(g, off, len);
            uint256 base = Openings.verify(g, roots[0], q.N * hw * C, o[0], 0) + (off & 31);
            for (uint256 i = 0; i < len; ++i) {
                acc += Openings.ld(base + i, xs) - xzp;
            }
        } else {
            uint256[] memory pos = new uint256[](len);
            Gather memory g = Openings.gather(len);
            for (uint256 i = 0; i < len; ++i) {
                pos[i] = Openings.range(g, (n * hw + sp.lo + i) * C + c, 1);
            }
            uint256 base = Openings.verify(g, roots[0], q.N * hw * C, o[0], 0);
            for (uint256 i = 0; i < len; ++i) {
                acc += Openings.ld(Openings.at(base, pos[i], (n * hw + sp.lo + i) * C + c), xs) - xzp;
            }
        }
    }

    /// @dev MATMUL (`MatmulParams`): y = a b; weight = b transposed [N, K].
    function _matmul(Desc memory d, bytes32[] calldata roots, uint256 e, Opening[] calldata o)
        private
        pure
        returns (uint256)
    {
        MatmulParams memory q = _matmulParams(d);
        (int256 acc, int256 bias, uint256 sbits) = _matmulTaps(d, roots, e, Span(0, q.K), o);
        return Openings.sat(q.yZp + _rqF32(acc + bias, sbits), q.ySigned != 0);
    }

    /// @dev MATMUL: sum over k in [lo, hi) of (a[row, k] - a_zp) * (b[col, k] - b_zp) for element e, and the
    ///      column's table bias and S bits. Openings [a, weight, table].
    function _matmulTaps(Desc memory d, bytes32[] calldata roots, uint256 e, Span memory sp, Opening[] calldata o)
        private
        pure
        returns (int256 acc, int256 bias, uint256 sbits)
    {
        Openings.checkCount(o, 3);
        MatmulParams memory q = _matmulParams(d);
        (uint256 M, uint256 K, uint256 N) = (q.M, q.K, q.N);
        uint256 col = e % N;
        uint256 row = e / N;
        uint256 len = sp.hi - sp.lo;
        int256 bzp;
        (bias, sbits, bzp) = _table(d, N, col, o[2], 2);
        Gather memory ga = Openings.gather(len / 32 + 2);
        Openings.range(ga, row * K + sp.lo, len);
        uint256 ab = Openings.verify(ga, roots[0], M * K, o[0], 0) + ((row * K + sp.lo) & 31);
        Gather memory gw = Openings.gather(len / 32 + 2);
        Openings.range(gw, col * K + sp.lo, len);
        uint256 wb = Openings.verify(gw, d.weightRoot, N * K, o[1], 1) + ((col * K + sp.lo) & 31);
        acc = _dot(ab, wb, len, q.aZp, bzp, q.aSigned != 0, q.bSigned != 0);
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
