"""Tests for rnnkit/checkpoint.py: the round trip, loading with weights_only=True, refusing anything that is
not a whole rnnkit checkpoint (including a pickle that would run code), and atomic writes."""

import os
import shlex
from dataclasses import asdict

import pytest
import torch

from rnnkit.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, save_checkpoint
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.models.char_lm import CharLM
from rnnkit.tasks import TASKS
from rnnkit.tasks.charlm import ModelConfig

VOCAB = Vocab.from_text("hello wörld 😀")


def make_checkpoint(step: int = 3) -> dict:
    """What `charlm train` saves: model and optimizer state_dicts, config, vocabulary, step."""
    config = TASKS["charlm"].Config(model=ModelConfig(embedding_size=8, hidden_size=16, num_layers=1, dropout=0.0))
    model = CharLM(len(VOCAB), config.model)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.zeros(1, 2, dtype=torch.long))[0].sum().backward()
    optimizer.step()  # so the optimizer has state to save
    return {
        "task": "charlm",
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": asdict(config),
        "vocabularies": {"text": VOCAB.to_dict()},
        "step": step,
    }


def test_round_trip(tmp_path):
    """What is saved loads back equal: tensors, config, vocabulary and step, plus the format marker."""
    checkpoint = make_checkpoint()
    path = tmp_path / "run" / "last.pt"  # the parent directory is created
    save_checkpoint(path, checkpoint)
    loaded = load_checkpoint(path, task="charlm")
    assert loaded["format"] == FORMAT and loaded["version"] == FORMAT_VERSION
    assert (
        loaded["config"] == checkpoint["config"]
        and loaded["vocabularies"] == checkpoint["vocabularies"]
        and loaded["step"] == 3
    )
    assert loaded["model"].keys() == checkpoint["model"].keys()
    assert all(torch.equal(loaded["model"][k], v) for k, v in checkpoint["model"].items())
    assert loaded["optimizer"]["state"].keys() == checkpoint["optimizer"]["state"].keys()
    model = CharLM(len(Vocab.from_dict(loaded["vocabularies"]["text"])), ModelConfig(**loaded["config"]["model"]))
    model.load_state_dict(loaded["model"])  # the saved weights fit the saved config


def test_loads_with_weights_only(tmp_path):
    """A checkpoint is tensors and builtins only, so torch's safe loader reads it."""
    path = tmp_path / "last.pt"
    save_checkpoint(path, make_checkpoint())
    data = torch.load(path, weights_only=True)
    assert data["format"] == FORMAT and data["task"] == "charlm"


class RunsCode:
    """Unpickling this runs a shell command: what a malicious 'checkpoint' would do."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_random_bytes(path):
    path.write_bytes(bytes(range(256)) * 8)


def write_text(path):
    path.write_text("these are not the weights you are looking for\n")


def write_truncated(path):
    save_checkpoint(path, make_checkpoint())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_unmarked_dict(path):
    checkpoint = make_checkpoint()
    torch.save(checkpoint, path)  # a plain torch.save: no format marker


def write_a_tensor(path):
    torch.save(torch.zeros(3), path)


def write_newer_version(path):
    torch.save({"format": FORMAT, "version": FORMAT_VERSION + 1, **make_checkpoint()}, path)


def write_missing_keys(path):
    checkpoint = make_checkpoint()
    del checkpoint["vocabularies"]
    torch.save({"format": FORMAT, "version": FORMAT_VERSION, **checkpoint}, path)


BAD_FILES = {
    "random-bytes": (write_random_bytes, "not a readable rnnkit checkpoint"),
    "text-file": (
        write_text,
        r"not a readable rnnkit checkpoint \(those are zip archives written by torch.save; this file begins",
    ),
    "truncated": (write_truncated, "not a readable rnnkit checkpoint"),
    "no-marker": (write_unmarked_dict, "not an rnnkit checkpoint"),
    "not-a-dict": (write_a_tensor, "not an rnnkit checkpoint"),
    "newer-version": (write_newer_version, f"version {FORMAT_VERSION + 1} is newer"),
    "missing-keys": (write_missing_keys, "lacks vocab"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_refuses_what_is_not_a_whole_checkpoint(tmp_path, kind):
    """Each kind of bad file is one RnnkitError that names the path and says what is wrong."""
    write, reason = BAD_FILES[kind]
    path = tmp_path / "model.pt"
    write(path)
    with pytest.raises(RnnkitError, match=reason) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_file_is_an_error(tmp_path):
    path = tmp_path / "nowhere.pt"
    with pytest.raises(RnnkitError, match="no such checkpoint file") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)


def test_wrong_task_is_an_error(tmp_path):
    """A checkpoint of another task is refused when a task is asked for."""
    path = tmp_path / "model.pt"
    save_checkpoint(path, {**make_checkpoint(), "task": "tagger"})
    with pytest.raises(RnnkitError, match="a tagger checkpoint, not a charlm one"):
        load_checkpoint(path, task="charlm")


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    """A file whose unpickling would run a command is an RnnkitError, and the command never runs.
    (The payload is live: torch's unsafe loader does run it.)"""
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save(
        {"format": FORMAT, "version": FORMAT_VERSION, "model": RunsCode(f"touch {shlex.quote(str(marker))}")}, path
    )
    with pytest.raises(RnnkitError) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert marker.exists()


def test_save_leaves_no_temporary_files(tmp_path):
    """Saving (and saving again over the same path) leaves exactly the checkpoint in the directory."""
    path = tmp_path / "last.pt"
    save_checkpoint(path, make_checkpoint(step=1))
    save_checkpoint(path, make_checkpoint(step=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(path)["step"] == 2


@pytest.mark.parametrize(
    "error", [OSError("No space left on device"), KeyboardInterrupt()], ids=["disk-full", "interrupt"]
)
def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    """If torch.save dies half-way (after writing some bytes), the old checkpoint is byte-identical, the
    error propagates, and no temporary file is left behind."""
    path = tmp_path / "last.pt"
    save_checkpoint(path, make_checkpoint(step=1))
    before = path.read_bytes()

    def half_save(obj, file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise error

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(type(error)):
        save_checkpoint(path, make_checkpoint(step=2))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
