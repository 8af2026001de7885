"""Canonical integer graph: an int8 ONNX model (QOperator form) lowered to the operators the contract can referee.

Data flow: ``load(path)`` -> `Graph` (a topologically ordered list of `Op`) -> `offchain.inference.kernels` evaluates it
-> `offchain.inference.merkle` commits to it.

Canonical operators (`Kind`), their exact semantics (written once here in Python, in `offchain.inference.kernels`, and
once in Solidity, `contracts/lib/Ops.sol`):

=============  =====================================================================================================
QUANTIZE       ``q = sat(zp + rne(x / scale))``: x float32 (NCHW, as given), the quotient taken exactly over the
               reals, rounded half to even (ONNX QuantizeLinear). Output NHWC.
CONV           ``acc = bias[co] + sum (x - x_zp) * (w - w_zp[co])`` over the in-bounds taps of group g (an
               out-of-bounds tap is the padding value x_zp, i.e. contributes 0), ``y = sat(y_zp + RQF(acc, S[co]))``.
               Input and output NHWC (output NCHW when only GAPs read it); weights OHWI (output channel, kernel
               row, kernel column, input channel).
ADD            ``y = sat(c_zp + floor(((a - a_zp) * Ma + (b - b_zp) * Mb + 2^(s-1)) / 2^s))`` (com.microsoft
               QLinearAdd), ``b`` broadcast over leading dimensions.
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

Requantization of ADD and GAP, ``RQ(acc) = floor((acc * M0 + 2^(s-1)) / 2^s)`` (round half up): the real
multiplier (``x_scale / (y_scale * H * W)`` for GAP, ``a_scale / c_scale`` and ``b_scale / c_scale`` for ADD) is a
rational number because the scales are float32; it is computed exactly (`fractions.Fraction`) and rounded half to
even to a 24-bit integer ``M0`` in [2^23, 2^24) with shift ``s`` (for ADD the larger multiplier fixes ``s``). The
loader proves ``|acc| * M0 + 2^(s-1) < 2^53``, so any evaluator may compute it exactly in IEEE float64. On the 100
photos this agrees with onnxruntime everywhere.
``sat`` clamps to [0, 255] (uint8) or [-128, 127] (int8).

Shape operators (Shape, Gather, Unsqueeze, Squeeze, Concat, Constant, Cast on constants) are folded at load time for
the fixed input shape; Reshape and Flatten are aliases when they do not reorder the committed bytes. Anything
else raises `UnsupportedOperator` naming the operator and node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
from eth_abi import encode as abi_encode
from onnx import numpy_helper

from .merkle import build_tree, keccak, tensor_root, words_of
from offchain.common.errors import PinpointError

MULT_BITS = 24
EXACT_LIMIT = 1 << 53


class ModelError(PinpointError, ValueError):
    """The model is malformed or outside the canonical semantics; the message names the node."""


class UnsupportedOperator(ModelError):
    """An operator on the value path has no canonical definition. ``op_type`` and ``node`` name it."""

    def __init__(self, op_type: str, node: str, why: str = ""):
        self.op_type, self.node = op_type, node
        super().__init__(f"unsupported operator {op_type!r} (node {node!r})" + (f": {why}" if why else ""))


class Kind(IntEnum):
    """Canonical operator kinds; the numbers are part of the model commitment and of `Ops.sol`."""

    QUANTIZE = 1
    CONV = 2
    ADD = 3
    GAP = 4
    MATMUL = 5
    DEQUANTIZE = 6


INPUT_REF = 0
"""Input reference 0 is the model input; reference r >= 1 is the output of operator r - 1."""


def f32_bits(x) -> int:
    """IEEE-754 binary32 bit pattern of a float32 value, as an unsigned int."""
    return int(np.array(x, dtype=np.float32).reshape(()).view(np.uint32))


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


def _frac(x) -> Fraction:
    return Fraction(float(np.float32(x)))


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


@dataclass
class Op:
    """One canonical operator.

    ``inputs``: input references (see INPUT_REF); ``params``: the integer parameters in the order `OneStep.sol`
    reads them (see `PARAM_NAMES`); ``weight`` (int8/uint8, committed layout), ``table`` (per-output-channel
    32-byte words: bias int32 | S float32 bits | 0 | w_zp int8) and ``const`` (a constant second input of ADD)
    are committed by root in the descriptor.
    """

    kind: Kind
    name: str
    inputs: tuple[int, ...]
    params: tuple[int, ...]
    out: TensorInfo
    weight: np.ndarray | None = None
    table: np.ndarray | None = None
    const: np.ndarray | None = None
    _roots: tuple[bytes, bytes, bytes] | None = field(default=None, repr=False)

    def p(self, name: str) -> int:
        return self.params[PARAM_NAMES[self.kind].index(name)]

    @property
    def roots(self) -> tuple[bytes, bytes, bytes]:
        """(weightRoot, tableRoot, constRoot); zero for absent ones."""
        if self._roots is None:
            z = bytes(32)
            w = tensor_root(self.weight) if self.weight is not None else z
            t = build_tree(words_of(table_bytes(self.table))).root if self.table is not None else z
            c = tensor_root(self.const) if self.const is not None else z
            self._roots = (w, t, c)
        return self._roots

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
    Kind.ADD: ("numel_a", "numel_b", "a_zp", "b_zp", "c_zp", "Ma", "Mb", "s", "a_signed", "b_signed", "c_signed"),
    Kind.GAP: ("N", "H", "W", "C", "x_zp", "y_zp", "M0", "s", "x_signed", "y_signed", "x_nchw"),
    Kind.MATMUL: ("M", "K", "N", "a_zp", "y_zp", "a_signed", "b_signed", "y_signed"),
    Kind.DEQUANTIZE: ("numel", "zp", "scale_bits", "x_signed"),
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


def _check_int32(name: str, acc_bound: int) -> None:
    if acc_bound >= 1 << 31:
        raise ModelError(f"node {name!r}: accumulator bound {acc_bound} exceeds int32")


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


# ---------------------------------------------------------------------------------------------------- loading

_FOLDABLE = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Constant", "Cast", "Identity"}
_INT8 = {np.dtype(np.int8), np.dtype(np.uint8)}


def _signed(dt: np.dtype) -> int:
    return 1 if dt == np.int8 else 0


@dataclass
class _Val:
    """A value during lowering: either a runtime tensor (``ref``) or a constant (``const``)."""

    onnx_shape: tuple[int, ...]
    dtype: np.dtype
    ref: int | None = None
    const: np.ndarray | None = None
    scale: np.ndarray | None = None
    zp: np.ndarray | None = None


def load(path: str | Path, batch: int = 1) -> Graph:
    """Load an int8 QOperator ONNX model as a canonical `Graph` for input shape [batch, ...].

    Raises ModelError (malformed model, unknown dtype, accumulator bound exceeded, ...) or UnsupportedOperator.
    """
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError and friends
        raise ModelError(f"cannot parse ONNX model {path}: {e}") from e
    return lower(model, batch=batch, source=str(path))


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def lower(model: onnx.ModelProto, batch: int = 1, source: str = "") -> Graph:
    """Lower an in-memory ONNX model (see `load`)."""
    g = model.graph
    vals: dict[str, _Val] = {}
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        vals[t.name] = _Val(tuple(a.shape), a.dtype, const=a)
    inputs = [i for i in g.input if i.name not in vals]
    if len(inputs) != 1:
        raise ModelError(f"expected one graph input, found {[i.name for i in inputs]}")
    if len(g.output) != 1:
        raise ModelError(f"expected one graph output, found {[o.name for o in g.output]}")
    gi = inputs[0]
    if gi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ModelError(f"graph input {gi.name!r} must be float32")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in gi.type.tensor_type.shape.dim]
    if not dims or any(d is None for d in dims[1:]):
        raise ModelError(f"graph input {gi.name!r} needs static dimensions after the batch: {dims}")
    in_shape = (batch, *dims[1:]) if dims[0] in (None, 0) or dims[0] == batch else tuple(dims)
    vals[gi.name] = _Val(tuple(in_shape), np.dtype(np.float32), ref=INPUT_REF)

    ops: list[Op] = []
    for node in g.node:
        name = node.name or (node.output[0] if node.output else node.op_type)
        ins = [vals.get(i) if i else None for i in node.input]
        missing = [i for i, v in zip(node.input, ins) if i and v is None]
        if missing:
            raise ModelError(f"node {name!r} ({node.op_type}) reads undefined value(s) {missing}")
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise UnsupportedOperator(f"{node.domain}.{node.op_type}", name)
        if node.op_type in _FOLDABLE or (node.op_type in ("Reshape", "Flatten") and ins[0].const is not None):
            vals[node.output[0]] = _fold(node, name, ins)
            continue
        if node.op_type in ("Reshape", "Flatten"):
            vals[node.output[0]] = _alias(node, name, ins)
            continue
        builder = _BUILDERS.get(node.op_type)
        if builder is None:
            raise UnsupportedOperator(node.op_type, name)
        op, out_val = builder(node, name, ins)
        ops.append(op)
        out_val.ref = len(ops)
        vals[node.output[0]] = out_val

    out = vals.get(g.output[0].name)
    if out is None or out.ref is None or out.ref == INPUT_REF:
        raise ModelError(f"graph output {g.output[0].name!r} is not computed by a supported operator")
    # dead-code elimination: keep what the output depends on, renumber
    live: set[int] = set()
    stack = [out.ref]
    while stack:
        r = stack.pop()
        if r == INPUT_REF or r in live:
            continue
        live.add(r)
        stack.extend(ops[r - 1].inputs)
    if out.ref != max(live):
        raise ModelError("the graph output must be produced by the last live operator")
    remap = {INPUT_REF: INPUT_REF}
    kept: list[Op] = []
    for r in sorted(live):
        op = ops[r - 1]
        op.inputs = tuple(remap[i] for i in op.inputs)
        kept.append(op)
        remap[r] = len(kept)
    _choose_layouts(kept)
    graph = Graph(kept, TensorInfo(tuple(in_shape), np.dtype(np.float32)), gi.name, g.output[0].name, source)
    return graph


def _with(op: Op, **changes) -> None:
    names = PARAM_NAMES[op.kind]
    p = list(op.params)
    for k, v in changes.items():
        p[names.index(k)] = v
    op.params = tuple(p)


def _choose_layouts(ops: list[Op]) -> None:
    """Activations are committed NHWC, except the output of a CONV read only by GAPs, committed NCHW so that the
    one-step of a GAP opens one contiguous channel instead of H*W scattered bytes (a layout flag in both
    descriptors: CONV ``out_nchw``, GAP ``x_nchw``)."""
    consumers: dict[int, list[Op]] = {}
    for op in ops:
        for r in op.inputs:
            consumers.setdefault(r, []).append(op)
    for i, op in enumerate(ops, start=1):
        users = consumers.get(i, [])
        if op.kind == Kind.CONV and users and all(u.kind == Kind.GAP for u in users):
            _with(op, out_nchw=1)
            N, OH, OW, Co = op.out.shape
            op.out = TensorInfo((N, Co, OH, OW), op.out.dtype)
            for u in users:
                _with(u, x_nchw=1)


def _fold(node, name, ins) -> _Val:
    """Constant-fold a shape operator."""
    t, a = node.op_type, _attrs(node)
    if t == "Constant":
        v = numpy_helper.to_array(a["value"]) if "value" in a else np.array(next(iter(a.values())))
        return _Val(tuple(v.shape), v.dtype, const=v)
    if t == "Shape":
        v = np.array(ins[0].onnx_shape, dtype=np.int64)
        return _Val(v.shape, v.dtype, const=v)
    cs = [v.const if v is not None else None for v in ins]
    if any(c is None for c in cs):
        raise UnsupportedOperator(t, name, "only constant (shape) computations are supported for this operator")
    if t == "Gather":
        v = np.take(cs[0], cs[1], axis=a.get("axis", 0))
    elif t == "Unsqueeze":
        axes = a.get("axes", cs[1].tolist() if len(cs) > 1 else [])
        v = cs[0]
        for ax in sorted(int(x) % (v.ndim + len(axes)) for x in axes):
            v = np.expand_dims(v, ax)
    elif t == "Squeeze":
        axes = a.get("axes", cs[1].tolist() if len(cs) > 1 else None)
        v = np.squeeze(cs[0], axis=tuple(axes) if axes is not None else None)
    elif t == "Concat":
        v = np.concatenate(cs, axis=a["axis"])
    elif t == "Cast":
        v = cs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(a["to"]))
    elif t == "Identity":
        v = cs[0]
    elif t in ("Reshape", "Flatten"):
        v = cs[0].reshape(_target_shape(node, name, cs[0].shape, cs))
    else:  # pragma: no cover - _FOLDABLE is closed
        raise UnsupportedOperator(t, name)
    v = np.asarray(v)
    return _Val(tuple(v.shape), v.dtype, const=v)


def _target_shape(node, name, shape, cs) -> tuple[int, ...]:
    if node.op_type == "Flatten":
        ax = _attrs(node).get("axis", 1) % max(1, len(shape))
        return (int(np.prod(shape[:ax])), int(np.prod(shape[ax:])))
    if len(cs) < 2 or cs[1] is None:
        raise UnsupportedOperator("Reshape", name, "the target shape must be a constant")
    tgt = [int(x) for x in cs[1].tolist()]
    tgt = [shape[i] if d == 0 else d for i, d in enumerate(tgt)]
    if tgt.count(-1) > 1:
        raise ModelError(f"Reshape {name!r}: more than one -1 in {tgt}")
    if -1 in tgt:
        known = int(np.prod([d for d in tgt if d != -1]))
        tgt[tgt.index(-1)] = int(np.prod(shape)) // known
    if int(np.prod(tgt)) != int(np.prod(shape)):
        raise ModelError(f"Reshape {name!r}: cannot reshape {shape} to {tgt}")
    return tuple(tgt)


def _alias(node, name, ins) -> _Val:
    """Reshape/Flatten of a runtime tensor: allowed when the committed bytes keep their order."""
    x = ins[0]
    tgt = _target_shape(node, name, x.onnx_shape, [None] + [v.const if v is not None else None for v in ins[1:]])
    s = x.onnx_shape
    # a 4-D activation is committed NHWC; flattening it is order-preserving only when H = W = 1
    if len(s) == 4 and (s[2] != 1 or s[3] != 1) and tuple(tgt) != tuple(s):
        raise UnsupportedOperator(node.op_type, name, "reshape that reorders NHWC activations")
    if len(tgt) == 4 and len(s) != 4 and (tgt[2] != 1 or tgt[3] != 1):
        raise UnsupportedOperator(node.op_type, name, "reshape to a 4-D activation with spatial extent")
    return _Val(tuple(tgt), x.dtype, ref=x.ref, scale=x.scale, zp=x.zp)


def _const(v: _Val | None, what: str, name: str) -> np.ndarray:
    if v is None or v.const is None:
        raise ModelError(f"node {name!r}: {what} must be an initializer")
    return v.const


def _scalar_scale(v, what, name) -> float:
    c = _const(v, what, name)
    if c.size != 1 or c.dtype != np.float32:
        raise ModelError(f"node {name!r}: {what} must be a float32 scalar, got {c.dtype} {c.shape}")
    s = float(c.reshape(()))
    if not (math.isfinite(s) and s >= 2.0 ** -126):
        raise ModelError(f"node {name!r}: {what} must be a positive, finite, normal float32, got {s}")
    return s


def _zp(v, what, name, dt=None) -> np.ndarray:
    if v is None:
        return np.zeros((), np.uint8 if dt is None else dt)
    c = _const(v, what, name)
    if c.dtype not in _INT8:
        raise ModelError(f"node {name!r}: {what} must be int8 or uint8, got {c.dtype}")
    return c


def _act(v: _Val, name: str, what: str) -> _Val:
    if v.ref is None:
        raise ModelError(f"node {name!r}: {what} must be a runtime tensor")
    if v.dtype not in _INT8:
        raise ModelError(f"node {name!r}: {what} must be int8/uint8, got {v.dtype}")
    return v


def _check_bound(name: str, acc_bound: int, m0: int, s: int) -> None:
    if acc_bound * m0 + (1 << (s - 1)) >= EXACT_LIMIT:
        raise ModelError(f"node {name!r}: accumulator bound {acc_bound} with multiplier {m0}/2^{s} exceeds 2^53;"
                         " requantization would not be exact in float64")


def _b_quantize(node, name, ins):
    x = ins[0]
    if x.ref is None or x.dtype != np.float32:
        raise ModelError(f"node {name!r}: QuantizeLinear input must be the float32 runtime tensor")
    if len(x.onnx_shape) != 4:
        raise UnsupportedOperator("QuantizeLinear", name, "only 4-D NCHW inputs")
    scale = _scalar_scale(ins[1], "y_scale", name)
    zp = _zp(ins[2] if len(ins) > 2 else None, "y_zero_point", name)
    if zp.size != 1:
        raise UnsupportedOperator("QuantizeLinear", name, "per-axis quantization")
    N, C, H, W = x.onnx_shape
    params = (N, C, H, W, f32_bits(scale), int(zp.reshape(())), _signed(zp.dtype))
    op = Op(Kind.QUANTIZE, name, (x.ref,), params, TensorInfo((N, H, W, C), zp.dtype))
    return op, _Val(x.onnx_shape, zp.dtype, scale=np.float32(scale), zp=zp.reshape(()))


def _b_conv(node, name, ins):
    if len(ins) < 8:
        raise ModelError(f"node {name!r}: QLinearConv needs 8 or 9 inputs")
    x = _act(ins[0], name, "x")
    xs = _scalar_scale(ins[1], "x_scale", name)
    xzp = _zp(ins[2], "x_zero_point", name)
    w = _const(ins[3], "w", name)
    ws = _const(ins[4], "w_scale", name).astype(np.float32).reshape(-1)
    wzp = _zp(ins[5], "w_zero_point", name).reshape(-1)
    ys = _scalar_scale(ins[6], "y_scale", name)
    yzp = _zp(ins[7], "y_zero_point", name)
    bias = _const(ins[8], "B", name) if len(ins) > 8 and ins[8] is not None else None
    if w.ndim != 4 or len(x.onnx_shape) != 4:
        raise UnsupportedOperator("QLinearConv", name, "only 2-D convolutions (4-D tensors)")
    if w.dtype not in _INT8:
        raise ModelError(f"node {name!r}: weights must be int8/uint8")
    a = _attrs(node)
    N, Ci, H, W = x.onnx_shape
    Co, Cig, KH, KW = w.shape
    G = a.get("group", 1)
    if tuple(a.get("kernel_shape", (KH, KW))) != (KH, KW):
        raise ModelError(f"node {name!r}: kernel_shape disagrees with the weights")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedOperator("QLinearConv", name, "auto_pad")
    if Ci != Cig * G or Co % G:
        raise ModelError(f"node {name!r}: channels {Ci}->{Co} do not match group {G} and weights {w.shape}")
    SH, SW = a.get("strides", (1, 1))
    DH, DW = a.get("dilations", (1, 1))
    PT, PL, PB, PR = a.get("pads", (0, 0, 0, 0))
    OH = (H + PT + PB - DH * (KH - 1) - 1) // SH + 1
    OW = (W + PL + PR - DW * (KW - 1) - 1) // SW + 1
    if OH < 1 or OW < 1:
        raise ModelError(f"node {name!r}: empty output {OH}x{OW}")
    if ws.size not in (1, Co) or wzp.size not in (1, Co):
        raise ModelError(f"node {name!r}: w_scale/w_zero_point must be per-tensor or per-output-channel")
    ws = np.broadcast_to(ws, (Co,))
    wzp_c = np.broadcast_to(wzp.astype(np.int64), (Co,))
    if bias is None:
        bias = np.zeros(Co, np.int32)
    if bias.dtype != np.int32 or bias.shape != (Co,):
        raise ModelError(f"node {name!r}: bias must be int32 [{Co}]")
    table = np.zeros(Co, TABLE_DTYPE)
    wdev = np.abs(w.reshape(Co, -1).astype(np.int64) - wzp_c[:, None]).max(axis=1)
    for co in range(Co):
        _check_int32(name, Cig * KH * KW * 255 * int(wdev[co]) + abs(int(bias[co])))
        table[co] = (int(bias[co]), f32_multiplier(xs, ws[co], ys, name), int(wzp_c[co]))
    params = (N, H, W, Ci, Co, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, G, int(xzp.reshape(())),
              int(yzp.reshape(())), _signed(x.dtype), _signed(w.dtype), _signed(yzp.dtype), 0)
    if xzp.size != 1 or yzp.size != 1:
        raise UnsupportedOperator("QLinearConv", name, "per-axis activation quantization")
    w_ohwi = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    op = Op(Kind.CONV, name, (x.ref,), params, TensorInfo((N, OH, OW, Co), yzp.dtype), weight=w_ohwi, table=table)
    return op, _Val((N, Co, OH, OW), yzp.dtype, scale=np.float32(ys), zp=yzp.reshape(()))


def _b_add(node, name, ins):
    if len(ins) < 8:
        raise ModelError(f"node {name!r}: QLinearAdd needs 8 inputs")
    a, b = ins[0], ins[3]
    sa, sb = _scalar_scale(ins[1], "A_scale", name), _scalar_scale(ins[4], "B_scale", name)
    za, zb = _zp(ins[2], "A_zero_point", name), _zp(ins[5], "B_zero_point", name)
    sc, zc = _scalar_scale(ins[6], "C_scale", name), _zp(ins[7], "C_zero_point", name)
    if a.ref is None and b.ref is not None:   # canonical: the constant, if any, is B (the operation is symmetric)
        a, b, sa, sb, za, zb = b, a, sb, sa, zb, za
    _act(a, name, "A")
    if b.ref is None and b.dtype not in _INT8:
        raise ModelError(f"node {name!r}: constant B must be int8/uint8")
    na, nb = int(np.prod(a.onnx_shape)), int(np.prod(b.onnx_shape))
    if tuple(a.onnx_shape) != tuple(b.onnx_shape):
        trailing = tuple(a.onnx_shape[len(a.onnx_shape) - len(b.onnx_shape):]) if b.onnx_shape else ()
        if len(a.onnx_shape) == 4 or tuple(b.onnx_shape) != trailing:
            raise UnsupportedOperator("QLinearAdd", name, f"broadcast {b.onnx_shape} -> {a.onnx_shape}")
    if b.ref is not None and tuple(a.onnx_shape) != tuple(b.onnx_shape):
        raise UnsupportedOperator("QLinearAdd", name, "broadcast of a runtime tensor")
    ra, rb = _frac(sa) / _frac(sc), _frac(sb) / _frac(sc)
    _, s = fixed_point(max(ra, rb))
    Ma, Mb = round(ra * 2 ** s), round(rb * 2 ** s)
    if min(Ma, Mb) < 1:
        raise ModelError(f"node {name!r}: input scales differ by more than 2^24")
    _check_bound(name, 255, Ma + Mb, s)
    params = (na, nb, int(za.reshape(())), int(zb.reshape(())), int(zc.reshape(())), Ma, Mb, s,
              _signed(a.dtype), _signed(b.dtype), _signed(zc.dtype))
    inputs = (a.ref,) if b.ref is None else (a.ref, b.ref)
    const = np.ascontiguousarray(b.const.reshape(-1)) if b.ref is None else None
    shape = tuple(a.onnx_shape)
    info = TensorInfo((shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape, zc.dtype)
    op = Op(Kind.ADD, name, inputs, params, info, const=const)
    return op, _Val(shape, zc.dtype, scale=np.float32(sc), zp=zc.reshape(()))


def _b_gap(node, name, ins):
    x = _act(ins[0], name, "X")
    if _attrs(node).get("channels_last", 0):
        raise UnsupportedOperator("QLinearGlobalAveragePool", name, "channels_last=1")
    xs, xzp = _scalar_scale(ins[1], "x_scale", name), _zp(ins[2], "x_zero_point", name)
    ys, yzp = _scalar_scale(ins[3], "y_scale", name), _zp(ins[4], "y_zero_point", name)
    if len(x.onnx_shape) != 4:
        raise UnsupportedOperator("QLinearGlobalAveragePool", name, "only 4-D inputs")
    N, C, H, W = x.onnx_shape
    m0, s = fixed_point(_frac(xs) / (_frac(ys) * H * W))
    _check_bound(name, 255 * H * W, m0, s)
    params = (N, H, W, C, int(xzp.reshape(())), int(yzp.reshape(())), m0, s, _signed(x.dtype), _signed(yzp.dtype), 0)
    op = Op(Kind.GAP, name, (x.ref,), params, TensorInfo((N, 1, 1, C), yzp.dtype))
    return op, _Val((N, C, 1, 1), yzp.dtype, scale=np.float32(ys), zp=yzp.reshape(()))


def _b_matmul(node, name, ins):
    a = _act(ins[0], name, "a")
    sa, za = _scalar_scale(ins[1], "a_scale", name), _zp(ins[2], "a_zero_point", name)
    b = _const(ins[3], "b", name)
    sb = _const(ins[4], "b_scale", name).astype(np.float32).reshape(-1)
    zb = _zp(ins[5], "b_zero_point", name).reshape(-1)
    sy, zy = _scalar_scale(ins[6], "y_scale", name), _zp(ins[7], "y_zero_point", name)
    if len(a.onnx_shape) != 2 or b.ndim != 2 or a.onnx_shape[1] != b.shape[0]:
        raise UnsupportedOperator("QLinearMatMul", name, f"shapes {a.onnx_shape} x {b.shape} (2-D only)")
    M, K = a.onnx_shape
    Nn = b.shape[1]
    if sb.size not in (1, Nn) or zb.size not in (1, Nn):
        raise ModelError(f"node {name!r}: b_scale/b_zero_point must be per-tensor or per-column")
    sb, zb64 = np.broadcast_to(sb, (Nn,)), np.broadcast_to(zb.astype(np.int64), (Nn,))
    table = np.zeros(Nn, TABLE_DTYPE)
    bdev = np.abs(b.astype(np.int64) - zb64[None, :]).max(axis=0)
    for n in range(Nn):
        _check_int32(name, K * 255 * int(bdev[n]))
        table[n] = (0, f32_multiplier(sa, sb[n], sy, name), int(zb64[n]))
    params = (M, K, Nn, int(za.reshape(())), int(zy.reshape(())), _signed(a.dtype), _signed(b.dtype),
              _signed(zy.dtype))
    op = Op(Kind.MATMUL, name, (a.ref,), params, TensorInfo((M, Nn), zy.dtype),
            weight=np.ascontiguousarray(b.T), table=table)
    return op, _Val((M, Nn), zy.dtype, scale=np.float32(sy), zp=zy.reshape(()))


def _b_dequantize(node, name, ins):
    x = _act(ins[0], name, "x")
    scale = _scalar_scale(ins[1], "x_scale", name)
    zp = _zp(ins[2] if len(ins) > 2 else None, "x_zero_point", name, x.dtype)
    if zp.size != 1:
        raise UnsupportedOperator("DequantizeLinear", name, "per-axis dequantization")
    numel = int(np.prod(x.onnx_shape))
    shape = tuple(x.onnx_shape)
    info = TensorInfo((shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape, np.dtype(np.float32))
    params = (numel, int(zp.reshape(())), f32_bits(scale), _signed(x.dtype))
    return Op(Kind.DEQUANTIZE, name, (x.ref,), params, info), _Val(shape, np.dtype(np.float32))


_BUILDERS = {
    "QuantizeLinear": _b_quantize,
    "QLinearConv": _b_conv,
    "QLinearAdd": _b_add,
    "QLinearGlobalAveragePool": _b_gap,
    "QLinearMatMul": _b_matmul,
    "DequantizeLinear": _b_dequantize,
}
