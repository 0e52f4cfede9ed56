"""`rnnkit TASK eval` and the task's prediction command (`rnnkit charlm sample`, ...), for every task.

Part of the CLI: these functions read arguments, call the task's library functions, and print.
"""

import argparse
import math
import sys
from dataclasses import fields
from pathlib import Path
from types import ModuleType

from rnnkit.checkpoint import load_checkpoint
from rnnkit.commands.train import check_device, overrides_from
from rnnkit.config import check_field, replace_fields
from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write, staged_output
from rnnkit.tasks import from_checkpoint, tiny_model


def model_for(task: ModuleType, args: argparse.Namespace, verb: str):
    """(model, vocabularies, config): an untrained tiny one for --dry-run, else the checkpoint's, on --device."""
    check_device(args.device)
    if args.dry_run:
        return tiny_model(task)
    if not args.checkpoint:
        raise RnnkitError(f"{task.name} {verb} needs a CHECKPOINT (or --dry-run)")
    model, vocabularies, config, _ = from_checkpoint(
        load_checkpoint(args.checkpoint, task=task.name), args.device, args.checkpoint
    )
    return model, vocabularies, config


def predict_command(task: ModuleType, args: argparse.Namespace) -> int:
    settings = settings_from(args, task.Predict, "predict:")
    model, vocabularies, config = model_for(task, args, task.predict_verb)
    if args.dry_run:
        settings = task.dry_run(settings)
    pieces = task.predict(
        model, vocabularies, settings, config
    )  # checks its inputs now: an error before anything is printed
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    return 0


def settings_from(args: argparse.Namespace, settings_class: type, prefix: str):
    """The command's own settings (Predict, Evaluate) from its flags, each checked as config fields are."""
    settings = replace_fields(settings_class(), overrides_from(args, prefix))
    for f in fields(settings):
        check_field(f.name, getattr(settings, f.name), f.metadata)
    return settings


def eval_command(task: ModuleType, args: argparse.Namespace) -> int:
    settings = settings_from(args, task.Evaluate, "evaluate:") if hasattr(task, "Evaluate") else None
    model, vocabularies, config = model_for(task, args, "eval")
    if args.dry_run:
        splits = {"built-in tiny data": task.batches(config, task.load_data(config, tiny=True))[1]}
    else:
        if not args.data and not getattr(task, "generates_data", False):
            raise RnnkitError(f"{task.name} eval needs a CHECKPOINT and --data PATH (or --dry-run)")
        splits = task.eval_data(args.data or "", vocabularies, config)
    if getattr(args, "out", None) and not hasattr(task, "figures"):
        raise RnnkitError(f"--out: {task.name} eval draws no figures (its metrics are printed)")
    written = []
    # checked before anything is computed, and all figures or none: an interrupted eval leaves no half set behind
    with staged_output(getattr(args, "out", None) or "", "*.png", "--out", getattr(args, "overwrite", False)) as stage:
        for name, batches in splits.items():
            metrics = task.evaluate(
                model, batches, args.device, **({"settings": settings} if settings is not None else {})
            )
            if not math.isfinite(metrics["loss"]):
                raise RnnkitError(f"{name}: the loss is {metrics['loss']} (the model's outputs are not finite)")
            print(f"{name}: {task.describe(metrics)}")
            if hasattr(task, "details"):
                print(task.details(metrics))
            if stage is not None:
                for file, picture in task.figures(metrics).items():
                    written.append(f"{Path(name).name}.{file}" if len(splits) > 1 else file)
                    atomic_write(stage / written[-1], lambda handle, data=picture: handle.write(data))
    for file in written:
        print(f"wrote {Path(args.out) / file}")
    return 0
