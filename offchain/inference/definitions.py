"""The one Python definition of every canonical operator, `DEFINITIONS`, and the integer helpers they use.

`offchain.inference.graph` states the semantics in words; these are plain int64 numpy, tap by tap, no float
anywhere except QUANTIZE's input and DEQUANTIZE's output, which are float32 by the ONNX specification, and the
single IEEE binary32 operations of the CONV/MATMUL requantization (`rq_f32`). `contracts/inference/OneStep.sol` is
the Solidity definition; `tests/test_ops_solidity.py` holds the two against each other element by element, and
`tests/test_kernels.py` holds every other evaluator (`offchain.inference.evaluators`) against these byte for byte.

Each definition takes the `Op` and its input tensors in their committed layouts (plus ADD's constant second input)
and returns the output tensor in its committed layout.
"""

from __future__ import annotations

import numpy as np

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
    """QUANTIZE. x float32 (finite) [N,C,H,W] for the model input, else in its committed layout (NHWC) -> uint8/int8
    [N,H,W,C] = sat(zp + rne(x / scale)).

    The quotient is taken in float64 from the two float32 operands. Both have 24-bit significands (the loader
    rejects subnormal scales), so a quotient below 2^10 in magnitude that is not exactly a half-integer is at
    least 2^-28 away from one, while float64's rounding error there is below 2^-43: np.rint then rounds half to
    even exactly as over the reals. Larger quotients saturate whatever their rounding.
    """
    N, C, H, W = (op.p(k) for k in ("N", "C", "H", "W"))
    if quantize_input_nchw(op):
        x = x.reshape(N, C, H, W).transpose(0, 2, 3, 1)
    scale = np.float64(f32_from_bits(op.p("scale_bits")))
    q = np.rint(x.astype(np.float64).reshape(N, H, W, C) / scale)
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


def add_def(op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ADD. a [..] and b (same numel, or numel_b dividing numel_a: b repeats over leading dimensions)."""
    ad = a.astype(np.int64).reshape(-1) - op.p("a_zp")
    bd = np.tile(b.astype(np.int64).reshape(-1), op.p("numel_a") // op.p("numel_b")) - op.p("b_zp")
    s = op.p("s")
    y = op.p("c_zp") + ((ad * op.p("Ma") + bd * op.p("Mb") + (1 << (s - 1))) >> s)
    return saturate(y, op.p("c_signed")).reshape(op.out.shape)


def gap_def(op: Op, x: np.ndarray) -> np.ndarray:
    """GAP. x [N,H,W,C] (or [N,C,H,W] when ``x_nchw``) -> [N,1,1,C] = sat(y_zp + RQ(sum_{h,w}(x - x_zp)))."""
    acc = (gap_input_nhwc(op, x).astype(np.int64) - op.p("x_zp")).sum(axis=(1, 2), keepdims=True)
    return saturate(op.p("y_zp") + rq_int(acc, op.p("M0"), op.p("s")), op.p("y_signed"))


def matmul_def(op: Op, a: np.ndarray) -> np.ndarray:
    """MATMUL. a [M,K]; weight (b transposed) [N,K]; table per column n -> [M,N]."""
    t = op.table
    ad = a.astype(np.int64).reshape(op.p("M"), op.p("K")) - op.p("a_zp")
    bd = op.weight.astype(np.int64) - t["wzp"][:, None]
    acc = ad @ bd.T
    return saturate(op.p("y_zp") + rq_f32(acc, t["sbits"]).astype(np.int64), op.p("y_signed"))


def dequantize_def(op: Op, q: np.ndarray) -> np.ndarray:
    """DEQUANTIZE. q int8/uint8 -> float32 = fl32((q - zp) * scale), one IEEE binary32 product (RNE)."""
    d = (q.astype(np.int32) - op.p("zp")).astype(np.float32)
    return (d * f32_from_bits(op.p("scale_bits"))).astype(np.float32).reshape(op.out.shape)


DEFINITIONS = {Kind.QUANTIZE: quantize_def, Kind.CONV: conv_def, Kind.ADD: add_def, Kind.GAP: gap_def,
               Kind.MATMUL: matmul_def, Kind.DEQUANTIZE: dequantize_def}
"""Kind -> definition ``(op, *inputs) -> output``: the reference every other evaluator must equal byte for byte."""
