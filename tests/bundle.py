"""The data bundle's nine models for tests and `benchmarks/models.py`: how each is read (preprocessing, images),
its int8 version (the two int8 models as they are; the seven float32 ones quantized by `pinpoint quantize`'s
library, `offchain.inference.quantize`, into a cache directory at run time, never committed), and a runner of the
canonical graph operator by operator with every kind's fast kernel.

    for m in MODELS: path = int8_model(m, fmt="qoperator")      # quantizes once per cache directory
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = Path(os.environ.get("PINPOINT_MODEL_CACHE", Path.home() / ".cache" / "pinpoint" / "models"))


@dataclass(frozen=True)
class BundleModel:
    """One model of the bundle: file under ``models/``, images folder under ``images/``, MANIFEST preprocessing."""

    name: str
    file: str
    images: str
    preprocess: str
    int8: bool = False

    @property
    def path(self) -> Path:
        return DATA / "models" / self.file

    @property
    def folder(self) -> Path:
        return DATA / "images" / self.images


MODELS = (
    BundleModel("mobilenetv2-int8", "imagenet/mobilenetv2-12-int8.onnx", "imagenet", "torch", int8=True),
    BundleModel("resnet8-int8", "cifar10/resnet8_cifar10_int8_b16.onnx", "cifar10", "cifar_torch2", int8=True),
    BundleModel("mobilenetv2", "imagenet/mobilenetv2-1.0_fp32_dequant.onnx", "imagenet", "torch"),
    BundleModel("mobilenetv1-0.25", "imagenet/mobilenet_v1_0.25_224_fp32.onnx", "imagenet", "tf"),
    BundleModel("squeezenet1.1", "imagenet/squeezenet1.1_fp32.onnx", "imagenet", "caffe_bgr"),
    BundleModel("resnet20", "cifar10/resnet20_cifar10_fp32.onnx", "cifar10", "cifar_torch"),
    BundleModel("resnet8", "cifar10/resnet8_cifar10_fp32_dequant_b16.onnx", "cifar10", "cifar_torch2"),
    BundleModel("mnist-opset7", "mnist/mnist-cntk-opset7.onnx", "mnist", "unit"),
    BundleModel("mnist-opset8", "mnist/mnist-cntk-opset8-opt.onnx", "mnist", "unit"),
)
BY_NAME = {m.name: m for m in MODELS}
CALIBRATION = 16
"""Calibration inputs per model: the first 16 images of its folder (sorted), seeded by nothing but the order."""


def available() -> bool:
    """Whether the data bundle is present next to the checkout."""
    return DATA.is_dir()


def int8_model(m: BundleModel, fmt: str = "qoperator", per_channel: bool = False, activations: str = "uint8",
               cache: Path = CACHE) -> Path:
    """The int8 model of ``m``: the file itself for an int8 one, else quantized (``fmt``, ``per_channel``,
    ``activations``) on its first `CALIBRATION` images into ``cache`` (reused when present)."""
    from offchain.inference.quantize import FolderReader, quantize

    if m.int8:
        return m.path
    out = cache / f"{m.name}-{fmt}-{'pc' if per_channel else 'pt'}-{activations}.onnx"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        quantize(m.path, tmp, FolderReader(m.path, m.folder, m.preprocess, CALIBRATION), fmt=fmt,
                 per_channel=per_channel, activation=activations)
        tmp.replace(out)
    return out


def kernels() -> dict:
    """Kind -> fast kernel for every canonical kind (the six of `offchain.inference.fast.FAST` and those of
    `offchain.inference.pooling` and `offchain.inference.elementwise`)."""
    from offchain.inference import elementwise, pooling
    from offchain.inference.fast import FAST

    return {**FAST, **pooling.FAST, **elementwise.FAST}


def run_graph(graph, x: np.ndarray, table: dict | None = None) -> list[np.ndarray]:
    """Every tensor of ``graph`` on input ``x``, operator by operator with ``table`` (default `kernels`); a
    constant second operand (ADD, MUL) is passed after the runtime inputs, LUT and SOFTMAX read their tables
    from the operator."""
    from offchain.inference.graph import Kind

    table = table or kernels()
    t = [x]
    for op in graph.ops:
        args = [t[r] for r in op.inputs]
        if op.const is not None and op.kind in (Kind.ADD, Kind.MUL):
            args.append(op.const)
        t.append(table[op.kind](op, *args))
    return t
