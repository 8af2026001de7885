"""Load a model, evaluate an input, build its trace: the one path every caller takes (CLI, daemons, scenarios,
benchmarks).

    graph = load_model(path)            # ONNX -> canonical `Graph`          (raises ModelError)
    x = load_input(path, graph)         # image or .npy -> float32 input     (raises InputError)
    trace = run(graph, x)               # evaluate + commit -> `Trace`       (raises InputError)
    trace = run_files(model, input)     # all three, from files

To evaluate many inputs on one graph, build its evaluator once (`make_evaluator`) and pass it to `run`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .evaluators import Evaluation, Evaluator, Kernels, evaluate, make_evaluator
from .graph import Graph
from .inputs import load_input
from .loader import load
from .trace import Trace

__all__ = ["load_model", "load_input", "make_evaluator", "evaluate", "run", "run_files", "Evaluation", "Trace"]


def load_model(path: str | Path, batch: int = 1) -> Graph:
    """The canonical graph of the int8 ONNX model at ``path`` for input batch ``batch``. Raises ModelError."""
    return load(path, batch=batch)


def run(graph: Graph, x: np.ndarray, evaluator: Evaluator | str | Kernels | None = None) -> Trace:
    """Evaluate ``graph`` on ``x`` (float32, the model's input shape) with ``evaluator`` (an `Evaluator` of
    ``graph``, or what `make_evaluator` takes; None: the fastest exact one) and commit every tensor.
    Raises InputError."""
    return Trace.of(evaluate(graph, x, evaluator))


def run_files(model: str | Path, input_path: str | Path, batch: int = 1) -> Trace:
    """`run` on a model file and an input file (an image, preprocessed as the model needs, or a ``.npy`` tensor).
    Raises ModelError or InputError."""
    graph = load_model(model, batch=batch)
    return run(graph, load_input(input_path, graph))
