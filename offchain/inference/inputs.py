"""Model inputs: validation (`check_input`) and reading them from files (`load_input`, `preprocess_image`).

Every function raises `InputError` (a PinpointError) naming what is wrong with the input.
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


PREPROCESSING = {
    "torch": (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)),
}


def preprocess_image(path: str | Path, size: int = 224, mode: str = "torch") -> np.ndarray:
    """ImageNet preprocessing (data MANIFEST): RGB, shorter side resized to 256 (bilinear, Pillow), centre crop
    ``size``, NCHW float32, then ``(x / 255 - mean) / std`` (``torch``) or ``x / 127.5 - 1`` (``tf``).

    Returns float32 [1, 3, size, size]. Raises InputError if the file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path).convert("RGB")
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"cannot read image {path}: {e}") from e
    short = round(size * 256 / 224)
    w, h = img.size
    r = short / min(w, h)
    img = img.resize((max(short, round(w * r)), max(short, round(h * r))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    if mode == "torch":
        mean, std = PREPROCESSING["torch"]
        x = (x - mean) / std
    elif mode == "tf":
        x = x * np.float32(255.0 / 127.5) - np.float32(1.0)
    else:
        raise InputError(f"unknown preprocessing {mode!r} (torch, tf)")
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def load_input(path: str | Path, graph: Graph) -> np.ndarray:
    """An input for ``graph`` from a file: ``.npy`` is taken as the input tensor as is, anything else is read as
    an image and preprocessed (ImageNet ``torch`` steps) to the model's input size."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such input file: {p}")
    if p.suffix.lower() == ".npy":
        try:
            return check_input(graph, np.load(p, allow_pickle=False))
        except ValueError as e:
            raise InputError(f"cannot load {p}: {e}") from e
    return check_input(graph, preprocess_image(p, size=graph.input.shape[-1]))
