"""Model inputs: validation (`check_input`) and reading them from files (`load_input`, `preprocess_image`).

Preprocessing codes (`PREPROCESSING`, as the data bundle's MANIFEST names them): ImageNet ``torch``, ``tf``,
``caffe_bgr`` (RGB, shorter side resized to 256/224 of the crop, bilinear, centre crop); CIFAR-10 ``cifar_torch``,
``cifar_torch2`` (RGB resized to the model's size); MNIST ``unit`` (grey, x/255). Every function raises
`InputError` (a PinpointError) naming what is wrong with the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .graph import Graph
from offchain.common.errors import PinpointError


class InputError(PinpointError, ValueError):
    """The input tensor does not fit the model (shape, dtype, non-finite values)."""


def check_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Validate and return the input as float32 C-contiguous. Raises InputError naming what is wrong."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise InputError(f"input must be float32, got {x.dtype}")
    if tuple(x.shape) != tuple(graph.input.shape):
        if x.ndim == len(graph.input.shape) - 1 and tuple(x.shape) == tuple(graph.input.shape[1:]):
            x = x[None]
        else:
            raise InputError(f"input shape {x.shape} does not match the model's {graph.input.shape}")
    if not np.isfinite(x).all():
        raise InputError("input contains NaN or infinite values")
    return np.ascontiguousarray(x)


_F = np.float32
PREPROCESSING: dict[str, tuple[str, np.ndarray | None, np.ndarray | None]] = {
    # code: (kind, mean, std) applied as (x - mean) / std to x on the scale of the kind
    "torch": ("imagenet", np.array([0.485, 0.456, 0.406], _F), np.array([0.229, 0.224, 0.225], _F)),
    "tf": ("imagenet", np.array([127.5] * 3, _F) / _F(255.0), np.array([127.5] * 3, _F) / _F(255.0)),
    "caffe_bgr": ("imagenet_bgr", np.array([104.0, 117.0, 123.0], _F), np.ones(3, _F)),
    "cifar_torch": ("resize", np.array([0.4914, 0.4822, 0.4465], _F), np.array([0.2470, 0.2435, 0.2616], _F)),
    "cifar_torch2": ("resize", np.array([0.4914, 0.4822, 0.4465], _F), np.array([0.2023, 0.1994, 0.2010], _F)),
    "unit": ("grey", None, None),
}
"""The preprocessing codes of the data bundle's MANIFEST: x is the image on [0, 1] (``caffe_bgr``: on [0, 255],
channels reversed), then ``(x - mean) / std``."""


def _read(path, grey: bool):
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path).convert("L" if grey else "RGB")
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"cannot read image {path}: {e}") from e


def preprocess_image(path: str | Path, size: int | tuple[int, int] = 224, mode: str = "torch") -> np.ndarray:
    """An image file preprocessed by code ``mode`` (`PREPROCESSING`) to ``size`` (square, or (H, W)).

    ImageNet codes: RGB, shorter side resized to ``round(size * 256 / 224)`` (bilinear, Pillow), centre crop;
    ``torch``: ``(x / 255 - mean) / std``; ``tf``: ``x / 127.5 - 1``; ``caffe_bgr``: BGR, ``x - [104, 117, 123]``.
    CIFAR codes: RGB resized to (H, W) (bilinear; the bundle's images are already 32x32), ``(x/255 - mean)/std``.
    ``unit``: grey, resized to (H, W), ``x / 255``. Returns float32 [1, C, H, W] (C = 1 for ``unit``, else 3).
    Raises InputError for an unreadable image or an unknown code.
    """
    from PIL import Image

    if mode not in PREPROCESSING:
        raise InputError(f"unknown preprocessing {mode!r} ({', '.join(PREPROCESSING)})")
    kind, mean, std = PREPROCESSING[mode]
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    img = _read(path, kind == "grey")
    if kind.startswith("imagenet"):
        short = round(min(h, w) * 256 / 224)
        iw, ih = img.size
        r = short / min(iw, ih)
        img = img.resize((max(short, round(iw * r)), max(short, round(ih * r))), Image.BILINEAR)
        iw, ih = img.size
        left, top = (iw - w) // 2, (ih - h) // 2
        img = img.crop((left, top, left + w, top + h))
    elif img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32)
    if kind == "grey":
        return np.ascontiguousarray((x / _F(255.0))[None, None].astype(np.float32))
    if kind == "imagenet_bgr":
        x = (x[:, :, ::-1] - mean) / std
    elif mode == "tf":
        x = x * _F(255.0 / 127.5 / 255.0) - _F(1.0)
    else:
        x = (x / _F(255.0) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def default_preprocessing(shape: tuple[int, ...]) -> str:
    """The preprocessing code guessed from a model's NCHW input ``shape``: one channel -> ``unit``, at most 64
    pixels a side -> ``cifar_torch``, else ``torch`` (ImageNet). Pass a code explicitly for other models."""
    if len(shape) == 4 and shape[1] == 1:
        return "unit"
    if len(shape) == 4 and max(shape[2:]) <= 64:
        return "cifar_torch"
    return "torch"


def read_input(path: str | Path, shape: tuple[int, ...], mode: str | None = None) -> np.ndarray:
    """One input of NCHW ``shape`` (batch ignored) from a file: ``.npy`` as is (float32), anything else an image
    preprocessed by ``mode`` (default: `default_preprocessing`). Returns float32 [1, ...] or the array loaded.
    Raises InputError."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such input file: {p}")
    if p.suffix.lower() == ".npy":
        try:
            return np.load(p, allow_pickle=False)
        except ValueError as e:
            raise InputError(f"cannot load {p}: {e}") from e
    if len(shape) != 4:
        raise InputError(f"an image needs a 4-D NCHW model input, the model takes {shape}: give a .npy tensor")
    return preprocess_image(p, size=tuple(shape[2:]), mode=mode or default_preprocessing(shape))


def load_input(path: str | Path | list, graph: Graph, mode: str | None = None) -> np.ndarray:
    """An input for ``graph`` from one file or a list of files (stacked along the batch; a model of fixed batch
    N given fewer images gets the last one repeated): ``.npy`` is taken as the input tensor as is, anything else
    is read as an image and preprocessed by ``mode`` (default: `default_preprocessing` of the model's input).
    Raises InputError."""
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    if not paths:
        raise InputError("no input given")
    xs = [read_input(p, graph.input.shape, mode) for p in paths]
    if len(xs) == 1:
        x = xs[0]
    else:
        xs = [x[None] if x.ndim == len(graph.input.shape) - 1 else x for x in xs]
        try:
            x = np.concatenate(xs, axis=0)
        except ValueError as e:
            raise InputError(f"inputs of different shapes cannot form one batch: {e}") from e
    n = graph.input.shape[0]
    if x.ndim == len(graph.input.shape) and x.shape[0] < n and x.shape[1:] == tuple(graph.input.shape[1:]):
        x = np.concatenate([x, np.repeat(x[-1:], n - x.shape[0], axis=0)], axis=0)
    return check_input(graph, x)
