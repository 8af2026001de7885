"""Blind, robust image watermark carrying a 64-bit code per image ("segment").

Public API: ``embed``, ``extract``, ``psnr``, ``CODE_BYTES``, ``WatermarkError``, ``WatermarkNotFound``.
The channel code is `offchain.campaign.ecc`, the canonical frame, key-derived patterns and geometric
registration are `offchain.campaign.registration`; the attacks a pirated copy undergoes are simulated by
`offchain.campaign.attacks` (tests and benchmarks only).

Design
------
* Everything happens on the luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` of the image resampled
  (anisotropically, Pillow bilinear with antialiasing) to a *canonical* ``256 x 256`` frame, which
  undoes any rescaling.  The watermark is computed in that frame, up-sampled (bicubic) to the image
  size and added equally to R, G and B (so only luminance changes).
* **Sync template** (geometry after cropping): a key-derived pseudo-random band-pass tile of
  ``128 x 128`` canonical px (spatial wavelengths ~5.3..21 px), repeated 2 x 2 times over the frame
  (additive, RMS 2.1 grey levels).  At extraction the whitened suspect is *folded* modulo the tile
  period for a grid of horizontal/vertical extents ``e in [0.89, 1.005]`` (a crop of <= 5 % per
  border leaves ``1 - left - right >= 0.9`` of the frame visible); a phase-only FFT correlation
  with the tile gives the offsets (restricted to the admissible range).  The best distinct peaks
  are refined on a finer extent grid.
* **Payload**: spread-transform dither modulation (STDM, a quantization-index modulation) of
  orthonormal 2-D DCT coefficients of the central ``224 x 224`` region of the canonical frame (a
  16 px margin that a 5 % crop never removes).  The 220 coefficients used are key-selected among
  those with radial index in ``[3, 18]`` (wavelengths ~25..150 canonical px, which survive JPEG
  q50 and 50 % down-scaling); each coded bit owns one coefficient with a key sign and dither, and
  is quantized on one of two interleaved lattices of step ``delta = 120``.  Embedding is iterated
  on the actually rendered uint8 image (clipping, resampling, rounding).
* **Fine registration**: around each sync hypothesis a joint grid of (extent, centre) per axis
  maximizes the lattice fit ``Q = mean cos(4 pi (p - dither) / delta)`` (~1 when aligned, ~0
  otherwise), computed cheaply through the separability of resampling and DCT.
* **Error correction**: payload = 64-bit code + CRC-16/CCITT-FALSE (80 bits), encoded by a
  shortened binary BCH code over GF(2^8) (n = 220, k = 80, t = 20: corrects any 20 bit errors),
  scrambled by a key-derived mask.  Decoding uses Chase-II soft decoding (flips of the 4 least
  reliable bits); a candidate is accepted only if BCH decoding succeeds *and* the CRC matches.
  A random word passes both with probability ~2^-63, so even over the few hundred decoding
  attempts of one extraction a wrong code is essentially never returned: ``extract`` either
  returns the exact code or raises ``WatermarkNotFound``.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from PIL import Image

from offchain.campaign.codes import CODE_BYTES
from offchain.campaign.ecc import WatermarkError, WatermarkNotFound, decode_payload, encode_payload
from offchain.campaign.registration import (DELTA, MARGIN, N, REGION, SYNC_AMP, Keyed, keyed, projections, refine,
                                            sync_candidates)

__all__ = ["CODE_BYTES", "WatermarkError", "WatermarkNotFound", "embed", "extract", "psnr"]

_EMBED_ITERS = 5
_MIN_SIDE = 32  # smallest accepted image side


# ---------------------------------------------------------------------------------------------
# Image helpers
# ---------------------------------------------------------------------------------------------
def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise WatermarkError("image must be a numpy array")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise WatermarkError(f"image must be uint8 HxWx3 RGB, got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < _MIN_SIDE:
        raise WatermarkError(f"image too small ({image.shape[1]}x{image.shape[0]})")
    return image


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) == 0:
        raise WatermarkError("key must be non-empty bytes")
    return bytes(key)


def _luma(image: np.ndarray) -> np.ndarray:
    x = image.astype(np.float32)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def _resize_f(a: np.ndarray, size: tuple[int, int], method=Image.BILINEAR) -> np.ndarray:
    """Resize float image ``a`` to ``size = (height, width)`` with Pillow (mode 'F')."""
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F")
    return np.asarray(im.resize((size[1], size[0]), method), dtype=np.float64)


def _canonical(image: np.ndarray) -> np.ndarray:
    return _resize_f(_luma(image), (N, N), Image.BILINEAR)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 arrays of identical shape (peak 255); ``inf`` if equal.

    Raises ``WatermarkError`` if the shapes differ.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise WatermarkError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------
def embed(image: np.ndarray, code: bytes, key: bytes, strength: float | None = None) -> np.ndarray:
    """Embed the 8-byte ``code`` into ``image`` under ``key``.

    Parameters
    ----------
    image : np.ndarray, uint8, shape (H, W, 3), RGB, H and W >= 32.
    code : bytes of length ``CODE_BYTES`` (8).
    key : non-empty bytes, the (public) watermark key/seed; extraction needs the same key.
    strength : optional float > 0 scaling both the sync amplitude and the quantization step
        (default 1.0, about 38.6 dB PSNR on typical photos; larger is more robust and more visible).

    Returns
    -------
    np.ndarray, uint8, shape (H, W, 3): the marked image.

    Raises
    ------
    WatermarkError
        If the image is not uint8 HxWx3 (or smaller than 32 px), the code is not 8 bytes, the key
        is empty or the strength is not positive.
    """
    image = _check_image(image)
    key = _check_key(key)
    if not isinstance(code, (bytes, bytearray)) or len(code) != CODE_BYTES:
        raise WatermarkError(f"code must be {CODE_BYTES} bytes")
    s = 1.0 if strength is None else float(strength)
    if not s > 0:
        raise WatermarkError("strength must be > 0")
    kd = keyed(key)
    H, W = image.shape[:2]
    delta = DELTA * s

    coded = encode_payload(code) ^ kd.mask
    dither = kd.dither * s

    base = image.astype(np.float64)
    m0, m1 = MARGIN, N - MARGIN
    win = _region_window()

    delta_c = SYNC_AMP * s * kd.sync  # canonical-frame watermark (grey levels)
    target = None
    marked = image
    for it in range(_EMBED_ITERS + 1):
        up = _resize_f(delta_c, (H, W), Image.BICUBIC)
        marked = np.clip(np.rint(base + up[..., None]), 0, 255).astype(np.uint8)
        if it == _EMBED_ITERS:
            break
        proj = kd.project(_canonical(marked)[m0:m1, m0:m1])
        if target is None:
            # nearest point of the lattice  delta*Z + dither + bit*delta/2
            off = dither + coded * (delta / 2.0)
            target = np.round((proj - off) / delta) * delta + off
        err = target - proj
        delta_c[m0:m1, m0:m1] += win * kd.backproject(err) * 1.15
    return marked


@functools.lru_cache(maxsize=1)
def _region_window() -> np.ndarray:
    """Separable taper (raised cosine over 8 px) so the payload has no visible region edge."""
    R, ramp = REGION, 8
    w = np.ones(R)
    t = (np.arange(ramp) + 0.5) / ramp
    w[:ramp] = 0.5 - 0.5 * np.cos(np.pi * t)
    w[-ramp:] = w[:ramp][::-1]
    return np.outer(w, w)


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------
def _soft_from_proj(kd: Keyed, proj: np.ndarray) -> np.ndarray:
    return np.cos(2 * np.pi * (proj - kd.dither) / DELTA)


def _soft_bits(kd: Keyed, S: np.ndarray, ex: float, ox: float, ey: float, oy: float) -> np.ndarray:
    """Soft values in [-1, 1] (positive = bit 0) of the (scrambled) coded bits for a geometry."""
    return _soft_from_proj(kd, projections(kd, S, [(ey, oy)], [(ex, ox)])[0, 0])


def _decode_soft(kd: Keyed, soft: np.ndarray, chase_bits: int = 4) -> bytes | None:
    """Chase-II decoding: try the hard decision and all flips of the least reliable bits."""
    hard = (soft < 0).astype(np.uint8) ^ kd.mask
    weakest = np.argsort(np.abs(soft))[:chase_bits]
    for r in range(chase_bits + 1):
        for flips in itertools.combinations(weakest, r):
            w = hard.copy()
            if flips:
                w[list(flips)] ^= 1
            try:
                return decode_payload(w)
            except WatermarkNotFound:
                continue
    return None


def extract(image: np.ndarray, key: bytes) -> bytes:
    """Blindly extract the 8-byte code embedded with ``key`` from a (possibly attacked) image.

    Parameters
    ----------
    image : np.ndarray, uint8, shape (h, w, 3), RGB, h and w >= 32.  May have been JPEG
        re-encoded, rescaled (any factor, aspect may change) and cropped (<= 5 % per border).
    key : non-empty bytes, the key used at embedding.

    Returns
    -------
    bytes of length ``CODE_BYTES`` (8): the embedded code (verified by BCH + CRC-16).

    Raises
    ------
    WatermarkNotFound
        If no code passing the BCH decoder and the CRC is found (unmarked image, wrong key, or
        too strong an attack).  A wrong code is returned only with negligible probability.
    WatermarkError
        If ``image`` is not uint8 HxWx3 (or smaller than 32 px) or ``key`` is empty.
    """
    image = _check_image(image)
    key = _check_key(key)
    kd = keyed(key)
    S = _canonical(image)
    # 1) the unattacked / pure-rescale geometry first (cheap)
    code = _decode_soft(kd, _soft_bits(kd, S, 1.0, 0.0, 1.0, 0.0))
    if code is not None:
        return code
    # 2) sync-template search, then local refinement on the payload lattice fit
    for sc, ex, ox, ey, oy in sync_candidates(kd, S):
        for q, ex2, ox2, ey2, oy2, proj in refine(kd, S, ex, ox, ey, oy):
            code = _decode_soft(kd, _soft_from_proj(kd, proj))
            if code is not None:
                return code
    raise WatermarkNotFound("no watermark found for this key")
