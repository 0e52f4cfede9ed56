"""Hostile input, as a user would give it: each case runs `python -m rnnkit ...` in a subprocess and must
end in rnnkit's own one line (or, where nothing is wrong, success) with no traceback, and leave every file
the user had as it was. One case per class of failure: the outside world (missing and read-only
directories, a full allocation, a closed stdout), flags (devices, non-finite and negative numbers,
spellings, empty paths), checkpoints (schema, a task's vocabularies, weights that do not fit or are not finite),
token caches, endless or exploding input (/dev/zero, a YAML alias bomb), and every subcommand's --help."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from test_cli import CORPUS, ENV, TIMEOUT, directory_contents
from test_cli_fuzz import COMMANDS

import rnnkit
from rnnkit.checkpoint import save_checkpoint


def run(args: list[str], cwd: Path, stdin: str | None = None, python: bool = False) -> subprocess.CompletedProcess:
    """`python -m rnnkit ARGS` (with python=True, `python ARGS`) in cwd."""
    return subprocess.run(
        [sys.executable, *(args if python else ["-m", "rnnkit", *args])],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        input=stdin,
    )


MAINS = """  # main() on each argument list of argv[1] (JSON), in this one process: [[status, stdout, stderr], ...]
import contextlib, io, json, sys
from rnnkit.cli import main
results = []
for args in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exit:
            code = exit.code
    results.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """corpus.txt, a trained tiny checkpoint (run/best.pt), and variants of it broken in one way each."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    trained = run(
        [
            "charlm",
            "train",
            "--preset",
            "tiny",
            "--data",
            "corpus.txt",
            "--out",
            "run",
            "--quiet",
            "--train.max_steps=4",
        ],
        root,
    )
    assert trained.returncode == 0, trained.stderr
    good = torch.load(root / "run" / "best.pt", weights_only=True)
    broken = {
        "config-a-string.pt": {**good, "config": "lstm please"},
        "vocabulary-a-number.pt": {**good, "vocabularies": {"text": 65}},
        "field-of-wrong-type.pt": {
            **good,
            "config": {**good["config"], "model": {**good["config"]["model"], "hidden_size": "big"}},
        },
        "weights-of-another-shape.pt": {**good, "model": {**good["model"], "decoder.weight": torch.zeros(3, 3)}},
        "weights-missing.pt": {**good, "model": {k: v for k, v in good["model"].items() if k != "decoder.bias"}},
        "weights-not-finite.pt": {
            **good,
            "model": {**good["model"], "decoder.bias": torch.full_like(good["model"]["decoder.bias"], float("nan"))},
        },
    }
    for name, checkpoint in broken.items():
        torch.save(checkpoint, root / name)
    for task in ("seq2seq", "tagger"):  # untrained tiny checkpoints of other tasks, made in this process
        model, vocabularies, config = rnnkit.TASKS[task].tiny_model()
        checkpoint = {
            "task": task,
            "model": model.state_dict(),
            "config": asdict(config),
            "vocabularies": {name: vocabulary.to_dict() for name, vocabulary in vocabularies.items()},
            "step": 0,
        }
        save_checkpoint(root / f"{task}.pt", checkpoint)
        if task == "seq2seq":
            del checkpoint["vocabularies"]["source_tokens"]
            save_checkpoint(root / "no-source-tokenizer.pt", checkpoint)
    (root / "bomb.yaml").write_text(
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
        + "model:\n  hidden_size: *i\n"
    )
    (root / "readonly").mkdir()
    os.chmod(root / "readonly", 0o555)
    (root / "a-file").write_text("not a directory\n")
    return root


CASES = {  # name: (arguments, what the one line says)
    "missing-parent-directory": (
        ["charlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "a-file/run", "--quiet"],
        "a-file",
    ),
    "unknown-device": (["charlm", "sample", "run/best.pt", "--device", "tpu"], "--device: unknown device 'tpu'"),
    "absent-cuda": (
        ["wordlm", "train", "--dry-run", "--device", "cuda"],
        "no CUDA GPU is available" if not torch.cuda.is_available() else None,
    ),
    "cpu-index": (
        ["charlm", "eval", "run/best.pt", "--data", "corpus.txt", "--device", "cpu:3"],
        "there is one CPU device",
    ),
    "nan-learning-rate": (
        ["charlm", "train", "--dry-run", "--train.learning_rate=nan"],
        "--train.learning_rate: must be a finite number",
    ),
    "inf-temperature": (
        ["charlm", "sample", "--dry-run", "--temperature", "inf"],
        "--temperature: must be a finite number",
    ),
    "negative-length": (["wordlm", "sample", "--dry-run", "--length", "-3"], "--length: must not be negative"),
    "negative-chars": (["viz", "--dry-run", "--chars", "-5"], "--chars: must be at least 1"),
    "zero-seq-len": (["diagnose", "--dry-run", "--seq_len", "0"], "--seq-len: must be at least 1"),
    "other-spelling": (["charlm", "sample", "--dry-run", "--top_k", "x"], "--top-k: expected int"),  # named with dashes
    "config-a-string": (
        ["charlm", "sample", "config-a-string.pt"],
        "config-a-string.pt: checkpoint key 'config' should be a dict, got str",
    ),
    "vocabulary-a-number": (
        ["charlm", "sample", "vocabulary-a-number.pt"],
        "vocabulary 'text' should be a dict, got int",
    ),
    "field-of-wrong-type": (
        ["charlm", "eval", "field-of-wrong-type.pt", "--data", "corpus.txt"],
        "ModelConfig.hidden_size: expected int, got str",
    ),
    "weights-of-another-shape": (
        ["charlm", "sample", "weights-of-another-shape.pt"],
        "other shape: decoder.weight (3, 3) where the model has",
    ),
    "weights-missing": (
        ["diagnose", "weights-missing.pt", "--data", "corpus.txt", "--out", "d"],
        "missing: decoder.bias",
    ),
    "weights-not-finite": (
        ["viz", "weights-not-finite.pt", "--text", "corpus.txt", "--out", "v"],
        "weight decoder.bias holds NaN or infinite values",
    ),
    "token-cache-is-a-file": (
        [
            "charlm",
            "train",
            "--preset",
            "tiny",
            "--data",
            "corpus.txt",
            "--data.token_cache",
            "a-file",
            "--out",
            "o",
            "--quiet",
        ],
        "a-file: the token cache must be a directory",
    ),
    "empty-data": (["charlm", "train", "--preset", "tiny", "--data", "", "--quiet"], "--data: an empty path"),
    "empty-out": (["charlm", "train", "--dry-run", "--out", ""], "--out: an empty path"),
    "no-source-tokenizer": (
        ["translate", "no-source-tokenizer.pt", "--text", "hund"],
        "must hold the vocabulary 'source_tokens'",
    ),
    "endless-conllu": (
        ["tagger", "eval", "tagger.pt", "--data", "/dev/zero"],
        "/dev/zero: line 1 is longer than 16,777,216 characters",
    ),
    "yaml-alias-bomb": (
        ["charlm", "train", "--dry-run", "--config", "bomb.yaml"],
        "bomb.yaml: holds more than 100,000 values",
    ),
    "huge-allocation": (
        [
            "charlm",
            "train",
            "--preset",
            "tiny",
            "--data",
            "corpus.txt",
            "--out",
            "big",
            "--quiet",
            "--model.hidden_size=3000000",
            "--model.embedding_size=3000000",
        ],
        "out of memory",
    ),
}
PREDICT_COUNT = {
    "classify": ("predict", "--batch-size"),
    "seqmnist": ("predict", "--batch-size"),
    "memory": ("predict", "--count"),
    "tagger": ("tag", "--batch-size"),
    "seq2seq": ("translate", "--batch-size"),
    "caption": ("predict", "--batch-size"),
    "frames": ("predict", "--batch-size"),
    "glimpse": ("predict", "--batch-size"),
    "draw": ("sample", "--count"),
}
# The same classes of failure for the tasks built later on the same mechanisms: each is one `main()` call in one
# shared subprocess (torch imported once, not fifty times); a huge allocation keeps a process of its own.
PER_TASK = {}
for task, (verb, count) in PREDICT_COUNT.items():
    PER_TASK.update(
        {
            f"{task}-absent-cuda": (
                [task, "train", "--dry-run", "--device", "cuda"],
                "no CUDA GPU is available" if not torch.cuda.is_available() else None,
            ),
            f"{task}-nan-learning-rate": (
                [task, "train", "--dry-run", "--train.learning_rate=nan"],
                "--train.learning_rate: must be a finite number",
            ),
            f"{task}-missing-parent-directory": (
                [task, "train", "--preset", "tiny", "--out", "a-file/run", "--quiet"],
                "a-file",
            ),
            f"{task}-zero-count": ([task, verb, "--dry-run", count, "0"], f"{count}: must be at least 1"),
            f"{task}-another-tasks-checkpoint": (
                [task, "eval", "run/best.pt", "--data", "corpus.txt"],
                f"a charlm checkpoint, not a {task} one",
            ),
        }
    )
    CASES[f"{task}-huge-allocation"] = (
        [task, "train", "--preset", "tiny", "--out", "big", "--quiet", "--model.hidden_size=3000000"],
        "out of memory",
    )
if os.geteuid() != 0:  # root writes anywhere: the read-only case means something only for other users
    CASES["read-only-directory"] = (
        ["charlm", "train", "--preset", "tiny", "--data", "corpus.txt", "--out", "readonly/run", "--quiet"],
        "Permission denied",
    )


@pytest.fixture(scope="module")
def results(workspace):
    import json

    before = directory_contents(workspace)
    with ThreadPoolExecutor(max_workers=2) as pool:
        shared = pool.submit(
            run, ["-c", MAINS, json.dumps([args for args, _ in PER_TASK.values()])], workspace, python=True
        )
        done = dict(zip(CASES, pool.map(lambda name: run(CASES[name][0], workspace), CASES)))
        assert shared.result().returncode == 0, shared.result().stderr
        for name, (code, _, stderr) in zip(PER_TASK, json.loads(shared.result().stdout)):
            done[name] = subprocess.CompletedProcess([], code, "", stderr)
    return done, before, directory_contents(workspace)


@pytest.mark.parametrize("name", [*CASES, *PER_TASK])
def test_hostile_input_gets_one_line(results, name):
    done, _, _ = results
    result, expect = done[name], {**CASES, **PER_TASK}[name][1]
    if expect is None:
        pytest.skip("a CUDA GPU is present")
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert result.returncode in (1, 2), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("rnnkit: error: "), result.stderr
    assert expect in result.stderr, result.stderr


def test_nothing_the_user_had_changed(results):
    _, before, after = results
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) == set(before), sorted(set(after) - set(before))  # a run refused before writing leaves nothing


def test_a_closed_stdout_ends_quietly(workspace):
    """`rnnkit charlm sample ... | head -c 10`: the reader leaves early, and rnnkit stops without a word."""
    command = f"{sys.executable} -m rnnkit charlm sample run/best.pt --length 20000 | head -c 10"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=workspace,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0 and result.stderr == "" and len(result.stdout) == 10, result.stderr


def test_a_closed_stdout_ends_a_classifier_quietly(workspace):
    (workspace / "many.txt").write_text("the film was good\n" * 5000)
    command = f"{sys.executable} -m rnnkit classify predict --dry-run --input many.txt --batch-size 16 | head -c 10"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=workspace,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    (workspace / "many.txt").unlink()
    assert result.returncode == 0 and result.stderr == "" and len(result.stdout) == 10, result.stderr


def test_version_and_every_help(tmp_path):
    """--version and every subcommand's --help, through the CLI's main() in one process (importing torch once, not
    forty times; `python -m rnnkit` itself is run by every other case here)."""
    import json

    lines = [["--version"]] + [[*words, "--help"] for words in sorted(COMMANDS)]
    result = subprocess.run(
        [sys.executable, "-c", MAINS, json.dumps(lines)],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)
    assert done[0][0] in (0, None) and done[0][1].startswith("rnnkit ")
    for args, (code, out, err) in zip(lines[1:], done[1:]):
        assert code in (0, None) and "usage: rnnkit" in out and "Traceback" not in err, (args, err)
