"""Model bundles: a trained model as plain files to share, in the spirit of Hugging Face's save_pretrained.

    DIRECTORY/
      model.safetensors   the weights: a JSON header and raw tensors (safetensors; no pickle, so it runs no code)
      config.json         {"format": "rnnkit-bundle", "version": 1, "task", "step", "config", "vocabularies", "tied"}
      vocab-NAME.json     each vocabulary's to_dict(); a byte-pair model's bytes as vocab-NAME.model beside it
      README.md           the model card (rnnkit/model_card.py): task, data, evaluation, how it was trained

save_bundle(trained, DIR) writes one from a loaded model (Trained.save), bundle_checkpoint(checkpoint, DIR) from
a checkpoint (`rnnkit export CHECKPOINT --bundle DIR`). load_bundle reads one back as the checkpoint dict
load_checkpoint returns, without optimizer or train_state, which is how rnnkit.load and every command take it.

safetensors refuses tensors that share memory, and tied weights (wordlm's decoder.weight is its
embedding.weight) are one tensor under two names: it is stored once, config.json's "tied" maps the other
name to it, and loading puts it back under both. Any other tensor sharing memory is stored as a copy.

The directory appears whole or not at all: it is written into a hidden directory beside the target and
renamed into place. An existing target is refused unless `overwrite`, and even then only an earlier bundle
(nothing but a bundle's files) is replaced, once the new one is complete; a user's other files are never removed.
"""

import base64
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rnnkit.checkpoint import FORMAT as CHECKPOINT_FORMAT
from rnnkit.checkpoint import FORMAT_VERSION as CHECKPOINT_VERSION
from rnnkit.checkpoint import check_schema
from rnnkit.data.vocab import vocab_from_dict
from rnnkit.errors import RnnkitError
from rnnkit.tasks import TASKS, from_checkpoint

FORMAT = "rnnkit-bundle"
FORMAT_VERSION = 1
MODEL, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
VOCABULARY_NAME = re.compile(r"[A-Za-z0-9_]+")  # a vocabulary's name becomes part of a file name
BUNDLE_FILE = re.compile(r"model\.safetensors|config\.json|README\.md|vocab-[A-Za-z0-9_]+\.(json|model)")


# --- tensors ----------------------------------------------------------------------------------------------------------
def untie(state_dict: dict) -> tuple[dict, dict]:
    """(tensors safetensors accepts, {name: the name it is tied to}): a tensor seen under an earlier name is
    recorded, not stored again; one that only overlaps another's memory (a view) is copied."""
    tensors, tied, first_name, storages = {}, {}, {}, set()
    for name, tensor in state_dict.items():
        tensor = tensor.detach()
        storage = tensor.untyped_storage().data_ptr()
        key = (storage, tensor.storage_offset(), tuple(tensor.shape), tensor.stride(), tensor.dtype, tensor.device)
        if tensor.numel() and key in first_name:  # the same tensor again: tied weights
            tied[name] = first_name[key]
            continue
        first_name[key] = name
        shares = tensor.numel() and storage in storages  # another stored tensor's memory: a copy of its own
        storages.add(storage)
        tensors[name] = tensor.to("cpu").clone() if shares else tensor.to("cpu").contiguous()
    return tensors, tied


def read_tensors(path: Path) -> dict:
    """model.safetensors as {name: tensor}, or one line naming the file."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise RnnkitError(f"{path}: no such file (a bundle's weights)")
    try:
        return load_file(path, device="cpu")
    except Exception as error:  # a header that is not JSON, a file cut short, a pickle renamed: all one answer
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise RnnkitError(f"{path}: not a readable safetensors file ({reason[:200]})") from None


# --- vocabularies -----------------------------------------------------------------------------------------------------
def vocabulary_files(name: str, data: dict) -> dict[str, bytes]:
    """A vocabulary's to_dict() as its files: vocab-NAME.json, and a byte-pair model's bytes as vocab-NAME.model
    (a sentencepiece model is binary: the checkpoint holds it as base64 text, the bundle as the file itself)."""
    if data.get("kind") == "bpe":
        model = f"vocab-{name}.model"
        return {
            f"vocab-{name}.json": json_bytes({**data, "model": model}),
            model: base64.b64decode(data["model"]),
        }
    return {f"vocab-{name}.json": json_bytes(data)}


def read_vocabulary(directory: Path, name: str) -> dict:
    """vocab-NAME.json (and vocab-NAME.model) back as the vocabulary's to_dict(), checked."""
    path = directory / f"vocab-{name}.json"
    data = read_json(path, f"config.json names vocabulary {name!r}")
    if not isinstance(data, dict):
        raise RnnkitError(f"{path}: a vocabulary must be a JSON object, got {type(data).__name__}")
    if data.get("kind") == "bpe":
        model = directory / f"vocab-{name}.model"
        if data.get("model") != model.name:
            raise RnnkitError(
                f"{path}: a byte-pair vocabulary's model must be {model.name!r}, got {data.get('model')!r}"
            )
        if not model.is_file():
            raise RnnkitError(f"{model}: no such file ({path.name} names it)")
        data = {**data, "model": base64.b64encode(model.read_bytes()).decode("ascii")}
    try:
        vocab_from_dict(data)
    except RnnkitError as error:
        raise RnnkitError(f"{path}: {error}") from None
    return data


# --- files ------------------------------------------------------------------------------------------------------------
def json_bytes(data) -> bytes:
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def read_json(path: Path, needed: str):
    if not path.is_file():
        raise RnnkitError(f"{path}: no such file ({needed})")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RnnkitError(f"{path}: not valid JSON ({str(error)[:200]})") from None


def write_synced(path: Path, data: bytes) -> None:
    with path.open("xb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def sync(path: Path) -> None:
    """Flush a file or directory to disk (a directory: the names in it, so a rename survives a power cut)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def hidden_name(target: Path, kind: str) -> Path:
    """.NAME.<pid>-<random>.KIND beside target: unique per writer, on the same file system as the target."""
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.{kind}")


# --- the directory, whole or not at all -------------------------------------------------------------------------------
def is_bundle(path: str | Path) -> bool:
    """A directory holding model.safetensors, or a config.json that says it is a bundle's (a run directory's
    config.json does not)."""
    path = Path(path)
    if not path.is_dir():
        return False
    if (path / MODEL).exists():
        return True
    try:
        data = json.loads((path / CONFIG).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def check_destination(target: Path, overwrite: bool, remedy: str = "pass overwrite=True") -> None:
    """Refuse, in one line, a target whose replacing could lose anything: a file or link, a directory that is
    not empty without `overwrite`, and even with it one that holds anything but an earlier bundle's files."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise RnnkitError(f"{target}: exists and is not a directory; a bundle is a directory of its own")
    entries = sorted(target.iterdir()) if target.is_dir() else []
    if not entries:
        return  # nothing there to lose
    if not overwrite:
        raise RnnkitError(f"{target} already exists; {remedy} to replace it, or choose another directory")
    foreign = [entry.name for entry in entries if not BUNDLE_FILE.fullmatch(entry.name) or entry.is_dir()]
    if foreign or not is_bundle(target):
        what = f"holds {foreign[0]}, which is not part of" if foreign else "is not"
        raise RnnkitError(
            f"{target} {what} an rnnkit bundle; only a bundle is replaced: move it away or choose another directory"
        )


def write_directory(target: Path, files: Callable[[Path], None], overwrite: bool) -> Path:
    """files(stage) writes into a hidden directory beside `target`, which is then renamed into place: on any
    failure nothing appears, and an earlier bundle at `target` is replaced only once the new one is complete."""
    check_destination(target, overwrite)
    made = [parent for parent in target.parents if not parent.exists()]  # the parents this creates, deepest first
    target.parent.mkdir(parents=True, exist_ok=True)
    stage, old = hidden_name(target, "tmp"), None
    try:
        stage.mkdir()  # the usual permissions (0777 less the umask): a bundle is for sharing
        files(stage)
        for file in stage.iterdir():
            sync(file)
        sync(stage)
        check_destination(target, overwrite)  # again: something may have arrived while the files were written
        if target.exists():  # an empty directory, or an earlier bundle: moved aside until the new one is in place
            old = hidden_name(target, "old")
            os.rename(target, old)
        os.rename(stage, target)
    except BaseException:
        if old is not None and not target.exists():
            os.rename(old, target)  # the earlier bundle back where it was
        shutil.rmtree(stage, ignore_errors=True)
        for parent in made:  # only the directories this made, and only while empty
            try:
                parent.rmdir()
            except OSError:
                break
        raise
    if old is not None:
        shutil.rmtree(old)
    sync(target.parent)
    return target


# --- writing and reading a bundle -------------------------------------------------------------------------------------
def bundle_checkpoint(
    checkpoint: dict, directory: str | Path, overwrite: bool = False, source: str | Path | None = None
) -> Path:
    """A checkpoint dict (load_checkpoint's) as a bundle at `directory`; `source`, the checkpoint's file, lets the
    model card read the validation figures in the metrics.jsonl of its run. Returns the directory."""
    from safetensors.torch import save_file

    from rnnkit import __version__
    from rnnkit.model_card import model_card

    where = str(source) if source is not None else "checkpoint"
    model, vocabularies, config, task = from_checkpoint(checkpoint, "cpu", where)  # never bundle what cannot load
    tensors, tied = untie(checkpoint["model"])
    step = checkpoint.get("step")
    settings = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "task": task.name,
        "step": step,
        "config": asdict(config),
        "vocabularies": sorted(checkpoint["vocabularies"]),
        "tied": tied,
        "rnnkit_version": __version__,
    }
    for name in checkpoint["vocabularies"]:
        if not VOCABULARY_NAME.fullmatch(name):
            raise RnnkitError(f"{where}: vocabulary name {name!r} cannot name a file (letters, digits and _ only)")
    card = model_card(task, config, vocabularies, model, step, checkpoint.get("train_state"), source)

    def files(stage: Path) -> None:
        save_file(tensors, stage / MODEL, metadata={"format": "pt", "rnnkit_task": task.name})
        write_synced(stage / CONFIG, json_bytes(settings))
        for name, data in checkpoint["vocabularies"].items():
            for file, content in vocabulary_files(name, data).items():
                write_synced(stage / file, content)
        write_synced(stage / CARD, card.encode("utf-8"))

    return write_directory(Path(directory), files, overwrite)


def save_bundle(trained, directory: str | Path, overwrite: bool = False) -> Path:
    """A loaded model (rnnkit.load's Trained) as a bundle at `directory`, with its weights as they are now."""
    checkpoint = {
        "task": trained.task.name,
        "model": trained.model.state_dict(),
        "config": asdict(trained.config),
        "vocabularies": {name: vocab.to_dict() for name, vocab in trained.vocabularies.items()},
        "step": trained.step,  # None for a model built in Python rather than loaded
    }
    return bundle_checkpoint(checkpoint, directory, overwrite)


def read_settings(path: Path) -> dict:
    """config.json, checked to be a bundle's of a version this rnnkit reads, with each key of its type."""
    config_path = path / CONFIG
    data = read_json(config_path, "a bundle's settings")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RnnkitError(f"{config_path}: not an rnnkit bundle's config.json (no '{FORMAT}' format marker)")
    if not isinstance(data.get("version"), int) or data["version"] > FORMAT_VERSION:
        raise RnnkitError(
            f"{config_path}: bundle format version {data.get('version')} is newer than this rnnkit reads "
            f"({FORMAT_VERSION}); upgrade rnnkit"
        )
    kinds = {"task": str, "config": dict, "vocabularies": list, "tied": dict, "step": (int, type(None))}
    for key, kind in kinds.items():
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise RnnkitError(f"{config_path}: key {key!r} is missing or of the wrong type ({data.get(key)!r})"[:300])
    names = [name for name in data["vocabularies"] if not isinstance(name, str) or not VOCABULARY_NAME.fullmatch(name)]
    if names:
        raise RnnkitError(f"{config_path}: {names[0]!r} is not a vocabulary name (letters, digits and _ only)")
    if not all(isinstance(name, str) and isinstance(to, str) for name, to in data["tied"].items()):
        raise RnnkitError(f"{config_path}: 'tied' must map tensor names to tensor names")
    return data


def load_bundle(path: str | Path, task: str | None = None) -> dict:
    """A bundle as a checkpoint dict (load_checkpoint's, without optimizer or train_state), each problem one line
    naming its file; `task` refuses a bundle of another task."""
    path = Path(path)
    settings = read_settings(path)
    if settings["task"] not in TASKS:
        raise RnnkitError(f"{path / CONFIG}: a bundle of task {settings['task']!r}, which this rnnkit does not know")
    if task is not None and settings["task"] != task:
        raise RnnkitError(f"{path}: a {settings['task']} bundle, not a {task} one")
    vocabularies = {name: read_vocabulary(path, name) for name in settings["vocabularies"]}
    tensors = read_tensors(path / MODEL)
    for name, to in settings["tied"].items():  # one tensor under both names again, as the model ties them
        if to not in tensors:
            raise RnnkitError(f"{path / CONFIG}: {name} is tied to {to}, which {MODEL} does not hold")
        tensors[name] = tensors[to]
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "task": settings["task"],
        "model": tensors,
        "config": settings["config"],
        "vocabularies": vocabularies,
        "step": settings["step"] or 0,  # a bundle saved from Python does not know its step
    }
    check_schema(path, checkpoint)
    return checkpoint
