"""Attacks that pirated copies typically undergo, used by watermark tests and benchmarks.

All helpers take and return ``uint8`` arrays of shape ``(H, W, 3)`` (RGB); the codec and the
resampling are done by Pillow.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = ["jpeg", "resize", "crop", "chain"]

_RESAMPLE = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,
    "box": Image.BOX,
}


def _check(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 RGB image, got {image.dtype} {image.shape}")
    return image


def jpeg(image: np.ndarray, quality: int = 50) -> np.ndarray:
    """Re-encode ``image`` (uint8 HxWx3) as baseline JPEG at ``quality`` (1..95) and decode it.

    Returns a uint8 array of the same shape.
    """
    image = _check(image)
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def resize(image: np.ndarray, factor: float = 0.5, method: str = "bilinear") -> np.ndarray:
    """Resize both sides of ``image`` (uint8 HxWx3) by ``factor`` with Pillow.

    ``method`` is one of "nearest", "bilinear", "bicubic", "lanczos", "box".
    Returns uint8 array of shape (round(H*factor), round(W*factor), 3) (at least 1x1).
    """
    image = _check(image)
    h, w = image.shape[:2]
    nh, nw = max(1, int(round(h * factor))), max(1, int(round(w * factor)))
    im = Image.fromarray(image, "RGB").resize((nw, nh), _RESAMPLE[method])
    return np.asarray(im, dtype=np.uint8).copy()


def crop(image: np.ndarray, fractions: tuple[float, float, float, float]) -> np.ndarray:
    """Crop ``fractions = (left, top, right, bottom)`` of each border of ``image`` (uint8 HxWx3).

    Each fraction is relative to the corresponding dimension (left/right of the width,
    top/bottom of the height), e.g. ``(0.05, 0, 0.02, 0.05)``; pixel counts are rounded.
    Returns a uint8 array (a copy).
    """
    image = _check(image)
    h, w = image.shape[:2]
    left, top, right, bottom = (float(f) for f in fractions)
    if min(left, top, right, bottom) < 0 or left + right >= 1 or top + bottom >= 1:
        raise ValueError(f"invalid crop fractions {fractions}")
    x0 = int(round(left * w))
    x1 = w - int(round(right * w))
    y0 = int(round(top * h))
    y1 = h - int(round(bottom * h))
    return image[y0:y1, x0:x1].copy()


def chain(
    image: np.ndarray,
    fractions: tuple[float, float, float, float] = (0.05, 0.05, 0.05, 0.05),
    factor: float = 0.5,
    quality: int = 50,
    method: str = "bilinear",
) -> np.ndarray:
    """Crop, then resize, then JPEG re-encode (the full pirate chain). uint8 HxWx3 in and out."""
    return jpeg(resize(crop(image, fractions), factor, method), quality)
