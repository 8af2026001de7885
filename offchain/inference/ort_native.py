"""The canonical graph compiled to onnxruntime's own int8 kernels on uint8-shifted weights (`compile_native`).

`offchain.inference.evaluators.NativeEvaluator` runs it: every intermediate tensor comes out of onnxruntime already in
its committed layout (activations NHWC), at onnxruntime's own int8 speed, with the same bytes as
`offchain.inference.definitions.DEFINITIONS`:

* CONV: com.microsoft ``QLinearConv`` with ``channels_last = 1`` (NHWC in, NHWC out), MATMUL: ``QLinearMatMul``.
  Every int8 weight is re-expressed as uint8 ``w + 128`` with weight zero point 128: the same integer products
  ``(w + 128) - 128``, but onnxruntime then runs its u8 x u8 kernels, which widen to 16 bits before multiplying and
  never saturate (its u8 x s8 AVX2 kernel saturates 16-bit pair sums, so the zoo model's own bytes differ by CPU:
  the shared notes, xce.md). The accumulator is the exact int32 sum on any CPU and in any order.
  Requantization is MLAS's ``MlasRequantizeOutput``: ``acc + bias`` in int32, converted to float32 (one RNE rounding,
  ``fl32(acc)``), multiplied by the float32 output scale (one IEEE product), clamped to the range shifted by the
  zero point, converted to int32 with round half to even, plus the zero point: ``sat(y_zp + rne(fl32(fl32(acc) * S)))``,
  the canonical RQF. The output scale onnxruntime computes from the three scales is ``x_scale * w_scale / y_scale``;
  the compiled model passes ``x_scale = y_scale = 1`` and ``w_scale = S`` (per output channel), so that product and
  quotient are exact and the scale used is the canonical S bit for bit, whatever order onnxruntime evaluates them in.
* ADD / GAP: float64 on integers and dyadic rationals whose every intermediate is exact, then Floor. ADD is one
  fused affine pass ``floor(a Ma 2^-s + b Mb 2^-s + K)``, the zero points and the rounding half folded into K
  (measured faster than a Gather from ADD's 65536-entry table); GAP folds its output zero point into the rounding
  half. Both are checked exact (`_add_fusable`), else NotCompilable.
* QUANTIZE: the quotient in float64 (one IEEE division of the two float32 operands), Round (half to even), + zero
  point, Clip: what `offchain.inference.definitions.quantize_def` computes. DEQUANTIZE is one float32 Sub of small
  integers and one float32 Mul.

Scope: unsigned activations (uint8 in and out of every CONV/MATMUL, as in the zoo models), one weight zero point per
operator, no MATMUL bias; anything else raises `NotCompilable` and ``make_evaluator(graph, "auto")`` falls back to
`offchain.inference.ort`. Graph optimizations stay disabled (fusions would fold S into float weights). Held against
DEFINITIONS byte for byte, with 1 and 2 threads and on an emulated Haswell CPU, by `tests/test_kernels.py`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper



from .graph import INPUT_REF, Graph, Kind, Op, f32_from_bits
from .ort import NotCompilable

F64_EXACT = 1 << 53


def _weights(w: np.ndarray, signed: int, zp: int, keep_int8: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights and their (per-tensor) zero point as onnxruntime gets them: int8 ``w`` as uint8 ``w + 128`` with zero
    point ``zp + 128`` (the same differences ``w - zp``), or as they are when ``keep_int8`` and ``zp == 0`` (the
    symmetric u8 x s8 kernels the probe checks); uint8 weights as they are."""
    if signed and not (keep_int8 and zp == 0):
        return (w.astype(np.int16) + 128).astype(np.uint8), np.array(zp + 128, np.uint8)
    return w, np.array(zp, w.dtype)


def _add_fusable(op: Op) -> bool:
    """True iff ADD's fused form ``floor(a Ma 2^-s + b Mb 2^-s + K)`` is exact in float64: every term and partial
    sum is a multiple of 2^-s whose magnitude in units of 2^-s stays below 2^53 (inputs within [-128, 255])."""
    s, Ma, Mb = op.p("s"), abs(op.p("Ma")), abs(op.p("Mb"))
    bound = 255 * (Ma + Mb) + abs(op.p("a_zp") * op.p("Ma") + op.p("b_zp") * op.p("Mb")) + (257 << s)
    return bound < F64_EXACT


def compile_native(graph: Graph, keep_int8: bool = False) -> onnx.ModelProto:
    """Build the ONNX model whose input ``x`` is the model input (float32) and whose outputs are every operator's
    output in its committed layout (activations NHWC). ``keep_int8``: pass int8 weights as they are (u8 x s8
    kernels: exact only where onnxruntime dispatches to VNNI/AMX, see `offchain.inference.ort_probe`).
    Raises NotCompilable for graphs outside its scope."""
    nodes, inits, outputs = [], [], []
    names = {INPUT_REF: "x"}                           # tensor index -> its name here, in its committed layout
    shapes = {INPUT_REF: tuple(graph.input.shape)}     # tensor index -> its shape here

    def add(op_type, ins, out, domain=None, **attrs):
        nodes.append(helper.make_node(op_type, ins, [out], domain=domain, **attrs))
        return out

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def read(r: int, shape, tag: str) -> str:
        """Tensor r's committed bytes in ``shape`` (a Reshape, exact, only if its shape here differs)."""
        shape = tuple(int(d) for d in shape)
        if shapes[r] == shape:
            return names[r]
        return add("Reshape", [names[r], const(f"rs{tag}", np.array(shape, np.int64))], f"rd{tag}")

    one = const("one", np.array(1.0, np.float32))
    for j, op in enumerate(graph.ops):
        k = op.kind
        out_shape = tuple(op.out.shape)
        if k == Kind.QUANTIZE:
            # sat(zp + rne(x / scale)), the quotient in float64 as `quantize_def` takes it (IEEE Div, Round half even)
            N, C, H, W = (op.p(n) for n in ("N", "C", "H", "W"))
            if op.inputs[0] == INPUT_REF:  # the model input, NCHW
                x = add("Transpose", [read(op.inputs[0], (N, C, H, W), f"{j}")], f"qt{j}", perm=[0, 2, 3, 1])
            else:
                x = read(op.inputs[0], (N, H, W, C), f"{j}")
            x = add("Cast", [x], f"qc{j}", to=TensorProto.DOUBLE)
            x = add("Div", [x, const(f"qs{j}", np.array(f32_from_bits(op.p("scale_bits")), np.float64))], f"qd{j}")
            x = add("Round", [x], f"qr{j}")
            x = add("Add", [x, const(f"qz{j}", np.array(op.p("zp"), np.float64))], f"qa{j}")
            y, shape = _finish(add, const, j, x, op.p("y_signed")), (N, H, W, C)
        elif k in (Kind.CONV, Kind.MATMUL):
            t = op.table
            x_signed, y_signed = (op.p("x_signed"), op.p("y_signed")) if k == Kind.CONV else \
                (op.p("a_signed"), op.p("y_signed"))
            wzp = np.asarray(t["wzp"]).reshape(-1)
            if (wzp != wzp[0]).any():
                raise NotCompilable(f"operator {j}: weight zero points differ by channel")
            if x_signed or y_signed:
                raise NotCompilable(f"operator {j}: signed activations")
            w_signed = op.p("w_signed") if k == Kind.CONV else op.p("b_signed")
            S = np.asarray(t["sbits"], np.int64).astype(np.uint32).view(np.float32)
            if k == Kind.CONV:
                P = op.named()
                wq, wz = _weights(op.weight.transpose(0, 3, 1, 2), w_signed, int(wzp[0]), keep_int8)
                ins = [read(op.inputs[0], (P["N"], P["H"], P["W"], P["Ci"]), f"{j}"), one,
                       const(f"xz{j}", np.array(op.p("x_zp"), np.uint8)), const(f"w{j}", wq), const(f"S{j}", S),
                       const(f"wz{j}", wz), one, const(f"yz{j}", np.array(op.p("y_zp"), np.uint8)),
                       const(f"b{j}", t["bias"].astype(np.int32))]
                y = add("QLinearConv", ins, f"y{j}", domain="com.microsoft", channels_last=1,
                        **op.conv_attrs())
                shape = (P["N"], P["OH"], P["OW"], P["Co"])
                if op.p("out_nchw"):
                    y = add("Transpose", [y], f"tr{j}", perm=[0, 3, 1, 2])
                    shape = (P["N"], P["Co"], P["OH"], P["OW"])
            else:
                if (t["bias"] != 0).any():
                    raise NotCompilable(f"operator {j}: MATMUL bias")
                wq, wz = _weights(np.ascontiguousarray(op.weight.T), w_signed, int(wzp[0]), keep_int8)
                ins = [read(op.inputs[0], (op.p("M"), op.p("K")), f"{j}"), one,
                       const(f"az{j}", np.array(op.p("a_zp"), np.uint8)), const(f"w{j}", wq), const(f"S{j}", S),
                       const(f"wzv{j}", np.full(op.p("N"), wz, wz.dtype)), one,
                       const(f"yz{j}", np.array(op.p("y_zp"), np.uint8))]
                y, shape = add("QLinearMatMul", ins, f"y{j}"), (op.p("M"), op.p("N"))
        elif k == Kind.ADD:
            # floor(a Ma 2^-s + b Mb 2^-s + K), K = 0.5 + c_zp - (a_zp Ma + b_zp Mb) 2^-s: exact in float64;
            # a flat in the output's shape, b repeating over its leading dimensions (broadcast over trailing ones)
            if not _add_fusable(op):
                raise NotCompilable(f"operator {j}: ADD constants not exact in fused float64 form")
            sc = 2.0 ** -op.p("s")
            a = add("Cast", [read(op.inputs[0], out_shape, f"{j}a")], f"ca{j}", to=TensorProto.DOUBLE)
            a = add("Mul", [a, const(f"Ma{j}", np.array(op.p("Ma") * sc, np.float64))], f"ma{j}")
            if len(op.inputs) > 1:
                b_shape = _trailing(op.p("numel_b"), out_shape)
                b = add("Cast", [read(op.inputs[1], b_shape, f"{j}b")], f"cb{j}", to=TensorProto.DOUBLE)
                b = add("Mul", [b, const(f"Mb{j}", np.array(op.p("Mb") * sc, np.float64))], f"mb{j}")
            else:
                b = const(f"cst{j}", (op.const.astype(np.float64) * (op.p("Mb") * sc)).reshape(
                    _trailing(op.const.size, out_shape)))
            acc = add("Add", [a, b], f"acc{j}")
            K = 0.5 + op.p("c_zp") - (op.p("a_zp") * op.p("Ma") + op.p("b_zp") * op.p("Mb")) * sc
            acc = add("Add", [acc, const(f"K{j}", np.array(K, np.float64))], f"k{j}")
            y, shape = _finish(add, const, j, add("Floor", [acc], f"fl{j}"), op.p("c_signed")), out_shape
        elif k == Kind.GAP:
            N, H, W, C = (op.p(n) for n in ("N", "H", "W", "C"))
            if 255 * H * W * op.p("M0") + (257 << op.p("s")) >= F64_EXACT:
                raise NotCompilable(f"operator {j}: GAP constants not exact in float64")
            nchw = op.p("x_nchw")
            x = read(op.inputs[0], (N, C, H, W) if nchw else (N, H, W, C), f"{j}")
            x = add("Cast", [x], f"cx{j}", to=TensorProto.DOUBLE)
            x = add("ReduceSum", [x, const(f"ax{j}", np.array([2, 3] if nchw else [1, 2], np.int64))], f"sum{j}",
                    keepdims=1)
            x = add("Sub", [x, const(f"zx{j}", np.array(op.p("x_zp") * H * W, np.float64))], f"dx{j}")
            x = add("Mul", [x, const(f"M{j}", np.array(np.ldexp(float(op.p("M0")), -op.p("s")), np.float64))],
                    f"mx{j}")
            x = add("Add", [x, const(f"h{j}", np.array(0.5 + op.p("y_zp"), np.float64))], f"hx{j}")
            y = _finish(add, const, j, add("Floor", [x], f"fl{j}"), op.p("y_signed"))
            shape = (N, C, 1, 1) if nchw else (N, 1, 1, C)
        elif k == Kind.DEQUANTIZE:
            x = add("Cast", [read(op.inputs[0], out_shape, f"{j}")], f"cx{j}", to=TensorProto.FLOAT)
            x = add("Sub", [x, const(f"zq{j}", np.array(op.p("zp"), np.float32))], f"dq{j}")
            y = add("Mul", [x, const(f"sq{j}", np.array(f32_from_bits(op.p("scale_bits")), np.float32))], f"y{j}")
            shape = out_shape
        else:
            raise NotCompilable(f"operator {j}: {k.name}")
        if shape != out_shape:
            y = add("Reshape", [y, const(f"os{j}", np.array(out_shape, np.int64))], f"ro{j}")
        names[j + 1] = y
        shapes[j + 1] = out_shape
        outputs.append(names[j + 1])
    g = helper.make_graph(nodes, "pinpoint_native",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(graph.input.shape))],
                          [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(op.out.dtype), None)
                           for o, op in zip(outputs, graph.ops)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _finish(add, const, j: int, y: str, signed: int) -> str:
    """Clip a float64 integer-valued tensor (the zero point already added) to the output range and cast it."""
    lo, hi = (-128.0, 127.0) if signed else (0.0, 255.0)
    y = add("Clip", [y, const(f"lo{j}", np.array(lo, np.float64)), const(f"hi{j}", np.array(hi, np.float64))],
            f"c{j}")
    return add("Cast", [y], f"y{j}", to=TensorProto.INT8 if signed else TensorProto.UINT8)


def _trailing(numel: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The trailing dimensions of ``shape`` holding ``numel`` elements: a tensor of that shape broadcast over
    ``shape`` repeats over its leading dimensions. Raises NotCompilable if no suffix of ``shape`` has that size."""
    for i in range(len(shape) + 1):
        if int(np.prod(shape[i:], dtype=np.int64)) == numel:
            return tuple(shape[i:])
    raise NotCompilable(f"{numel} elements do not tile the trailing dimensions of {shape}")
