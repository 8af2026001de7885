"""Batched Keccak-256 of Merkle tree levels, compiled with numba: every inner node of a tree in one call.

An inner node is ``keccak256(left || right)`` of two 32-byte children (`offchain.inference.merkle`): a 64-byte
message, so one Keccak-f[1600] permutation of one padded block (rate 136 bytes; pad byte 0x01 at offset 64, 0x80 at
offset 135). `build_levels` hashes a whole tree level by level, the nodes of a level in parallel (numba ``prange``)
when the level is large. The result is byte-identical to `offchain.common.hashing.keccak` (pycryptodome) on every
pair (`tests/test_merkle.py`, property-based).

Compiled code is cached on disk (``cache=True``: numba writes it to ``__pycache__`` next to this module, or to its
user-wide cache directory if that is not writable); the first call in a fresh checkout compiles (a few seconds),
later processes load the cache.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit, prange

if sys.byteorder != "little":  # lanes are read as native uint64: Keccak lanes are little-endian
    raise ImportError("offchain.inference.hashing needs a little-endian CPU")

_RC = np.array([
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000, 0x000000000000808B,
    0x0000000080000001, 0x8000000080008081, 0x8000000000008009, 0x000000000000008A, 0x0000000000000088,
    0x0000000080008009, 0x000000008000000A, 0x000000008000808B, 0x800000000000008B, 0x8000000000008089,
    0x8000000000008003, 0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008], dtype=np.uint64)

PARALLEL_MIN = 4096
"""Levels with at least this many nodes are hashed in parallel; smaller ones serially (no thread start-up)."""


@njit(cache=True, inline="always")
def _pair(x, i, r, out, k):
    """out[k] = keccak256(x[i] || r) for rows of 4 little-endian uint64 lanes (r: one such row)."""
    RC = _RC
    a0, a1, a2, a3 = x[i, 0], x[i, 1], x[i, 2], x[i, 3]
    a4, a5, a6, a7 = r[0], r[1], r[2], r[3]
    a8 = np.uint64(1)
    a16 = np.uint64(0x8000000000000000)
    z = np.uint64(0)
    a9 = a10 = a11 = a12 = a13 = a14 = a15 = z
    a17 = a18 = a19 = a20 = a21 = a22 = a23 = a24 = z
    for rnd in range(24):
        c0 = a0 ^ a5 ^ a10 ^ a15 ^ a20
        c1 = a1 ^ a6 ^ a11 ^ a16 ^ a21
        c2 = a2 ^ a7 ^ a12 ^ a17 ^ a22
        c3 = a3 ^ a8 ^ a13 ^ a18 ^ a23
        c4 = a4 ^ a9 ^ a14 ^ a19 ^ a24
        d0 = c4 ^ ((c1 << np.uint64(1)) | (c1 >> np.uint64(63)))
        d1 = c0 ^ ((c2 << np.uint64(1)) | (c2 >> np.uint64(63)))
        d2 = c1 ^ ((c3 << np.uint64(1)) | (c3 >> np.uint64(63)))
        d3 = c2 ^ ((c4 << np.uint64(1)) | (c4 >> np.uint64(63)))
        d4 = c3 ^ ((c0 << np.uint64(1)) | (c0 >> np.uint64(63)))
        b0 = (a0 ^ d0)
        b16 = (((a5 ^ d0) << np.uint64(36)) | ((a5 ^ d0) >> np.uint64(28)))
        b7 = (((a10 ^ d0) << np.uint64(3)) | ((a10 ^ d0) >> np.uint64(61)))
        b23 = (((a15 ^ d0) << np.uint64(41)) | ((a15 ^ d0) >> np.uint64(23)))
        b14 = (((a20 ^ d0) << np.uint64(18)) | ((a20 ^ d0) >> np.uint64(46)))
        b10 = (((a1 ^ d1) << np.uint64(1)) | ((a1 ^ d1) >> np.uint64(63)))
        b1 = (((a6 ^ d1) << np.uint64(44)) | ((a6 ^ d1) >> np.uint64(20)))
        b17 = (((a11 ^ d1) << np.uint64(10)) | ((a11 ^ d1) >> np.uint64(54)))
        b8 = (((a16 ^ d1) << np.uint64(45)) | ((a16 ^ d1) >> np.uint64(19)))
        b24 = (((a21 ^ d1) << np.uint64(2)) | ((a21 ^ d1) >> np.uint64(62)))
        b20 = (((a2 ^ d2) << np.uint64(62)) | ((a2 ^ d2) >> np.uint64(2)))
        b11 = (((a7 ^ d2) << np.uint64(6)) | ((a7 ^ d2) >> np.uint64(58)))
        b2 = (((a12 ^ d2) << np.uint64(43)) | ((a12 ^ d2) >> np.uint64(21)))
        b18 = (((a17 ^ d2) << np.uint64(15)) | ((a17 ^ d2) >> np.uint64(49)))
        b9 = (((a22 ^ d2) << np.uint64(61)) | ((a22 ^ d2) >> np.uint64(3)))
        b5 = (((a3 ^ d3) << np.uint64(28)) | ((a3 ^ d3) >> np.uint64(36)))
        b21 = (((a8 ^ d3) << np.uint64(55)) | ((a8 ^ d3) >> np.uint64(9)))
        b12 = (((a13 ^ d3) << np.uint64(25)) | ((a13 ^ d3) >> np.uint64(39)))
        b3 = (((a18 ^ d3) << np.uint64(21)) | ((a18 ^ d3) >> np.uint64(43)))
        b19 = (((a23 ^ d3) << np.uint64(56)) | ((a23 ^ d3) >> np.uint64(8)))
        b15 = (((a4 ^ d4) << np.uint64(27)) | ((a4 ^ d4) >> np.uint64(37)))
        b6 = (((a9 ^ d4) << np.uint64(20)) | ((a9 ^ d4) >> np.uint64(44)))
        b22 = (((a14 ^ d4) << np.uint64(39)) | ((a14 ^ d4) >> np.uint64(25)))
        b13 = (((a19 ^ d4) << np.uint64(8)) | ((a19 ^ d4) >> np.uint64(56)))
        b4 = (((a24 ^ d4) << np.uint64(14)) | ((a24 ^ d4) >> np.uint64(50)))
        a0 = b0 ^ (~b1 & b2)
        a1 = b1 ^ (~b2 & b3)
        a2 = b2 ^ (~b3 & b4)
        a3 = b3 ^ (~b4 & b0)
        a4 = b4 ^ (~b0 & b1)
        a5 = b5 ^ (~b6 & b7)
        a6 = b6 ^ (~b7 & b8)
        a7 = b7 ^ (~b8 & b9)
        a8 = b8 ^ (~b9 & b5)
        a9 = b9 ^ (~b5 & b6)
        a10 = b10 ^ (~b11 & b12)
        a11 = b11 ^ (~b12 & b13)
        a12 = b12 ^ (~b13 & b14)
        a13 = b13 ^ (~b14 & b10)
        a14 = b14 ^ (~b10 & b11)
        a15 = b15 ^ (~b16 & b17)
        a16 = b16 ^ (~b17 & b18)
        a17 = b17 ^ (~b18 & b19)
        a18 = b18 ^ (~b19 & b15)
        a19 = b19 ^ (~b15 & b16)
        a20 = b20 ^ (~b21 & b22)
        a21 = b21 ^ (~b22 & b23)
        a22 = b22 ^ (~b23 & b24)
        a23 = b23 ^ (~b24 & b20)
        a24 = b24 ^ (~b20 & b21)
        a0 ^= RC[rnd]
    out[k, 0] = a0
    out[k, 1] = a1
    out[k, 2] = a2
    out[k, 3] = a3


@njit(cache=True, parallel=True)
def _build(buf, offsets, sizes, zeros):
    """Hash level l (rows offsets[l]..offsets[l]+sizes[l] of buf) into level l + 1, for every level; an odd last
    node pairs with zeros[l], the root of an all-zero subtree of height l."""
    for lvl in range(len(sizes) - 1):
        src = buf[offsets[lvl]:offsets[lvl] + sizes[lvl]]
        dst = buf[offsets[lvl + 1]:offsets[lvl + 1] + sizes[lvl + 1]]
        n, m = sizes[lvl], sizes[lvl + 1]
        full = n // 2
        if m >= PARALLEL_MIN:
            for k in prange(full):
                _pair(src, 2 * k, src[2 * k + 1], dst, k)
        else:
            for k in range(full):
                _pair(src, 2 * k, src[2 * k + 1], dst, k)
        if n % 2:
            _pair(src, n - 1, zeros[lvl], dst, full)


def level_sizes(n_leaves: int, depth: int) -> list[int]:
    """Nodes per level of a tree over ``n_leaves`` leaves forced to ``depth``: ceil halving, ``depth + 1`` levels."""
    sizes = [n_leaves]
    for _ in range(depth):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def build_levels(buf: np.ndarray, sizes: list[int], zeros: np.ndarray) -> list[np.ndarray]:
    """Fill every inner level of a tree in place and return the levels as (nodes, 32) uint8 views.

    ``buf``: uint64 array of shape (sum(sizes), 4) whose first ``sizes[0]`` rows hold the leaves (32 bytes each, in
    memory order); ``sizes`` from `level_sizes`; ``zeros``: (>= len(sizes), 4) uint64, the zero-subtree roots.
    """
    offsets = np.zeros(len(sizes), np.int64)
    offsets[1:] = np.cumsum(sizes[:-1])
    if len(sizes) > 1:
        _build(buf, offsets, np.asarray(sizes, np.int64), zeros)
    b8 = buf.view(np.uint8)
    return [b8[o:o + s] for o, s in zip(offsets.tolist(), sizes)]


def hash_pairs(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """keccak256(left[i] || right[i]) for (n, 32) uint8 arrays; returns (n, 32) uint8."""
    n = len(left)
    x = np.empty((2 * n, 4), np.uint64)
    x8 = x.view(np.uint8)
    x8[0::2] = left
    x8[1::2] = right
    out = np.empty((n, 4), np.uint64)
    _pairs(x, out)
    return out.view(np.uint8)


@njit(cache=True)
def _pairs(x, out):
    for k in range(out.shape[0]):
        _pair(x, 2 * k, x[2 * k + 1], out, k)
