"""The canonical graph compiled to standard ONNX integer and IEEE operators (`compile_graph`), for onnxruntime.

`offchain.inference.evaluators.OrtEvaluator` runs the compiled model: the fastest evaluator, and the same bytes as
`offchain.inference.definitions.DEFINITIONS`, because every operation it asks onnxruntime for is exact or a single
correctly rounded IEEE operation:

* CONV / MATMUL: the accumulator, then + bias (int32), Cast to float32 (one RNE rounding = fl32(acc)), Mul by S
  (one IEEE product), Round (half to even), + zero point, Clip, Cast. The accumulator of a CONV whose every partial
  sum is provably an integer below 2^24 (taps * 255 * max|w| < 2^24: every depthwise and most pointwise layers)
  comes from a float32 Conv on (x - x_zp): integers below 2^24 are exact in float32, so every sum and every fused
  multiply-add is exact, in any order, on any CPU. Otherwise, and for MATMUL, from ConvInteger / MatMulInteger
  (uint8/int8 -> int32 integer sums, measured bit-identical to an exact reference natively and under an emulated
  AVX2 CPU: the shared notes, xce.md).
* ADD / GAP: float64 on integers whose every intermediate is below 2^53 (exact), Floor.
* QUANTIZE stays in numpy (`definitions.quantize_def`: one binary32 division, then round half to even, as
  onnxruntime's QuantizeLinear computes it, but with a stated NaN rule); DEQUANTIZE is one float32 Sub of small
  integers and one float32 Mul.

No FMA can change a result: the additions after a product are of exact integers on exact integers. onnxruntime's
graph optimizations are disabled: its ConvMulFusion / ConvAddFusion would fold the multiplier S into float weights
and round differently (measured: wrong bytes from the tenth operator on). `tests/test_kernels.py` holds it against
DEFINITIONS byte for byte, with 1 and 2 threads and on an emulated Haswell CPU. Models outside its scope (non-zero
weight zero points) raise `NotCompilable` and ``make_evaluator(graph, "auto")`` falls back to the numpy fast path.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .definitions import add_table_by_value
from .graph import Graph, Kind, f32_from_bits
from offchain.common.errors import PinpointError


F32_EXACT = 1 << 24


class NotCompilable(PinpointError, ValueError):
    """The graph uses something this evaluator does not compile (the message says what)."""


def _np(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def add_gather(add, const, j: int, a: str, b: str, op, out: str) -> str:
    """ADD as one Gather from `offchain.inference.definitions.add_table_by_value` (the definition on every pair
    of input values): ``idx = (a - lo_a) * 256 + (b - lo_b)`` in int32 (b broadcast over a), then the table entry.
    ``add``/``const`` append a node / an initializer; returns the output tensor's name ``out``."""
    lo = (-128 if op.p("a_signed") else 0) * 256 + (-128 if op.p("b_signed") else 0)
    ia = add("Cast", [a], f"gia{j}", to=TensorProto.INT32)
    ia = add("Mul", [ia, const(f"g256{j}", np.array(256, np.int32))], f"gma{j}")
    ib = add("Cast", [b], f"gib{j}", to=TensorProto.INT32)
    ib = add("Sub", [ib, const(f"glo{j}", np.array(lo, np.int32))], f"gsb{j}")
    idx = add("Add", [ia, ib], f"gix{j}")
    return add("Gather", [const(f"gtab{j}", add_table_by_value(op)), idx], out, axis=0)


def compile_graph(graph: Graph) -> onnx.ModelProto:
    """Build the ONNX model (NCHW internally) whose input ``t1`` is the QUANTIZE output (NCHW) and whose outputs are
    every later operator's output (NCHW for 4-D tensors). Raises NotCompilable for graphs outside its scope."""
    if graph.ops[0].kind != Kind.QUANTIZE or any(Kind.QUANTIZE == op.kind for op in graph.ops[1:]):
        raise NotCompilable("the graph must start with its only QUANTIZE")
    nodes, inits = [], []
    names = {1: "t1"}
    outputs = []

    def add(op_type, ins, out, **attrs):
        nodes.append(helper.make_node(op_type, ins, [out], **attrs))
        return out

    def const(name, arr):
        inits.append(_np(name, arr))
        return name

    def finish(j, y, zp, signed):
        lo, hi = (-128.0, 127.0) if signed else (0.0, 255.0)
        dt = TensorProto.INT8 if signed else TensorProto.UINT8
        ft = y_dtype[y]
        y = add("Add", [y, const(f"zp{j}", np.array(zp, ft))], f"z{j}")
        y = add("Clip", [y, const(f"lo{j}", np.array(lo, ft)), const(f"hi{j}", np.array(hi, ft))], f"c{j}")
        if ft == np.float32:
            floats[j + 1] = y  # the same values as float32, for a consumer that computes in float32
        return add("Cast", [y], f"t{j + 1}", to=dt)

    y_dtype: dict[str, type] = {}
    floats: dict[int, str] = {}
    N0, H0, W0, C0 = graph.ops[0].out.shape
    lshape = {1: (N0, C0, H0, W0)}  # the logical (ONNX, NCHW) shape each computed tensor has here
    for j, op in enumerate(graph.ops[1:], start=1):
        k = op.kind
        want = _reads(op)
        ins = [names[r] for r in op.inputs]
        if want is not None:  # Reshape/Flatten aliases: an ONNX Reshape of the logical tensor, exact
            for i, r in enumerate(op.inputs):
                if tuple(lshape[r]) != want:
                    ins[i] = add("Reshape", [ins[i], const(f"ls{j}_{i}", np.array(want, np.int64))], f"l{j}_{i}")
        lshape[j + 1] = want if k == Kind.ADD else _writes(op, lshape)
        if k in (Kind.CONV, Kind.MATMUL):
            t = op.table
            if (t["wzp"] != 0).any():
                raise NotCompilable(f"operator {j}: non-zero weight zero points")
            S = np.asarray(t["sbits"], np.int64).astype(np.uint32).view(np.float32)
            if k == Kind.CONV:
                P = op.named()
                attrs = op.conv_attrs()
                w_oihw = op.weight.transpose(0, 3, 1, 2)
                taps = P["KH"] * P["KW"] * (P["Ci"] // P["G"])
                bound = taps * 255 * int(np.abs(op.weight.astype(np.int64)).max())
                if bound < F32_EXACT:
                    # every partial sum is an integer below 2^24: float32 convolution is exact in any order
                    r = op.inputs[0]
                    xf = (floats.get(r) if tuple(lshape[r]) == want else None) or add("Cast", [ins[0]], f"xf{j}",
                                                                                        to=TensorProto.FLOAT)
                    xf = add("Sub", [xf, const(f"xz{j}", np.array(op.p("x_zp"), np.float32))], f"xd{j}")
                    w32 = const(f"w{j}", w_oihw.astype(np.float32))
                    if bound + int(np.abs(t["bias"]).max()) < F32_EXACT:  # the bias too: acc is exact in float32
                        f = add("Conv", [xf, w32, const(f"b{j}", t["bias"].astype(np.float32))], f"f{j}", **attrs)
                        f = add("Mul", [f, const(f"S{j}", S.reshape(1, P["Co"], 1, 1))], f"m{j}")
                        f = add("Round", [f], f"rd{j}")
                        y_dtype[f] = np.float32
                        names[j + 1] = finish(j, f, op.p("y_zp"), op.p("y_signed"))
                        outputs.append(names[j + 1])
                        continue
                    af = add("Conv", [xf, w32], f"af{j}", **attrs)
                    acc = add("Cast", [af], f"a{j}", to=TensorProto.INT32)
                else:
                    acc = add("ConvInteger", [ins[0], const(f"w{j}", w_oihw),
                                              const(f"xz{j}", np.array(op.p("x_zp"), _dt(op.p("x_signed")))),
                                              const(f"wz{j}", np.array(0, _dt(op.p("w_signed"))))], f"a{j}", **attrs)
                bshape, Sshape = (1, P["Co"], 1, 1), (1, P["Co"], 1, 1)
            else:
                a = add("Reshape", [ins[0], const(f"sh{j}", np.array([op.p("M"), op.p("K")], np.int64))], f"r{j}")
                acc = add("MatMulInteger", [a, const(f"w{j}", op.weight.T.copy()),
                                            const(f"az{j}", np.array(op.p("a_zp"), _dt(op.p("a_signed")))),
                                            const(f"bz{j}", np.array(0, _dt(op.p("b_signed"))))], f"a{j}")
                bshape, Sshape = (1, op.p("N")), (1, op.p("N"))
            acc = add("Add", [acc, const(f"b{j}", t["bias"].astype(np.int32).reshape(bshape))], f"ab{j}")
            f = add("Cast", [acc], f"f{j}", to=TensorProto.FLOAT)
            f = add("Mul", [f, const(f"S{j}", S.reshape(Sshape))], f"m{j}")
            f = add("Round", [f], f"rd{j}")
            y_dtype[f] = np.float32
            names[j + 1] = finish(j, f, op.p("y_zp"), op.p("y_signed"))
        elif k == Kind.ADD:
            if len(ins) > 1:
                b = ins[1]
            else:
                cst = op.const
                if len(op.out.shape) == 4:  # committed NHWC (as the activation), computed NCHW here
                    N, H, W, C = op.out.shape
                    cst = cst.reshape(N, H, W, C).transpose(0, 3, 1, 2)
                else:  # b is the trailing dimensions of a (the loader checks it)
                    tail = next(op.out.shape[i:] for i in range(len(op.out.shape) + 1)
                                if int(np.prod(op.out.shape[i:])) == cst.size)
                    cst = cst.reshape(tail)
                b = const(f"cst{j}", np.ascontiguousarray(cst))
            names[j + 1] = add_gather(add, const, j, ins[0], b, op, f"t{j + 1}")
        elif k == Kind.GAP:
            x = add("Cast", [ins[0]], f"cx{j}", to=TensorProto.DOUBLE)
            x = add("ReduceSum", [x, const(f"ax{j}", np.array([2, 3], np.int64))], f"sum{j}", keepdims=1)
            x = add("Sub", [x, const(f"zx{j}", np.array(op.p("x_zp") * op.p("H") * op.p("W"), np.float64))],
                    f"dx{j}")
            x = add("Mul", [x, const(f"M{j}", np.array(np.ldexp(float(op.p("M0")), -op.p("s")), np.float64))],
                    f"mx{j}")
            x = add("Add", [x, const(f"h{j}", np.array(0.5, np.float64))], f"hx{j}")
            x = add("Floor", [x], f"fl{j}")
            y_dtype[x] = np.float64
            names[j + 1] = finish(j, x, op.p("y_zp"), op.p("y_signed"))
        elif k == Kind.DEQUANTIZE:
            x = add("Cast", [ins[0]], f"cx{j}", to=TensorProto.FLOAT)
            x = add("Sub", [x, const(f"zq{j}", np.array(op.p("zp"), np.float32))], f"dq{j}")
            names[j + 1] = add("Mul", [x, const(f"sq{j}", np.array(f32_from_bits(op.p("scale_bits")), np.float32))],
                               f"t{j + 1}")
        else:
            raise NotCompilable(f"operator {j}: {k.name}")
        outputs.append(names[j + 1])
    x0 = graph.ops[0].out
    N, H, W, C = x0.shape
    g = helper.make_graph(nodes, "pinpoint_canonical",
                          [helper.make_tensor_value_info("t1", _tp(x0.dtype), [N, C, H, W])],
                          [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(op.out.dtype), None)
                           for o, op in zip(outputs, graph.ops[1:])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _reads(op) -> tuple[int, ...] | None:
    """The logical (ONNX) shape in which a CONV, GAP or ADD reads its runtime inputs; None for the others."""
    if op.kind == Kind.CONV:
        return tuple(op.p(n) for n in ("N", "Ci", "H", "W"))
    if op.kind == Kind.GAP:
        return tuple(op.p(n) for n in ("N", "C", "H", "W"))
    if op.kind == Kind.ADD:
        s = op.out.shape
        return (s[0], s[3], s[1], s[2]) if len(s) == 4 else tuple(s)
    return None


def _writes(op, lshape) -> tuple[int, ...]:
    """The logical shape of the output of a CONV, GAP, MATMUL or DEQUANTIZE as compiled here."""
    if op.kind == Kind.CONV:
        return tuple(op.p(n) for n in ("N", "Co", "OH", "OW"))
    if op.kind == Kind.GAP:
        return (op.p("N"), op.p("C"), 1, 1)
    if op.kind == Kind.MATMUL:
        return (op.p("M"), op.p("N"))
    return tuple(lshape[op.inputs[0]])


def _dt(signed: int):
    return np.int8 if signed else np.uint8


def _tp(dt) -> int:
    return TensorProto.INT8 if dt == np.int8 else TensorProto.UINT8
