"""The channel code of the watermark payload: CRC-16 and a shortened binary BCH code, per code size.

* 64-bit codes (8 bytes): payload = code + CRC-16/CCITT-FALSE (80 bits), encoded by a shortened binary BCH code
  over GF(2^8) (n = 220, k = 80, t = 20: corrects any 20 bit errors).
* 128-bit codes (16 bytes): payload = code + CRC-16 (144 bits), encoded by a shortened binary BCH code over GF(2^9)
  (n = 144 + 9 t, t = `_T16`, corrects any t bit errors; see `channel`).

`decode_payload` accepts a word only if BCH decoding succeeds *and* the CRC matches.  False positives: a uniformly
random word lies within distance t of some codeword with probability V(n, t) / 2^(n-k) (V the Hamming-ball volume)
and then passes the CRC with probability 2^-16: ``false_positive_bound`` gives it; about 2^-59 for 64-bit codes and
below 2^-120 for 128-bit codes per decoding attempt, so even the ~10^4 attempts of one extraction (hypotheses x
Chase flips) never return a wrong code in practice.

The watermark's exceptions live here, at the bottom of its layers (`offchain.campaign.watermark` re-exports them):
a word that does not decode is a watermark not found.
"""

from __future__ import annotations

import functools

import numpy as np

import math

from offchain.common.errors import PinpointError

__all__ = ["WatermarkError", "WatermarkNotFound", "crc16", "BCH", "bch", "channel", "CODE_SIZES",
           "false_positive_bound", "encode_payload", "decode_payload"]

_CRC_BITS = 16
_DATA_BITS = 8 * 8 + _CRC_BITS  # 80 (64-bit codes)
_BCH_M = 8
_BCH_T = 20
_T16 = 32  # BCH correction capability for 128-bit codes (n = 144 + 9*32 = 432)
CODE_SIZES = (8, 16)
"""Supported code sizes in bytes (64- and 128-bit codes)."""


class WatermarkError(PinpointError, ValueError):
    """Invalid input to the watermark functions (bad image shape/dtype, bad code length, ...)."""


class WatermarkNotFound(WatermarkError):
    """No valid watermark for this key could be decoded from the image."""


def crc16(data: bytes, init: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021) of ``data``; returns an int in [0, 65535]."""
    crc = init
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class BCH:
    """Shortened narrow-sense binary BCH code over GF(2^m).

    ``BCH(m, t, k)`` encodes ``k`` data bits into ``n = k + deg(g)`` bits (``deg(g) <= m*t``) and
    corrects any pattern of at most ``t`` bit errors.  Bits are numpy ``uint8`` arrays of 0/1;
    codeword bit ``i`` is the coefficient of ``x^i`` (parity bits first, data bits last).
    ``decode`` raises ``WatermarkNotFound`` when the word is not within distance ``t`` of a
    codeword (detected failure).
    """

    _PRIM = {4: 0x13, 5: 0x25, 6: 0x43, 7: 0x89, 8: 0x11D, 9: 0x211, 10: 0x409}

    def __init__(self, m: int = _BCH_M, t: int = _BCH_T, k: int = _DATA_BITS):
        if m not in self._PRIM:
            raise ValueError(f"unsupported field GF(2^{m})")
        self.m, self.t, self.k = m, t, k
        self.q = (1 << m) - 1  # multiplicative order
        exp = np.zeros(2 * self.q, dtype=np.int64)
        log = np.full(self.q + 1, -1, dtype=np.int64)
        x = 1
        for i in range(self.q):
            exp[i] = x
            log[x] = i
            x <<= 1
            if x >> m:
                x ^= self._PRIM[m]
        exp[self.q:] = exp[: self.q]
        self.exp, self.log = exp, log
        # generator polynomial: product of distinct minimal polynomials of alpha^1..alpha^2t
        g = 1  # GF(2) polynomial as int bit-vector
        seen: set[int] = set()
        for i in range(1, 2 * t + 1):
            if i % self.q in seen:
                continue
            coset = []
            j = i % self.q
            while j not in coset:
                coset.append(j)
                j = (2 * j) % self.q
            seen.update(coset)
            # minimal polynomial = prod (x - alpha^j) over the coset, coefficients in GF(2)
            poly = [1]  # coefficients in GF(2^m), lowest degree first
            for j in coset:
                root = int(exp[j])
                new = [0] * (len(poly) + 1)
                for d, c in enumerate(poly):
                    new[d + 1] ^= c
                    new[d] ^= self._mul(c, root)
                poly = new
            assert all(c in (0, 1) for c in poly)
            mp = sum(c << d for d, c in enumerate(poly))
            g = self._pmul2(g, mp)
        self.g = g
        self.n_parity = g.bit_length() - 1
        self.n = self.k + self.n_parity
        if self.n > self.q:
            raise ValueError(f"k={k}, t={t} too large for GF(2^{m}) (n={self.n} > {self.q})")

    # -- field helpers
    def _mul(self, a: int, b: int) -> int:
        if a == 0 or b == 0:
            return 0
        return int(self.exp[self.log[a] + self.log[b]])

    @staticmethod
    def _pmul2(a: int, b: int) -> int:
        r = 0
        while b:
            if b & 1:
                r ^= a
            a <<= 1
            b >>= 1
        return r

    # -- encoding
    def encode(self, data_bits: np.ndarray) -> np.ndarray:
        """``data_bits``: uint8 0/1 array of shape (k,) -> codeword uint8 0/1 array of shape (n,)."""
        data_bits = np.asarray(data_bits, dtype=np.uint8)
        if data_bits.shape != (self.k,):
            raise ValueError(f"expected {self.k} data bits, got shape {data_bits.shape}")
        msg = 0
        for i, b in enumerate(data_bits):
            msg |= int(b) << i
        rem = msg << self.n_parity
        glen = self.g.bit_length()
        while rem.bit_length() >= glen:
            rem ^= self.g << (rem.bit_length() - glen)
        cw = (msg << self.n_parity) | rem
        return np.array([(cw >> i) & 1 for i in range(self.n)], dtype=np.uint8)

    # -- decoding
    def decode(self, word: np.ndarray) -> tuple[np.ndarray, int]:
        """Correct up to ``t`` errors in ``word`` (uint8 0/1, shape (n,)).

        Returns ``(data_bits (k,) uint8, number_of_corrected_errors)``; raises
        ``WatermarkNotFound`` if decoding fails (more than ``t`` errors detected).
        """
        word = np.asarray(word, dtype=np.uint8)
        if word.shape != (self.n,):
            raise ValueError(f"expected {self.n} bits, got shape {word.shape}")
        q, exp, log, t = self.q, self.exp, self.log, self.t
        idx = np.nonzero(word)[0]
        js = np.arange(1, 2 * t + 1)
        if idx.size:
            synd = np.bitwise_xor.reduce(exp[(np.outer(js, idx)) % q], axis=1)
        else:
            synd = np.zeros(2 * t, dtype=np.int64)
        if not synd.any():
            return word[self.n_parity:].copy(), 0
        s = [int(v) for v in synd]
        # Berlekamp-Massey
        C = [1] + [0] * (2 * t)
        B = [1] + [0] * (2 * t)
        L, mshift, b = 0, 1, 1
        for nn in range(2 * t):
            d = s[nn]
            for i in range(1, L + 1):
                if C[i] and s[nn - i]:
                    d ^= int(exp[log[C[i]] + log[s[nn - i]]])
            if d == 0:
                mshift += 1
                continue
            coef = int(exp[(log[d] - log[b]) % q])
            T = C[:]
            for i in range(2 * t + 1 - mshift):
                if B[i]:
                    C[i + mshift] ^= int(exp[log[coef] + log[B[i]]])
            if 2 * L <= nn:
                L = nn + 1 - L
                B, b, mshift = T, d, 1
            else:
                mshift += 1
        if L > t:
            raise WatermarkNotFound("BCH: too many errors")
        # Chien search over the (shortened) positions 0..n-1
        pos = np.arange(self.n)
        acc = np.zeros(self.n, dtype=np.int64)
        acc ^= C[0]
        for l in range(1, L + 1):
            if C[l]:
                acc ^= exp[(log[C[l]] - pos * l) % q]
        roots = np.nonzero(acc == 0)[0]
        if len(roots) != L:
            raise WatermarkNotFound("BCH: uncorrectable error pattern")
        out = word.copy()
        out[roots] ^= 1
        return out[self.n_parity:].copy(), int(L)


@functools.lru_cache(maxsize=None)
def channel(code_bytes: int = 8) -> BCH:
    """The BCH code of ``code_bytes``-byte codes (8: BCH(m=8, t=20, k=80), n = 220; 16: BCH(m=9, t=32, k=144),
    n = 432), built once.  Raises ``WatermarkError`` for another size."""
    if code_bytes == 8:
        return BCH(_BCH_M, _BCH_T, _DATA_BITS)
    if code_bytes == 16:
        return BCH(9, _T16, 16 * 8 + _CRC_BITS)
    raise WatermarkError(f"codes are {' or '.join(map(str, CODE_SIZES))} bytes, got {code_bytes}")


def bch() -> BCH:
    """The payload code of 64-bit codes, BCH(m=8, t=20, k=80) (n = 220)."""
    return channel(8)


def false_positive_bound(code_bytes: int) -> float:
    """Probability that a uniformly random n-bit word decodes (BCH within distance t, then CRC-16 matching):
    ``V(n, t) / 2^(n-k) * 2^-16``, as a float (a union bound over attempts multiplies it by their number)."""
    c = channel(code_bytes)
    ball = sum(math.comb(c.n, i) for i in range(c.t + 1))
    return ball / 2.0 ** (c.n - c.k) * 2.0**-_CRC_BITS


def _bytes_to_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def _bits_to_bytes(bits: np.ndarray) -> bytes:
    return np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="little").tobytes()


def _payload_bits(code: bytes) -> np.ndarray:
    crc = crc16(code)
    return _bytes_to_bits(code + crc.to_bytes(2, "little"))


def encode_payload(code: bytes) -> np.ndarray:
    """Channel-encode an 8- or 16-byte code: CRC-16 appended, then the BCH code of its size (`channel`).

    Returns the codeword as a uint8 0/1 array of shape (n,) (220 or 432; before key scrambling).
    Raises ``WatermarkError`` if ``code`` is not bytes of a supported size.
    """
    if not isinstance(code, (bytes, bytearray)) or len(code) not in CODE_SIZES:
        raise WatermarkError(f"code must be {' or '.join(map(str, CODE_SIZES))} bytes")
    return channel(len(code)).encode(_payload_bits(bytes(code)))


def decode_payload(bits: np.ndarray, code_bytes: int = 8) -> bytes:
    """Inverse of :func:`encode_payload`: correct up to t bit errors, check the CRC.

    ``bits``: uint8 0/1 array of shape (n,) of the ``code_bytes`` channel.  Returns the ``code_bytes``-byte code;
    raises ``WatermarkNotFound`` if the BCH decoder fails or the CRC does not match.
    """
    data, _ = channel(code_bytes).decode(np.asarray(bits, dtype=np.uint8))
    raw = _bits_to_bytes(data)
    code, crc = raw[:code_bytes], int.from_bytes(raw[code_bytes:], "little")
    if crc16(code) != crc:
        raise WatermarkNotFound("CRC mismatch")
    return code


# ---------------------------------------------------------------------------------------------
# Soft-decision decoding: ordered statistics (OSD-1), for 128-bit codes
# ---------------------------------------------------------------------------------------------
OSD_MAX_DIST = {16: 56}  # largest accepted Hamming distance between the OSD codeword and the hard decisions


@functools.lru_cache(maxsize=None)
def generator(code_bytes: int) -> np.ndarray:
    """The systematic generator matrix (k, n) uint8 of the ``code_bytes`` channel: row i encodes data bit i."""
    c = channel(code_bytes)
    eye = np.eye(c.k, dtype=np.uint8)
    return np.stack([c.encode(eye[i]) for i in range(c.k)])


def osd_false_positive_bound(code_bytes: int, candidates: int = 1) -> float:
    """Probability that `decode_osd` accepts a uniformly random word, per call: each of the ``candidates`` codewords
    checked agrees with the word on its k most reliable bits by construction and must agree on all but
    ``OSD_MAX_DIST`` of the other n - k bits (a binomial tail at 1/2) and then pass the CRC-16 (2^-16)."""
    c = channel(code_bytes)
    m = c.n - c.k
    tail = sum(math.comb(m, i) for i in range(OSD_MAX_DIST[code_bytes] + 1)) / 2.0**m
    return candidates * tail * 2.0**-_CRC_BITS


def decode_osd(soft: np.ndarray, code_bytes: int = 16, n_check: int = 3) -> bytes:
    """Ordered-statistics decoding of order 1 from soft values (n,) (sign: bit 0 if >= 0, reliability = |soft|).

    The k most reliable independent positions are re-encoded (OSD-0) and each of them flipped in turn (OSD-1); the
    ``n_check`` candidates of least weighted distance are accepted only if their Hamming distance to the hard
    decisions is at most ``OSD_MAX_DIST`` *and* the CRC matches (false positives: `osd_false_positive_bound`).
    Returns the code; raises ``WatermarkNotFound`` otherwise.
    """
    if code_bytes not in OSD_MAX_DIST:
        raise WatermarkError(f"no OSD decoder for {code_bytes}-byte codes")
    c = channel(code_bytes)
    soft = np.asarray(soft, dtype=np.float64)
    if soft.shape != (c.n,):
        raise ValueError(f"expected {c.n} soft values, got shape {soft.shape}")
    hard = (soft < 0).astype(np.uint8)
    rel = np.abs(soft)
    order = np.argsort(-rel, kind="stable")
    G = generator(code_bytes)[:, order].copy()  # columns by decreasing reliability
    k = c.k
    pivots = []
    row = 0
    for col in range(c.n):
        if row == k:
            break
        nz = np.nonzero(G[row:, col])[0]
        if nz.size == 0:
            continue
        r = row + nz[0]
        if r != row:
            G[[row, r]] = G[[r, row]]
        others = np.nonzero(G[:, col])[0]
        others = others[others != row]
        G[others] ^= G[row]
        pivots.append(col)
        row += 1
    if row < k:
        raise WatermarkNotFound("OSD: rank deficient")
    pivots = np.array(pivots)
    h = hard[order]
    info = h[pivots]
    c0 = (info.astype(np.int64) @ G.astype(np.int64)) % 2
    cands = np.vstack([c0[None, :], c0[None, :] ^ G]).astype(np.uint8)  # (k+1, n)
    r_ord = rel[order]
    metric = ((cands != h[None, :]) * r_ord[None, :]).sum(axis=1)
    for i in np.argsort(metric)[:n_check]:
        cw = np.empty(c.n, dtype=np.uint8)
        cw[order] = cands[i]
        if int((cw != hard).sum()) > OSD_MAX_DIST[code_bytes]:
            continue
        raw = _bits_to_bytes(cw[c.n_parity:])
        code, crc = raw[:code_bytes], int.from_bytes(raw[code_bytes:], "little")
        if crc16(code) == crc:
            return code
    raise WatermarkNotFound("OSD: no codeword close enough with a matching CRC")
