"""`FAST`: the numpy fast path, the same bytes as `offchain.inference.definitions.DEFINITIONS`, much faster.

It computes the same integers through float64 BLAS (convolutions as im2col GEMM, depthwise convolutions tap by
tap): every product of two 8-bit deviations is below 2^16 and every accumulator is proven below 2^31 by the model
loader, so every partial sum is an integer below 2^53 and float64 addition of such integers is exact in any order,
with any number of threads, with or without FMA, on any IEEE-754 CPU. The requantization
``floor(acc * (M0 * 2^-s) + 0.5)`` is exact in float64 for the same reason (see `offchain.inference.graph`);
CONV/MATMUL requantize with single IEEE binary32 operations (`offchain.inference.definitions.rq_f32`); ADD is one
lookup per element in the definition's 65536-entry table (`offchain.inference.definitions.add_table`).
`tests/test_kernels.py` holds FAST against DEFINITIONS byte for byte.

XCE (cross-evaluator consistency) therefore rests on exact arithmetic, not on a fixed summation order (the
measurements are in the shared notes, xce.md).

CONV and MATMUL read their weights as float64 deviations ``w - w_zp``; `PREPARE` computes them once per operator
and `offchain.inference.evaluators.FastEvaluator` keeps them (pass them as ``wd``; without it they are recomputed
on every call).
"""

from __future__ import annotations

import numpy as np

from . import elementwise, pooling
from .definitions import DEFINITIONS, add_table, committed_layout, gap_input_nhwc, limits, rq_f32
from .graph import Kind, Op


def conv_weights(op: Op) -> np.ndarray:
    """CONV weight deviations ``w - w_zp[co]`` as float64 [Co, KH, KW, Ci/G]."""
    return op.weight.astype(np.float64) - op.table["wzp"][:, None, None, None]


def matmul_weights(op: Op) -> np.ndarray:
    """MATMUL weight deviations ``b - b_zp[n]`` as float64 [K, N] (the weight is committed transposed)."""
    return (op.weight.astype(np.float64) - op.table["wzp"][:, None]).T.copy()


def _rq_f64(acc: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """floor(acc * mult + 0.5) in float64, exact by the loader's 2^53 bound; mult = M0 * 2^-s."""
    np.multiply(acc, mult, out=acc)
    acc += 0.5
    np.floor(acc, out=acc)
    return acc


def _sat_f(y: np.ndarray, zp: int, signed: int) -> np.ndarray:
    y += zp
    lo, hi = limits(signed)
    np.clip(y, lo, hi, out=y)
    return y.astype(np.int8 if signed else np.uint8)


def conv_fast(op: Op, x: np.ndarray, wd: np.ndarray | None = None) -> np.ndarray:
    """CONV as `definitions.conv_def`: x [N,H,W,Ci] -> committed layout; ``wd``: `conv_weights` of ``op``."""
    P = op.params
    N, H, W, Ci, Co, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, G = P[:16]
    Cig, Cog = Ci // G, Co // G
    t = op.table
    if wd is None:
        wd = conv_weights(op)
    xzp = op.p("x_zp")
    _, _, PB, PR = op.conv_pads()
    xf = x.reshape(N, H, W, Ci).astype(np.float64)
    xf -= xzp
    if PT or PL or PB or PR:
        xf = np.pad(xf, ((0, 0), (PT, PB), (PL, PR), (0, 0)))
    def tap(kh, kw):
        h0, w0 = kh * DH, kw * DW
        return xf[:, h0:h0 + (OH - 1) * SH + 1:SH, w0:w0 + (OW - 1) * SW + 1:SW, :]
    if G == 1:
        if KH == KW == 1:
            cols = tap(0, 0).reshape(-1, Ci)
        else:
            cols = np.concatenate([tap(kh, kw) for kh in range(KH) for kw in range(KW)], axis=-1).reshape(-1, KH * KW * Ci)
        acc = cols @ wd.reshape(Co, -1).T
    elif Cig == 1 and Cog == 1:  # depthwise
        # float32 is exact here when every partial sum of taps stays below 2^24 (checked, else float64)
        dt = np.float32 if KH * KW * 255 * float(np.abs(wd).max()) < 2 ** 24 else np.float64
        xs = xf.astype(dt)
        ws = wd.astype(dt)
        acc32 = np.zeros((N, OH, OW, Co), dt)
        tmp = np.empty_like(acc32)
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * DH, kw * DW
                v = xs[:, h0:h0 + (OH - 1) * SH + 1:SH, w0:w0 + (OW - 1) * SW + 1:SW, :]
                np.multiply(v, ws[:, kh, kw, 0], out=tmp)
                acc32 += tmp
        acc = acc32.reshape(-1, Co).astype(np.float64)
    else:  # grouped
        cols = np.stack([tap(kh, kw) for kh in range(KH) for kw in range(KW)], axis=-2)  # N,OH,OW,T,Ci
        cols = cols.reshape(-1, KH * KW, G, Cig)
        wg = wd.reshape(G, Cog, KH * KW, Cig)
        acc = np.einsum("ptgc,gotc->pgo", cols, wg, optimize=True).reshape(-1, Co)
    acc += t["bias"].astype(np.float64)
    y = rq_f32(acc, t["sbits"])
    return committed_layout(op, _sat_f(y, op.p("y_zp"), op.p("y_signed")).reshape(N, OH, OW, Co))


def matmul_fast(op: Op, a: np.ndarray, wd: np.ndarray | None = None) -> np.ndarray:
    """MATMUL as `definitions.matmul_def`: a [M,K] -> [M,N]; ``wd``: `matmul_weights` of ``op``."""
    if wd is None:
        wd = matmul_weights(op)
    ad = a.astype(np.float64).reshape(op.p("M"), op.p("K")) - op.p("a_zp")
    y = rq_f32(ad @ wd + op.table["bias"].astype(np.float64), op.table["sbits"])
    return _sat_f(y, op.p("y_zp"), op.p("y_signed"))


def add_fast(op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ADD as `definitions.add_def`: one lookup per element in `definitions.add_table` (the definition evaluated
    on all 65536 byte pairs), indexed by the input bytes."""
    ai = a.reshape(-1).view(np.uint8).astype(np.intp)
    ai <<= 8
    bv = b.reshape(-1).view(np.uint8)
    if bv.size != ai.size:
        ai = ai.reshape(-1, bv.size)
    ai |= bv
    return add_table(op)[ai].reshape(op.out.shape)


def gap_fast(op: Op, x: np.ndarray) -> np.ndarray:
    """GAP as `definitions.gap_def`, in float64 (every intermediate is an exact integer)."""
    acc = gap_input_nhwc(op, x).astype(np.float64).sum(axis=(1, 2), keepdims=True) - op.p("x_zp") * op.p("H") * op.p("W")
    y = _rq_f64(acc, np.ldexp(float(op.p("M0")), -op.p("s")))
    return _sat_f(y, op.p("y_zp"), op.p("y_signed"))


FAST = dict(DEFINITIONS)
FAST.update({Kind.CONV: conv_fast, Kind.MATMUL: matmul_fast, Kind.ADD: add_fast, Kind.GAP: gap_fast})
FAST.update(pooling.FAST)
FAST.update(elementwise.FAST)
"""Kind -> fast kernel, same signature as `DEFINITIONS` (QUANTIZE and DEQUANTIZE are the definitions)."""

PREPARE = {Kind.CONV: conv_weights, Kind.MATMUL: matmul_weights}
"""Kind -> what to compute once per operator and pass to its FAST kernel as ``wd``."""
