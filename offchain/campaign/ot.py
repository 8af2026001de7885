"""1-out-of-2 oblivious transfer per segment on alt_bn128 (Chou-Orlandi style), content encrypted by AES-256-GCM.

Owner: secret scalar a, public key A = a*G (in the campaign contract). Licensee, for each segment j: a choice
sigma_j in {0, 1} and a random scalar b_j; it publishes B_j = sigma_j*A + b_j*G (on chain, `Campaign.join`).
Owner: keys k_j0 = H(j, B_j, a*B_j) and k_j1 = H(j, B_j, a*(B_j - A)); it encrypts variant v of segment j with
k_jv. Licensee: k = H(j, B_j, b_j*A) = k_{j,sigma_j} (a*B_j = b_j*a*G when sigma_j = 0; a*(B_j - A) = b_j*a*G
when sigma_j = 1), so it decrypts exactly its variant.

* The owner cannot learn sigma_j: B_j is a uniformly random point whatever sigma_j.
* The licensee cannot decrypt both: that needs a*B_j and a*(B_j - A), i.e. a*A = a^2*G from A (CDH).
* The choice is bound on chain: `Campaign.appeal` checks an opening (sigma_j, b_j) of B_j with ecMul/ecAdd; the
  licensee cannot open B_j both ways without knowing a = log_G A.
* Cheating delivery: the licensee checks each decrypted code against the owner's on-chain code hashes; a
  ``CheatingProof`` (the opening of one segment and its ciphertext, bound to the owner's on-chain delivery hash)
  convinces anyone (`check_cheating_proof`) that the owner delivered garbage or a code it did not commit.

Plaintext of a variant: its 16-byte code (`codes.CODE_BYTES`) followed by the content (e.g. a PNG). Ciphertext: GCM ciphertext || tag;
the nonce is fixed (12 zero bytes) because every key encrypts one message. Points are affine (x, y) ints.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from Crypto.Cipher import AES
from py_ecc import optimized_bn128 as _bn

from offchain.campaign.codes import CODE_BYTES, code_hash
from offchain.common.errors import PinpointError
from offchain.common.hashing import keccak

N = _bn.curve_order
P = _bn.field_modulus
G = (1, 2)
_NONCE = bytes(12)


class OTError(PinpointError, ValueError):
    """Invalid point, scalar or shape."""


class DeliveryError(OTError):
    """A delivered ciphertext does not decrypt, or its code is not the committed one (``segment`` says where)."""

    def __init__(self, msg: str, segment: int):
        super().__init__(msg)
        self.segment = segment


Point = tuple[int, int]


def _to_jac(p: Point):
    x, y = p
    if not (0 <= x < P and 0 <= y < P) or (y * y - x * x * x - 3) % P != 0 or (x, y) == (0, 0):
        raise OTError(f"not a point of alt_bn128: {p}")
    return (_bn.FQ(x), _bn.FQ(y), _bn.FQ.one())


def _aff(j) -> Point:
    if _bn.is_inf(j):
        return (0, 0)
    x, y = _bn.normalize(j)
    return (int(x), int(y))


def mul(p: Point, s: int) -> Point:
    """s*p (affine; (0, 0) is infinity). Raises OTError if p is not on the curve."""
    return _aff(_bn.multiply(_to_jac(p), s % N))


def add(p: Point, q: Point) -> Point:
    """p + q (affine). Raises OTError if p or q is not on the curve."""
    return _aff(_bn.add(_to_jac(p), _to_jac(q)))


def neg(p: Point) -> Point:
    return (p[0], (-p[1]) % P)


@dataclass(frozen=True)
class OwnerKey:
    """The owner's OT secret ``a`` and public key ``A`` = a*G."""

    a: int
    A: Point

    @classmethod
    def generate(cls) -> "OwnerKey":
        a = secrets.randbelow(N - 1) + 1
        return cls(a, mul(G, a))


@dataclass(frozen=True)
class Choice:
    """A licensee's OT choices: bits ``sigma`` (list of 0/1), scalars ``b``, points ``B`` (B_j = sigma_j*A + b_j*G)."""

    sigma: list[int]
    b: list[int]
    B: list[Point]

    def words(self) -> list[int]:
        """(B_0.x, B_0.y, B_1.x, ...): the ``choice`` argument of `Campaign.join`."""
        return [w for p in self.B for w in p]


def choose(A: Point, sigma: list[int]) -> Choice:
    """Licensee side: fresh b_j and B_j = sigma_j*A + b_j*G for each choice bit. Raises OTError on a bad A or bit."""
    if any(s not in (0, 1) for s in sigma):
        raise OTError("choice bits must be 0 or 1")
    bs, Bs = [], []
    for s in sigma:
        b = secrets.randbelow(N - 1) + 1
        Bj = mul(G, b)
        if s:
            Bj = add(Bj, A)
        bs.append(b)
        Bs.append(Bj)
    return Choice(list(sigma), bs, Bs)


def open_matches(A: Point, B: Point, sigma: int, b: int) -> bool:
    """True iff B == sigma*A + b*G (what the contract's appeal checks)."""
    Q = mul(G, b)
    if sigma:
        Q = add(Q, A)
    return Q == B


def _kdf(context: bytes, j: int, B: Point, shared: Point) -> bytes:
    return keccak(b"argus-ot" + context + j.to_bytes(4, "big") + b"".join(w.to_bytes(32, "big") for w in (*B, *shared)))


def _enc(key: bytes, data: bytes, aad: bytes) -> bytes:
    c = AES.new(key, AES.MODE_GCM, nonce=_NONCE)
    c.update(aad)
    ct, tag = c.encrypt_and_digest(data)
    return ct + tag


def _dec(key: bytes, blob: bytes, aad: bytes) -> bytes | None:
    if len(blob) < 16:
        return None
    c = AES.new(key, AES.MODE_GCM, nonce=_NONCE)
    c.update(aad)
    try:
        return c.decrypt_and_verify(blob[:-16], blob[-16:])
    except ValueError:
        return None


def _aad(context: bytes, j: int) -> bytes:
    return b"argus" + context + j.to_bytes(4, "big")


def deliver(key: OwnerKey, B: list[Point], variants: list[tuple[bytes, bytes]], context: bytes = b"") -> list[tuple[bytes, bytes]]:
    """Owner side: encrypt both variants of every segment; ``variants[j] = (plaintext0, plaintext1)``, each the
    16-byte code followed by the content. ``context`` binds the transfer (e.g. campaign address || licensee id).
    Returns ``[(ct_j0, ct_j1), ...]``. Raises OTError on a bad point or shape."""
    if len(B) != len(variants):
        raise OTError(f"{len(B)} choice points for {len(variants)} segments")
    minus_A = neg(key.A)
    out = []
    for j, (Bj, (v0, v1)) in enumerate(zip(B, variants)):
        if len(v0) < CODE_BYTES or len(v1) < CODE_BYTES:
            raise OTError(f"a variant starts with its {CODE_BYTES}-byte code")
        k0 = _kdf(context, j, Bj, mul(Bj, key.a))
        k1 = _kdf(context, j, Bj, mul(add(Bj, minus_A), key.a))
        out.append((_enc(k0, v0, _aad(context, j)), _enc(k1, v1, _aad(context, j))))
    return out


def delivery_hash(delivery: list[tuple[bytes, bytes]]) -> bytes:
    """keccak over the keccak of every ciphertext (segment order, variant 0 then 1): the `Campaign.license`
    ``deliveryHash``."""
    return keccak(b"".join(keccak(c) for pair in delivery for c in pair))


def _plain_leaf(j: int, v: int, code: bytes) -> bytes:
    return code_hash(code)


def receive(choice: Choice, A: Point, delivery: list[tuple[bytes, bytes]], code_hashes: list[bytes],
            context: bytes = b"", leaf=None) -> list[bytes]:
    """Licensee side: decrypt the chosen variant of every segment and check its code against the owner's
    committed leaves (``code_hashes[2*j + sigma_j] == leaf(j, sigma_j, code)``; ``leaf`` defaults to keccak of the
    code; campaigns pass `offchain.campaign.codes.code_leaf` bound to the campaign and licensee). Returns the
    plaintexts (code || content) per segment.

    Raises DeliveryError(segment) if a ciphertext does not decrypt or its code is not the committed one (then
    `prove_cheating` makes the proof), OTError on shape errors."""
    if len(delivery) != len(choice.B) or len(code_hashes) != 2 * len(choice.B):
        raise OTError("delivery, choices and code hashes disagree on the number of segments")
    leaf = leaf or _plain_leaf
    out = []
    for j, (s, b, Bj) in enumerate(zip(choice.sigma, choice.b, choice.B)):
        k = _kdf(context, j, Bj, mul(A, b))
        pt = _dec(k, delivery[j][s], _aad(context, j))
        if pt is None:
            raise DeliveryError(f"segment {j}: the chosen variant does not decrypt", j)
        if len(pt) < CODE_BYTES or leaf(j, s, pt[:CODE_BYTES]) != code_hashes[2 * j + s]:
            raise DeliveryError(f"segment {j}: the delivered code is not the committed one", j)
        out.append(pt)
    return out


@dataclass(frozen=True)
class CheatingProof:
    """Evidence of a cheating delivery of segment ``segment``: the opening (sigma, b) of B_segment, the hashes of
    all ciphertexts (which hash to the on-chain deliveryHash) and the faulty ciphertext itself."""

    segment: int
    sigma: int
    b: int
    ciphertext_hashes: list[bytes]
    ciphertext: bytes


def prove_cheating(choice: Choice, delivery: list[tuple[bytes, bytes]], segment: int) -> CheatingProof:
    """Licensee side: the proof for a segment `receive` rejected (reveals that segment's choice only)."""
    s = choice.sigma[segment]
    return CheatingProof(segment, s, choice.b[segment], [keccak(c) for pair in delivery for c in pair],
                         delivery[segment][s])


def check_cheating_proof(proof: CheatingProof, A: Point, B: list[Point], delivery_hash_onchain: bytes,
                         code_hashes: list[bytes], context: bytes = b"", leaf=None) -> bool:
    """Anyone: True iff the proof shows the owner cheated: the opening matches B_segment, the ciphertext is the
    one the owner committed (deliveryHash), and under the licensee's key it fails to decrypt or carries a code
    whose leaf (``leaf(segment, sigma, code)``, as in `receive`) is not ``code_hashes[2*segment + sigma]``.

    The proof's shape is checked exactly first: ``sigma`` in {0, 1} (a sigma of 2 or -1 would pass the opening,
    which treats any nonzero sigma as 1, and index another segment's ciphertext), ``segment`` an int in range, and
    exactly 2*len(B) ciphertext hashes of 32 bytes each (a regrouped list, e.g. one with an empty first item,
    hashes to the same deliveryHash but shifts every index). ``code_hashes`` must be 2*len(B) hashes too."""
    j = proof.segment
    if type(proof.sigma) is not int or proof.sigma not in (0, 1) or type(j) is not int or not 0 <= j < len(B):
        return False
    hs = proof.ciphertext_hashes
    if len(hs) != 2 * len(B) or len(code_hashes) != 2 * len(B) \
            or any(not isinstance(h, bytes) or len(h) != 32 for h in hs):
        return False
    if not isinstance(proof.b, int) or not open_matches(A, B[j], proof.sigma, proof.b):
        return False
    if keccak(b"".join(proof.ciphertext_hashes)) != delivery_hash_onchain:
        return False
    if proof.ciphertext_hashes[2 * j + proof.sigma] != keccak(proof.ciphertext):
        return False
    pt = _dec(_kdf(context, j, B[j], mul(A, proof.b)), proof.ciphertext, _aad(context, j))
    leaf = leaf or _plain_leaf
    return pt is None or len(pt) < CODE_BYTES \
        or leaf(j, proof.sigma, pt[:CODE_BYTES]) != code_hashes[2 * j + proof.sigma]
