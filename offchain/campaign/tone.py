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
falls mostly on the low-frequency payload coefficients.  `fill_search` models the excess as ``v0 + v1 d`` over the
saturated area (``d`` the normalized distance to its border) and ``u0`` over the area crushed to 0, and searches
``(v0, v1, u0)`` and the gain for the best lattice fit (projections are linear in the fill).
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


FILL_V0 = np.arange(0.0, 60.1, 3.0)  # excess over saturated highlights (grey levels, toned domain)
FILL_V1 = np.arange(0.0, 60.1, 6.0)  # excess growing with the distance into the saturated area (grey levels at 1)
FILL_U0 = np.arange(-30.0, 0.01, 3.0)  # deficit under crushed shadows


def fill_search(kd: Keyed, base: np.ndarray, comps: np.ndarray, gain: np.ndarray) -> tuple[float, np.ndarray,
                                                                                          np.ndarray]:
    """The clipping fill ``(v0, v1, u0)`` and gain maximizing the lattice fit of ``(base + fill @ comps) / gain``.

    ``base``: projections (n_bits,) of the toned frame; ``comps``: projections (3, n_bits) of the saturated-area
    mask, of the mask times the normalized distance to its border, and of the crushed-area mask (toned domain);
    ``gain``: the per-bit gain of `tone_search`.  Returns (Q, fill (3,), per-bit gain).
    """
    fine = np.exp(np.arange(-0.03, 0.0301, 0.003))  # relative gain corrections
    best = (-2.0, np.zeros(3), gain)
    u_grid = FILL_U0 if np.abs(comps[2]).max() > 0 else np.zeros(1)
    for u0 in u_grid:
        fills = np.stack(np.meshgrid(FILL_V0, FILL_V1, indexing="ij"), axis=-1).reshape(-1, 2)  # (F, 2)
        p = base + fills @ comps[:2] + u0 * comps[2]  # (F, n_bits)
        p = p[:, None, :] / (gain[None, None, :] * fine[None, :, None])  # (F, G, n_bits)
        q = np.cos(4 * np.pi * (p - kd.dither) / kd.delta).mean(axis=-1)
        a, b = np.unravel_index(int(np.argmax(q)), q.shape)
        if q[a, b] > best[0]:
            best = (float(q[a, b]), np.array([fills[a, 0], fills[a, 1], u0]), gain * fine[b])
    return best
