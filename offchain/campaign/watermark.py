"""Blind, robust image watermark carrying a 64-bit code per image ("segment").

Public API: ``embed``, ``extract``, ``psnr``, ``CODE_BYTES``, ``WatermarkError``,
``WatermarkNotFound`` (plus ``encode_payload`` / ``decode_payload`` / ``BCH`` / ``crc16`` for the
channel code, and the attack helpers ``jpeg``, ``resize``, ``crop`` re-exported from
``offchain.campaign.attacks``).

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
import hashlib
import itertools
import math

import numpy as np
from PIL import Image
from scipy import fft as sfft
from scipy import ndimage

__all__ = [
    "CODE_BYTES",
    "WatermarkError",
    "WatermarkNotFound",
    "embed",
    "extract",
    "psnr",
    "BCH",
    "crc16",
    "encode_payload",
    "decode_payload",
    "jpeg",
    "resize",
    "crop",
]

from .attacks import crop, jpeg, resize  # noqa: E402  (re-exported attack helpers)
from offchain.common.errors import PinpointError

CODE_BYTES = 8

# ---------------------------------------------------------------------------------------------
# Parameters (all in canonical-frame pixels)
# ---------------------------------------------------------------------------------------------
_N = 256  # canonical frame size
_TILE = 128  # sync tile period
_SYNC_BAND = (6.0, 24.0)  # cycles per tile (wavelength ~21..5.3 px)
_SYNC_AMP = 2.1  # RMS of the sync template (grey levels)
_MARGIN = 16  # payload region = [_MARGIN, _N - _MARGIN)
_REGION = _N - 2 * _MARGIN
_PAY_BAND = (3.0, 18.0)  # radial DCT index band of payload coefficients
_DELTA = 120.0  # STDM quantization step (orthonormal DCT units)
_EMBED_ITERS = 5
_EXTENT_RANGE = (0.89, 1.005)  # searched visible fraction of the canonical frame per axis
_MIN_SIDE = 32  # smallest accepted image side

_CRC_BITS = 16
_DATA_BITS = CODE_BYTES * 8 + _CRC_BITS  # 80
_BCH_M = 8
_BCH_T = 20


class WatermarkError(PinpointError, ValueError):
    """Invalid input to the watermark functions (bad image shape/dtype, bad code length, ...)."""


class WatermarkNotFound(WatermarkError):
    """No valid watermark for this key could be decoded from the image."""


# ---------------------------------------------------------------------------------------------
# CRC and BCH code
# ---------------------------------------------------------------------------------------------
def crc16(data: bytes, init: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021) of ``data``; returns an int in [0, 65535]."""
    crc = init
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class BCH:
    """Shortened narrow-sense binary BCH code over GF(2^m).

    ``BCH(m, t, k)`` encodes ``k`` data bits into ``n = k + deg(g)`` bits (``deg(g) <= m*t``) and
    corrects any pattern of at most ``t`` bit errors.  Bits are numpy ``uint8`` arrays of 0/1;
    codeword bit ``i`` is the coefficient of ``x^i`` (parity bits first, data bits last).
    ``decode`` raises ``WatermarkNotFound`` when the word is not within distance ``t`` of a
    codeword (detected failure).
    """

    _PRIM = {4: 0x13, 5: 0x25, 6: 0x43, 7: 0x89, 8: 0x11D, 9: 0x211, 10: 0x409}

    def __init__(self, m: int = _BCH_M, t: int = _BCH_T, k: int = _DATA_BITS):
        if m not in self._PRIM:
            raise ValueError(f"unsupported field GF(2^{m})")
        self.m, self.t, self.k = m, t, k
        self.q = (1 << m) - 1  # multiplicative order
        exp = np.zeros(2 * self.q, dtype=np.int64)
        log = np.full(self.q + 1, -1, dtype=np.int64)
        x = 1
        for i in range(self.q):
            exp[i] = x
            log[x] = i
            x <<= 1
            if x >> m:
                x ^= self._PRIM[m]
        exp[self.q:] = exp[: self.q]
        self.exp, self.log = exp, log
        # generator polynomial: product of distinct minimal polynomials of alpha^1..alpha^2t
        g = 1  # GF(2) polynomial as int bit-vector
        seen: set[int] = set()
        for i in range(1, 2 * t + 1):
            if i % self.q in seen:
                continue
            coset = []
            j = i % self.q
            while j not in coset:
                coset.append(j)
                j = (2 * j) % self.q
            seen.update(coset)
            # minimal polynomial = prod (x - alpha^j) over the coset, coefficients in GF(2)
            poly = [1]  # coefficients in GF(2^m), lowest degree first
            for j in coset:
                root = int(exp[j])
                new = [0] * (len(poly) + 1)
                for d, c in enumerate(poly):
                    new[d + 1] ^= c
                    new[d] ^= self._mul(c, root)
                poly = new
            assert all(c in (0, 1) for c in poly)
            mp = sum(c << d for d, c in enumerate(poly))
            g = self._pmul2(g, mp)
        self.g = g
        self.n_parity = g.bit_length() - 1
        self.n = self.k + self.n_parity
        if self.n > self.q:
            raise ValueError(f"k={k}, t={t} too large for GF(2^{m}) (n={self.n} > {self.q})")

    # -- field helpers
    def _mul(self, a: int, b: int) -> int:
        if a == 0 or b == 0:
            return 0
        return int(self.exp[self.log[a] + self.log[b]])

    @staticmethod
    def _pmul2(a: int, b: int) -> int:
        r = 0
        while b:
            if b & 1:
                r ^= a
            a <<= 1
            b >>= 1
        return r

    # -- encoding
    def encode(self, data_bits: np.ndarray) -> np.ndarray:
        """``data_bits``: uint8 0/1 array of shape (k,) -> codeword uint8 0/1 array of shape (n,)."""
        data_bits = np.asarray(data_bits, dtype=np.uint8)
        if data_bits.shape != (self.k,):
            raise ValueError(f"expected {self.k} data bits, got shape {data_bits.shape}")
        msg = 0
        for i, b in enumerate(data_bits):
            msg |= int(b) << i
        rem = msg << self.n_parity
        glen = self.g.bit_length()
        while rem.bit_length() >= glen:
            rem ^= self.g << (rem.bit_length() - glen)
        cw = (msg << self.n_parity) | rem
        return np.array([(cw >> i) & 1 for i in range(self.n)], dtype=np.uint8)

    # -- decoding
    def decode(self, word: np.ndarray) -> tuple[np.ndarray, int]:
        """Correct up to ``t`` errors in ``word`` (uint8 0/1, shape (n,)).

        Returns ``(data_bits (k,) uint8, number_of_corrected_errors)``; raises
        ``WatermarkNotFound`` if decoding fails (more than ``t`` errors detected).
        """
        word = np.asarray(word, dtype=np.uint8)
        if word.shape != (self.n,):
            raise ValueError(f"expected {self.n} bits, got shape {word.shape}")
        q, exp, log, t = self.q, self.exp, self.log, self.t
        idx = np.nonzero(word)[0]
        js = np.arange(1, 2 * t + 1)
        if idx.size:
            synd = np.bitwise_xor.reduce(exp[(np.outer(js, idx)) % q], axis=1)
        else:
            synd = np.zeros(2 * t, dtype=np.int64)
        if not synd.any():
            return word[self.n_parity:].copy(), 0
        s = [int(v) for v in synd]
        # Berlekamp-Massey
        C = [1] + [0] * (2 * t)
        B = [1] + [0] * (2 * t)
        L, mshift, b = 0, 1, 1
        for nn in range(2 * t):
            d = s[nn]
            for i in range(1, L + 1):
                if C[i] and s[nn - i]:
                    d ^= int(exp[log[C[i]] + log[s[nn - i]]])
            if d == 0:
                mshift += 1
                continue
            coef = int(exp[(log[d] - log[b]) % q])
            T = C[:]
            for i in range(2 * t + 1 - mshift):
                if B[i]:
                    C[i + mshift] ^= int(exp[log[coef] + log[B[i]]])
            if 2 * L <= nn:
                L = nn + 1 - L
                B, b, mshift = T, d, 1
            else:
                mshift += 1
        if L > t:
            raise WatermarkNotFound("BCH: too many errors")
        # Chien search over the (shortened) positions 0..n-1
        pos = np.arange(self.n)
        acc = np.zeros(self.n, dtype=np.int64)
        acc ^= C[0]
        for l in range(1, L + 1):
            if C[l]:
                acc ^= exp[(log[C[l]] - pos * l) % q]
        roots = np.nonzero(acc == 0)[0]
        if len(roots) != L:
            raise WatermarkNotFound("BCH: uncorrectable error pattern")
        out = word.copy()
        out[roots] ^= 1
        return out[self.n_parity:].copy(), int(L)


@functools.lru_cache(maxsize=None)
def _bch() -> BCH:
    return BCH(_BCH_M, _BCH_T, _DATA_BITS)


def _bytes_to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def _bits_to_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little").tobytes()


def _payload_bits(code: bytes) -> np.ndarray:
    crc = crc16(code)
    return _bytes_to_bits(code + crc.to_bytes(2, "little"))


def encode_payload(code: bytes) -> np.ndarray:
    """Channel-encode an 8-byte code: CRC-16 appended, then BCH(220, 80, t=20).

    Returns the codeword as a uint8 0/1 array of shape (220,) (before key scrambling).
    Raises ``WatermarkError`` if ``code`` is not 8 bytes.
    """
    if not isinstance(code, (bytes, bytearray)) or len(code) != CODE_BYTES:
        raise WatermarkError(f"code must be {CODE_BYTES} bytes")
    return _bch().encode(_payload_bits(bytes(code)))


def decode_payload(bits: np.ndarray) -> bytes:
    """Inverse of :func:`encode_payload`: correct up to 20 bit errors, check the CRC.

    ``bits``: uint8 0/1 array of shape (220,).  Returns the 8-byte code; raises
    ``WatermarkNotFound`` if the BCH decoder fails or the CRC does not match.
    """
    data, _ = _bch().decode(np.asarray(bits, dtype=np.uint8))
    raw = _bits_to_bytes(data)
    code, crc = raw[:CODE_BYTES], int.from_bytes(raw[CODE_BYTES:], "little")
    if crc16(code) != crc:
        raise WatermarkNotFound("CRC mismatch")
    return code


# ---------------------------------------------------------------------------------------------
# Key-derived patterns (version-stable: derived from SHAKE-256, not numpy's RNG)
# ---------------------------------------------------------------------------------------------
def _stream(key: bytes, label: str, nbytes: int) -> bytes:
    return hashlib.shake_256(b"wm-v1|" + label.encode() + b"|" + key).digest(nbytes)


def _uniform(key: bytes, label: str, n: int) -> np.ndarray:
    raw = np.frombuffer(_stream(key, label, 8 * n), dtype="<u8")
    return (raw >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _bits(key: bytes, label: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(_stream(key, label, (n + 7) // 8), dtype=np.uint8))[:n]


class _Keyed:
    """All key-dependent constants: sync tile, payload coefficient groups, signs, dither, mask."""

    def __init__(self, key: bytes):
        bch = _bch()
        self.n_bits = bch.n
        # --- sync tile: random phases on an annulus of frequencies, unit RMS
        P = _TILE
        f = np.fft.fftfreq(P) * P
        fy, fx = np.meshgrid(f, f, indexing="ij")
        rad = np.hypot(fy, fx)
        band = (rad >= _SYNC_BAND[0]) & (rad <= _SYNC_BAND[1])
        ph = _uniform(key, "sync-phase", P * P).reshape(P, P) * 2 * np.pi
        spec = band * np.exp(1j * ph)
        tile = np.real(np.fft.ifft2(spec))
        tile -= tile.mean()
        tile /= tile.std()
        self.tile = tile
        self.tile_fft = np.fft.fft2(tile)
        reps = _N // P
        self.sync = np.tile(tile, (reps, reps))
        # --- payload coefficients
        R = _REGION
        u = np.arange(R)
        uu, vv = np.meshgrid(u, u, indexing="ij")
        r = np.hypot(uu, vv)
        sel = np.nonzero(((r >= _PAY_BAND[0]) & (r <= _PAY_BAND[1])).ravel())[0]
        order = np.argsort(_uniform(key, "coef-perm", sel.size), kind="stable")
        per = sel.size // self.n_bits
        if per < 1:
            raise RuntimeError("payload band too small")
        used = sel[order[: per * self.n_bits]]
        self.coef_idx = used  # flat indices into the R x R DCT, grouped per bit
        self.coef_u, self.coef_v = np.divmod(used, R)
        self.per = per
        signs = np.where(_bits(key, "coef-sign", used.size) > 0, 1.0, -1.0)
        self.coef_w = signs / math.sqrt(per)  # projection weights (unit-norm per bit)
        self.dither = _uniform(key, "dither", self.n_bits) * _DELTA
        self.mask = _bits(key, "scramble", self.n_bits)

    def project(self, region: np.ndarray) -> np.ndarray:
        c = sfft.dctn(region, norm="ortho").ravel()[self.coef_idx]
        return (c * self.coef_w).reshape(self.n_bits, self.per).sum(axis=1)

    def backproject(self, amounts: np.ndarray) -> np.ndarray:
        c = np.zeros(_REGION * _REGION)
        c[self.coef_idx] = (np.repeat(amounts, self.per) * self.coef_w)
        return sfft.idctn(c.reshape(_REGION, _REGION), norm="ortho")


@functools.lru_cache(maxsize=16)
def _keyed(key: bytes) -> _Keyed:
    return _Keyed(bytes(key))


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
    return _resize_f(_luma(image), (_N, _N), Image.BILINEAR)


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
    kd = _keyed(key)
    H, W = image.shape[:2]
    delta = _DELTA * s

    coded = _bch().encode(_payload_bits(bytes(code))) ^ kd.mask
    dither = kd.dither * s

    base = image.astype(np.float64)
    m0, m1 = _MARGIN, _N - _MARGIN
    win = _region_window()

    delta_c = _SYNC_AMP * s * kd.sync  # canonical-frame watermark (grey levels)
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
    R, ramp = _REGION, 8
    w = np.ones(R)
    t = (np.arange(ramp) + 0.5) / ramp
    w[:ramp] = 0.5 - 0.5 * np.cos(np.pi * t)
    w[-ramp:] = w[:ramp][::-1]
    return np.outer(w, w)


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------
def _fold_matrix(extent: float, n_in: int = _N, period: int | None = None) -> np.ndarray:
    """(period, n_in) matrix splatting suspect samples at canonical positions onto the tile."""
    period = _TILE if period is None else period
    X = extent * (np.arange(n_in) + 0.5) * (_N / n_in) - 0.5
    j0 = np.floor(X)
    fr = X - j0
    j0 = j0.astype(np.int64)
    M = np.zeros((period, n_in))
    cols = np.arange(n_in)
    np.add.at(M, (j0 % period, cols), 1.0 - fr)
    np.add.at(M, ((j0 + 1) % period, cols), fr)
    return M


def _cubic_matrix(coords: np.ndarray, n: int) -> np.ndarray:
    """(len(coords), n) Keys-cubic (a=-0.5) interpolation matrix, edge-clamped."""
    a = -0.5
    i0 = np.floor(coords).astype(np.int64)
    fr = coords - i0
    M = np.zeros((coords.size, n))
    rows = np.arange(coords.size)
    for k in range(-1, 3):
        d = np.abs(fr - k)
        w = np.where(
            d <= 1,
            (a + 2) * d**3 - (a + 3) * d**2 + 1,
            np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0),
        )
        np.add.at(M, (rows, np.clip(i0 + k, 0, n - 1)), w)
    return M


def _whiten(S: np.ndarray) -> np.ndarray:
    hp = ndimage.gaussian_filter(S, 0.8) - ndimage.gaussian_filter(S, 3.0)
    env = np.sqrt(ndimage.gaussian_filter(hp * hp, 6.0)) + 1.0
    return hp / env


def _sync_scores(kd: _Keyed, Wp: np.ndarray, exts_x, exts_y):
    """Fold the whitened suspect for every (ey, ex) pair and phase-correlate with the tile.

    Returns a list of (score, ex, ox, ey, oy): the best admissible peak for each pair.
    """
    P = _TILE
    Mx = np.concatenate([_fold_matrix(ex) for ex in exts_x])  # (nx*P, N)
    A = Wp @ Mx.T  # (N, nx*P)
    nx, ny = len(exts_x), len(exts_y)
    My = np.stack([_fold_matrix(ey) for ey in exts_y])  # (ny, P, N)
    F = (My.reshape(ny * P, _N) @ A).reshape(ny, P, nx, P).transpose(0, 2, 1, 3)  # (ny,nx,P,P)
    Ff = np.fft.fft2(F)
    cross = np.conj(Ff) * kd.tile_fft  # peak at the canonical offset
    mag = np.abs(Ff)
    cross /= mag + 1e-3 * mag.mean() + 1e-12
    corr = np.real(np.fft.ifft2(cross))  # (ny, nx, P, P)
    sd = corr.std(axis=(2, 3)) + 1e-12
    sh = np.arange(P)
    shs = np.where(sh > P / 2, sh - P, sh)
    out = []
    for iy, ey in enumerate(exts_y):
        oky = (shs >= -2.5) & (shs <= (1 - ey) * _N + 2.5)
        for ix, ex in enumerate(exts_x):
            okx = (shs >= -2.5) & (shs <= (1 - ex) * _N + 2.5)
            c = corr[iy, ix]
            sub = c[np.ix_(oky, okx)]
            a, b = np.unravel_index(np.argmax(sub), sub.shape)
            py, px = np.nonzero(oky)[0][a], np.nonzero(okx)[0][b]
            v0 = c[py, px]

            def interp(vm, vp):
                den = vm - 2 * v0 + vp
                return 0.0 if den >= 0 else float(np.clip(0.5 * (vm - vp) / den, -0.5, 0.5))

            dy = interp(c[(py - 1) % P, px], c[(py + 1) % P, px])
            dx = interp(c[py, (px - 1) % P], c[py, (px + 1) % P])
            out.append((float(v0 / sd[iy, ix]), float(ex), float(shs[px] + dx), float(ey), float(shs[py] + dy)))
    out.sort(key=lambda r: -r[0])
    return out


def _sync_candidates(kd: _Keyed, S: np.ndarray, n_best: int = 3) -> list[tuple[float, float, float, float, float]]:
    """Return up to ``n_best`` (score, ex, ox, ey, oy) geometry hypotheses, best first.

    ``ex``/``ey``: visible fraction of the canonical frame per axis; ``ox``/``oy``: canonical
    position (px) of the suspect's left/top edge.  Coarse grid of extents (step 0.008), then a
    finer grid (step 0.002) around the best distinct coarse peaks.
    """
    Wp = _whiten(S)
    lo, hi = _EXTENT_RANGE
    grid = np.arange(lo, hi + 1e-9, 0.008)
    coarse = _sync_scores(kd, Wp, grid, grid)
    picked: list = []
    for cand in coarse:
        _, ex, ox, ey, oy = cand
        cx, cy = ox + ex * _N / 2, oy + ey * _N / 2
        if any(abs(cx - (p[2] + p[1] * _N / 2)) < 4 and abs(cy - (p[4] + p[3] * _N / 2)) < 4
               and abs(ex - p[1]) < 0.02 and abs(ey - p[3]) < 0.02 for p in picked):
            continue
        picked.append(cand)
        if len(picked) >= n_best:
            break
    refined = []
    for _, ex, ox, ey, oy in picked:
        fx = np.arange(ex - 0.006, ex + 0.0061, 0.002)
        fy = np.arange(ey - 0.006, ey + 0.0061, 0.002)
        refined.append(_sync_scores(kd, Wp, fx, fy)[0])
    refined.sort(key=lambda r: -r[0])
    return refined


def _region_coords(e: float, o: float) -> np.ndarray:
    """Suspect (canonical-resized) pixel coordinates of the payload region's pixel centres."""
    i = np.arange(_MARGIN, _N - _MARGIN) + 0.5
    return (i - o) / e - 0.5


@functools.lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    """First ``_K`` rows of the orthonormal DCT-II matrix of size ``_REGION``."""
    n = _REGION
    k = np.arange(_K)[:, None]
    i = np.arange(n)[None, :]
    D = np.sqrt(2.0 / n) * np.cos(np.pi * k * (i + 0.5) / n)
    D[0] /= np.sqrt(2.0)
    return D


_K = int(math.floor(_PAY_BAND[1])) + 1  # DCT rows/cols that can hold payload coefficients


def _projections(kd: _Keyed, S: np.ndarray, geo_y: list, geo_x: list) -> np.ndarray:
    """Payload projections for all pairs of per-axis geometries.

    ``geo_y`` / ``geo_x``: lists of (extent, offset).  Returns float array of shape
    (len(geo_y), len(geo_x), n_bits).  Uses the separability of resampling and DCT: only the
    low ``_K x _K`` corner of the region's DCT is computed.
    """
    D = _dct_matrix()
    Ay = np.concatenate([D @ _cubic_matrix(_region_coords(e, o), _N) for e, o in geo_y])
    Ax = np.concatenate([D @ _cubic_matrix(_region_coords(e, o), _N) for e, o in geo_x])
    C = (Ay @ S) @ Ax.T  # (ny*K, nx*K)
    ny, nx = len(geo_y), len(geo_x)
    C = C.reshape(ny, _K, nx, _K).transpose(0, 2, 1, 3)
    coefs = C[:, :, kd.coef_u, kd.coef_v] * kd.coef_w  # (ny, nx, n_bits*per)
    return coefs.reshape(ny, nx, kd.n_bits, kd.per).sum(axis=3)


def _soft_from_proj(kd: _Keyed, proj: np.ndarray) -> np.ndarray:
    return np.cos(2 * np.pi * (proj - kd.dither) / _DELTA)


def _soft_bits(kd: _Keyed, S: np.ndarray, ex: float, ox: float, ey: float, oy: float) -> np.ndarray:
    """Soft values in [-1, 1] (positive = bit 0) of the (scrambled) coded bits for a geometry."""
    return _soft_from_proj(kd, _projections(kd, S, [(ey, oy)], [(ex, ox)])[0, 0])


def _axis_grid(e0: float, o0: float, de: float, ne: int, dc: float, nc: int) -> list:
    """Per-axis hypotheses around (e0, o0): extents e0 + i*de and centre shifts j*dc."""
    c0 = o0 + e0 * _N / 2  # canonical position of the suspect's centre
    out = []
    for i in range(-ne, ne + 1):
        e = e0 + i * de
        for j in range(-nc, nc + 1):
            out.append((e, c0 + j * dc - e * _N / 2))
    return out


def _lattice_fit(kd: _Keyed, proj: np.ndarray) -> np.ndarray:
    """Q = mean over bits of cos(4 pi (p - d) / delta): ~1 when aligned, ~0 (+-0.05) otherwise."""
    return np.cos(4 * np.pi * (proj - kd.dither) / _DELTA).mean(axis=-1)


def _refine(kd: _Keyed, S: np.ndarray, ex, ox, ey, oy, n_seeds: int = 3, n_out: int = 2):
    """Local search maximizing the lattice fit ``Q`` around one sync hypothesis.

    A coarse joint grid (extent step 0.003, centre step 0.5 px, per axis) is searched; the
    ``n_seeds`` best coarse points are refined on a fine grid (0.001, 0.17 px).  Returns a list of
    (Q, ex, ox, ey, oy, projections) with the ``n_out`` best fine points per seed, best first.
    """
    gy = _axis_grid(ey, oy, 0.003, 3, 0.5, 4)
    gx = _axis_grid(ex, ox, 0.003, 3, 0.5, 4)
    q = _lattice_fit(kd, _projections(kd, S, gy, gx))
    seeds = []
    for flat in np.argsort(q, axis=None)[::-1]:
        iy, ix = np.unravel_index(flat, q.shape)
        if any(abs(iy - a) + abs(ix - b) <= 1 for a, b in seeds):
            continue
        seeds.append((iy, ix))
        if len(seeds) >= n_seeds:
            break
    out = []
    for iy, ix in seeds:
        fy = _axis_grid(*gy[iy], 0.001, 2, 0.17, 2)
        fx = _axis_grid(*gx[ix], 0.001, 2, 0.17, 2)
        proj = _projections(kd, S, fy, fx)
        qf = _lattice_fit(kd, proj)
        for flat in np.argsort(qf, axis=None)[::-1][:n_out]:
            a, b = np.unravel_index(flat, qf.shape)
            out.append((float(qf[a, b]), fx[b][0], fx[b][1], fy[a][0], fy[a][1], proj[a, b]))
    out.sort(key=lambda r: -r[0])
    return out


def _decode_soft(kd: _Keyed, soft: np.ndarray, chase_bits: int = 4) -> bytes | None:
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
    kd = _keyed(key)
    S = _canonical(image)
    # 1) the unattacked / pure-rescale geometry first (cheap)
    code = _decode_soft(kd, _soft_bits(kd, S, 1.0, 0.0, 1.0, 0.0))
    if code is not None:
        return code
    # 2) sync-template search, then local refinement on the payload lattice fit
    for sc, ex, ox, ey, oy in _sync_candidates(kd, S):
        for q, ex2, ox2, ey2, oy2, proj in _refine(kd, S, ex, ox, ey, oy):
            code = _decode_soft(kd, _soft_from_proj(kd, proj))
            if code is not None:
                return code
    raise WatermarkNotFound("no watermark found for this key")
