"""Blind extraction of the watermark (`offchain.campaign.watermark.extract`): the suspect's model, the staged
geometry search, tone normalization and soft decoding.

`search(kd, image)` tries, cheapest first, until a code passes the decoder (BCH or OSD, then the CRC):

1. the pure-rescale geometry, upright then mirrored (`_try_geometry`: tone search, the clipping fill when the fit
   is poor, soft decoding);
2. the sync template over mirror x rotation hypotheses (`offchain.campaign.registration.coarse_sync` at half
   resolution, `fine_sync`), upright hypotheses first; strong peaks (>= _SYNC_MIN standard deviations) are
   registered (`_register`: tone, lattice refinement, fine rotation), then the best weak ones;
3. when texture drowns the sync template (stripes, foliage; a weak template after crop + resize + JPEG): the
   payload's own lattice fit ranks more upright sync candidates (`_upright`) and, without the sync, rotations at
   the pure-rescale geometry and centred crops (`_sync_free`); the best are registered.  This stage costs an
   unmarked image about 3 s more (about 6 s in all on a 256-px photo).

A wrong code is returned only with the decoder's negligible probability per attempt (`offchain.campaign.ecc`).
"""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image
from scipy import ndimage

from offchain.campaign.ecc import OSD_MAX_DIST, WatermarkNotFound, decode_osd, decode_payload
from offchain.campaign.registration import (N, Keyed, centred_scan, coarse_sync, fine_sync, luma, projector, refine,
                                            resize_f, whitened)
from offchain.campaign.tone import K_GRID, apply_tone, fill_search, tone_search

__all__ = ["search"]


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
_N_SCAN = 3  # best stage-3 hypotheses registered
# Stage 3 also ranks more upright sync candidates by the lattice fit: the coarse peak of a weak template (crop +
# resize 0.5 + JPEG 50 on a textured photo: ~4-5 standard deviations, like the noise peaks of the other mirror x
# rotation hypotheses) is often the 2nd-6th of its frame; the best lattice fit nearby under plain gains (`refine`
# from one seed: the fit peaks within 0.001 of extent and 0.2 px, a coarser grid misses it) tells it (~0.3-0.5) from
# a wrong one (~0.12-0.19).
_N_UPRIGHT = {False: 6, True: 3}  # candidates per upright frame (unmirrored, mirrored)
_GATE_GAINS = (0.85, 0.9, 0.95, 1.0)
_Q_GATE = 0.25
_SCAN_SIDE = 320  # the rotation scan rotates a copy whose shorter side is at most this (the canonical frame is 256)


class _Suspect:
    """The suspect's luminance and clipping basis (`offchain.campaign.tone.fill_search`), with their canonical frames
    per (mirror, rotation), cached."""

    def __init__(self, image: np.ndarray):
        self.Y = luma(image).astype(np.float64)
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
        self._Ys = self.Y if side <= _SCAN_SIDE else resize_f(
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
    return resize_f(Y, (N, N), Image.BILINEAR)


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


def search(kd: Keyed, image: np.ndarray) -> bytes | None:
    """The code of layer ``kd`` in ``image`` (uint8 H x W x 3 RGB, already validated), or None: the three stages of
    the module docstring, in order."""
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
    weak = []
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
    # 3) texture (stripes, foliage) can drown the sync template: the payload's own lattice fit ranks more upright
    #    sync candidates, and finds a rotation at the pure-rescale geometry or a centred crop without the sync
    for _, flip, angle, geo in sorted(_upright(kd, sus) + _sync_free(kd, sus), key=lambda h: -h[0])[:_N_SCAN]:
        code = _register(kd, sus, flip, angle, geo)
        if code is not None:
            return code
    return None


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
    return [h for h in out if h[0] >= _Q_SCAN]


def _upright(kd: Keyed, sus: _Suspect) -> list[tuple]:
    """Hypotheses (Q, flip, 0.0, geometry) from the _N_UPRIGHT best coarse sync peaks of each upright frame, refined
    (`fine_sync`), whose best lattice fit nearby (`refine` from one seed under _GATE_GAINS) reaches _Q_GATE."""
    out = []
    for flip in (False, True):
        S = sus.frame(flip, 0.0)[0]
        W_full, W_half = whitened(S)
        for cand in coarse_sync(kd, W_half, _N_UPRIGHT[flip]):
            geo = fine_sync(kd, W_full, cand[1], cand[3])[1:]
            best = refine(kd, S, *geo, n_seeds=1, n_out=1, gains=_GATE_GAINS)
            if best and best[0][0] >= _Q_GATE:
                out.append((best[0][0], flip, 0.0, geo))
    return out




def _register_hypothesis(kd: Keyed, sus: _Suspect, h: tuple) -> bytes | None:
    _, flip, angle, W_full, cand = h
    _, ex, ox, ey, oy = fine_sync(kd, W_full, cand[1], cand[3])
    return _register(kd, sus, flip, angle, (ex, ox, ey, oy))
