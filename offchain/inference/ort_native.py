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
* ADD: onnxruntime's own com.microsoft ``QLinearAdd`` (A_scale = rAC, B_scale = rBC, C_scale = 1, the model's zero
  points: onnxruntime's AVX2 kernel then computes the canonical ``fma32`` formula) where the start-up probe
  `offchain.inference.ort_probe.qlinear_add_exact` shows it equals the definition on all 65536 input pairs on this
  CPU; else one Gather from the definition's 65536-entry table (`offchain.inference.ort.add_gather`).
* GAP (uint8 input): the exact int32 sums of ``x - x_zp`` as one ``MatMulInteger`` with a vector of ones (u8 x u8:
  integer arithmetic on every CPU), then each output byte gathered from the table of the definition's rounding over
  every possible sum (fewer than `GAP_TABLE`). Else (int8 input, or larger windows): Cast and ReduceSum in float64,
  then float64 on integers and dyadic rationals whose every intermediate is exact, and Floor; it folds its output
  zero point into the rounding half, checked exact, else NotCompilable.
* MATMUL with a bias: the same QLinearConv as CONV, as a 1x1 convolution of [M,1,1,K] (the int32 bias added to the
  exact accumulator, the same requantization); without a bias ``QLinearMatMul``.
* MAXPOOL: an explicit Pad with the dtype's lowest value (every window has an in-bounds tap, so a pad never wins, as
  ONNX's -inf padding; bottom/right as `offchain.inference.pooling.implied_end_pads`), then com.microsoft
  ``NhwcMaxPool`` (int8/uint8, NHWC). PAD: ONNX Pad (constant). TRANSPOSE: ONNX Transpose of the (D0..D3) view.
  CONCAT: ONNX Concat of the [outer, L_i * inner] views. LUT: GatherElements (Gather on 1-D data and indices, a
  faster kernel) from the committed table, the index Cast to int32 (a negative int8 -i indexes entry 256 - i: its
  byte). MUL: Gather from the value-indexed 65536-entry table
  of `offchain.inference.elementwise.mul_fast` (held against the definition). All move or select bytes: exact.
* QUANTIZE: onnxruntime's QuantizeLinear (MLAS: one IEEE binary32 division, clamp, conversion rounding half to even,
  + zero point: `offchain.inference.definitions.quantize_def`) where the start-up probe
  `offchain.inference.ort_probe.quantize_linear_exact` shows it on this CPU, then the NHWC Transpose on the bytes;
  else one float32 Div, Round (half to even), + zero point, Clip. DEQUANTIZE: a Gather from the 256 float32 values
  `offchain.inference.definitions.dequantize_def` gives the 256 bytes.

* AVGPOOL, SOFTMAX: integer ONNX operators only (int32/int64 prefix sums and strided Slices, Gather, ReduceSum,
  floor Mod, exact Div, comparisons), the definitions' exact rational rounding reproduced in integers:
  `offchain.inference.ort_native_ops`. No int64 Max/Min/Clip anywhere (onnxruntime gets some wrong, see there).

Scope: unsigned activations (uint8 in and out of every CONV/MATMUL, as in the zoo models), one weight zero point per
operator; AVGPOOL windows of at most 511 taps, SOFTMAX rows whose int64 bounds hold (every row the loader accepts);
anything else raises `NotCompilable` and
``make_evaluator(graph, "auto")`` falls back to `offchain.inference.ort`. Graph optimizations stay disabled (fusions
would fold S into float weights). Held against DEFINITIONS byte for byte, with 1 and 2 threads and on an emulated
Haswell CPU, by `tests/test_kernels.py` and `tests/test_native_kinds.py`.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper



from .definitions import dequantize_def, rq_int
from .elementwise import _mul_table
from .graph import INPUT_REF, Graph, Kind, Op, f32_from_bits, saturate
from .ort import NotCompilable, add_gather
from .ort_native_ops import avgpool_native, softmax_native
from .ort_probe import qlinear_add_exact, quantize_linear_exact

F64_EXACT = 1 << 53
GAP_TABLE = 1 << 20    # GAP gathers its output from a table of every sum when there are fewer sums than this
GAP_FROM_NHWC = True   # a GAP of an NCHW-committed CONV output sums that CONV's NHWC bytes (before the transpose)


def _weights(w: np.ndarray, signed: int, zp: int, keep_int8: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights and their (per-tensor) zero point as onnxruntime gets them: int8 ``w`` as uint8 ``w + 128`` with zero
    point ``zp + 128`` (the same differences ``w - zp``), or as they are when ``keep_int8`` and ``zp == 0`` (the
    symmetric u8 x s8 kernels the probe checks); uint8 weights as they are."""
    if signed and not (keep_int8 and zp == 0):
        return (w.astype(np.int16) + 128).astype(np.uint8), np.array(zp + 128, np.uint8)
    return w, np.array(zp, w.dtype)


def _add_native(op: Op, probe: bool = True) -> bool:
    """True iff ADD may run as onnxruntime's QLinearAdd: both inputs of the output's shape, one 8-bit dtype, and
    (``probe``) `offchain.inference.ort_probe.qlinear_add_exact` holds for its parameters on this CPU."""
    if op.p("numel_b") != op.p("numel_a") or not op.p("a_signed") == op.p("b_signed") == op.p("c_signed"):
        return False
    return not probe or qlinear_add_exact(*(op.p(k) for k in ("rac_bits", "rbc_bits", "a_zp", "b_zp", "c_zp",
                                                              "c_signed", "fixed_bits")))


def _quantize_native(op: Op, probe: bool = True) -> bool:
    """True iff QUANTIZE may run as onnxruntime's QuantizeLinear: (``probe``)
    `offchain.inference.ort_probe.quantize_linear_exact` holds for its scale and zero point on this CPU."""
    return not probe or quantize_linear_exact(op.p("scale_bits"), op.p("zp"), op.p("y_signed"))


def compile_native(graph: Graph, keep_int8: bool = False, ort_add: bool | None = None,
                   ort_quantize: bool | None = None) -> onnx.ModelProto:
    """Build the ONNX model whose input ``x`` is the model input (float32) and whose outputs are every operator's
    output in its committed layout (activations NHWC). ``keep_int8``: pass int8 weights as they are (u8 x s8
    kernels: exact only where onnxruntime dispatches to VNNI/AMX, see `offchain.inference.ort_probe`). ``ort_add``:
    ADD as onnxruntime's QLinearAdd where `_add_native` holds (None: probed; True: without the probe, for tests;
    False: never, the table Gather). ``ort_quantize``: QUANTIZE as onnxruntime's QuantizeLinear where
    `offchain.inference.ort_probe.quantize_linear_exact` holds (None: probed; True: without the probe; False: never,
    the float32 Div/Round chain).
    Raises NotCompilable for graphs outside its scope."""
    nodes, inits, outputs = [], [], []
    names = {INPUT_REF: "x"}                           # tensor index -> its name here, in its committed layout
    shapes = {INPUT_REF: tuple(graph.input.shape)}     # tensor index -> its shape here
    nhwc = {}                                          # tensor index -> (name, shape) of its NHWC form, if NCHW

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
            N, C, H, W = (op.p(n) for n in ("N", "C", "H", "W"))
            nchw = op.inputs[0] == INPUT_REF  # the model input, NCHW; else a DEQUANTIZE output, NHWC
            x = read(op.inputs[0], (N, C, H, W) if nchw else (N, H, W, C), f"{j}")
            if ort_quantize is not False and _quantize_native(op, probe=ort_quantize is None):
                # onnxruntime's QuantizeLinear (MLAS: IEEE binary32 division, clamp, RNE conversion, + zero point),
                # where the probe shows it computes `quantize_def`; the NHWC transpose then moves bytes
                dt = np.int8 if op.p("y_signed") else np.uint8
                scale = const(f"qs{j}", np.array(f32_from_bits(op.p("scale_bits")), np.float32))
                y = add("QuantizeLinear", [x, scale, const(f"qz{j}", np.array(op.p("zp"), dt))], f"qq{j}")
                if nchw:
                    y = add("Transpose", [y], f"qt{j}", perm=[0, 2, 3, 1])
            else:
                # sat(zp + rne(fl32(x / scale))) as `quantize_def`: one float32 Div (IEEE, RNE), Round (half even)
                if nchw:
                    x = add("Transpose", [x], f"qt{j}", perm=[0, 2, 3, 1])
                x = add("Div", [x, const(f"qs{j}", np.array(f32_from_bits(op.p("scale_bits")), np.float32))],
                        f"qd{j}")
                x = add("Round", [x], f"qr{j}")
                x = add("Cast", [x], f"qc{j}", to=TensorProto.DOUBLE)
                x = add("Add", [x, const(f"qz{j}", np.array(op.p("zp"), np.float64))], f"qa{j}")
                y = _finish(add, const, j, x, op.p("y_signed"))
            shape = (N, H, W, C)
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
                    nhwc[j + 1] = (y, shape)    # the same bytes NHWC, before the transpose (a GAP reads these)
                    y = add("Transpose", [y], f"tr{j}", perm=[0, 3, 1, 2])
                    shape = (P["N"], P["Co"], P["OH"], P["OW"])
            elif (t["bias"] != 0).any():
                # MATMUL with a bias: the same QLinearConv as CONV (bias, per-column S) as a 1x1 convolution on
                # [M,1,1,K] NHWC: the same exact int32 acc + bias and the same requantization
                M, K, Nc = op.p("M"), op.p("K"), op.p("N")
                wq, wz = _weights(np.ascontiguousarray(op.weight.reshape(Nc, K, 1, 1)), w_signed, int(wzp[0]),
                                  keep_int8)
                ins = [read(op.inputs[0], (M, 1, 1, K), f"{j}"), one,
                       const(f"az{j}", np.array(op.p("a_zp"), np.uint8)), const(f"w{j}", wq), const(f"S{j}", S),
                       const(f"wz{j}", wz), one, const(f"yz{j}", np.array(op.p("y_zp"), np.uint8)),
                       const(f"b{j}", t["bias"].astype(np.int32))]
                y = add("QLinearConv", ins, f"y{j}", domain="com.microsoft", channels_last=1, kernel_shape=[1, 1])
                shape = (M, 1, 1, Nc)
            else:
                wq, wz = _weights(np.ascontiguousarray(op.weight.T), w_signed, int(wzp[0]), keep_int8)
                ins = [read(op.inputs[0], (op.p("M"), op.p("K")), f"{j}"), one,
                       const(f"az{j}", np.array(op.p("a_zp"), np.uint8)), const(f"w{j}", wq), const(f"S{j}", S),
                       const(f"wzv{j}", np.full(op.p("N"), wz, wz.dtype)), one,
                       const(f"yz{j}", np.array(op.p("y_zp"), np.uint8))]
                y, shape = add("QLinearMatMul", ins, f"y{j}"), (op.p("M"), op.p("N"))
        elif k == Kind.ADD:
            # onnxruntime's own QLinearAdd where the probe shows it computes the definition on this CPU (same
            # shapes, one dtype), else one Gather from the definition's 65536-entry table; a flat in the output's
            # shape, b repeating over its leading dimensions (broadcast over trailing ones)
            a = read(op.inputs[0], out_shape, f"{j}a")
            if len(op.inputs) > 1:
                b = read(op.inputs[1], _trailing(op.p("numel_b"), out_shape), f"{j}b")
            else:
                b = const(f"cst{j}", op.const.reshape(_trailing(op.const.size, out_shape)))
            if ort_add is not False and _add_native(op, probe=ort_add is None):
                sg = op.p("c_signed")
                dt = np.int8 if sg else np.uint8
                ins = [a, const(f"sa{j}", f32_from_bits(op.p("rac_bits"))), const(f"za{j}", np.array(op.p("a_zp"), dt)),
                       b, const(f"sb{j}", f32_from_bits(op.p("rbc_bits"))), const(f"zb{j}", np.array(op.p("b_zp"), dt)),
                       one, const(f"zc{j}", np.array(op.p("c_zp"), dt))]
                y = add("QLinearAdd", ins, f"y{j}", domain="com.microsoft")
            else:
                y = add_gather(add, const, j, a, b, op, f"y{j}")
            shape = out_shape
        elif k == Kind.GAP:
            N, H, W, C = (op.p(n) for n in ("N", "H", "W", "C"))
            nchw = op.p("x_nchw")
            if not op.p("x_signed") and 255 * H * W < GAP_TABLE:
                # the exact int32 sums of (x - x_zp) over H*W as one MatMulInteger with a row/column of ones (u8 x u8:
                # integer arithmetic, no 16-bit saturation on any CPU), the zero point as the operand's zero point;
                # then each sum's output byte gathered from the table of `definitions.gap_def` over every sum
                xz = const(f"zx{j}", np.array(op.p("x_zp"), np.uint8))
                pre = nhwc.get(op.inputs[0]) if nchw and GAP_FROM_NHWC else None  # an NCHW conv output, NHWC
                if nchw and (pre is None or pre[1] != (N, H, W, C)):
                    x = add("MatMulInteger", [read(op.inputs[0], (N * C, H * W), f"{j}"),
                                              const(f"one{j}", np.ones((H * W, 1), np.uint8)), xz], f"sum{j}")
                    shape = (N * C, 1)
                else:
                    x = read(op.inputs[0], (N, H * W, C), f"{j}") if not nchw else \
                        add("Reshape", [pre[0], const(f"gs{j}", np.array([N, H * W, C], np.int64))], f"gr{j}")
                    x = add("MatMulInteger", [const(f"one{j}", np.ones((1, H * W), np.uint8)), x,
                                              const(f"z0{j}", np.array(0, np.uint8)), xz], f"sum{j}")
                    shape = (N, 1, C)
                y = add("Gather", [const(f"gt{j}", _gap_table(op)), x], f"y{j}", axis=0)
            else:
                if 255 * H * W * op.p("M0") + (257 << op.p("s")) >= F64_EXACT:
                    raise NotCompilable(f"operator {j}: GAP constants not exact in float64")
                x = read(op.inputs[0], (N, C, H, W) if nchw else (N, H, W, C), f"{j}")
                x = add("Cast", [x], f"cx{j}", to=TensorProto.DOUBLE)
                x = add("ReduceSum", [x, const(f"ax{j}", np.array([2, 3] if nchw else [1, 2], np.int64))],
                        f"sum{j}", keepdims=1)
                x = add("Sub", [x, const(f"zx{j}", np.array(op.p("x_zp") * H * W, np.float64))], f"dx{j}")
                x = add("Mul", [x, const(f"M{j}", np.array(np.ldexp(float(op.p("M0")), -op.p("s")), np.float64))],
                        f"mx{j}")
                x = add("Add", [x, const(f"h{j}", np.array(0.5 + op.p("y_zp"), np.float64))], f"hx{j}")
                y = _finish(add, const, j, add("Floor", [x], f"fl{j}"), op.p("y_signed"))
                shape = (N, C, 1, 1) if nchw else (N, 1, 1, C)
        elif k == Kind.MAXPOOL:
            y, shape = _maxpool(add, const, j, read(op.inputs[0], _nhwc(op), f"{j}"), op)
        elif k == Kind.AVGPOOL:
            y, shape = avgpool_native(add, const, j, read(op.inputs[0], _nhwc(op), f"{j}"), op)
        elif k == Kind.SOFTMAX:
            y, shape = softmax_native(add, const, j, read(op.inputs[0], (op.p("rows"), op.p("cols")), f"{j}"), op)
        elif k == Kind.PAD:
            P = op.named()
            pads = [0, P["PT"], P["PL"], 0, 0, P["PB"], P["PR"], 0]
            dt = np.int8 if P["signed"] else np.uint8
            y = add("Pad", [read(op.inputs[0], _nhwc(op), f"{j}"), const(f"pp{j}", np.array(pads, np.int64)),
                            const(f"pv{j}", np.array(P["value"], dt))], f"y{j}", mode="constant")
            shape = (P["N"], P["PT"] + P["H"] + P["PB"], P["PL"] + P["W"] + P["PR"], P["C"])
        elif k == Kind.TRANSPOSE:
            D = tuple(op.p(f"D{i}") for i in range(4))
            perm = [op.p(f"P{i}") for i in range(4)]
            y = add("Transpose", [read(op.inputs[0], D, f"{j}")], f"y{j}", perm=perm)
            shape = tuple(D[p] for p in perm)
        elif k == Kind.LUT:
            x = read(op.inputs[0], (op.p("numel"),), f"{j}")
            # byte(x) as the index: ONNX GatherElements reads a negative index -i as 256 - i, an int8's byte as
            # uint8; on a 1-D table and 1-D indices it is Gather, and onnxruntime's kernel is ~4x faster
            x = add("Cast", [x], f"lc{j}", to=TensorProto.INT32)
            y = add("GatherElements", [const(f"T{j}", op.const.reshape(-1)), x], f"y{j}", axis=0)
            shape = (op.p("numel"),)
        elif k == Kind.CONCAT:
            outer = op.p("outer")
            ins = [read(r, (outer, op.p(f"L{i}") * op.p("inner")), f"{j}_{i}") for i, r in enumerate(op.inputs)]
            y = add("Concat", ins, f"y{j}", axis=1)
            shape = (outer, sum(op.p(f"L{i}") for i in range(len(op.inputs))) * op.p("inner"))
        elif k == Kind.MUL:
            # one Gather from the [256, 256] table of `offchain.inference.elementwise.mul_fast` (held against
            # mul_def), re-indexed by value: idx = (a - lo_a) * 256 + (b - lo_b), b broadcast over a as ADD's
            a = read(op.inputs[0], out_shape, f"{j}a")
            if len(op.inputs) > 1:
                b = read(op.inputs[1], _trailing(op.p("numel_b"), out_shape), f"{j}b")
            else:
                b = const(f"cst{j}", op.const.reshape(_trailing(op.const.size, out_shape)))
            lo_a, lo_b = (-128 if op.p(f"{n}_signed") else 0 for n in "ab")
            T = _mul_table(tuple(op.params))
            T = T[np.ix_(np.arange(lo_a, lo_a + 256) % 256, np.arange(lo_b, lo_b + 256) % 256)].reshape(-1)
            ia = add("Mul", [add("Cast", [a], f"mca{j}", to=TensorProto.INT32),
                             const(f"m256{j}", np.array(256, np.int32))], f"mma{j}")
            ib = add("Cast", [b], f"mcb{j}", to=TensorProto.INT32)
            idx = add("Add", [ia, const(f"mlo{j}", np.array(-(lo_a * 256 + lo_b), np.int32))], f"mix{j}")
            idx = add("Add", [idx, ib], f"miy{j}")
            y = add("Gather", [const(f"mtab{j}", np.ascontiguousarray(T)), idx], f"y{j}", axis=0)
            shape = out_shape
        elif k == Kind.DEQUANTIZE:
            # every byte's float32 from `definitions.dequantize_def` (256 entries), gathered; an int8 -i indexes entry
            # 256 - i: its byte
            x = add("Cast", [read(op.inputs[0], out_shape, f"{j}")], f"cx{j}", to=TensorProto.INT32)
            y = add("Gather", [const(f"dt{j}", _dequantize_table(op)), x], f"y{j}", axis=0)
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


def _gap_table(op: Op) -> np.ndarray:
    """GAP's output for every sum ``s`` of ``x - x_zp`` over H*W (uint8 x: ``-x_zp*H*W <= s <= (255-x_zp)*H*W``), by
    `offchain.inference.definitions.gap_def`'s own rounding: entry ``s mod L`` of a table of L = 255*H*W + 1 (ONNX
    Gather reads a negative index -i as L - i)."""
    H, W, zp = op.p("H"), op.p("W"), op.p("x_zp")
    s = np.arange(-zp * H * W, (255 - zp) * H * W + 1, dtype=np.int64)
    t = np.empty(255 * H * W + 1, np.int8 if op.p("y_signed") else np.uint8)
    t[s % t.size] = saturate(op.p("y_zp") + rq_int(s, op.p("M0"), op.p("s")), op.p("y_signed"))
    return t


def _dequantize_table(op: Op) -> np.ndarray:
    """DEQUANTIZE's float32 for each of the 256 bytes (as the input dtype), by
    `offchain.inference.definitions.dequantize_def` itself."""
    q = np.arange(256, dtype=np.uint8).view(np.int8 if op.p("x_signed") else np.uint8)
    shim = SimpleNamespace(p=op.p, out=SimpleNamespace(shape=(256,)))
    return dequantize_def(shim, q)


def _nhwc(op: Op) -> tuple[int, int, int, int]:
    return tuple(op.p(n) for n in ("N", "H", "W", "C"))


def _maxpool(add, const, j: int, x: str, op: Op) -> tuple[str, tuple[int, ...]]:
    """MAXPOOL on NHWC bytes: an explicit Pad with the dtype's lowest value (every window has an in-bounds tap, so a
    pad never wins: the same max as ONNX's -inf padding), then com.microsoft NhwcMaxPool without pads. Bottom/right
    padding as `offchain.inference.pooling.implied_end_pads`; NotCompilable if the unpadded pooling would not give
    OH x OW."""
    from .pooling import implied_end_pads

    P = op.named()
    PB, PR = implied_end_pads(op)
    Hp, Wp = P["H"] + P["PT"] + PB, P["W"] + P["PL"] + PR
    oh = (Hp - P["DH"] * (P["KH"] - 1) - 1) // P["SH"] + 1
    ow = (Wp - P["DW"] * (P["KW"] - 1) - 1) // P["SW"] + 1
    if (oh, ow) != (P["OH"], P["OW"]):
        raise NotCompilable(f"operator {j}: MAXPOOL output size {P['OH']}x{P['OW']} is not {oh}x{ow}")
    if P["PT"] or P["PL"] or PB or PR:
        dt = np.int8 if P["signed"] else np.uint8
        pads = [0, P["PT"], P["PL"], 0, 0, PB, PR, 0]
        x = add("Pad", [x, const(f"mp{j}", np.array(pads, np.int64)),
                        const(f"mv{j}", np.array(np.iinfo(dt).min, dt))], f"mpd{j}", mode="constant")
    y = add("NhwcMaxPool", [x], f"y{j}", domain="com.microsoft", kernel_shape=[P["KH"], P["KW"]],
            strides=[P["SH"], P["SW"]], dilations=[P["DH"], P["DW"]], pads=[0, 0, 0, 0])
    return y, (P["N"], P["OH"], P["OW"], P["C"])


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
