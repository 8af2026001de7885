"""The canonical graph and the evaluators: loader errors, requantization constants, fast path == definitions,
cross-evaluator consistency (threads, and an emulated AVX2-only CPU), commitments."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction

import numpy as np
import onnx
import pytest
from hypothesis import given, settings, strategies as st
from onnx import helper

from offchain.inference.definitions import DEFINITIONS
from offchain.inference.evaluators import NativeEvaluator, OrtEvaluator, evaluate, make_evaluator
from offchain.inference.fast import FAST
from offchain.inference.graph import ModelError, UnsupportedOperator, fixed_point
from offchain.inference.inputs import InputError, load_input
from offchain.inference.loader import load, lower
from offchain.inference.ort import NotCompilable
from offchain.inference.ort_probe import int8_kernels_exact
from offchain.inference.merkle import (build_tree, keccak, subtree_levels, subtree_root, subtree_siblings,
                                       verify_multi)
from tests.conftest import IMAGENET, MODEL, PHOTO, ROOT
from tests.synth import make_model

# -------------------------------------------------------------------------------------------- canonical graph


def test_mobilenet_lowers_to_the_canonical_operators(mobilenet):
    kinds = [op.kind.name for op in mobilenet.ops]
    assert mobilenet.n_ops == 67
    assert kinds.count("CONV") == 52 and kinds.count("ADD") == 11
    assert kinds[0] == "QUANTIZE" and kinds[-1] == "DEQUANTIZE" and kinds[-3:-1] == ["MATMUL", "ADD"]
    grouped = [op for op in mobilenet.ops if op.kind.name == "CONV" and op.p("G") > 1]
    assert grouped and all(op.p("G") == op.p("Ci") for op in grouped)  # depthwise


def test_unsupported_operator_is_named():
    m = make_model(seed=1)
    m.graph.node.insert(1, helper.make_node("Softsign", ["q0"], ["junk"], name="my_softsign"))
    m.graph.node[2].input[0] = "junk"
    with pytest.raises(UnsupportedOperator) as ei:
        lower(m)
    assert "Softsign" in str(ei.value) and "my_softsign" in str(ei.value)


def test_malformed_models_rejected(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot parse"):
        load(p)
    m = make_model(seed=1)
    m.graph.node[1].input[3] = "missing_weights"
    with pytest.raises(ModelError, match="undefined"):
        lower(m)
    m = make_model(seed=1)
    for t in m.graph.initializer:
        if t.name == "xs":
            t.CopyFrom(onnx.numpy_helper.from_array(np.float32(-1.0), "xs"))
    with pytest.raises(ModelError, match="positive"):
        lower(m)


def test_bad_inputs_rejected(mobilenet, tmp_path):
    x = np.zeros(mobilenet.input.shape, np.float32)
    with pytest.raises(InputError, match="shape"):
        evaluate(mobilenet, x[:, :, :100])
    with pytest.raises(InputError, match="float32"):
        evaluate(mobilenet, x.astype(np.float64))
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        evaluate(mobilenet, x)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="cannot read image"):
        load_input(tmp_path / "x.txt", mobilenet)


@given(st.fractions(min_value=Fraction(1, 10**9), max_value=Fraction(10**5)))
@settings(max_examples=300, deadline=None)
def test_fixed_point_multiplier_is_the_rounded_exact_rational(real):
    m0, s = fixed_point(real)
    assert 1 << 23 <= m0 <= 1 << 24
    # M0 is real * 2^s rounded half to even: within half a unit
    assert abs(Fraction(m0) - real * 2**s) <= Fraction(1, 2)


# -------------------------------------------------------------------------------------------- evaluators


def _digests(ev) -> list[str]:
    return [hashlib.sha256(t.tobytes()).hexdigest() for t in ev.tensors]


def _natives(graph) -> list:
    """The native evaluators this CPU may use: uint8-shifted weights always, int8 weights where the probe holds."""
    evs = [NativeEvaluator(graph)]
    if int8_kernels_exact():
        evs.append(NativeEvaluator(graph, keep_int8=True))
    return evs


def test_fast_paths_equal_definitions_on_real_photos(mobilenet):
    """numpy FAST, the onnxruntime-compiled paths (native: the default) and the definitions give the same bytes."""
    evs = [OrtEvaluator(mobilenet), make_evaluator(mobilenet, "fast")] + _natives(mobilenet)  # reused: caches
    photos = [PHOTO] + (sorted(IMAGENET.glob("*.JPEG"))[:3] if IMAGENET.exists() else [])
    for p in photos:
        x = load_input(p, mobilenet)
        ref = _digests(evaluate(mobilenet, x, DEFINITIONS))
        assert _digests(evaluate(mobilenet, x, FAST)) == ref, p
        for ev in evs:
            assert _digests(ev(x)) == ref, (p, type(ev).__name__)


_SYNTH = [dict(seed=11), dict(seed=12, sat_scale=True), dict(seed=13, extreme=True), dict(seed=14, gap_reads_conv=True),
          dict(seed=15, G=1, cig_out=8, K=1, stride=1, pad=(0, 0, 0, 0)), dict(seed=16, dil=2, pad=(2, 2, 2, 2)),
          dict(seed=17, K=5, stride=3, pad=(0, 2, 1, 0), H=11, W=9)]


@pytest.mark.parametrize("cfg", _SYNTH, ids=[str(c) for c in _SYNTH])
def test_native_equals_definitions_on_synthetic_models(cfg):
    """Grouped, pointwise, dilated, strided, saturating, fl32-rounding and NCHW-committed convolutions, the ADD
    tables and the MATMUL: onnxruntime's own kernels give the definitions' bytes (several random inputs)."""
    graph = lower(make_model(**cfg))
    evs = _natives(graph)
    rng = np.random.default_rng(cfg["seed"])
    shape = graph.ops[0].out.shape
    for _ in range(4):
        x = rng.normal(0, 3, (shape[0], shape[3], shape[1], shape[2])).astype(np.float32)
        ref = _digests(evaluate(graph, x, DEFINITIONS))
        for ev in evs:
            assert _digests(ev(x)) == ref, type(ev).__name__


def test_native_equals_definitions_on_random_graphs():
    """A seeded share of the parity fuzzer's random graphs (several QUANTIZEs, non-zero weight zero points,
    aliases, constant ADDs, rounding ties, saturation): every one the native compiler takes gives the
    definitions' bytes; it must take most of those with unsigned activations."""
    from benchmarks.parity_fuzz import random_input, random_model

    rng = np.random.default_rng(2026)
    compiled = 0
    for _ in range(60):
        model, shape, xs = random_model(rng)
        try:
            graph = lower(model)
            evs = _natives(graph)
        except (ModelError, NotCompilable):
            continue
        compiled += 1
        for _ in range(2):
            x = random_input(rng, shape, xs)
            ref = _digests(evaluate(graph, x, DEFINITIONS))
            for ev in evs:
                assert _digests(ev(x)) == ref
    assert compiled >= 15


def test_native_rejects_signed_activations_and_auto_falls_back():
    graph = lower(make_model(seed=5, signed_out=True))
    with pytest.raises(NotCompilable, match="signed activations"):
        NativeEvaluator(graph)
    assert type(make_evaluator(graph)).__name__ in ("OrtEvaluator", "FastEvaluator")


def test_golden_input_top1_matches_onnxruntime(mobilenet):
    golden = ROOT.parent / "shared/data/golden/mobilenetv2-12-int8"
    if not golden.exists():
        pytest.skip("data bundle not present")
    x = np.load(golden / "input_0.npy")
    ort_out = np.load(golden / "output_0.npy")
    ev = evaluate(mobilenet, x)
    assert ev.top1() == [int(np.argmax(ort_out[0]))]
    # the canonical requantization reproduces onnxruntime's (AVX-512 VNNI) logits bit for bit on this input
    assert ev.output.tobytes() == ort_out.astype(np.float32).tobytes()


_XCE_SCRIPT = """
import hashlib, json, sys
from offchain.inference.evaluators import NativeEvaluator, OrtEvaluator, make_evaluator
from offchain.inference.ort_probe import int8_kernels_exact
from offchain.inference.pipeline import load_input, load_model
g = load_model(sys.argv[1]); x = load_input(sys.argv[2], g); th = int(sys.argv[3])
evs = {"auto": make_evaluator(g), "native": NativeEvaluator(g, threads=th), "ort": OrtEvaluator(g, threads=th),
       "fast": make_evaluator(g, "fast")}
if int8_kernels_exact():
    evs["native_int8"] = NativeEvaluator(g, threads=th, keep_int8=True)
out = {k: [hashlib.sha256(t.tobytes()).hexdigest() for t in ev(x).tensors] for k, ev in evs.items()}
out["auto_int8"] = getattr(evs["auto"], "keep_int8", None)
out["probe"] = int8_kernels_exact()
from offchain.inference.ort_native import compile_native
out["nodes"] = ",".join(sorted({n.op_type for n in compile_native(g).graph.node}))
print(json.dumps(out))
"""


def _run_eval(prefix: list[str], threads: int) -> dict:
    """Digests of every tensor from each evaluator in a fresh process (``threads`` intra-op threads), with whether
    the int8 probe held there (``probe``) and whether the default kept int8 weights (``auto_int8``)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    r = subprocess.run(prefix + [sys.executable, "-c", _XCE_SCRIPT, str(MODEL), str(PHOTO), str(threads)], env=env,
                       capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _digest_lists(out: dict) -> dict:
    return {k: v for k, v in out.items() if isinstance(v, list)}


@pytest.mark.slow
def test_xce_same_bytes_with_1_and_2_threads(mobilenet):
    x = load_input(PHOTO, mobilenet)
    here = _digests(evaluate(mobilenet, x, DEFINITIONS))
    for th in (1, 2):
        out = _run_eval([], th)
        assert out["auto_int8"] == out["probe"]
        assert {"QuantizeLinear", "MatMulInteger", "Gather"} <= set(out["nodes"].split(","))
        assert _digest_lists(out) == {k: here for k in _digest_lists(out)}


@pytest.mark.slow
def test_xce_same_bytes_on_emulated_haswell(mobilenet):
    """Every intermediate tensor is byte-identical on an emulated AVX2-only CPU (qemu-user, Haswell-v4), where
    numpy/OpenBLAS take other code paths than on this AVX-512 machine."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-user not installed (Debian package qemu-user; .ci/run installs it)")
    x = load_input(PHOTO, mobilenet)
    here = _digests(evaluate(mobilenet, x, DEFINITIONS))
    out = _run_eval([qemu, "-cpu", "Haswell-v4"], 2)
    # AVX2's u8 x s8 kernel saturates 16-bit pair sums: the probe must see it, and the default must shift weights
    assert out["probe"] is False and out["auto_int8"] is False
    # the QUANTIZE / GAP / DEQUANTIZE fast paths are taken there too (QuantizeLinear's probe holds on AVX2)
    assert {"QuantizeLinear", "MatMulInteger", "Gather"} <= set(out["nodes"].split(","))
    assert _digest_lists(out) == {k: here for k in _digest_lists(out)}


# -------------------------------------------------------------------------------------------- commitments


@given(st.integers(1, 70), st.data())
@settings(max_examples=60, deadline=None)
def test_multiproof_opens_any_leaf_set(n, data):
    leaves = [bytes([i % 256]) * 32 for i in range(n)]
    tree = build_tree(leaves)
    idx = sorted(data.draw(st.sets(st.integers(0, (1 << tree.depth) - 1), min_size=1, max_size=8)))
    vals = [tree.node(0, i) for i in idx]
    proof = tree.multiproof(idx)
    assert verify_multi(tree.root, tree.depth, idx, vals, proof)
    if proof:
        bad = list(proof)
        bad[0] = bytes(32) if bad[0] != bytes(32) else b"\x01" * 32
        assert not verify_multi(tree.root, tree.depth, idx, vals, bad)
    tampered = [bytes([vals[0][0] ^ 1]) + vals[0][1:]] + vals[1:]
    assert not verify_multi(tree.root, tree.depth, idx, tampered, proof)


@given(st.integers(0, 5), st.data())
@settings(max_examples=30, deadline=None)
def test_subtree_levels_and_siblings_prove_every_node(m, data):
    """The k-ary reveal helpers: the levels end at `subtree_root`, and each node's siblings hash up to it."""
    nodes = [keccak(bytes([i])) for i in range(1 << m)]
    levels = subtree_levels(nodes)
    assert levels[0] == nodes and len(levels) == m + 1 and levels[-1] == [subtree_root(nodes)]
    i = data.draw(st.integers(0, len(nodes) - 1))
    sib = subtree_siblings(nodes, i)
    assert len(sib) == m
    h = nodes[i]
    for k, s in enumerate(sib):
        h = keccak(h + s) if (i >> k) % 2 == 0 else keccak(s + h)
    assert h == subtree_root(nodes)
    assert build_tree(nodes).root == subtree_root(nodes)
    with pytest.raises(ValueError):
        subtree_levels(nodes + [nodes[0]] if m else [])


def test_native_mobilenet_takes_the_fast_paths(mobilenet):
    """MobileNetV2 compiles to onnxruntime's kernels with no float chain left: QUANTIZE as QuantizeLinear (its
    probe holds), GAP as MatMulInteger + a table Gather, DEQUANTIZE as a Gather (the thread-count and
    emulated-Haswell tests above hold these against the definitions)."""
    from offchain.inference.ort_native import compile_native

    nodes = [n.op_type for n in compile_native(mobilenet).graph.node]
    assert nodes.count("QuantizeLinear") == 1 and nodes.count("MatMulInteger") == 1 and nodes.count("Gather") == 2
    assert not {"Div", "Round", "Floor", "ReduceSum", "Clip", "Mul", "Sub"} & set(nodes)


def test_make_evaluator_selects_and_rejects(mobilenet):
    assert type(make_evaluator(mobilenet)).__name__ == "NativeEvaluator"
    assert type(make_evaluator(mobilenet, "native")).__name__ == "NativeEvaluator"
    assert type(make_evaluator(mobilenet, "ort")).__name__ == "OrtEvaluator"
    assert type(make_evaluator(mobilenet, FAST)).__name__ == "FastEvaluator"
    assert type(make_evaluator(mobilenet, "definitions")).__name__ == "DefinitionsEvaluator"
    with pytest.raises(ValueError, match="unknown evaluator"):
        make_evaluator(mobilenet, "gpu")


def test_native_runs_onnxruntime_qlinearadd_where_the_probe_holds(mobilenet):
    """The native compiler emits onnxruntime's own QLinearAdd for every same-shape ADD whose probe holds (so the
    thread-count and emulated-Haswell tests above hold it against the definitions), the table Gather otherwise;
    on x86-64 the probe holds for all of MobileNetV2's ADDs (onnxruntime's AVX2/AVX-512 kernels use FMA)."""
    import platform

    from offchain.inference.graph import Kind
    from offchain.inference.ort_native import _add_native, compile_native

    adds = [op for op in mobilenet.ops if op.kind == Kind.ADD]
    native = [op for op in adds if _add_native(op)]
    nodes = [n.op_type for n in compile_native(mobilenet).graph.node]
    assert nodes.count("QLinearAdd") == len(native)
    assert nodes.count("Gather") >= len(adds) - len(native)
    if platform.machine() in ("x86_64", "AMD64"):
        assert len(native) == len(adds) == 11
