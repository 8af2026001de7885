"""Canonical integer graph: an int8 ONNX model (QOperator form) lowered to the operators the contract can referee.

This module holds the types and the canonical semantics; `offchain.inference.loader` builds them from ONNX.
Data flow: ``loader.load(path)`` -> `Graph` (a topologically ordered list of `Op`) -> `offchain.inference.evaluators`
evaluates it -> `offchain.inference.merkle` commits to it (`Op.trees`, `Graph.model_root`).

Canonical operators (`Kind`), their exact semantics (written once here in words, once in Python in
`offchain.inference.definitions`, and once in Solidity, `contracts/inference/OneStep.sol`):

=============  =====================================================================================================
QUANTIZE       ``q = sat(zp + rne(fl32(x / scale)))``: x float32, the model input NCHW as given or a committed
               activation (a DEQUANTIZE output, NHWC) in its committed layout; the quotient is one IEEE-754 binary32
               division (nearest, ties to even, as onnxruntime's QuantizeLinear divides), then rounded half to even
               to an integer (ONNX QuantizeLinear; ``output_dtype`` int8/uint8 honoured); NaN -> zp, +-Inf and
               overflowing quotients saturate. Output NHWC.
CONV           ``acc = bias[co] + sum (x - x_zp) * (w - w_zp[co])`` over the in-bounds taps of group g (an
               out-of-bounds tap is the padding value x_zp, i.e. contributes 0), ``y = sat(y_zp + RQF(acc, S[co]))``.
               Input and output NHWC (output NCHW when only GAPs read it); weights OHWI (output channel, kernel
               row, kernel column, input channel).
ADD            ``y = sat(rne(fma32(a, rAC, fma32(b, rBC, fixed))))`` (com.microsoft QLinearAdd as onnxruntime's
               AVX2 kernel computes it): ``fma32(x, r, t)`` is ``x * r + t`` rounded once to IEEE binary32 (nearest,
               ties to even); ``rAC = fl32(a_scale / c_scale)``, ``rBC = fl32(b_scale / c_scale)`` and
               ``fixed = fl32(c_zp - fma32(a_zp, rAC, fl32(rBC * b_zp)))`` are binary32 parameters (their bits
               ``rac_bits``, ``rbc_bits``, ``fixed_bits``) derived by the loader; ``rne`` rounds half to even;
               ``b`` broadcast over leading dimensions; a constant ``b`` is committed in ``a``'s layout (NHWC
               when 4-D; when the model's A is the constant the inputs are swapped, which may differ from
               onnxruntime at near-ties). Limits: rAC, rBC in [2^-32, 2^20), fixed 0 or |fixed| in [2^-64, 2^29).
GAP            ``y = sat(y_zp + RQ(sum_{h,w} (x - x_zp)))`` with the multiplier x_scale / (y_scale * H * W)
               (com.microsoft QLinearGlobalAveragePool). Output [N, C].
MATMUL         ``acc = sum_k (a[m,k] - a_zp) * (b[k,n] - b_zp[n])``, ``y = sat(y_zp + RQF(acc, S[n]))`` (ONNX
               QLinearMatMul). The weight is committed transposed, [N, K].
DEQUANTIZE     ``y = fl32((q - zp) * scale)``: one IEEE-754 binary32 multiplication, round to nearest even.
=============  =====================================================================================================

Accumulators are int32: the loader proves ``|acc| < 2^31`` for every operator from its weights and biases.

Requantization of CONV and MATMUL, ``RQF(acc, S) = rne(fl32(fl32(acc) * S))``: the multiplier
``S = fl32(fl32(x_scale * w_scale) / y_scale)`` is derived once from the float32 scales with IEEE-754 binary32
arithmetic, i.e. a 24-bit fixed-point multiplier ``M0`` (S's significand) with a shift (S's exponent); the rounding
rule is: the accumulator and then the product ``acc * M0`` are rounded to 24 significant bits, then the result to
an integer, each time to nearest, ties to even. This is exactly the IEEE binary32 evaluation of ONNX Runtime's
reference CPU kernels; we adopt it because it reproduces onnxruntime's logits bit for bit on the data bundle's 100
ImageNet photos (an exact-rational multiplier disagreed at near-ties, and a single +-1 compounds through 52
convolutions to 4% top-1 disagreement; measured by `benchmarks/accuracy.py`). It is integer arithmetic in
Solidity and single IEEE operations (no FMA, no flush-to-zero) in numpy, so every evaluator computes the same bits.

Requantization of GAP, ``RQ(acc) = floor((acc * M0 + 2^(s-1)) / 2^s)`` (round half up): the real
multiplier ``x_scale / (y_scale * H * W)`` is a
rational number because the scales are float32; it is computed exactly (`fractions.Fraction`) and rounded half to
even to a 24-bit integer ``M0`` in [2^23, 2^24) with shift ``s``. The
loader proves ``|acc| * M0 + 2^(s-1) < 2^53``, so any evaluator may compute it exactly in IEEE float64. On the 100
photos this agrees with onnxruntime everywhere.
``sat`` clamps to [0, 255] (uint8) or [-128, 127] (int8).

Shape operators (Shape, Gather, Unsqueeze, Squeeze, Concat, Constant, Cast on constants) are folded at load time for
the fixed input shape; Reshape and Flatten are aliases when they do not reorder the committed bytes, else a
TRANSPOSE to the logical order (`offchain.inference.qlinear`). Kinds 7-14 (MAXPOOL, AVGPOOL, PAD; LUT, CONCAT,
TRANSPOSE, MUL, SOFTMAX) state their semantics in `offchain.inference.pooling` and `offchain.inference.elementwise`.
Every descriptor must satisfy the rules the contract enforces (`offchain.inference.limits`: parameters in range, a
bounded one-step per chunk). Anything else raises `UnsupportedOperator` naming the operator and node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction

import numpy as np
from eth_abi import encode as abi_encode

from .merkle import Tree, build_tree, keccak, tensor_tree, words_of
from offchain.common.errors import PinpointError

MULT_BITS = 24

class ModelError(PinpointError, ValueError):
    """The model is malformed or outside the canonical semantics; the message names the node."""


class UnsupportedOperator(ModelError):
    """An operator on the value path has no canonical definition. ``op_type`` and ``node`` name it."""

    def __init__(self, op_type: str, node: str, why: str = ""):
        self.op_type, self.node = op_type, node
        super().__init__(f"unsupported operator {op_type!r} (node {node!r})" + (f": {why}" if why else ""))


class Kind(IntEnum):
    """Canonical operator kinds; the numbers are part of the model commitment and of
    `contracts/inference/OneStep.sol`."""

    QUANTIZE = 1
    CONV = 2
    ADD = 3
    GAP = 4
    MATMUL = 5
    DEQUANTIZE = 6
    # semantics stated in `offchain.inference.pooling` (7-9) and `offchain.inference.elementwise` (10-14); Solidity
    # definitions in `contracts/inference/Pooling.sol` and `contracts/inference/Elementwise.sol`
    MAXPOOL = 7      # max over the in-bounds taps of a window, NHWC in and out, dtype kept
    AVGPOOL = 8      # sat(y_zp + rne(x_scale * sum(x - x_zp) / (y_scale * count))), exact rational, ties to even
    PAD = 9          # constant spatial padding of an NHWC tensor
    LUT = 10         # y = table[x]: any function of one 8-bit value, its 256-entry table committed (`const`)
    CONCAT = 11      # up to 4 inputs joined along one axis of the committed layout (outer, L_i * inner)
    TRANSPOSE = 12   # a permutation of the 4 axes of the committed layout (e.g. NHWC -> NCHW before a Flatten)
    MUL = 13         # sat(c_zp + rne((a - a_zp)(b - b_zp) a_scale b_scale / c_scale)), exact rational, b broadcast
    SOFTMAX = 14     # softmax along the last axis through a committed exponential table


INPUT_REF = 0
"""Input reference 0 is the model input; reference r >= 1 is the output of operator r - 1."""


def limits(signed: int) -> tuple[int, int]:
    """The (lowest, highest) value of int8 (``signed``) or uint8."""
    return (-128, 127) if signed else (0, 255)


def saturate(y: np.ndarray, signed: int) -> np.ndarray:
    """``y`` (integers of any dtype) clamped to int8 (``signed``) or uint8 and cast to it."""
    lo, hi = limits(signed)
    return np.clip(y, lo, hi).astype(np.int8 if signed else np.uint8)


def f32_bits(x) -> int:
    """IEEE-754 binary32 bit pattern of a float32 value, as an unsigned int."""
    return int(np.array(x, dtype=np.float32).reshape(()).view(np.uint32))


def f32_from_bits(bits: int) -> np.float32:
    """The float32 whose IEEE-754 binary32 bit pattern is ``bits`` (an unsigned 32-bit int); inverse of `f32_bits`."""
    return np.array(bits, dtype=np.uint32).view(np.float32).reshape(())[()]


def fixed_point(real: Fraction) -> tuple[int, int]:
    """Exact fixed-point form of a positive rational multiplier: ``(M0, s)`` with ``M0 = rne(real * 2^s)`` in
    [2^23, 2^24] (2^24 only when rounding carries; then s is lowered so M0 = 2^23). Raises ModelError if the
    multiplier is not positive or needs a shift outside [1, 62]."""
    if real <= 0:
        raise ModelError(f"requantization multiplier must be positive, got {float(real)}")
    e = real.numerator.bit_length() - real.denominator.bit_length()
    if Fraction(2) ** e > real:
        e -= 1
    elif Fraction(2) ** (e + 1) <= real:
        e += 1
    shift = (MULT_BITS - 1) - e
    m0 = round(real * (Fraction(2) ** shift))  # Fraction.__round__ rounds half to even
    if m0 >= 1 << MULT_BITS:
        m0, shift = round(real * (Fraction(2) ** (shift - 1))), shift - 1
    if not 1 <= shift <= 62:
        raise ModelError(f"requantization multiplier {float(real)} needs shift {shift}, outside [1, 62]")
    return m0, shift




@dataclass(frozen=True)
class TensorInfo:
    """A committed tensor: its shape in the committed layout and its dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def n_words(self) -> int:
        return max(1, -(-self.numel * self.dtype.itemsize // 32))




@dataclass(frozen=True)
class OpTrees:
    """The commitment trees of an operator's committed constants: ``weight`` (int8/uint8 bytes), ``table``
    (`table_bytes` words) and ``const`` (bytes of ADD's constant input); None for absent ones. Built once per
    `Op` (`Op.trees`): their roots go into the descriptor, their multiproofs into the one-step openings."""

    weight: Tree | None
    table: Tree | None
    const: Tree | None

    @property
    def roots(self) -> tuple[bytes, bytes, bytes]:
        """(weightRoot, tableRoot, constRoot), 32 bytes each; zero for absent trees."""
        z = bytes(32)
        return tuple(t.root if t is not None else z for t in (self.weight, self.table, self.const))


@dataclass
class Op:
    """One canonical operator.

    ``inputs``: input references (see INPUT_REF); ``params``: the integer parameters in the order OneStep.sol
    reads them (see `PARAM_NAMES`); ``weight`` (int8/uint8, committed layout), ``table`` (per-output-channel
    32-byte words: bias int32 | S float32 bits | 0 | w_zp int8) and ``const`` (a constant second input of ADD)
    are committed by root in the descriptor. ``weight``, ``table`` and ``const`` must not change once `trees`
    has been read (the trees are built once and kept).
    """

    kind: Kind
    name: str
    inputs: tuple[int, ...]
    params: tuple[int, ...]
    out: TensorInfo
    weight: np.ndarray | None = None
    table: np.ndarray | None = None
    const: np.ndarray | None = None
    _trees: OpTrees | None = field(default=None, repr=False, compare=False)

    def p(self, name: str) -> int:
        """The parameter ``name`` (one of `PARAM_NAMES` of this kind). Raises ValueError for another name."""
        return self.params[PARAM_NAMES[self.kind].index(name)]

    def named(self) -> dict[str, int]:
        """Every parameter by its name (`PARAM_NAMES` of this kind)."""
        return dict(zip(PARAM_NAMES[self.kind], self.params))

    def conv_pads(self) -> tuple[int, int, int, int]:
        """CONV: (top, left, bottom, right) padding in pixels. Bottom and right are implied by the output size:
        the rows/columns the last window reaches past the input (ONNX ``pads`` order is top, left, bottom, right)."""
        P = self.named()
        PB = max(0, (P["OH"] - 1) * P["SH"] + P["DH"] * (P["KH"] - 1) + 1 - P["H"] - P["PT"])
        PR = max(0, (P["OW"] - 1) * P["SW"] + P["DW"] * (P["KW"] - 1) + 1 - P["W"] - P["PL"])
        return P["PT"], P["PL"], PB, PR

    def conv_attrs(self) -> dict:
        """CONV: the ONNX Conv attributes (group, kernel_shape, strides, pads, dilations) of this operator."""
        P = self.named()
        return dict(group=P["G"], kernel_shape=[P["KH"], P["KW"]], strides=[P["SH"], P["SW"]],
                    pads=list(self.conv_pads()), dilations=[P["DH"], P["DW"]])

    @property
    def trees(self) -> OpTrees:
        """The commitment trees of ``weight``, ``table`` and ``const``, built on first use and kept."""
        if self._trees is None:
            self._trees = OpTrees(
                tensor_tree(self.weight) if self.weight is not None else None,
                build_tree(words_of(table_bytes(self.table))) if self.table is not None else None,
                tensor_tree(self.const) if self.const is not None else None)
        return self._trees

    @property
    def roots(self) -> tuple[bytes, bytes, bytes]:
        """(weightRoot, tableRoot, constRoot); zero for absent ones."""
        return self.trees.roots

    def descriptor(self) -> bytes:
        """``abi.encode(uint256 kind, uint256[] inputs, int256[] params, bytes32 weightRoot, bytes32 tableRoot,
        bytes32 constRoot)``: the leaf preimage of this operator in the model commitment."""
        w, t, c = self.roots
        return abi_encode(["uint256", "uint256[]", "int256[]", "bytes32", "bytes32", "bytes32"],
                          [int(self.kind), list(self.inputs), list(self.params), w, t, c])


PARAM_NAMES: dict[Kind, tuple[str, ...]] = {
    Kind.QUANTIZE: ("N", "C", "H", "W", "scale_bits", "zp", "y_signed"),
    Kind.CONV: ("N", "H", "W", "Ci", "Co", "OH", "OW", "KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW", "G",
                "x_zp", "y_zp", "x_signed", "w_signed", "y_signed", "out_nchw"),
    Kind.ADD: ("numel_a", "numel_b", "a_zp", "b_zp", "c_zp", "rac_bits", "rbc_bits", "fixed_bits", "a_signed",
               "b_signed", "c_signed"),
    Kind.GAP: ("N", "H", "W", "C", "x_zp", "y_zp", "M0", "s", "x_signed", "y_signed", "x_nchw"),
    Kind.MATMUL: ("M", "K", "N", "a_zp", "y_zp", "a_signed", "b_signed", "y_signed"),
    Kind.DEQUANTIZE: ("numel", "zp", "scale_bits", "x_signed"),
    Kind.MAXPOOL: ("N", "H", "W", "C", "OH", "OW", "KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW", "signed"),
    Kind.AVGPOOL: ("N", "H", "W", "C", "OH", "OW", "KH", "KW", "SH", "SW", "PT", "PL", "count_pad", "x_zp", "y_zp",
                   "x_scale_bits", "y_scale_bits", "x_signed", "y_signed"),
    Kind.PAD: ("N", "H", "W", "C", "PT", "PL", "PB", "PR", "value", "signed"),
    Kind.LUT: ("numel", "x_signed", "y_signed"),
    Kind.CONCAT: ("outer", "inner", "L0", "L1", "L2", "L3", "signed"),
    Kind.TRANSPOSE: ("D0", "D1", "D2", "D3", "P0", "P1", "P2", "P3", "signed"),
    Kind.MUL: ("numel_a", "numel_b", "a_zp", "b_zp", "c_zp", "a_scale_bits", "b_scale_bits", "c_scale_bits",
               "a_signed", "b_signed", "c_signed"),
    Kind.SOFTMAX: ("rows", "cols", "x_signed", "y_zp", "y_signed", "y_scale_bits"),
}


def table_bytes(table: np.ndarray) -> bytes:
    """Serialize a per-channel requantization table (rows bias, S bits, w_zp) to 32-byte words:
    bias int32 | S float32 bits | 0 | w_zp int8 | 22 zero bytes."""
    out = bytearray()
    for bias, sbits, wzp in table.tolist():
        out += int(bias).to_bytes(4, "big", signed=True) + int(sbits).to_bytes(4, "big") + bytes(1)
        out += int(wzp).to_bytes(1, "big", signed=True) + bytes(22)
    return bytes(out)


TABLE_DTYPE = np.dtype([("bias", np.int64), ("sbits", np.int64), ("wzp", np.int64)])


def f32_multiplier(x_scale, w_scale, y_scale, name: str) -> int:
    """Bits of ``S = fl32(fl32(x_scale * w_scale) / y_scale)`` (IEEE binary32, round to nearest even).
    Raises ModelError unless S is a normal float32 below 2^64."""
    with np.errstate(all="ignore"):
        s = (np.float32(x_scale) * np.float32(w_scale)).astype(np.float32) / np.float32(y_scale)
    s = np.float32(s)
    if not (np.isfinite(s) and 2.0 ** -126 <= float(s) < 2.0 ** 64):
        raise ModelError(f"node {name!r}: requantization multiplier {float(s)} is not a normal float32 below 2^64")
    return f32_bits(s)



@dataclass
class Graph:
    """The canonical integer graph of a model, for one fixed input shape."""

    ops: list[Op]
    input: TensorInfo          # float32, NCHW as given to the model
    input_name: str
    output_name: str
    source: str = ""

    @property
    def n_ops(self) -> int:
        return len(self.ops)

    def tensor_info(self, ref: int) -> TensorInfo:
        return self.input if ref == INPUT_REF else self.ops[ref - 1].out

    def ops_tree(self):
        """Merkle tree over ``keccak256(descriptor_i)``."""
        return build_tree([keccak(op.descriptor()) for op in self.ops])

    def model_root(self) -> bytes:
        """``keccak256(abi.encode(uint256 nOps, bytes32 opsRoot))``."""
        return keccak(abi_encode(["uint256", "bytes32"], [self.n_ops, self.ops_tree().root]))

