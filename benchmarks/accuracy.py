"""Top-1 agreement with onnxruntime's int8 kernels and top-1 accuracy on the data bundle's 100 ImageNet photos.

    .venv/bin/python benchmarks/accuracy.py [--dir ../shared/data/images/imagenet] [--model M.onnx] [--limit N]
        [--evaluator auto|native|ort|fast|definitions]

``--model``: any int8 QOperator ImageNet model with 1000 logits (default: the zoo MobileNetV2-int8), e.g. the
bundle's fp32 MobileNetV2 quantized by onnxruntime's ``quantize_static`` with uint8 activations. ``--limit``: the
first N photos (sorted by name).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from offchain.inference.pipeline import load_input, load_model, make_evaluator  # noqa: E402

MODEL = ROOT / "offchain/assets/mobilenetv2-12-int8.onnx"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=ROOT.parent / "shared/data/images/imagenet")
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--evaluator", default="auto")
    args = ap.parse_args()
    import onnxruntime as ort

    wnids = [ln.split(" ", 1)[0] for ln in (ROOT / "offchain/assets/synset.txt").read_text().splitlines()]
    graph = load_model(args.model)
    evaluator = make_evaluator(graph, args.evaluator)  # built once: the onnxruntime session serves every photo
    sess = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    photos = sorted(args.dir.glob("*.JPEG"))[:args.limit]
    agree = ours_ok = ort_ok = 0
    same_logits = 0
    for p in photos:
        x = load_input(p, graph)
        ev = evaluator(x)
        o = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        truth = wnids.index(p.name.split("_")[0])
        a, b = ev.top1()[0], int(np.argmax(o[0]))
        agree += a == b
        ours_ok += a == truth
        ort_ok += b == truth
        same_logits += bool(np.array_equal(ev.output, o))
    n = len(photos)
    print(f"{args.model.name}, evaluator {type(evaluator).__name__}, {n} ImageNet photos ({args.dir})")
    print(f"{'top-1 agreement with onnxruntime int8':<44}{agree}/{n}")
    print(f"{'top-1 accuracy, pinpoint canonical':<44}{ours_ok}/{n}")
    print(f"{'top-1 accuracy, onnxruntime int8':<44}{ort_ok}/{n}")
    print(f"{'logits bit-identical to onnxruntime':<44}{same_logits}/{n}")


if __name__ == "__main__":
    main()
