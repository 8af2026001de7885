"""Load a model, evaluate an input, build its trace: the one path every caller takes (CLI, daemons, scenarios,
benchmarks).

    graph = load_model(path)            # ONNX -> canonical `Graph`          (raises ModelError)
    trace = run(graph, x)               # evaluate + commit -> `Trace`       (raises InputError)
    trace = run_files(model, input)     # both, from files
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .graph import Graph, load
from .kernels import evaluate, load_input
from .trace import Trace


def load_model(path: str | Path, batch: int = 1) -> Graph:
    """The canonical graph of the int8 ONNX model at ``path`` for input batch ``batch``. Raises ModelError."""
    return load(path, batch=batch)


def run(graph: Graph, x: np.ndarray, kernels: dict | None = None) -> Trace:
    """Evaluate ``graph`` on ``x`` (float32, the model's input shape) with the default (fastest exact) evaluator,
    or ``kernels``, and commit every tensor. Raises InputError."""
    return Trace.of(evaluate(graph, x, kernels))


def run_files(model: str | Path, input_path: str | Path, batch: int = 1) -> Trace:
    """`run` on a model file and an input file (an image, preprocessed as the model needs, or a ``.npy`` tensor).
    Raises ModelError or InputError."""
    graph = load_model(model, batch=batch)
    return run(graph, load_input(input_path, graph))
