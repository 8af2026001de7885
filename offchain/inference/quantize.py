"""Quantize a float32 ONNX model into an int8 model the loader accepts: onnxruntime's own static quantizer
(`onnxruntime.quantization.quantize_static`) calibrated on real inputs, and the top-1 of the float32 and the int8
model on a labelled folder (pure computation: no chain).

    reader = FolderReader(model_path, calibration_dir, preprocess="torch")
    quantize(model_path, out_path, reader, fmt="qoperator", per_channel=False)
    report = compare(model_path, out_path, labelled_dir, preprocess="torch")   # top-1 fp32 / int8, agreement

Inputs: a folder of images (preprocessed by a MANIFEST code, `offchain.inference.inputs.PREPROCESSING`) or of
``.npy`` input tensors, taken as they are. A model of fixed batch N gets its inputs N at a time (the last batch
padded by repeating its last input, whose outputs are not counted). Labels come from the file names
(`label_of`). Raises QuantizeError (a PinpointError) for unusable inputs or a model onnxruntime cannot quantize.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .inputs import InputError, default_preprocessing, read_input
from offchain.common.errors import PinpointError

FORMATS = ("qoperator", "qdq")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".npy"}
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class QuantizeError(PinpointError, ValueError):
    """Calibration inputs unusable, or the model cannot be quantized (the message says why)."""


def model_input(model_path: str | Path) -> tuple[str, tuple[int | None, ...]]:
    """(name, NCHW dims with None for a symbolic batch) of the one graph input of an ONNX model (initializers
    excluded). Raises QuantizeError."""
    import onnx

    try:
        m = onnx.load(str(model_path), load_external_data=False)
    except Exception as e:
        raise QuantizeError(f"cannot parse ONNX model {model_path}: {e}") from e
    inits = {t.name for t in m.graph.initializer}
    ins = [i for i in m.graph.input if i.name not in inits]
    if len(ins) != 1:
        raise QuantizeError(f"expected one graph input, found {[i.name for i in ins]}")
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in ins[0].type.tensor_type.shape.dim)
    if not dims or any(d is None for d in dims[1:]):
        raise QuantizeError(f"graph input {ins[0].name!r} needs static dimensions after the batch: {dims}")
    return ins[0].name, dims


def input_files(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The image and ``.npy`` files of ``folder`` (recursively), sorted by path; the first ``limit`` if given.
    Raises QuantizeError when there are none."""
    d = Path(folder)
    if not d.is_dir():
        raise QuantizeError(f"no such folder: {d}")
    files = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise QuantizeError(f"no images or .npy files in {d}")
    return files[:limit] if limit else files


def batches(files: list[Path], dims: tuple[int | None, ...], preprocess: str | None):
    """Yield (float32 batch, number of real items): the inputs of ``files`` preprocessed for a model of input
    ``dims``, grouped by its fixed batch (1 when symbolic); a ``.npy`` already of a full batch is yielded alone."""
    n = dims[0] or 1
    shape = (n, *dims[1:])
    mode = preprocess or default_preprocessing(shape)
    pending: list[np.ndarray] = []

    def flush():
        k = len(pending)
        x = np.concatenate(pending + [pending[-1]] * (n - k), axis=0)
        pending.clear()
        return x, k

    for f in files:
        try:
            x = np.asarray(read_input(f, shape, mode), dtype=np.float32)
        except InputError as e:
            raise QuantizeError(str(e)) from e
        if x.shape == shape and n > 1:
            yield x, n
            continue
        if x.shape == tuple(dims[1:]):
            x = x[None]
        if x.shape != (1, *dims[1:]):
            raise QuantizeError(f"{f}: input of shape {x.shape} does not fit the model's {shape}")
        pending.append(x)
        if len(pending) == n:
            yield flush()
    if pending:
        yield flush()


class FolderReader:
    """An onnxruntime `CalibrationDataReader` over a folder of images or ``.npy`` tensors (see `batches`)."""

    def __init__(self, model_path: str | Path, folder: str | Path, preprocess: str | None = None,
                 limit: int | None = None):
        self.name, self.dims = model_input(model_path)
        self.files = input_files(folder, limit)
        self.preprocess = preprocess
        self.rewind()

    def get_next(self) -> dict | None:
        """The next calibration batch as {input name: float32 array}, None at the end (onnxruntime's protocol)."""
        item = next(self._it, None)
        return None if item is None else {self.name: item[0]}

    def rewind(self) -> None:
        """Start again from the first input."""
        self._it = batches(self.files, self.dims, self.preprocess)


def quantize(model_path: str | Path, out_path: str | Path, reader: FolderReader, fmt: str = "qoperator",
             per_channel: bool = False, activation: str = "uint8") -> Path:
    """Quantize ``model_path`` to ``out_path`` with onnxruntime's `quantize_static`: int8 weights (per output
    channel if ``per_channel``), ``activation`` (uint8 or int8) activations, MinMax calibration over ``reader``,
    QOperator or QDQ ``fmt``. Returns the output path. Raises QuantizeError."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if fmt not in FORMATS:
        raise QuantizeError(f"unknown format {fmt!r} ({', '.join(FORMATS)})")
    if activation not in ("uint8", "int8"):
        raise QuantizeError(f"unknown activation type {activation!r} (uint8, int8)")

    class _Reader(CalibrationDataReader):
        def get_next(self):
            return reader.get_next()

    import logging
    import tempfile

    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    reader.rewind()
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)  # the quantizer's advice goes to the root logger as warnings
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # onnxruntime's pre-processing: opset update, graph optimization (BatchNormalization folded into Conv)
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(_opset13(model_path, Path(tmp)) if per_channel else model_path), str(pre),
                              skip_symbolic_shape=True)
            quantize_static(str(pre), str(out), _Reader(),
                            quant_format=QuantFormat.QOperator if fmt == "qoperator" else QuantFormat.QDQ,
                            per_channel=per_channel, weight_type=QuantType.QInt8,
                            activation_type=QuantType.QUInt8 if activation == "uint8" else QuantType.QInt8,
                            # onnxruntime 1.31's per-channel weight-scale adjustment for int32 biases fails on
                            # per-channel scales (ValueError in _adjust_weight_scale_for_int32_bias): off
                            extra_options={"QDQDisableWeightAdjustForInt32Bias": per_channel})
    except QuantizeError:
        raise
    except Exception as e:  # onnxruntime raises plain exceptions for models it cannot quantize
        raise QuantizeError(f"onnxruntime could not quantize {model_path}: {type(e).__name__}: {e}") from e
    finally:
        root.setLevel(level)
    return out


def _opset13(model_path, tmp: Path) -> Path:
    """The model converted to opset 13 when older (per-axis Quantize/DequantizeLinear need opset 13; onnxruntime's
    quantizer would write them into an opset-11 model, which onnxruntime then refuses)."""
    import onnx
    from onnx import version_converter

    m = onnx.load(str(model_path))
    if next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 13) >= 13:
        return Path(model_path)
    out = tmp / "opset13.onnx"
    onnx.save(version_converter.convert_version(m, 13), str(out))
    return out


def _synset() -> dict[str, int]:
    text = resources.files("offchain.assets").joinpath("synset.txt").read_text()
    return {ln.split(" ", 1)[0]: i for i, ln in enumerate(text.splitlines()) if ln.strip()}


def label_of(path: str | Path, classes: tuple[str, ...] = CIFAR10) -> int | None:
    """The class of a labelled file from its name: an ImageNet WordNet id (``n01440764_tench.JPEG`` -> its index
    in ImageNet-1k), a class name of ``classes`` (``airplane_0001.jpg`` -> 0 with the CIFAR-10 names), or the
    first all-digit part of the name after a non-digit one (``mnist_7_0_idx3500.png`` -> 7). None if none fits."""
    parts = Path(path).stem.split("_")
    if re.fullmatch(r"n\d{8}", parts[0]):
        return _synset().get(parts[0])
    if parts[0] in classes:
        return classes.index(parts[0])
    digits = [p for p in parts[1:] if p.isdigit()]
    return int(digits[0]) if digits and not parts[0].isdigit() else None


@dataclass
class Comparison:
    """Top-1 of the float32 and the int8 model (onnxruntime) on ``n`` labelled inputs."""

    n: int
    fp32_correct: int
    int8_correct: int
    agree: int

    def as_dict(self) -> dict:
        """The figures as a JSON-ready dict (counts and rates)."""
        r = lambda k: round(k / self.n, 4) if self.n else None  # noqa: E731
        return {"n": self.n, "top1_fp32": r(self.fp32_correct), "top1_int8": r(self.int8_correct),
                "agreement": r(self.agree), "fp32_correct": self.fp32_correct, "int8_correct": self.int8_correct,
                "agree": self.agree}


def top1(model_path: str | Path, files: list[Path], preprocess: str | None = None) -> list[int]:
    """onnxruntime's (CPU) top-1 class of each input of ``files`` (batched as `batches` does)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    name, dims = model_input(model_path)
    out: list[int] = []
    for x, k in batches(files, dims, preprocess):
        y = sess.run(None, {name: x})[0]
        out += [int(i) for i in np.argmax(y.reshape(y.shape[0], -1), axis=1)[:k]]
    return out


def labelled(folder: str | Path, limit: int | None = None) -> list[Path]:
    """The files of ``folder`` with a label in their name (`label_of`), the first ``limit``. Raises QuantizeError
    when there is none."""
    files = [f for f in input_files(folder) if label_of(f) is not None][:limit]
    if not files:
        raise QuantizeError(f"no labelled images in {folder} (names like n01440764_x.JPEG, airplane_0.jpg, "
                            "mnist_7_0.png)")
    return files


def compare(fp32_path: str | Path, int8_path: str | Path, folder: str | Path, preprocess: str | None = None,
            limit: int | None = None) -> Comparison:
    """Top-1 of both models on the labelled files of ``folder`` (labels from file names, `label_of`; files
    without a label are skipped). Raises QuantizeError when no file has a label."""
    files = labelled(folder, limit)
    labels = [label_of(f) for f in files]
    a, b = top1(fp32_path, files, preprocess), top1(int8_path, files, preprocess)
    return Comparison(len(files), sum(p == t for p, t in zip(a, labels)), sum(p == t for p, t in zip(b, labels)),
                      sum(p == q for p, q in zip(a, b)))
