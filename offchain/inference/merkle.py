"""Keccak-256 Merkle commitments: tensors, the model, the trace.

Layout (the contract `contracts/shared/Merkle.sol` verifies exactly this):

* **Tensor.** The elements of a tensor, in its committed layout (row-major over its committed shape; activations
  are NHWC, see `offchain.inference.graph`), are serialized big-endian (`int8`/`uint8`: 1 byte, `int32`/`float32`: 4 bytes)
  into one byte string, zero-padded to a multiple of 32 bytes. Each 32-byte word is a leaf *as is* (leaves are
  not hashed: the depth of every tree is fixed by the shape, known to both sides and to the contract, so a leaf
  can never be confused with an inner node). The leaves are zero-padded to 2**depth, depth = ceil(log2(words)),
  and every inner node is ``keccak256(left || right)``. A one-word tensor has depth 0 and its root is that word.
* **Trace.** The binary tree (same rule) whose leaf i is the root of the output tensor of operator i.
  The output of the last operator is the model output, so ``output_root`` is the last leaf of the trace.
* **Model.** Operator i is described by ``desc_i = abi.encode(uint256 kind, uint256[] inputs, int256[] params,
  bytes32 weightRoot, bytes32 tableRoot, bytes32 constRoot)``; the operator tree has leaves ``keccak256(desc_i)``
  and ``model_root = keccak256(abi.encode(uint256 nOps, bytes32 opsRoot))``.

A *multiproof* opens any sorted set of leaves at once; its siblings are listed in the order the verifier consumes
them (level by level, left to right), see `multiproof` and `Merkle.verifyMulti`.
"""

from __future__ import annotations

import numpy as np

from offchain.common import multiproof
from offchain.common.hashing import keccak

from .hashing import build_levels, level_sizes

WORD = 32
ZERO_WORD = bytes(WORD)


def _zero_hashes(n: int) -> list[bytes]:
    z = [ZERO_WORD]
    for _ in range(n):
        z.append(keccak(z[-1] + z[-1]))
    return z


ZERO_HASHES = _zero_hashes(64)
"""ZERO_HASHES[d] is the root of an all-zero subtree of depth d."""
_ZERO_LANES = np.frombuffer(b"".join(ZERO_HASHES), np.uint64).reshape(-1, 4).copy()


def depth_for(n_leaves: int) -> int:
    """Depth of the tree over ``n_leaves`` leaves: ceil(log2(n)), 0 for one leaf. Raises ValueError if n < 1."""
    if n_leaves < 1:
        raise ValueError("a tree needs at least one leaf")
    return (n_leaves - 1).bit_length()


# --------------------------------------------------------------------------------------------------- encoding

_BE = {np.dtype(np.int8): ">i1", np.dtype(np.uint8): ">u1", np.dtype(np.int32): ">i4",
       np.dtype(np.float32): ">f4", np.dtype(np.uint32): ">u4"}


def tensor_bytes(a: np.ndarray) -> bytes:
    """Canonical serialization of a tensor (already in its committed layout): row-major, big-endian elements,
    zero-padded to whole 32-byte words. Supported dtypes: int8, uint8, int32, uint32, float32 (TypeError else)."""
    try:
        be = _BE[a.dtype]
    except KeyError:
        raise TypeError(f"no canonical encoding for dtype {a.dtype}") from None
    raw = np.ascontiguousarray(a, dtype=be).tobytes()
    pad = (-len(raw)) % WORD
    return raw + bytes(pad) if pad else raw


def words_of(data: bytes) -> list[bytes]:
    """Split a word-aligned byte string into 32-byte leaves."""
    if len(data) % WORD:
        raise ValueError("data is not word aligned")
    if not data:
        return [ZERO_WORD]
    return [data[i:i + WORD] for i in range(0, len(data), WORD)]


# ------------------------------------------------------------------------------------------------------ trees

class Tree:
    """A binary Keccak Merkle tree with all its levels kept, for proofs.

    ``levels[l]`` is a (nodes, 32) uint8 array of level l (0 = the leaves, not padded: missing nodes are
    zero-subtree roots), ``levels[depth]`` holds the one root. Build with `build_tree`, `tree_of_words` or
    `tensor_tree`.
    """

    def __init__(self, levels: list[np.ndarray], depth: int):
        self.levels = levels
        self.depth = depth

    @property
    def root(self) -> bytes:
        """The root, 32 bytes."""
        return self.levels[-1][0].tobytes()

    @property
    def n_leaves(self) -> int:
        return len(self.levels[0])

    def node(self, level: int, index: int) -> bytes:
        """Node at ``level`` (0 = leaves) and ``index``; nodes past the data are zero-subtree roots."""
        row = self.levels[level]
        return row[index].tobytes() if index < len(row) else ZERO_HASHES[level]

    def children(self, level: int, index: int, m: int) -> list[bytes]:
        """The 2**m descendants, ``m`` levels below node (level, index): what the solver reveals in one move
        of the k-ary search (k = 2**m)."""
        base = index << m
        return [self.node(level - m, base + i) for i in range(1 << m)]

    def multiproof(self, indices: list[int]) -> list[bytes]:
        """Siblings that open the leaves ``indices`` (sorted, unique), in the order `Merkle.verifyMulti` reads them
        (`offchain.common.multiproof.siblings`). Raises ValueError on unsorted, repeated or out-of-range indices."""
        return multiproof.siblings(self.node, self.depth, indices)


def _tree_from(data: np.ndarray, n_words: int, depth: int | None) -> Tree:
    """The tree over ``data`` (flat uint8, at most n_words * 32 bytes, zero-padded to them)."""
    d = depth_for(n_words) if depth is None else depth
    if n_words > (1 << d):
        raise ValueError(f"{n_words} leaves do not fit a tree of depth {d}")
    sizes = level_sizes(n_words, d)
    buf = np.empty((sum(sizes), 4), np.uint64)
    b8 = buf.view(np.uint8).reshape(-1)
    b8[:len(data)] = data
    b8[len(data):n_words * WORD] = 0
    return Tree(build_levels(buf, sizes, _ZERO_LANES), d)


def build_tree(leaves: list[bytes], depth: int | None = None) -> Tree:
    """Build the tree over ``leaves`` (32-byte values), zero-padded to 2**depth.

    ``depth`` defaults to `depth_for(len(leaves))`; a larger depth may be forced. Raises ValueError if the leaves
    do not fit in 2**depth or a leaf is not 32 bytes.
    """
    if any(len(x) != WORD for x in leaves):
        raise ValueError("every leaf must be 32 bytes")
    depth_for(len(leaves))
    return _tree_from(np.frombuffer(b"".join(leaves), np.uint8), len(leaves), depth)


def tensor_tree(a: np.ndarray) -> Tree:
    """The commitment tree of a tensor in its committed layout (see module docstring): the words of
    `tensor_bytes`, hashed level by level with the compiled batched Keccak (`offchain.inference.hashing`)."""
    try:
        be = _BE[a.dtype]
    except KeyError:
        raise TypeError(f"no canonical encoding for dtype {a.dtype}") from None
    raw = np.ascontiguousarray(a, dtype=be).reshape(-1).view(np.uint8)
    return _tree_from(raw, max(1, -(-len(raw) // WORD)), None)


def tensor_root(a: np.ndarray) -> bytes:
    """Merkle root of a tensor; 32 bytes."""
    return tensor_tree(a).root


def verify_multi(root: bytes, depth: int, indices: list[int], leaves: list[bytes], proof: list[bytes]) -> bool:
    """Python mirror of `Merkle.verifyMulti`: True iff ``leaves`` at ``indices`` (sorted, unique) and the
    siblings ``proof`` hash up to ``root`` in a tree of ``depth``, consuming every sibling
    (`offchain.common.multiproof.verify`)."""
    return multiproof.verify(root, depth, indices, leaves, proof)


def subtree_levels(nodes: list[bytes]) -> list[list[bytes]]:
    """Every level of the complete binary tree over ``nodes`` (32-byte values, a power of two of them), bottom-up:
    ``levels[0] == nodes`` and ``levels[-1] == [root]``. This is how the k-ary search reveals 2**m children at
    once. Raises ValueError if ``nodes`` is empty or not a power of two long."""
    n = len(nodes)
    if n < 1 or n & (n - 1):
        raise ValueError(f"a complete subtree needs a power of two of nodes, got {n}")
    levels = [list(nodes)]
    while len(levels[-1]) > 1:
        cur = levels[-1]
        levels.append([keccak(cur[i] + cur[i + 1]) for i in range(0, len(cur), 2)])
    return levels


def subtree_root(nodes: list[bytes]) -> bytes:
    """Root of the complete binary tree over ``nodes`` (a power of two of them): the check the contract applies
    to the 2**m children the solver reveals. Raises ValueError as `subtree_levels`."""
    return subtree_levels(nodes)[-1][0]


def subtree_siblings(nodes: list[bytes], index: int) -> list[bytes]:
    """Proof of ``nodes[index]`` within the complete binary tree over ``nodes`` (a power of two of them): one
    sibling per level, bottom-up (log2(len(nodes)) of them). Raises ValueError as `subtree_levels` or if
    ``index`` is out of range."""
    if not 0 <= index < len(nodes):
        raise ValueError(f"index {index} outside the {len(nodes)} nodes")
    return [level[(index >> h) ^ 1] for h, level in enumerate(subtree_levels(nodes)[:-1])]
