"""Shape operators folded at load time, and the checks every builder of the loader shares
(`offchain.inference.loader`, `offchain.inference.qlinear`, `offchain.inference.qdq`).

Shape, Gather, Unsqueeze, Squeeze, Concat, Constant, Cast and Identity on constants are computed once for the
fixed input shape (`fold`); Reshape and Flatten of a runtime tensor become aliases of it when they keep the
committed bytes in order (`committed_order`), otherwise TRANSPOSEs (`offchain.inference.qlinear.reorder`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

import math
from fractions import Fraction

from .graph import ModelError, UnsupportedOperator

EXACT_LIMIT = 1 << 53
INT8 = {np.dtype(np.int8), np.dtype(np.uint8)}

FOLDABLE = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Constant", "Cast", "Identity"}
"""Operators always folded (their inputs must be constants); Reshape/Flatten are folded when their input is."""


@dataclass
class Value:
    """A value during lowering: either a runtime tensor (``ref``) or a constant (``const``)."""

    onnx_shape: tuple[int, ...]
    dtype: np.dtype
    ref: int | None = None
    const: np.ndarray | None = None
    scale: np.ndarray | None = None
    zp: np.ndarray | None = None
    deq: "Value | None" = None
    """A float32 runtime tensor that is the DequantizeLinear of ``deq`` (a quantized Value with scale, zp)."""
    pending: tuple | None = None
    """A float section awaiting its QuantizeLinear (`offchain.inference.qdq`): (kind, data)."""


def attrs(node) -> dict:
    """The attributes of an ONNX node as a name -> Python value dict."""
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def fold(node, name, ins) -> Value:
    """Constant-fold a shape operator: ``ins`` are the node's input Values (their constants), the result a constant
    Value. Raises UnsupportedOperator if an input is a runtime tensor, ModelError for an impossible Reshape."""
    t, a = node.op_type, attrs(node)
    if t == "Constant":
        v = numpy_helper.to_array(a["value"]) if "value" in a else np.array(next(iter(a.values())))
        return Value(tuple(v.shape), v.dtype, const=v)
    if t == "Shape":
        v = np.array(ins[0].onnx_shape, dtype=np.int64)
        return Value(v.shape, v.dtype, const=v)
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
        v = cs[0].reshape(target_shape(node, name, cs[0].shape, cs))
    else:  # pragma: no cover - FOLDABLE is closed
        raise UnsupportedOperator(t, name)
    v = np.asarray(v)
    return Value(tuple(v.shape), v.dtype, const=v)


def target_shape(node, name, shape, cs) -> tuple[int, ...]:
    """The output shape of a Reshape/Flatten ``node`` of input ``shape``; ``cs`` are its inputs' constants (the
    target shape second). Raises ModelError or UnsupportedOperator (target not constant)."""
    if node.op_type == "Flatten":
        ax = attrs(node).get("axis", 1) % max(1, len(shape))
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


def committed_order(shape: tuple[int, ...], nchw: bool) -> np.ndarray:
    """The logical (row-major ONNX) index of each committed element of a tensor of ONNX ``shape``: a 4-D
    activation is committed NHWC, unless ``nchw`` (the model input, committed as given); others as given."""
    idx = np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)
    if len(shape) == 4 and not nchw:
        idx = idx.transpose(0, 2, 3, 1)
    return idx.reshape(-1)


def frac(x) -> Fraction:
    """The exact rational value of ``x`` rounded to float32."""
    return Fraction(float(np.float32(x)))


def check_int32(name: str, acc_bound: int) -> None:
    """Raise ModelError unless an accumulator bound fits int32."""
    if acc_bound >= 1 << 31:
        raise ModelError(f"node {name!r}: accumulator bound {acc_bound} exceeds int32")


def signed(dt: np.dtype) -> int:
    """1 for int8, 0 for uint8."""
    return 1 if dt == np.int8 else 0


def const_of(v: Value | None, what: str, name: str) -> np.ndarray:
    """The constant of ``v``; raises ModelError naming ``what`` when it is not an initializer/constant."""
    if v is None or v.const is None:
        raise ModelError(f"node {name!r}: {what} must be an initializer")
    return v.const


def scalar_scale(v, what, name) -> float:
    """A per-tensor scale: a positive, finite, normal float32 scalar constant. Raises ModelError."""
    c = const_of(v, what, name)
    if c.size != 1 or c.dtype != np.float32:
        raise ModelError(f"node {name!r}: {what} must be a float32 scalar, got {c.dtype} {c.shape}")
    s = float(c.reshape(()))
    if not (math.isfinite(s) and s >= 2.0 ** -126):
        raise ModelError(f"node {name!r}: {what} must be a positive, finite, normal float32, got {s}")
    return s


def zero_point(v, what, name, dt=None) -> np.ndarray:
    """A zero point constant (int8/uint8); absent: 0 of dtype ``dt`` (uint8 by default). Raises ModelError."""
    if v is None:
        return np.zeros((), np.uint8 if dt is None else dt)
    c = const_of(v, what, name)
    if c.dtype not in INT8:
        raise ModelError(f"node {name!r}: {what} must be int8 or uint8, got {c.dtype}")
    return c


def activation(v: Value, name: str, what: str, op_type: str = "") -> Value:
    """``v`` checked to be an int8/uint8 runtime tensor. Raises ModelError (UnsupportedOperator for a float one)."""
    if v.ref is None:
        raise ModelError(f"node {name!r}: {what} must be a runtime tensor")
    if v.dtype not in INT8:
        if op_type:
            raise UnsupportedOperator(op_type, name, f"{what} is {v.dtype}, not a quantized (int8/uint8) tensor")
        raise ModelError(f"node {name!r}: {what} must be int8/uint8, got {v.dtype}")
    return v


def check_bound(name: str, acc_bound: int, m0: int, s: int) -> None:
    """Raise ModelError unless ``acc_bound * m0 + 2^(s-1) < 2^53`` (exact float64 requantization)."""
    if acc_bound * m0 + (1 << (s - 1)) >= EXACT_LIMIT:
        raise ModelError(f"node {name!r}: accumulator bound {acc_bound} with multiplier {m0}/2^{s} exceeds 2^53;"
                         " requantization would not be exact in float64")


def nhwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The committed shape of a tensor of ONNX ``shape``: NHWC for a 4-D one, else as given."""
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else tuple(shape)
