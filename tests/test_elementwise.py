"""Canonical operators 10-14 (LUT, CONCAT, TRANSPOSE, MUL, SOFTMAX): the Python definitions
(`offchain/inference/elementwise.py` DEFINITIONS) against the fast path (FAST), against onnxruntime (agreement
rates printed), and against the Solidity one-step (`contracts/inference/Elementwise.sol`) element by element; the
descriptor rules (`violation` against `Elementwise.check`); forged openings; measured gas against the cost model.

``python -m tests.test_elementwise`` prints the worst measured one-step gas and calldata per case (anvil)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from eth_abi import encode as abi_encode
from onnx import TensorProto, helper, numpy_helper

from offchain.inference import elementwise as E
from offchain.inference.graph import PARAM_NAMES, Kind, Op, TensorInfo
from offchain.inference.merkle import tensor_tree
from protocol.chain.connection import ChainError

I8, U8 = np.dtype(np.int8), np.dtype(np.uint8)


def _rand(rng, shape, dt, edge=False):
    lo, hi = (-128, 128) if dt == I8 else (0, 256)
    x = rng.integers(lo, hi, shape)
    if edge:  # the extremes, often
        x.reshape(-1)[::3] = lo
        x.reshape(-1)[1::5] = hi - 1
    return x.astype(dt)


def _q(rng, dt):
    return np.float32(rng.uniform(0.002, 0.2)), (dt.type(rng.integers(-20, 20)) if dt == I8 else
                                                  dt.type(rng.integers(50, 200)))


def cases(seed: int) -> list[tuple[Op, list[np.ndarray]]]:
    """One operator of every kind and flavour with its runtime inputs, random from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for dx, dy in ((I8, I8), (U8, U8), (I8, U8)):
        shape = tuple(int(v) for v in rng.integers(1, 9, 4))
        x = TensorInfo(shape, dx)
        (xs, xz), (ys, yz) = _q(rng, dx), _q(rng, dy)
        for fn in ("sigmoid", "tanh", "hardswish", ("leaky_relu", 0.1), ("clip", -0.5, 0.7)):
            out.append((E.lut_op("lut", 1, x, E.lut_table(fn, xs, xz, dx == I8, ys, yz, dy == I8)),
                        [_rand(rng, shape, dx, True)]))
        out.append((E.lut_op("rq", 1, x, E.requant_table(xs, xz, dx == I8, np.float32(xs * 3), yz, dy == I8)),
                    [_rand(rng, shape, dx)]))
        out.append((E.transpose_op("t", 1, x, (0, 3, 1, 2)), [_rand(rng, shape, dx)]))
        out.append((E.transpose_op("t3", 1, TensorInfo(shape[1:], dx), (2, 0, 1)), [_rand(rng, shape[1:], dx)]))
        parts = [TensorInfo(shape[:2] + (int(rng.integers(1, 6)),) + shape[3:], dx)
                 for _ in range(int(rng.integers(1, 5)))]
        out.append((E.concat_op("c", list(range(1, len(parts) + 1)), parts, 2),
                    [_rand(rng, p.shape, dx) for p in parts]))
        qa, qb, qc = _q(rng, dx), _q(rng, dy), _q(rng, dy)
        for bshape, const in (((shape[-1],), True), (shape, False), (shape[2:], False)):
            if const:
                b = _rand(rng, bshape, dy)
                op = E.mul_op("mc", 1, x, b, qa, qb, qc)
                out.append((op, [_rand(rng, shape, dx, True)]))
            else:
                op = E.mul_op("m", 1, x, (2, TensorInfo(bshape, dy)), qa, qb, (np.float32(qc[0] / 50), qc[1]))
                out.append((op, [_rand(rng, shape, dx, True), _rand(rng, bshape, dy, True)]))
        sx = np.float32(rng.uniform(0.02, 0.3))
        sm = TensorInfo((3, int(rng.integers(2, 60))), dx)
        out.append((E.softmax_op("s", 1, sm, sx, np.float32(1 / 256), dy.type(-128 if dy == I8 else 0)),
                    [_rand(rng, sm.shape, dx)]))
    return out


def _ties_mul() -> tuple[Op, list[np.ndarray]]:
    """Exact ties: scales powers of two, so p * a_scale * b_scale / c_scale = k + 1/2 often."""
    x = TensorInfo((4, 64), I8)
    op = E.mul_op("ties", 1, x, (2, TensorInfo((64,), I8)), (0.25, np.int8(0)), (0.5, np.int8(1)), (1.0, np.int8(-3)))
    rng = np.random.default_rng(7)
    return op, [_rand(rng, x.shape, I8), _rand(rng, (64,), I8)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_definitions_equal_fast(seed):
    saturated = 0
    for op, xs in cases(seed) + [_ties_mul()]:
        assert E.violation(op.kind, op.named(), len(op.inputs)) is None, op
        ref = E.DEFINITIONS[op.kind](op, *xs)
        fast = E.FAST[op.kind](op, *xs)
        assert ref.dtype == fast.dtype == op.out.dtype and ref.shape == op.out.shape
        assert ref.tobytes() == fast.tobytes(), (op.kind.name, op.name)
        if op.name == "m":  # c_scale / 50: products saturate
            saturated += int(np.isin(ref.view(np.uint8), (0, 127, 128, 255)).sum())
    assert saturated > 0


def test_mul_ties_round_half_to_even():
    op, (a, b) = _ties_mul()
    y = E.DEFINITIONS[Kind.MUL](op, a, b).astype(int).reshape(-1)
    exact = (a.astype(int).reshape(-1) * (np.tile(b.astype(int), 4) - 1)) * 0.125
    want = np.clip(-3 + np.round(exact), -128, 127)  # np.round: half to even
    assert (exact % 1 == 0.5).sum() > 10 and (y == want).all()


def test_tables_exact():
    t = E.lut_table("sigmoid", 0.5, 0, 1, 1 / 256, 0, 0)            # sigmoid(0) = 1/2 -> exactly 128
    assert t[0] == 128 and t[127] == 255 and t[128] == 0
    r = E.requant_table(0.5, 0, 1, 1.0, 0, 1)                     # x / 2: ties to even
    assert list(r[[1, 3, 5, 255, 253]].astype(int)) == [0, 2, 2, 0, -2]
    s = E.softmax_table(0.1)
    assert s[255] == 2 ** 31 and s.dtype == np.uint32 and (np.diff(s.astype(np.int64)) >= 0).all()
    assert abs(int(s[245]) - 2 ** 31 * np.exp(-1.0000000149)) <= 1                # x_scale is fl32(0.1)


@pytest.mark.parametrize("fn, ref", [
    ("sigmoid", lambda v: 1 / (1 + np.exp(-v))), ("tanh", np.tanh), ("relu", lambda v: np.maximum(v, 0)),
    ("hardswish", lambda v: v * np.clip(v + 3, 0, 6) / 6),
    (("leaky_relu", 0.1), lambda v: np.where(v >= 0, v, np.float32(0.1) * v)),
    (("clip", -0.5, 0.7), lambda v: np.clip(v, np.float32(-0.5), np.float32(0.7))),
    (("hardsigmoid", 0.2, 0.5), lambda v: np.clip(np.float32(0.2) * v + np.float32(0.5), 0, 1))])
def test_tables_match_float64(fn, ref):
    """The exact tables equal float64 evaluation + rne quantization except at near-ties (none expected here),
    and the callable form (float64 by definition) equals it exactly."""
    rng = np.random.default_rng(11)
    for dt in (I8, U8):
        (xs, xz), (ys, yz) = _q(rng, dt), _q(rng, dt)
        t = E.lut_table(fn, xs, xz, dt == I8, ys, yz, dt == I8)
        x = np.arange(256).astype(np.uint8).view(dt).astype(np.float64) - float(xz)
        want = np.clip(np.rint(ref(x * float(xs)) / float(ys)) + int(yz), *((-128, 127) if dt == I8 else (0, 255)))
        assert (t.astype(np.int64) == want).mean() >= 255 / 256
        assert (E.lut_table(ref, xs, xz, dt == I8, ys, yz, dt == I8).astype(np.int64) == want).all()


# ------------------------------------------------------------------------------------------------ onnxruntime
def _ms_model(node, inputs, inits, out_dt):
    g = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", out_dt, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                          ir_version=8)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _c(name, v):
    return numpy_helper.from_array(np.asarray(v), name)


def _vi(name, a):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)


def _rate(a, b) -> float:
    return float((a.reshape(-1) == b.reshape(-1)).mean())


def test_onnxruntime_agreement(capsys):
    """Agreement with onnxruntime's com.microsoft kernels (float32 inside) and Transpose; printed per operator.
    Transpose and CONCAT of one scale move bytes: exact. The tables and MUL are exact rationals where onnxruntime
    rounds in float32: they differ only at near-ties."""
    rng = np.random.default_rng(5)
    rates = {}
    for name, dt in (("sigmoid", I8), ("sigmoid", U8), ("leaky_relu", U8), ("leaky_relu", I8)):
        x = np.arange(256).astype(np.uint8).view(dt) if dt == I8 else np.arange(256, dtype=np.uint8)
        agree = []
        for _ in range(20):
            (xs, xz), (ys, yz) = _q(rng, dt), _q(rng, dt)
            ys = np.float32(1 / 256) if name == "sigmoid" else ys
            alpha = np.float32(rng.uniform(0.01, 0.3))
            fn = ("leaky_relu", alpha) if name == "leaky_relu" else "sigmoid"
            op = E.lut_op("l", 1, TensorInfo((256,), dt), E.lut_table(fn, xs, xz, dt == I8, ys, yz, dt == I8))
            kw = {"alpha": float(alpha)} if name == "leaky_relu" else {}
            node = helper.make_node("QLinearSigmoid" if name == "sigmoid" else "QLinearLeakyRelu",
                                    ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", **kw)
            s = _ms_model(node, [_vi("x", x)], [_c("xs", xs), _c("xz", xz), _c("ys", ys), _c("yz", yz)],
                          helper.np_dtype_to_tensor_dtype(dt))
            agree.append(_rate(E.FAST[Kind.LUT](op, x), s.run(None, {"x": x})[0]))
        rates[f"QLinear{name} {dt}"] = float(np.mean(agree))
    # MUL with per-channel broadcast
    agree = []
    for _ in range(20):
        dt = [I8, U8][int(rng.integers(2))]
        a, b = _rand(rng, (2, 4, 4, 16), dt, True), _rand(rng, (16,), dt, True)
        qa, qb, qc = _q(rng, dt), _q(rng, dt), _q(rng, dt)
        qc = (np.float32(qc[0] / 20), qc[1])
        op = E.mul_op("m", 1, TensorInfo(a.shape, dt), (2, TensorInfo(b.shape, dt)), qa, qb, qc)
        node = helper.make_node("QLinearMul", ["a", "as", "az", "b", "bs", "bz", "cs", "cz"], ["y"],
                                domain="com.microsoft")
        s = _ms_model(node, [_vi("a", a), _vi("b", b)], [_c("as", qa[0]), _c("az", qa[1]), _c("bs", qb[0]),
                      _c("bz", qb[1]), _c("cs", qc[0]), _c("cz", qc[1])], helper.np_dtype_to_tensor_dtype(dt))
        agree.append(_rate(E.FAST[Kind.MUL](op, a, b), s.run(None, {"a": a, "b": b})[0]))
    rates["QLinearMul"] = float(np.mean(agree))
    # QLinearConcat: requantizing LUTs then CONCAT
    agree = []
    for _ in range(20):
        dt = [I8, U8][int(rng.integers(2))]
        xs_ = [_rand(rng, (1, 3, 4, int(rng.integers(1, 6))), dt) for _ in range(3)]
        qs = [_q(rng, dt) for _ in range(4)]
        infos = [TensorInfo(x.shape, dt) for x in xs_]
        req = [E.FAST[Kind.LUT](E.lut_op("r", 1, i, E.requant_table(q[0], q[1], dt == I8, qs[3][0], qs[3][1],
                                                                      dt == I8)), x)
               for x, i, q in zip(xs_, infos, qs)]
        op = E.concat_op("c", [1, 2, 3], infos, 3)
        ins = ["ys", "yz"] + [n for i in range(3) for n in (f"x{i}", f"s{i}", f"z{i}")]
        node = helper.make_node("QLinearConcat", ins, ["y"], domain="com.microsoft", axis=3)
        inits = [_c("ys", qs[3][0]), _c("yz", qs[3][1])] + [c for i in range(3) for c in (_c(f"s{i}", qs[i][0]),
                                                                                          _c(f"z{i}", qs[i][1]))]
        s = _ms_model(node, [_vi(f"x{i}", x) for i, x in enumerate(xs_)], inits, helper.np_dtype_to_tensor_dtype(dt))
        agree.append(_rate(E.FAST[Kind.CONCAT](op, *req), s.run(None, {f"x{i}": x for i, x in enumerate(xs_)})[0]))
    rates["QLinearConcat"] = float(np.mean(agree))
    # Transpose (exact)
    x = _rand(rng, (2, 3, 4, 5), I8)
    node = helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])
    s = _ms_model(node, [_vi("x", x)], [], TensorProto.INT8)
    op = E.transpose_op("t", 1, TensorInfo(x.shape, I8), (0, 2, 3, 1))
    rates["Transpose"] = _rate(E.DEFINITIONS[Kind.TRANSPOSE](op, x), s.run(None, {"x": x})[0])
    # QLinearSoftmax and float Softmax + QuantizeLinear on random and on real logits (MobileNetV2 on the photos)
    rates.update(softmax_agreement(rng.normal(0, 3, (64, 1000)).astype(np.float32), "random"))
    real = real_logits()
    if real is not None:
        rates.update(softmax_agreement(real, "MobileNetV2"))
    with capsys.disabled():
        print("\nagreement with onnxruntime:", {k: round(v, 5) for k, v in rates.items()})
    assert rates["Transpose"] == 1.0
    assert min(v for k, v in rates.items() if k.startswith("QLinear")) > 0.98
    assert min(v for k, v in rates.items() if "float" in k) > 0.98


def real_logits(n: int = 40) -> np.ndarray | None:
    """Logits [n, 1000] of the bundle's fp32 MobileNetV2 on its first n ImageNet photos (None without the bundle)."""
    from offchain.inference.inputs import preprocess_image
    from tests.conftest import DATA, IMAGENET

    model = DATA / "models" / "imagenet" / "mobilenetv2-1.0_fp32_dequant.onnx"
    photos = sorted(IMAGENET.glob("*.JPEG"))[:n]
    if not model.exists() or not photos:
        return None
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: preprocess_image(p, 224, "torch")})[0].reshape(1, -1)
                           for p in photos]).astype(np.float32)


def softmax_agreement(logits: np.ndarray, label: str) -> dict[str, float]:
    """SOFTMAX against onnxruntime's QLinearSoftmax (uint8 in with zero point 128 and the scale of the largest
    logit, uint8 out with y_scale 1/256) and against float Softmax of the dequantized logits + QuantizeLinear
    (float32, rne); ``logits`` [rows, cols] float32. Rates over every element and over the elements where any of
    the three is non-zero."""
    xs = np.float32(np.abs(logits).max() / 127)
    x = np.clip(np.rint(logits / xs) + 128, 0, 255).astype(np.uint8)
    op = E.softmax_op("s", 1, TensorInfo(x.shape, U8), xs, np.float32(1 / 256), np.uint8(0))
    ours = E.FAST[Kind.SOFTMAX](op, x)
    node = helper.make_node("QLinearSoftmax", ["x", "xs", "xz", "ys", "yz"], ["y"], domain="com.microsoft", axis=-1,
                            opset=13)
    s = _ms_model(node, [_vi("x", x)], [_c("xs", xs), _c("xz", np.uint8(128)), _c("ys", np.float32(1 / 256)),
                                        _c("yz", np.uint8(0))], TensorProto.UINT8)
    theirs = s.run(None, {"x": x})[0]
    d = (x.astype(np.float32) - 128) * xs
    p = np.exp(d - d.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
    flt = np.clip(np.rint(p / np.float32(1 / 256)), 0, 255).astype(np.uint8)
    nz = (ours > 0) | (theirs > 0) | (flt > 0)
    return {f"QLinearSoftmax {label}": _rate(ours, theirs),
            f"QLinearSoftmax {label} non-zero": _rate(ours[nz], theirs[nz]),
            f"Softmax float+QuantizeLinear {label}": _rate(ours, flt),
            f"Softmax float+QuantizeLinear {label} non-zero": _rate(ours[nz], flt[nz])}


# ------------------------------------------------------------------------------------------------ Solidity
@pytest.fixture(scope="module")
def elementwise(anvil_url):
    from protocol.chain.connection import Chain

    chain = Chain(anvil_url)
    c, _ = chain.deploy("Elementwise")
    return chain, c


def openings(op: Op, xs: list[np.ndarray], e: int) -> list[tuple]:
    """`Elementwise.element`'s openings for element ``e`` (from `step_ranges`)."""
    trees = [tensor_tree(x) for x in xs]
    out = []
    for src, ranges in E.step_ranges(op, e):
        t = trees[src] if src >= 0 else op.trees.const
        idx = sorted({w for off, ln in ranges for w in range(off >> 5, ((off + ln - 1) >> 5) + 1)})
        out.append(([t.node(0, i) for i in idx], t.multiproof(idx)))
    return out


def _args(op, xs, e):
    return op.descriptor(), [tensor_tree(x).root for x in xs], e, openings(op, xs, e)


@pytest.mark.parametrize("seed", [1, 2])
def test_solidity_equals_python(elementwise, seed):
    chain, c = elementwise
    rng = np.random.default_rng(seed)
    for op, xs in cases(seed) + ([_ties_mul()] if seed == 1 else []):
        y = E.DEFINITIONS[op.kind](op, *xs).reshape(-1).view(np.uint8)
        n = y.size
        picks = sorted({0, n - 1, *(int(v) for v in rng.integers(0, n, 10))})
        for e in picks:
            got = chain.call(c.functions.element(*_args(op, xs, e)))
            assert got == int(y[e]), (op.kind.name, op.name, e)
        assert chain.call(c.functions.element(op.descriptor(), [tensor_tree(x).root for x in xs], n, [])) == 0
        assert chain.call(c.functions.check(op.descriptor())) == [True, n, 1]
        assert chain.call(c.functions.outputSize(op.descriptor())) == [n, 1]


def _desc(kind, inputs, params, const=bytes(32)):
    return abi_encode(["uint256", "uint256[]", "int256[]", "bytes32", "bytes32", "bytes32"],
                      [int(kind), list(inputs), list(params), bytes(32), bytes(32), const])


def bad_descriptors():
    """(kind, n_inputs, params) that break one rule each, next to valid ones."""
    ok = {Kind.LUT: (1, [100, 1, 0]), Kind.CONCAT: (2, [3, 4, 2, 5, 0, 0, 1]),
          Kind.TRANSPOSE: (1, [1, 7, 7, 512, 0, 3, 1, 2, 0]),
          Kind.MUL: (2, [64, 16, 3, 100, -5, 0x3D000000, 0x3C000000, 0x3B000000, 1, 0, 1]),
          Kind.SOFTMAX: (1, [4, 1000, 0, 0, 0, 0x3B800000])}
    out = [(k, n, p, True) for k, (n, p) in ok.items()]
    bad = [(Kind.LUT, 2, [100, 1, 0]), (Kind.LUT, 1, [0, 1, 0]), (Kind.LUT, 1, [100, 2, 0]),
           (Kind.LUT, 1, [100, 1, 0, 0]), (Kind.LUT, 1, [2 ** 28 + 1, 1, 0]),
           (Kind.CONCAT, 3, [3, 4, 2, 5, 0, 0, 1]), (Kind.CONCAT, 2, [3, 4, 2, 0, 5, 0, 1]),
           (Kind.CONCAT, 0, [3, 4, 0, 0, 0, 0, 1]), (Kind.CONCAT, 2, [3, 4, 2, -5, 0, 0, 1]),
           (Kind.CONCAT, 2, [2 ** 24, 2 ** 24, 2, 5, 0, 0, 1]),
           (Kind.TRANSPOSE, 1, [1, 7, 7, 512, 0, 3, 1, 1, 0]), (Kind.TRANSPOSE, 1, [1, 7, 7, 512, 0, 3, 1, 4, 0]),
           (Kind.TRANSPOSE, 1, [1, 7, 0, 512, 0, 3, 1, 2, 0]), (Kind.TRANSPOSE, 1, [1, 7, 7, 512, 0, 3, -1, 2, 0]),
           (Kind.MUL, 2, [64, 24, 3, 100, -5, 0x3D000000, 0x3C000000, 0x3B000000, 1, 0, 1]),
           (Kind.MUL, 2, [64, 16, 3, 300, -5, 0x3D000000, 0x3C000000, 0x3B000000, 1, 0, 1]),
           (Kind.MUL, 2, [64, 16, 3, 100, -5, 0, 0x3C000000, 0x3B000000, 1, 0, 1]),
           (Kind.MUL, 2, [64, 16, 3, 100, -5, 0x7F800000, 0x3C000000, 0x3B000000, 1, 0, 1]),
           (Kind.MUL, 2, [64, 16, 3, 100, -5, 0xBD000000, 0x3C000000, 0x3B000000, 1, 0, 1]),
           (Kind.MUL, 3, [64, 16, 3, 100, -5, 0x3D000000, 0x3C000000, 0x3B000000, 1, 0, 1]),
           (Kind.SOFTMAX, 1, [4, 100_000, 0, 0, 0, 0x3B800000]), (Kind.SOFTMAX, 1, [4, 1000, 0, -1, 0, 0x3B800000]),
           (Kind.SOFTMAX, 1, [2 ** 24, 2 ** 5, 0, 0, 0, 0x3B800000]), (Kind.SOFTMAX, 1, [4, 1000, 0, 0, 1, 0x00400000]),
           (Kind.QUANTIZE, 1, [1, 3, 4, 4, 0x3D000000, 0, 0]), (99, 1, [1, 2, 3])]
    return out + [(k, n, p, False) for k, n, p in bad]


def test_check_equals_violation(elementwise):
    chain, c = elementwise
    for kind, n, params, want in bad_descriptors():
        names = PARAM_NAMES.get(kind, ()) if kind in list(Kind) else ()
        keys = names if len(params) == len(names) else [f"p{i}" for i in range(len(params))]
        P = dict(zip(keys, params))
        why = E.violation(kind, P, n)
        ok, numel, esize = chain.call(c.functions.check(_desc(kind, range(1, n + 1), params)))
        assert (why is None) == want == ok, (kind, n, params, why)
        if ok:
            assert numel == E.output_numel(Kind(kind), P) and esize == 1
    for junk in (b"", bytes(191), bytes(200), b"\xff" * 300):  # never reverts
        assert chain.call(c.functions.check(junk))[0] is False


def test_check_equals_violation_fuzzed(elementwise):
    """Seeded random descriptors of kinds 10-14 built from edge values: the two verdicts agree on every one."""
    chain, c = elementwise
    rng = np.random.default_rng(3)
    edges = [0, 1, 2, 3, 4, 7, 32, 255, 256, 1000, 1100, 2 ** 14, 2 ** 24, 2 ** 24 + 1, 2 ** 28, -1, -128, 127, 128,
             0x3B800000, 0x3D000000, 0x7F800000, 0x00400000, 2 ** 255 - 1, -(2 ** 255)]
    seen = {True: 0, False: 0}
    for _ in range(400):
        kind = Kind(int(rng.integers(10, 15)))
        names = PARAM_NAMES[kind]
        _, params, _ = next((n, list(p), w) for k, n, p, w in bad_descriptors() if k == kind and w)
        for i in rng.choice(len(names), int(rng.integers(0, 3)), replace=False):
            params[i] = int(edges[int(rng.integers(len(edges)))])
        n = int(rng.integers(0, 5)) if rng.random() < 0.2 else N_OK[kind]
        why = E.violation(kind, dict(zip(names, params)), n)
        ok = chain.call(c.functions.check(_desc(kind, range(1, n + 1), params)))[0]
        assert (why is None) == ok, (kind, n, params, why)
        seen[ok] += 1
    assert min(seen.values()) > 50, seen


N_OK = {Kind.LUT: 1, Kind.CONCAT: 2, Kind.TRANSPOSE: 1, Kind.MUL: 2, Kind.SOFTMAX: 1}


def test_limits_match_contract(elementwise):
    chain, c = elementwise
    for name, v in E.LIMITS.items():
        assert chain.call(getattr(c.functions, name)()) == v, name


def test_forged_openings_revert(elementwise):
    chain, c = elementwise
    for op, xs in cases(4):
        desc, roots, e, ok = _args(op, xs, op.out.numel - 1)
        bad = [(list(lv), list(pr)) for lv, pr in ok]
        w = bad[0][0][0]
        bad[0][0][0] = bytes([w[0] ^ 1]) + w[1:]
        with pytest.raises(ChainError) as ei:
            chain.call(c.functions.element(desc, roots, e, bad))
        assert ei.value.error == "BadOpening" and ei.value.error_args == (0,)
        if len(ok) > 1:  # the second tensor (the table, E or b) tampered
            bad = [(list(lv), list(pr)) for lv, pr in ok]
            w = bad[1][0][-1]
            bad[1][0][-1] = w[:-1] + bytes([w[-1] ^ 0x80])
            with pytest.raises(ChainError) as ei:
                chain.call(c.functions.element(desc, roots, e, bad))
            assert ei.value.error == "BadOpening" and ei.value.error_args == (1,)
        with pytest.raises(ChainError) as ei:
            chain.call(c.functions.element(desc, roots, e, ok[:-1]))
        assert ei.value.error == "BadOpeningCount"
        if op.out.numel > 1:  # a valid opening of another element
            _, _, e2, other = _args(op, xs, 0)
            if other != ok:
                with pytest.raises(ChainError) as ei:
                    chain.call(c.functions.element(desc, roots, e, other))
                assert ei.value.error == "BadOpening"


# ------------------------------------------------------------------------------------------------ gas
def gas_cases() -> list[tuple[str, Op, list[np.ndarray]]]:
    """The largest shapes of each kind the rules admit, and real ones (VGG-16's flatten transpose, a 1000-class
    softmax)."""
    rng = np.random.default_rng(0)
    big = TensorInfo((1, 112, 112, 64), U8)
    xb = _rand(rng, big.shape, U8)
    out = [("lut 112x112x64", E.lut_op("l", 1, big, E.lut_table("sigmoid", 0.1, 128, 0, 1 / 256, 0, 0)), [xb]),
           ("transpose 7x7x512 -> NCHW", E.transpose_op("t", 1, TensorInfo((1, 7, 7, 512), U8), (0, 3, 1, 2)),
            [_rand(rng, (1, 7, 7, 512), U8)]),
           ("transpose 112x112x64", E.transpose_op("t", 1, big, (0, 3, 1, 2)), [xb]),
           ("mul 112x112x64 * [64]", E.mul_op("m", 1, big, (2, TensorInfo((64,), U8)), (0.1, np.uint8(3)),
                                              (0.1, np.uint8(3)), (0.1, np.uint8(3))), [xb, _rand(rng, (64,), U8)]),
           ("mul 112x112x64 * const", E.mul_op("m", 1, big, _rand(rng, big.shape, U8), (0.1, np.uint8(3)),
                                               (0.1, np.uint8(3)), (0.1, np.uint8(3))), [xb])]
    parts = [TensorInfo((1, 56, 56, 64), U8)] * 4
    out.append(("concat 4 x 56x56x64", E.concat_op("c", [1, 2, 3, 4], parts, 3),
                [_rand(rng, p.shape, U8) for p in parts]))
    tiny = [TensorInfo((1, 1, 1, 2), I8)] * 4
    out.append(("concat 4 x 2 (smallest)", E.concat_op("c", [1, 2, 3, 4], tiny, 3), [_rand(rng, (1, 1, 1, 2), I8)] * 4))
    out.append(("softmax 1x1 int8", E.softmax_op("s", 1, TensorInfo((1, 1), I8), 0.1, 1 / 256, np.int8(-128)),
                [_rand(rng, (1, 1), I8)]))
    for cols in (10, 1000, 1100):
        x = TensorInfo((2, cols), U8)
        op = E.softmax_op("s", 1, x, 0.1, 1 / 256, np.uint8(0))
        out.append((f"softmax 2x{cols}", op, [_rand(rng, x.shape, U8)]))
    return out


def gas_table(chain, contract) -> list[dict]:
    """Measured `Elementwise.element` gas (eth_estimateGas: transaction gas, calldata included) and calldata, the
    worst of three elements per case (each value checked against FAST), against the cost model."""
    rows = []
    for label, op, xs in gas_cases():
        n = op.out.numel
        gas = size = 0
        y = E.FAST[op.kind](op, *xs).reshape(-1).view(np.uint8)
        for e in sorted({0, n // 2, n - 1}):
            fn = contract.functions.element(*_args(op, xs, e))
            assert chain.call(fn) == int(y[e]), (label, e)
            data = fn._encode_transaction_data()
            gas = max(gas, chain.w3.eth.estimate_gas({"to": contract.address, "data": data}))
            size = max(size, len(bytes.fromhex(data[2:])))
        mg, mc = E.one_step_cost(op.kind, op.named(), len(op.inputs))
        rows.append({"case": label, "gas": gas, "model_gas": mg, "calldata": size, "model_calldata": mc,
                     "valid": E.violation(op.kind, op.named(), len(op.inputs)) is None})
    return rows


def test_cost_model_bounds_measured_gas(elementwise):
    """The cost model is an upper bound of the measured gas and calldata of every case."""
    chain, c = elementwise
    for r in gas_table(chain, c):
        assert r["gas"] <= r["model_gas"] and r["calldata"] <= r["model_calldata"], r


if __name__ == "__main__":
    from tests.conftest import start_anvil
    from protocol.chain.connection import Chain

    proc, url = start_anvil()
    try:
        chain = Chain(url)
        contract, _ = chain.deploy("Elementwise")
        print(f"{'case':<30} {'gas':>8} {'model':>8} {'calldata':>9} {'model':>7}  admitted")
        for r in gas_table(chain, contract):
            print(f"{r['case']:<30} {r['gas']:>8} {r['model_gas']:>8} {r['calldata']:>9} {r['model_calldata']:>7}  "
                  f"{r['valid']}")
    finally:
        proc.terminate()
        proc.wait(10)
