"""Tests for `rnnkit diagnose` beyond the language models (rnnkit/commands/inspect.py, the tasks' text_diagnosis):
the classifier and the tagger measured on a text, ‖∂L/∂c_t‖ beside ‖∂L/∂h_t‖, the tasks it refuses and why, the
notes' spectral-radius toy from the shell, and --compare's parameter counts."""

import inspect
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import rnnkit.inspect_model
from rnnkit.checkpoint import save_checkpoint
from rnnkit.cli import main
from rnnkit.data.datasets import tiny_sentiment, tiny_tagged
from rnnkit.inspect_model import compare_cells, diagnose_core
from rnnkit.tasks import TASKS
from rnnkit.tasks.base import Task
from rnnkit.tasks.classify import class_loss

SEQ_LEN = 12  # steps per window: diagnose reads 8 windows, so the texts below hold at least 96 words


def directory_contents(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


def assert_one_line_error(code: int, stderr: str, expect: str) -> None:
    assert code == 2 and len(stderr.splitlines()) == 1 and stderr.startswith("rnnkit: error: "), stderr
    assert expect in stderr and "Traceback" not in stderr, stderr


def words_of_task(name: str) -> str:
    """A text of the words the task's tiny data is made of (generated afresh, not its training sentences)."""
    if name == "classify":
        return " ".join(text for text, _ in tiny_sentiment(60, seed=7))
    return " ".join(" ".join(words) for words, _ in tiny_tagged(60, seed=7))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A directory with classify/best.pt and tagger/best.pt, each the tiny preset trained two steps in-process,
    and classify.txt, tagger.txt: texts of their words."""
    root = tmp_path_factory.mktemp("diagnose")
    for name in ("classify", "tagger"):
        flags = ["--preset", "tiny", "--train.max_steps=2", "--train.eval_interval=2", "--quiet"]
        assert main([name, "train", *flags, "--out", str(root / name)]) == 0
        (root / f"{name}.txt").write_text(words_of_task(name), encoding="utf-8")
    return root


def diagnose(trained: Path, name: str, tmp_path: Path, capsys) -> tuple[dict, str]:
    out = tmp_path / f"diagnosed-{name}"
    args = [str(trained / name / "best.pt"), "--data", str(trained / f"{name}.txt"), "--seq-len", str(SEQ_LEN)]
    code = main(["diagnose", *args, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (out / "gradient_through_time.png").read_bytes().startswith(b"\x89PNG")
    return json.loads((out / "summary.json").read_text()), captured.out


def test_diagnose_measures_a_classifier_at_its_last_word(trained, tmp_path, capsys):
    """The tiny classifier is a one-layer BiLSTM reading h at the last word: both directions' ∂L/∂h_t and ∂L/∂c_t,
    each direction's last step (the forward one's last word, the backward one's first) reached by the loss."""
    summary, printed = diagnose(trained, "classify", tmp_path, capsys)
    names = ["layer0.forward", "layer0.backward"]
    assert summary["steps"] == SEQ_LEN and "last word" in summary["loss"]
    for key in ("gradient_through_time", "cell_state_gradient_through_time", "cell_state_gradient_ratio_first_to_last"):
        assert list(summary[key]) == names, key
    for name in names:
        h, c = summary["gradient_through_time"][name], summary["cell_state_gradient_through_time"][name]
        assert len(h) == len(c) == SEQ_LEN and h[-1] > 0 and c[-1] > 0
    assert "‖∂L/∂c_t‖" in printed and "layer0.backward" in printed
    assert set(summary["spectra"]) >= {"layer0.forward.U_f", "layer0.backward.U_f"}


def test_diagnose_measures_a_tagger_at_its_last_word(trained, tmp_path, capsys):
    """The loss at the last word reads the forward direction's last step and the backward direction's first (it
    reads the window from its end), and nothing later of the backward one: its gradient is 0 after step 1."""
    summary, printed = diagnose(trained, "tagger", tmp_path, capsys)
    assert summary["loss"] == "the last word's tag" and summary["steps"] == SEQ_LEN
    forward = summary["gradient_through_time"]["layer0.forward"]
    backward = summary["gradient_through_time"]["layer0.backward"]
    assert all(norm > 0 for norm in forward)
    assert backward[0] > 0 and all(norm == 0 for norm in backward[1:])
    assert summary["gradient_ratio_first_to_last"]["layer0.backward"] is None  # 0 at its last step: no ratio
    assert summary["cell_state_gradient_through_time"]["layer0.backward"][0] > 0
    assert "undefined" in printed


def test_a_classifier_reads_the_text_as_training_read_its_texts():
    """Lowercased where its data were (data.lowercase): an upper-case text is the same windows, the same loss."""
    task = TASKS["classify"]
    model, vocabularies, config = task.tiny_model()
    assert config.data.lowercase
    text = words_of_task("classify")
    lower, upper = (
        task.text_diagnosis(model, vocabularies, config, t, SEQ_LEN, "text.txt") for t in (text, text.upper())
    )
    assert lower.loss().item() == upper.loss().item()
    ids = task.encode_text(vocabularies, text, "text.txt")  # (N,)
    inputs = ids[: 2 * SEQ_LEN].view(2, SEQ_LEN)  # (B, T)
    logits = model(inputs)  # (B,)
    assert ids.shape == (len(text.split()),) and class_loss(logits, (logits > 0).long()).dim() == 0


def test_a_conditioned_tagger_is_measured_on_its_own_tags():
    """The conditioned tagger reads y_{t-1}: diagnose feeds it the tags it gives, and the gradient reaches every
    step of the forward direction of its encoder."""
    task = TASKS["tagger"]
    _, vocabularies, _ = task.tiny_model()
    config = task.build_config("tiny", {"model.conditioned": True})
    model = task.build_model(config, vocabularies)
    summary, plots = diagnose_core(task.text_diagnosis(model, vocabularies, config, words_of_task("tagger"), 10))
    assert all(norm > 0 for norm in summary["gradient_through_time"]["layer0.forward"])
    assert plots["gradient_through_time.png"].startswith(b"\x89PNG")
    encoded = task.encode_text(vocabularies, "the Dog runs", "text")  # (N, 1 + L): the word's id, then its letters
    assert encoded.shape[0] == 3 and encoded[1, 0] == vocabularies["words"].unk_id  # "Dog" as written: unknown


def test_text_diagnosis_only_where_the_task_reads_text():
    for name, task in TASKS.items():
        overrides = type(task).text_diagnosis is not Task.text_diagnosis
        assert not overrides or task.reads_text, name
    assert TASKS["classify"].reads_text and TASKS["tagger"].reads_text and not TASKS["seqmnist"].reads_text
    parameters = list(inspect.signature(Task.text_diagnosis).parameters)
    assert parameters == ["self", "model", "vocabularies", "config", "text", "seq_len", "what"]


def untrained_checkpoint(path: Path, name: str) -> Path:
    task = TASKS[name]
    model, vocabularies, config = task.tiny_model()
    save_checkpoint(
        path,
        {
            "task": name,
            "model": model.state_dict(),
            "config": asdict(config),
            "vocabularies": {key: vocab.to_dict() for key, vocab in vocabularies.items()},
            "step": 0,
        },
    )
    return path


@pytest.mark.parametrize(
    "name, data, expect",
    [
        ("seqmnist", False, "a seqmnist model reads neither, so there is nothing to feed its core"),
        ("tagger", False, "rnnkit diagnose needs --data FILE: a text for the tagger model to read"),
        ("tagger", True, "has 3 words; diagnose needs 8 windows"),
    ],
)
def test_diagnose_says_why_it_cannot(tmp_path, monkeypatch, capsys, name, data, expect):
    monkeypatch.chdir(tmp_path)
    checkpoint = untrained_checkpoint(tmp_path / "best.pt", name)
    (tmp_path / "short.txt").write_text("the dog runs")
    before = directory_contents(tmp_path)
    code = main(["diagnose", str(checkpoint), *(["--data", "short.txt"] if data else []), "--out", "d"])
    assert_one_line_error(code, capsys.readouterr().err, expect)
    assert directory_contents(tmp_path) == before


def test_spectral_radius_toy_from_the_shell(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["diagnose", "--spectral-radius", "0.2,1,3", "--seq-len", "30", "--out", "toy"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "toy" / "summary.json").read_text())
    assert (tmp_path / "toy" / "spectral_radius.png").read_bytes().startswith(b"\x89PNG")
    assert summary["nonlinearity"] == "tanh" and summary["vanishing_below"] == 1.0
    assert summary["vanishing_below_for_sigmoid"] == 4.0
    assert list(summary["radii"]) == ["0.2", "1", "3"]
    assert [summary["radii"][r]["vanishing_certain"] for r in ("0.2", "1", "3")] == [True, False, False]
    for entry in summary["radii"].values():
        assert len(entry["jacobian_norm"]) == len(entry["hidden_norm"]) == 30
    weak, strong = summary["radii"]["0.2"]["jacobian_norm_first"], summary["radii"]["3"]["jacobian_norm_first"]
    assert weak < 1e-15 < 1e3 < strong
    assert printed.count("ρ(U) = ") == 3 and "vanishing certain" in printed and "29 steps back" in printed


@pytest.mark.parametrize(
    "value, expect",
    [
        ("-1", "a finite number above 0, got -1"),
        ("nan", "a finite number above 0, got nan"),
        ("0.2,inf", "got inf"),
        ("0", "got 0"),
        ("", "expected radii separated by commas"),
        ("0.2,,3", "expected radii separated by commas"),
        (",", "expected radii separated by commas"),
        ("0.2,x", "'x' is not a number"),
        ("1,1.0", "given twice"),
    ],
)
def test_spectral_radius_bad_input_is_one_line(tmp_path, monkeypatch, capsys, value, expect):
    monkeypatch.chdir(tmp_path)
    code = main(["diagnose", f"--spectral-radius={value}", "--out", "toy"])
    stderr = capsys.readouterr().err
    assert_one_line_error(code, stderr, expect)
    assert stderr.startswith("rnnkit: error: --spectral-radius: ")
    assert directory_contents(tmp_path) == {}


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--compare", "rnn"], "--spectral-radius: runs the notes' toy on its own"),
        (["--seq-len", "10001"], "--seq-len: the --spectral-radius toy runs at most 10,000 steps"),
    ],
)
def test_spectral_radius_alone(tmp_path, monkeypatch, capsys, args, expect):
    monkeypatch.chdir(tmp_path)
    code = main(["diagnose", "--spectral-radius", "0.5", *args, "--out", "toy"])
    assert_one_line_error(code, capsys.readouterr().err, expect)
    assert directory_contents(tmp_path) == {}


def test_compare_labels_each_cell_with_its_parameter_count(monkeypatch):
    """A one-layer cell of H units on D = 8 inputs has G·H·(D + H) weights and 2·G·H biases (G gates: 1 for the
    vanilla RNN, 4 for the LSTM); the legend and the summary say so."""
    drawn = []
    plot = rnnkit.inspect_model.plot_gradient_curves
    monkeypatch.setattr(
        rnnkit.inspect_model, "plot_gradient_curves", lambda curves, title: drawn.extend(curves) or plot(curves, title)
    )
    summary, _ = compare_cells(["rnn", "lstm"], seq_len=6, hidden_size=4, steps=1)
    expected = {name: gates * 4 * (8 + 4) + 2 * gates * 4 for name, gates in (("rnn", 1), ("lstm", 4))}
    assert {name: summary[name]["parameters"] for name in expected} == expected == {"rnn": 56, "lstm": 224}
    labels = [curve.label for curve in drawn]
    assert labels == [
        "rnn (56 params): trained",
        "rnn (56 params): at init",
        "lstm (224 params): trained",
        "lstm (224 params): at init",
    ]
    assert [curve.dashed for curve in drawn] == [False, True, False, True]
    assert torch.tensor([curve.colour for curve in drawn]).tolist() == [0, 0, 1, 1]
