"""Keccak-256, the EVM's ``keccak256`` (not NIST SHA3-256): the one hash of every commitment the contracts check."""

from __future__ import annotations

from Crypto.Hash import keccak as _keccak


def keccak(data: bytes) -> bytes:
    """Keccak-256 of ``data`` (bytes of any length); 32 bytes."""
    return _keccak.new(data=data, digest_bits=256).digest()
