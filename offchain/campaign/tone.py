"""Photometric normalization of a suspect image for the watermark (brightness, contrast, gamma).

A pirate's one-line tone edits change the luminance ``Y`` pointwise: brightness and contrast multiply its
variations by a gain ``c`` (a constant added to every pixel only moves the DCT's DC term, which carries no payload),
gamma maps ``Y -> 255 (Y / 255)^gamma``.  The payload is a quantization-index modulation of projections of ``Y``
(`offchain.campaign.registration`), so both must be undone before decoding: `tone_search` tries the inverse model
``Y_hat = 255 (Y' / 255)^k / g`` on a grid of exponents ``k`` (gamma 0.78..1.28) and gains ``g`` (0.74..1.35) and
keeps the pair with the best lattice fit ``Q``.  Projections are linear in the frame, so one projection per exponent
serves every gain.
"""

from __future__ import annotations

import numpy as np

from offchain.campaign.registration import Keyed

K_GRID = np.exp(np.arange(-0.25, 0.2501, 0.0125))  # inverse-gamma exponents, log step 0.0125 (k = 1 included)
GAINS = np.exp(np.arange(-0.30, 0.3001, 0.003))  # gains, log step 0.003 (g = 1 included)


def apply_tone(S: np.ndarray, k: float, g: float) -> np.ndarray:
    """``255 (S / 255)^k / g`` for a canonical frame ``S`` (float grey levels; negatives clipped to 0)."""
    base = np.maximum(S, 0.0) / 255.0
    return 255.0 * (base if k == 1.0 else base**k) / g


def tone_search(kd: Keyed, project, S: np.ndarray, ks=K_GRID, gains=GAINS) -> tuple[float, float, float]:
    """The (Q, k, g) maximizing the lattice fit of ``project(apply_tone(S, k, g))``.

    ``project``: a `offchain.campaign.registration.projector` for the hypothesized geometry; ``S``: the canonical
    frame (N x N float).  Returns the fit ``Q`` (~1 aligned, ~0 otherwise) and the exponent and gain.
    """
    base = np.maximum(S, 0.0) / 255.0
    stack = np.stack([255.0 * base**k for k in ks])
    proj = project(stack)  # (len(ks), n_bits)
    p = proj[:, None, :] / np.asarray(gains)[None, :, None]  # (k, g, n_bits)
    q = np.cos(4 * np.pi * (p - kd.dither) / kd.delta).mean(axis=-1)
    a, b = np.unravel_index(int(np.argmax(q)), q.shape)
    return float(q[a, b]), float(ks[a]), float(gains[b])
