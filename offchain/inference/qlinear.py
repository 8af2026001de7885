"""Lowering of the quantized ONNX operators beyond convolution and matrix product: pooling, padding, concatenation,
tables of one 8-bit value, products, softmax, global average, and Reshape/Flatten that reorder the committed
bytes. Each emitter maps one ONNX node to canonical operators (`offchain.inference.pooling`: MAXPOOL, AVGPOOL,
PAD; `offchain.inference.elementwise`: LUT, CONCAT, TRANSPOSE, MUL, SOFTMAX; GAP of `offchain.inference.graph`)
whose semantics those modules state.

An emitter is ``(node, name, ins, emit) -> Value``: ``ins`` are the node's input Values, ``emit(op) -> reference``
appends a canonical operator. Raises UnsupportedOperator (naming operator, node and reason) or ModelError.
"""

from __future__ import annotations

import numpy as np

from . import elementwise as ew
from . import pooling
from .folding import (Value, activation, attrs, check_bound, committed_order, const_of, frac, nhwc,
                      scalar_scale, signed, target_shape, zero_point)
from .graph import Kind, ModelError, Op, TensorInfo, UnsupportedOperator, fixed_point


def info(v: Value) -> TensorInfo:
    """The committed tensor of a runtime Value: NHWC for a 4-D one, else its ONNX shape."""
    return TensorInfo(nhwc(tuple(v.onnx_shape)), np.dtype(v.dtype))


def window_pads(a: dict, hw, k, st, dil, op_type: str, name: str) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) padding of a 2-D window operator from its attributes ``a``: ``pads`` (ONNX
    order top, left, bottom, right) or ``auto_pad`` SAME_UPPER / SAME_LOWER (total padding
    ``max(0, (ceil(H / S) - 1) S + (K - 1) D + 1 - H)``, the odd pixel at the bottom/right, resp. top/left) or
    VALID (none). Raises UnsupportedOperator for another auto_pad or a non-2-D window."""
    ap = a.get("auto_pad", b"NOTSET")
    ap = ap.decode() if isinstance(ap, bytes) else ap
    if ap == "NOTSET":
        pads = tuple(a.get("pads", (0, 0, 0, 0)))
        if len(pads) != 4:
            raise UnsupportedOperator(op_type, name, f"pads {list(pads)} (2-D windows only)")
        return pads
    if ap == "VALID":
        return (0, 0, 0, 0)
    if ap not in ("SAME_UPPER", "SAME_LOWER"):
        raise UnsupportedOperator(op_type, name, f"auto_pad {ap!r}")
    out = []
    for n, kk, ss, dd in zip(hw, k, st, dil):
        total = max(0, (-(-n // ss) - 1) * ss + (kk - 1) * dd + 1 - n)
        small = total // 2
        out.append((small, total - small) if ap == "SAME_UPPER" else (total - small, small))
    (pt, pb), (pl, pr) = out
    return pt, pl, pb, pr


def _q(v: Value, name: str, what: str) -> tuple[float, int]:
    if v.scale is None or v.zp is None:
        raise ModelError(f"node {name!r}: {what} has no known quantization (scale, zero point)")
    return float(v.scale), int(np.asarray(v.zp).reshape(()))


def _out(v: Value, shape, dtype, scale, zp, ref: int | None = None) -> Value:
    return Value(tuple(shape), np.dtype(dtype), ref=ref, scale=np.float32(scale), zp=np.asarray(zp).reshape(()))


# ------------------------------------------------------------------------------------------------ GAP
def gap(name: str, x: Value, xs: float, xzp: np.ndarray, ys: float, yzp: np.ndarray, emit, op_type: str,
        out_shape=None) -> Value:
    """GAP of a 4-D runtime ``x`` (scales float32, zero points 0-d int8/uint8), output ONNX shape ``out_shape``
    (default [N, C, 1, 1]; committed [N, 1, 1, C], the same bytes as [N, C])."""
    if len(x.onnx_shape) != 4:
        raise UnsupportedOperator(op_type, name, "only 4-D inputs")
    N, C, H, W = x.onnx_shape
    m0, s = fixed_point(frac(xs) / (frac(ys) * H * W))
    check_bound(name, 255 * H * W, m0, s)
    params = (N, H, W, C, int(xzp.reshape(())), int(yzp.reshape(())), m0, s, signed(x.dtype), signed(yzp.dtype), 0)
    ref = emit(Op(Kind.GAP, name, (x.ref,), params, TensorInfo((N, 1, 1, C), yzp.dtype)))
    return _out(x, out_shape or (N, C, 1, 1), yzp.dtype, ys, yzp, ref)


def e_gap(node, name, ins, emit) -> Value:
    """com.microsoft QLinearGlobalAveragePool -> GAP."""
    x = activation(ins[0], name, "X", node.op_type)
    if attrs(node).get("channels_last", 0):
        raise UnsupportedOperator(node.op_type, name, "channels_last=1")
    xs, xzp = scalar_scale(ins[1], "x_scale", name), zero_point(ins[2], "x_zero_point", name)
    ys, yzp = scalar_scale(ins[3], "y_scale", name), zero_point(ins[4], "y_zero_point", name)
    return gap(name, x, xs, xzp, ys, yzp, emit, node.op_type)


# ------------------------------------------------------------------------------------------------ pooling, Pad
def _window(node, name, x):
    a = attrs(node)
    if len(x.onnx_shape) != 4:
        raise UnsupportedOperator(node.op_type, name, f"only 2-D pooling (4-D tensors), got {x.onnx_shape}")
    if len(node.output) > 1 and node.output[1]:   # storage_order only orders the Indices
        raise UnsupportedOperator(node.op_type, name, "the Indices output")
    if a.get("channels_last", 0):
        raise UnsupportedOperator(node.op_type, name, "channels_last=1")
    k = list(a["kernel_shape"])
    st, dil = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    if len(k) != 2:
        raise UnsupportedOperator(node.op_type, name, f"kernel_shape {k} (2-D only)")
    pads = window_pads(a, x.onnx_shape[2:], k, st, dil, node.op_type, name)
    return a, k, st, dil, list(pads)


def e_maxpool(node, name, ins, emit) -> Value:
    """ONNX MaxPool of a quantized tensor (order-preserving, so it commutes with quantization) -> MAXPOOL."""
    x = activation(ins[0], name, "X", node.op_type)
    a, k, st, dil, pads = _window(node, name, x)
    op = pooling.maxpool_op(name, x.ref, info(x), k, st, pads, dil, int(a.get("ceil_mode", 0)))
    ref = emit(op)
    N, OH, OW, C = op.out.shape
    return Value((N, C, OH, OW), x.dtype, ref=ref, scale=x.scale, zp=x.zp)


def avgpool(node, name, x: Value, xs, xzp, ys, yzp, emit) -> Value:
    """AVGPOOL of runtime ``x`` between dequantization (xs, xzp) and quantization (ys, yzp)."""
    a, k, st, dil, pads = _window(node, name, x)
    op = pooling.avgpool_op(name, x.ref, info(x), k, st, pads, int(a.get("ceil_mode", 0)),
                            int(a.get("count_include_pad", 0)), np.float32(xs), int(xzp), np.float32(ys), int(yzp),
                            np.asarray(yzp).dtype, dil if "dilations" in a else None)
    ref = emit(op)
    N, OH, OW, C = op.out.shape
    return _out(x, (N, C, OH, OW), op.out.dtype, ys, yzp, ref)


def e_qavgpool(node, name, ins, emit) -> Value:
    """com.microsoft QLinearAveragePool -> AVGPOOL."""
    x = activation(ins[0], name, "X", node.op_type)
    xs, xzp = scalar_scale(ins[1], "x_scale", name), zero_point(ins[2], "x_zero_point", name)
    ys, yzp = scalar_scale(ins[3], "y_scale", name), zero_point(ins[4] if len(ins) > 4 else None,
                                                                  "y_zero_point", name)
    return avgpool(node, name, x, xs, xzp, ys, yzp, emit)


def e_pad(node, name, ins, emit) -> Value:
    """ONNX Pad (mode constant, spatial axes) of a quantized tensor -> PAD; the value must be an integer of the
    dtype (the quantizer pads with the quantized constant)."""
    x = activation(ins[0], name, "data", node.op_type)
    a = attrs(node)
    pads = a.get("pads") if "pads" in a else const_of(ins[1], "pads", name).tolist()
    if len(ins) > 3 and ins[3] is not None:
        raise UnsupportedOperator("Pad", name, "the axes input")
    value = 0
    if len(ins) > 2 and ins[2] is not None:
        c = const_of(ins[2], "constant_value", name)
        if c.dtype != x.dtype:
            raise UnsupportedOperator("Pad", name, f"constant_value {c.dtype} on a {x.dtype} tensor")
        value = int(c.reshape(()))
    elif "value" in a:
        value = a["value"]
    mode = a.get("mode", b"constant")
    op = pooling.pad_op(name, x.ref, info(x), pads, value, mode.decode() if isinstance(mode, bytes) else mode)
    ref = emit(op)
    N, OH, OW, C = op.out.shape
    return Value((N, C, OH, OW), x.dtype, ref=ref, scale=x.scale, zp=x.zp)


# ------------------------------------------------------------------------------------------------ tables
def lut(name: str, x: Value, fn, xq, yq, y_dtype, emit) -> Value:
    """LUT of ``fn`` (see `offchain.inference.softmax.lut_table`) from quantization ``xq`` to ``yq``."""
    ysig = int(np.dtype(y_dtype) == np.int8)
    table = ew.lut_table(fn, xq[0], xq[1], signed(x.dtype), yq[0], yq[1], ysig)
    ref = emit(ew.lut_op(name, x.ref, info(x), table))
    out = _out(x, x.onnx_shape, table.dtype, yq[0], np.array(yq[1], y_dtype))
    out.ref = ref
    return out


def e_qunary(node, name, ins, emit) -> Value:
    """com.microsoft QLinearSigmoid / QLinearLeakyRelu -> LUT (table computed exactly at load time)."""
    x = activation(ins[0], name, "X", node.op_type)
    xq = (scalar_scale(ins[1], "X_scale", name), int(zero_point(ins[2], "X_zero_point", name).reshape(())))
    yzp = zero_point(ins[4] if len(ins) > 4 else None, "Y_zero_point", name, x.dtype)
    yq = (scalar_scale(ins[3], "Y_scale", name), int(yzp.reshape(())))
    fn = "sigmoid" if node.op_type == "QLinearSigmoid" else ("leaky_relu", attrs(node).get("alpha", 0.01))
    return lut(name, x, fn, xq, yq, yzp.dtype, emit)


def e_qconcat(node, name, ins, emit) -> Value:
    """com.microsoft QLinearConcat -> a requantizing LUT for each input of another scale or zero point, then
    CONCAT (at most 4 inputs) along the committed axis."""
    ys, yzp = scalar_scale(ins[0], "Y_scale", name), zero_point(ins[1], "Y_zero_point", name)
    if (len(ins) - 2) % 3 or not 1 <= (len(ins) - 2) // 3 <= 4:
        raise UnsupportedOperator(node.op_type, name, f"{(len(ins) - 2) // 3} inputs (1 to 4)")
    xs = []
    for i in range(2, len(ins), 3):
        x = activation(ins[i], name, f"input {(i - 2) // 3}", node.op_type)
        q = (scalar_scale(ins[i + 1], "X_scale", name), int(zero_point(ins[i + 2], "X_zero_point", name).reshape(())))
        if x.dtype != yzp.dtype or np.float32(q[0]) != np.float32(ys) or q[1] != int(yzp.reshape(())):
            x = lut(f"{name}/requantize{(i - 2) // 3}", x, "identity", q, (ys, int(yzp.reshape(()))), yzp.dtype, emit)
        xs.append(x)
    return _concat(node, name, xs, attrs(node)["axis"], emit, ys, yzp)


def _concat(node, name, xs, axis, emit, ys, yzp) -> Value:
    shape = tuple(xs[0].onnx_shape)
    axis = axis % len(shape)
    cax = [0, 2, 3, 1].index(axis) if len(shape) == 4 else axis
    op = ew.concat_op(name, [x.ref for x in xs], [info(x) for x in xs], cax)
    ref = emit(op)
    out = list(shape)
    out[axis] = sum(x.onnx_shape[axis] for x in xs)
    return _out(xs[0], out, op.out.dtype, ys, yzp, ref)


def e_qmul(node, name, ins, emit) -> Value:
    """com.microsoft QLinearMul -> MUL; b of a's shape, or per channel ([1, C, 1, 1] of a 4-D a), or of a's
    trailing dimensions; a constant b is committed in a's layout."""
    a, b = ins[0], ins[3]
    aq = (scalar_scale(ins[1], "A_scale", name), int(zero_point(ins[2], "A_zero_point", name).reshape(())))
    bq = (scalar_scale(ins[4], "B_scale", name), int(zero_point(ins[5], "B_zero_point", name).reshape(())))
    czp = zero_point(ins[7] if len(ins) > 7 else None, "C_zero_point", name)
    cq = (scalar_scale(ins[6], "C_scale", name), czp.reshape(()))
    if a.ref is None and b.ref is not None:
        a, b, aq, bq = b, a, bq, aq
    activation(a, name, "A", node.op_type)
    sa, sb = tuple(a.onnx_shape), tuple(b.onnx_shape)
    per_channel = len(sa) == 4 and len(sb) == 4 and sb == (1, sa[1], 1, 1)
    trailing = len(sb) <= len(sa) and sa[len(sa) - len(sb):] == sb and len(sa) != 4
    if not (sb == sa or per_channel or trailing or int(np.prod(sb)) == 1):
        raise UnsupportedOperator(node.op_type, name, f"broadcast {list(sb)} -> {list(sa)}")
    if b.ref is None:
        c = const_of(b, "B", name)
        bb = np.ascontiguousarray((c.transpose(0, 2, 3, 1) if c.ndim == 4 else c).reshape(-1))
    else:
        if sb != sa:
            raise UnsupportedOperator(node.op_type, name, "broadcast of a runtime B")
        bb = (b.ref, info(b))
    op = ew.mul_op(name, a.ref, info(a), bb, aq, bq, cq)
    return _out(a, sa, op.out.dtype, cq[0], czp, emit(op))


def softmax_rows(node, name, x: Value, opset: int) -> TensorInfo:
    """The committed view [rows, cols] of a softmax of ``x`` along its ONNX ``axis`` (opset < 13: the dimensions
    from ``axis`` on, flattened): the row's dimensions (those of size 1 aside) must be the last ones of the
    committed layout (NHWC for 4-D), so that each row is contiguous. Raises UnsupportedOperator."""
    shape = tuple(x.onnx_shape)
    ax = attrs(node).get("axis", -1 if opset >= 13 else 1) % len(shape)
    inner = set(range(ax, len(shape))) if opset < 13 else {ax}
    order = [0, 2, 3, 1] if len(shape) == 4 else list(range(len(shape)))
    big = [d for d in order if shape[d] > 1]
    row = [d for d in big if d in inner]
    if big[len(big) - len(row):] != row:
        raise UnsupportedOperator(node.op_type, name, f"softmax axis {ax} of {list(shape)}: its rows are not "
                                  "contiguous in the committed layout")
    n_cols = int(np.prod([shape[d] for d in inner]))
    return TensorInfo((int(np.prod(shape)) // n_cols, n_cols), x.dtype)


def softmax(node, name, x: Value, xs, ys, yzp, emit, opset: int) -> Value:
    """SOFTMAX of runtime ``x`` (input scale ``xs``) quantized to (ys, yzp)."""
    view = softmax_rows(node, name, x, opset)
    op = ew.softmax_op(name, x.ref, view, xs, ys, yzp)
    op.out = TensorInfo(info(x).shape, op.out.dtype)
    return _out(x, x.onnx_shape, op.out.dtype, ys, yzp, emit(op))


def e_qsoftmax(node, name, ins, emit, opset: int = 13) -> Value:
    """com.microsoft QLinearSoftmax -> SOFTMAX (``opset`` attribute: the ONNX Softmax semantics it follows)."""
    x = activation(ins[0], name, "X", node.op_type)
    xs = scalar_scale(ins[1], "X_scale", name)
    ys, yzp = scalar_scale(ins[3], "y_scale", name), zero_point(ins[4] if len(ins) > 4 else None,
                                                                  "y_zero_point", name, x.dtype)
    return softmax(node, name, x, xs, ys, yzp, emit, int(attrs(node).get("opset", opset)))


# ------------------------------------------------------------------------------------------------ Reshape
def reorder(node, name, ins, emit) -> Value:
    """Reshape/Flatten of a runtime tensor whose committed bytes change order (e.g. VGG-16's flatten of a
    [N, 512, 7, 7] activation committed NHWC): a TRANSPOSE to the logical (NCHW) order when the input is 4-D, and
    one to NHWC when the target is 4-D; an alias when neither changes the bytes."""
    x = ins[0]
    tgt = target_shape(node, name, x.onnx_shape, [None] + [v.const if v is not None else None for v in ins[1:]])
    s = tuple(x.onnx_shape)
    if x.ref == 0 or np.array_equal(committed_order(s, False), committed_order(tuple(tgt), False)):
        if x.ref == 0 and tuple(tgt) != s and len(s) == 4 and len(tgt) == 4:
            raise UnsupportedOperator(node.op_type, name, "4-D reshape of the model input")
        return Value(tuple(tgt), x.dtype, ref=x.ref, scale=x.scale, zp=x.zp)
    activation(x, name, "data", node.op_type)
    ref, cur = x.ref, info(x)
    if len(s) == 4:
        ref = emit(ew.transpose_op(name, ref, cur, (0, 3, 1, 2)))
        cur = TensorInfo(s, cur.dtype)
    if len(tgt) == 4:
        N, C, H, W = tgt
        ref = emit(ew.transpose_op(f"{name}/nhwc", ref, TensorInfo((N, C, H, W), cur.dtype), (0, 2, 3, 1)))
    return Value(tuple(tgt), x.dtype, ref=ref, scale=x.scale, zp=x.zp)


EMITTERS = {
    "QLinearGlobalAveragePool": e_gap,
    "MaxPool": e_maxpool,
    "QLinearAveragePool": e_qavgpool,
    "Pad": e_pad,
    "QLinearSigmoid": e_qunary,
    "QLinearLeakyRelu": e_qunary,
    "QLinearConcat": e_qconcat,
    "QLinearMul": e_qmul,
    "QLinearSoftmax": e_qsoftmax,
}
"""ONNX operator -> emitter ``(node, name, ins, emit) -> Value``."""


def conv1d(node, name, ins, emit, conv2d) -> Value:
    """QLinearConv of a 3-D activation [N, C, L] (committed as given): the 2-D convolution ``conv2d`` (the loader's
    QLinearConv builder) with H = 1 between two TRANSPOSEs, [N, C, L] -> [N, L, C] (NHWC with H = 1) and the
    output [N, 1, OL, Co] -> [N, Co, OL]. Attributes are mapped to 2-D: kernel [1, k], strides [1, s], pads
    [0, p0, 0, p1], dilations [1, d]."""
    from onnx import helper

    x = activation(ins[0], name, "x", node.op_type)
    w = const_of(ins[3], "w", name)
    if w.ndim != 3:
        raise UnsupportedOperator(node.op_type, name, f"weights of shape {w.shape} for a 3-D input")
    a = attrs(node)
    two = {k: v for k, v in a.items() if k in ("group", "auto_pad")}
    two["kernel_shape"] = [1, int(w.shape[2])]
    two["strides"] = [1, *a.get("strides", [1])]
    two["dilations"] = [1, *a.get("dilations", [1])]
    if "pads" in a:
        two["pads"] = [0, a["pads"][0], 0, a["pads"][1]]
    node2 = helper.make_node("QLinearConv", list(node.input), list(node.output), name=name, **two)
    N, C, L = x.onnx_shape
    ref = emit(ew.transpose_op(f"{name}/nlc", x.ref, info(x), (0, 2, 1)))
    x2 = Value((N, C, 1, L), x.dtype, ref=ref, scale=x.scale, zp=x.zp)
    w2 = Value(tuple(w.shape[:2]) + (1, w.shape[2]), w.dtype, const=w.reshape(w.shape[0], w.shape[1], 1, -1))
    op, y = conv2d(node2, name, [x2, *ins[1:3], w2, *ins[4:]])
    cref = emit(op)
    _, Co, _, OL = y.onnx_shape
    ref = emit(ew.transpose_op(f"{name}/ncl", cref, TensorInfo((N, OL, Co), op.out.dtype), (0, 2, 1)))
    return Value((N, Co, OL), y.dtype, ref=ref, scale=y.scale, zp=y.zp)
