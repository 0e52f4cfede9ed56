"""`rnnkit export CHECKPOINT --onnx FILE`: a language model as an ONNX graph. Part of the CLI."""

import argparse
import tempfile
from pathlib import Path

from rnnkit.checkpoint import load_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.tasks import charlm, from_checkpoint, tiny_model


def export_command(args: argparse.Namespace) -> int:
    from rnnkit.export import export_onnx  # imports torch.onnx: only when exporting

    if args.dry_run:
        model, _, _ = tiny_model(charlm)
    else:
        if not args.checkpoint or not args.onnx:
            raise RnnkitError("rnnkit export needs a CHECKPOINT and --onnx FILE (or --dry-run)")
        if Path(args.onnx).exists() and not args.overwrite:
            raise RnnkitError(f"{args.onnx} already exists; pass --overwrite or another --onnx")
        model, _, _, task = from_checkpoint(load_checkpoint(args.checkpoint), "cpu", args.checkpoint)
        if task.name not in ("charlm", "wordlm"):
            raise RnnkitError(f"{args.checkpoint}: export knows the language models, not {task.name}")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.onnx" if args.dry_run else Path(args.onnx)
        names = export_onnx(model, path)
        print(f"wrote {'a tiny model' if args.dry_run else path}: inputs ids (B, T) and {', '.join(names)} (B, H); "
              f"outputs logits (B, T, V) and {', '.join(n + '_out' for n in names)}")
    return 0
