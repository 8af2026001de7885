"""Evaluators of a canonical `Graph`: objects bound to one graph that own whatever they precompute for it.

    ev = make_evaluator(graph)            # "auto": onnxruntime's int8 kernels if the graph allows it, else ...
    evaluation = ev(x)                    # every tensor of one evaluation (`Evaluation`); call again at will
    evaluation = evaluate(graph, x)       # one-off: builds the evaluator, evaluates once

* `DefinitionsEvaluator`: the operator definitions (`offchain.inference.definitions.DEFINITIONS`), the reference.
* `FastEvaluator`: the numpy fast path (`offchain.inference.fast.FAST`); keeps each CONV/MATMUL's float64 weights.
* `OrtEvaluator`: the graph compiled to ONNX integer/IEEE operators (`offchain.inference.ort`) in one onnxruntime
  session.
* `NativeEvaluator`: onnxruntime's own int8 kernels (QLinearConv/QLinearMatMul) on uint8-shifted weights, or on
  the int8 weights where the CPU runs them exactly (`offchain.inference.ort_native`, `offchain.inference.ort_probe`),
  the fastest and the default.

All give the same bytes (`tests/test_kernels.py`). Build an evaluator once to evaluate many inputs on one graph:
`evaluate` pays the set-up (weights, onnxruntime session) on every call.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .definitions import DEFINITIONS, quantize_def
from .fast import FAST, PREPARE
from .graph import Graph, Kind
from .inputs import check_input
from .ort import NotCompilable, compile_graph
from .ort_native import compile_native
from .ort_probe import int8_kernels_exact

KINDS = ("auto", "native", "ort", "fast", "definitions")

Kernels = Mapping[Kind, Callable[..., np.ndarray]]


@dataclass
class Evaluation:
    """All tensors of one evaluation: ``tensors[0]`` is the input, ``tensors[i + 1]`` the output of operator i,
    each in its committed layout; ``seconds`` is the wall-clock time of the evaluation."""

    graph: Graph
    tensors: list[np.ndarray]
    seconds: float

    @property
    def output(self) -> np.ndarray:
        """The model output (the last operator's output)."""
        return self.tensors[-1]

    def top1(self) -> list[int]:
        """Arg-max class per batch row of the output (first index on ties)."""
        out = self.output.reshape(self.output.shape[0], -1)
        return [int(i) for i in np.argmax(out, axis=1)]


class Evaluator:
    """Evaluates one graph (``graph``); call it with an input to get an `Evaluation`."""

    graph: Graph

    def __call__(self, x: np.ndarray) -> Evaluation:
        """Evaluate the graph on ``x`` (float32, the model's input shape). Raises InputError."""
        raise NotImplementedError


class KernelEvaluator(Evaluator):
    """Operator by operator with a kernel table (Kind -> ``(op, *inputs) -> output``, as `DEFINITIONS`).

    ``prepare`` (Kind -> ``op -> value``): what to compute once per operator and pass to its kernel as ``wd``;
    the results are kept in this object.
    """

    def __init__(self, graph: Graph, kernels: Kernels, prepare: Mapping[Kind, Callable] | None = None):
        self.graph = graph
        self.kernels = kernels
        self.prepare = prepare or {}
        self._prepared: dict[int, object] = {}

    def op_output(self, j: int, tensors: list[np.ndarray]) -> np.ndarray:
        """Operator j's output from ``tensors`` (the input and at least the outputs of operators 0..j-1)."""
        op = self.graph.ops[j]
        args = [tensors[r] for r in op.inputs]
        if op.const is not None and op.kind in (Kind.ADD, Kind.MUL):
            args.append(op.const)  # a constant second operand; LUT and SOFTMAX read their tables from the op
        prep = self.prepare.get(op.kind)
        if prep is None:
            return self.kernels[op.kind](op, *args)
        if j not in self._prepared:
            self._prepared[j] = prep(op)
        return self.kernels[op.kind](op, *args, wd=self._prepared[j])

    def resume(self, tensors: list[np.ndarray], start: int) -> list[np.ndarray]:
        """Recompute the outputs of operators ``start``.. in ``tensors`` (the input and every operator's output,
        in place) from the tensors before them; returns ``tensors``."""
        for j in range(start, self.graph.n_ops):
            tensors[j + 1] = self.op_output(j, tensors)
        return tensors

    def __call__(self, x: np.ndarray) -> Evaluation:
        x = check_input(self.graph, x)
        t0 = time.perf_counter()
        tensors = self.resume([x] + [None] * self.graph.n_ops, 0)
        return Evaluation(self.graph, tensors, time.perf_counter() - t0)


class DefinitionsEvaluator(KernelEvaluator):
    """The operator definitions, tap by tap in int64: the reference (slow)."""

    def __init__(self, graph: Graph):
        super().__init__(graph, DEFINITIONS)


class FastEvaluator(KernelEvaluator):
    """The numpy fast path; keeps each CONV/MATMUL's float64 weight deviations after their first use."""

    def __init__(self, graph: Graph):
        super().__init__(graph, FAST, PREPARE)


def _session(model, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    # no graph optimizations: fusions such as ConvMulFusion fold S into float weights and break exactness
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


class OrtEvaluator(Evaluator):
    """The graph compiled by `offchain.inference.ort.compile_graph`, in one onnxruntime session (QUANTIZE in numpy);
    ``threads`` = intra-op threads (0: onnxruntime's default). Raises NotCompilable for graphs outside its scope."""

    def __init__(self, graph: Graph, threads: int = 0):
        self.graph = graph
        self.session = _session(compile_graph(graph), threads)
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> Evaluation:
        x = check_input(self.graph, x)
        t0 = time.perf_counter()
        q = quantize_def(self.graph.ops[0], x)
        res = self.session.run(self.outputs, {"t1": np.ascontiguousarray(q.transpose(0, 3, 1, 2))})
        tensors = [x, q]
        for op, r in zip(self.graph.ops[1:], res):
            nchw = op.kind == Kind.CONV and op.p("out_nchw")
            if r.ndim == 4 and not nchw:
                r = np.ascontiguousarray(r.transpose(0, 2, 3, 1))
            tensors.append(r.reshape(op.out.shape))
        return Evaluation(self.graph, tensors, time.perf_counter() - t0)


class NativeEvaluator(Evaluator):
    """The graph compiled by `offchain.inference.ort_native.compile_native`: onnxruntime's own int8 kernels on
    uint8-shifted weights, every tensor written by onnxruntime straight into its own numpy array in its committed
    layout (I/O binding: no copy). ``threads`` = intra-op threads (0: onnxruntime's default);
    ``keep_int8``: u8 x s8 kernels (see `offchain.inference.ort_native`). Raises NotCompilable for graphs outside
    its scope.

    Output memory: the tensors of one evaluation are views of one 64-byte-aligned block (`_Outputs`), bound to
    onnxruntime once. A later call writes into a block again only once nothing outside this object refers to it or
    to any of its tensors (the caller dropped that `Evaluation` and every view of it): a kept evaluation is never
    overwritten, and a loop that drops each result evaluates without allocating, binding or faulting in pages."""

    POOL = 2   # blocks kept for reuse

    def __init__(self, graph: Graph, threads: int = 0, keep_int8: bool = False):
        self.graph = graph
        self.keep_int8 = keep_int8
        self.session = _session(compile_native(graph, keep_int8), threads)
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.specs = [op.out for op in graph.ops]
        self._pool: list[_Outputs] = []
        self._lock = threading.Lock()

    def _block(self) -> _Outputs:
        """A block no one else refers to, taken out of the pool (or a new one)."""
        with self._lock:
            for i, b in enumerate(self._pool):
                if b.free():
                    return self._pool.pop(i)
        return _Outputs(self.session, self.outputs, self.specs)

    def __call__(self, x: np.ndarray) -> Evaluation:
        x = check_input(self.graph, x)
        t0 = time.perf_counter()
        block = self._block()
        block.binding.bind_cpu_input("x", x)
        self.session.run_with_iobinding(block.binding)
        tensors = [x] + block.tensors
        with self._lock:
            self._pool.insert(0, block)
            del self._pool[self.POOL:]
        return Evaluation(self.graph, tensors, time.perf_counter() - t0)


class _Outputs:
    """Every output tensor of one evaluation as a view of one uint8 block (each view 64-byte aligned, a block of
    4 MiB or more starting on a 2 MiB boundary), and the onnxruntime I/O binding of the views. `free` tells whether
    anything outside refers to the block or a view."""

    ALIGN = 64
    HUGE = 2 << 20

    def __init__(self, session, names: list[str], specs):
        sizes = [int(np.prod(s.shape, dtype=np.int64)) * np.dtype(s.dtype).itemsize for s in specs]
        offsets = np.cumsum([0] + [-(-n // self.ALIGN) * self.ALIGN for n in sizes])
        total = int(offsets[-1])
        start = self.HUGE if total >= 2 * self.HUGE else self.ALIGN   # whole 2 MiB pages for a large block (numpy
        self.base = np.empty(total + start, np.uint8)                  # asks the kernel for huge pages from 4 MiB)
        a = -self.base.ctypes.data % start
        self.tensors = [self.base[a + o:a + o + n].view(s.dtype).reshape(s.shape)
                        for s, o, n in zip(specs, offsets, sizes)]
        self.binding = session.io_binding()
        for name, spec, ptr in zip(names, specs, self._pointers()):
            self.binding.bind_output(name, "cpu", 0, np.dtype(spec.dtype), tuple(spec.shape), ptr)
        self._alone = self._refcounts()

    def _pointers(self) -> list[int]:
        return [t.ctypes.data for t in self.tensors]

    def _refcounts(self) -> list[int]:
        return [sys.getrefcount(self.base)] + [sys.getrefcount(t) for t in self.tensors]

    def free(self) -> bool:
        """True iff nothing but this object refers to the block or to any of its tensors (numpy views of a view
        refer to the block: their ``base`` is the array owning the memory): the reference counts are those it had
        alone, measured the same way."""
        return self._refcounts() == self._alone


def make_evaluator(graph: Graph, kind: str | Kernels = "auto") -> Evaluator:
    """The one selection point of an evaluator for ``graph``.

    ``kind``: ``"auto"`` (`NativeEvaluator`, with int8 weights kept where `int8_kernels_exact` holds on this CPU;
    else `OrtEvaluator`; else FAST when the graph is compiled by neither), ``"native"`` (uint8-shifted weights:
    exact on every CPU), ``"ort"`` (both raise NotCompilable if the graph is not compilable), ``"fast"``, ``"definitions"``, or a kernel table (`FAST`,
    `DEFINITIONS`, or any Kind -> kernel mapping). Raises ValueError for an unknown name.
    """
    if isinstance(kind, Mapping):
        if kind is FAST:
            return FastEvaluator(graph)
        if kind is DEFINITIONS:
            return DefinitionsEvaluator(graph)
        return KernelEvaluator(graph, kind)
    if kind == "auto":
        try:
            return NativeEvaluator(graph, keep_int8=int8_kernels_exact())
        except NotCompilable:
            pass
        try:
            return OrtEvaluator(graph)
        except NotCompilable:
            return FastEvaluator(graph)
    if kind == "native":
        return NativeEvaluator(graph)
    if kind == "ort":
        return OrtEvaluator(graph)
    if kind == "fast":
        return FastEvaluator(graph)
    if kind == "definitions":
        return DefinitionsEvaluator(graph)
    raise ValueError(f"unknown evaluator {kind!r} (one of {', '.join(KINDS)}, or a kernel table)")


def evaluate(graph: Graph, x: np.ndarray, evaluator: Evaluator | str | Kernels | None = None) -> Evaluation:
    """Evaluate ``graph`` on ``x`` (float32, the model's input shape); returns every intermediate tensor.

    ``evaluator``: an `Evaluator` of ``graph`` (reused, with its caches), or what `make_evaluator` takes (None:
    ``"auto"``, the fastest). All give the same bytes. Raises InputError, or ValueError for an evaluator of
    another graph or an unknown name.
    """
    if isinstance(evaluator, Evaluator):
        if evaluator.graph is not graph:
            raise ValueError("the evaluator was built for another graph")
        return evaluator(x)
    return make_evaluator(graph, "auto" if evaluator is None else evaluator)(x)
