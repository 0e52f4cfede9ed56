"""Tests for rnnkit/bundle.py (and the model card, rnnkit/model_card.py): a bundle of every task loads to the
same weights and the same outputs as its checkpoint, holds no pickle, ties wordlm's weights again, appears whole
or not at all, replaces only an earlier bundle, and names the file for every bad input;
`rnnkit export CHECKPOINT --bundle DIR` writes one."""

import json
import re
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.numpy import load_file as load_numpy

import rnnkit
from rnnkit import bundle
from rnnkit.bundle import bundle_checkpoint, is_bundle, load_bundle
from rnnkit.checkpoint import load_any, load_checkpoint, save_checkpoint
from rnnkit.cli import main
from rnnkit.data.subword import Subwords
from rnnkit.errors import RnnkitError
from rnnkit.model_card import training_command
from rnnkit.tasks import TASKS


def tiny_checkpoint(name: str, overrides: dict | None = None, step: int = 3) -> dict:
    """An untrained tiny model of task `name` as the checkpoint dict training saves (without optimizer)."""
    task = TASKS[name]
    _, vocabularies, _ = task.tiny_model()
    config = task.build_config("tiny", overrides)
    model = task.build_model(config, vocabularies)
    return {
        "task": name,
        "model": model.state_dict(),
        "config": asdict(config),
        "vocabularies": {key: vocab.to_dict() for key, vocab in vocabularies.items()},
        "step": step,
    }


def bundled(tmp_path: Path, name: str = "charlm", overrides: dict | None = None) -> tuple[Path, Path]:
    """(best.pt, its bundle): a tiny checkpoint saved as training saves it, then bundled from the file."""
    checkpoint = tmp_path / "run" / "best.pt"
    save_checkpoint(checkpoint, tiny_checkpoint(name, overrides))
    return checkpoint, bundle_checkpoint(load_checkpoint(checkpoint), tmp_path / "bundle", source=checkpoint)


def first_batch_loss(task, model, vocabularies, config) -> float:
    """The task's loss on its first tiny validation batch: every output of the model enters it."""
    batches = task.batches(config, task.load_data(config, tiny=True))[1]
    torch.manual_seed(0)
    with torch.no_grad():
        return float(task.step_loss(model.eval(), batches[0], None)[0])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A charlm run of the tiny preset, briefly trained by the CLI in-process: best.pt and metrics.jsonl."""
    out = tmp_path_factory.mktemp("run") / "charlm"
    flags = ["--train.max_steps=4", "--train.eval_interval=2", "--train.eval_tokens=256"]
    assert main(["charlm", "train", "--preset", "tiny", "--out", str(out), "--quiet", *flags]) == 0
    return out


# --- the same model back ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TASKS))
def test_a_bundle_loads_to_the_checkpoints_weights_and_outputs(tmp_path, name):
    """rnnkit.load(bundle) equals rnnkit.load(best.pt): every tensor bit for bit, the vocabularies and config,
    and the loss on a validation batch."""
    checkpoint, directory = bundled(tmp_path, name)
    from_bundle, from_checkpoint = rnnkit.load(directory), rnnkit.load(checkpoint)
    expected, got = from_checkpoint.model.state_dict(), from_bundle.model.state_dict()
    assert list(got) == list(expected)
    for key, tensor in expected.items():
        assert torch.equal(got[key], tensor), key
    assert from_bundle.config == from_checkpoint.config
    assert {k: v.to_dict() for k, v in from_bundle.vocabularies.items()} == {
        k: v.to_dict() for k, v in from_checkpoint.vocabularies.items()
    }
    task = from_checkpoint.task
    assert first_batch_loss(task, from_bundle.model, from_bundle.vocabularies, from_bundle.config) == (
        first_batch_loss(task, from_checkpoint.model, from_checkpoint.vocabularies, from_checkpoint.config)
    )
    assert load_bundle(directory)["step"] == 3


def test_a_trained_charlm_samples_the_same_text_from_its_bundle(trained_run, tmp_path):
    bundle_checkpoint(load_checkpoint(trained_run / "best.pt"), tmp_path / "bundle", source=trained_run / "best.pt")
    settings = {"length": 60, "temperature": 0.8, "seed": 5}
    assert rnnkit.load(tmp_path / "bundle").sample("ROMEO:", **settings) == rnnkit.load(trained_run).sample(
        "ROMEO:", **settings
    )


def test_trained_save_writes_a_bundle_of_its_weights_as_they_are(tmp_path):
    checkpoint, _ = bundled(tmp_path, "wordlm")
    trained = rnnkit.load(checkpoint)
    with torch.no_grad():
        trained.model.decoder.bias.add_(1.0)  # changed after loading: the bundle holds what the model holds now
    assert trained.save(tmp_path / "saved") == tmp_path / "saved"
    again = rnnkit.load(tmp_path / "saved")
    for key, tensor in trained.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[key], tensor), key
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["step"] == 3  # loaded: its step is known
    assert again.step == 3
    built = rnnkit.TASKS["wordlm"].trained(trained.model, trained.vocabularies, trained.config, trained.task)
    built.save(tmp_path / "built")  # a model made in Python does not know how far it was trained
    assert json.loads((tmp_path / "built" / "config.json").read_text())["step"] is None
    assert "an unrecorded number of steps" in (tmp_path / "built" / "README.md").read_text()


def test_tied_weights_are_stored_once_and_tied_again(tmp_path):
    """wordlm's decoder.weight is its embedding.weight: one tensor in the file, both names when loaded."""
    _, directory = bundled(tmp_path, "wordlm", {"model.tie_weights": True})
    stored = load_numpy(directory / "model.safetensors")
    assert "embedding.weight" in stored and "decoder.weight" not in stored
    assert json.loads((directory / "config.json").read_text())["tied"] == {"decoder.weight": "embedding.weight"}
    checkpoint = load_bundle(directory)
    assert checkpoint["model"]["decoder.weight"] is checkpoint["model"]["embedding.weight"]
    model = rnnkit.load(directory).model
    assert model.decoder.weight is model.embedding.weight


def test_a_view_of_another_tensors_memory_is_stored_as_a_copy(tmp_path):
    """safetensors refuses tensors that share memory: a view that is not the same tensor becomes its own copy."""
    table = torch.arange(12.0).reshape(3, 4)
    tensors, tied = bundle.untie({"table": table, "row": table[1], "column": table[:, 2], "again": table})
    assert tied == {"again": "table"}
    assert tensors["row"].untyped_storage().data_ptr() != table.untyped_storage().data_ptr()
    assert tensors["column"].is_contiguous() and torch.equal(tensors["column"], table[:, 2])


# --- no pickle --------------------------------------------------------------------------------------------------------
def test_a_bundle_holds_no_pickle(tmp_path):
    """model.safetensors reads with safetensors and NumPy alone; every other file is JSON or text."""
    checkpoint, directory = bundled(tmp_path, "charlm")
    arrays = load_numpy(directory / "model.safetensors")
    for key, tensor in load_checkpoint(checkpoint)["model"].items():
        assert (arrays[key] == tensor.numpy()).all(), key
    for file in directory.iterdir():
        data = file.read_bytes()
        assert not data.startswith((b"PK\x03\x04", b"\x80")), file.name  # torch.save's zip, a bare pickle
        if file.suffix == ".json":
            json.loads(data)
        elif file.suffix == ".md":
            data.decode("utf-8")


def test_a_byte_pair_model_is_a_file_of_its_own(tmp_path):
    """seq2seq's sentencepiece model is bytes (base64 text in a checkpoint): vocab-NAME.model in a bundle."""
    sentences = [f"the {word} sat on the mat number {k}" for k, word in enumerate(["cat", "dog", "owl"] * 20)]
    tokenizer = Subwords.learn(sentences, 40)
    files = bundle.vocabulary_files("source_tokens", tokenizer.to_dict())
    assert files["vocab-source_tokens.model"] == tokenizer.model
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    assert json.loads((tmp_path / "vocab-source_tokens.json").read_text())["model"] == "vocab-source_tokens.model"
    assert bundle.read_vocabulary(tmp_path, "source_tokens") == tokenizer.to_dict()


# --- the model card ---------------------------------------------------------------------------------------------------
def test_the_model_card_says_what_how_and_how_well(trained_run, tmp_path):
    directory = bundle_checkpoint(
        load_checkpoint(trained_run / "best.pt"), tmp_path / "bundle", source=trained_run / "best.pt"
    )
    card = (directory / "README.md").read_text()
    best = min(
        (json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()),
        key=lambda r: r["val_loss"] or 1e9,
    )
    assert "# rnnkit charlm model" in card and "Character-level language model" in card
    assert f"rnnkit {rnnkit.__version__} on " in card
    assert "the bundled Tiny Shakespeare" in card
    assert f"at step {best['step']}: loss {best['val_loss']:.4f} nats/char" in card
    assert (
        "rnnkit charlm train --preset tiny --train.max_steps=4 --train.eval_interval=2 --train.eval_tokens=256" in card
    )


def test_the_model_card_reads_no_other_runs_figures(trained_run, tmp_path):
    """A checkpoint copied beside another run's metrics.jsonl: the card falls back to the checkpoint's own
    train_state rather than print figures of other weights."""
    checkpoint = load_checkpoint(trained_run / "best.pt")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "best.pt").write_bytes((trained_run / "best.pt").read_bytes())
    record = {"step": checkpoint["step"], "val_loss": 0.5, "val_bits": 0.7, "val_perplexity": 1.6, "val_tokens": 9}
    (tmp_path / "elsewhere" / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    bundle_checkpoint(checkpoint, tmp_path / "bundle", source=tmp_path / "elsewhere" / "best.pt")
    card = (tmp_path / "bundle" / "README.md").read_text()
    best = checkpoint["train_state"]["best_val_loss"]
    assert f"The run's best validation loss by step {checkpoint['step']}: {best:.4f} nats/char" in card
    assert "On the validation data" not in card


@pytest.mark.parametrize(
    "name, preset, overrides",
    [
        ("charlm", None, {}),
        ("charlm", "cpu-demo", {"data.path": "my text.txt", "train.learning_rate": 1e-3, "model.cell": "gru"}),
        ("wordlm", "tiny", {"model.tie_weights": False, "model.forget_bias": 1.0}),
    ],
)
def test_the_training_command_rebuilds_the_config(name, preset, overrides):
    """The command in the card, parsed back, builds the very config the model trained with."""
    task = TASKS[name]
    config = task.build_config(preset, overrides)
    words = shlex.split(training_command(task, config))
    assert words[:3] == ["rnnkit", name, "train"]
    chosen, flags, rest = None, {}, iter(words[3:])
    for word in rest:
        if word == "--preset":
            chosen = next(rest)
        elif word == "--data":
            flags["data.path"] = next(rest)
        else:
            key, value = word[2:].split("=", 1)
            flags[key] = value
    assert task.build_config(chosen, flags) == config
    if preset is not None:
        assert chosen == preset


# --- whole or not at all; nothing of the user's lost ------------------------------------------------------------------
def test_a_failure_part_way_leaves_no_directory(tmp_path, monkeypatch):
    """A write that fails after model.safetensors and config.json leaves neither the bundle nor a hidden
    directory, nor the parent directories it made."""
    checkpoint = tiny_checkpoint("charlm")
    written = []

    def failing(path: Path, data: bytes) -> None:
        if path.name == "README.md":
            raise OSError(28, "No space left on device")
        written.append(path.name)
        path.write_bytes(data)

    monkeypatch.setattr(bundle, "write_synced", failing)
    with pytest.raises(OSError, match="No space"):
        bundle_checkpoint(checkpoint, tmp_path / "new" / "parents" / "bundle")
    assert "config.json" in written
    assert list(tmp_path.iterdir()) == []


def test_a_failure_part_way_keeps_the_earlier_bundle(tmp_path, monkeypatch):
    checkpoint, directory = bundled(tmp_path, "charlm")
    before = {file.name: file.read_bytes() for file in directory.iterdir()}
    monkeypatch.setattr(bundle, "write_synced", lambda path, data: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        bundle_checkpoint(load_checkpoint(checkpoint), directory, overwrite=True)
    assert {file.name: file.read_bytes() for file in directory.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "run"]


def test_an_existing_directory_is_refused_unless_overwrite(tmp_path):
    checkpoint, directory = bundled(tmp_path, "charlm")
    with pytest.raises(RnnkitError, match="bundle already exists; pass overwrite=True to replace it"):
        bundle_checkpoint(tiny_checkpoint("charlm", step=9), directory)
    assert load_bundle(directory)["step"] == 3
    bundle_checkpoint(tiny_checkpoint("charlm", step=9), directory, overwrite=True)
    assert load_bundle(directory)["step"] == 9
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no hidden directory left


def test_an_empty_directory_takes_a_bundle(tmp_path):
    (tmp_path / "empty").mkdir()
    bundle_checkpoint(tiny_checkpoint("charlm"), tmp_path / "empty")
    assert is_bundle(tmp_path / "empty")


@pytest.mark.parametrize(
    "files, message",
    [
        ({"notes.txt": b"mine"}, "holds notes.txt, which is not part of an rnnkit bundle"),
        ({"README.md": b"my project"}, "is not an rnnkit bundle"),
    ],
    ids=["a-user-file", "a-readme-without-a-bundle"],
)
def test_overwrite_replaces_only_a_bundle(tmp_path, files, message):
    target = tmp_path / "target"
    target.mkdir()
    for name, content in files.items():
        (target / name).write_bytes(content)
    with pytest.raises(RnnkitError, match=message):
        bundle_checkpoint(tiny_checkpoint("charlm"), target, overwrite=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == files


def test_a_bundle_beside_a_users_file_is_not_replaced(tmp_path):
    _, directory = bundled(tmp_path, "charlm")
    (directory / "notes.txt").write_text("mine")
    with pytest.raises(RnnkitError, match="holds notes.txt"):
        bundle_checkpoint(tiny_checkpoint("charlm"), directory, overwrite=True)
    assert (directory / "notes.txt").read_text() == "mine"


def test_a_file_in_the_way_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "model").write_text("a file")
    with pytest.raises(RnnkitError, match="exists and is not a directory"):
        bundle_checkpoint(tiny_checkpoint("charlm"), tmp_path / "model", overwrite=True)
    assert (tmp_path / "model").read_text() == "a file"


# --- bad bundles: one line naming the file ----------------------------------------------------------------------------
def damaged(tmp_path: Path, damage) -> Path:
    _, directory = bundled(tmp_path, "charlm")
    damage(directory)
    return directory


def rewrite_config(directory: Path, **changes) -> None:
    settings = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**settings, **changes}))


def reshaped_weights(directory: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(directory / "model.safetensors")
    tensors["embedding.weight"] = torch.zeros(3, 5)
    save_file(tensors, directory / "model.safetensors")


def renamed_weights(directory: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(directory / "model.safetensors")
    tensors["embedding.table"] = tensors.pop("embedding.weight")
    save_file(tensors, directory / "model.safetensors")


BAD_BUNDLES = {
    "no-weights": (lambda d: (d / "model.safetensors").unlink(), "model.safetensors: no such file"),
    "no-config": (lambda d: (d / "config.json").unlink(), "config.json: no such file"),
    "no-vocabulary": (
        lambda d: (d / "vocab-text.json").unlink(),
        "vocab-text.json: no such file (config.json names vocabulary 'text')",
    ),
    "truncated-weights": (
        lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:-100]),
        "model.safetensors: not a readable safetensors file",
    ),
    "a-pickle-as-weights": (
        lambda d: torch.save({"a": torch.zeros(2)}, d / "model.safetensors"),
        "model.safetensors: not a readable safetensors file",
    ),
    "config-not-json": (lambda d: (d / "config.json").write_text("{task: charlm"), "config.json: not valid JSON"),
    "a-run-config": (
        lambda d: (d / "config.json").write_text('{"task": "charlm", "model": {}}'),
        "config.json: not an rnnkit bundle's config.json",
    ),
    "unknown-task": (
        lambda d: rewrite_config(d, task="poetry"),
        "config.json: a bundle of task 'poetry', which this rnnkit does not know",
    ),
    "newer-version": (lambda d: rewrite_config(d, version=99), "bundle format version 99 is newer"),
    "a-bad-vocabulary-name": (lambda d: rewrite_config(d, vocabularies=["../text"]), "'../text' is not a vocabulary"),
    "a-malformed-vocabulary": (
        lambda d: (d / "vocab-text.json").write_text('{"kind": "characters", "symbols": "ba"}'),
        "vocab-text.json: vocabulary must be sorted",
    ),
    "tied-to-nothing": (
        lambda d: rewrite_config(d, tied={"decoder.weight": "nothing"}),
        "decoder.weight is tied to nothing, which model.safetensors does not hold",
    ),
    "weights-of-another-shape": (reshaped_weights, "bundle: weights do not fit the model its config builds"),
    "weights-of-other-names": (renamed_weights, "missing: embedding.weight; unexpected: embedding.table"),
}


@pytest.mark.parametrize("damage, message", BAD_BUNDLES.values(), ids=BAD_BUNDLES)
def test_a_bad_bundle_is_one_line_naming_the_file(tmp_path, damage, message):
    directory = damaged(tmp_path, damage)
    with pytest.raises(RnnkitError, match=f"^{re.escape(str(tmp_path / 'bundle'))}") as error:
        rnnkit.load(directory)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_bundle_of_another_task_is_refused_by_name(tmp_path):
    _, directory = bundled(tmp_path, "charlm")
    with pytest.raises(RnnkitError, match=f"^{re.escape(str(directory))}: a charlm bundle, not a wordlm one$"):
        load_any(directory, task="wordlm")


def test_a_run_directory_is_not_a_bundle(trained_run, tmp_path):
    assert not is_bundle(trained_run)  # its config.json has no bundle marker
    assert load_any(trained_run)[1] == str(trained_run / "best.pt")
    _, directory = bundled(tmp_path, "charlm")
    assert is_bundle(directory) and not is_bundle(directory / "config.json")


# --- rnnkit export --bundle -------------------------------------------------------------------------------------------
def test_export_writes_a_bundle_of_a_run_directory(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run), "--bundle", str(tmp_path / "shared")]) == 0
    assert f"wrote {tmp_path / 'shared'}: README.md" in capsys.readouterr().out
    assert rnnkit.load(tmp_path / "shared").sample("ROMEO:", length=20, seed=1) == rnnkit.load(trained_run).sample(
        "ROMEO:", length=20, seed=1
    )
    assert "On the validation data, at step" in (tmp_path / "shared" / "README.md").read_text()


def test_export_refuses_an_existing_bundle_without_overwrite(trained_run, tmp_path, capsys):
    target = str(tmp_path / "shared")
    assert main(["export", str(trained_run / "best.pt"), "--bundle", target]) == 0
    assert main(["export", str(trained_run / "best.pt"), "--bundle", target]) == 2
    assert "already exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert main(["export", str(trained_run / "best.pt"), "--bundle", target, "--overwrite"]) == 0


def test_export_rebundles_a_bundle_in_place(tmp_path, capsys):
    """A bundle is a CHECKPOINT too: exported onto itself with --overwrite, it holds the same weights."""
    _, directory = bundled(tmp_path, "wordlm")
    before = load_bundle(directory)["model"]
    assert main(["export", str(directory), "--bundle", str(directory), "--overwrite"]) == 0
    after = load_bundle(directory)["model"]
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "run"]


def test_export_takes_one_of_onnx_and_bundle(tmp_path, capsys):
    checkpoint, _ = bundled(tmp_path, "charlm")
    assert main(["export", str(checkpoint), "--bundle", str(tmp_path / "b"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "one at a time" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_export_bundle_dry_run(tmp_path):
    """`rnnkit export --bundle DIR --dry-run` bundles an untrained tiny model into a temporary directory, in a
    subprocess as a user runs it, and leaves nothing where it ran."""
    result = subprocess.run(
        [sys.executable, "-m", "rnnkit", "export", "--bundle", "shared", "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote a tiny model's bundle: README.md, config.json, model.safetensors, vocab-text.json" in result.stdout
    assert list(tmp_path.iterdir()) == []
