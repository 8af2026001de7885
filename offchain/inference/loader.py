"""The ONNX loader: an int8 ONNX model (QOperator or QDQ format) lowered to the canonical `Graph` of
`offchain.inference.graph` (whose docstring states the semantics every builder here establishes and the bounds it
proves).

    graph = load(path)          # from a file        (raises ModelError, UnsupportedOperator, FloatModel)
    graph = lower(model)        # from an onnx.ModelProto

A QDQ model is first fused by onnxruntime's optimizer (`offchain.inference.qdq.fuse`). Then node by node: one
builder per convolution, matrix product (QLinearMatMul, QGemm with bias and transB), QuantizeLinear (any rank),
DequantizeLinear and QLinearAdd here (`_BUILDERS`) checks its inputs, proves the accumulator bounds and derives the
requantization constants; pooling, padding, concatenation, products, tables, softmax and 1-D convolution are
emitted by `offchain.inference.qlinear`; the float sections between a DequantizeLinear and a QuantizeLinear by
`offchain.inference.qdq`; shape computations on constants are folded, Reshape/Flatten of a runtime tensor become
aliases or TRANSPOSEs, and dead operators are dropped. A float32 model (no quantization at all) raises FloatModel,
which tells the user to run `pinpoint quantize` first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from . import elementwise, pooling, qdq
from .limits import check_op
from .definitions import add_fixed
from .qlinear import EMITTERS, conv1d, reorder, window_pads
from .folding import (FOLDABLE, activation, INT8 as _INT8, Value, attrs, check_int32 as _check_int32,
                      const_of as _const, fold, nhwc, scalar_scale as _scalar_scale, signed as _signed,
                      zero_point as _zp)
from .graph import (INPUT_REF, PARAM_NAMES, TABLE_DTYPE, Graph, Kind, ModelError, Op, TensorInfo,
                    UnsupportedOperator, f32_bits, f32_multiplier)

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
    if qdq.is_qdq(model):
        model = qdq.fuse(model)
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
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

    def emit(op: Op) -> int:
        ops.append(op)
        return len(ops)
    emit.last = lambda: len(ops)

    for node in g.node:
        name = node.name or (node.output[0] if node.output else node.op_type)
        ins = [vals.get(i) if i else None for i in node.input]
        missing = [i for i, v in zip(node.input, ins) if i and v is None]
        if missing:
            raise ModelError(f"node {name!r} ({node.op_type}) reads undefined value(s) {missing}")
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise UnsupportedOperator(f"{node.domain}.{node.op_type}", name)
        x0 = ins[0] if ins else None
        if x0 is not None and x0.deq is not None and node.op_type in ("MaxPool", "Reshape", "Flatten"):
            vals[node.output[0]] = qdq.through(node, name, ins, emit,
                                               EMITTERS["MaxPool"] if node.op_type == "MaxPool" else reorder)
            continue
        if x0 is not None and (x0.deq is not None or x0.pending is not None) and node.op_type in qdq.SECTION:
            vals[node.output[0]] = qdq.open_section(node, name, ins)
            continue
        if x0 is not None and x0.pending is not None and node.op_type != "QuantizeLinear":
            raise UnsupportedOperator(node.op_type, name, f"after the float {x0.pending[0]} of node "
                                      f"{x0.pending[2].name!r}, which must be closed by a QuantizeLinear")
        if node.op_type == "Identity" and x0 is not None and x0.const is None:
            vals[node.output[0]] = x0
            continue
        if node.op_type == "DequantizeLinear" and x0 is not None and x0.const is not None:
            vals[node.output[0]] = qdq.fold_dequantize(node, name, ins)
            continue
        if node.op_type in FOLDABLE or (node.op_type in ("Reshape", "Flatten") and x0.const is not None):
            vals[node.output[0]] = fold(node, name, ins)
            continue
        if node.op_type in ("Reshape", "Flatten"):
            vals[node.output[0]] = reorder(node, name, ins, emit)
            continue
        if node.op_type == "QuantizeLinear" and x0 is not None and x0.pending is not None:
            scale = _scalar_scale(ins[1], "y_scale", name)
            zp = _zp(ins[2] if len(ins) > 2 else None, "y_zero_point", name)
            out_val = qdq.close(node, name, x0, scale, zp, emit, opset)
        elif (node.op_type == "QuantizeLinear" and x0 is not None and x0.deq is not None and len(ins) > 2
              and ins[1] is not None and ins[1].const is not None and ins[1].const.size == 1
              and (out_val := qdq.requantize(x0, _scalar_scale(ins[1], "y_scale", name),
                                             _zp(ins[2], "y_zero_point", name))) is not None):
            pass
        elif node.op_type == "QLinearConv" and x0 is not None and len(x0.onnx_shape) == 3:
            out_val = conv1d(node, name, ins, emit, _b_conv)
        elif node.op_type in EMITTERS:
            out_val = EMITTERS[node.op_type](node, name, ins, emit)
        else:
            builder = _BUILDERS.get(node.op_type)
            if builder is None:
                _refuse_float(g, node, name)
                raise UnsupportedOperator(node.op_type, name, "float operator in a quantized model, not fused with "
                                          "its DequantizeLinear/QuantizeLinear" if node.op_type in FLOAT_COMPUTE
                                          else "")
            op, out_val = builder(node, name, ins)
            emit(op)
        if out_val.ref is None:
            out_val.ref = len(ops)
        vals[node.output[0]] = out_val

    out = vals.get(g.output[0].name)
    if out is not None and out.pending is not None:
        out = qdq.close_output(out, emit, opset)
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
        _check(op)
    graph = Graph(kept, TensorInfo(tuple(in_shape), np.dtype(np.float32)), gi.name, g.output[0].name, source)
    return graph


FLOAT_COMPUTE = {"Conv", "Gemm", "MatMul", "ConvTranspose", "BatchNormalization"}
QUANTIZED = {"QuantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm"}


class FloatModel(ModelError):
    """The model computes in float32 (no quantization at all): it must be quantized first (`pinpoint quantize`)."""


def _refuse_float(g, node, name: str) -> None:
    """Raise FloatModel when ``node`` is a float computation in a model without any quantization."""
    if node.op_type in FLOAT_COMPUTE and not any(n.op_type in QUANTIZED for n in g.node):
        raise FloatModel(f"the model is float32 (node {name!r} is a float {node.op_type}): pinpoint referees "
                         "int8 models; run `pinpoint quantize MODEL.onnx --calibration DIR --out MODEL_INT8.onnx` "
                         "first")


def _check(op: Op) -> None:
    """The descriptor rules: `offchain.inference.limits` for kinds 1-6, the rules of `offchain.inference.pooling`
    and `offchain.inference.elementwise` for kinds 7-14. Raises UnsupportedOperator."""
    if op.kind in pooling.KINDS:
        why = pooling.violation(op.kind, op.named(), len(op.inputs))
        if why:
            raise UnsupportedOperator(op.kind.name, op.name, f"descriptor the contract cannot decide: {why}")
    elif op.kind in elementwise.N_INPUTS:
        elementwise.check_op(op)
    else:
        check_op(op)


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


def _b_quantize(node, name, ins):
    x = ins[0]
    if x.ref is None or x.dtype != np.float32:
        raise ModelError(f"node {name!r}: QuantizeLinear input must be the float32 runtime tensor")
    if ins[1] is not None and ins[1].const is not None and ins[1].const.size > 1:
        raise UnsupportedOperator("QuantizeLinear", name, "per-axis quantization of an activation")
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
    # a tensor of another rank is quantized as [1, 1, 1, numel]: NCHW and NHWC orders coincide, as given
    N, C, H, W = x.onnx_shape if len(x.onnx_shape) == 4 else (1, 1, 1, int(np.prod(x.onnx_shape)))
    params = (N, C, H, W, f32_bits(scale), int(zp.reshape(())), _signed(zp.dtype))
    op = Op(Kind.QUANTIZE, name, (x.ref,), params, TensorInfo(nhwc(tuple(x.onnx_shape)), zp.dtype))
    return op, Value(x.onnx_shape, zp.dtype, scale=np.float32(scale), zp=zp.reshape(()))


def _b_conv(node, name, ins):
    if len(ins) < 8:
        raise ModelError(f"node {name!r}: QLinearConv needs 8 or 9 inputs")
    x = activation(ins[0], name, "x", node.op_type)
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
    if Ci != Cig * G or Co % G:
        raise ModelError(f"node {name!r}: channels {Ci}->{Co} do not match group {G} and weights {w.shape}")
    SH, SW = a.get("strides", (1, 1))
    DH, DW = a.get("dilations", (1, 1))
    PT, PL, PB, PR = window_pads(a, (H, W), (KH, KW), (SH, SW), (DH, DW), "QLinearConv", name)
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
    swapped = a.ref is None and b.ref is not None
    if swapped:   # canonical: the constant, if any, is B (may differ from onnxruntime at near-ties: graph.py)
        a, b, sa, sb, za, zb = b, a, sb, sa, zb, za
    activation(a, name, "A", node.op_type)
    if b.ref is None and b.dtype not in _INT8:
        raise ModelError(f"node {name!r}: constant B must be int8/uint8")
    na, nb = int(np.prod(a.onnx_shape)), int(np.prod(b.onnx_shape))
    if tuple(a.onnx_shape) != tuple(b.onnx_shape):
        trailing = tuple(a.onnx_shape[len(a.onnx_shape) - len(b.onnx_shape):]) if b.onnx_shape else ()
        if len(a.onnx_shape) == 4 or tuple(b.onnx_shape) != trailing:
            raise UnsupportedOperator("QLinearAdd", name, f"broadcast {b.onnx_shape} -> {a.onnx_shape}")
    if b.ref is not None and tuple(a.onnx_shape) != tuple(b.onnx_shape):
        raise UnsupportedOperator("QLinearAdd", name, "broadcast of a runtime tensor")
    with np.errstate(all="ignore"):  # binary32 quotients as MLAS takes them; out-of-range ones fail `check_op`
        rac, rbc = np.float32(np.float32(sa) / np.float32(sc)), np.float32(np.float32(sb) / np.float32(sc))
        zpa, zpb, zpc = (int(z.reshape(())) for z in (za, zb, zc))
        fixed = add_fixed(zpb, zpa, zpc, rbc, rac) if swapped else add_fixed(zpa, zpb, zpc, rac, rbc)
    params = (na, nb, zpa, zpb, zpc, f32_bits(rac), f32_bits(rbc), f32_bits(fixed),
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


def _b_matmul(node, name, ins):
    a = activation(ins[0], name, "a", node.op_type)
    b = _const(ins[3], "b", name)
    if b.ndim != 2:
        raise UnsupportedOperator("QLinearMatMul", name, f"b of shape {b.shape} (2-D only)")
    return matmul_op(name, "QLinearMatMul", a, ins[1], ins[2], b, ins[4], ins[5], None, ins[6], ins[7])


def _b_qgemm(node, name, ins):
    """com.microsoft QGemm: y = quantize(alpha * A' B' + C) with A' = A (transA = 0), B' = B or B^T (transB),
    C an int32 bias of scale a_scale * b_scale broadcast over rows; requantized output (y_scale given)."""
    a = attrs(node)
    if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0:
        raise UnsupportedOperator("QGemm", name, "transA = 1 or alpha != 1")
    if len(ins) < 9 or ins[7] is None:
        raise UnsupportedOperator("QGemm", name, "float output (no y_scale)")
    x = activation(ins[0], name, "A", node.op_type)
    b = _const(ins[3], "B", name)
    if b.ndim != 2:
        raise UnsupportedOperator("QGemm", name, f"B of shape {b.shape} (2-D only)")
    bias = _const(ins[6], "C", name) if ins[6] is not None else None
    return matmul_op(name, "QGemm", x, ins[1], ins[2], b.T if a.get("transB", 0) else b, ins[4], ins[5], bias,
                     ins[7], ins[8] if len(ins) > 8 else None)


def matmul_op(name, op_type, a, a_scale, a_zp, b, b_scale, b_zp, bias, y_scale, y_zp):
    """MATMUL of runtime ``a`` [M, K] by constant ``b`` [K, N] (int8/uint8) with an optional int32 ``bias`` [N]
    (scale a_scale * b_scale), requantized to (y_scale, y_zp); returns (Op, Value). Raises ModelError or
    UnsupportedOperator."""
    sa, za = _scalar_scale(a_scale, "a_scale", name), _zp(a_zp, "a_zero_point", name)
    sb = _const(b_scale, "b_scale", name).astype(np.float32).reshape(-1)
    zb = _zp(b_zp, "b_zero_point", name, b.dtype).reshape(-1)
    sy, zy = _scalar_scale(y_scale, "y_scale", name), _zp(y_zp, "y_zero_point", name)
    if len(a.onnx_shape) != 2 or a.onnx_shape[1] != b.shape[0]:
        raise UnsupportedOperator(op_type, name, f"shapes {a.onnx_shape} x {b.shape} (2-D only)")
    if b.dtype not in _INT8:
        raise ModelError(f"node {name!r}: weights must be int8/uint8, got {b.dtype}")
    if za.size != 1 or zy.size != 1:
        raise UnsupportedOperator(op_type, name, "per-axis activation quantization")
    M, K = a.onnx_shape
    Nn = b.shape[1]
    if sb.size not in (1, Nn) or zb.size not in (1, Nn):
        raise ModelError(f"node {name!r}: b_scale/b_zero_point must be per-tensor or per-column")
    if bias is None:
        bias = np.zeros(Nn, np.int32)
    if bias.dtype != np.int32 or bias.size != Nn or (bias.ndim == 2 and bias.shape[0] != 1):
        raise UnsupportedOperator(op_type, name, f"bias {bias.dtype} {bias.shape} (int32 [{Nn}] only)")
    bias = bias.reshape(-1)
    sb, zb64 = np.broadcast_to(sb, (Nn,)), np.broadcast_to(zb.astype(np.int64), (Nn,))
    table = np.zeros(Nn, TABLE_DTYPE)
    bdev = np.abs(b.astype(np.int64) - zb64[None, :]).max(axis=0)
    for n in range(Nn):
        _check_int32(name, K * 255 * int(bdev[n]) + abs(int(bias[n])))
        table[n] = (int(bias[n]), f32_multiplier(sa, sb[n], sy, name), int(zb64[n]))
    params = (M, K, Nn, int(za.reshape(())), int(zy.reshape(())), _signed(a.dtype), _signed(b.dtype),
              _signed(zy.dtype))
    op = Op(Kind.MATMUL, name, (a.ref,), params, TensorInfo((M, Nn), zy.dtype),
            weight=np.ascontiguousarray(b.T), table=table)
    return op, Value((M, Nn), zy.dtype, scale=np.float32(sy), zp=zy.reshape(()))


def _b_dequantize(node, name, ins):
    if ins[1] is not None and ins[1].const is not None and ins[1].const.size != 1:
        raise UnsupportedOperator("DequantizeLinear", name, "per-axis dequantization of an activation")
    x = activation(ins[0], name, "x", node.op_type)
    scale = _scalar_scale(ins[1], "x_scale", name)
    zp = _zp(ins[2] if len(ins) > 2 else None, "x_zero_point", name, x.dtype)
    if zp.size != 1:
        raise UnsupportedOperator("DequantizeLinear", name, "per-axis dequantization of an activation")
    numel = int(np.prod(x.onnx_shape))
    shape = tuple(x.onnx_shape)
    params = (numel, int(zp.reshape(())), f32_bits(scale), _signed(x.dtype))
    src = qdq.dequantized(x, ins[1], ins[2] if len(ins) > 2 else None, name)
    op = Op(Kind.DEQUANTIZE, name, (x.ref,), params, TensorInfo(nhwc(shape), np.dtype(np.float32)))
    return op, Value(shape, np.dtype(np.float32), deq=src)


_BUILDERS = {
    "QuantizeLinear": _b_quantize,
    "QLinearConv": _b_conv,
    "QLinearAdd": _b_add,
    "QLinearMatMul": _b_matmul,
    "QGemm": _b_qgemm,
    "DequantizeLinear": _b_dequantize,
}
