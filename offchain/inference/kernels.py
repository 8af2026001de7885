"""Evaluation of a canonical `Graph`: the operator definitions, a fast path, and input preprocessing.

`DEFINITIONS` holds the one Python definition of every canonical operator (`offchain.inference.graph` states them in words):
plain int64 numpy, tap by tap, no float anywhere except QUANTIZE's input and DEQUANTIZE's output, which are float32
by the ONNX specification. `contracts/lib/Ops.sol` is the Solidity definition; `tests/test_ops_solidity.py` holds
the two against each other element by element.

`FAST` is the evaluator users run. It computes the same integers through float64 BLAS (convolutions as im2col GEMM,
depthwise convolutions tap by tap): every product of two 8-bit deviations is below 2^16 and every accumulator is
proven below 2^31 by the model loader, so every partial sum is an integer below 2^53 and float64 addition of
such integers is exact in any order, with any number of threads, with or without FMA, on any IEEE-754 CPU. The
requantization ``floor(acc * (M0 * 2^-s) + 0.5)`` is exact in float64 for the same reason (see
`offchain.inference.graph`); CONV/MATMUL requantize with single IEEE binary32 operations (see `_rq_f32`).
`tests/test_kernels.py` holds FAST against DEFINITIONS byte for byte.

XCE (cross-evaluator consistency) therefore rests on exact arithmetic, not on a fixed summation order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .graph import Graph, INPUT_REF, Kind, Op
from offchain.common.errors import PinpointError


class InputError(PinpointError, ValueError):
    """The input tensor does not fit the model (shape, dtype, non-finite values)."""


def _lim(signed: int) -> tuple[int, int]:
    return (-128, 127) if signed else (0, 255)


def _sat(y: np.ndarray, signed: int) -> np.ndarray:
    lo, hi = _lim(signed)
    return np.clip(y, lo, hi).astype(np.int8 if signed else np.uint8)


def _rq_int(acc: np.ndarray, m0, s) -> np.ndarray:
    """floor((acc * M0 + 2^(s-1)) / 2^s) in int64 (|acc * M0| < 2^53 is guaranteed by the loader)."""
    acc = acc.astype(np.int64)
    m0 = np.asarray(m0, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    return (acc * m0 + (np.int64(1) << (s - 1))) >> s


def _rq_f32(acc: np.ndarray, sbits) -> np.ndarray:
    """RQF: rne(fl32(fl32(acc) * S)) as float64 integers; ``acc`` holds exact integers below 2^31 (int64 or
    float64), ``sbits`` the float32 bits of S (broadcast over the last axis). int -> float64 is exact, float64 ->
    float32 rounds once to nearest even, the float32 product rounds once, np.rint rounds half to even."""
    S = np.asarray(sbits, dtype=np.int64).astype(np.uint32).view(np.float32)
    y = np.asarray(acc, dtype=np.float64).astype(np.float32)
    np.multiply(y, S, out=y)
    np.rint(y, out=y)
    return y.astype(np.float64)


def _f32(bits: int) -> np.float32:
    return np.array(bits, dtype=np.uint32).view(np.float32).reshape(())[()]


# ------------------------------------------------------------------------------------------------ definitions

def quantize_def(op: Op, x: np.ndarray) -> np.ndarray:
    """QUANTIZE. x float32 [N,C,H,W] (finite) -> uint8/int8 [N,H,W,C] = sat(zp + rne(x / scale)).

    The quotient is taken in float64 from the two float32 operands. Both have 24-bit significands (the loader
    rejects subnormal scales), so a quotient below 2^10 in magnitude that is not exactly a half-integer is at
    least 2^-28 away from one, while float64's rounding error there is below 2^-43: np.rint then rounds half to
    even exactly as over the reals. Larger quotients saturate whatever their rounding.
    """
    scale = np.float64(_f32(op.p("scale_bits")))
    q = np.rint(x.astype(np.float64) / scale)
    q = np.clip(q, -(2.0 ** 31), 2.0 ** 31).astype(np.int64) + op.p("zp")
    return _sat(q, op.p("y_signed")).transpose(0, 2, 3, 1).copy()


def conv_def(op: Op, x: np.ndarray) -> np.ndarray:
    """CONV. x [N,H,W,Ci] -> [N,OH,OW,Co]; weight [Co,KH,KW,Ci/G]; table per co (bias, M0, s, w_zp)."""
    P = dict(zip(("N", "H", "W", "Ci", "Co", "OH", "OW", "KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW", "G"),
                 op.params[:16]))
    N, H, W, Ci, Co, OH, OW = (P[k] for k in ("N", "H", "W", "Ci", "Co", "OH", "OW"))
    G, Cig, Cog = P["G"], P["Ci"] // P["G"], P["Co"] // P["G"]
    t = op.table
    xd = x.astype(np.int64) - op.p("x_zp")
    wd = op.weight.astype(np.int64) - t["wzp"][:, None, None, None]
    acc = np.broadcast_to(t["bias"].astype(np.int64), (N, OH, OW, Co)).copy()
    oh = np.arange(OH)
    ow = np.arange(OW)
    for kh in range(P["KH"]):
        ih = oh * P["SH"] - P["PT"] + kh * P["DH"]
        vh = (ih >= 0) & (ih < H)
        for kw in range(P["KW"]):
            iw = ow * P["SW"] - P["PL"] + kw * P["DW"]
            vw = (iw >= 0) & (iw < W)
            tap = np.zeros((N, OH, OW, Ci), np.int64)
            tap[:, vh[:, None] & vw[None, :]] = xd[:, ih[vh]][:, :, iw[vw]].reshape(N, -1, Ci)
            tg = tap.reshape(N, OH, OW, G, Cig)
            wg = wd[:, kh, kw, :].reshape(G, Cog, Cig)
            acc += np.einsum("nhwgc,goc->nhwgo", tg, wg).reshape(N, OH, OW, Co)
    y = op.p("y_zp") + _rq_f32(acc, t["sbits"]).astype(np.int64)
    return _layout(op, _sat(y, op.p("y_signed")))


def _layout(op: Op, y: np.ndarray) -> np.ndarray:
    """A CONV output [N,OH,OW,Co] in its committed layout (NCHW when ``out_nchw``)."""
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if op.p("out_nchw") else y


def _nhwc(op: Op, x: np.ndarray) -> np.ndarray:
    """A GAP input as NHWC whatever its committed layout."""
    return x.transpose(0, 2, 3, 1) if op.p("x_nchw") else x


def add_def(op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ADD. a [..] and b (same numel, or numel_b dividing numel_a: b repeats over leading dimensions)."""
    ad = a.astype(np.int64).reshape(-1) - op.p("a_zp")
    bd = np.tile(b.astype(np.int64).reshape(-1), op.p("numel_a") // op.p("numel_b")) - op.p("b_zp")
    s = op.p("s")
    y = op.p("c_zp") + ((ad * op.p("Ma") + bd * op.p("Mb") + (1 << (s - 1))) >> s)
    return _sat(y, op.p("c_signed")).reshape(op.out.shape)


def gap_def(op: Op, x: np.ndarray) -> np.ndarray:
    """GAP. x [N,H,W,C] (or [N,C,H,W] when ``x_nchw``) -> [N,1,1,C] = sat(y_zp + RQ(sum_{h,w}(x - x_zp)))."""
    acc = (_nhwc(op, x).astype(np.int64) - op.p("x_zp")).sum(axis=(1, 2), keepdims=True)
    return _sat(op.p("y_zp") + _rq_int(acc, op.p("M0"), op.p("s")), op.p("y_signed"))


def matmul_def(op: Op, a: np.ndarray) -> np.ndarray:
    """MATMUL. a [M,K]; weight (b transposed) [N,K]; table per column n -> [M,N]."""
    t = op.table
    ad = a.astype(np.int64).reshape(op.p("M"), op.p("K")) - op.p("a_zp")
    bd = op.weight.astype(np.int64) - t["wzp"][:, None]
    acc = ad @ bd.T
    return _sat(op.p("y_zp") + _rq_f32(acc, t["sbits"]).astype(np.int64), op.p("y_signed"))


def dequantize_def(op: Op, q: np.ndarray) -> np.ndarray:
    """DEQUANTIZE. q int8/uint8 -> float32 = fl32((q - zp) * scale), one IEEE binary32 product (RNE)."""
    d = (q.astype(np.int32) - op.p("zp")).astype(np.float32)
    return (d * _f32(op.p("scale_bits"))).astype(np.float32).reshape(op.out.shape)


DEFINITIONS = {Kind.QUANTIZE: quantize_def, Kind.CONV: conv_def, Kind.ADD: add_def, Kind.GAP: gap_def,
               Kind.MATMUL: matmul_def, Kind.DEQUANTIZE: dequantize_def}


# -------------------------------------------------------------------------------------------------- fast path

def _rq_f64(acc: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """floor(acc * mult + 0.5) in float64, exact by the loader's 2^53 bound; mult = M0 * 2^-s."""
    np.multiply(acc, mult, out=acc)
    acc += 0.5
    np.floor(acc, out=acc)
    return acc


def _sat_f(y: np.ndarray, zp: int, signed: int) -> np.ndarray:
    y += zp
    lo, hi = _lim(signed)
    np.clip(y, lo, hi, out=y)
    return y.astype(np.int8 if signed else np.uint8)


def conv_fast(op: Op, x: np.ndarray) -> np.ndarray:
    P = op.params
    N, H, W, Ci, Co, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, G = P[:16]
    Cig, Cog = Ci // G, Co // G
    t = op.table
    cache = op.__dict__.setdefault("_fast", {})
    if "w" not in cache:
        wd = op.weight.astype(np.float64) - t["wzp"][:, None, None, None]
        cache["w"] = wd
    wd = cache["w"]
    xzp = op.p("x_zp")
    PB = max(0, (OH - 1) * SH + DH * (KH - 1) + 1 - H - PT)
    PR = max(0, (OW - 1) * SW + DW * (KW - 1) + 1 - W - PL)
    xf = x.astype(np.float64)
    xf -= xzp
    if PT or PL or PB or PR:
        xf = np.pad(xf, ((0, 0), (PT, PB), (PL, PR), (0, 0)))
    def tap(kh, kw):
        h0, w0 = kh * DH, kw * DW
        return xf[:, h0:h0 + (OH - 1) * SH + 1:SH, w0:w0 + (OW - 1) * SW + 1:SW, :]
    if G == 1:
        if KH == KW == 1:
            cols = tap(0, 0).reshape(-1, Ci)
        else:
            cols = np.concatenate([tap(kh, kw) for kh in range(KH) for kw in range(KW)], axis=-1).reshape(-1, KH * KW * Ci)
        acc = cols @ wd.reshape(Co, -1).T
    elif Cig == 1 and Cog == 1:  # depthwise
        # float32 is exact here when every partial sum of taps stays below 2^24 (checked, else float64)
        dt = np.float32 if KH * KW * 255 * cache.setdefault("wmax", float(np.abs(wd).max())) < 2 ** 24 else np.float64
        xs = xf.astype(dt)
        ws = wd.astype(dt)
        acc32 = np.zeros((N, OH, OW, Co), dt)
        tmp = np.empty_like(acc32)
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * DH, kw * DW
                v = xs[:, h0:h0 + (OH - 1) * SH + 1:SH, w0:w0 + (OW - 1) * SW + 1:SW, :]
                np.multiply(v, ws[:, kh, kw, 0], out=tmp)
                acc32 += tmp
        acc = acc32.reshape(-1, Co).astype(np.float64)
    else:  # grouped
        cols = np.stack([tap(kh, kw) for kh in range(KH) for kw in range(KW)], axis=-2)  # N,OH,OW,T,Ci
        cols = cols.reshape(-1, KH * KW, G, Cig)
        wg = wd.reshape(G, Cog, KH * KW, Cig)
        acc = np.einsum("ptgc,gotc->pgo", cols, wg, optimize=True).reshape(-1, Co)
    acc += t["bias"].astype(np.float64)
    y = _rq_f32(acc, t["sbits"])
    return _layout(op, _sat_f(y, op.p("y_zp"), op.p("y_signed")).reshape(N, OH, OW, Co))


def matmul_fast(op: Op, a: np.ndarray) -> np.ndarray:
    t = op.table
    cache = op.__dict__.setdefault("_fast", {})
    if "w" not in cache:
        cache["w"] = (op.weight.astype(np.float64) - t["wzp"][:, None]).T.copy()
    ad = a.astype(np.float64).reshape(op.p("M"), op.p("K")) - op.p("a_zp")
    y = _rq_f32(ad @ cache["w"], t["sbits"])
    return _sat_f(y, op.p("y_zp"), op.p("y_signed"))


def add_fast(op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = op.p("s")
    ad = a.astype(np.float64).reshape(-1) - op.p("a_zp")
    bd = b.astype(np.float64).reshape(-1) - op.p("b_zp")
    if bd.size != ad.size:
        bd = np.tile(bd, ad.size // bd.size)
    acc = ad * float(op.p("Ma")) + bd * float(op.p("Mb"))   # |.| < 2^33: exact
    y = _rq_f64(acc, np.ldexp(1.0, -s))
    return _sat_f(y, op.p("c_zp"), op.p("c_signed")).reshape(op.out.shape)


def gap_fast(op: Op, x: np.ndarray) -> np.ndarray:
    acc = _nhwc(op, x).astype(np.float64).sum(axis=(1, 2), keepdims=True) - op.p("x_zp") * op.p("H") * op.p("W")
    y = _rq_f64(acc, np.ldexp(float(op.p("M0")), -op.p("s")))
    return _sat_f(y, op.p("y_zp"), op.p("y_signed"))


FAST = dict(DEFINITIONS)
FAST.update({Kind.CONV: conv_fast, Kind.MATMUL: matmul_fast, Kind.ADD: add_fast, Kind.GAP: gap_fast})


# -------------------------------------------------------------------------------------------------- evaluation

@dataclass
class Evaluation:
    """All tensors of one evaluation: ``tensors[0]`` is the input, ``tensors[i + 1]`` the output of operator i,
    each in its committed layout."""

    graph: Graph
    tensors: list[np.ndarray]
    seconds: float

    @property
    def output(self) -> np.ndarray:
        return self.tensors[-1]

    def top1(self) -> list[int]:
        """Arg-max class per batch row of the output (first index on ties)."""
        out = self.output.reshape(self.output.shape[0], -1)
        return [int(i) for i in np.argmax(out, axis=1)]


def check_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Validate and return the input as float32 C-contiguous. Raises InputError naming what is wrong."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise InputError(f"input must be float32, got {x.dtype}")
    if tuple(x.shape) != tuple(graph.input.shape):
        if x.ndim == len(graph.input.shape) - 1 and tuple(x.shape) == tuple(graph.input.shape[1:]):
            x = x[None]
        else:
            raise InputError(f"input shape {x.shape} does not match the model's {graph.input.shape}")
    if not np.isfinite(x).all():
        raise InputError("input contains NaN or infinite values")
    return np.ascontiguousarray(x)


def evaluate(graph: Graph, x: np.ndarray, kernels: dict | None = None) -> Evaluation:
    """Evaluate ``graph`` on ``x`` (float32, the model's input shape). Returns every intermediate tensor.

    ``kernels=None`` uses the fastest evaluator: the graph compiled to onnxruntime integer/IEEE operators
    (`offchain.inference.ort`), or FAST if the graph is not compilable; pass FAST or DEFINITIONS to choose.
    All give the same bytes. Raises InputError."""
    if kernels is None:
        from .ort import NotCompilable, OrtEvaluator

        ort_eval = graph.__dict__.get("_ort")
        if ort_eval is None:
            try:
                ort_eval = OrtEvaluator(graph)
            except NotCompilable:
                ort_eval = False
            graph.__dict__["_ort"] = ort_eval
        if ort_eval:
            return ort_eval(x)
    x = check_input(graph, x)
    kern = FAST if kernels is None else kernels
    t0 = time.perf_counter()
    tensors: list[np.ndarray] = [x]
    for op in graph.ops:
        args = [tensors[r] for r in op.inputs]
        if op.const is not None:
            args.append(op.const)
        tensors.append(kern[op.kind](op, *args))
    return Evaluation(graph, tensors, time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------ preprocessing

PREPROCESSING = {
    "torch": (np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)),
}


def preprocess_image(path: str | Path, size: int = 224, mode: str = "torch") -> np.ndarray:
    """ImageNet preprocessing (data MANIFEST): RGB, shorter side resized to 256 (bilinear, Pillow), centre crop
    ``size``, NCHW float32, then ``(x / 255 - mean) / std`` (``torch``) or ``x / 127.5 - 1`` (``tf``).

    Returns float32 [1, 3, size, size]. Raises InputError if the file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path).convert("RGB")
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"cannot read image {path}: {e}") from e
    short = round(size * 256 / 224)
    w, h = img.size
    r = short / min(w, h)
    img = img.resize((max(short, round(w * r)), max(short, round(h * r))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    if mode == "torch":
        mean, std = PREPROCESSING["torch"]
        x = (x - mean) / std
    elif mode == "tf":
        x = x * np.float32(255.0 / 127.5) - np.float32(1.0)
    else:
        raise InputError(f"unknown preprocessing {mode!r} (torch, tf)")
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32))


def load_input(path: str | Path, graph: Graph) -> np.ndarray:
    """An input for ``graph`` from a file: ``.npy`` is taken as the input tensor as is, anything else is read as
    an image and preprocessed (ImageNet ``torch`` steps) to the model's input size."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"no such input file: {p}")
    if p.suffix.lower() == ".npy":
        try:
            return check_input(graph, np.load(p, allow_pickle=False))
        except ValueError as e:
            raise InputError(f"cannot load {p}: {e}") from e
    return check_input(graph, preprocess_image(p, size=graph.input.shape[-1]))
