"""Commitments of one evaluation (every tensor's tree, the trace, the model) and what each game move needs.

`Trace` is what a solver commits to and what a challenger compares against: the k-ary search reads children
from it (`children`), the one-step reads openings from it (`step_openings`). The leaf indices an opening must
cover are derived here exactly as `contracts/inference/OneStep.sol` derives them, kind by kind. The weight, table
and constant trees are the operator's own (`offchain.inference.graph.Op.trees`), the ones its descriptor commits to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import elementwise, pooling
from .definitions import quantize_input_offset
from .evaluators import Evaluation, FastEvaluator
from .graph import Graph, Kind
from .merkle import Tree, build_tree, tensor_tree


@dataclass
class Opening:
    """Words of one tensor and their multiproof (`OneStep.Opening`)."""

    leaves: list[bytes]
    proof: list[bytes]

    def as_tuple(self):
        return (self.leaves, self.proof)


def _open(tree: Tree, byte_ranges: list[tuple[int, int]]) -> Opening:
    idx = sorted({w for off, ln in byte_ranges for w in range(off >> 5, ((off + ln - 1) >> 5) + 1)})
    return Opening([tree.node(0, i) for i in idx], tree.multiproof(idx) if idx else [])


class Trace:
    """Every tensor of an evaluation with its commitment tree.

    ``trees[0]`` is the input tensor's tree, ``trees[i + 1]`` operator i's output tree; ``trace_tree`` has leaf i =
    root of operator i's output. Build with `Trace.of(evaluation)`.
    """

    def __init__(self, graph: Graph, tensors: list[np.ndarray], seconds_eval: float = 0.0,
                 trees: list[Tree] | None = None):
        """``trees``: already built trees of the first len(trees) tensors (reused, not rehashed)."""
        t0 = time.perf_counter()
        self.graph = graph
        self.tensors = tensors
        known = trees or []
        self.trees = known + [tensor_tree(t) for t in tensors[len(known):]]
        self.trace_tree = build_tree([t.root for t in self.trees[1:]])
        self.ops_tree = graph.ops_tree()
        self.seconds_eval = seconds_eval
        self.seconds_commit = time.perf_counter() - t0

    @classmethod
    def of(cls, ev: Evaluation) -> "Trace":
        """The trace of an evaluation (every tensor committed)."""
        return cls(ev.graph, ev.tensors, ev.seconds)

    # ------------------------------------------------------------------------------------------------ roots
    @property
    def input_root(self) -> bytes:
        return self.trees[0].root

    @property
    def output_root(self) -> bytes:
        return self.trees[-1].root

    @property
    def trace_root(self) -> bytes:
        return self.trace_tree.root

    def output_proof(self) -> list[bytes]:
        """Siblings proving the output root is the last trace leaf (for `Pinpoint.submit`)."""
        return self.trace_tree.multiproof([self.graph.n_ops - 1])

    def max_tensor_depth(self) -> int:
        return max(t.depth for t in self.trees)

    # ------------------------------------------------------------------------------------------------ search
    def tree_for(self, phase: int, op_index: int) -> Tree:
        """Phase 1 searches the trace; phase 2 searches operator ``op_index``'s output tensor."""
        return self.trace_tree if phase == 1 else self.trees[op_index + 1]

    def node(self, phase: int, op_index: int, height: int, index: int) -> bytes:
        return self.tree_for(phase, op_index).node(height, index)

    def children(self, phase: int, op_index: int, height: int, index: int, m: int) -> list[bytes]:
        """The 2**m descendants of node (height, index), m levels down: the solver's reveal."""
        return self.tree_for(phase, op_index).children(height, index, m)

    # ------------------------------------------------------------------------------------------------ one-step
    def descriptor_proof(self, j: int) -> tuple[bytes, list[bytes]]:
        """Operator j's descriptor and its proof in the model commitment."""
        return self.graph.ops[j].descriptor(), self.ops_tree.multiproof([j])

    def step_openings(self, j: int, e: int) -> tuple[list[bytes], list[list[bytes]], list[Opening]]:
        """What `Pinpoint.step` needs to recompute element ``e`` of operator j's output:
        (input roots, their trace proofs, openings in `OneStep.element` order)."""
        op = self.graph.ops[j]
        roots = [self.trees[r].root for r in op.inputs]
        tproofs = [[] if r == 0 else self.trace_tree.multiproof([r - 1]) for r in op.inputs]
        if e >= op.out.numel:
            return roots, tproofs, []
        xs = [self.trees[r] for r in op.inputs]
        wt = op.trees
        P = op.named()
        k = op.kind
        if k == Kind.QUANTIZE:
            return roots, tproofs, [_open(xs[0], [(quantize_input_offset(op, e), 4)])]
        if k == Kind.CONV:
            Co, OW, OH = P["Co"], P["OW"], P["OH"]
            if P["out_nchw"]:
                ow, t = e % OW, e // OW
                oh, t = t % OH, t // OH
                co, n = t % Co, t // Co
            else:
                co, t = e % Co, e // Co
                ow, t = t % OW, t // OW
                oh, n = t % OH, t // OH
            cig = P["Ci"] // P["G"]
            g0 = (co // (Co // P["G"])) * cig
            ranges = []
            for kh in range(P["KH"]):
                ih = oh * P["SH"] + kh * P["DH"] - P["PT"]
                for kw in range(P["KW"]):
                    iw = ow * P["SW"] + kw * P["DW"] - P["PL"]
                    if 0 <= ih < P["H"] and 0 <= iw < P["W"]:
                        ranges.append((((n * P["H"] + ih) * P["W"] + iw) * P["Ci"] + g0, cig))
            K = P["KH"] * P["KW"] * cig
            x_open = _open(xs[0], ranges) if ranges else Opening([], [])
            return roots, tproofs, [x_open, _open(wt.weight, [(co * K, K)]), _open(wt.table, [(co * 32, 32)])]
        if k == Kind.ADD:
            b_tree = xs[1] if len(xs) > 1 else wt.const
            return roots, tproofs, [_open(xs[0], [(e, 1)]), _open(b_tree, [(e % P["numel_b"], 1)])]
        if k == Kind.GAP:
            hw, C = P["H"] * P["W"], P["C"]
            c, n = e % C, e // C
            if P["x_nchw"]:
                return roots, tproofs, [_open(xs[0], [((n * C + c) * hw, hw)])]
            return roots, tproofs, [_open(xs[0], [((n * hw + i) * C + c, 1) for i in range(hw)])]
        if k == Kind.MATMUL:
            K, Nn = P["K"], P["N"]
            col, row = e % Nn, e // Nn
            return roots, tproofs, [_open(xs[0], [(row * K, K)]), _open(wt.weight, [(col * K, K)]),
                                    _open(wt.table, [(col * 32, 32)])]
        if k == Kind.DEQUANTIZE:
            return roots, tproofs, [_open(xs[0], [(e, 1)])]
        if k in pooling.KINDS:
            return roots, tproofs, [_open(xs[0], r) if r else Opening([], []) for r in pooling.byte_ranges(op, e)]
        if k in elementwise.N_INPUTS:
            return roots, tproofs, [_open(xs[src] if src >= 0 else wt.const, r) if r else Opening([], [])
                                    for src, r in elementwise.step_ranges(op, e)]
        raise ValueError(f"no one-step openings for kind {k}")

    # ------------------------------------------------------------------------------------------------ cheating
    def altered(self, op_index: int, element: int, propagate: bool = True) -> "Trace":
        """A copy in which one element of operator ``op_index``'s output is changed (what a cheating solver
        commits); with ``propagate`` the later operators are recomputed from the altered tensor."""
        tensors = self.tensors[:op_index + 1] + [t.copy() for t in self.tensors[op_index + 1:]]
        out = tensors[op_index + 1].reshape(-1)
        if out.dtype == np.float32:
            out[element] = out[element] + np.float32(1.0)
        else:
            info = np.iinfo(out.dtype)
            out[element] = out[element] + 1 if out[element] < info.max else out[element] - 1
        if propagate:
            FastEvaluator(self.graph).resume(tensors, op_index + 1)
        return Trace(self.graph, tensors, trees=self.trees[:op_index + 1])


def commitments(trace: Trace) -> dict:
    """The four roots and the top-1 class, as `pinpoint eval --json` prints them (hex strings)."""
    out = trace.tensors[-1]
    return {
        "model_root": "0x" + trace.graph.model_root().hex(),
        "input_root": "0x" + trace.input_root.hex(),
        "output_root": "0x" + trace.output_root.hex(),
        "trace_root": "0x" + trace.trace_root.hex(),
        "top1": int(np.argmax(out.reshape(out.shape[0], -1)[0])),
    }


__all__ = ["Trace", "Opening", "commitments"]
