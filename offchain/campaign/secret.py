"""The watermark's secret layer: the same code under a key only the content owner holds (laundering, issue 11.5).

Threat model
------------
The public layer's key is published by the campaign contract, so that any informer can read the code of a pirated
copy (`offchain.campaign.watermark.extract`).  Whoever can run the detector can also run the embedder; a licensee
can therefore do to *its own* copy, before leaking it:

* **re-embed** a random code with the public key (`offchain.campaign.attacks.launder`): one embedding, ~38 dB
  against its copy, invisible; the public layer then reads the launderer's code (a code of no licensee), or
* **erase** the public layer (move every public projection between the two lattices) or **remove the public
  sync template** (it is a known signal), then crop or rotate so that the public layer cannot even be registered;
* and it can check that it succeeded, since the public detector is an oracle.

It can *not* make the copy carry another licensee's code (the other variants' codes are hidden by the oblivious
transfer, `offchain.campaign.ot`; guessing fails the BCH + CRC check, `offchain.campaign.ecc.false_positive_bound`).

What the secret layer adds.  `embed(..., secret_key=K)` writes the same code a second time, with its own sync
template, dither, signs, scrambling mask and coefficients, all derived from ``K``; its coefficients are the other
DCT parity class of the public layer's band (128-bit codes; `offchain.campaign.registration.LAYOUT`), so the two
layers never share a coefficient and have the same spectrum (the same robustness to what pirates do).  Hence:

* every public-key laundering above leaves the secret layer as it was: the re-embedding and the erasure only move
  public coefficients and the public sync; the secret layer has its own sync;
* the licensee cannot detect the secret layer, so it has no oracle telling it when a blind attack has succeeded;
* the owner (who keeps ``K``; the campaign can publish ``commitment(K)`` at creation and reveal ``K`` in a dispute,
  after which it is spent) reads the code with ``extract(copy, K, secret=True)``.

What it does not stop.  The layout is public (Kerckhoffs): a licensee that knows the secret layer lives on the other
parity class of the band can add noise there blindly.  The payload of one layer costs ``n_bits * delta^2 / 12`` of
squared error, and noise of about a quarter of ``delta`` on each of the class's coefficients flips enough bits:
such an attack costs about as much distortion as the embedding (``benchmarks/watermark_robustness.py`` row
``blind-secret-band`` gives its PSNR and the recovery rate); heavier generic attacks (strong noise, blur or
recompression of the whole mid band) remove both layers at a larger loss of quality.  Nor does it help if the owner
leaks ``K``: a fresh key per campaign bounds the damage.  So the secret layer turns laundering from a free,
verifiable operation into a blind one, and it makes no laundering invisible to the owner that keeps the copy
intact enough for the public layer's attacks; it is not a proof against an adversary that knows the scheme and
accepts a visible loss.
"""

from __future__ import annotations

import secrets

from offchain.common.hashing import keccak

__all__ = ["SECRET_KEY_BYTES", "new_secret_key", "commitment", "opens"]

SECRET_KEY_BYTES = 32
_DOMAIN = b"pinpoint-watermark-secret-key-v1|"


def new_secret_key() -> bytes:
    """A fresh secret watermark key: 32 random bytes from the OS (``secrets``)."""
    return secrets.token_bytes(SECRET_KEY_BYTES)


def commitment(secret_key: bytes) -> bytes:
    """keccak256(domain || secret_key), 32 bytes: what the owner may publish before any copy is delivered.

    Raises ValueError if ``secret_key`` is not non-empty bytes."""
    if not isinstance(secret_key, (bytes, bytearray)) or len(secret_key) == 0:
        raise ValueError("secret_key must be non-empty bytes")
    return keccak(_DOMAIN + bytes(secret_key))


def opens(commit: bytes, secret_key: bytes) -> bool:
    """True iff ``secret_key`` opens ``commit`` (32 bytes) made by `commitment`."""
    return len(commit) == 32 and commitment(secret_key) == bytes(commit)
