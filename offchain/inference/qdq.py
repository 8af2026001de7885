"""QDQ-format models: DequantizeLinear -> operator -> QuantizeLinear patterns fused into canonical operators.

Two steps, both at load time:

1. `fuse` runs onnxruntime's own graph optimizer (level EXTENDED, the QDQ selector/action transformers) and reads
   back the model it would execute: DQ -> Conv -> Q becomes QLinearConv, DQ -> Gemm/MatMul -> Q QGemm /
   QLinearMatMul, Add QLinearAdd, Concat QLinearConcat, GlobalAveragePool, AveragePool, Sigmoid, LeakyRelu,
   Softmax their QLinear forms, Q/DQ pairs around MaxPool/Reshape/Transpose are dropped (per-axis weight
   scales and ``output_dtype`` included). The platform-dependent rewrite of int8 activations to uint8
   (``QDQS8ToU8Transformer``) is disabled, so the canonical graph, hence the model commitment, is the same on
   every machine; a pattern onnxruntime does not fuse stays and meets step 2 or an UnsupportedOperator.
2. The float sections left between a DequantizeLinear and a QuantizeLinear (`SECTION`) are recognised by the
   loader while lowering: a DequantizeLinear result remembers its quantized source (``Value.deq``), a section
   operator applied to it is held (``Value.pending``), and the QuantizeLinear that closes it emits the exact
   canonical operator: ReduceMean over H, W (one or two nodes) or GlobalAveragePool -> GAP; Sigmoid, Tanh,
   HardSwish, HardSigmoid, LeakyRelu, Relu, Clip -> LUT (256-entry table computed exactly); AveragePool ->
   AVGPOOL; Softmax -> SOFTMAX. A float Softmax that is the model's output (after the last DequantizeLinear) is
   SOFTMAX with output scale 1/256 (uint8, zero point 0) followed by DEQUANTIZE (`close_output`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from . import qlinear
from .folding import Value, attrs, const_of, scalar_scale, zero_point
from .graph import Kind, ModelError, Op, TensorInfo, UnsupportedOperator, f32_bits

UNARY = {"Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hardswish", "Relu": "relu"}
SECTION = {"ReduceMean", "GlobalAveragePool", "AveragePool", "Softmax", "LeakyRelu", "Clip", "HardSigmoid", *UNARY}
"""Float operators accepted between a DequantizeLinear and a QuantizeLinear."""
SOFTMAX_OUT_SCALE = np.float32(1 / 256)


def is_qdq(model: onnx.ModelProto) -> bool:
    """True when a DequantizeLinear feeds a float compute operator (Conv, MatMul, Gemm, Add, Concat, ...) other
    than a section operator: a QDQ-format model."""
    g = model.graph
    deq = {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}
    return any(n.op_type not in ("QuantizeLinear", "Reshape", "Flatten", "Identity", "MaxPool")
               and n.op_type not in SECTION
               and not n.op_type.startswith("QLinear") and any(i in deq for i in n.input) for n in g.node)


def fuse(model: onnx.ModelProto) -> onnx.ModelProto:
    """The QDQ ``model`` as onnxruntime's optimizer fuses it (see the module docstring). Raises ModelError when
    onnxruntime cannot read the model."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.log_severity_level = 3
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.ir_version = min(m.ir_version, 10)   # newer onnx writes IR versions onnxruntime may not read yet
    with tempfile.TemporaryDirectory() as tmp:
        so.optimized_model_filepath = str(Path(tmp) / "fused.onnx")
        try:
            ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"],
                                 disabled_optimizers=["QDQS8ToU8Transformer"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"onnxruntime cannot read the QDQ model: {e}") from e
        return onnx.load(so.optimized_model_filepath)


def through(node, name: str, ins: list, emit, emitter) -> Value:
    """An operator that commutes with dequantization (MaxPool: dequantization is monotone; Reshape, Flatten: they
    move values) applied to a dequantized Value: ``emitter`` on its quantized source, then a DEQUANTIZE of the
    result (dropped when only a QuantizeLinear reads it, see `requantize`)."""
    src = ins[0].deq
    before = emit.last()
    y = emitter(node, name, [src] + list(ins[1:]), emit)
    if y.ref is None:
        y.ref = emit.last()
    if y.ref == src.ref and emit.last() == before:   # an alias: no operator emitted
        y = Value(tuple(y.onnx_shape), src.dtype, ref=src.ref, scale=src.scale, zp=src.zp)
    ti = qlinear.info(y)
    params = (ti.numel, int(np.asarray(src.zp).reshape(())), f32_bits(np.float32(src.scale)), int(src.dtype == np.int8))
    ref = emit(Op(Kind.DEQUANTIZE, f"{name}/dequantize", (y.ref,), params, TensorInfo(ti.shape, np.dtype(np.float32))))
    return Value(tuple(y.onnx_shape), np.dtype(np.float32), ref=ref, deq=y)


def requantize(x: Value, scale: float, zp: np.ndarray) -> Value | None:
    """QuantizeLinear (``scale``, ``zp``) of a dequantized Value: its quantized source itself when the scale, zero
    point and dtype are the same (``rne(fl32((q - zp) s) / s) = q - zp`` for |q - zp| < 2^9, so nothing is
    emitted); None otherwise (the loader then quantizes the DEQUANTIZE output, which is onnxruntime's arithmetic)."""
    src = x.deq
    szp = int(np.asarray(src.zp).reshape(()))
    if np.float32(scale) == np.float32(src.scale) and int(zp.reshape(())) == szp and zp.dtype == src.dtype:
        return Value(tuple(x.onnx_shape), src.dtype, ref=src.ref, scale=np.float32(scale), zp=zp.reshape(()))
    return None


def open_section(node, name: str, ins: list) -> Value:
    """A section operator on a dequantized (or already pending) float Value: the held pending Value."""
    x = ins[0]
    t = node.op_type
    if t in ("ReduceMean", "GlobalAveragePool"):
        if x.pending is not None and x.pending[0] != "mean" or x.pending is None and x.deq is None:
            raise UnsupportedOperator(t, name, "a float average must follow a DequantizeLinear")
        src, reduced, dims = x.pending[1] if x.pending is not None else (x.deq, set(), list(range(len(x.onnx_shape))))
        shape = list(x.onnx_shape)
        a = attrs(node)
        if t == "GlobalAveragePool":
            axes, keep = list(range(2, len(shape))), 1
        else:
            axes = a.get("axes")
            if axes is None and len(ins) > 1 and ins[1] is not None:
                axes = const_of(ins[1], "axes", name).tolist()
            axes = list(range(len(shape))) if axes is None else axes
            keep = a.get("keepdims", 1)
        axes = sorted(int(v) % len(shape) for v in axes)
        reduced = reduced | {dims[d] for d in axes}
        if keep:
            out = [1 if d in axes else n for d, n in enumerate(shape)]
            nd = dims
        else:
            out = [n for d, n in enumerate(shape) if d not in axes]
            nd = [dims[d] for d in range(len(shape)) if d not in axes]
        return Value(tuple(out), np.dtype(np.float32), pending=("mean", (src, reduced, nd), node))
    if x.deq is None:
        raise UnsupportedOperator(t, name, "float operator on a value that is not a dequantized int8 tensor")
    return Value(tuple(x.onnx_shape), np.dtype(np.float32), pending=(t, x.deq, node))


def _fn(node):
    t, a = node.op_type, attrs(node)
    if t in UNARY:
        return UNARY[t]
    if t == "LeakyRelu":
        return ("leaky_relu", a.get("alpha", 0.01))
    if t == "HardSigmoid":
        return ("hardsigmoid", a.get("alpha", 0.2), a.get("beta", 0.5))
    return None


def close(node, name: str, x: Value, scale: float, zp: np.ndarray, emit, opset: int) -> Value:
    """The QuantizeLinear (``scale``, ``zp``) that closes the pending section ``x``: emit its canonical operator."""
    kind, data, src_node = x.pending
    if kind == "mean":
        src, reduced, _ = data
        if len(src.onnx_shape) != 4 or reduced != {2, 3}:
            raise UnsupportedOperator("ReduceMean", src_node.name, f"mean over axes {sorted(reduced)} "
                                      "(only the spatial axes H, W of a 4-D tensor: a global average pool)")
        return qlinear.gap(src_node.name or name, src, float(src.scale), np.asarray(src.zp), scale, zp, emit,
                           "ReduceMean", out_shape=x.onnx_shape)
    src = data
    xq = (float(src.scale), int(np.asarray(src.zp).reshape(())))
    sname = src_node.name or name
    if kind == "Clip":
        lo = src_node.input[1] if len(src_node.input) > 1 else ""
        a = attrs(src_node)
        bounds = a.get("min", -np.inf), a.get("max", np.inf)
        if lo or len(src_node.input) > 2:
            raise UnsupportedOperator("Clip", sname, "min/max as inputs: give them as initializers of opset < 11 "
                                      "attributes, or quantize with onnxruntime (which folds them)")
        return qlinear.lut(sname, src, ("clip", *bounds), xq, (scale, int(zp.reshape(()))), zp.dtype, emit)
    if _fn(src_node) is not None:
        return qlinear.lut(sname, src, _fn(src_node), xq, (scale, int(zp.reshape(()))), zp.dtype, emit)
    if kind == "AveragePool":
        return qlinear.avgpool(src_node, sname, src, xq[0], np.asarray(src.zp), scale, zp, emit)
    if kind == "Softmax":
        return qlinear.softmax(src_node, sname, src, xq[0], scale, zp, emit, opset)
    raise UnsupportedOperator(kind, sname, "no canonical form between DequantizeLinear and QuantizeLinear")


def close_output(x: Value, emit, opset: int) -> Value:
    """A float Softmax that is the graph output: SOFTMAX to uint8 of scale 1/256, then DEQUANTIZE (float32)."""
    kind, src, node = x.pending
    if kind != "Softmax":
        raise UnsupportedOperator(kind, node.name, "a float section must end in a QuantizeLinear")
    q = qlinear.softmax(node, node.name, src, float(src.scale), SOFTMAX_OUT_SCALE, np.zeros((), np.uint8), emit,
                        opset)
    ti = qlinear.info(q)
    params = (ti.numel, 0, f32_bits(SOFTMAX_OUT_SCALE), 0)
    ref = emit(Op(Kind.DEQUANTIZE, f"{node.name}/dequantize", (q.ref,), params, TensorInfo(ti.shape,
                                                                                               np.dtype(np.float32))))
    return Value(tuple(x.onnx_shape), np.dtype(np.float32), ref=ref)


def dequantized(x: Value, scale_v, zp_v, name: str) -> Value:
    """The quantized source remembered by a DequantizeLinear result (its own scale and zero point)."""
    zp = zero_point(zp_v, "x_zero_point", name, x.dtype)
    return Value(x.onnx_shape, x.dtype, ref=x.ref, scale=np.float32(scalar_scale(scale_v, "x_scale", name)),
                 zp=zp.reshape(()))


def fold_dequantize(node, name: str, ins: list) -> Value:
    """DequantizeLinear of a constant (weights, biases a float operator reads): the float32 constant
    ``fl32((q - zp) * scale)``, per axis along ``axis`` (default 1) when the scale is a vector."""
    q = ins[0].const
    scale = const_of(ins[1], "x_scale", name).astype(np.float32)
    zp = np.asarray(ins[2].const if len(ins) > 2 and ins[2] is not None else np.zeros((), q.dtype))
    if scale.size > 1:
        if attrs(node).get("block_size", 0):
            raise UnsupportedOperator("DequantizeLinear", name, "blocked quantization")
        shape = [1] * q.ndim
        shape[attrs(node).get("axis", 1) % q.ndim] = -1
        scale = scale.reshape(shape)
        zp = zp.reshape(shape) if zp.size > 1 else zp
    v = ((q.astype(np.int64) - zp.astype(np.int64)).astype(np.float32) * scale).astype(np.float32)
    return Value(tuple(v.shape), v.dtype, const=v)
