"""Pure computation of Argus campaigns: watermark codes, the hash formats the contract checks, the reward schedule.

The hash formats are those of `contracts/campaign/Campaign.sol` and `contracts/campaign/CodeTree.sol` (keccak256
over packed bytes); codes are ``CODE_BYTES`` = 16 bytes (128 bits):

* ``code_leaf(campaign, id, j, v, code) = keccak(campaign(20) || id(4) || j(1) || v(1) || code(16))[:16]``: the
  16-byte leaf of variant v of segment j of licensee id (domain-separated: each leaf is its own 2^128 search);
* ``code_pairs(leaves)``: the pair word of segment j, ``leaf(j, 0) || leaf(j, 1)`` (32 bytes; what `license` takes
  and the `Licensed` event publishes); ``code_root(leaves)``: the Merkle root of the S pair words, padded with zero
  words to a power of two; a report opens only its segments with one ``multiproof`` over the pair words (siblings
  level by level, left to right);
* report item of segment j: ``code(16) || leaf of the other variant(16)`` (``report_item``): with it the contract
  recomputes the pair word from the code;
* ``commitment(informer, items, salt) = keccak(informer(20) || keccak(items(32*k) || salt(32)))``, ``items`` the k
  reported items in segment order;
* ``choice_hash(words) = keccak(B_0.x || B_0.y || ...)`` (32-byte big-endian words).

Partial and mixed copies: a report carries any k >= quorum segments of one licensee's copy; ``locate_all`` finds
every licensee with at least k segments among the codes extracted from a (partial, mixed) copy. Framing by guessing
succeeds with probability ``framing_probability(k, m)`` = 2^-k * sum_{i<m} C(k, i) (m the appeal quorum);
repudiation (reporting the variant one did not receive) needs a second preimage of a 128-bit leaf per flipped
segment: ``repudiation_work(m)`` = m * 2^128 Keccak evaluations.

``reward(R, num, den, n)`` is f(n) = R*rho^(n-1) computed as n-1 successive floors, like `Rewards.sol`.
No chain access here (see `protocol.campaign`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fractions import Fraction
from math import comb

from offchain.common import multiproof as _multiproof
from offchain.common.errors import PinpointError
from offchain.common.hashing import keccak

CODE_BYTES = 16
"""Bytes of one watermark code (128 bits): what `offchain.campaign.watermark` embeds in one image."""
LEAF_BYTES = 16
"""Bytes of one code leaf (`CodeTree.leaf`: keccak256 truncated to 128 bits; two make a pair word)."""


class CodeError(PinpointError, ValueError):
    """Codes of the wrong shape, or extracted codes that match no licensee."""


def new_codes(segments: int, rng=None, code_bytes: int = CODE_BYTES) -> list[tuple[bytes, bytes]]:
    """Fresh random codes of one licensee: ``segments`` pairs (variant 0, variant 1) of distinct 16-byte codes.

    ``rng`` is an optional ``random.Random``-like object with ``randbytes`` (tests); default ``secrets``."""
    if segments < 1 or segments > 64:
        raise CodeError("segments must be in 1..64")
    draw = (lambda n: rng.randbytes(n)) if rng is not None else secrets.token_bytes
    out = []
    for _ in range(segments):
        c0 = draw(code_bytes)
        c1 = draw(code_bytes)
        while c1 == c0:
            c1 = draw(code_bytes)
        out.append((c0, c1))
    return out


def code_hash(code: bytes) -> bytes:
    """keccak256 of one 16-byte code (32 bytes; the plain leaf of `offchain.campaign.ot` outside campaigns). Raises
    CodeError on a wrong length."""
    if len(code) != CODE_BYTES:
        raise CodeError(f"a code is {CODE_BYTES} bytes, got {len(code)}")
    return keccak(code)


def _address(a: str | bytes) -> bytes:
    addr = bytes.fromhex(a[2:] if a.startswith("0x") else a) if isinstance(a, str) else bytes(a)
    if len(addr) != 20:
        raise CodeError("an address is 20 bytes")
    return addr


def code_leaf(campaign: str | bytes, lid: int, segment: int, variant: int, code: bytes) -> bytes:
    """`CodeTree.leaf`: keccak(campaign(20) || id(4) || segment(1) || variant(1) || code(16)) truncated to its first
    16 bytes. Raises CodeError on a wrong length or out-of-range index."""
    if len(code) != CODE_BYTES:
        raise CodeError(f"a code is {CODE_BYTES} bytes, got {len(code)}")
    if not (0 <= lid < 2**32 and 0 <= segment < 64 and variant in (0, 1)):
        raise CodeError(f"bad leaf position: licensee {lid}, segment {segment}, variant {variant}")
    return keccak(_address(campaign) + lid.to_bytes(4, "big") + bytes([segment, variant]) + bytes(code))[:LEAF_BYTES]


def code_leaves(campaign: str | bytes, lid: int, codes: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The 2*S 16-byte leaves of licensee ``lid``: ``[leaf(0, 0), leaf(0, 1), leaf(1, 0), ...]``."""
    return [code_leaf(campaign, lid, j, v, c) for j, pair in enumerate(codes) for v, c in enumerate(pair)]


def _check_leaves(leaves: list[bytes]) -> None:
    if not leaves or len(leaves) % 2 or any(len(h) != LEAF_BYTES for h in leaves):
        raise CodeError(f"a licence has 2*S leaves of {LEAF_BYTES} bytes")


def code_pairs(leaves: list[bytes]) -> list[bytes]:
    """The S pair words ``leaf(j, 0) || leaf(j, 1)`` (32 bytes each) of 2*S leaves: what the owner commits
    (`Campaign.license`) and the `Licensed` event publishes. Raises CodeError on a wrong shape."""
    _check_leaves(leaves)
    return [leaves[i] + leaves[i + 1] for i in range(0, len(leaves), 2)]


def leaves_of_pairs(pairs: list[bytes]) -> list[bytes]:
    """The 2*S leaves of S pair words (the inverse of ``code_pairs``). Raises CodeError unless 32-byte words."""
    if any(len(w) != 2 * LEAF_BYTES for w in pairs):
        raise CodeError("a pair word is 32 bytes")
    return [h for w in pairs for h in (w[:LEAF_BYTES], w[LEAF_BYTES:])]


def report_item(leaves: list[bytes], segment: int, variant: int, code: bytes) -> bytes:
    """The report item of ``code`` as variant ``variant`` of ``segment``: code(16) || the other variant's leaf(16)
    (32 bytes, one word of `Campaign.reveal`'s ``items``)."""
    if len(code) != CODE_BYTES:
        raise CodeError(f"a code is {CODE_BYTES} bytes, got {len(code)}")
    return bytes(code) + leaves[2 * segment + 1 - variant]


def depth_for(n: int) -> int:
    """ceil(log2(n)) for n >= 1 (`CodeTree.depthFor`)."""
    return max(0, (n - 1).bit_length())


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    words = code_pairs(leaves)
    depth = depth_for(len(words))
    level = words + [bytes(32)] * ((1 << depth) - len(words))
    out = [level]
    while len(level) > 1:
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        out.append(level)
    return out


def code_root(leaves: list[bytes]) -> bytes:
    """Merkle root of the pair words of the 2*S leaves padded with zero words to a power of two (`CodeTree.root`;
    the on-chain ``codeRoot``)."""
    return _levels(leaves)[-1][0]


def multiproof(leaves: list[bytes], segments: list[int]) -> list[bytes]:
    """The siblings that `CodeTree.verify` consumes for the pair words of the sorted, unique ``segments`` (of the
    tree over the pair words of the 2*S ``leaves``): level by level, left to right, every sibling not itself computed
    from the opened words (`offchain.common.multiproof.siblings`). Raises CodeError on bad segments."""
    levels = _levels(leaves)
    cur = sorted(set(segments))
    if cur != list(segments) or not cur or cur[-1] >= len(leaves) // 2:
        raise CodeError("multiproof segments must be sorted, unique and in range")
    return _multiproof.siblings(lambda level, i: levels[level][i], len(levels) - 1, cur)


def verify_multiproof(root: bytes, depth: int, indices: list[int], values: list[bytes], proof: list[bytes]) -> bool:
    """Python copy of `CodeTree.verify` (held against it by the tests; `offchain.common.multiproof.verify`)."""
    return _multiproof.verify(root, depth, indices, values, proof)


def framing_probability(k: int, m: int) -> Fraction:
    """Probability that an owner reporting k guessed variants leaves fewer than m of them wrong (so the framed
    licensee cannot appeal): 2^-k * sum_{i<m} C(k, i) (`Bounds.framingOdds`)."""
    return Fraction(sum(comb(k, i) for i in range(m)), 2**k)


def repudiation_work(m: int) -> int:
    """Keccak evaluations a guilty licensee needs to win an appeal through a friend's report: one 2^128
    second-preimage search per flipped segment (a code whose 128-bit leaf is the committed other-variant leaf), m
    of them (domain-separated leaves: no multi-target speed-up; the searches add)."""
    return m * 2 ** (8 * min(CODE_BYTES, LEAF_BYTES))


def watermark(codes_in_order: list[bytes]) -> bytes:
    """The tracing information of a copy: its S codes concatenated in segment order (16*S bytes)."""
    for c in codes_in_order:
        if len(c) != CODE_BYTES:
            raise CodeError(f"a code is {CODE_BYTES} bytes, got {len(c)}")
    return b"".join(codes_in_order)


def commitment(informer: str | bytes, items: bytes, salt: bytes) -> bytes:
    """c = keccak(informer || keccak(items || salt)); ``informer`` a 20-byte address (hex str or bytes), ``items``
    the 32*k bytes of the reported items (``report_item``) in segment order, ``salt`` 32 bytes. Returns 32 bytes."""
    addr = _address(informer)
    if len(salt) != 32:
        raise CodeError("informer is a 20-byte address and salt 32 bytes")
    return keccak(addr + keccak(bytes(items) + bytes(salt)))


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
    items of those segments in segment order (``report_item``: code || other leaf, 32 bytes each) and the
    multiproof of their pair words (what `Campaign.reveal` needs)."""

    id: int
    mask: int
    bits: int
    items: list[bytes]
    proof: list[bytes]

    @property
    def segments(self) -> list[int]:
        """The reported segments, ascending."""
        return [j for j in range(64) if self.mask >> j & 1]

    @property
    def blob(self) -> bytes:
        """The items concatenated (32*k bytes): what the commitment hashes."""
        return b"".join(self.items)

    @property
    def codes(self) -> list[bytes]:
        """The reported codes, in segment order."""
        return [w[:CODE_BYTES] for w in self.items]


def _matches(extracted: list[bytes], campaign, lid: int, leaves: list[bytes]) -> dict[int, tuple[int, bytes]]:
    """Segment -> (variant, code) of licensee ``lid`` found among the extracted codes (a segment matched by two
    different codes or both variants is ambiguous and left out)."""
    found: dict[int, set] = {}
    for c in set(extracted):
        if len(c) != CODE_BYTES:
            continue
        for j in range(len(leaves) // 2):
            for v in (0, 1):
                if code_leaf(campaign, lid, j, v, c) == leaves[2 * j + v]:
                    found.setdefault(j, set()).add((v, c))
    return {j: next(iter(s)) for j, s in found.items() if len(s) == 1}


def _cheapest(segments: list[int], k: int, leaves: list[bytes]) -> list[int]:
    """Of the runs of k consecutive found segments, the one with the shortest multiproof."""
    runs = [segments[i:i + k] for i in range(len(segments) - k + 1)]
    return min(runs, key=lambda r: len(multiproof(leaves, r)))


def report_of(campaign, lid: int, leaves: list[bytes], found: dict[int, tuple[int, bytes]], take: int | None
              ) -> Located:
    """The report of ``take`` of the found segments (the run with the shortest multiproof; all if None)."""
    segs = sorted(found)
    if take is not None and take < len(segs):
        segs = _cheapest(segs, take, leaves)
    mask = sum(1 << j for j in segs)
    bits = sum(found[j][0] << j for j in segs)
    items = [report_item(leaves, j, found[j][0], found[j][1]) for j in segs]
    return Located(lid, mask, bits, items, multiproof(leaves, segs))


def locate_all(extracted: list[bytes], licensees: dict[int, list[bytes]], campaign: str | bytes, quorum: int,
               every: bool = False) -> list[Located]:
    """Every licensee with at least ``quorum`` segments among the extracted codes (any order; a partial copy, or a
    copy mixing several licensees' segments), one report each, most segments first. ``licensees`` maps id -> its
    2*S committed 16-byte leaves (``code_leaves`` order; ``leaves_of_pairs`` of the `Licensed` event). Each report opens ``quorum`` segments (the cheapest run), or, with
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
