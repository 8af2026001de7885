"""Pooling and padding: MAXPOOL (kind 7), AVGPOOL (kind 8), PAD (kind 9), the one Python definition of each.

Semantics (every tensor int8 or uint8 in its committed layout, NHWC: input [N,H,W,C], output [N,OH,OW,C]; the
parameters are named by `PARAM_NAMES` of `offchain.inference.graph`, in descriptor order). A window's taps are
``ih = oh*SH - PT + kh*DH`` and ``iw = ow*SW - PL + kw*DW`` for ``kh < KH``, ``kw < KW``; a tap is *in bounds* when
``0 <= ih < H`` and ``0 <= iw < W``. Bottom and right padding are implied by OH and OW (the rows/columns the last
window reaches past the input: ONNX's explicit pads, plus the extra of ``ceil_mode``).

=========  ===========================================================================================================
MAXPOOL    ``y[n,oh,ow,c] = max x[n,ih,iw,c]`` over the in-bounds taps of the window, dtype kept (``signed``). ONNX
           MaxPool pads with -inf, so out-of-bounds taps never win; ``ceil_mode`` is expressed by OH/OW.
AVGPOOL    ``y = sat(y_zp + rne(x_scale * sum_{in-bounds taps} (x - x_zp) / (y_scale * cnt)))`` with
           ``cnt = KH*KW`` when ``count_pad`` else the number of in-bounds taps; x_scale and y_scale are the float32
           scales whose bits are ``x_scale_bits`` / ``y_scale_bits``; the quotient is taken exactly over the
           rationals (``x_scale = mx * 2^ex`` with a 24-bit integer mx, so it is a ratio of integers) and rounded to
           the nearest integer, ties to even: ONNX AveragePool then QuantizeLinear, on exact arithmetic. Also the
           lowering of com.microsoft QLinearAveragePool, which onnxruntime computes as rne(v + y_zp) in float32:
           one off at exact ties when y_zp is odd (measured in `tests/test_pooling.py`). No dilation.
PAD        ``y[n,oh,ow,c] = x[n, oh - PT, ow - PL, c]`` when that is in bounds, else ``value`` (a committed integer in
           the dtype's range: the quantized ``constant_value``); output [N, PT + H + PB, PL + W + PR, C]. Constant
           spatial padding only (ONNX Pad, mode ``constant``, no padding of N or C, no negative pads).
=========  ===========================================================================================================

``sat`` clamps to [0, 255] (uint8) or [-128, 127] (int8), ``rne`` rounds half to even.

Validity rules (`violation`, mirrored by ``Pooling.check`` in `contracts/inference/Pooling.sol`): sizes in
[1, `MAX_DIM`], paddings in [0, `MAX_PAD`], flags 0 or 1, zero points and PAD's value in their dtype's range, scales
positive normal float32; the output size consistent with the input (the implied bottom/right padding in
[1 - stride, `MAX_PAD`], as CONV); no window empty: ``PT <= (KH - 1) * DH``, ``(OH - 1) * SH <= H - 1 + PT``, and
``KH == 1 or DH <= H`` (so a dilated window cannot step over the whole input), the same for columns; every tensor at
most `MAX_NUMEL` elements; and a bounded one-step: the cost model below (`one_step_cost`) at most
`POOL_ONE_STEP_GAS` gas and `ONE_STEP_CALLDATA` bytes of calldata for ``Pooling.element``.

Cost model (an upper bound of ``Pooling.element``'s transaction gas, calldata included; coefficients from a linear
program over 448 one-steps measured on anvil, each bounded with 5% margin; ``tests/test_pooling.py::test_gas_table``
checks it): the window's T = KH*KW taps lie in KH rows of R + 1 bytes each,
R = (KW - 1) DW C, within a span of S + 1 bytes, S = ((KH - 1) DH W + (KW - 1) DW) C; in a tree of depth d, level
l (0 = the words) holds at most n_l = min(T, KH (R // (32 2^l) + 2), S // (32 2^l) + 2, 2^(d-l)) of their
ancestors and the multiproof consumes at most min(n_l, 2^(d-l-1)) siblings there; W = n_0 + sum_{l<d} min(n_l,
2^(d-l-1)) (PAD: W = 1 + d).
gas = `POOL_GAS_BASE` + `POOL_GAS_PER_WORD` W + `POOL_GAS_PER_TAP` T; calldata = `CALLDATA_BASE` + 32 (W + number of
parameters + inputs).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .graph import Kind, Op, PARAM_NAMES, TensorInfo, UnsupportedOperator, f32_bits, limits, saturate

# copied by value from offchain.inference.limits (same names, same values)
MAX_DIM = 1 << 24
MAX_PAD = 1 << 10
MAX_NUMEL = 1 << 28
ONE_STEP_CALLDATA = 23_000
CALLDATA_BASE = 1_000
# this module's one-step bound and cost model (contracts/inference/Pooling.sol declares the same)
POOL_ONE_STEP_GAS = 300_000
POOL_GAS_BASE = 52_000
POOL_GAS_PER_WORD = 1_230
POOL_GAS_PER_TAP = 690

KINDS = (Kind.MAXPOOL, Kind.AVGPOOL, Kind.PAD)
N_INPUTS = {Kind.MAXPOOL: (1,), Kind.AVGPOOL: (1,), Kind.PAD: (1,)}
"""Number of runtime inputs per kind."""

LIMITS = {k: globals()[k] for k in ("MAX_DIM", "MAX_PAD", "MAX_NUMEL", "ONE_STEP_CALLDATA", "CALLDATA_BASE",
                                     "POOL_ONE_STEP_GAS", "POOL_GAS_BASE", "POOL_GAS_PER_WORD", "POOL_GAS_PER_TAP")}
"""The constants by name, as `contracts/inference/Pooling.sol` declares them (tests compare the two)."""


# ------------------------------------------------------------------------------------------------ geometry
def _dims(op: Op) -> dict:
    P = op.named()
    if op.kind == Kind.AVGPOOL:
        P["DH"] = P["DW"] = 1
    return P


def _axis(o: int, s: int, pad: int, dil: int, size: int, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Input indices (clipped into range) and in-bounds mask of tap ``kk`` along one axis, for outputs 0..o-1."""
    i = np.arange(o) * s - pad + kk * dil
    ok = (i >= 0) & (i < size)
    return np.clip(i, 0, size - 1), ok


def _taps(P: dict):
    """Yield (ih, iw, mask[OH,OW]) for every tap (kh, kw) of the window, in (kh, kw) order."""
    for kh in range(P["KH"]):
        ih, vh = _axis(P["OH"], P["SH"], P["PT"], P["DH"], P["H"], kh)
        for kw in range(P["KW"]):
            iw, vw = _axis(P["OW"], P["SW"], P["PL"], P["DW"], P["W"], kw)
            yield ih, iw, vh[:, None] & vw[None, :]


def _f32_parts(bits: int) -> tuple[int, int]:  # (m, e): value m * 2^e of a positive normal float32
    return (bits & 0x7FFFFF) | 0x800000, ((bits >> 23) & 0xFF) - 150


def avg_round(total: int, cnt: int, x_bits: int, y_bits: int) -> int:
    """rne(x_scale * total / (y_scale * cnt)) exactly over the rationals (Python integers, ties to even)."""
    mx, ex = _f32_parts(x_bits)
    my, ey = _f32_parts(y_bits)
    return round(Fraction(mx * int(total), my * int(cnt)) * Fraction(2) ** (ex - ey))  # Fraction rounds half even


# ------------------------------------------------------------------------------------------------ definitions
def maxpool_def(op: Op, x: np.ndarray) -> np.ndarray:
    """MAXPOOL. x [N,H,W,C] int8/uint8 -> [N,OH,OW,C], same dtype: the max over each window's in-bounds taps."""
    P = _dims(op)
    xv = x.reshape(P["N"], P["H"], P["W"], P["C"]).astype(np.int64)
    y = np.full((P["N"], P["OH"], P["OW"], P["C"]), limits(P["signed"])[0], np.int64)
    for ih, iw, m in _taps(P):
        y = np.where(m[None, :, :, None], np.maximum(y, xv[:, ih][:, :, iw]), y)
    return saturate(y, P["signed"])


def avgpool_def(op: Op, x: np.ndarray) -> np.ndarray:
    """AVGPOOL. x [N,H,W,C] -> [N,OH,OW,C] = sat(y_zp + rne(x_scale * sum(x - x_zp) / (y_scale * cnt))), the
    quotient exact (Python integers)."""
    P = _dims(op)
    xv = x.reshape(P["N"], P["H"], P["W"], P["C"]).astype(np.int64) - P["x_zp"]
    total = np.zeros((P["N"], P["OH"], P["OW"], P["C"]), np.int64)
    cnt = np.zeros((P["OH"], P["OW"]), np.int64)
    for ih, iw, m in _taps(P):
        total += np.where(m[None, :, :, None], xv[:, ih][:, :, iw], 0)
        cnt += m
    if P["count_pad"]:
        cnt[:] = P["KH"] * P["KW"]
    rq = np.frompyfunc(lambda s, c: avg_round(s, c, P["x_scale_bits"], P["y_scale_bits"]), 2, 1)
    q = rq(total.astype(object), np.broadcast_to(cnt[None, :, :, None], total.shape).astype(object))
    y = np.clip(q + P["y_zp"], -(1 << 20), 1 << 20).astype(np.int64)
    return saturate(y, P["y_signed"])


def pad_def(op: Op, x: np.ndarray) -> np.ndarray:
    """PAD. x [N,H,W,C] -> [N,PT+H+PB,PL+W+PR,C]: x where in bounds, else ``value``."""
    P = op.named()
    N, H, W, C = P["N"], P["H"], P["W"], P["C"]
    OH, OW = P["PT"] + H + P["PB"], P["PL"] + W + P["PR"]
    xv = x.reshape(N, H, W, C)
    ih, vh = _axis(OH, 1, P["PT"], 1, H, 0)
    iw, vw = _axis(OW, 1, P["PL"], 1, W, 0)
    m = (vh[:, None] & vw[None, :])[None, :, :, None]
    return np.where(m, xv[:, ih][:, :, iw], np.array(P["value"]).astype(x.dtype)).astype(x.dtype)


DEFINITIONS = {Kind.MAXPOOL: maxpool_def, Kind.AVGPOOL: avgpool_def, Kind.PAD: pad_def}
"""Kind -> definition ``(op, x) -> output`` (tap by tap, int64 / Python integers): the reference."""


# ------------------------------------------------------------------------------------------------ fast paths
def implied_end_pads(op: Op) -> tuple[int, int]:
    """MAXPOOL/AVGPOOL: the (bottom, right) padding implied by OH/OW, at least 0: the rows/columns the last
    window reaches past the input."""
    P = _dims(op)
    return (max(0, (P["OH"] - 1) * P["SH"] + P["DH"] * (P["KH"] - 1) + 1 - P["H"] - P["PT"]),
            max(0, (P["OW"] - 1) * P["SW"] + P["DW"] * (P["KW"] - 1) + 1 - P["W"] - P["PL"]))


def _padded(op: Op, x: np.ndarray, fill: int) -> tuple[np.ndarray, dict]:
    """x as int64 [N,H,W,C] padded by ``fill`` to cover every tap (top/left PT/PL, bottom/right as implied)."""
    P = _dims(op)
    PB, PR = implied_end_pads(op)
    xv = x.reshape(P["N"], P["H"], P["W"], P["C"]).astype(np.int64)
    return np.pad(xv, ((0, 0), (P["PT"], PB), (P["PL"], PR), (0, 0)), constant_values=fill), P


def _slices(xp: np.ndarray, P: dict):
    for kh in range(P["KH"]):
        for kw in range(P["KW"]):
            h0, w0 = kh * P["DH"], kw * P["DW"]
            yield xp[:, h0:h0 + (P["OH"] - 1) * P["SH"] + 1:P["SH"], w0:w0 + (P["OW"] - 1) * P["SW"] + 1:P["SW"]]


def maxpool_fast(op: Op, x: np.ndarray) -> np.ndarray:
    """MAXPOOL as `maxpool_def`: strided views of the input padded with the dtype's lowest value."""
    xp, P = _padded(op, x, limits(op.p("signed"))[0])
    return saturate(np.maximum.reduce(list(_slices(xp, P))), P["signed"])


def _count_axis(o, s, pad, k, size) -> np.ndarray:
    start = np.arange(o) * s - pad
    return np.minimum(start + k, size) - np.maximum(start, 0)


def avgpool_fast(op: Op, x: np.ndarray) -> np.ndarray:
    """AVGPOOL as `avgpool_def`: sums of strided views in int64 and the exact rounding in int64 (Python integers
    only when the scale exponents make int64 overflow)."""
    P = _dims(op)
    xp, _ = _padded(op, x, P["x_zp"])
    total = np.add.reduce(list(_slices(xp, P))) - P["KH"] * P["KW"] * P["x_zp"]
    if P["count_pad"]:
        cnt = np.full((P["OH"], P["OW"]), P["KH"] * P["KW"], np.int64)
    else:
        cnt = np.outer(_count_axis(P["OH"], P["SH"], P["PT"], P["KH"], P["H"]),
                       _count_axis(P["OW"], P["SW"], P["PL"], P["KW"], P["W"]))
    mx, ex = _f32_parts(P["x_scale_bits"])
    my, ey = _f32_parts(P["y_scale_bits"])
    d = ex - ey
    taps = P["KH"] * P["KW"]
    sum_bits = (255 * taps).bit_length()
    if not (-(62 - 24 - taps.bit_length()) <= d <= 62 - 24 - sum_bits):
        return avgpool_def(op, x)
    num = total * (mx << max(d, 0))
    den = (cnt * (my << max(-d, 0)))[None, :, :, None]
    q = num // den
    r = num - q * den
    q += (r > den - r) | ((r == den - r) & (q % 2 == 1))
    return saturate(np.clip(q + P["y_zp"], -(1 << 20), 1 << 20), P["y_signed"])


def pad_fast(op: Op, x: np.ndarray) -> np.ndarray:
    """PAD as `pad_def` (np.pad, constant)."""
    P = op.named()
    xv = x.reshape(P["N"], P["H"], P["W"], P["C"])
    return np.pad(xv, ((0, 0), (P["PT"], P["PB"]), (P["PL"], P["PR"]), (0, 0)),
                  constant_values=np.array(P["value"]).astype(x.dtype))


FAST = {Kind.MAXPOOL: maxpool_fast, Kind.AVGPOOL: avgpool_fast, Kind.PAD: pad_fast}
"""Kind -> vectorized kernel, byte-identical to `DEFINITIONS` (`tests/test_pooling.py`)."""


# ------------------------------------------------------------------------------------------------ one-step
def byte_ranges(op: Op, e: int) -> list[list[tuple[int, int]]]:
    """The byte ranges (offset, length) of the input tensor that ``Pooling.element`` opens for output element
    ``e``, one list per opening (one opening: the input), in the order the contract gathers them. Empty for a
    PAD element in the padding."""
    P = _dims(op)
    H, W, C = P["H"], P["W"], P["C"]
    OH, OW = (P["PT"] + H + P["PB"], P["PL"] + W + P["PR"]) if op.kind == Kind.PAD else (P["OH"], P["OW"])
    n, oh, ow, c = e // (C * OW * OH), e // (C * OW) % OH, e // C % OW, e % C
    if op.kind == Kind.PAD:
        ih, iw = oh - P["PT"], ow - P["PL"]
        return [[(((n * H + ih) * W + iw) * C + c, 1)]] if 0 <= ih < H and 0 <= iw < W else [[]]
    out = []
    for kh in range(P["KH"]):
        ih = oh * P["SH"] - P["PT"] + kh * P["DH"]
        for kw in range(P["KW"]):
            iw = ow * P["SW"] - P["PL"] + kw * P["DW"]
            if 0 <= ih < H and 0 <= iw < W:
                out.append((((n * H + ih) * W + iw) * C + c, 1))
    return [out]


def depth_for_bytes(n: int) -> int:
    """Depth of the Merkle tree over ``n`` bytes (32-byte words), as `Merkle.depthForBytes`."""
    return max(0, ((max(1, -(-n // 32))) - 1).bit_length())


def features(kind: Kind, P: dict) -> tuple[int, int]:
    """(W, T) of the cost model: an upper bound of the words and multiproof siblings opened, and the taps of
    the window (PAD: one word and its siblings, no taps)."""
    d = depth_for_bytes(P["N"] * P["H"] * P["W"] * P["C"])
    if kind == Kind.PAD:
        return 1 + d, 0
    dh, dw = P.get("DH", 1), P.get("DW", 1)
    taps = P["KH"] * P["KW"]
    row = (P["KW"] - 1) * dw * P["C"]                       # bytes a window row spans, minus one
    span = ((P["KH"] - 1) * dh * P["W"] + (P["KW"] - 1) * dw) * P["C"]   # bytes the whole window spans, minus one
    n = [min(taps, P["KH"] * (row // (32 << lvl) + 2), span // (32 << lvl) + 2, 1 << (d - lvl))
         for lvl in range(d + 1)]                                  # distinct nodes per level (0 = the words)
    return n[0] + sum(min(n[lvl], 1 << (d - lvl - 1)) for lvl in range(d)), taps   # words + siblings


def one_step_cost(kind: Kind, P: dict, n_inputs: int) -> tuple[int, int]:
    """(gas, calldata bytes) of the cost model for ``kind`` with parameters ``P`` (by name, in range)."""
    W, T = features(kind, P)
    return (POOL_GAS_BASE + POOL_GAS_PER_WORD * W + POOL_GAS_PER_TAP * T,
            CALLDATA_BASE + 32 * (W + len(PARAM_NAMES[kind]) + n_inputs))


# ------------------------------------------------------------------------------------------------ validity
def _zp_ok(zp: int, signed: int) -> bool:
    return (-128 <= zp <= 127) if signed else (0 <= zp <= 255)


def _axis_violation(P: dict, o: str, s: str, pad: str, dil: str, k: str, i: str) -> str | None:
    if not 0 <= P[pad] <= MAX_PAD:
        return f"padding {pad} = {P[pad]} outside [0, {MAX_PAD}]"
    implied = (P[o] - 1) * P[s] + P[dil] * (P[k] - 1) + 1 - P[i] - P[pad]
    if not 1 - P[s] <= implied <= MAX_PAD:
        return f"output size {o} = {P[o]} inconsistent with the input and kernel"
    if P[k] > 1 and P[dil] > P[i]:
        return f"dilation {dil} = {P[dil]} exceeds the input size {i} = {P[i]}"
    if P[pad] > (P[k] - 1) * P[dil] or (P[o] - 1) * P[s] > P[i] - 1 + P[pad]:
        return f"a window along {i} has no in-bounds tap"
    return None


def violation(kind: int, P: dict, n_inputs: int) -> str | None:
    """Why the descriptor of ``kind`` (7-9) with parameters ``P`` (by name, `PARAM_NAMES` order) and ``n_inputs``
    runtime inputs breaks the rules stated in this module's docstring, or None."""
    try:
        kind = Kind(kind)
    except ValueError:
        return f"unknown kind {kind}"
    if kind not in N_INPUTS:
        return f"kind {kind.name} is not a pooling kind"
    names = PARAM_NAMES[kind]
    if tuple(P) != names:
        return f"parameters {tuple(P)}, {kind.name} has {names}"
    if n_inputs not in N_INPUTS[kind]:
        return f"{n_inputs} runtime inputs"
    P = {k: int(v) for k, v in P.items()}
    flags = [k for k in names if k.endswith("signed") or k == "count_pad"]
    if any(P[k] not in (0, 1) for k in flags):
        return "a flag is not 0 or 1"
    sizes = {Kind.MAXPOOL: "N H W C OH OW KH KW SH SW DH DW", Kind.AVGPOOL: "N H W C OH OW KH KW SH SW",
             Kind.PAD: "N H W C"}[kind].split()
    bad = [k for k in sizes if not 1 <= P[k] <= MAX_DIM]
    if bad:
        return f"size {bad[0]} = {P[bad[0]]} outside [1, {MAX_DIM}]"
    if kind == Kind.PAD:
        bad = [k for k in ("PT", "PL", "PB", "PR") if not 0 <= P[k] <= MAX_PAD]
        if bad:
            return f"padding {bad[0]} = {P[bad[0]]} outside [0, {MAX_PAD}]"
        if not _zp_ok(P["value"], P["signed"]):
            return f"value {P['value']} outside its dtype's range"
        out = P["N"] * (P["PT"] + P["H"] + P["PB"]) * (P["PL"] + P["W"] + P["PR"]) * P["C"]
    else:
        Q = dict(P, DH=1, DW=1) if kind == Kind.AVGPOOL else P
        for axis in (("OH", "SH", "PT", "DH", "KH", "H"), ("OW", "SW", "PL", "DW", "KW", "W")):
            why = _axis_violation(Q, *axis)
            if why:
                return why
        if kind == Kind.AVGPOOL:
            bad = [z for z, s in (("x_zp", "x_signed"), ("y_zp", "y_signed")) if not _zp_ok(P[z], P[s])]
            if bad:
                return f"zero point {bad[0]} = {P[bad[0]]} outside its dtype's range"
            if not all(0 <= P[k] < 1 << 31 and 1 <= (P[k] >> 23) <= 254 for k in ("x_scale_bits", "y_scale_bits")):
                return "a scale is not a positive normal float32"
        out = P["N"] * P["OH"] * P["OW"] * P["C"]
    if max(out, P["N"] * P["H"] * P["W"] * P["C"]) > MAX_NUMEL:
        return f"a tensor of {max(out, P['N'] * P['H'] * P['W'] * P['C'])} elements (limit {MAX_NUMEL})"
    gas, calldata = one_step_cost(kind, P, n_inputs)
    if gas > POOL_ONE_STEP_GAS or calldata > ONE_STEP_CALLDATA:
        return (f"one-step bound {gas} gas / {calldata} bytes of calldata exceeds {POOL_ONE_STEP_GAS} gas / "
                f"{ONE_STEP_CALLDATA} bytes (window {P.get('KH')}x{P.get('KW')})")
    return None


# ------------------------------------------------------------------------------------------------ builders
def pool_output_size(size: int, k: int, s: int, pad_begin: int, pad_end: int, dil: int, ceil_mode: int) -> int:
    """ONNX MaxPool/AveragePool output size along one axis: floor (or ceil with ``ceil_mode``) of
    (size + pads - dil (k - 1) - 1) / s, plus 1; with ``ceil_mode`` a last window starting in the end padding is
    dropped (ONNX reference, onnxruntime)."""
    span = size + pad_begin + pad_end - dil * (k - 1) - 1
    if span < 0:
        raise ValueError("kernel larger than the padded input")
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= size + pad_begin:
        o -= 1
    return o


def _pool_geometry(op_type, name, x_info, kernel, strides, pads, dilations, ceil_mode):
    if len(x_info.shape) != 4 or x_info.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise UnsupportedOperator(op_type, name, f"needs a 4-D int8/uint8 input, got {x_info.shape} {x_info.dtype}")
    kernel = list(kernel)
    if len(kernel) != 2:
        raise UnsupportedOperator(op_type, name, f"only 2-D pooling, kernel_shape {kernel}")
    strides = list(strides or [1, 1])
    pads = list(pads or [0, 0, 0, 0])
    dilations = list(dilations or [1, 1])
    if min(pads) < 0:
        raise UnsupportedOperator(op_type, name, f"negative pads {pads}")
    N, H, W, C = x_info.shape
    try:
        OH = pool_output_size(H, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode)
        OW = pool_output_size(W, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode)
    except (ValueError, ZeroDivisionError) as e:
        raise UnsupportedOperator(op_type, name, str(e)) from None
    return dict(N=N, H=H, W=W, C=C, OH=OH, OW=OW, KH=kernel[0], KW=kernel[1], SH=strides[0], SW=strides[1],
                PT=pads[0], PL=pads[1], DH=dilations[0], DW=dilations[1]), pads


def _finish(op: Op, op_type: str, check: bool) -> Op:
    why = violation(op.kind, op.named(), len(op.inputs)) if check else None
    if why:
        raise UnsupportedOperator(op_type, op.name, f"descriptor the contract cannot decide: {why}")
    return op


def maxpool_op(name: str, ref: int, x_info: TensorInfo, kernel, strides=None, pads=None, dilations=None,
               ceil_mode: int = 0, check: bool = True) -> Op:
    """The MAXPOOL `Op` of an ONNX MaxPool (attributes as ONNX gives them: ``pads`` [top, left, bottom, right])
    reading reference ``ref`` whose committed tensor is ``x_info`` (NHWC [N,H,W,C], int8/uint8). Raises
    UnsupportedOperator naming ``name`` for what the canonical operator cannot express or the contract cannot
    decide (``check``)."""
    G, _ = _pool_geometry("MaxPool", name, x_info, kernel, strides, pads, dilations, ceil_mode)
    params = tuple(G[k] for k in PARAM_NAMES[Kind.MAXPOOL][:-1]) + (int(x_info.dtype == np.int8),)
    out = TensorInfo((G["N"], G["OH"], G["OW"], G["C"]), x_info.dtype)
    return _finish(Op(Kind.MAXPOOL, name, (ref,), params, out), "MaxPool", check)


def avgpool_op(name: str, ref: int, x_info: TensorInfo, kernel, strides, pads, ceil_mode: int,
               count_include_pad: int, x_scale, x_zp: int, y_scale, y_zp: int, y_dtype, dilations=None,
               check: bool = True) -> Op:
    """The AVGPOOL `Op` of ONNX AveragePool between DequantizeLinear(x_scale, x_zp) and QuantizeLinear(y_scale,
    y_zp, ``y_dtype``), or of com.microsoft QLinearAveragePool; float32 scales. ``count_include_pad`` with
    ``ceil_mode`` windows that overhang the declared pads is refused (onnxruntime divides those by the taps
    within the declared pads, not KH*KW); dilations other than 1 are refused. Raises UnsupportedOperator."""
    if dilations is not None and list(dilations) != [1, 1]:
        raise UnsupportedOperator("AveragePool", name, f"dilations {list(dilations)}")
    G, pads = _pool_geometry("AveragePool", name, x_info, kernel, strides, pads, None, ceil_mode)
    if count_include_pad and ceil_mode:
        over = [(G["OH"] - 1) * G["SH"] + G["KH"] - G["H"] - G["PT"] - pads[2],
                (G["OW"] - 1) * G["SW"] + G["KW"] - G["W"] - G["PL"] - pads[3]]
        if max(over) > 0:
            raise UnsupportedOperator("AveragePool", name, "count_include_pad with ceil_mode windows past the pads")
    y_dtype = np.dtype(y_dtype)
    G.update(count_pad=int(bool(count_include_pad)), x_zp=int(x_zp), y_zp=int(y_zp),
             x_scale_bits=f32_bits(np.float32(x_scale)), y_scale_bits=f32_bits(np.float32(y_scale)),
             x_signed=int(x_info.dtype == np.int8), y_signed=int(y_dtype == np.int8))
    if y_dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise UnsupportedOperator("AveragePool", name, f"output dtype {y_dtype}")
    params = tuple(G[k] for k in PARAM_NAMES[Kind.AVGPOOL])
    out = TensorInfo((G["N"], G["OH"], G["OW"], G["C"]), y_dtype)
    return _finish(Op(Kind.AVGPOOL, name, (ref,), params, out), "AveragePool", check)


def pad_op(name: str, ref: int, x_info: TensorInfo, pads, value: int = 0, mode: str = "constant",
           check: bool = True) -> Op:
    """The PAD `Op` of an ONNX Pad on the logical NCHW tensor whose committed tensor is ``x_info`` (NHWC
    [N,H,W,C], int8/uint8): ``pads`` in ONNX order [n0, c0, h0, w0, n1, c1, h1, w1] (or 4 values [h0, w0, h1, w1]),
    ``value`` the quantized constant. Raises UnsupportedOperator for another mode, padding of N or C, negative
    pads or a value outside the dtype."""
    pads = [int(p) for p in pads]
    if mode not in ("constant", b"constant"):
        raise UnsupportedOperator("Pad", name, f"mode {mode!r} (only constant)")
    if len(pads) == 8:
        if pads[0] or pads[1] or pads[4] or pads[5]:
            raise UnsupportedOperator("Pad", name, f"padding of the batch or channel axis {pads}")
        pads = [pads[2], pads[3], pads[6], pads[7]]
    if len(pads) != 4 or min(pads) < 0 or len(x_info.shape) != 4:
        raise UnsupportedOperator("Pad", name, f"pads {pads} on shape {x_info.shape}")
    if x_info.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise UnsupportedOperator("Pad", name, f"dtype {x_info.dtype}")
    N, H, W, C = x_info.shape
    signed = int(x_info.dtype == np.int8)
    params = (N, H, W, C, pads[0], pads[1], pads[2], pads[3], int(value), signed)
    out = TensorInfo((N, pads[0] + H + pads[2], pads[1] + W + pads[3], C), x_info.dtype)
    return _finish(Op(Kind.PAD, name, (ref,), params, out), "Pad", check)
