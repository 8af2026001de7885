"""Attacks that pirated copies typically undergo, used by watermark tests, benchmarks and the demo.

All helpers take and return ``uint8`` arrays of shape ``(H, W, 3)`` (RGB); codecs, resampling, rotation and
tone edits are Pillow's (what a pirate does in one line).  `launder`, `strip_sync` and `band_noise` are the attacks of
a licensee that can run the public detector (the watermark key is public, `offchain.campaign.secret`): re-embed a
random code into its own copy, remove the public sync template, blindly add noise to the secret layer's pool.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

__all__ = ["jpeg", "webp", "resize", "crop", "rotate", "flip", "brightness", "contrast", "gamma", "offset", "blur",
           "noise", "chain", "launder", "strip_sync", "band_noise"]

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


def _pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(_check(image), "RGB")


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _codec(image: np.ndarray, fmt: str, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    _pil(image).save(buf, format=fmt, quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return _arr(im)


def jpeg(image: np.ndarray, quality: int = 50) -> np.ndarray:
    """Re-encode ``image`` (uint8 HxWx3) as baseline JPEG at ``quality`` (1..95) and decode it (same shape)."""
    return _codec(image, "JPEG", quality)


def webp(image: np.ndarray, quality: int = 50) -> np.ndarray:
    """Re-encode ``image`` (uint8 HxWx3) as lossy WebP at ``quality`` (0..100) and decode it (same shape)."""
    return _codec(image, "WEBP", quality)


def resize(image: np.ndarray, factor: float = 0.5, method: str = "bilinear") -> np.ndarray:
    """Resize both sides of ``image`` (uint8 HxWx3) by ``factor`` with Pillow.

    ``method`` is one of "nearest", "bilinear", "bicubic", "lanczos", "box".
    Returns uint8 array of shape (round(H*factor), round(W*factor), 3) (at least 1x1).
    """
    image = _check(image)
    h, w = image.shape[:2]
    nh, nw = max(1, int(round(h * factor))), max(1, int(round(w * factor)))
    return _arr(_pil(image).resize((nw, nh), _RESAMPLE[method]))


def crop(image: np.ndarray, fractions: tuple[float, float, float, float]) -> np.ndarray:
    """Crop ``fractions = (left, top, right, bottom)`` of each border of ``image`` (uint8 HxWx3).

    Each fraction is relative to the corresponding dimension (left/right of the width,
    top/bottom of the height), e.g. ``(0.05, 0, 0.02, 0.05)``; pixel counts are rounded.
    Returns a uint8 array (a copy).  Raises ValueError on negative fractions or an empty result.
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


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate ``image`` counter-clockwise by ``degrees`` about its centre (bicubic, same size, black corners)."""
    return _arr(_pil(image).rotate(float(degrees), Image.BICUBIC))


def flip(image: np.ndarray) -> np.ndarray:
    """Mirror ``image`` horizontally (left <-> right)."""
    return _check(image)[:, ::-1].copy()


def brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """Pillow ``ImageEnhance.Brightness``: every channel times ``factor`` (e.g. 1.15 = +15 %), clipped."""
    return _arr(ImageEnhance.Brightness(_pil(image)).enhance(float(factor)))


def contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Pillow ``ImageEnhance.Contrast``: deviations from the mean grey times ``factor``, clipped."""
    return _arr(ImageEnhance.Contrast(_pil(image)).enhance(float(factor)))


def gamma(image: np.ndarray, g: float) -> np.ndarray:
    """Gamma curve ``255 (x / 255)^g`` on every channel (g < 1 brightens), rounded and clipped."""
    lut = np.clip(np.rint(255.0 * (np.arange(256) / 255.0) ** float(g)), 0, 255).astype(np.uint8)
    return lut[_check(image)]


def offset(image: np.ndarray, amount: int = 25) -> np.ndarray:
    """Add ``amount`` grey levels to every pixel and channel, clipped to 0..255."""
    return np.clip(_check(image).astype(np.int16) + int(amount), 0, 255).astype(np.uint8)


def blur(image: np.ndarray, radius: float = 1.0) -> np.ndarray:
    """Gaussian blur of ``radius`` px (Pillow ``GaussianBlur``)."""
    return _arr(_pil(image).filter(ImageFilter.GaussianBlur(float(radius))))


def noise(image: np.ndarray, sigma: float = 5.0, seed: int = 0) -> np.ndarray:
    """Add i.i.d. Gaussian noise of standard deviation ``sigma`` grey levels (seeded), rounded and clipped."""
    rng = np.random.default_rng(seed)
    x = _check(image).astype(np.float64) + rng.normal(0.0, float(sigma), image.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def chain(
    image: np.ndarray,
    fractions: tuple[float, float, float, float] = (0.05, 0.05, 0.05, 0.05),
    factor: float = 0.5,
    quality: int = 50,
    method: str = "bilinear",
) -> np.ndarray:
    """Crop, then resize, then JPEG re-encode (the full pirate chain). uint8 HxWx3 in and out."""
    return jpeg(resize(crop(image, fractions), factor, method), quality)


def launder(image: np.ndarray, key: bytes, seed: int = 0, code_bytes: int | None = None) -> np.ndarray:
    """The laundering attack of a licensee holding the public watermark key: embed a random ``code_bytes``-byte
    code (seeded) into its own marked copy with `offchain.campaign.watermark.embed`, overwriting the public payload
    of its own code (``code_bytes`` default: `offchain.campaign.codes.CODE_BYTES`).  Returns the laundered uint8
    HxWx3 image."""
    from offchain.campaign.codes import CODE_BYTES
    from offchain.campaign.watermark import embed

    return embed(_check(image), np.random.default_rng(seed).bytes(code_bytes or CODE_BYTES), key)


def strip_sync(image: np.ndarray, key: bytes, code_bytes: int = 16) -> np.ndarray:
    """Subtract the public layer's sync template of ``key`` from an *unattacked* marked copy (its geometry is the
    embedding's): what a licensee holding the public key can do so that a cropped or rotated copy cannot be
    registered by the public detector.  uint8 HxWx3 in and out."""
    from offchain.campaign.registration import keyed, resize_f

    image = _check(image)
    kd = keyed(bytes(key), code_bytes, "public")
    up = resize_f(kd.sync_amp * kd.sync, image.shape[:2], Image.BICUBIC)
    return np.clip(np.rint(image.astype(np.float64) - up[..., None]), 0, 255).astype(np.uint8)


def band_noise(image: np.ndarray, sigma: float, seed: int = 0, code_bytes: int = 16, layer: str = "secret"
               ) -> np.ndarray:
    """Blind attack on a layer whose coefficient pool is known but not its key: add i.i.d. Gaussian noise of
    ``sigma`` (orthonormal DCT units) to every DCT coefficient of the pool of (``code_bytes``, ``layer``)
    (`offchain.campaign.registration.LAYOUT`) in the canonical payload region, rendered like an embedding.
    uint8 HxWx3 in and out."""
    from scipy import fft as sfft

    from offchain.campaign import watermark as wm
    from offchain.campaign.registration import LAYOUT, MARGIN, N, REGION, resize_f

    image = _check(image)
    (lo, hi), parity, _, _ = LAYOUT[(code_bytes, layer)]
    u = np.arange(REGION)
    uu, vv = np.meshgrid(u, u, indexing="ij")
    r = np.hypot(uu, vv)
    pool = (r >= lo) & (r <= hi)
    if parity is not None:
        pool &= (uu + vv) % 2 == parity
    coef = np.where(pool, np.random.default_rng(seed).normal(0.0, float(sigma), pool.shape), 0.0)
    delta_c = np.zeros((N, N))
    delta_c[MARGIN:N - MARGIN, MARGIN:N - MARGIN] = sfft.idctn(coef, norm="ortho") * wm._region_window()
    up = resize_f(delta_c, image.shape[:2], Image.BICUBIC)
    return np.clip(np.rint(image.astype(np.float64) + up[..., None]), 0, 255).astype(np.uint8)
