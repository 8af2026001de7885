"""Shape operators folded at load time, for the loader (`offchain.inference.loader`).

Shape, Gather, Unsqueeze, Squeeze, Concat, Constant, Cast and Identity on constants are computed once for the
fixed input shape (`fold`); Reshape and Flatten of a runtime tensor become aliases of it when they keep the
committed bytes in order (`alias`), and raise UnsupportedOperator otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from .graph import ModelError, UnsupportedOperator

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


def alias(node, name, ins) -> Value:
    """Reshape/Flatten of a runtime tensor: allowed when the committed bytes keep their order, i.e. when every
    committed element of the result is the committed element of the input at the same position (the model input,
    reference 0, is committed NCHW as given; other 4-D tensors NHWC). Raises UnsupportedOperator otherwise."""
    x = ins[0]
    tgt = target_shape(node, name, x.onnx_shape, [None] + [v.const if v is not None else None for v in ins[1:]])
    s = tuple(x.onnx_shape)
    nchw = x.ref == 0
    if tuple(tgt) != s and not np.array_equal(committed_order(s, nchw), committed_order(tuple(tgt), nchw)):
        raise UnsupportedOperator(node.op_type, name,
                                  f"reshape {list(s)} -> {list(tgt)} reorders the committed (NHWC) bytes")
    return Value(tuple(tgt), x.dtype, ref=x.ref, scale=x.scale, zp=x.zp)
