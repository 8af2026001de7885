"""Merkle multiproofs of a binary Keccak tree, shared by both products: the tensor and trace trees of the inference
game (`offchain.inference.merkle`, verified on chain by `contracts/shared/Merkle.sol` ``verifyMulti``) and the code
trees of a campaign (`offchain.campaign.codes`, verified by `contracts/campaign/CodeTree.sol` ``verify``).

Tree: 32-byte leaves taken as they are, zero-padded to ``2**depth``, inner node ``keccak256(left || right)``.  A
multiproof opens a sorted set of leaf indices at once; its siblings are listed in the order both verifiers consume
them: level by level, bottom-up, left to right, every sibling that is not itself computed from the opened leaves
(two opened siblings ``2i, 2i+1`` hash together and need nothing).
"""

from __future__ import annotations

from typing import Callable

from .hashing import keccak


def siblings(node: Callable[[int, int], bytes], depth: int, indices: list[int]) -> list[bytes]:
    """The siblings opening the leaves ``indices`` (sorted, unique, each < 2**depth) of a tree of ``depth`` whose
    node at (level, index) is ``node(level, index)`` (level 0 = the leaves; 32 bytes each), in verification order.
    No indices: no siblings. Raises ValueError if ``indices`` are unsorted, repeated or out of range."""
    if not indices:
        return []
    if any(b <= a for a, b in zip(indices, indices[1:])) or indices[0] < 0 or indices[-1] >= 1 << depth:
        raise ValueError("multiproof indices must be sorted, unique and inside the tree")
    proof: list[bytes] = []
    idx = list(indices)
    for level in range(depth):
        nxt: list[int] = []
        i = 0
        while i < len(idx):
            j = idx[i]
            if j % 2 == 0 and i + 1 < len(idx) and idx[i + 1] == j + 1:
                i += 2
            else:
                proof.append(node(level, j ^ 1))
                i += 1
            nxt.append(j >> 1)
        idx = nxt
    return proof


def verify(root: bytes, depth: int, indices: list[int], leaves: list[bytes], proof: list[bytes]) -> bool:
    """True iff the 32-byte ``leaves`` at ``indices`` (sorted, unique) and the siblings ``proof`` hash up to ``root``
    in a tree of ``depth``, consuming every sibling: the Python mirror of ``Merkle.verifyMulti`` and
    ``CodeTree.verify`` (held against both by the tests; like them it trusts the caller to pass sorted, unique
    indices).  Never raises on malformed input: it returns False."""
    if len(indices) != len(leaves) or not indices:
        return False
    idx, val, p = list(indices), list(leaves), 0
    for _ in range(depth):
        ni, nv, i = [], [], 0
        while i < len(idx):
            j = idx[i]
            if j % 2 == 0 and i + 1 < len(idx) and idx[i + 1] == j + 1:
                h = keccak(val[i] + val[i + 1]); i += 2
            else:
                if p >= len(proof):
                    return False
                h = keccak(val[i] + proof[p]) if j % 2 == 0 else keccak(proof[p] + val[i])
                p += 1; i += 1
            ni.append(j >> 1); nv.append(h)
        idx, val = ni, nv
    return p == len(proof) and len(val) == 1 and val[0] == root
