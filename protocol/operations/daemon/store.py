"""The content-addressed store of models and inputs the daemons evaluate tasks from (data availability is assumed,
as in Agatha: `pinpoint task post` fills it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from offchain.common.errors import PinpointError
from offchain.inference.graph import ModelError
from offchain.inference.inputs import InputError, load_input
from offchain.inference.pipeline import load_model, run
from offchain.inference.trace import Trace


class DataUnavailable(PinpointError, RuntimeError):
    """The model or input of a task is not in the local store, or what is there does not hash to the posted roots."""


class TaskRefused(DataUnavailable):
    """The task is one the daemon must not take on: its model is one the loader refuses (an unsupported operator,
    or a descriptor outside `offchain.inference.limits`, which the contract decides against the solver), or
    (evaluator) an operator's tensor tree is deeper than the task's declared ``maxTensorDepth`` (a challenge there
    voids the task)."""


class Store:
    """Content-addressed store of models and inputs: ``<dir>/<modelRoot>.onnx`` and ``<dir>/<inputRoot>.npy``
    (roots as 0x-hex, as posted on chain)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def put(self, model_path: Path, trace: Trace) -> tuple[Path, Path]:
        """Copy the model and save the (preprocessed float32) input tensor of ``trace``; returns both paths."""
        self.dir.mkdir(parents=True, exist_ok=True)
        m = self.dir / f"0x{trace.graph.model_root().hex()}.onnx"
        x = self.dir / f"0x{trace.input_root.hex()}.npy"
        if not m.exists():
            shutil.copyfile(model_path, m)
        if not x.exists():
            np.save(x, trace.tensors[0], allow_pickle=False)
        return m, x

    def evaluate(self, model_root: bytes, input_root: bytes) -> Trace:
        """Load and evaluate the task with these roots (32 bytes each) through `offchain.inference.pipeline` and
        commit. Raises DataUnavailable if a file is missing or unreadable, or the loaded model or input does not hash
        to its root; TaskRefused (naming the node and the rule) if the loader refuses the model."""
        m = self.dir / f"0x{model_root.hex()}.onnx"
        x = self.dir / f"0x{input_root.hex()}.npy"
        if not m.exists() or not x.exists():
            raise DataUnavailable(f"not in the store {self.dir}: " + ", ".join(p.name for p in (m, x) if not p.exists()))
        try:
            graph = load_model(m)
        except ModelError as e:
            raise TaskRefused(f"the loader refuses the model {m.name}: {e}") from None
        try:
            if graph.model_root() != model_root:
                raise DataUnavailable(f"{m.name} has model root 0x{graph.model_root().hex()}")
            trace = run(graph, load_input(x, graph))
        except (ModelError, InputError) as e:
            raise DataUnavailable(str(e)) from None
        if trace.input_root != input_root:
            raise DataUnavailable(f"{x.name} has input root 0x{trace.input_root.hex()}")
        return trace
