"""`pinpoint quantize`: a float32 ONNX model turned into an int8 model the loader accepts, by onnxruntime's static
quantizer calibrated on a folder of real inputs (`offchain.inference.quantize`).

    pinpoint quantize MODEL.onnx --calibration DIR --out OUT.onnx [--format qoperator|qdq] [--per-channel]
                      [--activations uint8|int8] [--preprocess CODE] [--labels-dir DIR] [--limit N] [--json]
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import click

from offchain.inference.inputs import PREPROCESSING
from offchain.inference.quantize import FORMATS, Comparison, FolderReader, compare, labelled, quantize
from protocol.cli.options import handle_errors


def register(main: click.Group) -> None:
    """Add the `quantize` command to ``main``."""

    @main.command("quantize")
    @click.argument("model", type=click.Path(path_type=Path, exists=True, dir_okay=False))
    @click.option("--calibration", "calibration", type=click.Path(path_type=Path, exists=True, file_okay=False),
                  required=True, help="folder of calibration images (preprocessed by --preprocess) or .npy inputs.")
    @click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
                  help="where to write the int8 model.")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default="qoperator", show_default=True,
                  help="QOperator (QLinearConv, ...) or QDQ (QuantizeLinear/DequantizeLinear around float ops).")
    @click.option("--per-channel", is_flag=True, help="one weight scale per output channel.")
    @click.option("--activations", type=click.Choice(["uint8", "int8"]), default="uint8", show_default=True,
                  help="activation type.")
    @click.option("--preprocess", type=click.Choice(list(PREPROCESSING)), default=None,
                  help="image preprocessing code of the data MANIFEST (default: guessed from the input shape: "
                       "1 channel unit, <=64 px cifar_torch, else torch).")
    @click.option("--labels-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
                  help="labelled images (class in the file name) on which to print top-1 of fp32 and int8.")
    @click.option("--limit", type=click.IntRange(min=1), default=None, help="use at most N calibration inputs.")
    @click.option("--json", "as_json", is_flag=True, help="print the report as JSON.")
    @handle_errors
    def quantize_cmd(model, calibration, out, fmt, per_channel, activations, preprocess, labels_dir, limit,
                     as_json) -> None:
        """Quantize a float32 MODEL with onnxruntime's quantize_static, calibrated on real inputs; report the
        canonical graph pinpoint builds from it and, with --labels-dir, top-1 of fp32 and int8."""
        reader = FolderReader(model, calibration, preprocess, limit)
        if labels_dir is not None:
            labelled(labels_dir)  # fail before quantizing
        quantize(model, out, reader, fmt=fmt, per_channel=per_channel, activation=activations)
        report: dict = {"out": str(out), "format": fmt, "per_channel": per_channel, "activations": activations,
                        "calibration_inputs": len(reader.files)}
        report.update(_canonical(out))
        if labels_dir is not None:
            report["top1"] = compare(model, out, labels_dir, preprocess).as_dict()
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        click.echo(f"wrote {out} ({fmt}, {activations} activations, "
                   f"{'per-channel' if per_channel else 'per-tensor'} weights; {len(reader.files)} calibration inputs)")
        if "loader_error" in report:
            click.echo(f"warning: pinpoint cannot referee this model: {report['loader_error']}", err=True)
        else:
            kinds = ", ".join(f"{k} x{n}" for k, n in report["canonical"].items())
            click.echo(f"canonical graph: {report['operators']} operators ({kinds})")
        if "top1" in report:
            c = Comparison(**{k: report["top1"][k] for k in ("n", "fp32_correct", "int8_correct", "agree")})
            click.echo(f"top-1 on {c.n} labelled inputs: fp32 {c.fp32_correct}/{c.n}, int8 {c.int8_correct}/{c.n}, "
                       f"agreement {c.agree}/{c.n}")


def _canonical(path: Path) -> dict:
    from offchain.inference.graph import ModelError
    from offchain.inference.loader import load

    try:
        g = load(path)
    except ModelError as e:
        return {"loader_error": str(e)}
    return {"operators": g.n_ops, "canonical": dict(Counter(op.kind.name for op in g.ops))}
