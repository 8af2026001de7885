"""Synthetic int8 QOperator ONNX models with random and edge-case parameters, for operator tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _c(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def make_model(seed: int, *, H=7, W=6, Ci=4, G=2, cig_out=3, K=3, stride=2, pad=(1, 0, 2, 1), dil=1,
               n_out=10, x_scale=None, sat_scale=False, signed_out=False, extreme=False, gap_reads_conv=False) -> onnx.ModelProto:
    """QuantizeLinear -> grouped QLinearConv -> depthwise QLinearConv -> QLinearAdd -> QLinearGlobalAveragePool
    -> Reshape -> QLinearMatMul -> QLinearAdd (constant) -> DequantizeLinear, all parameters random from ``seed``.
    ``sat_scale`` picks small output scales so many outputs saturate; ``x_scale`` fixes the input scale (a power
    of two gives exact rounding ties in QuantizeLinear); ``extreme`` uses full-scale weights of one sign per
    output channel so that (with a large positive input) accumulators exceed 2^24 and fl32(acc) must round;
    ``gap_reads_conv`` feeds the depthwise convolution straight into the GAP (the ADD is then dead code), so that
    the convolution's output is committed NCHW."""
    rng = np.random.default_rng(seed)
    f32 = lambda v: np.float32(v)
    Co = G * cig_out
    inits, nodes = [], []
    act_dt = np.int8 if signed_out else np.uint8

    def zp(name, lo=0, hi=255):
        if act_dt == np.int8:
            inits.append(_c(name, np.int8(rng.integers(-20, 20))))
        else:
            inits.append(_c(name, np.uint8(rng.integers(lo, hi))))

    def scale(name, lo, hi):
        inits.append(_c(name, f32(rng.uniform(lo, hi))))

    inits.append(_c("xs", f32(x_scale if x_scale is not None else rng.uniform(0.005, 0.05))))
    zp("xz", 60, 200)
    nodes.append(helper.make_node("QuantizeLinear", ["input", "xs", "xz"], ["q0"], name="quant"))
    # grouped conv
    w1 = rng.integers(-128, 128, size=(Co, Ci // G, K, K)).astype(np.int8)
    if extreme:
        w1 = np.where((np.arange(Co) % 2 == 0)[:, None, None, None], 127, -128) * np.ones_like(w1)
        w1 = w1.astype(np.int8)
        w1[:, :3] = rng.integers(-128, 128, size=w1[:, :3].shape)
    inits += [_c("w1", w1), _c("w1s", rng.uniform(0.001, 0.02, Co).astype(np.float32) / (1000 if extreme else 1)),
              _c("w1z", np.zeros(Co, np.int8)), _c("b1", rng.integers(-5000, 5000, Co).astype(np.int32))]
    scale("y1s", *((0.005, 0.01) if sat_scale else (0.02, 0.1)))
    zp("y1z", 0, 255)
    nodes.append(helper.make_node("QLinearConv", ["q0", "xs", "xz", "w1", "w1s", "w1z", "y1s", "y1z", "b1"], ["q1"],
                                  name="conv_grouped", group=G, kernel_shape=[K, K], strides=[stride, stride],
                                  pads=list(pad), dilations=[dil, dil]))
    # depthwise 3x3, stride 1, same padding (keeps the shape for the residual add)
    w2 = rng.integers(-128, 128, size=(Co, 1, 3, 3)).astype(np.int8)
    inits += [_c("w2", w2), _c("w2s", rng.uniform(0.001, 0.02, Co).astype(np.float32)),
              _c("w2z", np.zeros(Co, np.int8)), _c("b2", rng.integers(-3000, 3000, Co).astype(np.int32))]
    scale("y2s", 0.02, 0.08)
    zp("y2z")
    nodes.append(helper.make_node("QLinearConv", ["q1", "y1s", "y1z", "w2", "w2s", "w2z", "y2s", "y2z", "b2"], ["q2"],
                                  name="conv_depthwise", group=Co, kernel_shape=[3, 3], strides=[1, 1],
                                  pads=[1, 1, 1, 1]))
    scale("y3s", 0.03, 0.1)
    zp("y3z")
    nodes.append(helper.make_node("QLinearAdd", ["q1", "y1s", "y1z", "q2", "y2s", "y2z", "y3s", "y3z"], ["q3"],
                                  name="add", domain="com.microsoft"))
    scale("y4s", 0.005, 0.05)
    zp("y4z")
    gap_in = ["q2", "y2s", "y2z"] if gap_reads_conv else ["q3", "y3s", "y3z"]
    nodes.append(helper.make_node("QLinearGlobalAveragePool", gap_in + ["y4s", "y4z"], ["q4"],
                                  name="gap", domain="com.microsoft", channels_last=0))
    inits.append(_c("shape", np.array([1, -1], np.int64)))
    nodes.append(helper.make_node("Reshape", ["q4", "shape"], ["q5"], name="flatten"))
    wm = rng.integers(-128, 128, size=(Co, n_out)).astype(np.int8)
    inits += [_c("wm", wm), _c("wms", rng.uniform(0.001, 0.02, n_out).astype(np.float32)),
              _c("wmz", np.zeros(n_out, np.int8))]
    scale("y6s", 0.01, 0.05)
    zp("y6z")
    nodes.append(helper.make_node("QLinearMatMul", ["q5", "y4s", "y4z", "wm", "wms", "wmz", "y6s", "y6z"], ["q6"],
                                  name="matmul"))
    inits += [_c("bc", rng.integers(0, 256, n_out).astype(np.uint8)), _c("bcs", f32(rng.uniform(0.005, 0.02))),
              _c("bcz", np.uint8(rng.integers(0, 256)))]
    scale("y7s", 0.02, 0.1)
    zp("y7z")
    nodes.append(helper.make_node("QLinearAdd", ["q6", "y6s", "y6z", "bc", "bcs", "bcz", "y7s", "y7z"], ["q7"],
                                  name="add_const", domain="com.microsoft"))
    nodes.append(helper.make_node("DequantizeLinear", ["q7", "y7s", "y7z"], ["output"], name="dequant"))
    graph = helper.make_graph(nodes, "synth", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, Ci, H, W])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n_out])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])


def make_input(seed: int, shape, x_scale=None) -> np.ndarray:
    """Random float32 input; with a power-of-two ``x_scale`` a third of the values are exact rounding ties."""
    rng = np.random.default_rng(seed + 1000)
    x = rng.normal(0, 1.5, size=shape).astype(np.float32)
    if x_scale is not None:
        k = rng.integers(-150, 150, size=shape)
        ties = ((k + 0.5) * x_scale).astype(np.float32)
        mask = rng.random(shape) < 0.33
        x = np.where(mask, ties, x).astype(np.float32)
    return x


class Builder:
    """A small QOperator ONNX graph under construction, node by node (for the parity tests and the fuzzer,
    `benchmarks/parity_fuzz.py`). ``cur`` is the current runtime tensor: its name, logical (ONNX) shape, scale,
    zero point; ``keep`` records earlier 4-D tensors by shape (residual ADD partners)."""

    def __init__(self, shape=(1, 3, 4, 4), opset=21):
        self.nodes, self.inits, self.opset = [], [], opset
        self.in_shape = tuple(shape)
        self.cur = ("input", tuple(shape), None, None)
        self.keep: list[tuple] = []

    def c(self, arr) -> str:
        name = f"k{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op_type, ins, domain="", **attrs) -> str:
        out = f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, ins, [out], name=f"{op_type}_{len(self.nodes)}", domain=domain,
                                           **attrs))
        return out

    def quantize(self, scale, zp, **attrs):
        name, shape, _, _ = self.cur
        ins = [name, self.c(np.float32(scale))] + ([self.c(zp)] if zp is not None else [])
        dt = np.asarray(zp).dtype if zp is not None else (np.int8 if attrs.get("output_dtype") == TensorProto.INT8
                                                            else np.uint8)
        self.cur = (self.node("QuantizeLinear", ins, **attrs), shape, np.float32(scale), np.asarray(zp if zp is not None else 0, dt))
        return self

    def dequantize(self):
        name, shape, s, z = self.cur
        self.cur = (self.node("DequantizeLinear", [name, self.c(s), self.c(z)]), shape, None, None)
        return self

    def add_const(self, b, b_scale, b_zp, y_scale, y_zp):
        name, shape, s, z = self.cur
        out = self.node("QLinearAdd", [name, self.c(s), self.c(z), self.c(b), self.c(np.float32(b_scale)),
                                       self.c(b_zp), self.c(np.float32(y_scale)), self.c(y_zp)], domain="com.microsoft")
        self.cur = (out, shape, np.float32(y_scale), np.asarray(y_zp))
        return self

    def add(self, other, y_scale, y_zp):
        name, shape, s, z = self.cur
        oname, oshape, os_, oz = other
        out = self.node("QLinearAdd", [name, self.c(s), self.c(z), oname, self.c(os_), self.c(oz),
                                       self.c(np.float32(y_scale)), self.c(y_zp)], domain="com.microsoft")
        self.cur = (out, shape, np.float32(y_scale), np.asarray(y_zp))
        return self

    def conv(self, w, w_scale, w_zp, bias, y_scale, y_zp, **attrs):
        name, (N, C, H, W), s, z = self.cur
        Co, _, KH, KW = w.shape
        st, pd, dl = attrs.get("strides", [1, 1]), attrs.get("pads", [0, 0, 0, 0]), attrs.get("dilations", [1, 1])
        OH = (H + pd[0] + pd[2] - dl[0] * (KH - 1) - 1) // st[0] + 1
        OW = (W + pd[1] + pd[3] - dl[1] * (KW - 1) - 1) // st[1] + 1
        ins = [name, self.c(s), self.c(z), self.c(w), self.c(np.asarray(w_scale, np.float32)), self.c(w_zp),
               self.c(np.float32(y_scale)), self.c(y_zp)] + ([self.c(bias)] if bias is not None else [])
        out = self.node("QLinearConv", ins, kernel_shape=[KH, KW], **attrs)
        self.cur = (out, (N, Co, OH, OW), np.float32(y_scale), np.asarray(y_zp))
        return self

    def gap(self, y_scale, y_zp):
        name, (N, C, H, W), s, z = self.cur
        out = self.node("QLinearGlobalAveragePool", [name, self.c(s), self.c(z), self.c(np.float32(y_scale)),
                                                     self.c(y_zp)], domain="com.microsoft", channels_last=0)
        self.cur = (out, (N, C, 1, 1), np.float32(y_scale), np.asarray(y_zp))
        return self

    def matmul(self, b, b_scale, b_zp, y_scale, y_zp):
        name, (M, K), s, z = self.cur
        out = self.node("QLinearMatMul", [name, self.c(s), self.c(z), self.c(b), self.c(np.asarray(b_scale, np.float32)),
                                          self.c(b_zp), self.c(np.float32(y_scale)), self.c(y_zp)])
        self.cur = (out, (M, b.shape[1]), np.float32(y_scale), np.asarray(y_zp))
        return self

    def reshape(self, shape):
        name, old, s, z = self.cur
        tgt = tuple(int(d) for d in shape)
        self.cur = (self.node("Reshape", [name, self.c(np.array(tgt, np.int64))]), tgt, s, z)
        return self

    def model(self) -> onnx.ModelProto:
        """The model: input ``input`` float32, output the current tensor (dequantized if it is quantized)."""
        if self.cur[2] is not None:
            self.dequantize()
        self.nodes[-1].output[0] = "output"
        g = helper.make_graph(self.nodes, "parity", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                  list(self.in_shape))],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(self.cur[1]))],
                              self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset),
                                                   helper.make_opsetid("com.microsoft", 1)], ir_version=10)
