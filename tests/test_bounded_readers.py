"""Readers that stop: a line beyond MAX_LINE_CHARS, a settings file beyond its size or value count, each one
line naming the file and the limit, instead of reading (or expanding) without end."""

import os
import threading
from pathlib import Path

import pytest

from rnnkit.config import SETTINGS_FILE_BYTES, SETTINGS_VALUES, build_config, read_settings_file
from rnnkit.data import text
from rnnkit.data.conllu import read_conllu
from rnnkit.data.labelled import read_table
from rnnkit.data.parallel import read_lines
from rnnkit.errors import RnnkitError
from rnnkit.tasks import TASKS

ENDLESS = "/dev/zero"  # NUL bytes are valid UTF-8: one line that never ends


@pytest.mark.skipif(not Path(ENDLESS).exists(), reason="no /dev/zero")
@pytest.mark.parametrize("reader", [read_conllu, read_lines, read_table, lambda path: list(text.text_lines(path))])
def test_an_endless_line_is_refused_at_the_limit(reader):
    with pytest.raises(RnnkitError, match=f"^{ENDLESS}: line 1 is longer than {text.MAX_LINE_CHARS:,} characters$"):
        reader(ENDLESS)


def test_a_long_input_line_is_refused_by_number(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "MAX_LINE_CHARS", 100)
    path = tmp_path / "inputs.txt"
    path.write_text("a short line\n" + "x" * 101 + "\nnever reached\n", encoding="utf-8")
    lines = text.input_lines(str(path))
    assert next(lines) == ("a short line", f"{path}:1")
    with pytest.raises(RnnkitError, match=f"^{path}: line 2 is longer than 100 bytes$"):
        next(lines)


def test_a_table_field_may_be_as_long_as_a_line(tmp_path):
    """csv's own limit (128 KiB a field) is not rnnkit's: a 200,000-character text is read."""
    path = tmp_path / "long.tsv"
    path.write_text("sentence\tlabel\n" + "word " * 40_000 + "\tpositive\nshort\tnegative\n", encoding="utf-8")
    examples = read_table(path)
    assert [len(e.words) for e in examples] == [40_000, 1] and examples[0].label == "positive"


def test_a_fifo_with_a_writer_is_read_whole(tmp_path):
    fifo = tmp_path / "pipe.conllu"
    os.mkfifo(fifo)
    sentence = "1\tThe\tthe\tDET\t_\t_\t_\t_\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\t_\t_\t_\t_\n\n"
    writer = threading.Thread(target=lambda: fifo.write_text(sentence * 3, encoding="utf-8"))
    writer.start()
    sentences = read_conllu(fifo)
    writer.join()
    assert [s.words for s in sentences] == [["The", "dog"]] * 3


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n" for previous, name in zip("abcdefgh", "bcdefghi")
)


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    """Nine lines that name one list 9^9 times: counted no further than the limit."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB + "model:\n  hidden_size: *i\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=f"^{path}: holds more than {SETTINGS_VALUES:,} values"):
        read_settings_file(path)


def test_a_settings_file_beyond_its_size_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * SETTINGS_FILE_BYTES + b"\nmodel: {hidden_size: 8}\n")
    with pytest.raises(RnnkitError, match=f"^{path}: larger than a settings file may be"):
        read_settings_file(path)


def test_a_wrong_value_is_shown_cut_to_a_line(tmp_path):
    """The value of a wrong type is shown as a short repr, never formatted whole."""
    path = tmp_path / "nested.yaml"
    words = ", ".join(["x" * 50] * 50)
    path.write_text(f"model:\n  hidden_size: [&a [{words}], *a, *a, *a]\n", encoding="utf-8")
    with pytest.raises(RnnkitError) as error:
        build_config(TASKS["charlm"].Config, {}, None, read_settings_file(path))
    assert str(error.value).startswith("--model.hidden_size: expected int, got list [[") and len(str(error.value)) < 200
