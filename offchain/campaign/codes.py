"""Pure computation of Argus campaigns: watermark codes, the hash formats the contract checks, the reward schedule.

The hash formats are those of `contracts/campaign/Campaign.sol` (keccak256 over packed bytes):

* ``code_hash(code) = keccak(code)`` for an 8-byte watermark code;
* ``code_root(hashes) = keccak(h[0][0] || h[0][1] || ... || h[S-1][1])`` (variant 0 then 1 of each segment);
* ``commitment(informer, codes, salt) = keccak(informer(20) || keccak(codes(8*S) || salt(32)))``;
* ``choice_hash(words) = keccak(B_0.x || B_0.y || ...)`` (32-byte big-endian words).

``reward(R, num, den, n)`` is f(n) = R*rho^(n-1) computed as n-1 successive floors, like `Rewards.sol`.
No chain access here (see `protocol.campaign`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from offchain.common.errors import PinpointError
from offchain.common.hashing import keccak

CODE_BYTES = 8
"""Bytes of one watermark code (64 bits): what `offchain.campaign.watermark` embeds in one image."""


class CodeError(PinpointError, ValueError):
    """Codes of the wrong shape, or extracted codes that match no licensee."""


def new_codes(segments: int, rng=None) -> list[tuple[bytes, bytes]]:
    """Fresh random codes of one licensee: ``segments`` pairs (variant 0, variant 1) of distinct 8-byte codes.

    ``rng`` is an optional ``random.Random``-like object with ``randbytes`` (tests); default ``secrets``."""
    if segments < 1 or segments > 64:
        raise CodeError("segments must be in 1..64")
    draw = (lambda n: rng.randbytes(n)) if rng is not None else secrets.token_bytes
    out = []
    for _ in range(segments):
        c0 = draw(CODE_BYTES)
        c1 = draw(CODE_BYTES)
        while c1 == c0:
            c1 = draw(CODE_BYTES)
        out.append((c0, c1))
    return out


def code_hash(code: bytes) -> bytes:
    """keccak256 of one 8-byte code (32 bytes). Raises CodeError on a wrong length."""
    if len(code) != CODE_BYTES:
        raise CodeError(f"a code is {CODE_BYTES} bytes, got {len(code)}")
    return keccak(code)


def code_hashes(codes: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The 2*S hashes the owner commits for one licensee, ``[h(c[0][0]), h(c[0][1]), h(c[1][0]), ...]``."""
    return [code_hash(c) for pair in codes for c in pair]


def code_root(hashes: list[bytes]) -> bytes:
    """keccak256 of the packed 2*S code hashes (the licensee's on-chain ``codeRoot``)."""
    return keccak(b"".join(hashes))


def watermark(codes_in_order: list[bytes]) -> bytes:
    """The tracing information of a copy: its S codes concatenated in segment order (8*S bytes)."""
    for c in codes_in_order:
        if len(c) != CODE_BYTES:
            raise CodeError(f"a code is {CODE_BYTES} bytes, got {len(c)}")
    return b"".join(codes_in_order)


def commitment(informer: str | bytes, codes: bytes, salt: bytes) -> bytes:
    """c = keccak(informer || keccak(codes || salt)); ``informer`` a 20-byte address (hex str or bytes),
    ``codes`` the 8*S-byte watermark, ``salt`` 32 bytes. Returns 32 bytes."""
    addr = bytes.fromhex(informer[2:] if informer.startswith("0x") else informer) if isinstance(informer, str) \
        else bytes(informer)
    if len(addr) != 20 or len(salt) != 32:
        raise CodeError("informer is a 20-byte address and salt 32 bytes")
    return keccak(addr + keccak(bytes(codes) + bytes(salt)))


def choice_hash(words: list[int]) -> bytes:
    """keccak256 of the packed 32-byte words of the choice points (x0, y0, x1, y1, ...)."""
    return keccak(b"".join(int(w).to_bytes(32, "big") for w in words))


def reward(r: int, num: int, den: int, n: int) -> int:
    """f(n) in wei: R*rho^(n-1) by n-1 successive floor(f*num/den); 0 for n == 0. Same as `Rewards.sol`."""
    if n <= 0:
        return 0
    f = r
    for _ in range(n - 1):
        if f == 0:
            break
        f = f * num // den
    return f


@dataclass(frozen=True)
class Located:
    """Where extracted codes belong: licensee ``id``, the codes in segment order, the variant ``bits``
    (bit j = variant of segment j) and the hashes of the other variants (what `Campaign.reveal` needs)."""

    id: int
    codes: bytes
    bits: int
    other_hashes: list[bytes]


def locate(extracted: list[bytes], licensees: dict[int, list[bytes]]) -> Located:
    """Find which licensee's committed codes the extracted codes (any order) are: the index of the tracing
    information by its hashes. ``licensees`` maps id -> its 2*S committed hashes (``code_hashes`` order).

    Raises CodeError unless every segment of exactly one licensee is covered by one extracted code."""
    hs = {code_hash(c): c for c in extracted}
    for lid, hashes in licensees.items():
        s = len(hashes) // 2
        codes, bits, other = [], 0, []
        for j in range(s):
            h0, h1 = hashes[2 * j], hashes[2 * j + 1]
            if h0 in hs:
                codes.append(hs[h0]); other.append(h1)
            elif h1 in hs:
                codes.append(hs[h1]); other.append(h0); bits |= 1 << j
            else:
                break
        else:
            return Located(lid, watermark(codes), bits, other)
    raise CodeError("the extracted codes are not the complete watermark of any licensee")
