"""The canonical chunking of long reductions and their partial sums: phase 3 of a pinpoint game.

An element of CONV, MATMUL or GAP is a requantized sum of ``R`` terms (its *taps*), in this order:

  * CONV: r = (kh * KW + kw) * Ci/G + c, the term (x[n, ih, iw, g0 + c] - x_zp) * (w[co, kh, kw, c] - w_zp),
    0 for a tap in the padding; R = KH * KW * Ci/G (the weight's committed order);
  * MATMUL: r = k, the term (a[row, k] - a_zp) * (b[col, k] - b_zp); R = K;
  * GAP: r = the pixel h * W + w, the term x[n, h, w, c] - x_zp; R = H * W.

The taps are cut into ``n = ceil(R / L)`` chunks of ``L`` consecutive taps (`offchain.inference.limits.chunking`).
``L`` is a function of the descriptor alone: the largest L <= R whose chunk one-step (`OneStep.chunk`) the cost
model of `offchain/inference/limits.py` bounds by ``ONE_STEP_GAS`` gas and ``ONE_STEP_CALLDATA`` bytes (a binary
search over the monotone `offchain.inference.limits.chunk_cost`, done the same way by `OneStep.chunks`).
n == 1 when the whole element fits: the game
then ends with phase 2's one-step as before. The partial sums are acc_0 = 0, acc_i = acc_{i-1} + (sum of chunk i)
for i = 1..n, chunk 1 also adding the bias (CONV, MATMUL; `partial_sums`); the element is
``requantize(acc_n)`` (`finish_value`). An honest solver's partial sums are int32 (the loader's bound on the
accumulator covers any subset of the taps).

Phase 3 dissects [0, n] k-arily over a virtual tree whose leaf i (i < 2^h, h = ceil(log2 n)) is chunk i + 1: the
node (height, index) spans the chunks after acc_{min(index * 2^height, n)} up to acc_{min((index + 1) * 2^height,
n)} (`sums_reveal` lists what the solver reveals at a node). `chunk_openings` and `finish_openings` are what the
challenger's last move proves. Parity: `tests/test_reduction.py` holds `chunk_sum` against `OneStep.chunk` and the
whole element against `OneStep.element`.
"""

from __future__ import annotations

import numpy as np

from .definitions import rq_f32, rq_int
from .graph import Kind, Op, saturate
from .limits import MAX_CHUNK_DEPTH, chunking, taps
from .merkle import Tree
from .trace import Opening

REDUCING = (Kind.CONV, Kind.MATMUL, Kind.GAP)
"""The kinds whose element is a long reduction, chunked here."""


def op_chunking(op: Op) -> tuple[int, int]:
    """(n, L) of ``op``; (1, 0) for a kind that does not reduce."""
    if op.kind not in REDUCING:
        return 1, 0
    return chunking(op.kind, op.named(), len(op.inputs))


def root_height(n: int) -> int:
    """h = ceil(log2 n): the height of the virtual tree over n chunks (`Pinpoint` starts phase 3 there)."""
    return max(0, (n - 1).bit_length())


def max_chunks() -> int:
    """The most chunks a valid descriptor may have: 2^`MAX_CHUNK_DEPTH` (bounds phase 3's rounds, hence bonds)."""
    return 1 << MAX_CHUNK_DEPTH


# ---------------------------------------------------------------------------------------------------- the terms

def _conv_site(P: dict, e: int) -> tuple[int, int, int, int]:
    """(n, oh, ow, co) of output element ``e`` in the CONV output's committed layout."""
    Co, OW, OH = P["Co"], P["OW"], P["OH"]
    if P["out_nchw"]:
        ow, t = e % OW, e // OW
        oh, t = t % OH, t // OH
        co, n = t % Co, t // Co
    else:
        co, t = e % Co, e // Co
        ow, t = t % OW, t // OW
        oh, n = t % OH, t // OH
    return n, oh, ow, co


def _signed(a: np.ndarray, signed: int) -> np.ndarray:
    return a.view(np.int8 if signed else np.uint8).astype(np.int64)


def terms(op: Op, x: np.ndarray, e: int) -> np.ndarray:
    """The R terms (int64, tap order) of output element ``e`` of ``op``; ``x`` the committed input tensor."""
    P = op.named()
    if op.kind == Kind.MATMUL:
        K, Nn = P["K"], P["N"]
        col, row = e % Nn, e // Nn
        a = _signed(x.reshape(-1)[row * K:(row + 1) * K], P["a_signed"]) - P["a_zp"]
        b = _signed(op.weight.reshape(-1)[col * K:(col + 1) * K], P["b_signed"]) - int(op.table["wzp"][col])
        return a * b
    if op.kind == Kind.GAP:
        hw, C = P["H"] * P["W"], P["C"]
        c, n = e % C, e // C
        flat = x.reshape(-1)
        idx = (n * C + c) * hw + np.arange(hw) if P["x_nchw"] else (n * hw + np.arange(hw)) * C + c
        return _signed(flat[idx], P["x_signed"]) - P["x_zp"]
    n, oh, ow, co = _conv_site(P, e)
    cig = P["Ci"] // P["G"]
    g0 = (co // (P["Co"] // P["G"])) * cig
    K = P["KH"] * P["KW"] * cig
    w = _signed(op.weight.reshape(-1)[co * K:(co + 1) * K], P["w_signed"]) - int(op.table["wzp"][co])
    xs = np.zeros(K, np.int64)
    xv = x.reshape(P["N"], P["H"], P["W"], P["Ci"])
    for kh in range(P["KH"]):
        ih = oh * P["SH"] + kh * P["DH"] - P["PT"]
        for kw in range(P["KW"]):
            iw = ow * P["SW"] + kw * P["DW"] - P["PL"]
            if 0 <= ih < P["H"] and 0 <= iw < P["W"]:
                t = kh * P["KW"] + kw
                xs[t * cig:(t + 1) * cig] = _signed(xv[n, ih, iw, g0:g0 + cig], P["x_signed"]) - P["x_zp"]
    return xs * w


def bias(op: Op, e: int) -> int:
    """The bias chunk 1 adds: the output channel's table bias (CONV, MATMUL); 0 for GAP."""
    if op.kind == Kind.GAP:
        return 0
    P = op.named()
    ch = _conv_site(P, e)[3] if op.kind == Kind.CONV else e % P["N"]
    return int(op.table["bias"][ch])


def partial_sums(op: Op, x: np.ndarray, e: int) -> list[int]:
    """[acc_0 = 0, acc_1, ..., acc_n] of element ``e`` (n from `op_chunking`); ``x`` the committed input."""
    n, L = op_chunking(op)
    t = terms(op, x, e)
    sums = [int(s) for s in np.add.reduceat(t, np.arange(0, len(t), L))] if len(t) else []
    acc = [0]
    for i, s in enumerate(sums[:n]):
        acc.append(acc[-1] + s + (bias(op, e) if i == 0 else 0))
    return acc


def chunk_sum(op: Op, x: np.ndarray, e: int, i: int) -> int:
    """The sum of chunk i + 1 (leaf i, 0-based) of element ``e``, with the bias when i == 0; 0 past the last
    chunk: what `OneStep.chunk` returns."""
    n, L = op_chunking(op)
    if i >= n:
        return 0
    return int(terms(op, x, e)[i * L:(i + 1) * L].sum()) + (bias(op, e) if i == 0 else 0)


def finish_value(op: Op, e: int, acc: int) -> int:
    """The element's encoding (its byte) requantized from the accumulator ``acc``, as `OneStep.finish`; -1 for an
    accumulator outside int32 (no honest solver reveals one: the challenger wins)."""
    if not -(1 << 31) < acc < 1 << 31:
        return -1
    P = op.named()
    if op.kind == Kind.GAP:
        y = P["y_zp"] + int(rq_int(np.array([acc]), P["M0"], P["s"])[0])
    else:
        ch = _conv_site(P, e)[3] if op.kind == Kind.CONV else e % P["N"]
        y = P["y_zp"] + int(rq_f32(np.array([acc]), int(op.table["sbits"][ch]))[0])
    return int(np.array(saturate(np.array([y]), P["y_signed"])).astype(np.int64)[0]) & 0xFF


# ---------------------------------------------------------------------------------------------------- the game

def acc_at(acc: list[int], leaf_end: int) -> int:
    """The accumulator after ``leaf_end`` leaves (clipped at the last chunk)."""
    return acc[min(leaf_end, len(acc) - 1)]


def sums_reveal(acc: list[int], height: int, index: int, m: int) -> list[int]:
    """What the solver reveals at node (height, index), m levels down: [left end, end of child 0, ..., end of child
    2^m - 1], each an accumulator (`acc` = `partial_sums`)."""
    span = 1 << (height - m)
    first = index << m
    return [acc_at(acc, first * span)] + [acc_at(acc, (first + j + 1) * span) for j in range(1 << m)]


def to_word(v: int) -> bytes:
    """An int256 as the 32-byte zigzag word of `Pinpoint.reveal` in phase 3 (`Pinpoint._sum`): 2v for v >= 0,
    -2v - 1 for v < 0, so that a small sum of either sign is mostly zero bytes (4 gas of calldata each, not 16).
    Raises ValueError outside [-2^255, 2^255)."""
    if not -(1 << 255) <= v < 1 << 255:
        raise ValueError(f"{v} is not an int256")
    return ((v << 1) ^ (v >> 255)).to_bytes(32, "big")


def from_word(w: bytes) -> int:
    """The int256 a 32-byte zigzag word of a phase-3 reveal holds (the inverse of `to_word`)."""
    z = int.from_bytes(w, "big")
    return (z >> 1) ^ -(z & 1)


def _open(tree: Tree, ranges: list[tuple[int, int]]) -> Opening:
    idx = sorted({w for off, ln in ranges if ln > 0 for w in range(off >> 5, ((off + ln - 1) >> 5) + 1)})
    return Opening([tree.node(0, i) for i in idx], tree.multiproof(idx) if idx else [])


def chunk_ranges(op: Op, e: int, i: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Byte ranges (offset, length) of the input and of the weight that leaf i of element ``e`` reads."""
    n, L = op_chunking(op)
    P = op.named()
    R = taps(op.kind, P)
    lo, hi = i * L, min(R, (i + 1) * L)
    if i >= n:
        return [], []
    if op.kind == Kind.MATMUL:
        K, Nn = P["K"], P["N"]
        col, row = e % Nn, e // Nn
        return [(row * K + lo, hi - lo)], [(col * K + lo, hi - lo)]
    if op.kind == Kind.GAP:
        hw, C = P["H"] * P["W"], P["C"]
        c, nn = e % C, e // C
        if P["x_nchw"]:
            return [((nn * C + c) * hw + lo, hi - lo)], []
        return [((nn * hw + r) * C + c, 1) for r in range(lo, hi)], []
    nn, oh, ow, co = _conv_site(P, e)
    cig = P["Ci"] // P["G"]
    g0 = (co // (P["Co"] // P["G"])) * cig
    K = P["KH"] * P["KW"] * cig
    xr = []
    for t in range(lo // cig, (hi - 1) // cig + 1):
        kh, kw = divmod(t, P["KW"])
        ih = oh * P["SH"] + kh * P["DH"] - P["PT"]
        iw = ow * P["SW"] + kw * P["DW"] - P["PL"]
        if 0 <= ih < P["H"] and 0 <= iw < P["W"]:
            c0, c1 = max(lo, t * cig) - t * cig, min(hi, (t + 1) * cig) - t * cig
            xr.append((((nn * P["H"] + ih) * P["W"] + iw) * P["Ci"] + g0 + c0, c1 - c0))
    return xr, [(co * K + lo, hi - lo)]


def _table_opening(op: Op, e: int):
    P = op.named()
    ch = _conv_site(P, e)[3] if op.kind == Kind.CONV else e % P["N"]
    return _open(op.trees.table, [(ch * 32, 32)])


def chunk_openings(trace, j: int, e: int, i: int) -> tuple[list[bytes], list[list[bytes]], list]:
    """What `Pinpoint.chunkStep` needs for leaf i of element ``e`` of operator j of ``trace`` (a
    `offchain.inference.trace.Trace`): (input roots, their proofs in ``trace``, openings in `OneStep.chunk` order:
    CONV/MATMUL [x, weight, table], GAP [x])."""
    op = trace.graph.ops[j]
    roots = [trace.trees[r].root for r in op.inputs]
    tproofs = [[] if r == 0 else trace.trace_tree.multiproof([r - 1]) for r in op.inputs]
    xr, wr = chunk_ranges(op, e, i)
    x_open = _open(trace.trees[op.inputs[0]], xr)
    if op.kind == Kind.GAP:
        return roots, tproofs, [x_open]
    return roots, tproofs, [x_open, _open(op.trees.weight, wr), _table_opening(op, e)]


def finish_openings(op: Op, e: int) -> list:
    """The openings of `OneStep.finish`: [table] for CONV/MATMUL, none for GAP."""
    return [] if op.kind == Kind.GAP else [_table_opening(op, e)]


def element_sums(trace, j: int, e: int) -> list[int]:
    """`partial_sums` of element ``e`` of operator j, from ``trace``'s committed input tensor."""
    op = trace.graph.ops[j]
    return partial_sums(op, trace.tensors[op.inputs[0]], e)
