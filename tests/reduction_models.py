"""Small synthetic models whose CONV, MATMUL and GAP elements need several chunks (phase 3 of the game), for
`tests/test_reduction.py`."""

from __future__ import annotations

import numpy as np

from tests.synth import Builder


def _w(rng, shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def conv_model(seed: int):
    """Quantize -> 3x3 CONV over 96 channels (K = 864: several chunks; committed NCHW, only the GAP reads it) ->
    GAP -> Dequantize."""
    rng = np.random.default_rng(seed)
    b = Builder(shape=(1, 96, 10, 10))
    b.quantize(0.05, np.uint8(128))
    b.conv(_w(rng, (40, 96, 3, 3)), rng.uniform(0.0005, 0.004, 40).astype(np.float32), np.zeros(40, np.int8),
           rng.integers(-20000, 20000, 40).astype(np.int32), 0.4, np.uint8(100), pads=[1, 1, 1, 1], strides=[2, 2])
    b.gap(0.3, np.uint8(120))
    return b.model(), (1, 96, 10, 10)


def gap_nhwc_model(seed: int):
    """Quantize -> GAP over 24x24 NHWC (576 single-byte pixels: tens of chunks, two rounds of phase 3) -> Reshape
    -> MATMUL 40 -> 10 -> Dequantize."""
    rng = np.random.default_rng(seed)
    b = Builder(shape=(1, 40, 24, 24))
    b.quantize(0.05, np.uint8(128))
    b.gap(0.3, np.uint8(120))
    b.reshape((1, 40))
    b.matmul(_w(rng, (40, 10)), rng.uniform(0.001, 0.01, 10).astype(np.float32), np.zeros(10, np.int8), 0.2,
             np.uint8(128))
    return b.model(), (1, 40, 24, 24)


def matmul_model(seed: int, K: int = 2000):
    """Quantize -> Reshape -> MATMUL K -> 6 (several chunks of K) -> Dequantize."""
    rng = np.random.default_rng(seed)
    b = Builder(shape=(1, K, 1, 1))
    b.quantize(0.05, np.int8(3))
    b.reshape((1, K))
    b.matmul(_w(rng, (K, 6)), rng.uniform(0.0002, 0.002, 6).astype(np.float32), np.zeros(6, np.int8), 0.3,
             np.int8(-5))
    return b.model(), (1, K, 1, 1)


def gap_nchw_model(seed: int, hw: int = 40):
    """Quantize -> 1x1 CONV 8 -> 8 (committed NCHW, it feeds the GAP only) -> GAP over hw x hw -> Dequantize."""
    rng = np.random.default_rng(seed)
    b = Builder(shape=(1, 8, hw, hw))
    b.quantize(0.05, np.uint8(128))
    b.conv(_w(rng, (8, 8, 1, 1)), rng.uniform(0.01, 0.05, 8).astype(np.float32), np.zeros(8, np.int8),
           rng.integers(-500, 500, 8).astype(np.int32), 0.3, np.uint8(128))
    b.gap(0.2, np.uint8(128))
    return b.model(), (1, 8, hw, hw)


def make_x(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed + 7).normal(0, 2.0, size=shape).astype(np.float32)
