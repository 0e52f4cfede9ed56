"""`rnnkit diagnose` and `rnnkit viz`: the inside view's commands.

Part of the CLI: these functions read arguments, call rnnkit/inspect_model.py, and print.
"""

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

from tqdm import tqdm

from rnnkit import diagnostics
from rnnkit.cells import CELLS
from rnnkit.checkpoint import load_any
from rnnkit.data.datasets import tiny_text
from rnnkit.data.text import read_text
from rnnkit.diagnostics import Diagnosis
from rnnkit.errors import ArgumentError, RnnkitError
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
    """viz's (model, vocabularies, text, task): a character model's checkpoint (anything else refused before the
    text is read); the built-in tiny character model and text for --dry-run."""
    if args.dry_run:
        charlm = TASKS["charlm"]
        model, vocabularies, _ = charlm.tiny_model()
        return model, vocabularies, tiny_text(), charlm
    if not args.checkpoint or not text_path:
        raise RnnkitError(f"rnnkit {args.task} needs a CHECKPOINT and a text file (or --dry-run)")
    model, vocabularies, _, task = from_checkpoint(*checkpoint_of(args.checkpoint))
    if task.per != "character" or not task.reads_text:
        raise RnnkitError(
            f"{args.checkpoint}: rnnkit viz colours a text by a character model's units (charlm), not a {task.name} "
            f"model (it reads {task.per}s; rnnkit diagnose measures it)"
        )
    return model, vocabularies, read_text(text_path), task


def spectral_radii(text: str) -> list[float]:
    """--spectral-radius's value, "0.2,1,3" -> [0.2, 1.0, 3.0]: finite numbers above 0, none twice."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ArgumentError("--spectral-radius", f"expected radii separated by commas (e.g. 0.2,1,3), got {text!r}")
    radii = []
    for item in items:
        try:
            radius = float(item)
        except ValueError:
            raise ArgumentError("--spectral-radius", f"{item!r} is not a number") from None
        if not math.isfinite(radius) or radius <= 0:
            raise ArgumentError("--spectral-radius", f"a radius is a finite number above 0, got {item}")
        if radius in radii:
            raise ArgumentError("--spectral-radius", f"{item} is given twice")
        radii.append(radius)
    return radii


def diagnosis_of(args: argparse.Namespace, seq_len: int) -> Diagnosis:
    """What diagnose measures: the checkpoint's model on its --data text or on its task's own problem; the
    untrained tiny character model on the built-in text for --dry-run."""
    if args.dry_run:
        charlm = TASKS["charlm"]
        model, vocabularies, config = charlm.tiny_model()
        return charlm.text_diagnosis(model, vocabularies, config, tiny_text(), seq_len, "the built-in tiny text")
    if not args.checkpoint:
        raise RnnkitError(
            "rnnkit diagnose needs a CHECKPOINT (and --data FILE where its model reads text), "
            "or --compare CELLS, --spectral-radius R,R,... or --dry-run"
        )
    model, vocabularies, config, task = from_checkpoint(*checkpoint_of(args.checkpoint))
    if task.generates_data:
        if args.data:
            raise RnnkitError(
                f"--data: a {task.name} checkpoint is diagnosed on its own generated problem; drop --data"
            )
        x, loss_of_last, what = task.diagnosis(model, vocabularies, config)  # x (B, T, D): the core's inputs
        return Diagnosis(model, model.core, lambda: loss_of_last(model.core(x)[0][:, -1]), what)
    if not task.reads_text:
        readers = ", ".join(name for name, other in TASKS.items() if other.reads_text)
        drawers = ", ".join(name for name, other in TASKS.items() if other.generates_data)
        raise RnnkitError(
            f"{args.checkpoint}: rnnkit diagnose measures a model on a text given as --data ({readers}) or on a "
            f"problem its task draws itself ({drawers}); a {task.name} model reads neither, so there is nothing to "
            "feed its core"
        )
    if not args.data:
        raise RnnkitError(f"rnnkit diagnose needs --data FILE: a text for the {task.name} model to read")
    return task.text_diagnosis(model, vocabularies, config, read_text(args.data), seq_len, args.data)


def shown(value: float | None) -> str:
    return "undefined (a zero norm, or one past float range)" if value is None else f"{value:.3g}"


TOY_STEPS = 10_000  # the toy's Jacobians take T · H² numbers: past this, minutes and gigabytes for one picture


def radius_toy(args: argparse.Namespace, radii: list[float]) -> tuple[dict, dict[str, bytes], list[str]]:
    """--spectral-radius: (summary, plots, the lines to print)."""
    from rnnkit.inspect_model import spectral_radius_toy

    seq_len = 20 if args.dry_run else args.seq_len or 50
    if seq_len > TOY_STEPS:
        raise ArgumentError("--seq-len", f"the --spectral-radius toy runs at most {TOY_STEPS:,} steps, got {seq_len:,}")
    summary, png = spectral_radius_toy(radii, seq_len)
    lines = [
        f"ρ(U) = {entry['spectral_radius']:.3g} {'<' if entry['vanishing_certain'] else '≥'} "
        f"1/γ = {summary['vanishing_below']:g} ({summary['nonlinearity']}): vanishing "
        f"{'certain' if entry['vanishing_certain'] else 'not certain'}; ‖∂h_T/∂h_t‖ {seq_len - 1} steps back = "
        f"{shown(entry['jacobian_norm_first'])}, ‖h_T‖ = {shown(entry['hidden_norm_last'])}"
        for entry in summary["radii"].values()
    ]
    return summary, {"spectral_radius.png": png}, lines


def compared_cells(args: argparse.Namespace) -> tuple[dict, dict[str, bytes], list[str]]:
    """--compare: (summary, plots, the lines to print)."""
    from rnnkit.inspect_model import compare_cells, hidden_norm_by_activation

    cells = [c.strip() for c in args.compare.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells:
        raise RnnkitError(f"--compare: unknown cells {unknown or args.compare!r}; choose from {', '.join(CELLS)}")
    steps, seq_len = (20, 20) if args.dry_run else (args.steps, args.seq_len or 50)
    with tqdm(total=len(cells), desc="training tiny models", file=sys.stderr, disable=args.dry_run) as bar:
        summary, png = compare_cells(cells, seq_len=seq_len, steps=steps, on_cell=lambda name: bar.update(1))
    norms, norms_png = hidden_norm_by_activation(seq_len)
    lines = [
        f"{name:>5} ({entry['parameters']:,} params): ‖∂L/∂h‖ {seq_len - 1} steps back / at the loss = "
        f"{entry['gradient_ratio_at_init']:.3g} at init, {entry['gradient_ratio_trained']:.3g} trained; "
        f"task accuracy {entry['accuracy']:.0%} (chance {entry['chance_accuracy']:.1%})"
        for name, entry in summary.items()
    ]
    plots = {"compare_gradient_through_time.png": png, "hidden_norm_by_activation.png": norms_png}
    return summary | {"hidden_norm_by_activation": norms}, plots, lines


def measured_model(args: argparse.Namespace) -> tuple[dict, dict[str, bytes], list[str]]:
    """A checkpoint (or --dry-run's tiny model): (summary, plots, the lines to print)."""
    from rnnkit.inspect_model import diagnose_core

    summary, plots = diagnose_core(diagnosis_of(args, 20 if args.dry_run else args.seq_len or 100))
    metrics = Path(args.checkpoint).parent / "metrics.jsonl" if args.checkpoint and not args.dry_run else None
    if metrics is not None and metrics.exists():  # the run's own log, beside its checkpoint
        summary["clipping"] = diagnostics.clipping_statistics(read_metrics(metrics))
    back, cell = summary["steps"] - 1, summary["cell_state_gradient_ratio_first_to_last"]
    lines = [f"loss at {summary['loss']}, T = {summary['steps']} steps"] + [
        f"{name}: ‖∂L/∂h_t‖ {back} steps back / at the last step = {shown(ratio)}"
        + (f"; ‖∂L/∂c_t‖ (cell state) {shown(cell[name])}" if name in cell else "")
        for name, ratio in summary["gradient_ratio_first_to_last"].items()
    ]
    return summary, plots, lines


def diagnose_command(args: argparse.Namespace) -> int:
    radii = None if args.spectral_radius is None else spectral_radii(args.spectral_radius)
    if radii is not None and (args.checkpoint or args.data or args.compare):
        raise ArgumentError(
            "--spectral-radius", "runs the notes' toy on its own: drop the CHECKPOINT, --data, --compare"
        )
    with tempfile.TemporaryDirectory() as scratch:
        out = output_directory(args, scratch)
        # the checks first, then all files or none, and none replaces a file of the user's unasked
        with staged_output(out, "summary.json", "--out", args.overwrite) as stage:
            if radii is not None:
                summary, plots, lines = radius_toy(args, radii)
            elif args.compare:
                summary, plots, lines = compared_cells(args)
            else:
                summary, plots, lines = measured_model(args)
            for name, png in plots.items():
                (stage / name).write_bytes(png)
            (stage / "summary.json").write_text(json.dumps(summary, indent=1))
        print("\n".join(lines))
        if not args.dry_run:
            print(f"wrote {', '.join(str(out / n) for n in plots)} and {out / 'summary.json'}")
    return 0


def viz_command(args: argparse.Namespace) -> int:
    from rnnkit.inspect_model import diagnosable, diagnose_model, inspect_units

    model, vocabularies, text, task = model_for_inspection(args, args.text)
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
