"""`rnnkit diagnose` and `rnnkit viz`: the inside view's commands.

Part of the CLI: these functions read arguments, call rnnkit/inspect_model.py, and print.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from rnnkit import diagnostics
from rnnkit.cells import CELLS
from rnnkit.checkpoint import load_any
from rnnkit.data.datasets import tiny_text
from rnnkit.data.text import read_text
from rnnkit.errors import RnnkitError
from rnnkit.files import staged_output
from rnnkit.runs import read_metrics
from rnnkit.tasks import TASKS, from_checkpoint


def output_directory(args: argparse.Namespace, scratch: str) -> Path:
    """--out, or a temporary directory for --dry-run."""
    return Path(scratch) if args.dry_run else Path(args.out)


def checkpoint_of(path: str) -> tuple[dict, str, str]:
    """from_checkpoint's arguments for a checkpoint, run directory or bundle, on the CPU."""
    checkpoint, where = load_any(path)
    return checkpoint, "cpu", where


def model_for_inspection(args: argparse.Namespace, text_path: str | None):
    """(model, vocabularies, text, task) of any task's checkpoint whose model reads text through a recurrent
    core; the built-in tiny character model and text for --dry-run."""
    if args.dry_run:
        charlm = TASKS["charlm"]
        model, vocabularies, _ = charlm.tiny_model()
        return model, vocabularies, tiny_text(), charlm
    if not args.checkpoint or not text_path:
        raise RnnkitError(f"rnnkit {args.task} needs a CHECKPOINT and a text file (or --dry-run)")
    model, vocabularies, _, task = from_checkpoint(*checkpoint_of(args.checkpoint))
    if not task.reads_text or not hasattr(model, "core"):
        what = (
            "colours a text by a character model's units (charlm)"
            if args.task == "viz"
            else "measures language models (charlm, wordlm) on a text and the memory problems on their own data"
        )
        raise RnnkitError(f"{args.checkpoint}: rnnkit {args.task} {what}, not a {task.name} model")
    return model, vocabularies, read_text(text_path), task


def generated_diagnosis(args: argparse.Namespace):
    """(model, inputs, loss of the last step, what) when the checkpoint's task generates its own data, else None."""
    if args.dry_run or not args.checkpoint:
        return None
    model, vocabularies, config, task = from_checkpoint(*checkpoint_of(args.checkpoint))
    if not task.generates_data:
        return None
    if args.data:
        raise RnnkitError(f"--data: a {task.name} checkpoint is diagnosed on its own generated problem; drop --data")
    x, loss_of_last, what = task.diagnosis(model, vocabularies, config)
    return model, x, loss_of_last, what


def diagnose_command(args: argparse.Namespace) -> int:
    from rnnkit.inspect_model import compare_cells, diagnose_core, diagnose_model, hidden_norm_by_activation

    with tempfile.TemporaryDirectory() as scratch:
        out = output_directory(args, scratch)
        # the checks first, then all files or none, and none replaces a file of the user's unasked
        with staged_output(out, "summary.json", "--out", args.overwrite) as stage:
            if args.compare:
                cells = [c.strip() for c in args.compare.split(",") if c.strip()]
                unknown = [c for c in cells if c not in CELLS]
                if unknown or not cells:
                    raise RnnkitError(
                        f"--compare: unknown cells {unknown or args.compare!r}; choose from {', '.join(CELLS)}"
                    )
                steps, seq_len = (20, 20) if args.dry_run else (args.steps, args.seq_len or 50)
                with tqdm(total=len(cells), desc="training tiny models", file=sys.stderr, disable=args.dry_run) as bar:
                    summary, png = compare_cells(
                        cells, seq_len=seq_len, steps=steps, on_cell=lambda name: bar.update(1)
                    )
                norms, norms_png = hidden_norm_by_activation(seq_len)
                plots = {"compare_gradient_through_time.png": png, "hidden_norm_by_activation.png": norms_png}
            else:
                seq_len = 20 if args.dry_run else args.seq_len or 100
                generated = generated_diagnosis(args)
                if generated is not None:  # a task whose data are generated (the memory problems) measures on its own
                    summary, plots = diagnose_core(*generated)
                    seq_len = generated[1].shape[1] - 1
                else:
                    model, vocabularies, text, task = model_for_inspection(args, args.data)
                    summary, plots = diagnose_model(
                        model, task.encode_text(vocabularies, text, args.data or "text"), seq_len=seq_len
                    )
                metrics = (
                    Path(args.checkpoint).parent / "metrics.jsonl" if args.checkpoint and not args.dry_run else None
                )
                if metrics is not None and metrics.exists():  # the run's own log, beside its checkpoint
                    summary["clipping"] = diagnostics.clipping_statistics(read_metrics(metrics))
            for name, png in plots.items():
                (stage / name).write_bytes(png)
            (stage / "summary.json").write_text(
                json.dumps(summary | ({"hidden_norm_by_activation": norms} if args.compare else {}), indent=1)
            )
        if args.compare:
            for name, entry in summary.items():
                print(
                    f"{name:>5}: ‖∂L/∂h‖ {seq_len} steps back / at the loss = "
                    f"{entry['gradient_ratio_at_init']:.3g} at init, "
                    f"{entry['gradient_ratio_trained']:.3g} trained; task accuracy {entry['accuracy']:.0%} "
                    f"(chance {entry['chance_accuracy']:.1%})"
                )
        else:
            for name, ratio in summary["gradient_ratio_first_to_last"].items():
                print(f"{name}: ‖∂L/∂h‖ {seq_len} steps back / at the loss = {ratio:.3g}")
        if not args.dry_run:
            print(f"wrote {', '.join(str(out / n) for n in plots)} and {out / 'summary.json'}")
    return 0


def viz_command(args: argparse.Namespace) -> int:
    from rnnkit.inspect_model import diagnosable, diagnose_model, inspect_units

    model, vocabularies, text, task = model_for_inspection(args, args.text)
    if task.per != "character":
        raise RnnkitError(
            f"{args.checkpoint}: viz colours text by the units of a character model; "
            f"a {task.name} model reads {task.per}s (rnnkit diagnose measures it)"
        )
    vocab = vocabularies["text"]
    text = text[: 600 if args.dry_run else args.chars]
    ids = vocab.encode(text, what=args.text or "text")  # unseen characters: an error before anything is written
    with tempfile.TemporaryDirectory() as scratch:
        out = output_directory(args, scratch)
        # the checks first, then all files or none, and none replaces a file of the user's unasked
        with staged_output(out, "report.html", "--out", args.overwrite) as stage:
            seq_len = (
                20 if args.dry_run else 100
            )  # the gradient-through-time plot joins the report when the text is long enough
            plots = diagnose_model(model, ids, seq_len=seq_len)[1] if diagnosable(len(ids), seq_len) else {}
            summary = inspect_units(model, vocab, text, stage, kind=args.kind, extra_plots=plots)
        for feature, units in summary["features"].items():
            best = units[0]
            print(f"{feature:>14}: {best['state']} unit {best['unit']}, r = {best['r']:+.3f}")
        if summary["constant_features"]:
            print(f"left out, constant over this text: {', '.join(summary['constant_features'])}")
        if not args.dry_run:
            print(f"wrote {out / 'report.html'}")
    return 0
