"""ResNet-50 and VGG-16 at their real layer shapes with SEEDED SYNTHETIC weights, quantized to int8 QOperator.

No trained copy of either network could be had offline (the data bundle's MANIFEST.md), so the benchmarks build them:
the exact layer shapes of the papers (He et al. 2016, ResNet-50 v1 with stride on the 3x3 convolution of each
bottleneck as in torchvision; Simonyan and Zisserman 2015, VGG-16 configuration D), batch normalization folded into
the convolutions, weights drawn from He-normal distributions by ``numpy.random.default_rng(seed)``, then quantized by
onnxruntime's own ``quantize_static`` (QOperator, uint8 activations, int8 weights, per tensor) calibrated on a few of
the bundle's ImageNet photos. Their logits mean nothing: every figure measured on them is about shapes (gas, rounds,
latency, commitment time), and is labelled "synthetic weights" wherever it appears.

    .venv/bin/python benchmarks/synthetic_models.py [--model resnet50|vgg16|all] [--seed 0] [--out DIR]

writes ``<name>_synthetic_fp32.onnx`` and ``<name>_synthetic_int8.onnx`` to DIR (default
``$PINPOINT_HOME/cache/models``; nothing here is committed) and prints their paths; `ensure` returns the int8 path,
building it once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from protocol.config import home  # noqa: E402

PHOTOS = ROOT.parent / "shared/data/images/imagenet"
ASSET_PHOTOS = ROOT / "offchain/assets"


class _Net:
    """A tiny builder of an fp32 ONNX graph with seeded He-normal weights."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def _name(self, tag: str) -> str:
        self.n += 1
        return f"{tag}{self.n}"

    def const(self, arr: np.ndarray, tag: str) -> str:
        name = self._name(tag)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, ins: list[str], tag: str, **attrs) -> str:
        out = self._name(tag)
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def conv(self, x: str, ci: int, co: int, k: int, stride: int = 1, relu: bool = True) -> str:
        std = np.sqrt(2.0 / (ci * k * k))
        w = (self.rng.standard_normal((co, ci, k, k)) * std).astype(np.float32)
        b = (self.rng.standard_normal(co) * 0.01).astype(np.float32)
        p = k // 2
        y = self.node("Conv", [x, self.const(w, "w"), self.const(b, "b")], "conv", kernel_shape=[k, k],
                      strides=[stride, stride], pads=[p, p, p, p])
        return self.node("Relu", [y], "relu") if relu else y

    def gemm(self, x: str, k: int, n: int, relu: bool) -> str:
        w = (self.rng.standard_normal((n, k)) * np.sqrt(2.0 / k)).astype(np.float32)
        b = (self.rng.standard_normal(n) * 0.01).astype(np.float32)
        y = self.node("Gemm", [x, self.const(w, "fw"), self.const(b, "fb")], "fc", transB=1)
        return self.node("Relu", [y], "relu") if relu else y

    def model(self, x: str, y: str, name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info(x, TensorProto.FLOAT,
                                                                                    [1, 3, 224, 224])],
                                  [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 1000])], self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def resnet50(seed: int = 0) -> onnx.ModelProto:
    """ResNet-50 v1.5 at 224x224: stem 7x7/2 + max pool 3x3/2, bottleneck stages [3, 4, 6, 3] of widths
    64-128-256-512 (x4 out), global average pool, a 2048 x 1000 classifier; BN folded; seeded weights."""
    net = _Net(seed)
    x = net.conv("input", 3, 64, 7, 2)
    x = net.node("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    ci = 64
    for stage, (width, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 0) else 1
            y = net.conv(x, ci, width, 1)
            y = net.conv(y, width, width, 3, stride)
            y = net.conv(y, width, 4 * width, 1, relu=False)
            short = net.conv(x, ci, 4 * width, 1, stride, relu=False) if b == 0 else x
            x = net.node("Relu", [net.node("Add", [y, short], "add")], "relu")
            ci = 4 * width
    x = net.node("GlobalAveragePool", [x], "gap")
    x = net.node("Flatten", [x], "flat", axis=1)
    y = net.gemm(x, 2048, 1000, relu=False)
    return net.model("input", y, "resnet50_synthetic")


def vgg16(seed: int = 0) -> onnx.ModelProto:
    """VGG-16 (configuration D) at 224x224: 13 3x3 convolutions in 5 blocks with 2x2 max pools, a 7x7x512
    flatten, fully connected 25088 -> 4096 -> 4096 -> 1000; seeded weights."""
    net = _Net(seed)
    x, ci = "input", 3
    for width, n in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(n):
            x, ci = net.conv(x, ci, width, 3), width
        x = net.node("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    x = net.node("Flatten", [x], "flat", axis=1)
    x = net.gemm(x, 25088, 4096, relu=True)
    x = net.gemm(x, 4096, 4096, relu=True)
    y = net.gemm(x, 4096, 1000, relu=False)
    return net.model("input", y, "vgg16_synthetic")


BUILDERS = {"resnet50": resnet50, "vgg16": vgg16}


def calibration_inputs(n: int = 4) -> list[np.ndarray]:
    """``n`` real photos preprocessed with the `torch` code (the bundle's ImageNet photos, else the embedded ones)."""
    from offchain.inference.inputs import preprocess_image

    photos = sorted(PHOTOS.glob("*.JPEG"))[:n] if PHOTOS.is_dir() else []
    if not photos:
        photos = sorted(p for p in ASSET_PHOTOS.iterdir() if p.suffix in (".jpeg", ".png"))[:n]
    return [preprocess_image(p, 224, "torch") for p in photos]


def quantize(fp32: Path, int8: Path, inputs: list[np.ndarray]) -> None:
    """onnxruntime's quantize_static: QOperator, uint8 activations, int8 weights, per tensor, calibrated on
    ``inputs`` (float32 [1,3,224,224] each)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": x} for x in inputs])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False)


def default_dir() -> Path:
    return home() / "cache" / "models"


def ensure(name: str, seed: int = 0, out: Path | None = None) -> Path:
    """The int8 synthetic model ``name`` (resnet50 or vgg16) for ``seed``, built and quantized once into ``out``."""
    out = out or default_dir()
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / f"{name}_synthetic_s{seed}_fp32.onnx"
    int8 = out / f"{name}_synthetic_s{seed}_int8.onnx"
    if not int8.exists():
        if not fp32.exists():
            onnx.save(BUILDERS[name](seed), str(fp32))
        tmp = int8.with_suffix(".tmp.onnx")
        quantize(fp32, tmp, calibration_inputs())
        tmp.replace(int8)
    return int8


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=[*BUILDERS, "all"], default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    for name in (BUILDERS if a.model == "all" else [a.model]):
        print(ensure(name, a.seed, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
