"""`rnnkit export CHECKPOINT --onnx FILE`: a language model, or a translation model's encoder and decoder
step, as ONNX graphs. Part of the CLI."""

import argparse
import tempfile
from pathlib import Path

from rnnkit.checkpoint import load_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.tasks import charlm, from_checkpoint, tiny_model

EXPORTED = ("charlm", "wordlm", "seq2seq")


def export_command(args: argparse.Namespace) -> int:
    from rnnkit.export import export_onnx, export_seq2seq, seq2seq_paths  # imports torch.onnx: only when exporting

    if args.dry_run:
        model, _, _ = tiny_model(charlm)
        task_name = "charlm"
    else:
        if not args.checkpoint or not args.onnx:
            raise RnnkitError("rnnkit export needs a CHECKPOINT and --onnx FILE (or --dry-run)")
        model, _, _, task = from_checkpoint(load_checkpoint(args.checkpoint), "cpu", args.checkpoint)
        if task.name not in EXPORTED:
            raise RnnkitError(f"{args.checkpoint}: export knows {', '.join(EXPORTED)}, not {task.name}")
        task_name = task.name
        targets = seq2seq_paths(args.onnx) if task_name == "seq2seq" else (Path(args.onnx),)
        for target in targets:
            if target.is_dir():
                raise RnnkitError(f"--onnx: {target} is a directory; name the file to write")
            if target.exists() and not args.overwrite:
                raise RnnkitError(f"{target} already exists; pass --overwrite or another --onnx")
            blocking = next((parent for parent in target.parents if parent.exists() and not parent.is_dir()), None)
            if blocking is not None:
                raise RnnkitError(f"--onnx: {target}: {blocking} is a file, not a directory")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.onnx" if args.dry_run else Path(args.onnx)
        if task_name == "seq2seq":
            encoder, decoder = export_seq2seq(model, path)
            print(
                f"wrote {encoder} (source (B, S) -> memory, keys, the decoder's first state) and {decoder} (one decoder step: "
                "previous (B,), memory, keys, mask, state -> log_probs (B, V), weights (B, S), state)"
            )
            return 0
        names = export_onnx(model, path)
        print(
            f"wrote {'a tiny model' if args.dry_run else path}: inputs ids (B, T) and {', '.join(names)} (B, H); "
            f"outputs logits (B, T, V) and {', '.join(n + '_out' for n in names)}"
        )
    return 0
