"""Tests for rnnkit/cli.py, run the way a user runs it: `python -m rnnkit ...` in a subprocess.

Every command has a fast --dry-run; a tiny run writes its checkpoints, metrics and plot; sampling is
reproducible; a CLI resume ends where an uninterrupted run does; and every bad input is one line on
stderr, exit status 2, no traceback, and nothing written.

Each subprocess pays for importing torch (seconds), so independent ones run two at a time, and the bad
inputs beyond the main list call main() in this process instead.
"""

import io
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from rnnkit.cli import main
from rnnkit.errors import RnnkitError

CORPUS = "the quick brown fox jumps over the lazy dog.\n" * 40  # no 'Z', 'é' or 'Q'
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny tensors: one thread each, so runs side by side don't spin-wait
TIMEOUT = 120


def run_rnnkit(*args: str | bytes, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnkit", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=TIMEOUT,
    )


def run_side_by_side(*commands: tuple[tuple, Path]) -> list[subprocess.CompletedProcess]:
    """Run (args, cwd) commands two at a time; results in the order given."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda command: run_rnnkit(*command[0], cwd=command[1]), commands))


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{result.args}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr


def directory_contents(root: Path) -> dict[str, bytes | None]:
    """Every path under root, with each file's bytes (None for directories)."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


def model_tensors(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A directory holding corpus.txt and run/, the output of a 20-step tiny training run on it."""
    root = tmp_path_factory.mktemp("trained")
    (root / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    assert_ok(
        run_rnnkit("charlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "run", "--quiet", cwd=root)
    )
    return root


# --- dry runs and the happy path -------------------------------------------------------------------


def test_every_command_has_a_fast_dry_run(tmp_path):
    """train, sample and eval --dry-run work with no data and no checkpoint, and write nothing in the
    working directory (train's run goes to a temporary directory, not runs/)."""
    train, sample, evaluate = run_side_by_side(
        *((("charlm", action, "--dry-run"), tmp_path) for action in ("train", "sample", "eval"))
    )
    for result in (train, sample, evaluate):
        assert_ok(result)
    assert "trained" in train.stdout and "bits/char" in train.stdout
    assert len(sample.stdout.strip()) > 0
    assert "bits/char" in evaluate.stdout
    assert not (tmp_path / "runs").exists()
    assert directory_contents(tmp_path) == {}


def test_train_writes_checkpoints_metrics_and_plot(trained_run):
    """A run directory holds last.pt and best.pt (safe-loadable), metrics.jsonl with one JSON line per step
    (val_loss exactly on the evaluation steps 10 and 20 of the tiny preset) and loss.png."""
    run = trained_run / "run"
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 20
    assert torch.load(run / "best.pt", weights_only=True)["task"] == "charlm"
    records = metrics(run)
    assert [r["step"] for r in records] == list(range(1, 21))
    for record in records:
        assert {"step", "loss", "grad_norm", "learning_rate", "tokens_per_second"} <= record.keys()
        assert math.isfinite(record["loss"]) and record["grad_norm"] > 0
    assert [r["step"] for r in records if r.get("val_loss") is not None] == [10, 20]
    assert (run / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_sampling_is_reproducible_and_eval_reports_bits_per_char(trained_run):
    """The same --seed prints the same text twice: the prime, then --length characters of the corpus's
    alphabet. eval prints loss in nats and bits per character, bits = nats / ln 2."""
    sample = ("charlm", "sample", "run/best.pt", "--prime", "the ", "--length", "40", "--seed", "3")
    first, second, evaluate = run_side_by_side(
        (sample, trained_run),
        (sample, trained_run),
        (("charlm", "eval", "run/best.pt", "--data", "corpus.txt"), trained_run),
    )
    for result in (first, second, evaluate):
        assert_ok(result)
    assert first.stdout == second.stdout
    text = first.stdout
    assert text.startswith("the ") and text.endswith("\n") and len(text) == len("the ") + 40 + 1
    assert set(text[4:-1]) <= set(CORPUS)
    match = re.search(r"loss ([\d.]+) nats/char, ([\d.]+) bits/char", evaluate.stdout)
    assert match, evaluate.stdout
    assert float(match[2]) == pytest.approx(float(match[1]) / math.log(2), abs=1e-3)


@pytest.mark.parametrize("averaging", [(), ("--train.ema_decay=0.9",)])
def test_resume_equals_uninterrupted(tmp_path, averaging):
    """12 steps in one run end with the same weights (and the same per-step losses) as 6 steps, then
    --resume to 12. The schedule is constant because a cosine schedule depends on max_steps: a run
    planned for 6 steps anneals differently from one planned for 12. With averaged weights, the checks a
    resume makes first (a trial restore) leave the weights and the average as they were."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    common = (
        "--preset",
        "tiny",
        "--data",
        "corpus.txt",
        "--train.lr_schedule=constant",
        "--train.checkpoint_interval=6",
        "--quiet",
        *averaging,
    )
    straight, first_half = run_side_by_side(
        (("charlm", "train", *common, "--out", "A", "--train.max_steps=12"), tmp_path),
        (("charlm", "train", *common, "--out", "B", "--train.max_steps=6"), tmp_path),
    )
    assert_ok(straight)
    assert_ok(first_half)
    assert torch.load(tmp_path / "B" / "last.pt", weights_only=True)["step"] == 6
    resume_flags = [
        flag for flag in common if flag not in ("--preset", "tiny")
    ]  # the checkpoint carries the preset's settings
    assert_ok(
        run_rnnkit("charlm", "train", *resume_flags, "--resume", "B/last.pt", "--train.max_steps=12", cwd=tmp_path)
    )

    expected, resumed = model_tensors(tmp_path / "A" / "last.pt"), model_tensors(tmp_path / "B" / "last.pt")
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(resumed[name], expected[name]), name
    assert [r["loss"] for r in metrics(tmp_path / "B")] == [r["loss"] for r in metrics(tmp_path / "A")]


# --- bad input: one line on stderr, exit status 2, no traceback, nothing written -------------------

CHECKPOINT = "<the trained run's best.pt>"
TRAIN = ("charlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "out")
GOOD_CORPUS = CORPUS.encode()


def trained_checkpoint(trained_run: Path) -> bytes:
    return (trained_run / "run" / "last.pt").read_bytes()


def checkpoint_without_optimizer_state(trained_run: Path) -> bytes:
    saved = torch.load(trained_run / "run" / "best.pt", weights_only=True)
    buffer = io.BytesIO()
    torch.save({**saved, "optimizer": {"state": {}, "param_groups": []}}, buffer)
    return buffer.getvalue()


def earlier_checkpoint(trained_run: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({**torch.load(trained_run / "run" / "last.pt", weights_only=True), "step": 10}, buffer)
    return buffer.getvalue()


def truncated_checkpoint(trained_run: Path) -> bytes:
    data = trained_checkpoint(trained_run)
    return data[: len(data) // 2]


@dataclass(frozen=True)
class BadInput:
    args: tuple[str | bytes, ...]  # CHECKPOINT stands for the trained run's best.pt
    expect: str  # part of the one-line message
    files: dict[str, bytes | Callable[[Path], bytes]] = field(
        default_factory=dict
    )  # written into the working directory first
    bug: str | None = None  # why the case fails today (an xfail)


def prepare(case: BadInput, directory: Path, trained_run: Path) -> list[str | bytes]:
    """Write the case's files into `directory`; return its arguments with CHECKPOINT filled in."""
    for name, content in case.files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(content(trained_run) if callable(content) else content)
    return [str(trained_run / "run" / "best.pt") if arg == CHECKPOINT else arg for arg in case.args]


def assert_one_line_error(code: int, stderr: str, expect: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("rnnkit: error: ")
    assert expect in stderr


def xfail_if_bug(cases: dict[str, BadInput]) -> list:
    return [
        pytest.param(name, marks=pytest.mark.xfail(reason=case.bug, strict=True) if case.bug else ())
        for name, case in cases.items()
    ]


BAD_INPUTS = {
    "empty-file": BadInput(TRAIN, "corpus.txt: the file is empty", {"corpus.txt": b""}),
    "whitespace-only-file": BadInput(TRAIN, "corpus.txt: the file is only whitespace", {"corpus.txt": b"  \n\t \n"}),
    "non-utf8-file": BadInput(TRAIN, "not UTF-8 at line 2, byte offset 5", {"corpus.txt": b"ab\ncd\xff" + GOOD_CORPUS}),
    "shorter-than-one-batch": BadInput(TRAIN, "fewer than one batch", {"corpus.txt": b"0123456789"}),
    "bad-override-value": BadInput(
        (*TRAIN, "--train.learning_rate=abc"),
        "--train.learning_rate: expected float, got 'abc'",
        {"corpus.txt": GOOD_CORPUS},
    ),
    "unknown-override-key": BadInput(
        (*TRAIN, "--train.learning_speed=1e-3"), "learning_speed", {"corpus.txt": GOOD_CORPUS}
    ),
    "existing-run": BadInput(
        TRAIN, "out already holds last.pt", {"corpus.txt": GOOD_CORPUS, "out/last.pt": trained_checkpoint}
    ),
    "prime-unseen-characters": BadInput(
        ("charlm", "sample", CHECKPOINT, "--prime", "Zé"), "'Z' (U+005A), 'é' (U+00E9)"
    ),
    # a byte that is not UTF-8 on the command line reaches Python as a lone surrogate
    "prime-not-utf8": BadInput(("charlm", "sample", CHECKPOINT, "--prime", b"the \xff"), "prime"),
    "not-a-checkpoint": BadInput(
        ("charlm", "sample", "notes.pt"),
        "notes.pt: not a readable rnnkit checkpoint",
        {"notes.pt": b"just some notes\n"},
    ),
    "truncated-checkpoint": BadInput(
        ("charlm", "sample", "half.pt"), "half.pt: not a readable rnnkit checkpoint", {"half.pt": truncated_checkpoint}
    ),
}


@pytest.fixture(scope="module")
def bad_input_runs(trained_run, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, dict, dict]]:
    """Run every BAD_INPUTS case in its own working directory: (result, contents before, contents after)."""
    prepared = {}
    for name, case in BAD_INPUTS.items():
        directory = tmp_path_factory.mktemp(name)
        prepared[name] = (prepare(case, directory, trained_run), directory, directory_contents(directory))

    def run(name: str):
        args, directory, before = prepared[name]
        return run_rnnkit(*args, cwd=directory), before, directory_contents(directory)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(BAD_INPUTS, pool.map(run, BAD_INPUTS)))


@pytest.mark.parametrize("name", xfail_if_bug(BAD_INPUTS))
def test_bad_input_is_one_line_error(bad_input_runs, name):
    """Exit status 2, stderr exactly one line "rnnkit: error: ..." saying what is wrong, no traceback, and
    the working directory untouched: no output directory, and an existing run's last.pt byte-identical."""
    result, before, after = bad_input_runs[name]
    assert_one_line_error(result.returncode, result.stderr, BAD_INPUTS[name].expect)
    assert after == before, f"written: {sorted(after.keys() - before.keys())}"


def test_sample_prints_nothing_before_a_prime_error(bad_input_runs):
    """A prime that cannot be encoded fails before anything reaches stdout (`> out.txt` stays empty)."""
    result, _, _ = bad_input_runs["prime-unseen-characters"]
    assert result.returncode == 2
    assert result.stdout == ""


# --- more cases, through main() in this process ---------------------------------------------------
# The same code as `python -m rnnkit` minus the interpreter start-up, which costs seconds per case.


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the rnnkit command, argparse's own exits included."""
    try:
        code = main(args)
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


QUIET_TRAIN = (*TRAIN, "--quiet")
RESUME_TRAIN = (
    "charlm",
    "train",
    "--data",
    "corpus.txt",
    "--out",
    "out",
    "--quiet",
)  # a resumed run takes its settings from the checkpoint
MORE_BAD_INPUTS = {
    "missing-file": BadInput(QUIET_TRAIN, "corpus.txt: cannot read"),
    "bad-bool-value": BadInput(
        (*QUIET_TRAIN, "--train.carry_state=maybe"), "--train.carry_state", {"corpus.txt": GOOD_CORPUS}
    ),
    "resume-missing-checkpoint": BadInput(
        (*RESUME_TRAIN, "--resume", "nothere.pt"), "nothere.pt: no such checkpoint file", {"corpus.txt": GOOD_CORPUS}
    ),
    # a resume the saved state cannot continue is refused before the run directory is touched
    "resume-with-another-optimizer": BadInput(
        (*RESUME_TRAIN, "--resume", CHECKPOINT, "--train.optimizer=sgd"),
        "state of --train.optimizer=adamw; resume with that optimizer",
        {"corpus.txt": GOOD_CORPUS},
    ),
    "resume-with-another-batch-size": BadInput(
        (*RESUME_TRAIN, "--resume", CHECKPOINT, "--train.batch_size=2"),
        "carries the state of 4 streams; resume with --train.batch_size=4",
        {"corpus.txt": GOOD_CORPUS},
    ),
    "resume-damaged-optimizer-state": BadInput(
        (*RESUME_TRAIN, "--resume", "damaged.pt"),
        "damaged.pt: its training state does not fit",
        {"corpus.txt": GOOD_CORPUS, "damaged.pt": checkpoint_without_optimizer_state},
    ),
    "resume-with-nothing-left": BadInput(
        (*RESUME_TRAIN, "--resume", CHECKPOINT),
        "has trained 20 steps, as many as --train.max_steps=20",
        {"corpus.txt": GOOD_CORPUS},
    ),
    "resume-going-back": BadInput(
        ("charlm", "train", "--data", "corpus.txt", "--quiet", "--resume", "run/early.pt", "--train.max_steps=30"),
        "run/early.pt is step 10, but run/last.pt has gone on to step 20",
        {"corpus.txt": GOOD_CORPUS, "run/last.pt": trained_checkpoint, "run/early.pt": earlier_checkpoint},
    ),
    "user-file-named-lock": BadInput(
        TRAIN, "out/.lock: not a run lock rnnkit wrote", {"corpus.txt": GOOD_CORPUS, "out/.lock": b"my notes"}
    ),
    "existing-figure": BadInput(
        TRAIN, "out already holds confusion.png", {"corpus.txt": GOOD_CORPUS, "out/confusion.png": b"a figure"}
    ),
    "resume-with-other-characters": BadInput(
        (*RESUME_TRAIN, "--resume", CHECKPOINT), "characters differ", {"corpus.txt": b"Quiz! " * 100}
    ),
    "eval-truncated-checkpoint": BadInput(
        ("charlm", "eval", "half.pt", "--data", "corpus.txt"),
        "half.pt: not a readable",
        {"half.pt": truncated_checkpoint, "corpus.txt": GOOD_CORPUS},
    ),
    "eval-unseen-characters": BadInput(
        ("charlm", "eval", CHECKPOINT, "--data", "other.txt"), "'Q' (U+0051)", {"other.txt": b"Quiz! " * 20}
    ),
    "sample-negative-length": BadInput(("charlm", "sample", "--dry-run", "--length", "-1"), "length"),
    "preset-with-resume": BadInput(
        (*QUIET_TRAIN, "--resume", CHECKPOINT), "--preset cannot be combined with --resume", {"corpus.txt": GOOD_CORPUS}
    ),
    "unknown-preset": BadInput(
        ("charlm", "train", "--preset", "tinny", "--data", "corpus.txt", "--out", "out"),
        "tinny",
        {"corpus.txt": GOOD_CORPUS},
    ),
    "unknown-optimizer": BadInput(
        (*QUIET_TRAIN, "--train.optimizer=lion"), "--train.optimizer: expected one of", {"corpus.txt": GOOD_CORPUS}
    ),
    "unknown-lr-schedule": BadInput(
        (*QUIET_TRAIN, "--train.lr_schedule=linear"),
        "--train.lr_schedule: expected one of",
        {"corpus.txt": GOOD_CORPUS},
    ),
    "unknown-clip-mode": BadInput(
        (*QUIET_TRAIN, "--train.clip_mode=global"), "--train.clip_mode: expected one of", {"corpus.txt": GOOD_CORPUS}
    ),
    "size-beyond-int64": BadInput(
        (*QUIET_TRAIN, "--model.hidden_size=99999999999999999999"),
        "a size too large to allocate",
        {"corpus.txt": GOOD_CORPUS},
    ),
    "export-onto-a-directory": BadInput(
        ("export", CHECKPOINT, "--onnx", "adir", "--overwrite"),
        "--onnx: adir is a directory",
        {"adir/kept.txt": b"the user's"},
    ),
    "zero-eval-interval": BadInput(
        (*QUIET_TRAIN, "--train.eval_interval=0"), "eval_interval", {"corpus.txt": GOOD_CORPUS}
    ),
    "negative-embedding-size": BadInput(
        (*QUIET_TRAIN, "--model.embedding_size=-1"), "embedding_size", {"corpus.txt": GOOD_CORPUS}
    ),
    "abbreviated-override-key": BadInput(
        (*QUIET_TRAIN, "--train.learning_rat=1e-3", "--train.max_steps=2"), "learning_rat", {"corpus.txt": GOOD_CORPUS}
    ),
}


@pytest.mark.parametrize("name", xfail_if_bug(MORE_BAD_INPUTS))
def test_more_bad_input_is_one_line_error(trained_run, tmp_path, monkeypatch, capsys, name):
    """The same promise for the rest of the inputs a user can get wrong: one line, status 2, nothing written."""
    monkeypatch.chdir(tmp_path)
    args = prepare(MORE_BAD_INPUTS[name], tmp_path, trained_run)
    before = directory_contents(tmp_path)
    code, _, stderr = run_main(args, capsys)
    assert_one_line_error(code, stderr, MORE_BAD_INPUTS[name].expect)
    assert directory_contents(tmp_path) == before, (
        f"written: {sorted(directory_contents(tmp_path).keys() - before.keys())}"
    )


def test_overwrite_replaces_an_existing_run(trained_run, tmp_path, monkeypatch, capsys):
    """--overwrite is the way to train into a directory that already holds a run."""
    monkeypatch.chdir(tmp_path)
    prepare(BAD_INPUTS["existing-run"], tmp_path, trained_run)
    (tmp_path / "out" / "confusion.png").write_bytes(b"an earlier classifier run's figure")
    (tmp_path / "out" / "notes.txt").write_text("the user's")
    code, _, stderr = run_main([*QUIET_TRAIN, "--train.max_steps=2", "--overwrite"], capsys)
    assert code == 0, stderr
    assert torch.load(tmp_path / "out" / "last.pt", weights_only=True)["step"] == 2
    assert not (tmp_path / "out" / "confusion.png").exists()  # no file of the replaced run stays beside the new run's
    assert (tmp_path / "out" / "notes.txt").read_text() == "the user's"  # and nothing that is not a run's file goes
    assert [r["step"] for r in metrics(tmp_path / "out")] == [1, 2]


# --- kills: SIGTERM saves and exits; SIGKILL at any moment loses nothing that resume can't redo ------


def start_training(cwd: Path, *args: str, task: str = "charlm") -> subprocess.Popen:
    command = [sys.executable, "-m", "rnnkit", task, "train", *args]
    return subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_steps(run: Path, steps: int, process: subprocess.Popen) -> None:
    """Block until the run has logged `steps` steps (or the process ended)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= steps:
            return
        time.sleep(0.01)


KILL_RUN = (
    "--preset",
    "tiny",
    "--data",
    "corpus.txt",
    "--quiet",
    "--train.max_steps=60",
    "--train.eval_interval=20",
    "--model.dropout=0.2",
)


def kill_then_resume(
    tmp_path: Path, task: str, flags: tuple[str, ...], kill_after: int
) -> tuple[list[dict], list[dict]]:
    """Train twice into A and B with `flags` (a tiny preset, a checkpoint after every step), SIGKILL B once
    `kill_after` steps are logged, resume B, and check that it ends with A's weights, bit for bit, and A's
    losses. Returns (A's metrics, B's metrics)."""
    straight = start_training(tmp_path, *flags, "--out", "A", "--train.checkpoint_interval=1", task=task)
    killed = start_training(tmp_path, *flags, "--out", "B", "--train.checkpoint_interval=1", task=task)
    wait_for_steps(tmp_path / "B", kill_after, killed)
    killed.kill()
    killed.wait()
    assert straight.wait(timeout=TIMEOUT) == 0, straight.stderr.read()
    assert (
        torch.load(tmp_path / "B" / "last.pt", weights_only=True)["step"] >= 1
    )  # last.pt whole, even if killed mid-write
    resume_flags = [flag for flag in flags if flag not in ("--preset", "tiny")]
    assert_ok(run_rnnkit(task, "train", *resume_flags, "--resume", "B/last.pt", cwd=tmp_path))
    expected, resumed = model_tensors(tmp_path / "A" / "last.pt"), model_tensors(tmp_path / "B" / "last.pt")
    for name in expected:
        assert torch.equal(resumed[name], expected[name]), name
    assert [r["loss"] for r in metrics(tmp_path / "B")] == [r["loss"] for r in metrics(tmp_path / "A")]
    assert not list((tmp_path / "B").glob(".*.tmp"))  # no temporary file survives the resumed run
    return metrics(tmp_path / "A"), metrics(tmp_path / "B")


@pytest.mark.parametrize("seed", [0, 1])
def test_sigkill_at_a_random_step_then_resume_equals_uninterrupted(tmp_path, seed):
    """SIGKILL lands at a random moment (checkpoints are written after every step, so often mid-write);
    last.pt is still whole, and resuming from it ends with the weights of a run that was never killed."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    straight, _ = kill_then_resume(tmp_path, "charlm", KILL_RUN, random.Random(seed).randint(3, 50))
    assert straight[-1]["step"] == 60


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    """SIGTERM mid-run: the step finishes, last.pt is saved at that step, the exit status is 128 + 15,
    stderr says how to continue, and no traceback is printed."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    process = start_training(tmp_path, *KILL_RUN, "--out", "run", "--train.max_steps=100000")
    wait_for_steps(tmp_path / "run", 5, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr and "--resume" in stderr and "Traceback" not in stderr
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"]
    assert saved >= 5 and saved == metrics(tmp_path / "run")[-1]["step"]


# --- the inside view: diagnose and viz ---------------------------------------------------------------


def test_diagnose_and_viz_dry_runs(tmp_path):
    """diagnose (both modes) and viz run in seconds with --dry-run and leave nothing in the working directory."""
    results = run_side_by_side(
        (("diagnose", "--dry-run"), tmp_path),
        (("diagnose", "--compare", "rnn,lstm", "--dry-run"), tmp_path),
        (("viz", "--dry-run"), tmp_path),
    )
    for result in results:
        assert_ok(result)
    assert "steps back" in results[0].stdout and "lstm" in results[1].stdout and "r =" in results[2].stdout
    assert directory_contents(tmp_path) == {}


def test_diagnose_and_viz_on_a_trained_run(trained_run, tmp_path):
    """On a real checkpoint: diagnose writes its plot and a summary with spectra and the run's clipping
    statistics; viz writes the report; the training log tracked the spectral radius at evaluations."""
    diagnose, viz = run_side_by_side(
        (
            (
                "diagnose",
                str(trained_run / "run" / "best.pt"),
                "--data",
                str(trained_run / "corpus.txt"),
                "--seq-len",
                "30",
                "--out",
                "d",
            ),
            tmp_path,
        ),
        (
            ("viz", str(trained_run / "run" / "best.pt"), "--text", str(trained_run / "corpus.txt"), "--out", "v"),
            tmp_path,
        ),
    )
    assert_ok(diagnose)
    assert_ok(viz)
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["clipping"]["steps"] == 20 and "layer0.U_f" in summary["spectra"]
    assert (tmp_path / "d" / "gradient_through_time.png").read_bytes().startswith(b"\x89PNG")
    report = (tmp_path / "v" / "report.html").read_text(encoding="utf-8")
    assert (
        "<!DOCTYPE html>" in report
        and 'alt="gradient_through_time.png"' in report
        and 'alt="gate_saturation.png"' in report
    )
    evaluated = [r for r in metrics(trained_run / "run") if r.get("val_loss") is not None]
    assert all(r["spectral_radius"]["layer0.U_f"] > 0 for r in evaluated)


@pytest.mark.parametrize(
    "args, expect",
    [
        (("viz", "CKPT", "--text", "unseen.txt", "--out", "v"), "'Q' (U+0051)"),
        (("viz", "CKPT", "--out", "v"), "needs a CHECKPOINT and a text file"),
        (("diagnose", "CKPT", "--data", "short.txt", "--out", "d"), "diagnose needs"),
        (("diagnose", "--compare", "rnn,lstn", "--out", "d"), "unknown cells"),
        (("viz", "notes.pt", "--text", "corpus.txt", "--out", "v"), "not a readable rnnkit checkpoint"),
        (("viz", "CKPT", "--text", "corpus.txt", "--out", "short.txt"), "--out: short.txt is a file, not a directory"),
        (
            ("diagnose", "CKPT", "--data", "corpus.txt", "--out", "short.txt"),
            "--out: short.txt is a file, not a directory",
        ),
    ],
)
def test_diagnose_and_viz_bad_input_is_one_line(trained_run, tmp_path, monkeypatch, capsys, args, expect):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unseen.txt").write_text("Quiz! " * 20)
    (tmp_path / "short.txt").write_text("the fox")
    (tmp_path / "corpus.txt").write_text(CORPUS)
    (tmp_path / "notes.pt").write_text("notes")
    args = [str(trained_run / "run" / "best.pt") if a == "CKPT" else a for a in args]
    before = directory_contents(tmp_path)
    code = main(args)
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1 and expect in stderr, stderr
    assert directory_contents(tmp_path) == before


def test_diagnose_and_viz_never_replace_a_file_of_the_same_name(trained_run, tmp_path, monkeypatch, capsys):
    """A file of the user's named like one of the outputs is refused (nothing written) unless --overwrite."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS)
    for command, name in (
        (["viz", "--text", "corpus.txt"], "top_unit.png"),
        (["diagnose", "--data", "corpus.txt"], "summary.json"),
    ):
        (tmp_path / "out").mkdir()
        (
            tmp_path / "out" / "units.json"
            if name == "top_unit.png"
            else tmp_path / "out" / "gradient_through_time.png"
        ).write_text("mine")
        before = directory_contents(tmp_path)
        code, _, stderr = run_main(
            [command[0], str(trained_run / "run" / "best.pt"), *command[1:], "--out", "out"], capsys
        )
        assert_one_line_error(code, stderr, "which this would replace; pass --overwrite")
        assert directory_contents(tmp_path) == before
        code, _, stderr = run_main(
            [command[0], str(trained_run / "run" / "best.pt"), *command[1:], "--out", "out", "--overwrite"], capsys
        )
        assert code == 0 and (tmp_path / "out" / name).exists(), stderr
        shutil.rmtree(tmp_path / "out")


def test_viz_keeps_an_earlier_report_unless_overwrite(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "report.html").write_text("mine")
    code = main(["viz", str(trained_run / "run" / "best.pt"), "--text", str(trained_run / "corpus.txt"), "--out", "v"])
    assert code == 2 and "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "v" / "report.html").read_text() == "mine"


# --- one run per directory -------------------------------------------------------------------------


def test_a_second_run_into_a_busy_directory_is_refused_with_the_holders_pid(tmp_path):
    """While one run writes to --out, another (even with --overwrite) is refused, naming the first one's PID,
    and the first run's files are its own; once it is killed with -9, the kernel drops the lock and a new
    run may resume there."""
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    first = start_training(
        tmp_path, *KILL_RUN, "--out", "run", "--train.max_steps=100000", "--train.checkpoint_interval=1"
    )
    wait_for_steps(tmp_path / "run", 3, first)
    second = run_rnnkit("charlm", "train", *KILL_RUN, "--out", "run", "--overwrite", cwd=tmp_path)
    assert_one_line_error(second.returncode, second.stderr, f"(PID {first.pid})")
    first.kill()
    first.wait()
    steps = [r["step"] for r in metrics(tmp_path / "run")]
    assert steps == list(range(1, len(steps) + 1))  # one run's log, no second run's lines in it
    assert json.loads((tmp_path / "run" / "config.json").read_text())["task"] == "charlm"
    resume_flags = [flag for flag in KILL_RUN if flag not in ("--preset", "tiny")]
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"]  # however far the first run got
    assert_ok(
        run_rnnkit(
            "charlm", "train", *resume_flags, "--resume", "run/last.pt", f"--train.max_steps={saved + 2}", cwd=tmp_path
        )
    )


def test_the_run_lock_never_writes_through_a_link(tmp_path):
    """A .lock that is a link (to a file of the user's, say) is refused, and the file it points to is untouched."""
    from rnnkit.runs import RunDirectory

    (tmp_path / "precious.txt").write_text("the user's")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / ".lock").symlink_to(tmp_path / "precious.txt")
    with pytest.raises(RnnkitError, match="not a run lock rnnkit wrote"):
        RunDirectory(tmp_path / "out").start()
    assert (tmp_path / "precious.txt").read_text() == "the user's"


def test_a_directory_with_only_a_metrics_file_counts_as_an_earlier_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    before = directory_contents(tmp_path)
    code, _, stderr = run_main([*TRAIN, "--quiet"], capsys)
    assert_one_line_error(code, stderr, "out already holds metrics.jsonl")
    assert directory_contents(tmp_path) == before


# --- settings from a file, metrics for TensorBoard -------------------------------------------------


def test_config_file_sets_and_flags_override(tmp_path, monkeypatch, capsys):
    """--config (YAML nested or JSON dotted) lies over the preset, and flags lie over it; config.json records the
    result."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    (tmp_path / "run.yaml").write_text("train:\n  max_steps: 3\n  learning_rate: 0.004\nmodel:\n  cell: gru\n")
    (tmp_path / "run.json").write_text('{"train.max_steps": 2}')
    code, _, stderr = run_main([*QUIET_TRAIN, "--config", "run.yaml", "--train.learning_rate=5e-3"], capsys)
    assert code == 0, stderr
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (saved["train"]["max_steps"], saved["train"]["learning_rate"], saved["model"]["cell"]) == (3, 5e-3, "gru")
    code, _, stderr = run_main([*QUIET_TRAIN, "--config", "run.json", "--overwrite"], capsys)
    assert code == 0, stderr
    assert [r["step"] for r in metrics(tmp_path / "out")] == [1, 2]


def test_a_run_directorys_config_json_reruns_that_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    code, _, stderr = run_main([*QUIET_TRAIN, "--train.max_steps=3", "--model.cell=gru"], capsys)
    assert code == 0, stderr
    code, _, stderr = run_main(["charlm", "train", "--config", "out/config.json", "--out", "again", "--quiet"], capsys)
    assert code == 0, stderr
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == json.loads(
        (tmp_path / "out" / "config.json").read_text()
    )
    assert model_tensors(tmp_path / "again" / "last.pt").keys() == model_tensors(tmp_path / "out" / "last.pt").keys()
    code, _, stderr = run_main(["wordlm", "train", "--config", "out/config.json", "--out", "words", "--quiet"], capsys)
    assert_one_line_error(code, stderr, "out/config.json: the settings of a charlm run, not a wordlm one")


@pytest.mark.parametrize(
    "content, expect",
    [
        ("train:\n  max_steps: [3\n", "run.yaml: not valid YAML at line"),
        ("- 1\n- 2\n", "run.yaml: expected a mapping of settings, got list"),
        ("model:\n  hidden_size: [8]\n", "--model.hidden_size: expected int, got list"),
        ("model:\n  hidden_size: 2.5\n", "--model.hidden_size: expected int, got float"),
        ("trian:\n  max_steps: 3\n", "run.yaml: unknown setting trian.max_steps; did you mean train.max_steps?"),
        ("model:\n  hiden_size: 8\n", "run.yaml: unknown setting model.hiden_size; did you mean model.hidden_size?"),
        ("model:\n  zzz: 8\n", "run.yaml: unknown setting model.zzz of charlm (rnnkit charlm train --help lists them)"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, monkeypatch, capsys, content, expect):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    (tmp_path / "run.yaml").write_text(content)
    before = directory_contents(tmp_path)
    code, _, stderr = run_main([*QUIET_TRAIN, "--config", "run.yaml"], capsys)
    assert_one_line_error(code, stderr, expect)
    assert directory_contents(tmp_path) == before


def test_tensorboard_gets_the_metrics(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    code, _, stderr = run_main(
        [*QUIET_TRAIN, "--train.max_steps=4", "--train.eval_interval=2", "--tensorboard"], capsys
    )
    assert code == 0, stderr
    events = EventAccumulator(str(tmp_path / "out" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("val_loss")] == [2, 4]


def test_the_number_of_threads_leaves_the_sample_unchanged(tmp_path):
    """OMP_NUM_THREADS=1 (the README's advice on a shared machine) and 2 give the same text for the same seed."""
    results = [
        subprocess.run(
            [sys.executable, "-m", "rnnkit", "charlm", "sample", "--dry-run", "--seed", "5", "--length", "40"],
            cwd=tmp_path,
            env={**ENV, "OMP_NUM_THREADS": threads},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        for threads in ("1", "2")
    ]
    for result in results:
        assert_ok(result)
    assert results[0].stdout == results[1].stdout and len(results[0].stdout) > 40


def test_a_full_disk_mid_run_is_one_line_and_keeps_the_checkpoints(tmp_path, monkeypatch, capsys):
    """The disk fills up at the second save: one line naming the file and saying the earlier checkpoints are intact."""
    import errno

    import rnnkit.runs

    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    saves, real = [], rnnkit.runs.save_checkpoint

    def filling_up(path, checkpoint):
        saves.append(path)
        if len(saves) > 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, checkpoint)

    monkeypatch.setattr(rnnkit.runs, "save_checkpoint", filling_up)
    code, _, stderr = run_main([*QUIET_TRAIN, "--train.checkpoint_interval=1"], capsys)
    assert_one_line_error(code, stderr, "No space left on device; the checkpoints already in out are intact")
    assert torch.load(tmp_path / "out" / "last.pt", weights_only=True)["step"] == 2  # the last save that succeeded


def test_resuming_with_a_longer_plan_says_how_the_learning_rate_changes(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    code, _, stderr = run_main(
        [*RESUME_TRAIN, "--resume", str(trained_run / "run" / "last.pt"), "--train.max_steps=40"], capsys
    )
    assert code == 0, stderr
    assert stderr.count("note: with the new settings the learning rate at step 20 is") == 1


def test_eval_scores_every_character_of_the_text(trained_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd.txt").write_text(CORPUS[:1687], encoding="utf-8")  # not a multiple of any batch or chunk size
    code, stdout, stderr = run_main(
        ["charlm", "eval", str(trained_run / "run" / "best.pt"), "--data", "odd.txt"], capsys
    )
    assert code == 0, stderr
    assert "(1,686 characters)" in stdout  # every character but the first is predicted


def test_eval_of_a_non_finite_loss_fails(trained_run, tmp_path, monkeypatch, capsys):
    from rnnkit.tasks import TASKS

    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    monkeypatch.setattr(
        TASKS["charlm"],
        "evaluate",
        lambda *args, **kwargs: {"loss": float("inf"), "bits": float("inf"), "perplexity": float("inf"), "tokens": 1},
    )
    code, _, stderr = run_main(["charlm", "eval", str(trained_run / "run" / "best.pt"), "--data", "corpus.txt"], capsys)
    assert_one_line_error(code, stderr, "the loss is inf")


def test_a_version_1_checkpoint_resumes(trained_run, tmp_path, monkeypatch, capsys):
    """A run saved by the char-LM alone (format 1: one `vocab` without a kind, the settings of that time,
    no averaging state) continues: the vocabulary compares equal and the missing settings take defaults."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    v2 = torch.load(trained_run / "run" / "last.pt", weights_only=True)
    config = {section: dict(values) for section, values in v2["config"].items()}
    for section, names in {
        "model": ("locked_dropout", "weight_drop"),
        "train": ("max_minutes", "plateau_factor", "averaging_patience"),
    }.items():
        for name in names:
            del config[section][name]
    train_state = {k: v for k, v in v2["train_state"].items() if k not in ("val_history", "averaging")}
    v1 = {k: v for k, v in v2.items() if k != "vocabularies"} | {
        "version": 1,
        "config": config,
        "train_state": train_state,
        "vocab": {"symbols": v2["vocabularies"]["text"]["symbols"]},
    }
    torch.save(v1, tmp_path / "v1.pt")
    code, _, stderr = run_main([*RESUME_TRAIN, "--resume", "v1.pt", "--train.max_steps=22", "--overwrite"], capsys)
    assert code == 0, stderr
    assert torch.load(tmp_path / "out" / "last.pt", weights_only=True)["step"] == 22


def test_an_error_about_a_name_with_line_breaks_stays_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run_main(["charlm", "train", "--dry-run", "--config", "a\rb\nc"], capsys)
    assert_one_line_error(code, stderr, "a\\rb\\nc: cannot read")


def test_an_argument_argparse_itself_trips_on_is_a_usage_error(capsys):
    code, _, stderr = run_main(["charlm", "train", "--dry-run", "--preset=--"], capsys)
    assert_one_line_error(code, stderr, "--preset: expected a value")


@pytest.mark.parametrize(
    "args",
    [
        ["charlm", "train", "--preset", "tiny", "--data=a\x00b", "--quiet"],
        ["classify", "eval", "--dry-run"][:2] + ["ckpt\x00.pt", "--data", "x"],
        ["charlm", "train", "--config=a\x00b"],
    ],
)
def test_a_nul_byte_in_a_file_name_is_one_line(tmp_path, monkeypatch, capsys, args):
    """No OS lets a NUL byte into a path; one from Python or a --config file is an input error, not a bug."""
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run_main(args, capsys)
    assert code == 2 and stderr.count("\n") == 1 and "internal error" not in stderr, stderr
