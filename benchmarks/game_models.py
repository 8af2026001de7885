"""Random models and disputed places for the adversarial game corpus (`benchmarks/games.py`): small synthetic models
of every operator and layout, small ones with one long reduction (phase 3), and the real MobileNetV2-int8 (each
returned as the honest `offchain.inference.trace.Trace` of the model on a random input); random operators and
elements to dispute, padding and last words included."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.parity_fuzz import random_input, random_model  # noqa: E402
from offchain.common.errors import PinpointError  # noqa: E402
from offchain.inference.loader import lower  # noqa: E402
from offchain.inference.pipeline import load_input, load_model, run  # noqa: E402
from protocol.inference.types import Phase  # noqa: E402
from tests.synth import Builder, make_input, make_model  # noqa: E402

PHASE3 = hasattr(Phase, "REDUCTION")  # the dissection of long reductions (phase 3) is in this checkout
if PHASE3:
    from offchain.inference.reduction import op_chunking  # noqa: E402

MODEL = ROOT / "offchain/assets/mobilenetv2-12-int8.onnx"
PHOTO = ROOT / "offchain/assets/bald_eagle.jpeg"
SKIPPED: Counter = Counter()
"""Models the loader accepted but the evaluator failed on (an error each), reported by the corpus."""
ort.set_default_logger_severity(3)  # no warnings about unused initializers of the random models


def mobilenet():
    """MobileNetV2-int8 (ONNX Model Zoo) on the bald eagle photo."""
    g = load_model(MODEL)
    return run(g, load_input(PHOTO, g))


def synthetic(rng: random.Random):
    """The honest trace of a random small model on a random input: half the time the full six-kind pipeline of
    `tests/synth.py` with random shapes, strides, padding and dilation (saturating or signed variants included),
    else a random chain of 3-9 operators from the parity fuzzer (`benchmarks/parity_fuzz.py`: Q after DQ,
    constants of activation shape, reshapes, broadcasts, opset-21 output types). Models the loader refuses are
    drawn again; one the loader accepts but the evaluator fails on is counted in `SKIPPED` and drawn again."""
    while True:
        s = rng.randrange(10**6)
        try:
            if rng.random() < 0.5:
                G = rng.choice((1, 2))
                k = dict(H=rng.randint(3, 12), W=rng.randint(3, 12), Ci=G * rng.randint(1, 3), G=G,
                         cig_out=rng.randint(1, 4), K=rng.randint(1, 3), stride=rng.randint(1, 2),
                         pad=tuple(rng.randint(0, 2) for _ in range(4)), dil=rng.randint(1, 2),
                         n_out=rng.randint(1, 40), sat_scale=rng.random() < 0.2, signed_out=rng.random() < 0.3,
                         gap_reads_conv=rng.random() < 0.2)
                g = lower(make_model(s, **k))
                return run(g, make_input(s, g.input.shape))
            nrng = np.random.default_rng(s)
            model, shape, xs = random_model(nrng)
            g = lower(model)
            return run(g, random_input(nrng, shape, xs))
        except (PinpointError, ValueError):  # refused by the loader: draw again
            continue
        except Exception as e:  # accepted but not evaluable here: counted and reported, never played
            SKIPPED[f"{type(e).__name__}: {e}"[:120]] += 1
            continue


def big(rng: random.Random):
    """The honest trace of a random small model with one long reduction, whose one-step is cut into chunks (phase
    3): a GAP over 64 x 64 to 96 x 96 pixels, a MATMUL with K = 4096-8192, or a 3 x 3 CONV over 512 channels
    (VGG-16's taps). The disputed operator of a cheating solver is the long one half of the time."""
    nrng = np.random.default_rng(rng.randrange(10**6))
    form = rng.choice(("gap", "matmul", "conv"))
    xs = 0.02
    if form == "gap":
        side = rng.choice((64, 80, 96))
        b = Builder((1, rng.randint(1, 3), side, side)).quantize(xs, np.uint8(nrng.integers(0, 256)))
        b.gap(xs * float(nrng.uniform(0.3, 1.5)), np.uint8(nrng.integers(0, 256)))
        C = b.cur[1][1]
    elif form == "matmul":
        C = rng.choice((4096, 6144, 8192))
        b = Builder((1, C, 1, 1)).quantize(xs, np.uint8(nrng.integers(0, 256)))
    else:
        b = Builder((1, 512, 3, 3)).quantize(xs, np.uint8(nrng.integers(0, 256)))
        Co = rng.randint(1, 4)
        ws = nrng.uniform(0.002, 0.02, Co).astype(np.float32)
        b.conv(nrng.integers(-128, 128, (Co, 512, 3, 3)).astype(np.int8), ws, np.zeros(Co, np.int8),
               nrng.integers(-2000, 2000, Co).astype(np.int32), xs * float(ws.mean()) * 60 * np.sqrt(4608),
               np.uint8(nrng.integers(0, 256)), pads=[rng.randint(0, 1)] * 4)
        C = Co
        b.gap(float(b.cur[2]), np.uint8(nrng.integers(0, 256)))
    name, (N, C, H, W), s, z = b.cur
    b.reshape((1, C))
    n = rng.randint(1, 8)
    bs = nrng.uniform(0.002, 0.02, n).astype(np.float32)
    b.matmul(nrng.integers(-128, 128, (C, n)).astype(np.int8), bs, np.zeros(n, np.int8),
             float(s) * float(bs.mean()) * 40 * np.sqrt(C), np.uint8(nrng.integers(0, 256)))
    g = lower(b.model())
    return run(g, random_input(nrng, b.in_shape, xs))


def pick_element(rng: random.Random, trace, j: int, padding: bool = False) -> int:
    """A random flat element of operator j's output: a quarter of the time in its last 32-byte word; with
    ``padding``, half of those in the zero padding after the last element (when the last word has any)."""
    op = trace.graph.ops[j].out
    n, per = op.numel, 32 // op.dtype.itemsize
    if rng.random() < 0.25:
        words = -(-n // per)
        if padding and words * per > n and rng.random() < 0.5:
            return rng.randrange(n, words * per)
        return rng.randrange(max(0, n - per), n)
    return rng.randrange(n)


def pick_op(rng: random.Random, trace, padding: bool = False) -> int:
    """A random operator index: the last one with probability 1/6; with ``padding``, a padding leaf of the trace
    tree (index >= n_ops) with probability 1/6 when the tree has one."""
    n = trace.graph.n_ops
    leaves = 1 << trace.trace_tree.depth
    r = rng.random()
    if padding and leaves > n and r < 1 / 6:
        return rng.randrange(n, leaves)
    return n - 1 if r > 5 / 6 else rng.randrange(n)


def long_ops(trace) -> list[int]:
    """Indices of the operators whose one-step is cut into chunks (phase 3); [] without phase 3."""
    return [i for i, op in enumerate(trace.graph.ops) if PHASE3 and op_chunking(op)[0] > 1]
