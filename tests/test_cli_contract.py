"""The command line's manners, for every subcommand: typed --help, one flag spelling (the README's too), a bad
flag pointing to its command's help, --print-config, and --dry-run never silently beside a checkpoint."""

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml

from rnnkit.cli import build_parser, main

README = Path(__file__).resolve().parent.parent / "README.md"
SETTING = re.compile(r"^(override|predict|options|evaluate):")


def subparsers(parser: argparse.ArgumentParser, words=()) -> dict[tuple, argparse.ArgumentParser]:
    """Every (sub)command's parser, by the words that name it: () for rnnkit, ("tagger", "tag"), ..."""
    found = {tuple(words): parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.update(subparsers(child, (*words, name)))
    return found


PARSERS = subparsers(build_parser())


@pytest.mark.parametrize("words", sorted(PARSERS), ids=lambda words: " ".join(words) or "rnnkit")
def test_help_shows_each_settings_type_and_default(words):
    for action in PARSERS[words]._actions:
        if action.nargs == 0 or not action.option_strings or action.dest == "help":
            continue
        assert action.metavar != "V", f"{action.option_strings}: no type shown"
        if (
            SETTING.match(action.dest)
            and not action.dest.endswith("data.path")
            and action.dest != "override:train.device"
        ):
            assert "default" in action.help and action.metavar, f"{action.option_strings}: {action.help}"
            flag = action.option_strings[0]
            if not flag.startswith(("--model.", "--data.", "--train.")):
                assert "_" not in flag, f"{flag}: a command's own flag is spelled with dashes"


def readme_commands() -> list[list[str]]:
    """Each `rnnkit ...` command line in the README's code blocks, as words (up to a comment, pipe or redirect)."""
    commands, inside = [], False
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        text = line.strip().removeprefix("$ ")
        if inside and text.startswith("rnnkit "):
            text = re.split(r"\s+#|\s\|\s|\s>\s|\s<\s", text)[0]
            try:
                commands.append(shlex.split(text)[1:])
            except ValueError:
                continue
    return commands


def test_the_readme_spells_every_flag_as_the_help_does():
    commands = readme_commands()
    assert len(commands) > 30
    unknown = []
    for words in (w for w in commands if not w[0].isupper()):  # not the placeholders' synopsis (rnnkit TASK ...)
        path = tuple(w for w in words[:2] if not w.startswith("-") and w in {*sum(PARSERS, ())})
        while path not in PARSERS:
            path = path[:-1]
        known = set(PARSERS[path]._option_string_actions)
        for word in words:
            flag = word.split("=")[0]
            if flag.startswith("--") and flag not in known and not re.match(r"--[A-Z]", flag):
                unknown.append(f"{' '.join(words[:2])}: {flag}")
    assert unknown == []


def test_a_bad_flag_points_to_its_commands_help(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["charlm", "sample", "--dry-run", "--lenght=3"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "unrecognized arguments: --lenght=3; did you mean --length? (see rnnkit charlm sample --help)" in error


def test_dry_run_with_a_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    for command in (["charlm", "sample"], ["tagger", "eval"], ["translate"]):
        assert main([*command, str(tmp_path / "best.pt"), "--dry-run"]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "--dry-run runs an untrained tiny model" in error


def test_print_config_prints_the_resolved_settings_that_config_reads_back(tmp_path, capsys):
    assert main(["tagger", "train", "--preset", "tiny", "--train.max_steps=7", "--print-config"]) == 0
    printed = capsys.readouterr().out
    settings = yaml.safe_load(printed)
    assert settings["train"]["max_steps"] == 7 and settings["model"]["hidden_size"] == 16
    assert "seq_len" not in settings["train"]  # only the language models read streams
    (tmp_path / "run.yaml").write_text(printed)
    assert main(["tagger", "train", "--config", str(tmp_path / "run.yaml"), "--print-config"]) == 0
    assert capsys.readouterr().out == printed


def test_a_stream_setting_is_unknown_to_a_task_without_streams(capsys):
    with pytest.raises(SystemExit):
        main(["tagger", "train", "--dry-run", "--train.seq_len=1"])
    assert "unrecognized arguments: --train.seq_len=1 (see rnnkit tagger train --help)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command, flag",
    [
        (["charlm", "train", "--dry-run", "--data", ""], "--data"),  # a script's --data "$DATA" with DATA unset
        (["charlm", "train", "--dry-run", "--out", ""], "--out"),
        (["charlm", "train", "--dry-run", "--data.token_cache="], "--data.token_cache"),
        (["tagger", "tag", "--dry-run", "--input", ""], "--input"),
        (["translate", "--dry-run", "--attention-png", ""], "--attention-png"),
        (["tagger", "eval", "", "--data", "x"], "CHECKPOINT"),
        (["viz", "--dry-run", "--text", ""], "--text"),
        (["export", "--dry-run", "--bundle", ""], "--bundle"),
    ],
)
def test_an_empty_path_is_refused_naming_its_flag(command, flag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    assert (
        capsys.readouterr().err == f"rnnkit: error: {flag}: an empty path (give a file or directory, or drop {flag})\n"
    )
    assert list(tmp_path.iterdir()) == []  # nothing was written, and no built-in data was trained on


def test_a_prediction_commands_text_is_a_sentence_not_a_path(capsys):
    assert main(["tagger", "tag", "--dry-run", "--text", "a b"]) == 0
