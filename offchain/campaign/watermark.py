"""Blind, robust image watermark carrying a 64- or 128-bit code per image ("segment"), in a public layer and an
optional secret layer.

Public API: ``embed``, ``extract``, ``psnr``, ``CODE_BYTES``, ``CODE_SIZES``, ``WatermarkError``,
``WatermarkNotFound``.  The channel code is `offchain.campaign.ecc`, the canonical frame, key-derived patterns,
coefficient layout and geometric registration are `offchain.campaign.registration`, the photometric model is
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
import itertools
import math

import numpy as np
from PIL import Image
from scipy import ndimage

from offchain.campaign.codes import CODE_BYTES
from offchain.campaign.ecc import (CODE_SIZES, OSD_MAX_DIST, WatermarkError, WatermarkNotFound, decode_osd, decode_payload,
                                   encode_payload)
from offchain.campaign.registration import (MARGIN, N, REGION, Keyed, centred_scan, coarse_sync, fine_sync, keyed,
                                            projector, refine, whitened)
from offchain.campaign.tone import K_GRID, apply_tone, fill_search, tone_search

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
        up = _resize_f(delta_c, (H, W), Image.BICUBIC)
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
# Extraction
# ---------------------------------------------------------------------------------------------
def _soft_from_proj(kd: Keyed, proj: np.ndarray) -> np.ndarray:
    return np.cos(2 * np.pi * (proj - kd.dither) / kd.delta)


def _decode_soft(kd: Keyed, soft: np.ndarray, chase_bits: int = 4) -> bytes | None:
    """Decode soft values (n_bits,) (cos of the lattice phase: > 0 for a coded 0 before the mask).

    64-bit codes: Chase-II (the hard decision and all flips of the ``chase_bits`` least reliable bits) with the BCH
    decoder.  128-bit codes: the BCH decoder on the hard decision, then ordered-statistics decoding
    (`offchain.campaign.ecc.decode_osd`, ~50 errors instead of 32).  Returns the code or None.
    """
    hard = (soft < 0).astype(np.uint8) ^ kd.mask
    if kd.code_bytes in OSD_MAX_DIST:
        try:
            return decode_payload(hard, kd.code_bytes)
        except WatermarkNotFound:
            pass
        try:
            return decode_osd(np.where(kd.mask > 0, -soft, soft), kd.code_bytes)
        except WatermarkNotFound:
            return None
    weakest = np.argsort(np.abs(soft))[:chase_bits]
    for r in range(chase_bits + 1):
        for flips in itertools.combinations(weakest, r):
            w = hard.copy()
            if flips:
                w[list(flips)] ^= 1
            try:
                return decode_payload(w, kd.code_bytes)
            except WatermarkNotFound:
                continue
    return None


_ANGLES = (0.0, -0.5, 0.5, -1.0, 1.0, -1.5, 1.5, -2.0, 2.0)  # coarse rotation hypotheses (degrees)
_FINE_ANGLES = np.arange(-0.3, 0.301, 0.05)  # fine rotation offsets around a coarse hypothesis
_N_HYPOTHESES = 6  # sync hypotheses (over flips, angles, positions) examined in full
_SYNC_MIN = 7.0  # coarse sync peak (standard deviations) above which a hypothesis is registered at once
_N_WEAK = 2  # weaker hypotheses registered when no strong one decoded
# Decoding is attempted only where the lattice fit Q reaches this: an unmarked frame gives Q ~ 0 +- 0.05 (at most
# ~0.2 over a whole tone search), a decodable one Q >~ 0.35 (at most ~20 bit errors).
_Q_MIN = 0.25
_Q_TONE = 0.3  # below this fit at the sync geometry, registration refines under plain gains instead of the tone
_PLAIN_GAINS = (0.87, 0.93, 1.07, 1.15)
_Q_FILL = 0.7  # below this fit, a clipped suspect gets the clipping-fill search (`offchain.campaign.tone`)
# Sync-free stage (after the sync hypotheses failed): the lattice fit over rotations at the pure-rescale geometry
# (a 0.1-degree grid: 0.05 degrees off, Q is still ~0.5 where the aligned frame gives ~0.7) and over centred crops
# (visible fraction per axis, step 0.003 as in `refine`); an unmarked frame peaks at ~0.15 over these grids.
_SCAN_ANGLES = tuple(round(a, 1) for a in np.arange(-2.0, 2.01, 0.1) if abs(a) > 0.05)
_SCAN_EXTENTS = np.arange(0.79, 1.0001, 0.003)
_SCAN_GAINS = (0.9, 0.95, 1.0, 1.05)
_Q_SCAN = 0.3
_N_SCAN = 2  # best sync-free candidates registered
_SCAN_SIDE = 320  # the rotation scan rotates a copy whose shorter side is at most this (the canonical frame is 256)


class _Suspect:
    """The suspect's luminance and clipping basis (`offchain.campaign.tone.fill_search`), with their canonical frames
    per (mirror, rotation), cached."""

    def __init__(self, image: np.ndarray):
        self.Y = _luma(image).astype(np.float64)
        luma_w = np.array([0.299, 0.587, 0.114])
        hi = (image >= 255) @ luma_w  # the luma share of the saturated channels of each pixel
        lo = (image <= 0) @ luma_w
        # the fill is modelled only where clipping is widespread (a few isolated saturated pixels cost nothing)
        self.clipped = (hi > 0).mean() > 0.01 or (lo > 0).mean() > 0.01
        if self.clipped:
            d = ndimage.distance_transform_edt(hi > 0)
            d = np.minimum(d / (0.05 * min(hi.shape)), 1.0)  # 0 at the border, 1 deeper than 5 % of the side
            h, w = hi.shape
            cy = np.cos(np.pi * (np.arange(h) + 0.5) / h)[:, None]
            cx = np.cos(np.pi * (np.arange(w) + 0.5) / w)[None, :]
            basis = [hi, hi * cx, hi * cy, hi * cx * cx, hi * cx * cy, hi * cy * cy, hi * d]
            if (lo > 0).mean() > 0.001:
                basis += [lo, lo * cx, lo * cy]
            self.masks = np.stack(basis)
        self._cache: dict = {}
        side = min(self.Y.shape)
        self._Ys = self.Y if side <= _SCAN_SIDE else _resize_f(
            self.Y, tuple(max(N, round(n * _SCAN_SIDE / side)) for n in self.Y.shape))

    def frame(self, flip: bool, angle: float) -> tuple[np.ndarray, np.ndarray | None]:
        """(canonical frame N x N, clipping basis frames (P, N, N) or None), mirrored and/or rotated back by
        ``angle`` degrees."""
        key = (flip, round(float(angle), 4))
        if key not in self._cache:
            S = _frame(self.Y, flip, angle)
            M = np.stack([_frame(m, flip, angle) for m in self.masks]) if self.clipped else None
            self._cache[key] = (S, M)
        return self._cache[key]

    def scan_frame(self, flip: bool, angle: float) -> np.ndarray:
        """A cheaper canonical frame for the sync-free rotation scan: rotated from a copy whose shorter side is
        at most _SCAN_SIDE px (not cached)."""
        return _frame(self._Ys, flip, angle)


def _frame(Y: np.ndarray, flip: bool, angle: float) -> np.ndarray:
    """Canonical frame of the suspect's luminance ``Y``, mirrored and/or rotated back by ``angle`` degrees."""
    if flip:
        Y = Y[:, ::-1]
    if angle:
        Y = ndimage.rotate(Y, angle, reshape=False, order=1, mode="nearest")
    return _resize_f(Y, (N, N), Image.BILINEAR)


def _try_geometry(kd: Keyed, S: np.ndarray, M: np.ndarray | None, geo: tuple, k0: float | None = None):
    """Tone search (all exponents, or those near ``k0``), the clipping fill if the fit is poor, then decoding at one
    geometry; returns (code or None, Q, k, per-bit gain, fill frame (N x N, toned domain) or 0.0)."""
    project = projector(kd, *geo)
    ks = K_GRID if k0 is None else k0 * np.exp(np.arange(-2, 3) * 0.0125)
    q, k, g = tone_search(kd, project, S, ks)
    proj = project(apply_tone(S, k, 1.0))
    fill_frame = 0.0
    if M is not None and _Q_MIN / 2 < q < _Q_FILL:
        comps = project(M)
        for kf in ((k, 1.0) if k != 1.0 else (k,)):  # the exponent found, biased by the clipping, and none
            pk = proj if kf == k else project(apply_tone(S, kf, 1.0))
            qf, fill, gf = fill_search(kd, pk, kf * comps, g)
            if qf > q:
                q, g, k = qf, gf, kf
                fill_frame = kf * np.tensordot(fill, M, axes=1)
                best_proj = pk + kf * (fill @ comps)
        if not isinstance(fill_frame, float):
            proj = best_proj
    if q < _Q_MIN:
        return None, q, k, g, fill_frame
    for gg in (g, g * 0.997, g * 1.003):
        code = _decode_soft(kd, _soft_from_proj(kd, proj / gg))
        if code is not None:
            return code, q, k, g, fill_frame
    return None, q, k, g, fill_frame


def _register(kd: Keyed, sus: _Suspect, flip: bool, angle: float, geo: tuple) -> bytes | None:
    """Full registration from one sync hypothesis: tone, lattice refinement, fine rotation; decode."""
    S, M = sus.frame(flip, angle)
    code, q, k, g, fill = _try_geometry(kd, S, M, geo)
    if code is not None:
        return code
    angles = [angle]
    if q < 0.5:  # a residual rotation: pick the fine angle with the best lattice fit at this geometry
        project = projector(kd, *geo)
        best = max(((tone_search(kd, project, sus.frame(flip, angle + da)[0], [k])[0], angle + da)
                    for da in _FINE_ANGLES))
        if best[1] != angle:
            angles.append(best[1])
    # a poor fit means the tone found at the sync geometry is unreliable too: refine under a few plain gains
    tone_ok = q >= _Q_TONE
    gains = None if tone_ok else [1.0, *_PLAIN_GAINS, g]
    for a in angles:
        Sa, Ma = sus.frame(flip, a)
        St = apply_tone(Sa, k if tone_ok else 1.0, 1.0) + (fill if tone_ok else 0.0)
        for qf, ex, ox, ey, oy, proj in refine(kd, St, *geo, gain=g, gains=gains):
            if qf < _Q_MIN:
                continue
            code = _decode_soft(kd, _soft_from_proj(kd, proj))
            if code is None:
                code = _try_geometry(kd, Sa, Ma, (ex, ox, ey, oy), k if tone_ok else None)[0]
            if code is not None:
                return code
    return None


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
    sus = _Suspect(image)
    # 1) the pure-rescale geometry first (cheap), upright then mirrored: tone search and decoding (a flip is exact
    #    and costs the sync search nothing to skip; the sync peak is weakest where tone edits clipped the template)
    for flip in (False, True):
        code = _try_geometry(kd, *sus.frame(flip, 0.0), (1.0, 0.0, 1.0, 0.0))[0]
        if code is not None:
            return code
    # 2) sync-template search over mirror x rotation hypotheses (half resolution), best first: upright
    #    hypotheses (both mirrors) first, then the rotated ones; only hypotheses whose sync peak stands out are
    #    registered (an absent template peaks at ~5-6.5 standard deviations, a present one at ~8-25), then, if
    #    none decoded, the best few others
    tried, weak = set(), []
    for stage in ([0.0], _ANGLES[1:]):
        hyps = []
        for flip in (False, True):
            for angle in stage:
                W_full, W_half = whitened(sus.frame(flip, angle)[0])
                for cand in coarse_sync(kd, W_half, 2):
                    hyps.append((cand[0], flip, angle, W_full, cand))
        hyps.sort(key=lambda h: -h[0])
        for h in hyps[: _N_HYPOTHESES // (1 + (len(stage) == 1))]:
            if h[0] < _SYNC_MIN:
                weak.append(h)
                continue
            code = _register_hypothesis(kd, sus, h)
            if code is not None:
                return code
    weak.sort(key=lambda h: -h[0])
    for h in weak[:_N_WEAK]:
        code = _register_hypothesis(kd, sus, h)
        if code is not None:
            return code
    # 3) sync-free: texture (stripes, foliage) can drown the sync template; the payload's own lattice fit still
    #    finds a rotation at the pure-rescale geometry, or a centred crop
    for _, flip, angle, geo in _sync_free(kd, sus)[:_N_SCAN]:
        code = _register(kd, sus, flip, angle, geo)
        if code is not None:
            return code
    raise WatermarkNotFound("no watermark found for this key")


def _sync_free(kd: Keyed, sus: _Suspect) -> list[tuple]:
    """Hypotheses (Q, flip, angle, geometry) of the sync-free stage with Q >= _Q_SCAN, best first: every angle of
    _SCAN_ANGLES at the pure-rescale geometry (tone searched at exponent 1), and the best centred crops upright."""
    pure = (1.0, 0.0, 1.0, 0.0)
    project = projector(kd, *pure)
    out = []
    for flip in (False, True):
        for angle in _SCAN_ANGLES:
            q = tone_search(kd, project, sus.scan_frame(flip, angle), [1.0])[0]
            out.append((q, flip, angle, pure))
        for q, geo in centred_scan(kd, sus.frame(flip, 0.0)[0], _SCAN_EXTENTS, _SCAN_GAINS):
            out.append((q, flip, 0.0, geo))
    return sorted((h for h in out if h[0] >= _Q_SCAN), key=lambda h: -h[0])


def _register_hypothesis(kd: Keyed, sus: _Suspect, h: tuple) -> bytes | None:
    _, flip, angle, W_full, cand = h
    _, ex, ox, ey, oy = fine_sync(kd, W_full, cand[1], cand[3])
    return _register(kd, sus, flip, angle, (ex, ox, ey, oy))
