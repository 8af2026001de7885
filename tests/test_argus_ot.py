"""Oblivious transfer (`offchain/campaign/ot.py`) and the code index (`offchain/campaign/codes.py`)."""

from __future__ import annotations

import random

import pytest

from offchain.campaign import ot
from offchain.campaign.codes import CODE_BYTES, CodeError, code_hash, code_leaves, code_pairs, code_root, locate, \
    new_codes, verify_multiproof
from offchain.common.hashing import keccak

CTX = b"\xaa" * 20 + b"\0\0\0\1"


def code_hashes(codes):
    """The plain code hashes (`ot.receive`'s default leaf)."""
    return [code_hash(c) for pair in codes for c in pair]


def _variants(codes):
    return [(c0 + b"content-0-%d" % j, c1 + b"content-1-%d" % j) for j, (c0, c1) in enumerate(codes)]


def test_receiver_gets_exactly_its_variants():
    key = ot.OwnerKey.generate()
    codes = new_codes(6, random.Random(1))
    sigma = [0, 1, 1, 0, 1, 0]
    choice = ot.choose(key.A, sigma)
    delivery = ot.deliver(key, choice.B, _variants(codes), CTX)
    got = ot.receive(choice, key.A, delivery, code_hashes(codes), CTX)
    assert [p[:CODE_BYTES] for p in got] == [codes[j][s] for j, s in enumerate(sigma)]
    assert all(ot.open_matches(key.A, B, s, b) for B, s, b in zip(choice.B, sigma, choice.b))
    # the other opening of the same point does not hold (the appeal relies on it)
    assert not any(ot.open_matches(key.A, B, 1 - s, b) for B, s, b in zip(choice.B, sigma, choice.b))


def test_receiver_cannot_decrypt_the_other_variant():
    key = ot.OwnerKey.generate()
    codes = new_codes(3, random.Random(2))
    choice = ot.choose(key.A, [0, 0, 1])
    delivery = ot.deliver(key, choice.B, _variants(codes), CTX)
    flipped = ot.Choice([1, 1, 0], choice.b, choice.B)  # the licensee's key on the other ciphertext
    with pytest.raises(ot.DeliveryError) as e:
        ot.receive(flipped, key.A, delivery, code_hashes(codes), CTX)
    assert e.value.segment == 0
    # a different context (another licensee's transfer) does not decrypt either
    with pytest.raises(ot.DeliveryError):
        ot.receive(choice, key.A, delivery, code_hashes(codes), b"other")


def test_choice_points_do_not_reveal_the_choice():
    """B = sigma*A + b*G: for any B the owner sees, both sigma are possible (b' = b + a*(sigma - sigma'))."""
    key = ot.OwnerKey.generate()
    c = ot.choose(key.A, [1])
    b_alt = (c.b[0] + key.a) % ot.N  # the opening as sigma = 0, which only the owner (knowing a) can compute
    assert ot.open_matches(key.A, c.B[0], 0, b_alt) and ot.open_matches(key.A, c.B[0], 1, c.b[0])


def test_cheating_delivery_is_detected_and_provable():
    key = ot.OwnerKey.generate()
    codes = new_codes(4, random.Random(3))
    sigma = [1, 0, 1, 1]
    choice = ot.choose(key.A, sigma)
    hashes = code_hashes(codes)
    # the owner delivers in segment 2 a code it did not commit
    forged = [list(v) for v in _variants(codes)]
    forged[2][1] = b"\x00" * CODE_BYTES + b"garbage"
    delivery = ot.deliver(key, choice.B, [tuple(v) for v in forged], CTX)
    with pytest.raises(ot.DeliveryError) as e:
        ot.receive(choice, key.A, delivery, hashes, CTX)
    assert e.value.segment == 2
    proof = ot.prove_cheating(choice, delivery, 2)
    dh = ot.delivery_hash(delivery)
    assert ot.check_cheating_proof(proof, key.A, choice.B, dh, hashes, CTX)
    # an honest segment does not make a proof, nor does a proof against another delivery hash
    assert not ot.check_cheating_proof(ot.prove_cheating(choice, delivery, 1), key.A, choice.B, dh, hashes, CTX)
    assert not ot.check_cheating_proof(proof, key.A, choice.B, b"\0" * 32, hashes, CTX)
    # a wrong opening is not a proof
    bad = ot.CheatingProof(2, 0, proof.b, proof.ciphertext_hashes, proof.ciphertext)
    assert not ot.check_cheating_proof(bad, key.A, choice.B, dh, hashes, CTX)


def test_bad_points_rejected():
    key = ot.OwnerKey.generate()
    with pytest.raises(ot.OTError):
        ot.deliver(key, [(1, 3)], [(b"\0" * CODE_BYTES, b"\1" * CODE_BYTES)])
    with pytest.raises(ot.OTError):
        ot.choose(key.A, [2])


def test_locate_finds_licensee_bits_and_a_valid_multiproof():
    rng = random.Random(4)
    camp = "0x" + "ab" * 20
    idx = {i: code_leaves(camp, i, new_codes(4, rng)) for i in range(3)}
    codes1 = new_codes(4, rng)
    idx[7] = code_leaves(camp, 7, codes1)
    bits = [1, 0, 0, 1]
    extracted = [codes1[j][b] for j, b in enumerate(bits)]
    loc = locate(list(reversed(extracted)), idx, camp, 4)  # any order
    assert loc.id == 7 and loc.bits == 0b1001 and loc.mask == 0b1111 and loc.codes == extracted
    # each item is the code and the other variant's leaf; the opened words are the committed pair words
    assert loc.items == [c + idx[7][2 * j + 1 - b] for j, (c, b) in enumerate(zip(extracted, bits))]
    assert verify_multiproof(code_root(idx[7]), 2, [0, 1, 2, 3], code_pairs(idx[7]), loc.proof) and loc.proof == []
    part = locate(extracted[:3], idx, camp, 3)  # a partial copy (3 of 4 segments) reaches the quorum 3
    assert part.id == 7 and part.mask == 0b0111 and part.bits == 0b0001
    assert verify_multiproof(code_root(idx[7]), 2, [0, 1, 2], code_pairs(idx[7])[:3], part.proof)
    assert part.proof == [code_pairs(idx[7])[3]]
    with pytest.raises(CodeError):
        locate(extracted[:3], idx, camp, 4)
    with pytest.raises(CodeError):  # the leaves are bound to the campaign
        locate(extracted, idx, "0x" + "cd" * 20, 3)


def test_forged_cheating_proofs_rejected():
    """Attack 8: against an HONEST delivery, proofs with sigma = 2 or -1 (the opening treats any nonzero sigma as 1
    and the index lands on another segment's ciphertext, which does not decrypt) or with a regrouped hash list
    (an empty first item: same deliveryHash, every index shifted) were accepted. Now the shape is checked."""
    key = ot.OwnerKey.generate()
    codes = new_codes(4, random.Random(5))
    sigma = [1, 1, 0, 1]
    choice = ot.choose(key.A, sigma)
    hashes = code_hashes(codes)
    delivery = ot.deliver(key, choice.B, _variants(codes), CTX)
    dh = ot.delivery_hash(delivery)
    honest = ot.prove_cheating(choice, delivery, 1)
    assert not ot.check_cheating_proof(honest, key.A, choice.B, dh, hashes, CTX)
    flat = [c for pair in delivery for c in pair]
    for s_forged, idx in ((2, 2 * 1 + 2), (-1, 2 * 1 - 1)):
        forged = ot.CheatingProof(1, s_forged, choice.b[1], honest.ciphertext_hashes, flat[idx])
        assert not ot.check_cheating_proof(forged, key.A, choice.B, dh, hashes, CTX), s_forged
    regrouped = ot.CheatingProof(1, 1, choice.b[1], [b""] + honest.ciphertext_hashes, delivery[1][0])
    assert keccak(b"".join(regrouped.ciphertext_hashes)) == dh  # the on-chain hash does not see the grouping
    assert not ot.check_cheating_proof(regrouped, key.A, choice.B, dh, hashes, CTX)
    for bad_hashes in (honest.ciphertext_hashes[:-1], honest.ciphertext_hashes + [b"\0" * 32]):
        assert not ot.check_cheating_proof(ot.CheatingProof(1, 1, choice.b[1], bad_hashes, delivery[1][1]),
                                           key.A, choice.B, dh, hashes, CTX)
