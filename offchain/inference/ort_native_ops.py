"""AVGPOOL and SOFTMAX lowered to ONNX integer operators for `offchain.inference.ort_native.compile_native`.

Both reproduce their definitions (`offchain.inference.pooling.avgpool_def`, `offchain.inference.softmax.softmax_def`)
byte for byte with integer arithmetic only (int32/int64 Add, Sub, Mul, CumSum, ReduceSum, exact Div, floor Mod,
comparisons, Gather): no float is rounded anywhere, so the bytes do not depend on the CPU, its vector width or the
thread count.

* AVGPOOL (`avgpool_native`): ``x - x_zp`` in int32 (int64 for huge inputs), padded with 0 (so a padded tap adds
  nothing, as the definition's in-bounds sum), its 2-D prefix sums (two CumSum, with a zero row and column in
  front), and every window's sum from four strided Slices of them: ``(I[h1,w1] - I[h0,w1]) - (I[h1,w0] -
  I[h0,w0])`` (two band sums, so no intermediate exceeds a prefix sum's bound).
  Then the definition's rounding ``rne(mx 2^ex total / (my 2^ey cnt))`` on int64 (the float32 scales read as
  ``m 2^e``): ``num = total * mx 2^max(d,0)``, ``den = cnt * my 2^max(-d,0)`` (d = ex - ey, clamped where the
  result cannot change: beyond it every non-zero sum saturates, or every quotient is below 1/2), ``r = num mod den``
  (ONNX Mod on integers with fmod = 0: the sign of the divisor, a floor remainder), ``q = (num - r) / den`` (an exact
  division), ``q + 1`` when ``2r > den`` or ``2r == den`` and q is odd; + y_zp, clamped (Less/Greater, Where), Cast.
* SOFTMAX (`softmax_native`): ``d = x - max(row) + 255`` in int32, ``e = E[d]`` (Gather, int64), ``S = ReduceSum(e)``
  (exact: below 2^56). With y_scale = M 2^-sh (M the 24-bit significand), ``q = rne(e 2^sh / (M S))`` and
  ``y = zp + min(q, hi - zp)`` (q >= 0, and e <= S bounds q by ``rne(2^sh / M)``, so only ``T = min(hi - zp,
  2^sh // M + 1)`` steps matter). ``q >= t`` iff ``e >= g_t`` with ``g_t = floor(A_t S / 2^(sh+1)) + 1``, minus 1 when
  that quotient is exact and t is even (ties to even), ``A_t = (2t - 1) M``: a comparison of e with T per-row
  integer thresholds, computed exactly in int64 by splitting S into two limbs. So ``y = zp + #{t <= T: e >= g_t}``,
  counted per row for the 256 values of d (a [rows, 256] table, then GatherElements by d) when the row is longer
  than 256, else per element; g_t is nondecreasing in t, so the count takes two levels of 16 comparisons (the
  16-threshold block, then the thresholds within it) instead of T. ``g_t >= 1`` is enforced, which gives ``y_zp``
  for a row with S = 0 (as the definition). y_scale >= 2 gives q = 0 everywhere (T = 0): the output is y_zp.

Each function takes `ort_native`'s ``add`` / ``const`` node builders, the operator index ``j`` (for unique names),
the input's name and the `Op`, and returns the output's name and its shape; it raises NotCompilable where its int64
bounds would not hold, which the loader never produces: SOFTMAX rows of up to 2^25 columns of any table are lowered
(`offchain.inference.limits` caps sizes at 2^24), AVGPOOL windows of up to 511 taps (its gas bound: under 360).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from .graph import Op
from .ort import NotCompilable
from .pooling import implied_end_pads

INT64_SAFE = 1 << 62
"""Every int64 intermediate of these lowerings is checked (at compile time, from the operator's parameters) to stay
below this in magnitude."""
PREFIX_INT32 = 1 << 31
"""AVGPOOL's prefix sums are int32 while 255 * (padded H) * (padded W) is below this, else int64."""


def _f32_parts(bits: int) -> tuple[int, int]:
    """(m, e) with value m * 2^e of a positive normal float32 given by its bits (m a 24-bit integer)."""
    return (bits & 0x7FFFFF) | 0x800000, ((bits >> 23) & 0xFF) - 150


def _axis_counts(o: int, s: int, pad: int, k: int, size: int) -> np.ndarray:
    """In-bounds taps per output position along one axis: #{kk < k: 0 <= i*s - pad + kk < size}, i < o."""
    i = np.arange(o)[:, None] * s - pad + np.arange(k)[None, :]
    return ((i >= 0) & (i < size)).sum(axis=1).astype(np.int64)


def avgpool_native(add, const, j: int, x: str, op: Op) -> tuple[str, tuple[int, ...]]:
    """AVGPOOL on NHWC bytes ``x`` [N,H,W,C] -> [N,OH,OW,C] (see the module docstring). Raises NotCompilable for a
    window of more than 511 taps."""
    P = op.named()
    N, H, W, C, OH, OW = (P[k] for k in ("N", "H", "W", "C", "OH", "OW"))
    KH, KW, SH, SW, PT, PL = (P[k] for k in ("KH", "KW", "SH", "SW", "PT", "PL"))
    taps = KH * KW
    tb = taps.bit_length()
    if tb > 9:
        raise NotCompilable(f"operator {j}: AVGPOOL window of {taps} taps (at most 511 lowered)")
    PB, PR = implied_end_pads(op)
    Hp, Wp = PT + H + PB, PL + W + PR
    wide = 255 * Hp * Wp >= PREFIX_INT32               # prefix sums beyond int32
    it, nt = (TensorProto.INT64, np.int64) if wide else (TensorProto.INT32, np.int32)
    v = add("Cast", [x], f"ac_{j}", to=it)
    v = add("Sub", [v, const(f"az_{j}", np.array(P["x_zp"], nt))], f"ad_{j}")
    # one zero row / column in front of the padding: prefix sums I[a, b] = sum of the padded rows < a, columns < b
    v = add("Pad", [v, const(f"ap_{j}", np.array([0, PT + 1, PL + 1, 0, 0, PB, PR, 0], np.int64)),
                    const(f"av_{j}", np.array(0, nt))], f"apd_{j}", mode="constant")
    v = add("CumSum", [v, const(f"a1_{j}", np.array(1, np.int64))], f"acs_{j}")
    v = add("CumSum", [v, const(f"a2_{j}", np.array(2, np.int64))], f"acw_{j}")

    def corner(dh: int, dw: int, tag: str) -> str:
        starts = [dh, dw]
        ends = [dh + (OH - 1) * SH + 1, dw + (OW - 1) * SW + 1]
        return add("Slice", [v, const(f"as{tag}_{j}", np.array(starts, np.int64)),
                             const(f"ae{tag}_{j}", np.array(ends, np.int64)),
                             const(f"ax{tag}_{j}", np.array([1, 2], np.int64)),
                             const(f"at{tag}_{j}", np.array([SH, SW], np.int64))], f"asl{tag}_{j}")

    # (I[h1,w1] - I[h0,w1]) - (I[h1,w0] - I[h0,w0]): both brackets are sums of a band of the padded input, so
    # no intermediate exceeds the bound of one prefix sum (below 2^31 when int32)
    right = add("Sub", [corner(KH, KW, "a"), corner(0, KW, "b")], f"at1_{j}")
    left = add("Sub", [corner(KH, 0, "c"), corner(0, 0, "d")], f"at2_{j}")
    tot = add("Sub", [right, left], f"at3_{j}")
    if not wide:
        tot = add("Cast", [tot], f"at64_{j}", to=TensorProto.INT64)
    if P["count_pad"]:
        cnt = np.full((OH, OW), taps, np.int64)
    else:
        cnt = np.outer(_axis_counts(OH, SH, PT, KH, H), _axis_counts(OW, SW, PL, KW, W))
    mx, ex = _f32_parts(P["x_scale_bits"])
    my, ey = _f32_parts(P["y_scale_bits"])
    # beyond +-(11 + tb) the bytes cannot change: every non-zero sum saturates (|q| >= 2^10) / every |q| < 1/2
    d = max(-(11 + tb), min(11 + tb, ex - ey))
    fnum, fden = mx << max(d, 0), my << max(-d, 0)
    if 255 * taps * fnum * 2 >= INT64_SAFE or taps * fden * 2 >= INT64_SAFE:
        raise NotCompilable(f"operator {j}: AVGPOOL constants beyond int64")
    num = add("Mul", [tot, const(f"an_{j}", np.array(fnum, np.int64))], f"anm_{j}")
    den = const(f"aD_{j}", (cnt * fden).reshape(1, OH, OW, 1))
    y, shape = _round_half_even(add, const, j, num, den, "a"), (N, OH, OW, C)
    return _saturate(add, const, j, y, P["y_zp"], P["y_signed"]), shape


def _round_half_even(add, const, j: int, num: str, den: str, tag: str) -> str:
    """rne(num / den) of int64 tensors, den > 0 (broadcast), 2 * den below 2^63: a floor remainder (ONNX Mod, fmod
    0), the exact quotient, + 1 above half or at half with an odd quotient."""
    two = const(f"{tag}two_{j}", np.array(2, np.int64))
    r = add("Mod", [num, den], f"{tag}r_{j}", fmod=0)
    q = add("Div", [add("Sub", [num, r], f"{tag}nr_{j}"), den], f"{tag}q_{j}")
    r2 = add("Mul", [r, two], f"{tag}r2_{j}")
    odd = add("Equal", [add("Mod", [q, two], f"{tag}qm_{j}", fmod=0), const(f"{tag}one_{j}", np.array(1, np.int64))],
              f"{tag}od_{j}")
    up = add("Or", [add("Greater", [r2, den], f"{tag}gt_{j}"),
                    add("And", [add("Equal", [r2, den], f"{tag}eq_{j}"), odd], f"{tag}ti_{j}")], f"{tag}up_{j}")
    return add("Add", [q, add("Cast", [up], f"{tag}uc_{j}", to=TensorProto.INT64)], f"{tag}y_{j}")


def _saturate(add, const, j: int, y: str, zp: int, signed: int) -> str:
    """int64 ``y`` + zp clamped to int8 (``signed``) / uint8 and cast to it. The clamp is two comparisons and
    Where: onnxruntime 1.31's int64 Max / Min / Clip get values whose high halves are equal wrong when the low
    half has its top bit set (``Max(2^31, 1) = 1``, measured here), so no int64 Max/Min/Clip is used."""
    lo, hi = (-128, 127) if signed else (0, 255)
    y = add("Add", [y, const(f"yz_{j}", np.array(zp, np.int64))], f"yzp_{j}")
    lo, hi = const(f"ylo_{j}", np.array(lo, np.int64)), const(f"yhi_{j}", np.array(hi, np.int64))
    y = add("Where", [add("Less", [y, lo], f"ylt_{j}"), lo, y], f"ycl_{j}")
    y = add("Where", [add("Greater", [y, hi], f"ygt_{j}"), hi, y], f"ych_{j}")
    return add("Cast", [y], f"y{j}", to=TensorProto.INT8 if signed else TensorProto.UINT8)


def softmax_steps(op: Op) -> int:
    """T: the number of thresholds ``q >= t`` (t = 1..T) that decide SOFTMAX's output (`softmax_native`); 0 when
    the output is y_zp everywhere (y_scale >= 2: every quotient is at most 1/2, and a half rounds to 0)."""
    bits = op.p("y_scale_bits")
    M, sh = (bits & 0x7FFFFF) | 0x800000, 150 - ((bits >> 23) & 0xFF)
    if sh + 1 < 0 or M >= 1 << (sh + 1):
        return 0
    hi = 127 if op.p("y_signed") else 255
    return min(hi - op.p("y_zp"), (1 << sh) // M + 1)


def softmax_native(add, const, j: int, x: str, op: Op) -> tuple[str, tuple[int, ...]]:
    """SOFTMAX of ``x`` viewed as [rows, cols] (its committed bytes) -> [rows, cols] (see the module docstring).
    Raises NotCompilable where its int64 bounds would not hold (rows of more than 2^25 columns)."""
    rows, cols, zp, signed = op.p("rows"), op.p("cols"), op.p("y_zp"), op.p("y_signed")
    bits = op.p("y_scale_bits")
    M, sh = (bits & 0x7FFFFF) | 0x800000, 150 - ((bits >> 23) & 0xFF)
    E = np.asarray(op.const, np.int64).reshape(-1)
    if E.shape != (256,) or E.min() < 0 or E.max() >= 1 << 32:
        raise NotCompilable(f"operator {j}: SOFTMAX table is not 256 uint32")
    T = softmax_steps(op)
    if T <= 0:
        y = add("Mul", [add("Cast", [x], f"sc_{j}", to=TensorProto.INT32), const(f"s0_{j}", np.array(0, np.int32))],
                f"sz_{j}")
        y = add("Add", [y, const(f"szp_{j}", np.array(zp, np.int32))], f"sy_{j}")
        return add("Cast", [y], f"y{j}", to=TensorProto.INT8 if signed else TensorProto.UINT8), (rows, cols)
    k = sh + 1                                          # 2N = e 2^k; k >= 24 here
    L = min(k, 29)                                      # S = Sh 2^L + Sl
    Smax = cols * int(E.max())
    Amax = (2 * T - 1) * M
    X = Amax * (Smax >> L) + ((Amax * ((1 << L) - 1)) >> L)
    if Amax * (1 << L) >= INT64_SAFE or X >= INT64_SAFE:
        raise NotCompilable(f"operator {j}: SOFTMAX of {cols} columns beyond int64")
    k2 = min(k - L, 62)                                 # X < 2^62: floor(X / 2^k2) and X mod 2^k2 do not change
    v = add("Cast", [x], f"sc_{j}", to=TensorProto.INT32)
    m = add("ReduceMax", [v], f"sm_{j}", axes=[1], keepdims=1)
    d = add("Add", [add("Sub", [v, m], f"sd_{j}"), const(f"s255_{j}", np.array(255, np.int32))], f"sdd_{j}")
    Ec = const(f"sE_{j}", E)
    e = add("Gather", [Ec, d], f"se_{j}", axis=0)                       # [rows, cols] int64
    S = add("ReduceSum", [e, const(f"sax_{j}", np.array([1], np.int64))], f"sS_{j}", keepdims=1)   # [rows, 1]
    t = np.arange(1, T + 1, dtype=np.int64)
    A = const(f"sA_{j}", ((2 * t - 1) * M).reshape(1, T))
    pL = const(f"spL_{j}", np.array(1 << L, np.int64))
    Sl = add("Mod", [S, pL], f"sSl_{j}", fmod=0)
    Sh = add("Div", [add("Sub", [S, Sl], f"sSs_{j}"), pL], f"sSh_{j}")
    P_ = add("Mul", [A, Sl], f"sP_{j}")                                  # [rows, T]
    Pl = add("Mod", [P_, pL], f"sPl_{j}", fmod=0)
    Ph = add("Div", [add("Sub", [P_, Pl], f"sPs_{j}"), pL], f"sPh_{j}")
    Xn = add("Add", [add("Mul", [A, Sh], f"sASh_{j}"), Ph], f"sX_{j}")
    pk = const(f"spk_{j}", np.array(1 << k2, np.int64))
    Xl = add("Mod", [Xn, pk], f"sXl_{j}", fmod=0)
    F = add("Div", [add("Sub", [Xn, Xl], f"sXs_{j}"), pk], f"sF_{j}")   # floor(A_t S / 2^k)
    zero = const(f"s0_{j}", np.array(0, np.int64))
    exact = add("And", [add("Equal", [Pl, zero], f"sPe_{j}"), add("Equal", [Xl, zero], f"sXe_{j}")], f"sex_{j}")
    tie = add("And", [exact, const(f"sev_{j}", (t % 2 == 0).reshape(1, T))], f"sti_{j}")
    g = add("Sub", [add("Add", [F, const(f"s1_{j}", np.array(1, np.int64))], f"sF1_{j}"),
                    add("Cast", [tie], f"stc_{j}", to=TensorProto.INT64)], f"sg_{j}")
    one = const(f"sg1_{j}", np.array(1, np.int64))            # g >= 1 (S = 0: y_zp); Where, not int64 Max
    g = add("Where", [add("Less", [g, one], f"sgl_{j}"), one, g], f"sgm_{j}")
    # g_t is nondecreasing in t (A_t S / 2^k strictly increasing for S > 0; g = 1 for S = 0), so the count of
    # thresholds <= v is found in two levels: padded to 256 (with 2^62, above every value) as 16 blocks of 16,
    # c1 = the blocks whose last threshold is <= v (all of them are), then c2 = those <= v in block c1
    per_d = cols > 256
    ax2 = const(f"sax2_{j}", np.array([2], np.int64))
    vals = const(f"sEd_{j}", E.reshape(1, 256, 1)) if per_d else \
        add("Unsqueeze", [e, const(f"su2_{j}", np.array([2], np.int64))], f"seu_{j}")    # [1 or rows, n, 1]
    gp = add("Concat", [g, const(f"sbig_{j}", np.full((rows, 256 - T), 1 << 62, np.int64))], f"sgp_{j}", axis=1)
    blocks = add("Reshape", [gp, const(f"sbs_{j}", np.array([rows * 16, 16], np.int64))], f"sbl_{j}")
    last = add("Slice", [blocks, const(f"sl0_{j}", np.array([15], np.int64)),
                         const(f"sl1_{j}", np.array([16], np.int64)), const(f"sla_{j}", np.array([1], np.int64))],
               f"sls_{j}")
    last = add("Reshape", [last, const(f"slr_{j}", np.array([rows, 1, 16], np.int64))], f"slt_{j}")
    c1 = add("ReduceSum", [add("Cast", [add("GreaterOrEqual", [vals, last], f"sg1e_{j}")], f"sg1c_{j}",
                               to=TensorProto.INT32), ax2], f"sc1_{j}", keepdims=0)          # [rows, n]
    idx = add("Add", [c1, const(f"srb_{j}", (np.arange(rows, dtype=np.int32) * 16).reshape(rows, 1))], f"sbi_{j}")
    blk = add("Gather", [blocks, idx], f"sbk_{j}", axis=0)                                   # [rows, n, 16]
    c2 = add("ReduceSum", [add("Cast", [add("GreaterOrEqual", [vals, blk], f"sg2e_{j}")], f"sg2c_{j}",
                               to=TensorProto.INT32), ax2], f"sc2_{j}", keepdims=0)
    cnt = add("Add", [add("Mul", [c1, const(f"s16_{j}", np.array(16, np.int32))], f"sc16_{j}"), c2],
              f"scn_{j}")                                                               # [rows, n]: min(q, T)
    y = add("Add", [cnt, const(f"szp_{j}", np.array(zp, np.int32))], f"sy_{j}")
    y = add("Cast", [y], f"sty_{j}" if per_d else f"y{j}", to=TensorProto.INT8 if signed else TensorProto.UINT8)
    if per_d:
        y = add("GatherElements", [y, d], f"y{j}", axis=1)
    return y, (rows, cols)
