"""`rnnkit TASK eval` and the task's prediction command (`rnnkit charlm sample`, ...), for every task.

Part of the CLI: these functions read arguments, call the task's library functions, and print. A bad
argument the library names as Python spells it (ArgumentError "beam_width") is said with its flag
(--beam-width).
"""

import argparse
import math
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

from rnnkit.checkpoint import load_any
from rnnkit.commands.train import check_device, overrides_from
from rnnkit.commands.verbs import verb_module
from rnnkit.config import check_field, replace_fields
from rnnkit.errors import ArgumentError, RnnkitError
from rnnkit.files import atomic_write, staged_output
from rnnkit.summary import summarize
from rnnkit.tasks import from_checkpoint
from rnnkit.tasks.base import Task


def flag(name: str) -> str:
    """A setting's name as its flag: beam_width -> --beam-width."""
    return "--" + name.replace("_", "-")


@contextmanager
def named_as_flags():
    """ArgumentErrors raised inside say the flag (--prime: ...) instead of Python's argument (prime: ...)."""
    try:
        yield
    except ArgumentError as error:
        raise RnnkitError(error.as_flag(flag(error.argument))) from None


def model_for(task: Task, args: argparse.Namespace, verb: str):
    """(model, vocabularies, config): an untrained tiny one for --dry-run, else the checkpoint's, on --device."""
    check_device(args.device)
    if args.dry_run:
        if args.checkpoint:
            raise RnnkitError(
                f"--dry-run runs an untrained tiny model; give CHECKPOINT ({args.checkpoint}) or --dry-run, not both"
            )
        return task.tiny_model()
    if not args.checkpoint:
        raise RnnkitError(f"{task.name} {verb} needs a CHECKPOINT (or --dry-run)")
    checkpoint, where = load_any(args.checkpoint, task=task.name)
    model, vocabularies, config, _ = from_checkpoint(checkpoint, args.device, where)
    return model, vocabularies, config


def settings_from(args: argparse.Namespace, settings_class: type, prefix: str):
    """The command's own settings (Predict, Evaluate, a verb's Options) from its flags, checked as config fields are."""
    settings = replace_fields(settings_class(), overrides_from(args, prefix), spell=flag)
    for f in fields(settings):
        check_field(flag(f.name)[2:], getattr(settings, f.name), f.metadata)
    return settings


class Counted:
    """Standard output, counting what goes through it: a command whose input held nothing says so."""

    def __init__(self, out):
        self.out, self.written = out, 0

    def write(self, text: str) -> None:
        self.written += len(text)
        self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


def predict_command(task: Task, args: argparse.Namespace) -> int:
    verb = verb_module(task.name)
    settings = settings_from(args, task.Predict, "predict:")
    options = settings_from(args, verb.Options, "options:")
    model, vocabularies, config = model_for(task, args, task.verb)
    trained = task.trained(model.eval(), vocabularies, config, task, args.checkpoint or "")
    with tempfile.TemporaryDirectory(prefix=f"rnnkit-{task.name}-") as scratch, named_as_flags():
        if args.dry_run:
            settings, options = task.dry_run(settings), verb.dry_run(options, Path(scratch))
        out = Counted(sys.stdout)
        verb.run(trained, settings, options, out)
    if not out.written:  # every task's empty input the same way: a note, and status 0 (an empty input is no error)
        print(f"rnnkit: note: nothing to {task.verb}: the input holds none", file=sys.stderr)
    return 0


def eval_command(task: Task, args: argparse.Namespace) -> int:
    settings = settings_from(args, task.Evaluate, "evaluate:") if task.Evaluate is not None else None
    model, vocabularies, config = model_for(task, args, "eval")
    if args.dry_run:
        splits = {"built-in tiny data": task.batches(config, task.load_data(config, tiny=True))[1]}
    else:
        if not args.data and not task.generates_data:
            raise RnnkitError(f"{task.name} eval needs a CHECKPOINT and --data PATH (or --dry-run)")
        splits = task.eval_data(args.data or "", vocabularies, config)
    if args.out and not task.draws_figures:
        raise RnnkitError(f"--out: {task.name} eval draws no figures (its metrics are printed)")
    written = []
    # checked before anything is computed, and all figures or none: an interrupted eval leaves no half set behind
    own = {"settings": settings} if task.Evaluate else {}  # eval's own settings, where the task has them
    with staged_output(args.out or "", "*.png", "--out", args.overwrite) as stage, named_as_flags():
        for name, batches in splits.items():
            metrics = task.evaluate(model, batches, args.device, **own)
            if not math.isfinite(metrics["loss"]):
                raise RnnkitError(f"{name}: the loss is {metrics['loss']} (the model's outputs are not finite)")
            if name == next(iter(splits)):
                # the model, module by module, once it has evaluated (a bad input still gets its one-line error
                # alone); on stderr, so standard output stays the metrics that scripts read and goldens pin
                print(summarize(model), file=sys.stderr, flush=True)
            print(f"{name}: {task.describe(metrics)}")
            details = task.details(metrics)
            if details is not None:
                print(details)
            if stage is not None:
                for file, picture in task.figures(metrics).items():
                    written.append(f"{Path(name).name}.{file}" if len(splits) > 1 else file)
                    atomic_write(stage / written[-1], lambda handle, data=picture: handle.write(data))
    for file in written:
        print(f"wrote {Path(args.out) / file}")
    return 0
