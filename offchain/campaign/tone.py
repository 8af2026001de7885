"""Photometric normalization of a suspect image for the watermark (brightness, contrast, gamma).

A pirate's one-line tone edits change the luminance ``Y`` pointwise: brightness and contrast multiply its
variations by a gain ``c`` (a constant added to every pixel only moves the DCT's DC term, which carries no payload),
gamma maps ``Y -> 255 (Y / 255)^gamma``.  The payload is a quantization-index modulation of projections of ``Y``
(`offchain.campaign.registration`), so both must be undone before decoding: `tone_search` tries the inverse model
``Y_hat = 255 (Y' / 255)^k / g`` on a grid of exponents ``k`` (gamma 0.78..1.28) and gains ``g`` (0.74..1.35) and
keeps the pair with the best lattice fit ``Q``.  Projections are linear in the frame, so one projection per exponent
serves every gain.

Resizing, blur and lossy codecs also act as a low-pass filter: the payload coefficient of radial DCT index ``r``
comes back multiplied by about ``exp(-c r^2)`` (a Gaussian's frequency response).  A single gain then fits the many
high-frequency coefficients and leaves the low-frequency ones (whose host values are large) off by a few percent,
i.e. by a good part of the quantization step: so the gain is per coefficient, ``g exp(-c r^2)``, and a second search
over ``(c, g)`` at the best exponent refines the first.

Clipping: brightening (or an offset, or more contrast) saturates highlights at 255, and what was above is lost; the
inverse tone model then underestimates the host over the saturated area by a smooth positive excess, whose DCT
falls mostly on the low-frequency payload coefficients, and the tone search, seeing a flattened top, picks a biased
exponent and gain.  `fill_search` models the excess as a combination of a few basis frames (the saturated area,
weighted by the luma share of its saturated channels, times low-order cosines; the distance into it; the area
crushed to 0), fits their weights by least squares to the nearest lattice points at every gain of a wide grid (at
the exponent found and at exponent 1), and keeps the best lattice fit (projections are linear in the fill).
"""

from __future__ import annotations

import numpy as np

from offchain.campaign.registration import Keyed

K_GRID = np.exp(np.arange(-0.25, 0.2501, 0.0125))  # inverse-gamma exponents, log step 0.0125 (k = 1 included)
GAINS = np.exp(np.arange(-0.30, 0.3001, 0.003))  # gains, log step 0.003 (g = 1 included)
LOWPASS = np.arange(0.0, 4.01e-4, 0.25e-4)  # low-pass coefficients c (per squared radial DCT index)


def apply_tone(S: np.ndarray, k: float, g: float) -> np.ndarray:
    """``255 (S / 255)^k / g`` for a canonical frame ``S`` (float grey levels; negatives clipped to 0)."""
    base = np.maximum(S, 0.0) / 255.0
    return 255.0 * (base if k == 1.0 else base**k) / g


def tone_search(kd: Keyed, project, S: np.ndarray, ks=K_GRID, gains=GAINS) -> tuple[float, float, np.ndarray]:
    """The (Q, k, gain) maximizing the lattice fit of ``project(apply_tone(S, k, 1)) / gain``.

    ``project``: a `offchain.campaign.registration.projector` for the hypothesized geometry; ``S``: the canonical
    frame (N x N float).  Returns the fit ``Q`` (~1 aligned, ~0 otherwise), the exponent ``k`` and the per-bit gain
    ``g exp(-c r^2)`` (float array (n_bits,), ``r^2`` = `Keyed.bit_r2`).
    """
    base = np.maximum(S, 0.0) / 255.0
    stack = np.stack([255.0 * base**k for k in ks])
    proj = project(stack)  # (len(ks), n_bits)
    gains = np.asarray(gains)
    p = proj[:, None, :] / gains[None, :, None]  # (k, g, n_bits)
    q = np.cos(4 * np.pi * (p - kd.dither) / kd.delta).mean(axis=-1)
    a, b = np.unravel_index(int(np.argmax(q)), q.shape)
    best_q, k = float(q[a, b]), float(ks[a])
    # second stage: low-pass x gain around the best gain, at the best exponent
    g0 = gains[b]
    fine = g0 * np.exp(np.arange(-0.06, 0.0601, 0.003))
    resp = np.exp(-np.outer(LOWPASS, kd.bit_r2))  # (c, n_bits)
    pc = proj[a][None, None, :] / (fine[None, :, None] * resp[:, None, :])  # (c, g, n_bits)
    q2 = np.cos(4 * np.pi * (pc - kd.dither) / kd.delta).mean(axis=-1)
    c, d = np.unravel_index(int(np.argmax(q2)), q2.shape)
    if q2[c, d] > best_q:
        return float(q2[c, d]), k, fine[d] * resp[c]
    return best_q, k, np.full(kd.n_bits, g0)


FILL_GAINS = np.exp(np.arange(-0.15, 0.3501, 0.004))  # gains searched with a fitted fill (0.86..1.42)
_FILL_RIDGE = 1e-6  # Tikhonov term of the fill's weighted least squares (projection units squared)


def _fit_fill(kd: Keyed, base: np.ndarray, comps: np.ndarray, gain: np.ndarray, iters: int,
              theta: np.ndarray | None = None) -> np.ndarray:
    """Iteratively reweighted least squares: the fill weights ``theta`` (P,) that bring ``(base + theta @ comps) /
    gain`` nearest to the union lattice ``dither + (delta / 2) Z`` (both bit values: the bits are unknown), each
    coefficient weighted by how near it already is (a far one is probably a bit error, not a fill error)."""
    half = kd.delta / 2.0
    th = np.zeros(comps.shape[0]) if theta is None else theta
    cn = comps / gain
    for _ in range(iters):
        p = (base + th @ comps) / gain
        t = np.round((p - kd.dither) / half) * half + kd.dither
        w = np.clip(np.cos(2.0 * np.pi * (p - t) / half), 0.05, None)
        a = (cn * w) @ cn.T + _FILL_RIDGE * np.eye(len(th))
        th = np.linalg.solve(a, (cn * w) @ (t - base / gain))
    return th


def fill_search(kd: Keyed, base: np.ndarray, comps: np.ndarray, gain: np.ndarray) -> tuple[float, np.ndarray,
                                                                                          np.ndarray]:
    """The clipping fill and gain maximizing the lattice fit of ``(base + fill @ comps) / gain``.

    ``base``: projections (n_bits,) of the toned frame; ``comps``: projections (P, n_bits) of the fill's basis
    frames (toned domain: the saturated-area and crushed-area masks times low-order cosines and the distance into
    the saturated area, `offchain.campaign.detection._Suspect`); ``gain``: the per-bit gain of `tone_search`, whose
    shape (the low-pass) is kept while its level is searched over `FILL_GAINS` (the tone search's own level is
    biased by the clipping it cannot see), as is a flat gain.  For each gain the fill weights are fitted by
    iteratively reweighted least squares to the nearest lattice points (`_fit_fill`); the three best gains are
    refitted.  A fill has P (~10) degrees of freedom against n_bits (220 or 414) lattice constraints, so it cannot
    make an unmarked frame fit.  Returns (Q, fill weights (P,), per-bit gain).
    """
    def q_of(th, g):
        return float(np.cos(4 * np.pi * ((base + th @ comps) / g - kd.dither) / kd.delta).mean())

    shapes = [gain / float(np.median(gain))]
    if np.ptp(shapes[0]) > 1e-9:
        shapes.append(np.ones_like(gain))
    cands = []
    for shape in shapes:
        for level in FILL_GAINS:
            g = shape * level
            th = _fit_fill(kd, base, comps, g, 3)
            cands.append((q_of(th, g), g, th))
    cands.sort(key=lambda c: -c[0])
    best = (-2.0, np.zeros(comps.shape[0]), gain)
    for _, g, th in cands[:3]:
        th = _fit_fill(kd, base, comps, g, 8, th)
        q = q_of(th, g)
        if q > best[0]:
            best = (q, th, g)
    return best
