"""The compiled batched Keccak and the array-backed trees against the reference: pycryptodome's Keccak-256 and the
plain list-of-bytes tree builder the commitments were first defined with (byte-identical roots and proofs)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from offchain.common.hashing import keccak
from offchain.inference.hashing import PARALLEL_MIN, hash_pairs
from offchain.inference.merkle import (ZERO_HASHES, build_tree, depth_for, tensor_bytes, tensor_tree, verify_multi,
                                       words_of)


def reference_levels(leaves: list[bytes], depth: int) -> list[list[bytes]]:
    """The tree as first defined: pad odd levels with the zero-subtree root, hash pairs one Keccak call each."""
    levels, cur = [list(leaves)], list(leaves)
    for lvl in range(depth):
        if len(cur) % 2:
            cur = cur + [ZERO_HASHES[lvl]]
        cur = [keccak(cur[i] + cur[i + 1]) for i in range(0, len(cur), 2)]
        levels.append(cur)
    return levels


def reference_multiproof(levels: list[list[bytes]], depth: int, indices: list[int]) -> list[bytes]:
    proof, idx = [], list(indices)
    for level in range(depth):
        nxt, i = [], 0
        while i < len(idx):
            j = idx[i]
            if j % 2 == 0 and i + 1 < len(idx) and idx[i + 1] == j + 1:
                i += 2
            else:
                row = levels[level]
                proof.append(row[j ^ 1] if (j ^ 1) < len(row) else ZERO_HASHES[level])
                i += 1
            nxt.append(j >> 1)
        idx = nxt
    return proof


@given(st.lists(st.binary(min_size=64, max_size=64), min_size=1, max_size=40))
@settings(max_examples=80, deadline=None)
def test_hash_pairs_is_keccak256(msgs):
    a = np.frombuffer(b"".join(msgs), np.uint8).reshape(-1, 64)
    out = hash_pairs(a[:, :32], a[:, 32:])
    assert [bytes(r) for r in out] == [keccak(m) for m in msgs]


@given(st.integers(1, 300), st.integers(0, 3), st.randoms(use_true_random=False), st.data())
@settings(max_examples=60, deadline=None)
def test_tree_and_proofs_equal_the_reference(n, extra_depth, rnd, data):
    leaves = [rnd.randbytes(32) for _ in range(n)]
    depth = depth_for(n) + extra_depth
    tree = build_tree(leaves, depth)
    ref = reference_levels(leaves, depth)
    assert tree.depth == depth and tree.root == ref[-1][0]
    assert [[bytes(r) for r in lv] for lv in tree.levels] == ref
    idx = sorted(data.draw(st.sets(st.integers(0, (1 << depth) - 1), min_size=1, max_size=6)))
    proof = tree.multiproof(idx)
    assert proof == reference_multiproof(ref, depth, idx)
    assert verify_multi(tree.root, depth, idx, [tree.node(0, i) for i in idx], proof)


@pytest.mark.parametrize("n", [2 * PARALLEL_MIN + 3, 4 * PARALLEL_MIN])
def test_parallel_levels_equal_the_reference(n):
    """Levels large enough to be hashed in parallel."""
    rng = np.random.default_rng(n)
    leaves = [bytes(r) for r in rng.integers(0, 256, (n, 32), dtype=np.uint8)]
    tree = build_tree(leaves)
    ref = reference_levels(leaves, tree.depth)
    assert [[bytes(r) for r in lv] for lv in tree.levels] == ref


@given(st.sampled_from([np.int8, np.uint8, np.int32, np.uint32, np.float32]), st.integers(0, 200),
       st.randoms(use_true_random=False))
@settings(max_examples=40, deadline=None)
def test_tensor_tree_commits_the_canonical_bytes(dtype, n, rnd):
    a = np.frombuffer(rnd.randbytes(n * np.dtype(dtype).itemsize), dtype).reshape(-1)
    a = a.reshape(1, -1) if n % 2 else a
    words = words_of(tensor_bytes(a))
    assert tensor_tree(a).root == reference_levels(words, depth_for(len(words)))[-1][0]


def test_bad_leaves_rejected():
    with pytest.raises(ValueError, match="32 bytes"):
        build_tree([b"\x00" * 31])
    with pytest.raises(ValueError, match="do not fit"):
        build_tree([bytes(32)] * 5, depth=2)
    with pytest.raises(ValueError):
        build_tree([])
    with pytest.raises(TypeError, match="no canonical encoding"):
        tensor_tree(np.zeros(3, np.float64))
