"""Every model of the data bundle through pinpoint: the canonical operators of its int8 version and the top-1 of the
float32 model, of the int8 model under onnxruntime and of the canonical graph, on the bundle's images; agreement
of the canonical graph with onnxruntime (top-1 and bit-identical outputs). The float32 models are quantized at run
time (`tests.bundle.int8_model`: onnxruntime's quantize_static on the first 16 images of the model's folder, cached
in ``$PINPOINT_MODEL_CACHE`` or ~/.cache/pinpoint/models; never committed).

    .venv/bin/python benchmarks/models.py [--format qoperator|qdq] [--activations uint8|int8] [--per-channel]
                                          [--limit N] [--models a,b] [--json]
    .venv/bin/python benchmarks/models.py --rounding [--limit N]     # ADD / GAP rounding against onnxruntime

``--rounding`` measures, operator by operator on the same input tensors, how many output elements of every ADD
(com.microsoft QLinearAdd) and GAP (QLinearGlobalAveragePool) of the QOperator models differ from onnxruntime's
kernel run alone on those inputs, for the rule "exact 24-bit multiplier, round half up" (ADD and GAP before
issue 9) and for the current canonical definition (`offchain.inference.fast.FAST`).

Images: 100 ImageNet photos, 200 CIFAR-10 images, 20 MNIST digits (those with a label in their name). A model whose
canonical graph breaks a descriptor rule is still measured (``check_limits=False``) and flagged.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.inference.graph import ModelError  # noqa: E402
import onnx  # noqa: E402

from offchain.inference.loader import load, lower  # noqa: E402
from offchain.inference.quantize import batches, label_of, labelled, model_input  # noqa: E402
from tests.bundle import MODELS, int8_model, run_graph  # noqa: E402


def _session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def measure(m, fmt: str, act: str, per_channel: bool, limit: int | None) -> dict:
    """The figures of one bundle model (see the module docstring)."""
    path = int8_model(m, fmt, per_channel, act)
    row: dict = {"model": m.name, "format": "int8 as given" if m.int8 else f"{fmt} {act}"}
    try:
        graph = load(path)
    except ModelError as e:
        row["refused"] = str(e)
        try:
            graph = lower(onnx.load(str(path)), check_limits=False)
        except ModelError:
            row["canonical"] = {}
            return row
    row["canonical"] = dict(Counter(op.kind.name for op in graph.ops))
    files = labelled(m.folder, limit)
    labels = [label_of(f) for f in files]
    name, dims = model_input(path)
    s8 = _session(path)
    s32 = None if m.int8 else _session(m.path)
    ours, ort8, ort32, same = [], [], [], 0
    for x, k in batches(files, dims, m.preprocess):
        y = np.asarray(run_graph(graph, x.reshape(graph.input.shape))[-1]).reshape(x.shape[0], -1)
        r = s8.run(None, {name: x})[0].reshape(x.shape[0], -1)
        ours += [int(i) for i in np.argmax(y, axis=1)[:k]]
        ort8 += [int(i) for i in np.argmax(r, axis=1)[:k]]
        same += sum(int(np.array_equal(y[i], r[i])) for i in range(k))
        if s32 is not None:
            f = s32.run(None, {name: x})[0].reshape(x.shape[0], -1)
            ort32 += [int(i) for i in np.argmax(f, axis=1)[:k]]
    n = len(files)
    acc = lambda p: sum(a == b for a, b in zip(p, labels)) / n  # noqa: E731
    row.update(n=n, top1_fp32=acc(ort32) if ort32 else None, top1_int8_ort=acc(ort8), top1_pinpoint=acc(ours),
               agreement=sum(a == b for a, b in zip(ours, ort8)) / n, bit_identical=same / n)
    return row


def _old_rule(acc_terms, c_zp, reals, signed):
    """sat(c_zp + floor((sum acc_i * M_i + 2^(s-1)) / 2^s)), M_i = rne(real_i * 2^s), s fixed by the largest."""
    from offchain.inference.graph import fixed_point, saturate

    _, sh = fixed_point(max(reals))
    tot = sum(np.asarray(a, np.int64) * round(r * 2 ** sh) for a, r in zip(acc_terms, reals))
    return saturate(c_zp + ((tot + (1 << (sh - 1))) >> sh), signed)


def rounding(m, limit: int | None, act: str = "uint8", per_channel: bool = False) -> dict:
    """Per-operator disagreement of ADD and GAP with onnxruntime (see the module docstring)."""
    from fractions import Fraction

    from onnx import numpy_helper

    from tests.bundle import kernels

    path = int8_model(m, "qoperator", per_channel, act)
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = {(n.name or n.output[0]): n for n in model.graph.node}
    graph = lower(model, check_limits=False)
    name, dims = model_input(path)
    fast = kernels()
    out = {"model": m.name, "ADD": [0, 0, 0], "GAP": [0, 0, 0]}   # elements, differing (old rule), differing (now)
    fr = lambda v: Fraction(float(np.float32(v)))  # noqa: E731
    for x, _ in batches(labelled(m.folder, limit), dims, m.preprocess):
        t = run_graph(graph, x.reshape(graph.input.shape))
        for j, op in enumerate(graph.ops):
            if op.kind.name not in ("ADD", "GAP"):
                continue
            node = nodes.get(op.name)
            if node is None or node.op_type not in ("QLinearAdd", "QLinearGlobalAveragePool"):
                continue   # a GAP fused from DequantizeLinear -> ReduceMean -> QuantizeLinear: end to end only
            v = [inits.get(i) for i in node.input]
            xs = [t[r] for r in op.inputs]
            if op.kind.name == "GAP":
                N, C, H, W = (op.p(k) for k in ("N", "C", "H", "W"))
                a = xs[0].reshape(N, C, H, W) if op.p("x_nchw") else xs[0].reshape(N, H, W, C).transpose(0, 3, 1, 2)
                feeds = {"x": np.ascontiguousarray(a)}
                args = ["x"] + list(node.input[1:])
                old = _old_rule([a.astype(np.int64).sum(axis=(2, 3)) - int(v[2]) * H * W], int(v[4]),
                                [fr(v[1]) / (fr(v[3]) * H * W)], int(v[4].dtype == np.int8)).reshape(-1)
            else:
                names = list(node.input)
                runtime = [k for k in (0, 3) if names[k] not in inits]
                feeds = {names[k]: _nchw(xs[i], op) for i, k in enumerate(runtime)}
                args = names
                A = feeds.get(names[0], inits.get(names[0]))
                B = feeds.get(names[3], inits.get(names[3]))
                old = _old_rule([A.astype(np.int64) - int(v[2]), B.astype(np.int64) - int(v[5])], int(v[7]),
                                [fr(v[1]) / fr(v[6]), fr(v[4]) / fr(v[6])], int(v[7].dtype == np.int8))
                old = np.broadcast_to(old, np.broadcast_shapes(A.shape, B.shape))
            sess_model = _single(node, args, feeds, inits, v[-1].dtype)
            ref = _session_bytes(sess_model).run(None, feeds)[0]
            now = np.asarray(fast[op.kind](op, *(xs + ([op.const] if op.const is not None else []))))
            ref_c = ref.transpose(0, 2, 3, 1).reshape(-1) if ref.ndim == 4 and not (
                op.kind.name == "GAP") else ref.reshape(-1)
            now_l = now.reshape(-1)
            old = np.asarray(old)
            old = (old.transpose(0, 2, 3, 1) if op.kind.name == "ADD" and old.ndim == 4 else old).reshape(-1)
            rec = out[op.kind.name]
            rec[0] += ref_c.size
            rec[1] += int((old != ref_c).sum())
            rec[2] += int((now_l != ref_c).sum())
    return out


def _nchw(v, op):
    """A committed ADD operand in ONNX's layout (4-D activations are committed NHWC)."""
    shape = op.out.shape
    if len(shape) == 4:
        N, H, W, C = shape
        return np.ascontiguousarray(v.reshape(N, H, W, C).transpose(0, 3, 1, 2))
    return v.reshape(shape)


def _single(node, args, feeds, inits, y_dtype):
    from onnx import helper, numpy_helper

    ins = [helper.make_tensor_value_info(k, onnx.TensorProto.UINT8 if a.dtype == np.uint8 else onnx.TensorProto.INT8,
                                         a.shape) for k, a in feeds.items()]
    used = [numpy_helper.from_array(inits[a], a) for a in args if a in inits and a not in feeds]
    n = helper.make_node(node.op_type, args, ["y"], domain=node.domain)
    n.attribute.extend(node.attribute)
    yt = onnx.TensorProto.UINT8 if y_dtype == np.uint8 else onnx.TensorProto.INT8
    g = helper.make_graph([n], "one", ins, [helper.make_tensor_value_info("y", yt, None)],
                          used)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def _session_bytes(model):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--format", default="qoperator", choices=["qoperator", "qdq"])
    ap.add_argument("--activations", default="uint8", choices=["uint8", "int8"])
    ap.add_argument("--per-channel", action="store_true")
    ap.add_argument("--limit", type=int, default=None, help="images per model (default: all)")
    ap.add_argument("--models", default=None, help="comma-separated names (default: all nine)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--rounding", action="store_true", help="ADD / GAP rounding against onnxruntime")
    a = ap.parse_args()
    chosen = [m for m in MODELS if a.models is None or m.name in a.models.split(",")]
    if a.rounding:
        print("| model | ADD elements | differ, round half up | differ, now | GAP elements | differ, round half up "
              "| differ, now |")
        print("|---|---|---|---|---|---|---|")
        for m in chosen:
            r = rounding(m, a.limit, a.activations, a.per_channel)
            if r["ADD"][0] + r["GAP"][0] == 0:
                continue
            print(f"| {m.name} | " + " | ".join(f"{r[k][0]} | {r[k][1]} | {r[k][2]}" for k in ("ADD", "GAP")) + " |")
        return
    rows = [measure(m, a.format, a.activations, a.per_channel, a.limit) for m in chosen]
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    print("| model | int8 | canonical operators | images | top-1 fp32 | top-1 int8 (onnxruntime) | top-1 pinpoint | "
          "agreement | bit-identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "n" not in r:
            print(f"| {r['model']} | {r['format']} | refused by the loader (below) | - | - | - | - | - | - |")
            continue
        ops = ", ".join(f"{k} {v}" for k, v in r["canonical"].items())
        flag = " (beyond the descriptor rules)" if "refused" in r else ""  # measured with check_limits=False
        print(f"| {r['model']} | {r['format']} | {ops}{flag} | {r['n']} | {pct(r['top1_fp32'])} | "
              f"{pct(r['top1_int8_ort'])} | {pct(r['top1_pinpoint'])} | {pct(r['agreement'])} | "
              f"{pct(r['bit_identical'])} |")
    for r in rows:
        if "refused" in r:
            print(f"\n{r['model']}: the loader refuses it: {r['refused']}")


if __name__ == "__main__":
    main()
