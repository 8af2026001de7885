"""Pure computation of Argus campaigns: watermark codes, the hash formats the contract checks, the reward schedule.

The hash formats are those of `contracts/campaign/Campaign.sol` and `contracts/campaign/CodeTree.sol` (keccak256
over packed bytes):

* ``code_leaf(campaign, id, j, v, code) = keccak(code(8) || campaign(20) || id(4) || j(1) || v(1))``: the leaf of
  variant v of segment j of licensee id (domain-separated: each leaf is its own 2^64 preimage search);
* ``code_root(leaves)``: the Merkle root of the 2*S leaves (leaf 2*j + v), padded with zero words to a power of two;
  a report opens only its segments with one ``multiproof`` (siblings level by level, left to right);
* ``commitment(informer, codes, salt) = keccak(informer(20) || keccak(codes(8*k) || salt(32)))``, ``codes`` the k
  reported codes in segment order;
* ``choice_hash(words) = keccak(B_0.x || B_0.y || ...)`` (32-byte big-endian words).

Partial and mixed copies: a report carries any k >= quorum segments of one licensee's copy; ``locate_all`` finds
every licensee with at least k segments among the codes extracted from a (partial, mixed) copy. Framing by guessing
succeeds with probability ``framing_probability(k, m)`` = 2^-k * sum_{i<m} C(k, i) (m the appeal quorum);
repudiation needs about ``repudiation_work(m)`` = m * 2^64 Keccak evaluations.

``reward(R, num, den, n)`` is f(n) = R*rho^(n-1) computed as n-1 successive floors, like `Rewards.sol`.
No chain access here (see `protocol.campaign`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fractions import Fraction
from math import comb

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


def _address(a: str | bytes) -> bytes:
    addr = bytes.fromhex(a[2:] if a.startswith("0x") else a) if isinstance(a, str) else bytes(a)
    if len(addr) != 20:
        raise CodeError("an address is 20 bytes")
    return addr


def code_leaf(campaign: str | bytes, lid: int, segment: int, variant: int, code: bytes) -> bytes:
    """`CodeTree.leaf`: keccak(code(8) || campaign(20) || id(4) || segment(1) || variant(1)), 32 bytes. Raises
    CodeError on a wrong length or out-of-range index."""
    if len(code) != CODE_BYTES:
        raise CodeError(f"a code is {CODE_BYTES} bytes, got {len(code)}")
    if not (0 <= lid < 2**32 and 0 <= segment < 64 and variant in (0, 1)):
        raise CodeError(f"bad leaf position: licensee {lid}, segment {segment}, variant {variant}")
    return keccak(bytes(code) + _address(campaign) + lid.to_bytes(4, "big") + bytes([segment, variant]))


def code_leaves(campaign: str | bytes, lid: int, codes: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The 2*S leaves the owner commits for licensee ``lid``: ``[leaf(0, 0), leaf(0, 1), leaf(1, 0), ...]``."""
    return [code_leaf(campaign, lid, j, v, c) for j, pair in enumerate(codes) for v, c in enumerate(pair)]


def depth_for(n: int) -> int:
    """ceil(log2(n)) for n >= 1 (`CodeTree.depthFor`)."""
    return max(0, (n - 1).bit_length())


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    depth = depth_for(len(leaves))
    level = list(leaves) + [bytes(32)] * ((1 << depth) - len(leaves))
    out = [level]
    while len(level) > 1:
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        out.append(level)
    return out


def code_root(leaves: list[bytes]) -> bytes:
    """Merkle root of the leaves padded with zero words to a power of two (`CodeTree.root`; the on-chain
    ``codeRoot``)."""
    return _levels(leaves)[-1][0]


def multiproof(leaves: list[bytes], indices: list[int]) -> list[bytes]:
    """The siblings that `CodeTree.verify` consumes for the sorted, unique leaf ``indices``: level by level, left to
    right, every sibling not itself computed from the opened leaves."""
    levels = _levels(leaves)
    cur, proof = sorted(set(indices)), []
    if cur != list(indices) or not cur or cur[-1] >= len(leaves):
        raise CodeError("multiproof indices must be sorted, unique and in range")
    for level in levels[:-1]:
        nxt, i = [], 0
        while i < len(cur):
            j = cur[i]
            if j % 2 == 0 and i + 1 < len(cur) and cur[i + 1] == j + 1:
                i += 2
            else:
                proof.append(level[j ^ 1])
                i += 1
            nxt.append(j >> 1)
        cur = nxt
    return proof


def verify_multiproof(root: bytes, depth: int, indices: list[int], values: list[bytes], proof: list[bytes]) -> bool:
    """Python copy of `CodeTree.verify` (held against it by the tests)."""
    idx, val, p = list(indices), list(values), 0
    for _ in range(depth):
        ni, nv, i = [], [], 0
        while i < len(idx):
            j = idx[i]
            if j % 2 == 0 and i + 1 < len(idx) and idx[i + 1] == j + 1:
                h = keccak(val[i] + val[i + 1]); i += 2
            else:
                if p >= len(proof):
                    return False
                h = keccak(val[i] + proof[p]) if j % 2 == 0 else keccak(proof[p] + val[i])
                p += 1; i += 1
            ni.append(j >> 1); nv.append(h)
        idx, val = ni, nv
    return p == len(proof) and len(val) == 1 and val[0] == root


def framing_probability(k: int, m: int) -> Fraction:
    """Probability that an owner reporting k guessed variants leaves fewer than m of them wrong (so the framed
    licensee cannot appeal): 2^-k * sum_{i<m} C(k, i) (`Bounds.framingOdds`)."""
    return Fraction(sum(comb(k, i) for i in range(m)), 2**k)


def repudiation_work(m: int) -> int:
    """Keccak evaluations a guilty licensee needs to win an appeal through a friend's report: one 2^64 preimage
    search per flipped segment, m of them (domain-separated leaves: no multi-target speed-up; the searches add)."""
    return m * 2 ** (8 * CODE_BYTES)


def watermark(codes_in_order: list[bytes]) -> bytes:
    """The tracing information of a copy: its S codes concatenated in segment order (8*S bytes)."""
    for c in codes_in_order:
        if len(c) != CODE_BYTES:
            raise CodeError(f"a code is {CODE_BYTES} bytes, got {len(c)}")
    return b"".join(codes_in_order)


def commitment(informer: str | bytes, codes: bytes, salt: bytes) -> bytes:
    """c = keccak(informer || keccak(codes || salt)); ``informer`` a 20-byte address (hex str or bytes),
    ``codes`` the 8*k bytes of the reported codes in segment order, ``salt`` 32 bytes. Returns 32 bytes."""
    addr = _address(informer)
    if len(salt) != 32:
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
    """One report of licensee ``id``: its segments ``mask`` (bit j: segment j reported), their variant ``bits``, the
    codes of those segments in segment order and the multiproof of their leaves (what `Campaign.reveal` needs)."""

    id: int
    mask: int
    bits: int
    codes: bytes
    proof: list[bytes]

    @property
    def segments(self) -> list[int]:
        """The reported segments, ascending."""
        return [j for j in range(64) if self.mask >> j & 1]


def _matches(extracted: list[bytes], campaign, lid: int, leaves: list[bytes]) -> dict[int, tuple[int, bytes]]:
    """Segment -> (variant, code) of licensee ``lid`` found among the extracted codes (a segment matched by two
    different codes or both variants is ambiguous and left out)."""
    where = {h: i for i, h in enumerate(leaves)}
    found: dict[int, set] = {}
    for c in set(extracted):
        if len(c) != CODE_BYTES:
            continue
        for j in range(len(leaves) // 2):
            for v in (0, 1):
                if where.get(code_leaf(campaign, lid, j, v, c)) == 2 * j + v:
                    found.setdefault(j, set()).add((v, c))
    return {j: next(iter(s)) for j, s in found.items() if len(s) == 1}


def _cheapest(segments: list[int], k: int, leaves: list[bytes], pick) -> list[int]:
    """Of the runs of k consecutive found segments, the one with the shortest multiproof."""
    runs = [segments[i:i + k] for i in range(len(segments) - k + 1)]
    return min(runs, key=lambda r: len(multiproof(leaves, [2 * j + pick[j][0] for j in r])))


def report_of(campaign, lid: int, leaves: list[bytes], found: dict[int, tuple[int, bytes]], take: int | None
              ) -> Located:
    """The report of ``take`` of the found segments (the run with the shortest multiproof; all if None)."""
    segs = sorted(found)
    if take is not None and take < len(segs):
        segs = _cheapest(segs, take, leaves, found)
    mask = sum(1 << j for j in segs)
    bits = sum(found[j][0] << j for j in segs)
    proof = multiproof(leaves, [2 * j + found[j][0] for j in segs])
    return Located(lid, mask, bits, b"".join(found[j][1] for j in segs), proof)


def locate_all(extracted: list[bytes], licensees: dict[int, list[bytes]], campaign: str | bytes, quorum: int,
               every: bool = False) -> list[Located]:
    """Every licensee with at least ``quorum`` segments among the extracted codes (any order; a partial copy, or a
    copy mixing several licensees' segments), one report each, most segments first. ``licensees`` maps id -> its
    2*S committed leaves (``code_leaves`` order). Each report opens ``quorum`` segments (the cheapest run), or, with
    ``every``, every segment found. Costs 2*S keccaks per code and licensee."""
    out = []
    for lid, leaves in licensees.items():
        found = _matches(extracted, campaign, lid, leaves)
        if len(found) >= quorum:
            out.append((len(found), report_of(campaign, lid, leaves, found, None if every else quorum)))
    return [r for _, r in sorted(out, key=lambda t: (-t[0], t[1].id))]


def locate(extracted: list[bytes], licensees: dict[int, list[bytes]], campaign: str | bytes, quorum: int,
           every: bool = False) -> Located:
    """The report of the licensee with the most segments among the extracted codes (`locate_all`). Raises
    CodeError unless some licensee has at least ``quorum`` of them."""
    found = locate_all(extracted, licensees, campaign, quorum, every)
    if not found:
        raise CodeError(f"the extracted codes hold fewer than {quorum} segments (the campaign's quorum) of every "
                        "licensee")
    return found[0]
