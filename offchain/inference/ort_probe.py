"""Does this CPU run onnxruntime's u8 x s8 int8 kernels exactly? (`int8_kernels_exact`) Does its QLinearAdd compute
the canonical ADD? (`qlinear_add_exact`)

onnxruntime's QLinearConv / QLinearMatMul with uint8 activations and int8 weights dispatch, per CPU, to kernels
that accumulate exactly (AVX-512 VNNI / AVX-VNNI ``vpdpbusd``, AMX ``tdpbusd``: u8 x s8 products straight into
int32) or to the AVX2 kernel whose ``vpmaddubsw`` saturates the sum of two adjacent products to int16 (the shared
notes, xce.md). The probe runs the kernel families `offchain.inference.ort_native` uses (3x3 convolution with
padding, pointwise convolution, depthwise convolution, matrix product) on inputs built to saturate 16-bit pair sums
(activations near 255, weights near +-127) and compares every output byte with the exact integer result
requantized as the canonical RQF. True only if every byte agrees: then int8 weights may be kept as they are;
otherwise `offchain.inference.ort_native` re-expresses them as uint8 (u8 x u8 kernels, exact on every CPU).
The answer is computed once per process.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from onnx import TensorProto, helper, numpy_helper

CASES = (  # (Ci, Co, kernel, group, pad)
    (64, 32, 3, 1, 1),
    (96, 64, 1, 1, 0),
    (64, 64, 3, 64, 1),
)
SIDE = 6
MATMUL_K, MATMUL_N = 256, 32


def _inputs(rng, shape):
    return rng.integers(240, 256, shape, dtype=np.uint8)


def _weights(rng, shape):
    w = rng.integers(112, 128, shape).astype(np.int16) * rng.choice([-1, 1], shape)
    return w.clip(-128, 127).astype(np.int8)


def _rqf(acc: np.ndarray, scale: np.ndarray, zp: int) -> np.ndarray:
    """sat(zp + rne(fl32(fl32(acc) * S))), uint8."""
    y = np.rint((acc.astype(np.float32) * scale.astype(np.float32)).astype(np.float32)).astype(np.int64) + zp
    return y.clip(0, 255).astype(np.uint8)


def _conv_ref(x, w, group, pad):
    """Exact int64 NHWC convolution, stride 1: x [1,H,W,Ci] uint8, w [Co, Ci/G, K, K] int8 -> [1,H,W,Co]."""
    _, H, W, Ci = x.shape
    Co, Cig, K, _ = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    OH, OW = H + 2 * pad - K + 1, W + 2 * pad - K + 1
    out = np.zeros((1, OH, OW, Co), np.int64)
    Cog = Co // group
    for kh in range(K):
        for kw in range(K):
            patch = xp[:, kh:kh + OH, kw:kw + OW, :].reshape(1, OH, OW, group, Cig)
            wk = w[:, :, kh, kw].astype(np.int64).reshape(group, Cog, Cig)
            out += np.einsum("nhwgc,goc->nhwgo", patch, wk).reshape(1, OH, OW, Co)
    return out


def _model(rng):
    nodes, inits, outs, refs = [], [], [], []

    def c(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    one = c("one", np.array(1.0, np.float32))
    zero = c("zero", np.array(0, np.uint8))
    yz = c("yz", np.array(128, np.uint8))
    feeds = {}
    for i, (Ci, Co, K, G, pad) in enumerate(CASES):
        x = _inputs(rng, (1, SIDE, SIDE, Ci))
        w = _weights(rng, (Co, Ci // G, K, K))
        acc = _conv_ref(x, w, G, pad)
        S = np.full(Co, 2.0 ** -int(np.log2(max(1, np.abs(acc).max())) - 6), np.float32)
        feeds[f"x{i}"] = x
        nodes.append(helper.make_node(
            "QLinearConv", [f"x{i}", one, zero, c(f"w{i}", w), c(f"S{i}", S), c(f"wz{i}", np.array(0, np.int8)),
                            one, yz], [f"y{i}"], domain="com.microsoft", channels_last=1, group=G,
            kernel_shape=[K, K], pads=[pad] * 4))
        outs.append(f"y{i}")
        refs.append(_rqf(acc, S, 128))
    a = _inputs(rng, (4, MATMUL_K))
    b = _weights(rng, (MATMUL_K, MATMUL_N))
    acc = a.astype(np.int64) @ b.astype(np.int64)
    S = np.full(MATMUL_N, 2.0 ** -int(np.log2(np.abs(acc).max()) - 6), np.float32)
    feeds["a"] = a
    nodes.append(helper.make_node("QLinearMatMul", ["a", one, zero, c("b", b), c("Sb", S),
                                                    c("bz", np.zeros(MATMUL_N, np.int8)), one, yz], ["ym"]))
    outs.append("ym")
    refs.append(_rqf(acc, S, 128))
    g = helper.make_graph(
        nodes, "probe", [helper.make_tensor_value_info(k, TensorProto.UINT8, list(v.shape)) for k, v in feeds.items()],
        [helper.make_tensor_value_info(o, TensorProto.UINT8, None) for o in outs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                          ir_version=8)
    return m, feeds, refs


@lru_cache(maxsize=None)
def int8_kernels_exact(threads: int = 0) -> bool:
    """True iff onnxruntime's u8 x s8 QLinearConv / QLinearMatMul kernels return the exact, canonically
    requantized bytes on this CPU for inputs that saturate 16-bit pair sums (seeded, several kernel shapes)."""
    import onnxruntime as ort

    rng = np.random.default_rng(20261122)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = threads
    for _ in range(2):
        m, feeds, refs = _model(rng)
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        got = sess.run(None, feeds)
        if not all(np.array_equal(g.reshape(r.shape), r) for g, r in zip(got, refs)):
            return False
    return True


@lru_cache(maxsize=None)
def qlinear_add_exact(rac_bits: int, rbc_bits: int, a_zp: int, b_zp: int, c_zp: int, signed: int,
                      fixed_bits: int) -> bool:
    """True iff onnxruntime's com.microsoft QLinearAdd with A_scale = rAC, B_scale = rBC, C_scale = 1 and these
    zero points returns `offchain.inference.definitions.add_def` on this CPU for all 65536 pairs of input values
    (the canonical ADD with these float32 parameters; ``fixed_bits`` is the one the loader derived). Both inputs
    of the same shape, as `offchain.inference.ort_native` emits it. Cached per parameter set."""
    import onnxruntime as ort

    from .definitions import add_value_table

    dt = np.int8 if signed else np.uint8
    tp = TensorProto.INT8 if signed else TensorProto.UINT8
    lo = -128 if signed else 0
    vals = np.arange(256) + lo
    a = np.repeat(vals, 256).astype(dt).reshape(1, -1)
    b = np.tile(vals, 256).astype(dt).reshape(1, -1)
    f32 = lambda bits: np.array(bits, np.uint32).view(np.float32)  # noqa: E731
    inits = [numpy_helper.from_array(f32(rac_bits), "sa"), numpy_helper.from_array(f32(rbc_bits), "sb"),
             numpy_helper.from_array(np.array(1.0, np.float32), "sc")]
    inits += [numpy_helper.from_array(np.array(z, dt), n) for z, n in ((a_zp, "za"), (b_zp, "zb"), (c_zp, "zc"))]
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"],
                            domain="com.microsoft")
    g = helper.make_graph([node], "add_probe", [helper.make_tensor_value_info("a", tp, list(a.shape)),
                                                helper.make_tensor_value_info("b", tp, list(b.shape))],
                          [helper.make_tensor_value_info("c", tp, list(a.shape))], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                          ir_version=8)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"a": a, "b": b})[0].reshape(-1)
    return bool(np.array_equal(got, add_value_table(rac_bits, rbc_bits, fixed_bits, signed, signed, signed)))


def _quantize_candidates(scale: np.float32, zp: int, signed: int) -> np.ndarray:
    """float32 inputs that decide whether a QuantizeLinear computes ``sat(zp + rne(fl32(x / scale)))``: for every
    quotient k across the output range (and a little beyond), the values nearest the rounding ties
    ``(k +- 1/2) * scale`` and the integers ``k * scale`` (+-4 ulps), then zeros, subnormals, the largest finite
    floats and seeded random values over several magnitudes."""
    lo, hi = (-128, 127) if signed else (0, 255)
    k = np.arange(lo - zp - 3, hi - zp + 4, dtype=np.float64)
    centres = np.concatenate([(k - 0.5) * float(scale), k * float(scale), (k + 0.5) * float(scale)])
    c = centres.astype(np.float32)
    steps = np.arange(-4, 5)
    up, down = np.float32(np.inf), np.float32(-np.inf)
    near = [c]
    for s in steps[steps != 0]:
        v = c.copy()
        for _ in range(abs(int(s))):
            v = np.nextafter(v, up if s > 0 else down)
        near.append(v)
    rng = np.random.default_rng(20261122)
    extra = [np.array([0.0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 3.4e38, -3.4e38], np.float32),
             (rng.standard_normal(512) * float(scale) * 300).astype(np.float32),
             (rng.standard_normal(256) * 1e6).astype(np.float32)]
    with np.errstate(over="ignore"):
        return np.concatenate(near + extra).astype(np.float32)


@lru_cache(maxsize=None)
def quantize_linear_exact(scale_bits: int, zp: int, signed: int) -> bool:
    """True iff onnxruntime's QuantizeLinear (opset 13, per tensor) with this float32 scale (its bits) and zero
    point returns `offchain.inference.definitions.quantize_def`'s bytes ``sat(zp + rne(fl32(x / scale)))`` on this
    CPU for `_quantize_candidates` (the values next to every rounding tie of the output range, and extremes), both
    through its vector loop (one long tensor, at 4 alignments) and through its remainder path (tensors of 3
    elements). NaN is left out: the canonical graph never quantizes one (inputs are checked finite). Cached."""
    import onnxruntime as ort

    scale = np.array(scale_bits, np.uint32).view(np.float32)
    if not np.isfinite(scale) or scale <= 0:
        return False
    dt = np.int8 if signed else np.uint8
    v = _quantize_candidates(scale, zp, signed)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        ref = np.clip(np.rint(v / scale).astype(np.float64) + zp, -128 if signed else 0, 127 if signed else 255)
    ref = ref.astype(dt)
    node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    g = helper.make_graph([node], "quantize_probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("y", TensorProto.INT8 if signed else TensorProto.UINT8,
                                                         None)],
                          [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(np.array(zp, dt), "z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    for shift in range(4):
        got = sess.run(None, {"x": np.concatenate([np.zeros(shift, np.float32), v])})[0][shift:]
        if not np.array_equal(got, ref):
            return False
    n3 = len(v) // 3 * 3
    tails = np.concatenate([sess.run(None, {"x": v[i:i + 3]})[0] for i in range(0, n3, 3)])
    return bool(np.array_equal(tails, ref[:n3]) and np.array_equal(sess.run(None, {"x": v[n3:]})[0], ref[n3:]))
