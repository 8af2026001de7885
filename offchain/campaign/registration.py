"""The watermark's canonical frame, its key-derived patterns and geometric registration.

* Everything happens on the luminance of the image resampled to a *canonical* ``N x N`` frame (N = 256), which
  undoes any rescaling (`offchain.campaign.watermark`).
* `Keyed`: every key-dependent constant (version-stable: derived from SHAKE-256, not numpy's RNG): the sync tile,
  the payload DCT coefficients of each coded bit with their signs, the dither and the scrambling mask.
* **Sync template** (geometry after cropping): a key-derived pseudo-random band-pass tile of ``TILE x TILE``
  canonical px (spatial wavelengths ~5.3..21 px), repeated 2 x 2 times over the frame.  `coarse_sync` folds the
  whitened suspect (`whitened`), at half resolution, modulo the tile period for a grid of horizontal/vertical
  extents ``e in [0.79, 1.005]`` (a crop of <= 10 % per border leaves ``1 - left - right >= 0.8`` of the frame
  visible); a phase-only FFT correlation with the tile gives the offsets (restricted to the admissible range).
  `fine_sync` refines the best distinct peaks on a finer extent grid at full resolution.  The caller
  (`offchain.campaign.watermark`) runs it for every mirror x rotation hypothesis and compares the peak heights.
* **Fine registration** (`refine`): around each sync hypothesis a joint grid of (extent, centre) per axis
  maximizes the lattice fit ``Q = mean cos(4 pi (p - dither) / delta)`` (~1 when aligned, ~0 otherwise),
  computed cheaply through the separability of resampling and DCT (`projections`, `projector`).
* **Sync-free fallback** (`centred_scan`): when texture drowns the sync template, the lattice fit alone over
  centred crops (and, in `offchain.campaign.detection`, over rotations at the pure-rescale geometry).

A geometry is (ex, ox, ey, oy): the visible fraction of the canonical frame per axis and the canonical position
(px) of the suspect's left/top edge.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np
from PIL import Image
from scipy import fft as sfft
from scipy import sparse
from scipy import ndimage

from offchain.campaign.ecc import channel

# Parameters (all in canonical-frame pixels)
N = 256  # canonical frame size
TILE = 128  # sync tile period
_SYNC_BAND = (6.0, 24.0)  # cycles per tile (wavelength ~21..5.3 px)
SYNC_AMP = 2.1  # RMS of the sync template (grey levels), 64-bit codes
MARGIN = 28  # payload region = [MARGIN, N - MARGIN): a crop of <= 10 % per border never reaches it
REGION = N - 2 * MARGIN
_PAY_BAND = (3.0, 18.0)  # radial DCT index band of payload coefficients (64-bit codes, public layer)
DELTA = 120.0  # STDM quantization step (orthonormal DCT units), 64-bit codes
# Layout per (code bytes, layer): (radial band of the coefficient pool, DCT parity class (u+v) % 2 or None for all,
# quantization step, sync RMS in grey levels).  128-bit codes interleave the public and the secret layer on the two
# parity classes of one band, so both layers have the same spectrum (the same robustness) and never share a
# coefficient; the payload costs n_bits * delta^2 / 12 of squared error per frame, the sync N^2 * rms^2: 414 bits at
# delta 105 and rms 1.7 give ~38.5 dB.  64-bit codes keep the public layout of the first version (38.6 dB), and put
# their secret layer on the next ring.
LAYOUT = {
    (8, "public"): (_PAY_BAND, None, DELTA, SYNC_AMP),
    (8, "secret"): ((18.5, 25.0), None, DELTA, SYNC_AMP),
    (16, "public"): ((3.0, 33.0), 0, 105.0, 1.7),
    (16, "secret"): ((3.0, 33.0), 1, 105.0, 1.7),
}
LAYERS = ("public", "secret")
_EXTENT_RANGE = (0.79, 1.005)  # searched visible fraction of the canonical frame per axis


def luma(image: np.ndarray) -> np.ndarray:
    """Luminance ``0.299 R + 0.587 G + 0.114 B`` (float32, H x W) of a uint8 H x W x 3 RGB image."""
    x = image.astype(np.float32)
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def resize_f(a: np.ndarray, size: tuple[int, int], method=Image.BILINEAR) -> np.ndarray:
    """Resize float image ``a`` to ``size = (height, width)`` with Pillow (mode 'F'); float64 out."""
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F")
    return np.asarray(im.resize((size[1], size[0]), method), dtype=np.float64)


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


class Keyed:
    """All key-dependent constants of one layer: sync tile, payload coefficient groups, signs, dither, mask.

    ``code_bytes`` (8 or 16) fixes the channel code (`offchain.campaign.ecc.channel`) and, with ``layer``
    ("public" or "secret"), the pool of DCT coefficients the key draws from (`LAYOUT`).
    """

    def __init__(self, key: bytes, code_bytes: int = 8, layer: str = "public"):
        if (code_bytes, layer) not in LAYOUT:
            raise ValueError(f"no layout for {code_bytes}-byte codes, layer {layer!r}")
        self.code_bytes, self.layer = code_bytes, layer
        self.n_bits = channel(code_bytes).n
        pay_band, parity, self.delta, self.sync_amp = LAYOUT[(code_bytes, layer)]
        self.K = int(math.floor(pay_band[1])) + 1  # DCT rows/cols that can hold payload coefficients
        # --- sync tile: random phases on an annulus of frequencies, unit RMS
        P = TILE
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
        h = P // 2  # the same tile sampled at half resolution (its band is below the half-rate Nyquist limit)
        sub = np.fft.fftshift(self.tile_fft)[P // 2 - h // 2: P // 2 + h // 2, P // 2 - h // 2: P // 2 + h // 2]
        self.tile_half_fft = np.fft.fft2(np.real(np.fft.ifft2(np.fft.ifftshift(sub))))
        reps = N // P
        self.sync = np.tile(tile, (reps, reps))
        # --- payload coefficients
        R = REGION
        u = np.arange(R)
        uu, vv = np.meshgrid(u, u, indexing="ij")
        r = np.hypot(uu, vv)
        inband = (r >= pay_band[0]) & (r <= pay_band[1])
        if parity is not None:
            inband &= (uu + vv) % 2 == parity
        sel = np.nonzero(inband.ravel())[0]
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
        self.bit_r2 = (self.coef_u**2 + self.coef_v**2).reshape(self.n_bits, per).mean(axis=1).astype(float)
        self.dither = _uniform(key, "dither", self.n_bits) * self.delta
        self.mask = _bits(key, "scramble", self.n_bits)

    def project(self, region: np.ndarray) -> np.ndarray:
        """Payload projections (n_bits,) float64 of a canonical payload region (REGION x REGION grey levels)."""
        c = sfft.dctn(region, norm="ortho").ravel()[self.coef_idx]
        return (c * self.coef_w).reshape(self.n_bits, self.per).sum(axis=1)

    def backproject(self, amounts: np.ndarray) -> np.ndarray:
        """The REGION x REGION image whose projections change by ``amounts`` (n_bits,) (adjoint of `project`)."""
        c = np.zeros(REGION * REGION)
        c[self.coef_idx] = (np.repeat(amounts, self.per) * self.coef_w)
        return sfft.idctn(c.reshape(REGION, REGION), norm="ortho")


@functools.lru_cache(maxsize=16)
def keyed(key: bytes, code_bytes: int = 8, layer: str = "public") -> Keyed:
    """The `Keyed` constants of ``key`` (non-empty bytes) for one code size and layer, cached (last 16)."""
    return Keyed(bytes(key), code_bytes, layer)


# ---------------------------------------------------------------------------------------------
# Sync template search
# ---------------------------------------------------------------------------------------------
def _fold_matrix(extent: float, n_in: int = N, period: int = TILE, unit: int = 1) -> np.ndarray:
    """(period, n_in) matrix splatting suspect samples at canonical positions onto the tile.

    ``unit``: canonical px per sample of the folded grid (1 at full resolution, 2 at half resolution).
    """
    X = extent * (np.arange(n_in) + 0.5) * (N / n_in) / unit - 0.5
    j0 = np.floor(X)
    fr = X - j0
    j0 = j0.astype(np.int64)
    M = np.zeros((period, n_in))
    cols = np.arange(n_in)
    np.add.at(M, (j0 % period, cols), 1.0 - fr)
    np.add.at(M, ((j0 + 1) % period, cols), fr)
    return M


def _cubic_matrix(coords: np.ndarray, n: int) -> sparse.csr_matrix:
    """(len(coords), n) Keys-cubic (a=-0.5) interpolation matrix, edge-clamped, sparse (4 taps per row; taps
    clamped onto the same edge pixel add up)."""
    a = -0.5
    i0 = np.floor(coords).astype(np.int64)
    fr = coords - i0
    rows = np.broadcast_to(np.arange(coords.size), (4, coords.size))
    cols = np.empty((4, coords.size), np.int64)
    ws = np.empty((4, coords.size))
    for t, k in enumerate(range(-1, 3)):
        d = np.abs(fr - k)
        ws[t] = np.where(
            d <= 1,
            (a + 2) * d**3 - (a + 3) * d**2 + 1,
            np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0),
        )
        cols[t] = np.clip(i0 + k, 0, n - 1)
    return sparse.csr_matrix((ws.ravel(), (rows.ravel(), cols.ravel())), shape=(coords.size, n))


def _whiten(S: np.ndarray, unit: int = 1) -> np.ndarray:
    """Band-pass and locally normalize a canonical frame (``unit`` = 2: a half-resolution frame)."""
    hp = ndimage.gaussian_filter(S, 0.8 / unit) - ndimage.gaussian_filter(S, 3.0 / unit)
    env = np.sqrt(ndimage.gaussian_filter(hp * hp, 6.0 / unit)) + 1.0
    return hp / env


def whitened(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(full-resolution, half-resolution) whitened versions of the canonical frame ``S`` (N x N)."""
    half = S.reshape(N // 2, 2, N // 2, 2).mean(axis=(1, 3))
    return _whiten(S), _whiten(half, 2)


def _sync_scores(kd: Keyed, Wp: np.ndarray, exts_x, exts_y, unit: int = 1, n_out: int = 1, n_best: int = 0):
    """Fold the whitened suspect for every (ey, ex) pair and phase-correlate with the tile.

    ``Wp``: whitened frame at full (``unit`` = 1, N x N) or half (``unit`` = 2) resolution.
    Returns a list of (score, ex, ox, ey, oy), best first: the ``n_out`` best admissible peaks of each pair
    (only the ``n_best`` best overall if ``n_best`` > 0); offsets in canonical px.
    """
    P = TILE // unit
    n_in = Wp.shape[0]
    tile_fft = kd.tile_fft if unit == 1 else kd.tile_half_fft
    Mx = np.concatenate([_fold_matrix(ex, n_in, P, unit) for ex in exts_x])  # (nx*P, n_in)
    A = Wp @ Mx.T  # (n_in, nx*P)
    nx, ny = len(exts_x), len(exts_y)
    My = np.stack([_fold_matrix(ey, n_in, P, unit) for ey in exts_y])  # (ny, P, n_in)
    F = (My.reshape(ny * P, n_in) @ A).reshape(ny, P, nx, P).transpose(0, 2, 1, 3)  # (ny,nx,P,P)
    Ff = sfft.rfft2(F.astype(np.float32), workers=-1)
    cross = np.conj(Ff) * tile_fft[:, : P // 2 + 1].astype(np.complex64)  # peak at the canonical offset
    mag = np.abs(Ff)
    cross /= mag + 1e-3 * mag.mean() + 1e-12
    corr = sfft.irfft2(cross, s=(P, P), workers=-1)  # (ny, nx, P, P)
    corr /= corr.std(axis=(2, 3), keepdims=True) + 1e-12
    sh = np.arange(P)
    shs = np.where(sh > P / 2, sh - P, sh) * unit  # canonical px
    ey_a, ex_a = np.asarray(exts_y, dtype=float), np.asarray(exts_x, dtype=float)
    oky = (shs[None, :] >= -2.5) & (shs[None, :] <= (1 - ey_a[:, None]) * N + 2.5)  # (ny, P)
    okx = (shs[None, :] >= -2.5) & (shs[None, :] <= (1 - ex_a[:, None]) * N + 2.5)  # (nx, P)
    ok = oky[:, None, :, None] & okx[None, :, None, :]
    masked = np.where(ok, corr, -np.inf).reshape(ny * nx, P * P)
    if n_out == 1:
        order = np.argmax(masked, axis=1)[:, None]
    else:
        order = np.argsort(masked, axis=1)[:, ::-1][:, :n_out]  # (pairs, n_out)
    vals = np.take_along_axis(masked, order, axis=1)
    top = np.argsort(vals, axis=None)[::-1][: max(n_best, 1)] if n_best else np.arange(vals.size)
    out = []
    for flat in top:
        pair, r = divmod(int(flat), order.shape[1])
        iy, ix = divmod(pair, nx)
        py, px = divmod(int(order[pair, r]), P)
        c = corr[iy, ix]
        v0 = c[py, px]

        def interp(vm, vp):
            den = vm - 2 * v0 + vp
            return 0.0 if den >= 0 else float(np.clip(0.5 * (vm - vp) / den, -0.5, 0.5))

        dy = interp(c[(py - 1) % P, px], c[(py + 1) % P, px]) * unit
        dx = interp(c[py, (px - 1) % P], c[py, (px + 1) % P]) * unit
        out.append((float(v0), float(ex_a[ix]), float(shs[px] + dx), float(ey_a[iy]), float(shs[py] + dy)))
    out.sort(key=lambda r: -r[0])
    return out


def _distinct(cands, n_best: int) -> list:
    picked: list = []
    for cand in cands:
        _, ex, ox, ey, oy = cand[:5]
        cx, cy = ox + ex * N / 2, oy + ey * N / 2
        if any(abs(cx - (p[2] + p[1] * N / 2)) < 4 and abs(cy - (p[4] + p[3] * N / 2)) < 4
               and abs(ex - p[1]) < 0.02 and abs(ey - p[3]) < 0.02 for p in picked):
            continue
        picked.append(cand)
        if len(picked) >= n_best:
            break
    return picked


def coarse_sync(kd: Keyed, W_half: np.ndarray, n_best: int = 3) -> list[tuple[float, float, float, float, float]]:
    """Up to ``n_best`` distinct (score, ex, ox, ey, oy) hypotheses from the half-resolution whitened frame.

    Extents on a grid of step 0.01 over the admissible range (a crop of <= 10 % per border); scores are
    peak heights in standard deviations of the correlation surface, comparable between frames.
    """
    lo, hi = _EXTENT_RANGE
    grid = np.arange(lo, hi + 1e-9, 0.01)
    return _distinct(_sync_scores(kd, W_half, grid, grid, unit=2, n_best=40), n_best)


def fine_sync(kd: Keyed, W_full: np.ndarray, ex: float, ey: float) -> tuple[float, float, float, float, float]:
    """The best (score, ex, ox, ey, oy) on a fine extent grid (step 0.002) around (ex, ey), full resolution."""
    fx = np.arange(ex - 0.008, ex + 0.0081, 0.002)
    fy = np.arange(ey - 0.008, ey + 0.0081, 0.002)
    return _sync_scores(kd, W_full, fx, fy, n_best=1)[0]


# ---------------------------------------------------------------------------------------------
# Fine registration on the payload lattice
# ---------------------------------------------------------------------------------------------
def _region_coords(e: float, o: float) -> np.ndarray:
    """Suspect (canonical-resized) pixel coordinates of the payload region's pixel centres."""
    i = np.arange(MARGIN, N - MARGIN) + 0.5
    return (i - o) / e - 0.5


@functools.lru_cache(maxsize=4)
def _dct_matrix(K: int) -> np.ndarray:
    """First ``K`` rows of the orthonormal DCT-II matrix of size ``REGION``."""
    n = REGION
    k = np.arange(K)[:, None]
    i = np.arange(n)[None, :]
    D = np.sqrt(2.0 / n) * np.cos(np.pi * k * (i + 0.5) / n)
    D[0] /= np.sqrt(2.0)
    return D


def _axis_matrix(e: float, o: float, K: int) -> np.ndarray:
    return np.asarray((_cubic_matrix(_region_coords(e, o), N).T @ _dct_matrix(K).T).T)


def projections(kd: Keyed, S: np.ndarray, geo_y: list, geo_x: list) -> np.ndarray:
    """Payload projections for all pairs of per-axis geometries.

    ``geo_y`` / ``geo_x``: lists of (extent, offset).  Returns float array of shape
    (len(geo_y), len(geo_x), n_bits).  Uses the separability of resampling and DCT: only the
    low ``K x K`` corner of the region's DCT is computed.
    """
    K = kd.K
    Ay = np.concatenate([_axis_matrix(e, o, K) for e, o in geo_y])
    Ax = np.concatenate([_axis_matrix(e, o, K) for e, o in geo_x])
    C = (Ay @ S) @ Ax.T  # (ny*K, nx*K)
    ny, nx = len(geo_y), len(geo_x)
    C = C.reshape(ny, K, nx, K).transpose(0, 2, 1, 3)
    coefs = C[:, :, kd.coef_u, kd.coef_v] * kd.coef_w  # (ny, nx, n_bits*per)
    return coefs.reshape(ny, nx, kd.n_bits, kd.per).sum(axis=3)


def projector(kd: Keyed, ex: float, ox: float, ey: float, oy: float):
    """A function mapping canonical frames (N x N, or a stack k x N x N) to their payload projections at one
    geometry: shape (n_bits,) or (k, n_bits)."""
    Ay, Ax = _axis_matrix(ey, oy, kd.K), _axis_matrix(ex, ox, kd.K)

    def apply(S: np.ndarray) -> np.ndarray:
        C = np.einsum("ai,...ij,bj->...ab", Ay, S, Ax, optimize=True)
        coefs = C[..., kd.coef_u, kd.coef_v] * kd.coef_w
        return coefs.reshape(*C.shape[:-2], kd.n_bits, kd.per).sum(axis=-1)

    return apply


def _axis_grid(e0: float, o0: float, de: float, ne: int, dc: float, nc: int) -> list:
    """Per-axis hypotheses around (e0, o0): extents e0 + i*de and centre shifts j*dc."""
    c0 = o0 + e0 * N / 2  # canonical position of the suspect's centre
    out = []
    for i in range(-ne, ne + 1):
        e = e0 + i * de
        for j in range(-nc, nc + 1):
            out.append((e, c0 + j * dc - e * N / 2))
    return out


def lattice_fit(kd: Keyed, proj: np.ndarray) -> np.ndarray:
    """Q = mean over bits of cos(4 pi (p - d) / delta): ~1 when aligned, ~0 (+-0.05) otherwise."""
    return np.cos(4 * np.pi * (proj - kd.dither) / kd.delta).mean(axis=-1)


def centred_scan(kd: Keyed, S: np.ndarray, extents, gains, n_out: int = 2) -> list[tuple[float, tuple]]:
    """Sync-free search for a centred crop: the lattice fit ``Q`` of ``S`` (a canonical frame) at every pair of
    per-axis visible fractions in ``extents`` (each axis cropped equally on both sides, so its centre stays the
    frame's), best over the scalar ``gains``.  Returns the ``n_out`` best (Q, geometry), best first, geometry
    (ex, ox, ey, oy).  For suspects whose sync template is drowned by texture (a zebra's stripes): `refine` then
    registers a hit."""
    geo = [(float(e), N / 2 - float(e) * N / 2) for e in extents]
    P = projections(kd, S, geo, geo)
    q = np.max(np.stack([lattice_fit(kd, P / g) for g in gains]), axis=0)
    out = []
    for flat in np.argsort(q, axis=None)[::-1][:n_out]:
        iy, ix = np.unravel_index(flat, q.shape)
        out.append((float(q[iy, ix]), (*geo[ix], *geo[iy])))
    return out


def refine(kd: Keyed, S: np.ndarray, ex, ox, ey, oy, n_seeds: int = 3, n_out: int = 2, gain=1.0, gains=None):
    """Local search maximizing the lattice fit ``Q`` of the projections of ``S`` divided by ``gain`` (a scalar or
    per-bit array, `offchain.campaign.tone`) around one sync hypothesis.

    ``gains``: optional list of alternative gains (scalars or arrays); each point's fit is then the best over them
    (when the tone of the hypothesis is unknown).  A coarse joint grid (extent step 0.003, centre step 0.5 px, per
    axis) is searched; the ``n_seeds`` best coarse points are refined on a fine grid (0.001, 0.17 px).  Returns a
    list of (Q, ex, ox, ey, oy, projections divided by the best gain) with the ``n_out`` best fine points per seed,
    best first.
    """
    gl = [gain] if gains is None else list(gains)

    def fit(P):
        qs = np.stack([lattice_fit(kd, P / g) for g in gl])
        best = np.argmax(qs, axis=0)
        return np.take_along_axis(qs, best[None], axis=0)[0], best

    gy = _axis_grid(ey, oy, 0.003, 3, 0.5, 4)
    gx = _axis_grid(ex, ox, 0.003, 3, 0.5, 4)
    q, _ = fit(projections(kd, S, gy, gx))
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
        proj = projections(kd, S, fy, fx)
        qf, which = fit(proj)
        for flat in np.argsort(qf, axis=None)[::-1][:n_out]:
            a, b = np.unravel_index(flat, qf.shape)
            out.append((float(qf[a, b]), fx[b][0], fx[b][1], fy[a][0], fy[a][1], proj[a, b] / gl[which[a, b]]))
    out.sort(key=lambda r: -r[0])
    return out
