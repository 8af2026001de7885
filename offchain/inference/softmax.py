"""SOFTMAX (canonical kind 14): its exponential table, its Python definition and its fast path; and the exact
256-entry tables of LUT (`lut_table`, `requant_table`), which share its correctly rounded arithmetic.

The semantics are stated in `offchain.inference.elementwise` (the room's docstring); in short, for each row r of the
input viewed as [rows, cols] (cols = the last axis of the committed layout):
``m = max_j x[r,j]``, ``d_j = x[r,j] - m + 255`` (in [0, 255]), ``S = sum_j E[d_j]`` and
``y[r,i] = sat(y_zp + rne(E[d_i] / (y_scale * S)))``, the quotient exact over the rationals, ties to even (``y_zp``
alone when S = 0). ``E`` is the operator's committed constant (`offchain.inference.graph.Op` ``const``): 256
unsigned 32-bit integers, big-endian in the constant's tree (8 per word), built by `softmax_table` at load time.
The Solidity definition is ``_softmax`` in `contracts/inference/Elementwise.sol`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal
from fractions import Fraction

import numpy as np

from .graph import ModelError, Op, f32_bits, f32_from_bits, saturate

EXP_BITS = 31
"""E[255] = 2^EXP_BITS: the exponentials are fixed-point numbers with 31 fractional bits, so every E[d] < 2^32 and a
row's sum stays below 2^56 for up to 2^24 columns (no evaluator needs more than 64 bits for it)."""

_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN)


def softmax_table(x_scale) -> np.ndarray:
    """The committed exponential table of a SOFTMAX reading int8/uint8 values of scale ``x_scale`` (float32):
    uint32[256] with ``E[d] = rne(2^31 * exp(x_scale * (d - 255)))``.

    The exponential is taken with 60 significant digits, correctly rounded (`decimal`), from the exact value of
    the float32 scale, so every machine builds the same table (a float64 libm ``exp`` may differ in its last bit
    between platforms, and the table is part of the model commitment). Raises ValueError unless the scale is a
    positive finite float32."""
    s = np.float32(x_scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"softmax input scale {float(s)} is not a positive finite float32")
    sd = Decimal(float(s))                                     # exact: a float32 is a binary fraction
    out = np.empty(256, np.uint32)
    for d in range(256):
        v = _CTX.multiply(_CTX.exp(_CTX.multiply(sd, Decimal(d - 255))), Decimal(1 << EXP_BITS))
        out[d] = int(v.to_integral_value(rounding=ROUND_HALF_EVEN))
    return out


def _rows(op: Op, x: np.ndarray) -> np.ndarray:
    return x.reshape(op.p("rows"), op.p("cols")).astype(np.int64)


def softmax_def(op: Op, x: np.ndarray) -> np.ndarray:
    """SOFTMAX, the definition: x int8/uint8 (rows * cols elements, row-major) -> the same shape, int8/uint8
    (``y_signed``). Row by row, exact rationals (`fractions.Fraction`; ``round`` rounds half to even)."""
    E = [int(v) for v in op.const.reshape(-1)]
    ys = Fraction(f32_from_bits(op.p("y_scale_bits")).item())
    zp = op.p("y_zp")
    out = []
    for row in _rows(op, x).tolist():
        m = max(row)
        S = sum(E[v - m + 255] for v in row)
        out.append([zp + (round(Fraction(E[v - m + 255]) / (ys * S)) if S else 0) for v in row])
    return saturate(np.array(out, np.int64), op.p("y_signed")).reshape(op.out.shape)


def softmax_fast(op: Op, x: np.ndarray) -> np.ndarray:
    """SOFTMAX as `softmax_def`, vectorized: the table lookup and row sums in int64 (below 2^56), the rounded
    quotient ``rne(E * 2^sh / (M * S))`` of the scale's significand M and exponent in Python integers (object
    arrays), with the remainder compared against half the divisor."""
    xr = _rows(op, x)
    E = op.const.reshape(-1).astype(np.int64)
    d = xr - xr.max(axis=1, keepdims=True) + 255
    e = E[d]
    S = e.sum(axis=1, keepdims=True)
    bits = op.p("y_scale_bits")
    M, sh = (bits & 0x7FFFFF) | 0x800000, 150 - (bits >> 23)      # y_scale = M * 2^-sh
    num = e.astype(object) * (1 << sh) if sh >= 0 else e.astype(object)
    den = np.broadcast_to(S, e.shape).astype(object) * M
    if sh < 0:
        den = den * (1 << -sh)
    safe = np.where(den == 0, 1, den)
    q, r = num // safe, num % safe              # Python integers (object arrays)
    up = (2 * r > safe) | ((2 * r == safe) & (q % 2 == 1))
    q = np.where(den == 0, 0, q + up)
    q = np.minimum(q, 1 << 20).astype(np.int64)                 # beyond 2^20 everything saturates
    return saturate(op.p("y_zp") + q, op.p("y_signed")).reshape(op.out.shape)


# ------------------------------------------------------------------------------------------------ tables
_FUNCS = ("identity", "relu", "clip", "leaky_relu", "hardswish", "hardsigmoid", "sigmoid", "tanh")


def _apply(fn, v: Fraction):
    """fn at the exact value v: a Fraction (rational functions) or a 60-digit Decimal (Sigmoid, Tanh)."""
    name, args = (fn, ()) if isinstance(fn, str) else (fn[0], tuple(Fraction(np.float32(a).item()) for a in fn[1:]))
    if name == "identity":
        return v
    if name == "relu":
        return max(v, Fraction(0))
    if name == "clip":
        return min(max(v, args[0]), args[1])
    if name == "leaky_relu":
        return v if v >= 0 else args[0] * v
    if name == "hardswish":
        return v * min(max(v + 3, Fraction(0)), Fraction(6)) / 6
    if name == "hardsigmoid":
        return min(max(args[0] * v + args[1], Fraction(0)), Fraction(1))
    d = _CTX.divide(Decimal(v.numerator), Decimal(v.denominator))
    if name == "sigmoid":
        return _CTX.divide(Decimal(1), _CTX.add(Decimal(1), _CTX.exp(-d)))
    if name == "tanh":
        t = _CTX.exp(_CTX.multiply(Decimal(-2), abs(d)))
        r = _CTX.divide(_CTX.subtract(Decimal(1), t), _CTX.add(Decimal(1), t))
        return r if d >= 0 else -r
    raise ValueError(f"unknown table function {fn!r}: one of {_FUNCS} (leaky_relu, alpha), (clip, lo, hi), "
                     "(hardsigmoid, alpha, beta) or a callable")


def _rne(v) -> int:
    if isinstance(v, Decimal):
        return int(v.to_integral_value(rounding=ROUND_HALF_EVEN))
    return round(v)


def lut_table(fn, x_scale, x_zp: int, x_signed: int, y_scale, y_zp: int, y_signed: int) -> np.ndarray:
    """The 256-byte table T of a LUT (index: x's byte as uint8): ``T[byte(x)] = sat(y_zp + rne(fn(x_scale (x -
    x_zp)) / y_scale))`` exactly (see the module docstring). ``fn``: a name of ``_FUNCS``, ``("leaky_relu",
    alpha)``, ``("clip", lo, hi)``, ``("hardsigmoid", alpha, beta)`` (float32 attributes), or a callable on float64
    arrays. Returns int8 (``y_signed``) or uint8 [256]. Raises ModelError for a scale that is not a positive
    normal float32."""
    for s in (x_scale, y_scale):
        if not 1 <= (f32_bits(np.float32(s)) >> 23) <= 254:
            raise ModelError(f"table scale {float(s)} is not a positive normal float32")
    sx, sy = Fraction(np.float32(x_scale).item()), Fraction(np.float32(y_scale).item())
    b8 = np.arange(256)
    xs = (b8 - 256 * (b8 >= 128) if x_signed else b8) - int(x_zp)
    if callable(fn):
        fv = np.asarray(fn(xs.astype(np.float64) * float(sx)), np.float64)
        vals = [Fraction(float(v)) / sy if np.isfinite(v) else (1 << 20) * int(np.sign(v)) for v in fv]
    else:
        vals = []
        for xv in xs.tolist():
            f = _apply(fn, sx * xv)
            vals.append(_CTX.divide(f, Decimal(sy.numerator) / Decimal(sy.denominator)) if isinstance(f, Decimal)
                        else f / sy)
    q = np.array([max(-(1 << 20), min(1 << 20, _rne(v))) for v in vals], np.int64)
    return saturate(int(y_zp) + q, y_signed)


def requant_table(x_scale, x_zp: int, x_signed: int, y_scale, y_zp: int, y_signed: int) -> np.ndarray:
    """`lut_table` of the identity: requantization of int8/uint8 values to another scale and zero point (exact
    rational, ties to even); used before a CONCAT whose inputs have different scales."""
    return lut_table("identity", x_scale, x_zp, x_signed, y_scale, y_zp, y_signed)
