"""The `pinpoint` command line.

    pinpoint eval --model PATH --input IMAGE_OR_NPY [--input ...] [--preprocess CODE] [--json]
    pinpoint quantize MODEL.onnx --calibration DIR --out OUT.onnx [...]   (`protocol.cli.quantize`)
    pinpoint demo [--rpc-url URL] [--model PATH --input PATH] [--json]

The command groups of the other capabilities are attached by their modules' ``register(main, demo)``:
`protocol.cli.campaign` (Argus campaigns) and `protocol.cli.operations` (accounts, deployment, tasks, daemons).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from offchain.inference.inputs import PREPROCESSING
from offchain.inference.evaluators import evaluate
from offchain.inference.pipeline import load_input, load_model
from offchain.inference.trace import Trace, commitments
from protocol.cli import campaign, operations, quantize
from protocol.cli.options import handle_errors

console = Console(stderr=False, highlight=False, width=132)


def default_model() -> Path:
    """The bundled int8 MobileNetV2 (offchain/assets)."""
    return Path(str(resources.files("offchain.assets").joinpath("mobilenetv2-12-int8.onnx")))


def default_input() -> Path:
    """The bundled example photo (a bald eagle)."""
    return Path(str(resources.files("offchain.assets").joinpath("bald_eagle.jpeg")))


def labels() -> list[str]:
    """The 1000 ImageNet class names, in class order."""
    text = resources.files("offchain.assets").joinpath("synset.txt").read_text()
    return [ln.split(" ", 1)[1].strip() for ln in text.splitlines() if ln.strip()]


def _label(i: int, n_classes: int) -> str:
    if n_classes == 1000:
        return labels()[i].split(",")[0]
    return str(i)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pinpoint")
def main() -> None:
    """pinpoint: smart contracts that referee off-chain truth (verifiable int8 DNN inference; anti-piracy)."""


@main.command("eval")
@click.option("--model", "model", type=click.Path(path_type=Path), default=None,
              help="int8 ONNX model (QOperator or QDQ; a float32 model: run `pinpoint quantize` first).")
@click.option("--input", "input_paths", type=click.Path(path_type=Path), multiple=True,
              help="an image (preprocessed as the model needs) or a .npy input tensor; repeat it for a batch.")
@click.option("--preprocess", type=click.Choice(list(PREPROCESSING)), default=None,
              help="image preprocessing code (default: guessed from the input shape).")
@click.option("--json", "as_json", is_flag=True, help="print the commitments as JSON.")
@handle_errors
def eval_cmd(model: Path | None, input_paths: tuple[Path, ...], preprocess: str | None, as_json: bool) -> None:
    """Evaluate a model bit-exactly and print its commitments (model, input, output, trace roots; top-1).
    Several --input (or one .npy of shape [N, ...]) form a batch of N; a model of fixed batch N given fewer
    images gets the last one repeated."""
    paths = list(input_paths) or [default_input()]
    batch = _batch_of(paths)
    with _progress(enabled=not as_json) as p:
        step = p.add_task("loading the model", total=3)
        graph = load_model(model or default_model(), batch=batch)
        x = load_input(paths, graph, preprocess)
        p.update(step, advance=1, description=f"evaluating {graph.n_ops} operators", refresh=True)
        ev = evaluate(graph, x)
        p.update(step, advance=1, description=f"committing {graph.n_ops + 1} tensors and the trace", refresh=True)
        trace = Trace.of(ev)
        p.update(step, advance=1)
    c = commitments(trace)
    out = trace.tensors[-1]
    tops = [int(i) for i in np.argmax(out.reshape(out.shape[0], -1), axis=1)][:batch]   # padding left out
    if as_json:
        extra = {"top1_batch": tops} if batch > 1 else {}
        click.echo(json.dumps({**c, **extra, "evaluation_s": trace.seconds_eval,
                               "commitment_s": trace.seconds_commit}, indent=2))
        return
    n_classes = out.size // max(1, out.shape[0])
    t = Table(title="pinpoint eval", show_header=False)
    for k, v in c.items():
        t.add_row(k, str(v) + (f"  ({_label(v, n_classes)})" if k == "top1" else ""))
    if len(tops) > 1:
        t.add_row("top1 (batch)", " ".join(str(i) for i in tops))
    t.add_row("operators", str(trace.graph.n_ops))
    t.add_row("evaluation", f"{trace.seconds_eval * 1000:.1f} ms")
    t.add_row("commitments", f"{trace.seconds_commit * 1000:.0f} ms")
    console.print(t)


def _progress(enabled: bool) -> Progress:
    """The progress display of `pinpoint eval` on stderr (load, evaluate, commit; elapsed time), removed when done;
    none when ``enabled`` is false (--json) or stderr is not a terminal."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True, disable=not enabled)


def _batch_of(paths: list[Path]) -> int:
    """The batch the inputs form: the number of files, or the leading dimension of a single .npy of a batch."""
    if len(paths) == 1 and paths[0].suffix.lower() == ".npy" and paths[0].exists():
        try:
            shape = np.load(paths[0], mmap_mode="r", allow_pickle=False).shape
        except ValueError:
            return 1
        return int(shape[0]) if len(shape) == 4 else 1
    return len(paths)


@main.group("demo", invoke_without_command=True)
@click.option("--rpc-url", default=None, help="JSON-RPC node (e.g. anvil); default: the in-process chain.")
@click.option("--model", "model", type=click.Path(path_type=Path), default=None)
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None)
@click.option("--cheat-op", type=int, default=None, help="operator the cheating solver alters (default: middle).")
@click.option("--json", "as_json", is_flag=True, help="print the scenarios as JSON.")
@click.pass_context
@handle_errors
def demo(ctx, rpc_url, model, input_path, cheat_op, as_json) -> None:
    """The main job: a cheating solver and a lying challenger caught on chain, move by move with gas."""
    if ctx.invoked_subcommand is not None:
        return
    from protocol.inference.scenarios import run_demo

    report = run_demo(model or default_model(), input_path or default_input(), rpc_url=rpc_url,
                      cheat_op=cheat_op, log=None if as_json else console.print)
    if as_json:
        click.echo(json.dumps(report, indent=2))


campaign.register(main, demo)
operations.register(main, demo)
quantize.register(main)

if __name__ == "__main__":
    main()
