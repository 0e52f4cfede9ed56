"""`rnnkit TASK eval` and the task's prediction command (`rnnkit charlm sample`, ...), for every task.

Part of the CLI: these functions read arguments, call the task's library functions, and print.
"""

import argparse
import math
import sys
from dataclasses import fields, replace
from types import ModuleType

from rnnkit.checkpoint import load_checkpoint
from rnnkit.commands.train import check_device, overrides_from
from rnnkit.config import check_field, replace_fields
from rnnkit.errors import RnnkitError
from rnnkit.tasks import from_checkpoint, tiny_model


def model_for(task: ModuleType, args: argparse.Namespace, verb: str):
    """(model, vocabularies): an untrained tiny one for --dry-run, else the checkpoint's, on --device."""
    check_device(args.device)
    if args.dry_run:
        model, vocabularies, _ = tiny_model(task)
        return model, vocabularies
    if not args.checkpoint:
        raise RnnkitError(f"{task.name} {verb} needs a CHECKPOINT (or --dry-run)")
    model, vocabularies, _, _ = from_checkpoint(load_checkpoint(args.checkpoint, task=task.name), args.device, args.checkpoint)
    return model, vocabularies


def predict_command(task: ModuleType, args: argparse.Namespace) -> int:
    settings = replace_fields(task.Predict(), overrides_from(args, "predict:"))
    for f in fields(settings):  # the same checks as every config field's
        check_field(f.name, getattr(settings, f.name), f.metadata)
    model, vocabularies = model_for(task, args, task.predict_verb)
    if args.dry_run:
        settings = replace(settings, length=min(settings.length, 50), num_samples=min(settings.num_samples, 4))
    pieces = task.predict(model, vocabularies, settings)  # checks its inputs now: an error before anything is printed
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    return 0


def eval_command(task: ModuleType, args: argparse.Namespace) -> int:
    model, vocabularies = model_for(task, args, "eval")
    if args.dry_run:
        config = task.build_config("tiny")
        splits = {"built-in tiny data": task.batches(config, task.load_data(config, tiny=True))[1]}
    else:
        if not args.data:
            raise RnnkitError(f"{task.name} eval needs a CHECKPOINT and --data PATH (or --dry-run)")
        splits = task.eval_data(args.data, vocabularies)
    for name, batches in splits.items():
        metrics = task.evaluate(model, batches, args.device)
        if not math.isfinite(metrics["loss"]):
            raise RnnkitError(f"{name}: the loss is {metrics['loss']} (the model's outputs are not finite)")
        print(f"{name}: {task.describe(metrics)}")
    return 0
