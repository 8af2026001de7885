"""Canonical operators 10-14 (LUT, CONCAT, TRANSPOSE, MUL, SOFTMAX): exact semantics, the one Python definition
of each (`DEFINITIONS`), the fast path (`FAST`), the descriptor rules (`violation`) and the builders.

Semantics (the Solidity definition is `contracts/inference/Elementwise.sol`; `tests/test_elementwise.py` holds the
two, `FAST` and onnxruntime against each other). ``sat`` clamps to int8 [-128, 127] or uint8 [0, 255]; ``rne``
rounds to the nearest integer, ties to even; every quotient is exact over the rationals; float32 scales are read
exactly (a float32 is a binary fraction: significand M < 2^24 times a power of two).

=========  ==========================================================================================================
LUT        ``y[e] = T[byte(x[e])]``: ``byte(x)`` is x's byte read as uint8 (x + 256 for a negative int8); T is the
           operator's committed constant (``const``): 256 bytes of the output dtype. Any function of one 8-bit value
           (Sigmoid, Tanh, HardSwish, HardSigmoid, LeakyRelu, Relu, Clip, a requantization) is a table computed
           exactly at load time (`lut_table`, `requant_table`) and committed with the model, so no evaluator and no
           contract ever recomputes the function (onnxruntime runs QLinearSigmoid and QLinearLeakyRelu with such
           tables). Params numel, x_signed, y_signed; the output has x's committed layout.
CONCAT     Up to 4 runtime inputs joined along one axis of the committed layout: the output viewed as
           [outer, (L0+L1+L2+L3) * inner], input i as [outer, Li * inner] (Li = 0 for absent inputs; the non-zero
           L's come first and there is one runtime input per non-zero L); output row o is input 0's row o, then
           input 1's, ... One dtype (``signed``); inputs of different scales are requantized by LUTs before it, so
           CONCAT only moves bytes (com.microsoft QLinearConcat = requantizing LUTs + CONCAT).
TRANSPOSE  x of shape (D0, D1, D2, D3) row-major in its committed layout; output ``x.transpose(P0, P1, P2, P3)``
           row-major: output shape (D[P0], ..., D[P3]), ``y[i0, i1, i2, i3] = x[j]`` with ``j[P[k]] = i[k]``
           (e.g. NHWC -> NCHW before an ONNX Flatten/Reshape of a 4-D activation, VGG-16's 7x7x512 flatten).
MUL        ``y = sat(c_zp + rne((a - a_zp) * (b - b_zp) * a_scale * b_scale / c_scale))`` (com.microsoft
           QLinearMul) with the float32 scales; ``b`` broadcast over the leading dimensions of the committed layout:
           b's element for output e is ``e mod numel_b`` (per channel for a [1,C,1,1] b of an NHWC activation), b a
           runtime input or the committed constant (``const``, when the descriptor has one runtime input).
SOFTMAX    Along the last axis of the committed layout, viewed as [rows, cols]: ``d_j = x_j - max_k x_k + 255``,
           ``S = sum_j E[d_j]``, ``y_i = sat(y_zp + rne(E[d_i] / (y_scale * S)))`` (``y_zp`` when S = 0); E = the
           committed constant, 256 uint32 with ``E[d] = rne(2^31 exp(x_scale (d - 255)))``
           (`offchain.inference.softmax.softmax_table`). Its one-step reads one row and the table.
=========  ==========================================================================================================

Tables are exact: the 256 inputs are dequantized exactly (`fractions.Fraction` of the float32 scale), the rational
functions (identity, Relu, Clip, LeakyRelu, HardSwish, HardSigmoid) are evaluated exactly and the transcendental ones
(Sigmoid, Tanh, exp) with 60 correctly rounded digits (`decimal`), then quantized with rne and saturation. A float64
libm may differ in its last bit between platforms, and the table is part of the model commitment: this way every
machine builds the same bytes. A callable ``fn`` (numpy float64 in, float64 out) is accepted too, its float64
results then quantized exactly; such a table is only as portable as the callable.

One-step openings (`step_ranges`, in `Elementwise.element` order): LUT [x, all of T]; CONCAT [the input e comes from];
TRANSPOSE [x]; MUL [a, b]; SOFTMAX [x's row, all of E]. Descriptor rules (`violation`, mirrored by
`Elementwise.check`): sizes in [1, `MAX_DIM`], element counts at most `MAX_NUMEL`, zero points in their dtype's range,
flags 0 or 1, scales positive normal float32, CONCAT's L's as above, TRANSPOSE's P a permutation of 0..3, MUL's
numel_b dividing numel_a, and the one-step cost model: gas = `GAS_BASE` + `GAS_PER_WORD` W + `GAS_PER_COL` cols
(W = words and multiproof siblings opened; cols for SOFTMAX only) at most `ONE_STEP_GAS`, calldata =
`CALLDATA_BASE` + 32 (W + parameters + inputs) at most `ONE_STEP_CALLDATA`. The coefficients bound the gas
measured on anvil (eth_estimateGas, calldata included) with at least 5% margin on every case of
``python -m tests.test_elementwise`` (a sibling costs ~1,600 gas, a softmax column ~145); a 1000-class softmax fits
at any number of rows. With `Pinpoint.step`'s ~82k of proofs and payout the step stays within the bond's 450k.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from .graph import (PARAM_NAMES, Kind, ModelError, Op, TensorInfo, UnsupportedOperator, f32_bits, f32_from_bits,
                    saturate)
from .softmax import lut_table, requant_table, softmax_def, softmax_fast, softmax_table  # noqa: F401 (re-exported)

# ------------------------------------------------------------------------------------------------ rules, costs
MAX_DIM = 1 << 24                 # the values of offchain.inference.limits, by name
MAX_NUMEL = 1 << 28
ONE_STEP_GAS = 300_000
ONE_STEP_CALLDATA = 23_000        # Pinpoint.step adds ~1 KB: the transaction stays within 24 KB
GAS_BASE = 45_000
GAS_PER_WORD = 1_750
GAS_PER_COL = 100
CALLDATA_BASE = 1_000
LIMITS = {"MAX_DIM": MAX_DIM, "MAX_NUMEL": MAX_NUMEL, "ONE_STEP_GAS": ONE_STEP_GAS,
          "ONE_STEP_CALLDATA": ONE_STEP_CALLDATA, "GAS_BASE": GAS_BASE, "GAS_PER_WORD": GAS_PER_WORD,
          "GAS_PER_COL": GAS_PER_COL, "CALLDATA_BASE": CALLDATA_BASE}
"""The constants by name, as `Elementwise.sol` declares them (tests compare the two)."""

N_INPUTS = {Kind.LUT: (1,), Kind.CONCAT: (1, 2, 3, 4), Kind.TRANSPOSE: (1,), Kind.MUL: (1, 2), Kind.SOFTMAX: (1,)}
"""Number of runtime inputs per kind (MUL: 1 when b is the committed constant; CONCAT: one per non-zero L)."""


def _depth(n_bytes: int) -> int:
    return max(0, ((max(1, -(-n_bytes // 32))) - 1).bit_length())


def _zp_ok(zp: int, signed: int) -> bool:
    return (-128 <= zp <= 127) if signed else (0 <= zp <= 255)


def _scale_ok(bits: int) -> bool:
    return 0 <= bits < 1 << 31 and 1 <= (bits >> 23) <= 254


def words(kind: Kind, P: dict) -> int:
    """W of the cost model: the words and multiproof siblings the one-step opens (worst case over elements)."""
    if kind == Kind.LUT:
        return 1 + _depth(P["numel"]) + 8                                   # x's word, all of T
    if kind == Kind.CONCAT:
        return 1 + max(_depth(P["outer"] * P[f"L{i}"] * P["inner"]) for i in range(4))
    if kind == Kind.TRANSPOSE:
        return 1 + _depth(P["D0"] * P["D1"] * P["D2"] * P["D3"])
    if kind == Kind.MUL:
        return 2 + _depth(P["numel_a"]) + _depth(P["numel_b"])
    return P["cols"] // 32 + 2 + _depth(P["rows"] * P["cols"]) + 32          # SOFTMAX: a row and all of E


def one_step_cost(kind: Kind, P: dict, n_inputs: int) -> tuple[int, int]:
    """(gas, calldata bytes) of the cost model of ``Elementwise.element`` (transaction gas, calldata included)."""
    W = words(kind, P)
    gas = GAS_BASE + GAS_PER_WORD * W + (GAS_PER_COL * P["cols"] if kind == Kind.SOFTMAX else 0)
    return gas, CALLDATA_BASE + 32 * (W + len(PARAM_NAMES[kind]) + n_inputs)


def output_numel(kind: Kind, P: dict) -> int:
    """Elements of the output tensor (parameters in range)."""
    if kind == Kind.LUT:
        return P["numel"]
    if kind == Kind.CONCAT:
        return P["outer"] * (P["L0"] + P["L1"] + P["L2"] + P["L3"]) * P["inner"]
    if kind == Kind.TRANSPOSE:
        return P["D0"] * P["D1"] * P["D2"] * P["D3"]
    if kind == Kind.MUL:
        return P["numel_a"]
    return P["rows"] * P["cols"]


def violation(kind: int, P: dict, n_inputs: int) -> str | None:
    """Why a descriptor of ``kind`` with parameters ``P`` (by name, `PARAM_NAMES` order) and ``n_inputs`` runtime
    inputs breaks the rules `Elementwise.check` enforces, or None."""
    try:
        kind = Kind(kind)
    except ValueError:
        return f"unknown kind {kind}"
    if kind not in N_INPUTS:
        return f"kind {kind.name} is not an elementwise kind"
    names = PARAM_NAMES[kind]
    if list(P) != list(names):
        return f"parameters {list(P)}, {kind.name} has {list(names)}"
    if n_inputs not in N_INPUTS[kind]:
        return f"{n_inputs} runtime inputs"
    P = {k: int(v) for k, v in P.items()}
    if any(P[k] not in (0, 1) for k in names if k.endswith("signed")):
        return "a flag is not 0 or 1"
    sizes = {Kind.LUT: ["numel"], Kind.CONCAT: ["outer", "inner"], Kind.TRANSPOSE: ["D0", "D1", "D2", "D3"],
             Kind.MUL: ["numel_a", "numel_b"], Kind.SOFTMAX: ["rows", "cols"]}[kind]
    for k in sizes:
        hi = MAX_NUMEL if k.startswith("numel") else MAX_DIM
        if not 1 <= P[k] <= hi:
            return f"size {k} = {P[k]} outside [1, {hi}]"
    if kind == Kind.CONCAT:
        L = [P[f"L{i}"] for i in range(4)]
        if any(not 0 <= v <= MAX_DIM for v in L):
            return f"a length L outside [0, {MAX_DIM}]"
        k = sum(v > 0 for v in L)
        if k == 0 or any(v == 0 for v in L[:k]) or k != n_inputs:
            return f"lengths {L}: the non-zero ones must come first, one per runtime input ({n_inputs})"
    if kind == Kind.TRANSPOSE and sorted(P[f"P{i}"] for i in range(4)) != [0, 1, 2, 3]:
        return "P is not a permutation of 0, 1, 2, 3"
    zps = {Kind.MUL: [("a_zp", "a_signed"), ("b_zp", "b_signed"), ("c_zp", "c_signed")],
           Kind.SOFTMAX: [("y_zp", "y_signed")]}.get(kind, [])
    bad = [z for z, s in zps if not _zp_ok(P[z], P[s])]
    if bad:
        return f"zero point {bad[0]} = {P[bad[0]]} outside its dtype's range"
    if any(not _scale_ok(P[k]) for k in names if k.endswith("scale_bits")):
        return "a scale is not a positive normal float32"
    if kind == Kind.MUL and P["numel_a"] % P["numel_b"]:
        return f"numel_b {P['numel_b']} does not divide numel_a {P['numel_a']}"
    if output_numel(kind, P) > MAX_NUMEL:
        return f"a tensor of {output_numel(kind, P)} elements (limit {MAX_NUMEL})"
    gas, calldata = one_step_cost(kind, P, n_inputs)
    if gas > ONE_STEP_GAS or calldata > ONE_STEP_CALLDATA:
        return (f"one-step bound {gas} gas / {calldata} bytes of calldata exceeds {ONE_STEP_GAS} gas / "
                f"{ONE_STEP_CALLDATA} bytes")
    return None


# ------------------------------------------------------------------------------------------------ definitions
def lut_def(op: Op, x: np.ndarray) -> np.ndarray:
    """LUT, the definition: each element's byte (as uint8) indexes the committed table."""
    T = op.const.reshape(-1)
    idx = x.reshape(-1).astype(np.int64) % 256
    return np.array([T[i] for i in idx.tolist()], T.dtype).reshape(op.out.shape)


def concat_def(op: Op, *xs: np.ndarray) -> np.ndarray:
    """CONCAT, the definition: row by row of the [outer, L_i * inner] views."""
    outer, inner = op.p("outer"), op.p("inner")
    views = [x.reshape(outer, op.p(f"L{i}") * inner) for i, x in enumerate(xs)]
    rows = [np.concatenate([v[o] for v in views]) for o in range(outer)]
    return np.stack(rows).astype(op.out.dtype).reshape(op.out.shape)


def transpose_def(op: Op, x: np.ndarray) -> np.ndarray:
    """TRANSPOSE, the definition: for every output index, its input index by the stated rule."""
    D = [op.p(f"D{i}") for i in range(4)]
    P = [op.p(f"P{i}") for i in range(4)]
    out_shape = [D[p] for p in P]
    i = np.unravel_index(np.arange(x.size), out_shape)
    j = [None] * 4
    for k in range(4):
        j[P[k]] = i[k]
    return x.reshape(-1)[np.ravel_multi_index(j, D)].reshape(op.out.shape)


def _scales(op: Op) -> tuple[Fraction, Fraction, Fraction]:
    return tuple(Fraction(f32_from_bits(op.p(k)).item()) for k in ("a_scale_bits", "b_scale_bits", "c_scale_bits"))


def _mul_b(op: Op, rest: tuple) -> np.ndarray:
    return (rest[0] if rest else op.const).reshape(-1)


def mul_def(op: Op, a: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """MUL, the definition: the exact rational of each product of deviations (`fractions.Fraction`; ``round``
    rounds half to even), computed once per distinct product."""
    sa, sb, sc = _scales(op)
    ad = a.reshape(-1).astype(np.int64) - op.p("a_zp")
    bd = np.tile(_mul_b(op, rest).astype(np.int64), op.p("numel_a") // op.p("numel_b")) - op.p("b_zp")
    p, inv = np.unique(ad * bd, return_inverse=True)
    q = np.array([max(-(1 << 20), min(1 << 20, round(Fraction(v) * sa * sb / sc))) for v in p.tolist()], np.int64)
    return saturate(op.p("c_zp") + q[inv.reshape(-1)], op.p("c_signed")).reshape(op.out.shape)


@lru_cache(maxsize=256)
def _mul_table(params: tuple) -> np.ndarray:
    """The [256, 256] output bytes of MUL indexed by (byte(a), byte(b)), by the integer rule of the contract:
    rne(|p| M_a M_b 2^sh / M_c) with the remainder compared against half the divisor."""
    P = dict(zip(PARAM_NAMES[Kind.MUL], params))
    b8 = np.arange(256)
    va = (b8 - 256 * (b8 >= 128) if P["a_signed"] else b8) - P["a_zp"]
    vb = (b8 - 256 * (b8 >= 128) if P["b_signed"] else b8) - P["b_zp"]
    prod = va[:, None] * vb[None, :]
    (ma, ea), (mb, eb), (mc, ec) = (((x & 0x7FFFFF) | 0x800000, x >> 23) for x in
                                     (P["a_scale_bits"], P["b_scale_bits"], P["c_scale_bits"]))
    sh = ea + eb - ec - 150                     # a_scale b_scale / c_scale = ma mb / mc * 2^sh
    num = np.abs(prod).astype(object) * (ma * mb)
    if sh >= 0:
        num, den = num * (1 << sh), mc
    else:
        den = mc << -sh
    q, r = num // den, num % den                # Python integers (object arrays)
    q = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1)))
    q = np.minimum(q, 1 << 20).astype(np.int64) * np.sign(prod)
    return saturate(P["c_zp"] + q, P["c_signed"])


def mul_fast(op: Op, a: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """MUL as `mul_def`: one lookup in the [256, 256] table of the operator's parameters (built once, cached)."""
    T = _mul_table(tuple(op.params))
    ia = a.reshape(-1).view(np.uint8).astype(np.intp)
    ib = _mul_b(op, rest).view(np.uint8).astype(np.intp)
    ib = np.tile(ib, op.p("numel_a") // op.p("numel_b"))
    return T[ia, ib].reshape(op.out.shape)


def lut_fast(op: Op, x: np.ndarray) -> np.ndarray:
    """LUT as `lut_def`: one np.take."""
    return np.take(op.const.reshape(-1), x.view(np.uint8)).reshape(op.out.shape)


def concat_fast(op: Op, *xs: np.ndarray) -> np.ndarray:
    """CONCAT as `concat_def`: one np.concatenate of the [outer, L_i * inner] views."""
    outer = op.p("outer")
    return np.concatenate([x.reshape(outer, -1) for x in xs], axis=1).reshape(op.out.shape)


def transpose_fast(op: Op, x: np.ndarray) -> np.ndarray:
    """TRANSPOSE as `transpose_def`: numpy's transpose, copied contiguous."""
    D = [op.p(f"D{i}") for i in range(4)]
    return np.ascontiguousarray(x.reshape(D).transpose([op.p(f"P{i}") for i in range(4)])).reshape(op.out.shape)


DEFINITIONS = {Kind.LUT: lut_def, Kind.CONCAT: concat_def, Kind.TRANSPOSE: transpose_def, Kind.MUL: mul_def,
               Kind.SOFTMAX: softmax_def}
"""Kind -> definition ``(op, *inputs) -> output``: the reference (MUL's constant b is ``op.const``)."""

FAST = {Kind.LUT: lut_fast, Kind.CONCAT: concat_fast, Kind.TRANSPOSE: transpose_fast, Kind.MUL: mul_fast,
        Kind.SOFTMAX: softmax_fast}
"""Kind -> vectorized kernel, byte-identical to `DEFINITIONS`."""


# ------------------------------------------------------------------------------------------------ openings
def step_ranges(op: Op, e: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """What `Elementwise.element` opens for output element ``e`` (< numel), in its order: (tensor, byte ranges)
    with tensor i >= 0 the i-th runtime input and -1 the committed constant."""
    P = op.named()
    k = op.kind
    if k == Kind.LUT:
        return [(0, [(e, 1)]), (-1, [(0, 256)])]
    if k == Kind.TRANSPOSE:
        D = [P[f"D{i}"] for i in range(4)]
        perm = [P[f"P{i}"] for i in range(4)]
        idx = np.unravel_index(e, [D[p] for p in perm])
        j = [0] * 4
        for a in range(4):
            j[perm[a]] = int(idx[a])
        return [(0, [(int(np.ravel_multi_index(j, D)), 1)])]
    if k == Kind.CONCAT:
        inner, L = P["inner"], [P[f"L{i}"] for i in range(4)]
        row, col = divmod(e, sum(L) * inner)
        i = 0
        while col >= L[i] * inner:
            col -= L[i] * inner
            i += 1
        return [(i, [(row * L[i] * inner + col, 1)])]
    if k == Kind.MUL:
        return [(0, [(e, 1)]), (1 if len(op.inputs) > 1 else -1, [(e % P["numel_b"], 1)])]
    if k == Kind.SOFTMAX:
        return [(0, [((e // P["cols"]) * P["cols"], P["cols"])]), (-1, [(0, 1024)])]
    raise ValueError(f"no elementwise one-step for kind {k}")


# ------------------------------------------------------------------------------------------------ builders
def _dt(signed: int) -> np.dtype:
    return np.dtype(np.int8 if signed else np.uint8)


def _zp_signed(zp, name: str) -> int:
    """1 if the zero point ``zp`` is a numpy int8, 0 if uint8 (it gives the output dtype); ModelError else."""
    dt = np.asarray(zp).dtype
    if dt not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ModelError(f"node {name!r}: the output zero point must be int8 or uint8, got {dt}")
    return int(dt == np.int8)


def _signed(info: TensorInfo) -> int:
    if info.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ModelError(f"an int8/uint8 tensor is required, got {info.dtype}")
    return int(info.dtype == np.int8)


def lut_op(name: str, ref: int, x: TensorInfo, table: np.ndarray) -> Op:
    """LUT reading input reference ``ref`` (``x``) through ``table`` (`lut_table`: 256 int8/uint8)."""
    table = np.asarray(table)
    if table.shape != (256,) or table.dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        raise ModelError(f"node {name!r}: a LUT table is 256 int8/uint8 values")
    ys = int(table.dtype == np.int8)
    return Op(Kind.LUT, name, (ref,), (x.numel, _signed(x), ys), TensorInfo(x.shape, table.dtype), const=table)


def concat_op(name: str, refs, infos, axis: int) -> Op:
    """CONCAT of 1-4 inputs (references ``refs``, tensors ``infos`` of one dtype and the same shape but along
    ``axis`` of the committed layout). Raises ModelError otherwise."""
    if not 1 <= len(refs) == len(infos) <= 4:
        raise ModelError(f"node {name!r}: CONCAT joins 1 to 4 inputs, got {len(refs)}")
    s0 = infos[0].shape
    axis = axis % len(s0)
    if any(len(i.shape) != len(s0) or i.shape[:axis] + i.shape[axis + 1:] != s0[:axis] + s0[axis + 1:]
           or i.dtype != infos[0].dtype for i in infos):
        raise ModelError(f"node {name!r}: CONCAT inputs differ in dtype or outside axis {axis}")
    outer = int(np.prod(s0[:axis], dtype=np.int64))
    inner = int(np.prod(s0[axis + 1:], dtype=np.int64))
    L = [int(i.shape[axis]) for i in infos] + [0] * (4 - len(infos))
    out = s0[:axis] + (sum(L),) + s0[axis + 1:]
    return Op(Kind.CONCAT, name, tuple(refs), (outer, inner, *L, _signed(infos[0])), TensorInfo(out, infos[0].dtype))


def transpose_op(name: str, ref: int, x: TensorInfo, perm) -> Op:
    """TRANSPOSE of ``x`` (up to 4-D, committed layout) by ``perm``; shapes below 4-D get leading 1s."""
    k = len(x.shape)
    if k > 4 or sorted(perm) != list(range(k)):
        raise ModelError(f"node {name!r}: TRANSPOSE needs a permutation of at most 4 axes, got {perm}")
    D = (1,) * (4 - k) + tuple(x.shape)
    P = tuple(range(4 - k)) + tuple(p + 4 - k for p in perm)
    out = tuple(x.shape[p] for p in perm)
    return Op(Kind.TRANSPOSE, name, (ref,), (*D, *P, _signed(x)), TensorInfo(out, x.dtype))


def mul_op(name: str, a_ref: int, a: TensorInfo, b, a_q, b_q, c_q) -> Op:
    """MUL: ``b`` is (reference, TensorInfo) of a runtime input or an int8/uint8 array (the committed constant,
    in the committed layout); ``a_q``, ``b_q``, ``c_q``: (float32 scale, numpy int8/uint8 zero point) of a, b and
    the output, whose dtype is c's zero point's. b's element count must divide a's (broadcast over a's leading
    dimensions). Raises ModelError otherwise."""
    const = None
    if isinstance(b, np.ndarray):
        const, nb, bs, refs = b, b.size, int(b.dtype == np.int8), (a_ref,)
    else:
        nb, bs, refs = b[1].numel, _signed(b[1]), (a_ref, b[0])
    if a.numel % nb:
        raise ModelError(f"node {name!r}: b's {nb} elements do not broadcast over a's {a.numel}")
    cs = _zp_signed(c_q[1], name)
    bits = [f32_bits(np.float32(q[0])) for q in (a_q, b_q, c_q)]
    params = (a.numel, nb, int(a_q[1]), int(b_q[1]), int(c_q[1]), *bits, _signed(a), bs, cs)
    return Op(Kind.MUL, name, refs, params, TensorInfo(a.shape, _dt(cs)), const=const)


def softmax_op(name: str, ref: int, x: TensorInfo, x_scale, y_scale, y_zp) -> Op:
    """SOFTMAX along the last axis of ``x``'s committed layout; the output has y_zp's dtype."""
    cols = int(x.shape[-1])
    ys = _zp_signed(y_zp, name)
    params = (x.numel // cols, cols, _signed(x), int(y_zp), ys, f32_bits(np.float32(y_scale)))
    return Op(Kind.SOFTMAX, name, (ref,), params, TensorInfo(x.shape, _dt(ys)), const=softmax_table(x_scale))


def check_op(op: Op) -> None:
    """Raise UnsupportedOperator naming ``op``'s node unless its descriptor satisfies `violation`."""
    why = violation(op.kind, op.named(), len(op.inputs))
    if why is not None:
        raise UnsupportedOperator(op.kind.name, op.name, f"descriptor the contract cannot decide: {why}")
