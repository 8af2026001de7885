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
from offchain.inference.evaluators import OrtEvaluator, evaluate, make_evaluator
from offchain.inference.fast import FAST
from offchain.inference.graph import ModelError, UnsupportedOperator, fixed_point
from offchain.inference.inputs import InputError, load_input
from offchain.inference.loader import load, lower
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


def test_fast_paths_equal_definitions_on_real_photos(mobilenet):
    """numpy FAST, the onnxruntime-compiled path (the default) and the definitions give the same bytes."""
    ort_eval = OrtEvaluator(mobilenet)
    fast_eval = make_evaluator(mobilenet, "fast")  # reused: its kept weights must not change the bytes
    photos = [PHOTO] + (sorted(IMAGENET.glob("*.JPEG"))[:3] if IMAGENET.exists() else [])
    for p in photos:
        x = load_input(p, mobilenet)
        ref = _digests(evaluate(mobilenet, x, DEFINITIONS))
        assert _digests(evaluate(mobilenet, x, FAST)) == ref, p
        assert _digests(fast_eval(x)) == ref, p
        assert _digests(ort_eval(x)) == ref, p


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
from offchain.inference.evaluators import evaluate
from offchain.inference.fast import FAST
from offchain.inference.pipeline import load_input, load_model
g = load_model(sys.argv[1]); x = load_input(sys.argv[2], g)
out = []
for kern in (None, FAST):  # the onnxruntime-compiled default and the numpy fast path
    ev = evaluate(g, x, kern)
    out.append([hashlib.sha256(t.tobytes()).hexdigest() for t in ev.tensors])
print(json.dumps(out))
"""


def _run_eval(prefix: list[str], threads: int) -> list[list[str]]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    r = subprocess.run(prefix + [sys.executable, "-c", _XCE_SCRIPT, str(MODEL), str(PHOTO)], env=env,
                       capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_xce_same_bytes_with_1_and_2_threads(mobilenet):
    x = load_input(PHOTO, mobilenet)
    here = _digests(evaluate(mobilenet, x, DEFINITIONS))
    assert _run_eval([], 1) == [here, here]
    assert _run_eval([], 2) == [here, here]


@pytest.mark.slow
def test_xce_same_bytes_on_emulated_haswell(mobilenet):
    """Every intermediate tensor is byte-identical on an emulated AVX2-only CPU (qemu-user, Haswell-v4), where
    numpy/OpenBLAS take other code paths than on this AVX-512 machine."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-user not installed (Debian package qemu-user; .ci/run installs it)")
    x = load_input(PHOTO, mobilenet)
    here = _digests(evaluate(mobilenet, x, DEFINITIONS))
    assert _run_eval([qemu, "-cpu", "Haswell-v4"], 2) == [here, here]


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


def test_make_evaluator_selects_and_rejects(mobilenet):
    assert type(make_evaluator(mobilenet)).__name__ == "OrtEvaluator"
    assert type(make_evaluator(mobilenet, FAST)).__name__ == "FastEvaluator"
    assert type(make_evaluator(mobilenet, "definitions")).__name__ == "DefinitionsEvaluator"
    with pytest.raises(ValueError, match="unknown evaluator"):
        make_evaluator(mobilenet, "gpu")
