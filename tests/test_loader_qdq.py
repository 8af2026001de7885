"""The loader's coverage beyond convolution and matrix product, on small synthetic models run against onnxruntime:
QGemm with bias and transB, auto_pad, Pad, MaxPool with ceil_mode, Reshape that reorders the committed bytes
(TRANSPOSE), QLinearConcat of different scales (requantizing LUTs + CONCAT), QLinearMul per channel,
QLinearLeakyRelu / QLinearSigmoid (LUT), QLinearAveragePool, the float sections of QDQ models (Sigmoid, ReduceMean,
a final float Softmax), and unsupported models named by operator, node and reason.

Exact operators must equal onnxruntime byte for byte; the table, softmax, average and requantization operators are
exact rationals where onnxruntime computes in float32, so they may differ by one step at near-ties: those tests
bound the difference to one quantization step and count it.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from offchain.inference.graph import ModelError, UnsupportedOperator
from offchain.inference.loader import lower
from tests.bundle import run_graph
from tests.synth import Builder

RNG = np.random.default_rng(5)


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"input": x})[0]


def _ours(model, x):
    g = lower(model)
    return g, np.asarray(run_graph(g, x)[-1]).reshape(-1)


def _kinds(g) -> list[str]:
    return [op.kind.name for op in g.ops]


def _conv(b: Builder, co: int, y_scale: float, y_zp: int = 128, k: int = 3, **attrs):
    ci = b.cur[1][1]
    w = RNG.integers(-60, 60, size=(co, ci, k, k)).astype(np.int8)
    return b.conv(w, np.float32(0.01), np.int8(0), RNG.integers(-300, 300, co).astype(np.int32), y_scale,
                  np.uint8(y_zp), **attrs)


def _input(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def test_qgemm_bias_transb_and_auto_pad():
    b = Builder((1, 3, 7, 7))
    b.quantize(0.01, np.uint8(128))
    _conv(b, 4, 0.05, auto_pad="SAME_LOWER", strides=[2, 2])
    name, shape, s, z = b.cur
    b.reshape((1, 64))
    name, shape, s, z = b.cur
    w = RNG.integers(-100, 100, size=(5, 64)).astype(np.int8)            # [N, K]: transB = 1
    out = b.node("QGemm", [name, b.c(s), b.c(z), b.c(w), b.c(np.float32(0.02)), b.c(np.int8(0)),
                           b.c(RNG.integers(-2000, 2000, 5).astype(np.int32)), b.c(np.float32(0.1)),
                           b.c(np.uint8(100))], domain="com.microsoft", transB=1)
    b.cur = (out, (1, 5), np.float32(0.1), np.asarray(np.uint8(100)))
    m = b.model()
    x = _input((1, 3, 7, 7))
    g, ours = _ours(m, x)
    assert _kinds(g) == ["QUANTIZE", "CONV", "TRANSPOSE", "MATMUL", "DEQUANTIZE"]
    assert (g.ops[3].table["bias"] != 0).any()
    np.testing.assert_array_equal(ours, _ort(m, x).reshape(-1))


def test_pad_maxpool_ceil_mode_and_flatten_reorder():
    b = Builder((1, 2, 9, 9))
    b.quantize(0.01, np.uint8(120))
    name, shape, s, z = b.cur
    padded = b.node("Pad", [name, b.c(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)), b.c(np.uint8(120))])
    pooled = b.node("MaxPool", [padded], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    b.cur = (pooled, (1, 2, 6, 6), s, z)
    b.reshape((1, 72))
    m = b.model()
    x = _input((1, 2, 9, 9), 1)
    g, ours = _ours(m, x)
    assert _kinds(g) == ["QUANTIZE", "PAD", "MAXPOOL", "TRANSPOSE", "DEQUANTIZE"]
    np.testing.assert_array_equal(ours, _ort(m, x).reshape(-1))


def test_conv_1d():
    """A 1-D QLinearConv is a 2-D CONV with H = 1 between TRANSPOSEs; byte-identical to onnxruntime."""
    rng = np.random.default_rng(1)
    b = Builder((2, 3, 11))
    b.quantize(0.01, np.uint8(128))
    name, shape, s, z = b.cur
    w = rng.integers(-60, 60, size=(4, 3, 3)).astype(np.int8)
    out = b.node("QLinearConv", [name, b.c(s), b.c(z), b.c(w), b.c(np.float32(0.01)), b.c(np.int8(0)),
                                 b.c(np.float32(0.05)), b.c(np.uint8(100)),
                                 b.c(rng.integers(-200, 200, 4).astype(np.int32))],
                 kernel_shape=[3], strides=[2], pads=[1, 2])
    b.cur = (out, (2, 4, 6), np.float32(0.05), np.asarray(np.uint8(100)))
    m = b.model()
    x = rng.uniform(-1, 1, (2, 3, 11)).astype(np.float32)
    g, ours = _ours(m, x)
    assert _kinds(g) == ["QUANTIZE", "TRANSPOSE", "CONV", "TRANSPOSE", "DEQUANTIZE"]
    np.testing.assert_array_equal(ours, _ort(m, x).reshape(-1))


def _close(ours, ref, step, what):
    """At most one quantization step apart; returns the share of differing elements. ``ours`` is committed
    (NHWC for a 4-D output), ``ref`` onnxruntime's (NCHW)."""
    if ref.ndim == 4:
        ref = ref.transpose(0, 2, 3, 1)
    ref = ref.reshape(-1)
    assert np.abs(ours - ref).max() <= step * 1.001, what
    return float((ours != ref).mean())


def _concat_model(tail: str | None):
    """Two convolutions of different output scales -> QLinearConcat (scale 0.05, zero point 120) -> ``tail``
    (QLinearMul by a per-channel constant, QLinearLeakyRelu, QLinearSigmoid, QLinearAveragePool, or none)."""
    rng = np.random.default_rng(5)
    b = Builder((1, 3, 8, 8))
    b.quantize(0.01, np.uint8(128))
    x0 = b.cur
    for co, ys, yz in ((2, 0.04, 128), (3, 0.07, 110)):
        b.cur = x0
        w = rng.integers(-60, 60, size=(co, 3, 3, 3)).astype(np.int8)
        b.conv(w, np.float32(0.01), np.int8(0), rng.integers(-300, 300, co).astype(np.int32), ys, np.uint8(yz),
               pads=[1, 1, 1, 1])
        x0 = x0 if co == 3 else x0
        if co == 2:
            a = b.cur
    c = b.cur
    s, z = np.float32(0.05), np.uint8(120)
    t = b.node("QLinearConcat", [b.c(s), b.c(z), a[0], b.c(a[2]), b.c(a[3]), c[0], b.c(c[2]), b.c(c[3])],
               domain="com.microsoft", axis=1)
    shape, ys, yz = (1, 5, 8, 8), np.float32(0.05), np.uint8(120)
    if tail == "mul":
        ch = rng.integers(100, 200, size=(1, 5, 1, 1)).astype(np.uint8)
        ys, yz = np.float32(0.03), np.uint8(128)
        t = b.node("QLinearMul", [t, b.c(s), b.c(z), b.c(ch), b.c(np.float32(0.01)), b.c(np.uint8(150)), b.c(ys),
                                  b.c(yz)], domain="com.microsoft")
    elif tail == "leaky":
        ys, yz = np.float32(0.02), np.uint8(100)
        t = b.node("QLinearLeakyRelu", [t, b.c(s), b.c(z), b.c(ys), b.c(yz)], domain="com.microsoft", alpha=0.1)
    elif tail == "sigmoid":
        ys, yz = np.float32(1 / 256), np.uint8(0)
        t = b.node("QLinearSigmoid", [t, b.c(s), b.c(z), b.c(ys), b.c(yz)], domain="com.microsoft")
    elif tail == "avgpool":
        ys, yz, shape = np.float32(0.04), np.uint8(3), (1, 5, 4, 4)
        t = b.node("QLinearAveragePool", [t, b.c(s), b.c(z), b.c(ys), b.c(yz)], domain="com.microsoft",
                   kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0)
    b.cur = (t, shape, ys, np.asarray(yz))
    return b.model(), float(ys)


TAILS = {None: "CONCAT", "mul": "MUL", "leaky": "LUT", "sigmoid": "LUT", "avgpool": "AVGPOOL"}


@pytest.mark.parametrize("tail", list(TAILS), ids=[str(t) for t in TAILS])
def test_concat_of_different_scales_then_mul_lut_avgpool(tail):
    """QLinearConcat of two scales = two requantizing LUTs + CONCAT, byte-identical to onnxruntime; each operator
    after it within one quantization step of onnxruntime's float32 kernels."""
    m, step = _concat_model(tail)
    g = lower(m)
    assert _kinds(g)[:6] == ["QUANTIZE", "CONV", "CONV", "LUT", "LUT", "CONCAT"] and _kinds(g)[-2] == TAILS[tail]
    for seed in range(3):
        x = _input((1, 3, 8, 8), seed)
        share = _close(np.asarray(run_graph(g, x)[-1]).reshape(-1), _ort(m, x), step, f"{tail}, seed {seed}")
        if tail is None:
            assert share == 0, f"{tail}: {share:.1%} differ"


def _qdq_model():
    """A QDQ model with float sections: DQ -> Sigmoid -> Q, DQ -> ReduceMean(H, W) -> Q, DQ -> Softmax (output)."""
    nodes, inits = [], []

    def c(name, v):
        inits.append(onnx.numpy_helper.from_array(np.asarray(v), name))
        return name

    c("s", np.float32(0.02)), c("z", np.uint8(128)), c("s2", np.float32(1 / 256)), c("z2", np.uint8(0))
    c("s3", np.float32(0.004)), c("z3", np.uint8(10)), c("axes", np.array([2, 3], np.int64))
    nodes += [helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"], name="q_in"),
              helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"], name="dq1"),
              helper.make_node("Sigmoid", ["d"], ["sg"], name="sigmoid"),
              helper.make_node("QuantizeLinear", ["sg", "s2", "z2"], ["q2"], name="q_sig"),
              helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["d2"], name="dq2"),
              helper.make_node("ReduceMean", ["d2", "axes"], ["m"], name="mean", keepdims=0),
              helper.make_node("QuantizeLinear", ["m", "s3", "z3"], ["q3"], name="q_mean"),
              helper.make_node("DequantizeLinear", ["q3", "s3", "z3"], ["d3"], name="dq3"),
              helper.make_node("Softmax", ["d3"], ["output"], name="softmax", axis=-1)]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 6, 5, 5])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2, 6])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def test_qdq_float_sections():
    m = _qdq_model()
    g = lower(m)
    assert _kinds(g) == ["QUANTIZE", "LUT", "GAP", "SOFTMAX", "DEQUANTIZE"]
    x = _input((2, 6, 5, 5), 3) * 3
    ours = np.asarray(run_graph(g, x)[-1]).reshape(2, 6)
    ref = _ort(m, x)
    assert np.abs(ours - ref).max() <= 1 / 256 + 1e-6       # the output softmax is quantized to 1/256
    assert (ours.argmax(1) == ref.argmax(1)).all()


def test_unsupported_models_name_operator_node_and_reason():
    b = Builder((1, 2, 4, 4))
    b.quantize(0.01, np.uint8(128))
    name, shape, s, z = b.cur
    b.cur = (b.node("Resize", [name, "", b.c(np.array([1, 1, 2, 2], np.float32))]), (1, 2, 8, 8), s, z)
    with pytest.raises(UnsupportedOperator) as e:
        lower(b.model())
    assert e.value.op_type == "Resize" and e.value.node == "Resize_1"
    b = Builder((1, 2, 4, 4))
    name = b.cur[0]
    b.cur = (b.node("QuantizeLinear", [name, b.c(np.full(2, 0.1, np.float32)), b.c(np.zeros(2, np.uint8))],
                    axis=1), (1, 2, 4, 4), np.float32(0.1), np.asarray(np.uint8(0)))
    with pytest.raises(UnsupportedOperator, match="per-axis quantization of an activation"):
        lower(b.model())
    b = Builder((1, 2, 4, 4))
    b.quantize(0.01, np.uint8(128)).dequantize()
    name = b.cur[0]
    b.cur = (b.node("Conv", [name, b.c(np.ones((2, 2, 1, 1), np.float32))]), (1, 2, 4, 4), None, None)
    with pytest.raises(UnsupportedOperator, match="'Conv' .*not fused"):
        lower(b.model())


def test_float_model_is_told_to_quantize():
    b = Builder((1, 2, 4, 4))
    b.cur = (b.node("Conv", [b.cur[0], b.c(np.ones((2, 2, 1, 1), np.float32))]), (1, 2, 4, 4), None, None)
    with pytest.raises(ModelError, match="pinpoint quantize"):
        lower(b.model())
