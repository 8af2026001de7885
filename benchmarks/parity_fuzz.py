"""Differential fuzzer: random small QOperator graphs of every supported operator and layout, each lowered by the
loader and evaluated by DEFINITIONS and every other evaluator `make_evaluator` offers (FAST, the onnxruntime-compiled
``ort`` and ``native`` when they compile the graph, the ``auto`` choice) and by the Solidity one-step (`contracts/inference/OneStep.sol` on anvil, many `element` calls per JSON-RPC batch),
compared element by element; every operator's output is also compared with `logical_reference`, an independent
node-by-node computation of the ONNX model in its logical (NCHW) layout with the canonical arithmetic, the oracle
of layouts (committed NHWC activations, constants, reshapes, Quantize after Dequantize).

    .venv/bin/python benchmarks/parity_fuzz.py --seed 1 --per-kind 100000 [--json] [--rpc-url URL]
    .venv/bin/python benchmarks/parity_fuzz.py --gas [--mobilenet]    # one-step gas: measured vs cost model
    .venv/bin/python benchmarks/parity_fuzz.py --chunks --seed 1 --per-kind 10000   # phase 3: chunk parity

Graphs cover: Quantize (ties at power-of-two scales, int8/uint8, ``output_dtype``), grouped/depthwise/pointwise
convolutions (strides, padding, dilation, saturation), residual and constant ADDs (constants of the activation's
4-D shape, broadcasts over 2-D), GAP (NHWC and NCHW inputs), Reshape/Flatten aliases, MATMUL, Dequantize and
Quantize after Dequantize. Prints one row per kind: Python comparisons (whole tensors, DEFINITIONS against each
other evaluator), Solidity comparisons, logical-reference comparisons, and the mismatches of each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onnx import TensorProto  # noqa: E402

from offchain.common.hashing import keccak  # noqa: E402
from offchain.inference.definitions import DEFINITIONS  # noqa: E402
from offchain.inference.evaluators import evaluate, make_evaluator  # noqa: E402
from offchain.inference.graph import Kind  # noqa: E402
from offchain.inference.limits import N_INPUTS  # noqa: E402
from offchain.inference.loader import lower  # noqa: E402
from offchain.inference.ort import NotCompilable  # noqa: E402
from offchain.inference.trace import Trace  # noqa: E402
from tests.synth import Builder  # noqa: E402

SELECTOR = keccak(b"element(bytes,bytes32[],uint256,(bytes32[],bytes32[])[])")[:4]
ELEMENT_TYPES = ["bytes", "bytes32[]", "uint256", "(bytes32[],bytes32[])[]"]


# ------------------------------------------------------------------------------------------------ random graphs
def _zp(rng, signed):
    return np.int8(rng.integers(-30, 30)) if signed else np.uint8(rng.integers(0, 256))


def _scale(rng):
    return float(2.0 ** -int(rng.integers(2, 7))) if rng.random() < 0.4 else float(rng.uniform(0.005, 0.1))


def random_model(rng, focus: str | None = None) -> tuple:
    """A random chain of 3-9 operators on a small input; returns (model, input shape, input scale). ``focus`` (a
    kind's name): a wide, batched graph rich in that kind (GAP, MATMUL, else ADDs), for the kinds behind."""
    if focus is not None:
        return _focused(rng, focus)
    C, H, W = int(rng.integers(1, 17)), int(rng.integers(1, 7)), int(rng.integers(1, 7))
    b = Builder((1, C, H, W))
    xs = _scale(rng)
    signed = bool(rng.random() < 0.5)
    if rng.random() < 0.3:  # opset 21 output_dtype, no zero point
        b.quantize(xs, None, output_dtype=TensorProto.INT8 if signed else TensorProto.UINT8)
    else:
        b.quantize(xs, _zp(rng, signed))
    flat = False
    for _ in range(int(rng.integers(2, 8))):
        name, shape, s, z = b.cur
        sg = z.dtype == np.int8
        r = rng.random()
        if not flat and r < 0.35:
            N, C, H, W = shape
            G = int(rng.choice([g for g in (1, 2, C) if C % g == 0]))
            Co = G * int(rng.integers(1, 4)) if G < C or rng.random() < 0.5 else C
            KH, KW = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            st = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
            dl = [int(rng.integers(1, 3)), int(rng.integers(1, 3))]
            pd = [int(rng.integers(0, 3)) for _ in range(4)]
            if (H + pd[0] + pd[2] - dl[0] * (KH - 1) - 1) < 0 or (W + pd[1] + pd[3] - dl[1] * (KW - 1) - 1) < 0:
                continue
            wdt = np.int8 if rng.random() < 0.8 else np.uint8
            w = rng.integers(-128, 128, (Co, C // G, KH, KW)).astype(np.int8) if wdt == np.int8 else \
                rng.integers(0, 256, (Co, C // G, KH, KW)).astype(np.uint8)
            wzp = np.zeros(Co, wdt) if wdt == np.int8 and rng.random() < 0.8 else \
                rng.integers(0, 30, Co).astype(wdt)
            ws = rng.uniform(0.002, 0.02, Co).astype(np.float32)
            taps = KH * KW * C // G
            ys = float(s) * float(ws.mean()) * 60 * np.sqrt(taps) * float(rng.uniform(0.2, 3))
            bias = rng.integers(-2000, 2000, Co).astype(np.int32) if rng.random() < 0.8 else None
            b.keep.append(b.cur)
            b.conv(w, ws, wzp, bias, ys, _zp(rng, sg), group=G, strides=st, pads=pd, dilations=dl)
        elif r < 0.5:  # ADD: residual partner of the same shape, else a constant of the activation's shape
            partners = [k for k in b.keep if k[1] == shape and k[0] != name]
            ys = float(s) * float(rng.uniform(0.5, 2.5))
            if partners and rng.random() < 0.6:
                b.add(partners[int(rng.integers(len(partners)))], ys, _zp(rng, sg))
            else:
                bsg = sg if rng.random() < 0.8 else not sg  # mixed signedness: onnxruntime refuses the model
                cshape = shape if not flat or rng.random() < 0.5 else shape[-1:]
                cst = rng.integers(-128, 128, cshape).astype(np.int8) if bsg else \
                    rng.integers(0, 256, cshape).astype(np.uint8)
                b.keep.append(b.cur)
                b.add_const(cst, _scale(rng), _zp(rng, bsg), ys, _zp(rng, sg))
        elif not flat and r < 0.6:
            b.gap(float(s) * float(rng.uniform(0.3, 1.5)), _zp(rng, sg))
            if rng.random() < 0.7:
                b.reshape((shape[0], shape[1]))
                flat = True
        elif flat and r < 0.75:
            M, K = shape
            n = int(rng.integers(1, 49))
            bw = rng.integers(-128, 128, (K, n)).astype(np.int8)
            bs = rng.uniform(0.002, 0.02, n).astype(np.float32)
            b.matmul(bw, bs, np.zeros(n, np.int8), float(s) * float(bs.mean()) * 40 * np.sqrt(K), _zp(rng, sg))
        elif not flat and r < 0.85:  # Quantize after Dequantize
            b.dequantize()
            nsg = rng.random() < 0.5
            b.quantize(_scale(rng), _zp(rng, nsg))
        elif not flat and r < 0.92 and shape[2] * shape[3] > 1:  # order-keeping reshape: [N,C,H,W] -> [N,C,HW,1]
            b.keep.append(b.cur)
            b.reshape((shape[0], shape[1], shape[2] * shape[3], 1))
        elif flat:
            b.reshape((shape[0], shape[1], 1, 1))
            flat = False
    return b.model(), b.in_shape, xs


def _focused(rng, focus: str) -> tuple:
    N, C, H, W = int(rng.integers(1, 4)), int(rng.integers(16, 129)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
    b = Builder((N, C, H, W))
    xs = _scale(rng)
    sg = bool(rng.random() < 0.5)
    b.quantize(xs, _zp(rng, sg))
    if focus not in ("GAP", "MATMUL"):  # ADD and the rest: a constant of the activation's shape, a residual
        name, shape, s, z = b.cur
        b.keep.append(b.cur)
        b.add_const(rng.integers(-128, 128, shape).astype(np.int8) if sg else
                    rng.integers(0, 256, shape).astype(np.uint8), _scale(rng), _zp(rng, sg),
                    float(s) * float(rng.uniform(0.5, 2.5)), _zp(rng, sg))
        b.add(b.keep[0], float(s) * float(rng.uniform(0.5, 2.5)), _zp(rng, sg))
        return b.model(), b.in_shape, xs
    for _ in range(int(rng.integers(1, 4)) if focus == "GAP" else 1):
        name, shape, s, z = b.cur
        if rng.random() < 0.6:  # a pointwise conv first: its output is committed NCHW when only the GAP reads it
            Co = int(rng.integers(16, 129))
            ws = rng.uniform(0.002, 0.02, Co).astype(np.float32)
            b.conv(rng.integers(-128, 128, (Co, shape[1], 1, 1)).astype(np.int8), ws, np.zeros(Co, np.int8),
                   rng.integers(-2000, 2000, Co).astype(np.int32), float(s) * float(ws.mean()) * 60 *
                   np.sqrt(shape[1]) * float(rng.uniform(0.2, 3)), _zp(rng, sg))
        b.gap(float(b.cur[2]) * float(rng.uniform(0.3, 1.5)), _zp(rng, sg))
    name, shape, s, z = b.cur
    b.reshape((shape[0], shape[1]))
    for _ in range(int(rng.integers(1, 4)) if focus == "MATMUL" else 1):
        name, (M, K), s, z = b.cur
        n = int(rng.integers(16, 257))
        bs = rng.uniform(0.002, 0.02, n).astype(np.float32)
        b.matmul(rng.integers(-128, 128, (K, n)).astype(np.int8), bs, np.zeros(n, np.int8),
                 float(s) * float(bs.mean()) * 40 * np.sqrt(K) * float(rng.uniform(0.3, 2)), _zp(rng, sg))
    return b.model(), b.in_shape, xs


def random_input(rng, shape, xs) -> np.ndarray:
    """Normal values, a third of them exact rounding ties of the input scale, a few huge (saturation)."""
    x = rng.normal(0, 60 * xs, shape).astype(np.float32)
    ties = ((rng.integers(-200, 200, shape) + 0.5) * xs).astype(np.float32)
    x = np.where(rng.random(shape) < 0.33, ties, x)
    return np.where(rng.random(shape) < 0.05, np.float32(1e4) * np.sign(x), x).astype(np.float32)


# ------------------------------------------------------------------------------------------------ Solidity
class OneStepCaller:
    """Batched `OneStep.element` eth_calls on a JSON-RPC node (anvil)."""

    def __init__(self, url: str, address: str, batch: int = 400):
        self.url, self.address, self.batch = url, address, batch

    def values(self, calldatas: list[bytes]) -> list[int]:
        """Each call's returned value (-1 for a revert), in order."""
        out = []
        for i in range(0, len(calldatas), self.batch):
            out += self._batch(calldatas[i:i + self.batch])
        return out

    def _batch(self, calldatas: list[bytes]) -> list[int]:
        reqs = [{"jsonrpc": "2.0", "id": k, "method": "eth_call",
                 "params": [{"to": self.address, "data": "0x" + d.hex(), "gas": hex(30_000_000)}, "latest"]}
                for k, d in enumerate(calldatas)]
        req = urllib.request.Request(self.url, json.dumps(reqs).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            res = json.loads(r.read())
        if not isinstance(res, list):  # the node refused the batch (too large): halve it
            if len(calldatas) == 1:
                raise RuntimeError(f"eth_call refused: {res}")
            h = len(calldatas) // 2
            return self._batch(calldatas[:h]) + self._batch(calldatas[h:])
        return [int(x["result"], 16) if "result" in x else -1 for x in sorted(res, key=lambda x: x["id"])]


def _w(n: int) -> bytes:
    return n.to_bytes(32, "big")


def _arr(words: list[bytes]) -> bytes:
    return _w(len(words)) + b"".join(words)


def encode_element(desc: bytes, roots: list[bytes], e: int, openings: list[tuple]) -> bytes:
    """``OneStep.element(desc, roots, e, openings)`` calldata, ABI-encoded by hand (the same bytes as eth_abi's
    encoding of `ELEMENT_TYPES`, ~50x faster; `tests/test_parity.py` compares the two)."""
    d = _w(len(desc)) + desc + bytes(-len(desc) % 32)
    r = _arr(roots)
    tuples = []
    for leaves, proof in openings:
        a = _arr(leaves)
        tuples.append(_w(64) + _w(64 + len(a)) + a + _arr(proof))
    offs, at = [], 32 * len(tuples)
    for t in tuples:
        offs.append(_w(at))
        at += len(t)
    o = _w(len(tuples)) + b"".join(offs) + b"".join(tuples)
    head = _w(128) + _w(128 + len(d)) + _w(e) + _w(128 + len(d) + len(r))
    return SELECTOR + head + d + r + o


def calldata(trace: Trace, j: int, e: int, desc: bytes | None = None) -> bytes:
    """The `OneStep.element` calldata for element ``e`` of operator ``j`` of ``trace`` (``desc``: its descriptor,
    if already encoded)."""
    roots, _, openings = trace.step_openings(j, e)
    desc = trace.graph.ops[j].descriptor() if desc is None else desc
    return encode_element(desc, roots, e, [o.as_tuple() for o in openings])


def encoding(t: np.ndarray) -> np.ndarray:
    """Each element's encoding as OneStep returns it (byte of int8/uint8, bits of float32), flat."""
    flat = np.ascontiguousarray(t).reshape(-1)
    return (flat.view(np.uint32) if t.dtype == np.float32 else flat.view(np.uint8)).astype(np.int64)


# ------------------------------------------------------------------------------------------------ the run
EVALUATORS = ("fast", "ort", "native", "auto")


def evaluators(graph) -> dict:
    """Every evaluator `make_evaluator` offers for ``graph`` but DEFINITIONS (those that compile it); one that
    fails otherwise on a graph the loader accepts is kept as the exception (a mismatch on every element)."""
    out = {}
    for name in EVALUATORS:
        try:
            out[name] = make_evaluator(graph, name)
        except NotCompilable:
            pass
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            out[name] = e
    return out


def run(seed: int, per_kind: int, caller: OneStepCaller, max_graphs: int = 100_000, cap: int = 2048,
        log=None) -> dict:
    """Fuzz until every kind has ``per_kind`` Solidity comparisons (or ``max_graphs`` graphs); returns the table."""
    rng = np.random.default_rng(seed)
    st = {k.name: defaultdict(int) for k in N_INPUTS}
    t0 = time.perf_counter()
    graphs = 0
    compiled: dict[str, int] = defaultdict(int)
    bad_by: dict[str, int] = defaultdict(int)
    examples = []
    while graphs < max_graphs and min(st[k.name]["solidity"] for k in N_INPUTS) < per_kind:
        short = min((st[k.name]["solidity"], k.name) for k in N_INPUTS)
        focus = short[1] if short[0] < per_kind and graphs % 4 != 0 else None
        model, shape, xs = random_model(rng, focus)
        graph = lower(model)
        graphs += 1
        x = random_input(rng, shape, xs)
        ref = evaluate(graph, x, DEFINITIONS)
        evs = evaluators(graph)
        for name in evs:
            compiled[name] += 1
        for name, ev in evs.items():
            try:
                if isinstance(ev, Exception):
                    raise ev
                tensors = ev(x).tensors
            except Exception as e:  # noqa: BLE001  # an evaluator that fails on a graph the loader accepts: every element wrong
                tensors = [None] * len(ref.tensors)
                error = f"{type(e).__name__}: {str(e)[:120]}"
            for j, op in enumerate(graph.ops):
                s = st[op.kind.name]
                a, o = ref.tensors[j + 1], tensors[j + 1]
                bad = a.size if o is None or o.dtype != a.dtype or o.size != a.size else \
                    int((encoding(a) != encoding(o)).sum())
                s["python"] += a.size
                s["python_mismatch"] += bad
                if bad:
                    bad_by[name] += bad
                    if len(examples) < 8:
                        examples.append({"seed": seed, "graph": graphs, "op": j, "kind": op.kind.name,
                                         "where": name, **({"error": error} if o is None else {})})
        trace = Trace.of(ref)
        jobs = []
        for j, op in enumerate(graph.ops):
            if st[op.kind.name]["solidity"] >= per_kind:
                continue
            n = op.out.numel
            es = np.arange(n) if n <= cap else rng.choice(n, cap, replace=False)
            es = list(es) + [n + int(rng.integers(0, 3))]  # past the end: the zero padding
            jobs += [(j, int(e)) for e in es]
        descs = {j: op.descriptor() for j, op in enumerate(graph.ops)}
        got = caller.values([calldata(trace, j, e, descs[j]) for j, e in jobs])
        for (j, e), v in zip(jobs, got):
            op = graph.ops[j]
            enc = encoding(ref.tensors[j + 1])
            want = int(enc[e]) if e < enc.size else 0
            s = st[op.kind.name]
            s["solidity"] += 1
            if v != want:
                s["solidity_mismatch"] += 1
                if len(examples) < 5:
                    examples.append({"seed": seed, "graph": graphs, "op": j, "kind": op.kind.name, "element": e,
                                     "where": "solidity", "got": v, "want": want})
        _model_oracle(model, graph, ref, x, st)
        if log and graphs % 200 == 0:
            log(f"{graphs} graphs, {time.perf_counter() - t0:.0f} s, solidity comparisons "
                f"{ {k.name: st[k.name]['solidity'] for k in N_INPUTS} }")
    return {"seed": seed, "graphs": graphs, "evaluated_graphs": dict(compiled),
            "python_mismatch_by_evaluator": dict(bad_by),
            "seconds": round(time.perf_counter() - t0, 1), "by_kind": {k: dict(v) for k, v in st.items()},
            "examples": examples}


def _conv_logical(x, w, pads, strides, dil, group):
    """Integer 2-D convolution in ONNX's logical NCHW layout: x [N,C,H,W] int64 deviations, w [Co,C/G,KH,KW]."""
    N, C, H, W = x.shape
    Co, Cg, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    OH = (H + pads[0] + pads[2] - dil[0] * (KH - 1) - 1) // strides[0] + 1
    OW = (W + pads[1] + pads[3] - dil[1] * (KW - 1) - 1) // strides[1] + 1
    out = np.zeros((N, Co, OH, OW), np.int64)
    og = Co // group
    for kh in range(KH):
        for kw in range(KW):
            v = xp[:, :, kh * dil[0]:kh * dil[0] + (OH - 1) * strides[0] + 1:strides[0],
                   kw * dil[1]:kw * dil[1] + (OW - 1) * strides[1] + 1:strides[1]]
            for g in range(group):
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", v[:, g * Cg:(g + 1) * Cg],
                                                         w[g * og:(g + 1) * og, :, kh, kw])
    return out


def logical_reference(model, x) -> dict[str, np.ndarray]:
    """Every node output of ``model`` on ``x``, computed node by node in ONNX's logical layout (no committed layout,
    no loader) with the canonical arithmetic of `offchain.inference.graph`: an independent oracle of layouts."""
    from fractions import Fraction

    from onnx import numpy_helper

    from offchain.inference.definitions import rq_f32, saturate
    from offchain.inference.folding import attrs
    from offchain.inference.graph import f32_multiplier, fixed_point

    v = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    v["input"] = x
    fr = lambda a: Fraction(float(np.float32(a)))  # noqa: E731
    sg = lambda z: int(z.dtype == np.int8)  # noqa: E731
    for nd in model.graph.node:
        i = [v[n] for n in nd.input]
        t, a = nd.op_type, attrs(nd)
        if t == "QuantizeLinear":
            z = i[2] if len(i) > 2 else np.zeros((), np.int8 if a.get("output_dtype") == TensorProto.INT8 else np.uint8)
            q = np.rint(i[0].astype(np.float32) / np.float32(i[1])).astype(np.float64)  # one binary32 division
            q = np.clip(q, -2.0 ** 31, 2.0 ** 31).astype(np.int64)
            y = saturate(q + int(z), sg(z))
        elif t == "DequantizeLinear":
            y = ((i[0].astype(np.int32) - int(i[2])).astype(np.float32) * np.float32(i[1])).astype(np.float32)
        elif t == "QLinearConv":
            xq, xs, xz, w, ws, wz, ys, yz = i[:8]
            Co = w.shape[0]
            wd = w.astype(np.int64) - np.broadcast_to(wz.astype(np.int64).reshape(-1), (Co,))[:, None, None, None]
            acc = _conv_logical(xq.astype(np.int64) - int(xz), wd, a.get("pads", [0] * 4), a.get("strides", [1, 1]),
                                a.get("dilations", [1, 1]), a.get("group", 1))
            if len(i) > 8:
                acc += i[8].astype(np.int64)[None, :, None, None]
            S = [f32_multiplier(xs, s_, ys, "") for s_ in np.broadcast_to(ws.reshape(-1), (Co,))]
            r = rq_f32(acc.transpose(0, 2, 3, 1), S).transpose(0, 3, 1, 2).astype(np.int64)
            y = saturate(int(yz) + r, sg(yz))
        elif t == "QLinearAdd":
            from offchain.inference.definitions import add_fixed, fma_f32

            A, sa, za, B, sb, zb, sc, zc = i
            ra, rb = np.float32(np.float32(sa) / np.float32(sc)), np.float32(np.float32(sb) / np.float32(sc))
            consts = {t.name for t in model.graph.initializer}
            if nd.input[0] in consts and nd.input[3] not in consts:  # the loader makes the constant B (swaps)
                A, B, ra, rb, za, zb = B, A, rb, ra, zb, za
                fixed = add_fixed(int(zb), int(za), int(zc), rb, ra)
            else:
                fixed = add_fixed(int(za), int(zb), int(zc), ra, rb)
            Bb = np.broadcast_to(B, A.shape).astype(np.int64)
            r = fma_f32(A.astype(np.int64), ra, fma_f32(Bb, rb, fixed))
            y = saturate(np.rint(r).astype(np.int64), sg(zc))
        elif t == "QLinearGlobalAveragePool":
            X, xs, xz, ys, yz = i
            H, W = X.shape[2:]
            m0, s = fixed_point(fr(xs) / (fr(ys) * H * W))
            acc = (X.astype(np.int64) - int(xz)).sum(axis=(2, 3), keepdims=True)
            y = saturate(int(yz) + ((acc * m0 + (1 << (s - 1))) >> s), sg(yz))
        elif t == "QLinearMatMul":
            A, sa, za, B, sb, zb, sy, zy = i
            n = B.shape[1]
            acc = (A.astype(np.int64) - int(za)) @ (B.astype(np.int64) - zb.astype(np.int64).reshape(-1))
            S = [f32_multiplier(sa, s_, sy, "") for s_ in np.broadcast_to(sb.reshape(-1), (n,))]
            y = saturate(int(zy) + rq_f32(acc, S).astype(np.int64), sg(zy))
        elif t == "Reshape":
            y = i[0].reshape([int(d) for d in i[1]])
        else:
            raise ValueError(f"no logical reference for {t}")
        v[nd.output[0]] = y
    return v


def _logical(op, t: np.ndarray, shape) -> np.ndarray:
    """A committed tensor in ONNX's logical layout and ``shape`` (the node's output shape)."""
    if t.ndim == 4 and not (op.kind == Kind.CONV and op.p("out_nchw")):
        t = t.transpose(0, 3, 1, 2)
    return t.reshape(shape)


def _model_oracle(model, graph, ref, x, st) -> None:
    """Every operator's output against `logical_reference` (exact): counts under ``model`` / ``model_mismatch``."""
    want = logical_reference(model, x)
    outs = {n.name: n.output[0] for n in model.graph.node}
    for j, op in enumerate(graph.ops):
        w = want[outs[op.name]]
        got = _logical(op, ref.tensors[j + 1], w.shape)
        s = st[op.kind.name]
        s["model"] += w.size
        s["model_mismatch"] += int((encoding(got) != encoding(w.astype(got.dtype))).sum())


# ------------------------------------------------------------------------------------------------ gas table
def _conv_case(rng, Ci, K, G, H, Co=None):
    Co = Co or G
    b = Builder((1, Ci, H, H)).quantize(0.05, np.uint8(128))
    return b.conv(rng.integers(-128, 128, (Co, Ci // G, K, K)).astype(np.int8), np.full(Co, 0.01, np.float32),
                  np.zeros(Co, np.int8), None, 1.0, np.uint8(128), group=G, pads=[K // 2] * 4)


def gas_cases(rng):
    """(label, builder, kind) of the shapes whose one-step gas fits the cost model of `offchain.inference.limits`."""
    out = [(f"conv 1x1 Cig={c}", _conv_case(rng, c, 1, 1, 3), Kind.CONV) for c in (256, 1024, 2048)]
    out += [(f"conv 3x3 Cig={c}", _conv_case(rng, c, 3, 1, 4), Kind.CONV) for c in (64, 128, 256)]
    out += [(f"depthwise {k}x{k}", _conv_case(rng, 8, k, 8, k + 2), Kind.CONV) for k in (3, 5, 7, 9)]
    out += [("depthwise 3x3 112x112x32", _conv_case(rng, 32, 3, 32, 112), Kind.CONV),
            ("grouped 3x3 56x56 Cig=8", _conv_case(rng, 16, 3, 2, 56, 32), Kind.CONV)]
    for K in (256, 1024, 2048):
        b = Builder((1, K, 1, 1)).quantize(0.05, np.uint8(128)).reshape((1, K))
        out.append((f"matmul K={K}", b.matmul(rng.integers(-128, 128, (K, 64)).astype(np.int8),
                                               np.full(64, 0.01, np.float32), np.zeros(64, np.int8), 1.0,
                                               np.uint8(128)), Kind.MATMUL))
    for H in (7, 14, 28):
        out.append((f"gap nchw {H}x{H}", _conv_case(rng, 4, 1, 1, H, 4).gap(0.05, np.uint8(128)), Kind.GAP))
    for H in (4, 7, 10):
        out.append((f"gap nhwc {H}x{H} C=64", Builder((1, 64, H, H)).quantize(0.05, np.uint8(128)).gap(
            0.05, np.uint8(128)), Kind.GAP))
    for kind in (Kind.QUANTIZE, Kind.ADD, Kind.DEQUANTIZE):
        b = Builder((1, 64, 32, 32)).quantize(0.05, np.uint8(128))
        b.keep.append(b.cur)
        out.append((f"{kind.name.lower()} 64x32x32", b.add(b.keep[0], 0.1, np.uint8(3)), kind))
    return out


def gas_table(chain, contract, mobilenet: bool = False) -> list[dict]:
    """Measured `OneStep.element` gas (eth_estimateGas: transaction gas, calldata included) and calldata of the
    worst of three elements per case, against `offchain.inference.limits.one_step_cost`."""
    from offchain.inference.limits import one_step_cost

    rng = np.random.default_rng(0)
    traces = []
    for label, b, kind in gas_cases(rng):
        g = lower(b.model(), check_limits=False)
        t = Trace.of(evaluate(g, rng.normal(0, 1, g.input.shape).astype(np.float32), "fast"))
        traces.append((label, t, [op.kind for op in g.ops].index(kind)))
    if mobilenet:
        from offchain.inference.pipeline import load_input, load_model, run as run_model

        g = load_model(ROOT / "offchain" / "assets" / "mobilenetv2-12-int8.onnx")
        t = run_model(g, load_input(ROOT / "offchain" / "assets" / "bald_eagle.jpeg", g))
        traces += [(f"mobilenetv2 op {j} {op.kind.name}", t, j) for j, op in enumerate(g.ops)]
    rows = []
    for label, t, j in traces:
        op = t.graph.ops[j]
        n = op.out.numel
        gas, size = 0, 0
        for e in sorted({0, n // 2, n - 1}):
            d = calldata(t, j, e)
            gas = max(gas, chain.w3.eth.estimate_gas({"to": contract.address, "data": "0x" + d.hex()}))
            size = max(size, len(d))
        mg, mc = one_step_cost(op.kind, op.named(), len(op.inputs))
        rows.append({"case": label, "gas": gas, "model_gas": mg, "calldata": size, "model_calldata": mc})
    return rows


def run_chunks(seed: int, per_kind: int, caller: OneStepCaller, log=None) -> dict:
    """Phase 3 parity: random models with long reductions (`tests/reduction_models.py`, seeded shapes and
    weights), random elements, every chunk: `offchain.inference.reduction.chunk_sum` against `OneStep.chunk`
    (batched eth_calls), until ``per_kind`` comparisons per kind (CONV, MATMUL, GAP)."""
    from eth_abi import encode as abi_encode

    from offchain.inference import reduction as rd
    from tests.reduction_models import conv_model, gap_nchw_model, gap_nhwc_model, make_x, matmul_model

    sel = keccak(b"chunk(bytes,bytes32[],uint256,uint256,(bytes32[],bytes32[])[])")[:4]
    types = ["bytes", "bytes32[]", "uint256", "uint256", "(bytes32[],bytes32[])[]"]
    rng = np.random.default_rng(seed)
    count: dict[str, int] = defaultdict(int)
    bad: dict[str, int] = defaultdict(int)
    t0, graphs = time.time(), 0
    makers = [conv_model, gap_nhwc_model, gap_nchw_model, lambda s: matmul_model(s, int(rng.integers(900, 4000)))]
    while min(count.get(k, 0) for k in ("CONV", "MATMUL", "GAP")) < per_kind:
        s = int(rng.integers(1 << 30))
        model, shape = makers[graphs % len(makers)](s)
        graphs += 1
        graph = lower(model)
        trace = Trace.of(evaluate(graph, make_x(s, shape), DEFINITIONS))
        for j, op in enumerate(graph.ops):
            n, _ = rd.op_chunking(op)
            if n < 2 or count[op.kind.name] >= per_kind:
                continue
            desc, x = op.descriptor(), trace.tensors[op.inputs[0]]
            jobs = [(int(e), i) for e in rng.integers(0, op.out.numel, 8) for i in range(n)]
            datas = []
            for e, i in jobs:
                roots, _, opens = rd.chunk_openings(trace, j, e, i)
                datas.append(sel + abi_encode(types, [desc, roots, e, i, [o.as_tuple() for o in opens]]))
            got = [v - (1 << 256) if v >> 255 else v for v in caller.values(datas)]
            want = [rd.chunk_sum(op, x, e, i) for e, i in jobs]
            count[op.kind.name] += len(jobs)
            bad[op.kind.name] += sum(a != b for a, b in zip(got, want))
        if log:
            log(f"{graphs} graphs: {dict(count)}")
    return {"seed": seed, "graphs": graphs, "seconds": round(time.time() - t0, 1),
            "by_kind": {k: {"solidity": count[k], "solidity_mismatch": bad[k]} for k in sorted(count)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-kind", type=int, default=100_000)
    ap.add_argument("--max-graphs", type=int, default=100_000)
    ap.add_argument("--rpc-url", default=None, help="a running anvil (default: start one)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--gas", action="store_true", help="instead: measured one-step gas against the cost model")
    ap.add_argument("--mobilenet", action="store_true", help="with --gas: every MobileNetV2 operator too")
    ap.add_argument("--chunks", action="store_true", help="instead: phase-3 chunk sums, Python against OneStep")
    a = ap.parse_args(argv)
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)
    from protocol.chain.anvil import start_anvil
    from protocol.chain.connection import Chain

    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` stops the anvil we started
    proc = None
    url = a.rpc_url
    if url is None:
        proc, url = start_anvil(None, "--gas-limit", "100000000", "--code-size-limit", "100000")
    try:
        chain = Chain(url)
        c, _ = chain.deploy("OneStep")
        if a.gas:
            rows = gas_table(chain, c, a.mobilenet)
            if a.json:
                print(json.dumps(rows))
            else:
                print(f"{'case':<34} {'gas':>9} {'model':>9} {'calldata':>9} {'model':>7}")
                for r in rows:
                    print(f"{r['case']:<34} {r['gas']:>9} {r['model_gas']:>9} {r['calldata']:>9} "
                          f"{r['model_calldata']:>7}")
                print(f"model/measured gas: min {min(r['model_gas'] / r['gas'] for r in rows):.2f}, max "
                      f"{max(r['model_gas'] / r['gas'] for r in rows):.2f}")
            return 0
        if a.chunks:
            res = run_chunks(a.seed, a.per_kind, OneStepCaller(url, c.address),
                             log=None if a.json else lambda m: print(m, file=sys.stderr))
            print(json.dumps(res) if a.json else "\n".join(
                f"{k:<8} chunk comparisons {v['solidity']:>9}  mismatches {v['solidity_mismatch']}"
                for k, v in res["by_kind"].items()))
            return int(any(v["solidity_mismatch"] for v in res["by_kind"].values()))
        res = run(a.seed, a.per_kind, OneStepCaller(url, c.address), a.max_graphs,
                  log=None if a.json else lambda m: print(m, file=sys.stderr))
    finally:
        if proc is not None:
            proc.terminate()
    if a.json:
        print(json.dumps(res))
        return 0
    print(f"seed {res['seed']}: {res['graphs']} graphs, {res['seconds']} s; graphs per evaluator "
          f"{res['evaluated_graphs']}")
    print(f"{'kind':<11} {'python cmp':>11} {'mismatch':>9} {'solidity cmp':>13} {'mismatch':>9} {'model cmp':>10} "
          f"{'mismatch':>9}")
    for k, v in res["by_kind"].items():
        print(f"{k:<11} {v.get('python', 0):>11} {v.get('python_mismatch', 0):>9} {v.get('solidity', 0):>13} "
              f"{v.get('solidity_mismatch', 0):>9} {v.get('model', 0):>10} {v.get('model_mismatch', 0):>9}")
    print("python mismatches by evaluator:", res["python_mismatch_by_evaluator"] or "none")
    for ex in res["examples"]:
        print("mismatch:", ex)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
