"""The ONNX loader: an int8 QOperator ONNX model lowered to the canonical `Graph` of `offchain.inference.graph`
(whose docstring states the semantics every builder here establishes and the bounds it proves).

    graph = load(path)          # from a file        (raises ModelError, UnsupportedOperator)
    graph = lower(model)        # from an onnx.ModelProto

One builder per supported ONNX operator (`_BUILDERS`) checks its inputs, proves the accumulator bounds and derives
the requantization constants; shape computations on constants are folded, Reshape/Flatten of a runtime tensor
become aliases, and dead operators are dropped.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .limits import check_op
from .folding import FOLDABLE, Value, alias, attrs, fold
from .graph import (INPUT_REF, PARAM_NAMES, TABLE_DTYPE, Graph, Kind, ModelError, Op, TensorInfo,
                    UnsupportedOperator, f32_bits, f32_multiplier, fixed_point)

EXACT_LIMIT = 1 << 53
_INT8 = {np.dtype(np.int8), np.dtype(np.uint8)}


def _frac(x) -> Fraction:
    return Fraction(float(np.float32(x)))


def _check_int32(name: str, acc_bound: int) -> None:
    if acc_bound >= 1 << 31:
        raise ModelError(f"node {name!r}: accumulator bound {acc_bound} exceeds int32")


def _signed(dt: np.dtype) -> int:
    return 1 if dt == np.int8 else 0


def load(path: str | Path, batch: int = 1) -> Graph:
    """Load an int8 QOperator ONNX model as a canonical `Graph` for input shape [batch, ...].

    Raises ModelError (malformed model, unknown dtype, accumulator bound exceeded, ...) or UnsupportedOperator.
    """
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError and friends
        raise ModelError(f"cannot parse ONNX model {path}: {e}") from e
    return lower(model, batch=batch, source=str(path))


def lower(model: onnx.ModelProto, batch: int = 1, source: str = "", check_limits: bool = True) -> Graph:
    """Lower an in-memory ONNX model (see `load`). ``check_limits=False`` skips the descriptor rules of
    `offchain.inference.limits` (only to measure one-steps beyond them: the contract refuses such a graph)."""
    g = model.graph
    vals: dict[str, Value] = {}
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        vals[t.name] = Value(tuple(a.shape), a.dtype, const=a)
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
    vals[gi.name] = Value(tuple(in_shape), np.dtype(np.float32), ref=INPUT_REF)

    ops: list[Op] = []
    for node in g.node:
        name = node.name or (node.output[0] if node.output else node.op_type)
        ins = [vals.get(i) if i else None for i in node.input]
        missing = [i for i, v in zip(node.input, ins) if i and v is None]
        if missing:
            raise ModelError(f"node {name!r} ({node.op_type}) reads undefined value(s) {missing}")
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise UnsupportedOperator(f"{node.domain}.{node.op_type}", name)
        if node.op_type in FOLDABLE or (node.op_type in ("Reshape", "Flatten") and ins[0].const is not None):
            vals[node.output[0]] = fold(node, name, ins)
            continue
        if node.op_type in ("Reshape", "Flatten"):
            vals[node.output[0]] = alias(node, name, ins)
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
    for op in kept if check_limits else ():  # the descriptors the contract can decide (`offchain.inference.limits`)
        check_op(op)
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


def _const(v: Value | None, what: str, name: str) -> np.ndarray:
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


def _act(v: Value, name: str, what: str) -> Value:
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
    a = attrs(node)
    out_dt = a.get("output_dtype", 0)
    if out_dt not in (0, onnx.TensorProto.UINT8, onnx.TensorProto.INT8):
        raise UnsupportedOperator("QuantizeLinear", name,
                                  f"output_dtype {onnx.TensorProto.DataType.Name(out_dt)} (only uint8/int8)")
    if a.get("block_size", 0):
        raise UnsupportedOperator("QuantizeLinear", name, "blocked quantization")
    default = None if out_dt == 0 else onnx.helper.tensor_dtype_to_np_dtype(out_dt)
    zp = _zp(ins[2] if len(ins) > 2 else None, "y_zero_point", name, default)
    if default is not None and zp.dtype != default:
        raise ModelError(f"node {name!r}: output_dtype {np.dtype(default)} disagrees with y_zero_point {zp.dtype}")
    if zp.size != 1:
        raise UnsupportedOperator("QuantizeLinear", name, "per-axis quantization")
    N, C, H, W = x.onnx_shape
    params = (N, C, H, W, f32_bits(scale), int(zp.reshape(())), _signed(zp.dtype))
    op = Op(Kind.QUANTIZE, name, (x.ref,), params, TensorInfo((N, H, W, C), zp.dtype))
    return op, Value(x.onnx_shape, zp.dtype, scale=np.float32(scale), zp=zp.reshape(()))


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
    a = attrs(node)
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
    return op, Value((N, Co, OH, OW), yzp.dtype, scale=np.float32(ys), zp=yzp.reshape(()))


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
    shape = tuple(a.onnx_shape)
    const = None
    if b.ref is None:  # committed in the activation's layout: NHWC for a 4-D one (then b has a's shape)
        const = b.const.transpose(0, 2, 3, 1) if len(shape) == 4 else b.const
        const = np.ascontiguousarray(const.reshape(-1))
    info = TensorInfo((shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape, zc.dtype)
    op = Op(Kind.ADD, name, inputs, params, info, const=const)
    return op, Value(shape, zc.dtype, scale=np.float32(sc), zp=zc.reshape(()))


def _b_gap(node, name, ins):
    x = _act(ins[0], name, "X")
    if attrs(node).get("channels_last", 0):
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
    return op, Value((N, C, 1, 1), yzp.dtype, scale=np.float32(ys), zp=yzp.reshape(()))


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
    return op, Value((M, Nn), zy.dtype, scale=np.float32(sy), zp=zy.reshape(()))


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
    return Op(Kind.DEQUANTIZE, name, (x.ref,), params, info), Value(shape, np.dtype(np.float32))


_BUILDERS = {
    "QuantizeLinear": _b_quantize,
    "QLinearConv": _b_conv,
    "QLinearAdd": _b_add,
    "QLinearGlobalAveragePool": _b_gap,
    "QLinearMatMul": _b_matmul,
    "DequantizeLinear": _b_dequantize,
}
