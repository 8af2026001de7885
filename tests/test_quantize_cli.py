"""`pinpoint quantize` (onnxruntime's quantize_static over a folder of real images or .npy tensors), the
preprocessing codes of the data MANIFEST, labels from file names, and `pinpoint eval` on a float32 model (told to
quantize first) and on a batch of inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from offchain.inference.inputs import InputError, preprocess_image
from offchain.inference.quantize import QuantizeError, input_files, label_of
from protocol.cli.main import main
from tests.bundle import BY_NAME, available

pytestmark = pytest.mark.skipif(not available(), reason="the data bundle (../shared/data) is not present")


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """8 CIFAR-10 test images, two classes."""
    d = tmp_path_factory.mktemp("cifar")
    src = BY_NAME["resnet20"].folder
    for p in sorted(src.glob("airplane_*"))[:4] + sorted(src.glob("cat_*"))[:4]:
        shutil.copy(p, d / p.name)
    return d


@pytest.fixture(scope="module")
def resnet20_int8(tmp_path_factory, cifar_dir):
    out = tmp_path_factory.mktemp("q") / "r20.onnx"
    r = _invoke("quantize", BY_NAME["resnet20"].path, "--calibration", cifar_dir, "--out", out,
                "--labels-dir", cifar_dir, "--json")
    assert r.exit_code == 0, r.output
    return out, json.loads(r.output)


def test_quantize_reports_canonical_graph_and_top1(resnet20_int8):
    out, rep = resnet20_int8
    assert out.exists() and "loader_error" not in rep
    assert rep["canonical"]["CONV"] == 21 and rep["canonical"]["MATMUL"] == 1   # Gemm with bias -> MATMUL
    assert rep["operators"] == sum(rep["canonical"].values())
    t = rep["top1"]
    assert t["n"] == 8 and 0 <= t["agree"] <= 8
    assert t["top1_fp32"] == round(t["fp32_correct"] / 8, 4)


def test_quantize_qdq_with_maxpool_and_flatten(tmp_path):
    m = BY_NAME["mnist-opset8"]
    out = tmp_path / "m.onnx"
    r = _invoke("quantize", m.path, "--calibration", m.folder, "--limit", 6, "--out", out, "--format", "qdq",
                "--per-channel", "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert "loader_error" not in rep, rep
    assert rep["canonical"]["MAXPOOL"] == 2 and rep["canonical"]["TRANSPOSE"] == 1   # the 4-D -> 2-D flatten
    assert rep["calibration_inputs"] == 6


def test_quantize_npy_calibration(tmp_path):
    m = BY_NAME["mnist-opset7"]
    cal = tmp_path / "cal"
    cal.mkdir()
    rng = np.random.default_rng(7)
    for i in range(3):
        np.save(cal / f"x{i}.npy", rng.random((1, 1, 28, 28), dtype=np.float32))
    r = _invoke("quantize", m.path, "--calibration", cal, "--out", tmp_path / "o.onnx", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["calibration_inputs"] == 3


def test_quantize_user_errors(tmp_path):
    m = BY_NAME["mnist-opset7"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _invoke("quantize", m.path, "--calibration", empty, "--out", tmp_path / "o.onnx")
    assert r.exit_code == 2 and "error: no images or .npy files" in r.output
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "x.npy", np.zeros((1, 3, 5, 5), np.float32))
    r = _invoke("quantize", m.path, "--calibration", bad, "--out", tmp_path / "o.onnx")
    assert r.exit_code == 2 and "does not fit the model" in r.output
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    shutil.copy(m.folder / "mnist_7_0_idx3500.png", unlabelled / "digit.png")
    r = _invoke("quantize", m.path, "--calibration", m.folder, "--out", tmp_path / "o.onnx",
                "--labels-dir", unlabelled)
    assert r.exit_code == 2 and "no labelled images" in r.output


def test_eval_on_float_model_says_quantize_first():
    r = _invoke("eval", "--model", BY_NAME["resnet20"].path, "--input", BY_NAME["resnet20"].folder / "cat_0000.jpg")
    assert r.exit_code == 2
    assert "error: the model is float32" in r.output and "pinpoint quantize" in r.output


def test_eval_batch_of_inputs():
    """Two --input form a batch of 2 on a model of symbolic batch; each item's top-1 is the single-input one."""
    m = BY_NAME["mobilenetv2-int8"]
    imgs = sorted(m.folder.glob("*.JPEG"))[:2]
    r = _invoke("eval", "--model", m.path, "--input", imgs[0], "--input", imgs[1], "--json")
    assert r.exit_code == 0, r.output
    batch = json.loads(r.output)["top1_batch"]
    singles = [json.loads(_invoke("eval", "--model", m.path, "--input", p, "--json").output)["top1"] for p in imgs]
    assert batch == singles


def test_eval_fixed_batch_model_pads_and_refuses(resnet20_int8, cifar_dir):
    """A model of fixed batch 1 refuses 3 inputs with a clear error (exit 2)."""
    out, _ = resnet20_int8
    imgs = sorted(cifar_dir.iterdir())[:3]
    r = _invoke("eval", "--model", out, *sum((["--input", p] for p in imgs), []))
    assert r.exit_code == 2 and "does not match the model's (1, 3, 32, 32)" in r.output


def test_labels_from_file_names(tmp_path):
    assert label_of("n01440764_tench.JPEG") == 0
    assert label_of("airplane_0003.jpg") == 0 and label_of("truck_0001.jpg") == 9
    assert label_of("mnist_7_0_idx3500.png") == 7 and label_of("wonnx_digit_5.jpg") == 5
    assert label_of("photo.png") is None
    with pytest.raises(QuantizeError):
        input_files(tmp_path)


def test_preprocessing_codes():
    photo = BY_NAME["mobilenetv2"].folder / "n01440764_tench.JPEG"
    tf = preprocess_image(photo, 224, "tf")
    torch = preprocess_image(photo, 224, "torch")
    bgr = preprocess_image(photo, 224, "caffe_bgr")
    assert tf.shape == torch.shape == bgr.shape == (1, 3, 224, 224)
    assert -1.0 <= tf.min() and tf.max() <= 1.0
    # caffe_bgr: channel 0 is blue, on the 0..255 scale minus the mean 104
    rgb01 = (tf + 1) / 2
    np.testing.assert_allclose(bgr[0, 0] + 104, rgb01[0, 2] * 255, atol=1e-3)
    grey = preprocess_image(BY_NAME["mnist-opset7"].folder / "mnist_7_0_idx3500.png", (28, 28), "unit")
    assert grey.shape == (1, 1, 28, 28) and 0 <= grey.min() and grey.max() <= 1
    with pytest.raises(InputError, match="unknown preprocessing"):
        preprocess_image(photo, 224, "nope")
