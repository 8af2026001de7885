"""Blind, robust image watermark carrying a 64- or 128-bit code per image ("segment"), in a public layer and an
optional secret layer.

Public API: ``embed``, ``extract``, ``psnr``, ``CODE_BYTES``, ``CODE_SIZES``, ``WatermarkError``,
``WatermarkNotFound``.  The channel code is `offchain.campaign.ecc`, the canonical frame, key-derived patterns,
coefficient layout and geometric registration are `offchain.campaign.registration`, the staged search of
`extract` is `offchain.campaign.detection`, the photometric model is
`offchain.campaign.tone`, the secret layer's threat model is `offchain.campaign.secret`; the attacks a pirated copy
undergoes are simulated by `offchain.campaign.attacks` (tests and benchmarks only).

Design
------
* Everything happens on the luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` of the image resampled
  (anisotropically, Pillow bilinear with antialiasing) to a *canonical* ``256 x 256`` frame, which
  undoes any rescaling.  The watermark is computed in that frame, up-sampled (bicubic) to the image
  size and added equally to R, G and B (so only luminance changes).
* **Sync template** (geometry): a key-derived band-pass tile of ``128 x 128`` canonical px repeated 2 x 2 times
  (RMS 2.1 grey levels for 64-bit codes, 1.7 for 128-bit codes); `offchain.campaign.registration` finds extents and
  offsets by folding (crops of <= 10 % per border), at half resolution for every hypothesis of mirror (a horizontal
  flip) x rotation (0, +-0.5, ..., +-2 degrees; the suspect is rotated back in its own square-pixel grid), then at
  full resolution; the pure-rescale geometry is tried first, upright and mirrored.  Only hypotheses whose sync peak stands out (>= 7 standard deviations; an absent template gives
  ~5-6.5) are registered at once, then the two best others: an unmarked image is rejected in seconds.
* **When texture drowns the sync template** (a zebra's stripes, foliage: no peak above ~5 standard deviations,
  or the true one only the 2nd-6th of its frame), the payload's own lattice fit (below) ranks the six best sync
  candidates of each upright frame, and, without the sync, searches rotations in 0.1-degree steps at the
  pure-rescale geometry and centred crops (`registration.centred_scan`), both mirrors; the best hits are registered
  (`offchain.campaign.detection`, stage 3: about 3 s more for an unmarked image).
* **Payload**: spread-transform dither modulation (STDM, a quantization-index modulation) of orthonormal 2-D DCT
  coefficients of the central ``200 x 200`` region of the canonical frame (a 28 px margin that a 10 % crop never
  removes, nor a 2-degree rotation's corners).  64-bit codes: 220 coefficients key-selected among those with radial
  index in ``[3, 18]``, step ``delta = 120``.  128-bit codes: 414 coefficients key-selected in the even DCT parity
  class ``(u + v) % 2 == 0`` of radial indices ``[3, 33]``, ``delta = 105`` (the odd class is the secret layer's).
  Each coded bit owns one coefficient with a key sign and dither, quantized on one of two interleaved lattices.
  Embedding is iterated on the actually rendered uint8 image (clipping, resampling, rounding).  A layer's payload
  costs ``n_bits delta^2 / 12`` of squared error: about 38.5 dB PSNR for the public layer of a 128-bit code.
* **Tone** (`offchain.campaign.tone`): brightness, contrast and gamma scale the lattice; a grid of inverse gamma
  exponents and gains, then a per-coefficient low-pass gain ``g exp(-c r^2)`` (resizing, blur and codecs), is
  searched for the best lattice fit before decoding (a constant offset moves only the DC); saturated highlights and
  crushed shadows get a fill (a few smooth basis frames over the clipped area, weighted by the luma share of the
  clipped channels) fitted by least squares to the nearest lattice points at every gain of a wide grid.
* **Fine registration**: around each sync hypothesis, the rotation (steps of 0.05 degrees, when the fit is poor)
  and a joint grid of (extent, centre) per axis maximize the lattice fit ``Q = mean cos(4 pi (p - dither) /
  delta)`` (~1 when aligned, ~0 otherwise), computed cheaply through the separability of resampling and DCT; when
  the tone found at the sync geometry is unreliable (Q < 0.3) the refinement runs under a few plain gains.
* **Error correction** (`offchain.campaign.ecc`): code + CRC-16/CCITT-FALSE, encoded by a shortened binary BCH code
  (64-bit: n = 220, k = 80, t = 20 over GF(2^8); 128-bit: n = 414, k = 144, t = 32 over GF(2^9)), scrambled by a
  key-derived mask.  64-bit codes are decoded by Chase-II (flips of the 4 least reliable bits), 128-bit codes by the
  BCH decoder then ordered-statistics decoding (OSD-1, ~50 errors); a candidate is accepted only if it passes the
  decoder's distance check *and* the CRC.  A random word passes with probability ~2^-59 (64-bit) and < 2^-89
  (128-bit) per decoding attempt, so over the few thousand attempts of one extraction a wrong code is essentially
  never returned: ``extract`` either returns the exact code or raises ``WatermarkNotFound``.
* **Secret layer** (``embed(..., secret_key=K)``, ``extract(..., K, secret=True)``): the same code again, with its
  own sync template, dither, signs, mask and coefficients (the odd parity class for 128-bit codes, the ring
  ``[18.5, 25]`` for 64-bit codes), all from ``K``; it costs as much as the public layer (about 35.5 dB for both
  layers of a 128-bit code).  `offchain.campaign.secret` states what it stops (public-key laundering) and what not.

Threat model (laundering, in short; `offchain.campaign.secret` in full)
-------------------------------------------------------------------------
The public key is published so that any informer can extract; so a licensee can re-embed a random code into its own
copy (`offchain.campaign.attacks.launder`, ~37 dB against its copy), erase the public layer or strip its sync,
and check the result with the public detector.  It can not make the copy carry another licensee's code (the
oblivious transfer hides the other variants; BCH + CRC make guessing hopeless).  The secret layer survives every
such public-key laundering; a licensee that knows the layout can still add blind noise to the secret layer's
coefficient class at a cost comparable to the embedding (``benchmarks/watermark_robustness.py`` measures both).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

from offchain.campaign.codes import CODE_BYTES
from offchain.campaign.detection import search
from offchain.campaign.ecc import CODE_SIZES, WatermarkError, WatermarkNotFound, encode_payload
from offchain.campaign.registration import MARGIN, N, REGION, keyed, luma, resize_f

__all__ = ["CODE_BYTES", "CODE_SIZES", "WatermarkError", "WatermarkNotFound", "embed", "extract", "psnr"]

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


def _canonical(image: np.ndarray) -> np.ndarray:
    return resize_f(luma(image), (N, N), Image.BILINEAR)


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
def embed(image: np.ndarray, code: bytes, key: bytes, strength: float | None = None, *,
          secret_key: bytes | None = None) -> np.ndarray:
    """Embed ``code`` (8 or 16 bytes) into ``image`` under the public ``key`` (and, optionally, a secret layer).

    Parameters
    ----------
    image : np.ndarray, uint8, shape (H, W, 3), RGB, H and W >= 32.
    code : bytes of length 8 or 16 (a 64- or 128-bit code; `offchain.campaign.ecc.CODE_SIZES`).
    key : non-empty bytes, the (public) watermark key/seed; extraction needs the same key.
    strength : optional float > 0 scaling the sync amplitudes and the quantization steps
        (default 1.0; larger is more robust and more visible).
    secret_key : optional non-empty bytes different from ``key``: a second layer carrying the same code, with its
        own sync template and coefficients (disjoint from the public layer's), that only ``extract(...,
        secret=True)`` with ``secret_key`` detects (`offchain.campaign.secret` states the threat model).

    Returns
    -------
    np.ndarray, uint8, shape (H, W, 3): the marked image.

    Raises
    ------
    WatermarkError
        If the image is not uint8 HxWx3 (or smaller than 32 px), the code is not 8 or 16 bytes, a key is empty,
        ``secret_key == key``, or the strength is not positive.
    """
    image = _check_image(image)
    key = _check_key(key)
    if not isinstance(code, (bytes, bytearray)) or len(code) not in CODE_SIZES:
        raise WatermarkError(f"code must be {' or '.join(map(str, CODE_SIZES))} bytes")
    code = bytes(code)
    s = 1.0 if strength is None else float(strength)
    if not s > 0:
        raise WatermarkError("strength must be > 0")
    layers = [keyed(key, len(code), "public")]
    if secret_key is not None:
        secret_key = _check_key(secret_key)
        if secret_key == key:
            raise WatermarkError("the secret key must differ from the public key")
        layers.append(keyed(secret_key, len(code), "secret"))
    H, W = image.shape[:2]
    base = image.astype(np.float64)
    m0, m1 = MARGIN, N - MARGIN
    win = _region_window()

    delta_c = sum(kd.sync_amp * s * kd.sync for kd in layers)  # canonical-frame watermark (grey levels)
    targets: list = [None] * len(layers)
    marked = image
    for it in range(_EMBED_ITERS + 1):
        up = resize_f(delta_c, (H, W), Image.BICUBIC)
        marked = np.clip(np.rint(base + up[..., None]), 0, 255).astype(np.uint8)
        if it == _EMBED_ITERS:
            break
        region = _canonical(marked)[m0:m1, m0:m1]
        for li, kd in enumerate(layers):
            proj = kd.project(region)
            if targets[li] is None:
                # nearest point of the lattice  delta*Z + dither + bit*delta/2
                delta = kd.delta * s
                off = kd.dither * s + (encode_payload(code) ^ kd.mask) * (delta / 2.0)
                targets[li] = np.round((proj - off) / delta) * delta + off
            delta_c[m0:m1, m0:m1] += win * kd.backproject(targets[li] - proj) * 1.15
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
# Extraction (`offchain.campaign.detection`)
# ---------------------------------------------------------------------------------------------
def extract(image: np.ndarray, key: bytes, *, code_bytes: int = CODE_BYTES, secret: bool = False) -> bytes:
    """Blindly extract the ``code_bytes``-byte code embedded with ``key`` from a (possibly attacked) image.

    Parameters
    ----------
    image : np.ndarray, uint8, shape (h, w, 3), RGB, h and w >= 32.  May have been JPEG or WebP re-encoded,
        rescaled (any factor, aspect may change), cropped (<= 10 % per border), rotated (<= 2 degrees),
        mirrored horizontally, blurred, and changed in brightness, contrast or gamma.
    key : non-empty bytes, the key used at embedding: the public ``key`` (``secret=False``) or the ``secret_key``
        (``secret=True``).
    code_bytes : 8 or 16, the size of the embedded code (default ``CODE_BYTES``).
    secret : read the secret layer (``key`` is then the secret key) instead of the public one.

    Returns
    -------
    bytes of length ``code_bytes``: the embedded code (verified by BCH + CRC-16).

    Raises
    ------
    WatermarkNotFound
        If no code passing the BCH decoder and the CRC is found (unmarked image, wrong key, or
        too strong an attack).  A wrong code is returned only with negligible probability
        (`offchain.campaign.ecc.false_positive_bound`).
    WatermarkError
        If ``image`` is not uint8 HxWx3 (or smaller than 32 px), ``key`` is empty or ``code_bytes`` unsupported.
    """
    image = _check_image(image)
    key = _check_key(key)
    if code_bytes not in CODE_SIZES:
        raise WatermarkError(f"code_bytes must be one of {CODE_SIZES}, got {code_bytes!r}")
    kd = keyed(key, int(code_bytes), "secret" if secret else "public")
    code = search(kd, image)
    if code is None:
        raise WatermarkNotFound("no watermark found for this key")
    return code
