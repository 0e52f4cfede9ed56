"""The word LM through the CLI, as a user starts it: every subcommand's --dry-run, a run killed with
SIGKILL at a random step then resumed bit-identically, 2 gloo processes training like 1, and bad input
as one line. The char-LM's versions of these live in test_cli.py and test_distributed.py; these prove
the same shared code serves a second task."""

import random
import signal

import pytest
import torch
from test_cli import (
    TIMEOUT,
    assert_ok,
    assert_one_line_error,
    directory_contents,
    kill_then_resume,
    metrics,
    run_main,
    run_rnnkit,
    run_side_by_side,
    start_training,
    wait_for_steps,
)
from test_distributed import assert_two_processes_train_like_one

CORPUS = "the quick brown fox jumps over the lazy dog .\nthe lazy dog sleeps under the old tree .\n" * 30


def test_every_wordlm_subcommand_has_a_fast_dry_run(tmp_path):
    train, sample, evaluate = run_side_by_side(
        *((("wordlm", action, "--dry-run"), tmp_path) for action in ("train", "sample", "eval"))
    )
    for result in (train, sample, evaluate):
        assert_ok(result)
    assert "trained 20 steps" in train.stdout and "perplexity" in train.stdout
    assert len(sample.stdout.split()) >= 10
    assert "perplexity" in evaluate.stdout and "nats/word" in evaluate.stdout
    assert directory_contents(tmp_path) == {}


KILL_RUN = (
    "--preset",
    "tiny",
    "--data",
    "corpus.txt",
    "--quiet",
    "--train.max_steps=40",
    "--train.eval_interval=20",
    "--model.locked_dropout=true",
    "--model.weight_drop=0.3",
    "--model.embedding_dropout=0.1",
    "--model.output_dropout=0.2",
    "--model.activation_regularization=1",
    "--model.temporal_activation_regularization=1",
)


def test_sigkill_then_resume_equals_uninterrupted_for_the_word_lm(tmp_path):
    """Every random mask of AWD's regularisers (weight drop, locked and embedding dropout) is drawn again
    exactly after a resume: the killed-and-resumed run ends with the never-killed run's weights and losses."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    straight, _ = kill_then_resume(tmp_path, "wordlm", KILL_RUN, random.Random(3).randint(3, 35))
    assert (tmp_path / "A" / "loss.png").read_bytes().startswith(b"\x89PNG")
    assert all("tokens_per_second" in r and r.get("val_perplexity", 1) > 0 for r in straight)


DDP_RUN = (
    "wordlm",
    "train",
    "--preset",
    "tiny",
    "--data",
    "corpus.txt",
    "--quiet",
    "--model.dropout=0",
    "--train.batch_size=4",
    "--train.lr_schedule=constant",
    "--train.max_steps=8",
    "--train.eval_interval=4",
)


def test_two_gloo_processes_train_the_word_lm_like_one(tmp_path):
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    assert_two_processes_train_like_one(tmp_path, *DDP_RUN, steps=8)


@pytest.fixture(scope="module")
def word_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wordlm")
    (root / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    assert_ok(
        run_rnnkit("wordlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "run", "--quiet", cwd=root)
    )
    assert_ok(
        run_rnnkit("charlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "chars", "--quiet", cwd=root)
    )
    return root


def test_wordlm_sample_and_eval_on_a_trained_run(word_run):
    first, second, evaluate = run_side_by_side(
        (
            ("wordlm", "sample", "run/best.pt", "--prime", "the lazy", "--length", "12", "--seed", "4", "--top_k", "3"),
            word_run,
        ),
        (
            ("wordlm", "sample", "run/best.pt", "--prime", "the lazy", "--length", "12", "--seed", "4", "--top-k", "3"),
            word_run,
        ),
        (("wordlm", "eval", "run/best.pt", "--data", "corpus.txt"), word_run),
    )
    for result in (first, second, evaluate):
        assert_ok(result)
    assert first.stdout == second.stdout and first.stdout.startswith("the lazy")
    assert set(first.stdout.split()) <= set(CORPUS.split()) | {"<unk>"}
    assert "perplexity" in evaluate.stdout


BAD = {
    "empty-corpus": (
        ["wordlm", "train", "--data", "empty.txt", "--out", "out"],
        "empty.txt: the file is empty",
        {"empty.txt": b""},
    ),
    "tied-sizes": (
        ["wordlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "out", "--model.hidden_size=24"],
        "hidden_size == embedding_size",
        {"corpus.txt": CORPUS.encode()},
    ),
    "below-min-count": (
        ["wordlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "out", "--data.min_count=1000"],
        "every word appears fewer than",
        {"corpus.txt": CORPUS.encode()},
    ),
    "charlm-checkpoint-to-wordlm": (["wordlm", "sample", "CHARS"], "a charlm checkpoint, not a wordlm one", {}),
    "wordlm-checkpoint-to-charlm": (
        ["charlm", "eval", "WORDS", "--data", "corpus.txt"],
        "a wordlm checkpoint, not a charlm one",
        {"corpus.txt": CORPUS.encode()},
    ),
    "unknown-prime": (["wordlm", "sample", "WORDS", "--prime", "zebra quagga"], "none of its words", {}),
    "missing-directory-splits": (
        ["wordlm", "train", "--data", "corpus", "--out", "out"],
        "expected a train file and a dev file",
        {"corpus/notes.txt": b"hello\n"},
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_wordlm_bad_input_is_one_line_error(word_run, tmp_path, monkeypatch, capsys, name):
    args, expect, files = BAD[name]
    monkeypatch.chdir(tmp_path)
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    args = [
        str(word_run / "chars" / "best.pt")
        if a == "CHARS"
        else str(word_run / "run" / "best.pt")
        if a == "WORDS"
        else a
        for a in args
    ]
    before = directory_contents(tmp_path)
    code, _, stderr = run_main(args, capsys)
    assert_one_line_error(code, stderr, expect)
    assert directory_contents(tmp_path) == before


def test_diagnose_accepts_a_word_lm_checkpoint_and_viz_says_why_not(word_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.txt").write_text(CORPUS * 2)
    code, stdout, stderr = run_main(
        ["diagnose", str(word_run / "run" / "best.pt"), "--data", "text.txt", "--seq-len", "20", "--out", "diag"],
        capsys,
    )
    assert code == 0, stderr
    assert (tmp_path / "diag" / "gradient_through_time.png").exists() and "layer0" in stdout
    code, _, stderr = run_main(["viz", str(word_run / "run" / "best.pt"), "--text", "text.txt", "--out", "viz"], capsys)
    assert_one_line_error(code, stderr, "reads words")


def test_sigterm_saves_the_word_lm_and_exits_cleanly(tmp_path):
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    process = start_training(tmp_path, *KILL_RUN, "--out", "run", "--train.max_steps=100000", task="wordlm")
    wait_for_steps(tmp_path / "run", 5, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr and "rnnkit wordlm train --resume" in stderr and "Traceback" not in stderr
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert saved["task"] == "wordlm" and saved["step"] >= 5 and saved["step"] == metrics(tmp_path / "run")[-1]["step"]
