"""`rnnkit export CHECKPOINT --onnx FILE | --bundle DIR`: a language model, or a translation model's encoder and
decoder step, as ONNX graphs (rnnkit/export.py); or a model of any task as a bundle to share (rnnkit/bundle.py).
Part of the CLI."""

import argparse
import tempfile
from pathlib import Path

from rnnkit.checkpoint import load_any
from rnnkit.errors import RnnkitError
from rnnkit.tasks import TASKS, from_checkpoint

EXPORTED = ("charlm", "wordlm", "seq2seq")


def bundle_command(args: argparse.Namespace) -> int:
    """--bundle DIR: the checkpoint (or run directory, or bundle) as model.safetensors, config.json, its
    vocabularies and a model card; the directory is checked before the checkpoint is read."""
    from dataclasses import asdict

    from rnnkit.bundle import bundle_checkpoint, check_destination

    if args.dry_run:
        if args.checkpoint:
            raise RnnkitError(
                f"--dry-run bundles an untrained tiny model; give CHECKPOINT ({args.checkpoint}) or --dry-run, not both"
            )
        model, vocabularies, config = TASKS["charlm"].tiny_model()
        checkpoint = {
            "task": "charlm",
            "model": model.state_dict(),
            "config": asdict(config),
            "vocabularies": {name: vocab.to_dict() for name, vocab in vocabularies.items()},
            "step": 0,
        }
        with tempfile.TemporaryDirectory() as scratch:
            bundle_checkpoint(checkpoint, Path(scratch) / "bundle")
            written = sorted(file.name for file in (Path(scratch) / "bundle").iterdir())
        print(f"wrote a tiny model's bundle: {', '.join(written)}")
        return 0
    if not args.checkpoint:
        raise RnnkitError("rnnkit export --bundle needs a CHECKPOINT (or --dry-run)")
    target = Path(args.bundle)
    check_destination(target, args.overwrite, "pass --overwrite")  # before the checkpoint is read
    checkpoint, where = load_any(args.checkpoint)
    source = where if Path(where).is_file() else None  # a checkpoint file: its run's metrics.jsonl feeds the card
    bundle_checkpoint(checkpoint, target, overwrite=args.overwrite, source=source)
    files = sorted(target.iterdir())
    print(f"wrote {target}: {', '.join(f'{file.name} ({file.stat().st_size:,} bytes)' for file in files)}")
    return 0


def export_command(args: argparse.Namespace) -> int:
    if args.onnx and args.bundle:
        raise RnnkitError("rnnkit export writes --onnx FILE or --bundle DIR: one at a time")
    if args.bundle:
        return bundle_command(args)
    from rnnkit.export import export_onnx, export_seq2seq, seq2seq_paths  # imports torch.onnx: only when exporting

    if args.dry_run:
        model, _, _ = TASKS["charlm"].tiny_model()
        task_name = "charlm"
    else:
        if not args.checkpoint or not args.onnx:
            raise RnnkitError("rnnkit export needs a CHECKPOINT and --onnx FILE or --bundle DIR (or --dry-run)")
        checkpoint, where = load_any(args.checkpoint)
        model, _, _, task = from_checkpoint(checkpoint, "cpu", where)
        if task.name not in EXPORTED:
            raise RnnkitError(f"{where}: export --onnx knows {', '.join(EXPORTED)}, not {task.name}")
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
                f"wrote {encoder} (source (B, S) -> memory, keys, the decoder's first state) and {decoder} (one "
                "decoder step: previous (B,), memory, keys, mask, state -> log_probs (B, V), weights (B, S), state)"
            )
            return 0
        names = export_onnx(model, path)
        print(
            f"wrote {'a tiny model' if args.dry_run else path}: inputs ids (B, T) and {', '.join(names)} (B, H); "
            f"outputs logits (B, T, V) and {', '.join(n + '_out' for n in names)}"
        )
    return 0
