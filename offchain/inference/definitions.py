"""The one Python definition of every canonical operator, `DEFINITIONS`, and the integer helpers they use.

`offchain.inference.graph` states the semantics in words; these are plain int64 numpy, tap by tap, no float
anywhere except QUANTIZE's input and DEQUANTIZE's output, which are float32 by the ONNX specification, and the
single IEEE binary32 operations of QUANTIZE (one division), of the CONV/MATMUL requantization (`rq_f32`) and of
ADD (`fma_f32`).
`contracts/inference/OneStep.sol` is the Solidity definition; `tests/test_ops_solidity.py` holds the two against each other element by element, and
`tests/test_kernels.py` holds every other evaluator (`offchain.inference.evaluators`) against these byte for byte.

Each definition takes the `Op` and its input tensors in their committed layouts (plus ADD's constant second input)
and returns the output tensor in its committed layout.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from . import elementwise, pooling
from .graph import INPUT_REF, Kind, Op, f32_from_bits, limits, saturate  # noqa: F401 (limits re-exported)


def rq_int(acc: np.ndarray, m0, s) -> np.ndarray:
    """floor((acc * M0 + 2^(s-1)) / 2^s) in int64 (|acc * M0| < 2^53 is guaranteed by the loader)."""
    acc = acc.astype(np.int64)
    m0 = np.asarray(m0, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    return (acc * m0 + (np.int64(1) << (s - 1))) >> s


def rq_f32(acc: np.ndarray, sbits) -> np.ndarray:
    """RQF: rne(fl32(fl32(acc) * S)) as float64 integers; ``acc`` holds exact integers below 2^31 (int64 or
    float64), ``sbits`` the float32 bits of S (broadcast over the last axis). int -> float64 is exact, float64 ->
    float32 rounds once to nearest even, the float32 product rounds once, np.rint rounds half to even."""
    S = np.asarray(sbits, dtype=np.int64).astype(np.uint32).view(np.float32)
    y = np.asarray(acc, dtype=np.float64).astype(np.float32)
    np.multiply(y, S, out=y)
    np.rint(y, out=y)
    return y.astype(np.float64)


def quantize_input_nchw(op: Op) -> bool:
    """The committed layout of a QUANTIZE's float32 input: NCHW (as given) for the model input (reference 0),
    else the committed layout of the activation it reads (a DEQUANTIZE output: NHWC, element by element)."""
    return op.inputs[0] == INPUT_REF


def quantize_input_offset(op: Op, e: int) -> int:
    """Byte offset, in the committed input tensor, of the float32 that output element ``e`` (NHWC) quantizes."""
    if not quantize_input_nchw(op):
        return e * 4
    N, C, H, W = (op.p(k) for k in ("N", "C", "H", "W"))
    c, t = e % C, e // C
    w, t = t % W, t // W
    h, n = t % H, t // H
    return (((n * C + c) * H + h) * W + w) * 4


def quantize_def(op: Op, x: np.ndarray) -> np.ndarray:
    """QUANTIZE. x float32 [N,C,H,W] for the model input, else in its committed layout (NHWC) -> uint8/int8
    [N,H,W,C] = sat(zp + rne(fl32(x / scale))).

    The quotient is one IEEE-754 binary32 division (numpy float32 / float32: round to nearest even, subnormals
    kept), as onnxruntime's QuantizeLinear computes it (MLAS ``MlasQuantizeLinear``: ``_mm_div_ps``, clamp,
    ``_mm_cvtps_epi32``); np.rint then rounds it half to even, exactly, in float32. NaN -> the zero point (our
    rule; onnxruntime's differs between its vector and scalar paths), +-Inf and overflowing quotients saturate.
    """
    N, C, H, W = (op.p(k) for k in ("N", "C", "H", "W"))
    if quantize_input_nchw(op):
        x = x.reshape(N, C, H, W).transpose(0, 2, 3, 1)
    scale = f32_from_bits(op.p("scale_bits"))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        q = np.rint(np.asarray(x, dtype=np.float32).reshape(N, H, W, C) / scale).astype(np.float64)
    q = np.where(np.isnan(q), 0.0, q)
    q = np.clip(q, -(2.0 ** 31), 2.0 ** 31).astype(np.int64) + op.p("zp")
    return np.ascontiguousarray(saturate(q, op.p("y_signed")))


def conv_def(op: Op, x: np.ndarray) -> np.ndarray:
    """CONV. x [N,H,W,Ci] -> [N,OH,OW,Co]; weight [Co,KH,KW,Ci/G]; table per co (bias, M0, s, w_zp)."""
    P = op.named()
    N, H, W, Ci, Co, OH, OW = (P[k] for k in ("N", "H", "W", "Ci", "Co", "OH", "OW"))
    G, Cig, Cog = P["G"], P["Ci"] // P["G"], P["Co"] // P["G"]
    t = op.table
    xd = x.reshape(N, H, W, Ci).astype(np.int64) - op.p("x_zp")  # committed bytes in the parameters' shape
    wd = op.weight.astype(np.int64) - t["wzp"][:, None, None, None]
    acc = np.broadcast_to(t["bias"].astype(np.int64), (N, OH, OW, Co)).copy()
    oh = np.arange(OH)
    ow = np.arange(OW)
    for kh in range(P["KH"]):
        ih = oh * P["SH"] - P["PT"] + kh * P["DH"]
        vh = (ih >= 0) & (ih < H)
        for kw in range(P["KW"]):
            iw = ow * P["SW"] - P["PL"] + kw * P["DW"]
            vw = (iw >= 0) & (iw < W)
            tap = np.zeros((N, OH, OW, Ci), np.int64)
            tap[:, vh[:, None] & vw[None, :]] = xd[:, ih[vh]][:, :, iw[vw]].reshape(N, -1, Ci)
            tg = tap.reshape(N, OH, OW, G, Cig)
            wg = wd[:, kh, kw, :].reshape(G, Cog, Cig)
            acc += np.einsum("nhwgc,goc->nhwgo", tg, wg).reshape(N, OH, OW, Co)
    y = op.p("y_zp") + rq_f32(acc, t["sbits"]).astype(np.int64)
    return committed_layout(op, saturate(y, op.p("y_signed")))


def committed_layout(op: Op, y: np.ndarray) -> np.ndarray:
    """A CONV output [N,OH,OW,Co] in its committed layout (NCHW when ``out_nchw``)."""
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if op.p("out_nchw") else y


def gap_input_nhwc(op: Op, x: np.ndarray) -> np.ndarray:
    """A GAP input as NHWC [N,H,W,C] whatever its committed layout (and whatever shape an alias gave it)."""
    N, H, W, C = (op.p(k) for k in ("N", "H", "W", "C"))
    return x.reshape(N, C, H, W).transpose(0, 2, 3, 1) if op.p("x_nchw") else x.reshape(N, H, W, C)


def fma_f32(x: np.ndarray, r, t: np.ndarray) -> np.ndarray:
    """``fl32(x * r + t)`` rounded once (a fused multiply-add of IEEE binary32, round to nearest even): ``x``
    integers with |x| < 2^9, ``r`` a float32, ``t`` float32 (broadcast). Exact: ``x * r`` is exact in float64
    (9 + 24 bits); the float64 sum ``s`` and its exact error ``err`` (Knuth's TwoSum) give the sum rounded to odd
    (``s``, or its float64 neighbour towards ``err`` when ``err != 0`` and ``s``'s last bit is even), and rounding
    to odd at 53 >= 24 + 2 bits then to nearest at 24 bits is rounding to nearest once (Boldo and Melquiond,
    "Emulation of FMA and correctly rounded sums: proved algorithms using rounding to odd", IEEE TC 2008). Valid
    for results in the normal float32 range or zero, which the ADD limits guarantee."""
    p = np.asarray(x, np.float64) * np.float64(r)
    t = np.asarray(t, np.float32).astype(np.float64)
    s = p + t
    bb = s - p
    err = (p - (s - bb)) + (t - bb)
    bits = np.atleast_1d(s).view(np.int64).copy()
    err = np.broadcast_to(err, bits.shape)
    odd = (err != 0) & ((bits & 1) == 0)
    bits += np.where(odd, np.where((err > 0) == (s.reshape(bits.shape) > 0), 1, -1), 0)
    return bits.view(np.float64).astype(np.float32).reshape(np.shape(s))


def add_fixed(a_zp: int, b_zp: int, c_zp: int, rac: np.float32, rbc: np.float32) -> np.float32:
    """ADD's fixed part as MLAS computes it (``MlasQLinearAddKernelAvx2Helper``, compiled with FMA contraction):
    ``fl32(c_zp - fma32(rAC, a_zp, fl32(rBC * b_zp)))``."""
    inner = fma_f32(np.array([a_zp]), rac, np.array([np.float32(rbc) * np.float32(b_zp)], np.float32))[0]
    return np.float32(np.float32(c_zp) - inner)


def add_def(op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ADD. a [..] and b (same numel, or numel_b dividing numel_a: b repeats over leading dimensions):
    ``sat(rne(fma32(a, rAC, fma32(b, rBC, fixed))))`` (`fma_f32`), onnxruntime's AVX2 QLinearAdd."""
    av = a.astype(np.int64).reshape(-1)
    bv = np.tile(b.astype(np.int64).reshape(-1), op.p("numel_a") // op.p("numel_b"))
    t = fma_f32(bv, f32_from_bits(op.p("rbc_bits")), f32_from_bits(op.p("fixed_bits")))
    y = fma_f32(av, f32_from_bits(op.p("rac_bits")), t)
    return saturate(np.rint(y).astype(np.int64), op.p("c_signed")).reshape(op.out.shape)



@lru_cache(maxsize=256)
def _add_table(rac_bits: int, rbc_bits: int, fixed_bits: int, a_signed: int, b_signed: int, c_signed: int):
    av = np.arange(256).astype(np.uint8).view(np.int8 if a_signed else np.uint8).astype(np.int64)
    bv = np.arange(256).astype(np.uint8).view(np.int8 if b_signed else np.uint8).astype(np.int64)
    t = fma_f32(bv, f32_from_bits(rbc_bits), f32_from_bits(fixed_bits))
    y = fma_f32(np.repeat(av, 256), f32_from_bits(rac_bits), np.tile(t, 256))
    table = saturate(np.rint(y).astype(np.int64), c_signed)
    table.setflags(write=False)
    return table


def add_table(op: Op) -> np.ndarray:
    """ADD's output for every pair of input bytes: [65536] int8/uint8, entry ``(a_byte << 8) | b_byte`` is
    `add_def` of that pair (computed by the same `fma_f32` steps, cached per parameter set, read-only)."""
    return _add_table(*(op.p(k) for k in ("rac_bits", "rbc_bits", "fixed_bits", "a_signed", "b_signed", "c_signed")))


def add_table_by_value(op: Op) -> np.ndarray:
    """`add_table` re-indexed by value: entry ``(a - lo_a) * 256 + (b - lo_b)`` (lo -128 for int8, 0 for uint8)."""
    return add_value_table(*(op.p(k) for k in ("rac_bits", "rbc_bits", "fixed_bits", "a_signed", "b_signed",
                                               "c_signed")))


def add_value_table(rac_bits: int, rbc_bits: int, fixed_bits: int, a_signed: int, b_signed: int,
                    c_signed: int) -> np.ndarray:
    """`add_table_by_value` of the ADD with these parameters."""
    va = np.arange(256) + (-128 if a_signed else 0)
    vb = np.arange(256) + (-128 if b_signed else 0)
    idx = ((va & 255)[:, None] << 8) | (vb & 255)[None, :]
    return _add_table(rac_bits, rbc_bits, fixed_bits, a_signed, b_signed, c_signed)[idx.reshape(-1)]


def gap_def(op: Op, x: np.ndarray) -> np.ndarray:
    """GAP. x [N,H,W,C] (or [N,C,H,W] when ``x_nchw``) -> [N,1,1,C] = sat(y_zp + RQ(sum_{h,w}(x - x_zp)))."""
    acc = (gap_input_nhwc(op, x).astype(np.int64) - op.p("x_zp")).sum(axis=(1, 2), keepdims=True)
    return saturate(op.p("y_zp") + rq_int(acc, op.p("M0"), op.p("s")), op.p("y_signed"))


def matmul_def(op: Op, a: np.ndarray) -> np.ndarray:
    """MATMUL. a [M,K]; weight (b transposed) [N,K]; table per column n -> [M,N]."""
    t = op.table
    ad = a.astype(np.int64).reshape(op.p("M"), op.p("K")) - op.p("a_zp")
    bd = op.weight.astype(np.int64) - t["wzp"][:, None]
    acc = ad @ bd.T + t["bias"][None, :]
    return saturate(op.p("y_zp") + rq_f32(acc, t["sbits"]).astype(np.int64), op.p("y_signed"))


def dequantize_def(op: Op, q: np.ndarray) -> np.ndarray:
    """DEQUANTIZE. q int8/uint8 -> float32 = fl32((q - zp) * scale), one IEEE binary32 product (RNE)."""
    d = (q.astype(np.int32) - op.p("zp")).astype(np.float32)
    return (d * f32_from_bits(op.p("scale_bits"))).astype(np.float32).reshape(op.out.shape)


DEFINITIONS = {Kind.QUANTIZE: quantize_def, Kind.CONV: conv_def, Kind.ADD: add_def, Kind.GAP: gap_def,
               Kind.MATMUL: matmul_def, Kind.DEQUANTIZE: dequantize_def}
"""Kind -> definition ``(op, *inputs) -> output``: the reference every other evaluator must equal byte for byte."""
DEFINITIONS.update(pooling.DEFINITIONS)
DEFINITIONS.update(elementwise.DEFINITIONS)
