"""save_checkpoint / load_checkpoint: one format for every command.

A checkpoint is a plain dict of tensors and builtins:

    format, version   "rnnkit-checkpoint", FORMAT_VERSION
    task              "charlm", "wordlm", ... (a name in rnnkit.tasks.TASKS)
    model, optimizer  state_dicts
    config            asdict of the task's config
    vocabularies      {name: vocabulary.to_dict()}, e.g. {"text": ...} or {"source": ..., "target": ...}
    step              optimizer steps done
    train_state       RNG states, carried hidden state, best validation loss, clip count, ...

Version 1 (the character LM alone) held one `vocab`; it is read as version 2 with vocabularies
{"text": vocab}.

It is written atomically (temporary file, flush, fsync, rename), so a kill at any moment leaves the
previous checkpoint whole, and read with torch.load(weights_only=True), which refuses to unpickle
anything but tensors and builtins: a checkpoint can never run code.
"""

import warnings
from pathlib import Path

import torch

from rnnkit.errors import RnnkitError
from rnnkit.files import atomic_write

FORMAT = "rnnkit-checkpoint"
FORMAT_VERSION = 2
REQUIRED_KEYS = ("model", "config", "vocabularies", "step", "task")


def save_checkpoint(path: str | Path, checkpoint: dict) -> None:
    """Write `checkpoint` to `path` atomically: readers see the old file or the new one, never half of one."""
    data = {"format": FORMAT, "version": FORMAT_VERSION, **checkpoint}
    atomic_write(path, lambda file: torch.save(data, file))


def load_checkpoint(path: str | Path, task: str | None = None) -> dict:
    """Read a checkpoint onto the CPU, refusing anything that is not a whole rnnkit checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise RnnkitError(f"{path}: no such checkpoint file")
    with path.open("rb") as file:
        head = file.read(4)
    # torch.save writes a zip archive; what else torch.load reads says only "KeyError: '101'"
    if head != b"PK\x03\x04":
        raise RnnkitError(
            f"{path}: not a readable rnnkit checkpoint "
            f"(those are zip archives written by torch.save; this file begins {head!r})"
        )
    try:
        with (
            warnings.catch_warnings()
        ):  # a corrupt file can make torch warn before it fails: the error below says it all
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle with code in it, plain text, ...: all one answer
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RnnkitError(f"{path}: not a readable rnnkit checkpoint ({reason[:200]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RnnkitError(f"{path}: not an rnnkit checkpoint (no '{FORMAT}' marker)")
    if not isinstance(data.get("version"), int) or data["version"] > FORMAT_VERSION:
        raise RnnkitError(
            f"{path}: checkpoint format version {data.get('version')} "
            f"is newer than this rnnkit reads ({FORMAT_VERSION}); upgrade rnnkit"
        )
    if data["version"] == 1 and "vocab" in data:  # version 1: the character LM's one vocabulary
        data["vocabularies"] = {"text": data.pop("vocab")}
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise RnnkitError(f"{path}: checkpoint lacks {', '.join(missing)}")
    if task is not None and data["task"] != task:
        raise RnnkitError(f"{path}: a {data['task']} checkpoint, not a {task} one")
    check_schema(path, data)
    return data


SCHEMA = {
    "task": str,
    "model": dict,
    "config": dict,
    "vocabularies": dict,
    "step": int,
    "optimizer": dict,
    "train_state": dict,
}


def check_schema(path: Path, data: dict) -> None:
    """Each key of the right type before anything is built from it: one line naming the file and the key."""
    for key, kind in SCHEMA.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise RnnkitError(
                f"{path}: checkpoint key {key!r} should be a {kind.__name__}, got {type(data[key]).__name__}"
            )
    for name, tensor in data["model"].items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise RnnkitError(
                f"{path}: checkpoint key 'model' should map names to tensors, got {type(tensor).__name__} for {name!r}"
            )
    for name, vocabulary in data["vocabularies"].items():
        if not isinstance(vocabulary, dict):
            raise RnnkitError(f"{path}: vocabulary {name!r} should be a dict, got {type(vocabulary).__name__}")
    if data["step"] < 0:
        raise RnnkitError(f"{path}: checkpoint key 'step' is negative ({data['step']})")


def load_any(path: str | Path, task: str | None = None) -> tuple[dict, str]:
    """(checkpoint, its name for messages) from a checkpoint file, a run directory (its best.pt) or a bundle
    directory (model.safetensors and config.json, read by rnnkit.bundle as a checkpoint without an optimizer)."""
    path = Path(path)
    if path.is_dir():
        from rnnkit.bundle import is_bundle, load_bundle

        if is_bundle(path):
            return load_bundle(path, task=task), str(path)
        if not (path / "best.pt").is_file():
            raise RnnkitError(f"{path}: a directory with neither best.pt (a run) nor model.safetensors (a bundle)")
        path = path / "best.pt"
    return load_checkpoint(path, task=task), str(path)
