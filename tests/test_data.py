"""Tests for rnnkit/data: Vocab (vocab.py), reading and splitting text (text.py), the TBPTT stream layout
(batching.py, WholeText too) and the char-LM task's loader (tasks/charlm.py)."""

import pytest
import torch

from rnnkit.data.batching import StreamBatches
from rnnkit.data.text import read_text, split_text
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.tasks.charlm import DataConfig, task

UNICODE_TEXT = "héllo wörld 😀 日本語!\n\ttabs & ünïcödé 🎉\n"


# --- Vocab ----------------------------------------------------------------------------------------


def test_vocab_is_sorted_and_distinct():
    """Symbols are sorted(set(text)), so the same text always gives the same ids (min-char-rnn's list(set())
    does not)."""
    vocab = Vocab.from_text("hello world")
    assert vocab.symbols == [" ", "d", "e", "h", "l", "o", "r", "w"]
    assert len(vocab) == 8
    assert Vocab.from_text("dlrow olleh").symbols == vocab.symbols  # order of appearance does not matter


def test_encode_matches_a_dict_lookup_and_decode_inverts_it():
    """encode gives each character its index in the sorted symbols (checked against a plain lookup), on
    text with accents, emoji (outside the BMP) and CJK; decode(encode(text)) is the text again."""
    vocab = Vocab.from_text(UNICODE_TEXT)
    ids = vocab.encode(UNICODE_TEXT)
    assert ids.dtype == torch.int64 and ids.shape == (len(UNICODE_TEXT),)
    assert ids.tolist() == [vocab.symbols.index(c) for c in UNICODE_TEXT]
    assert vocab.decode(ids) == UNICODE_TEXT
    assert vocab.decode(ids.tolist()) == UNICODE_TEXT


@pytest.mark.parametrize(
    "text, unseen",
    [
        ("abxé", ["'x' (U+0078)", "'é' (U+00E9)"]),
        ("a😀", ["'😀' (U+1F600)"]),  # beyond the largest symbol
        ("A\tb", ["'A' (U+0041)", "'\\t' (U+0009)"]),  # below the smallest symbol
    ],
)
def test_unseen_characters_are_named(text, unseen):
    """Characters outside the vocabulary are an error that names each one with its code point."""
    vocab = Vocab.from_text("abc")
    with pytest.raises(RnnkitError, match="prime text has characters the model never saw") as error:
        vocab.encode(text, what="prime text")
    for description in unseen:
        assert description in str(error.value)


def test_vocab_dict_round_trip():
    """to_dict/from_dict (how checkpoints carry the vocabulary) rebuild the same symbols and ids."""
    vocab = Vocab.from_text(UNICODE_TEXT)
    data = vocab.to_dict()
    rebuilt = Vocab.from_dict(data)
    assert rebuilt.symbols == vocab.symbols
    assert torch.equal(rebuilt.encode(UNICODE_TEXT), vocab.encode(UNICODE_TEXT))
    assert all(isinstance(value, str) for value in data.values())  # builtins only: loads with weights_only=True


@pytest.mark.parametrize(
    "symbols", [[], ["b", "a"], ["a", "a"], ["ab"]], ids=["empty", "unsorted", "repeated", "multi-char"]
)
def test_vocab_refuses_bad_symbol_lists(symbols):
    """A vocabulary must be non-empty, sorted, distinct single characters."""
    with pytest.raises(RnnkitError):
        Vocab(symbols)


# --- reading and splitting text -------------------------------------------------------------------


def test_read_text_returns_the_file_exactly(tmp_path):
    """A UTF-8 file comes back character for character, unicode and trailing newline included."""
    path = tmp_path / "corpus.txt"
    path.write_bytes(UNICODE_TEXT.encode("utf-8"))
    assert read_text(path) == UNICODE_TEXT


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty"),
        (b" \n\t  \r\n", "only whitespace"),
    ],
    ids=["empty", "whitespace-only"],
)
def test_read_text_refuses_files_without_text(tmp_path, content, reason):
    """Empty and whitespace-only files are errors that name the file and say which."""
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(RnnkitError, match=reason) as error:
        read_text(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "content, offset, line",
    [
        (b"ab\ncd\xff", 5, 2),
        (b"\xffabc", 0, 1),
        (b"ok\nfine\n\xc3(", 8, 3),  # a two-byte sequence with a bad continuation byte
    ],
)
def test_read_text_locates_bad_bytes(tmp_path, content, offset, line):
    """A non-UTF-8 file is an error giving the file, the line and the byte offset of the first bad byte."""
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(RnnkitError) as error:
        read_text(path)
    message = str(error.value)
    assert str(path) in message and f"line {line}" in message and f"byte offset {offset}" in message


@pytest.mark.parametrize("name", ["missing.txt", "a_directory"])
def test_read_text_refuses_unreadable_paths(tmp_path, name):
    """A missing file (or a directory) is an RnnkitError naming the path, not an OSError."""
    path = tmp_path / name
    if name == "a_directory":
        path.mkdir()
    with pytest.raises(RnnkitError, match="cannot read") as error:
        read_text(path)
    assert str(path) in str(error.value)


def test_split_text_by_position():
    """Validation is the last fraction of the text, training the rest, in order and without overlap."""
    assert split_text("abcdefghij", 0.2) == ("abcdefgh", "ij")
    assert split_text("abcdefghij", 0.5) == ("abcde", "fghij")


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_text_refuses_fractions_outside_0_1(fraction):
    """Both parts must be non-empty in principle: the fraction must be strictly between 0 and 1."""
    with pytest.raises(RnnkitError, match="val_fraction"):
        split_text("abcdefghij", fraction)


def test_charlm_load_data_builds_the_vocab_from_the_whole_text(tmp_path):
    """The vocabulary covers the validation part too (a character only seen there still encodes), and the
    ids are the position split of the file."""
    path = tmp_path / "corpus.txt"
    path.write_text("aaaaaaaabz", encoding="utf-8")  # 'z' only in the last 20%
    data = task.load_data(task.Config(data=DataConfig(path=str(path), val_fraction=0.2)))
    assert data.vocab.symbols == ["a", "b", "z"]
    assert data.vocab.decode(data.train_ids) == "aaaaaaaa"
    assert data.vocab.decode(data.val_ids) == "bz"
    assert data.source == str(path)


# --- StreamBatches: B contiguous streams read T steps at a time -----------------------------------


def test_stream_layout_of_the_docstring_example():
    """ids 0..14, B=3, T=2: rows are 0-4, 5-9, 10-14, and the chunks are exactly the docstring's."""
    batches = StreamBatches(torch.arange(15), batch_size=3, seq_len=2)
    assert len(batches) == 2
    inputs, targets = batches[0]
    assert inputs.tolist() == [[0, 1], [5, 6], [10, 11]]
    assert targets.tolist() == [[1, 2], [6, 7], [11, 12]]
    inputs, targets = batches[1]
    assert inputs.tolist() == [[2, 3], [7, 8], [12, 13]]
    assert targets.tolist() == [[3, 4], [8, 9], [13, 14]]


def test_chunks_continue_each_other():
    """Chunk k+1 of row b starts where chunk k stopped: the chunks of a pass, joined, are each row's
    contiguous stream, and the targets are the inputs shifted by one. Indices wrap around for a new pass."""
    ids = torch.arange(103)  # 103 // 4 = 25 per row; the last 3 ids are dropped
    batches = StreamBatches(ids, batch_size=4, seq_len=5)
    assert len(batches) == (25 - 1) // 5
    inputs = torch.cat([batches[k][0] for k in range(len(batches))], dim=1)  # (B, len·T)
    targets = torch.cat([batches[k][1] for k in range(len(batches))], dim=1)  # (B, len·T)
    starts = torch.arange(4)[:, None] * 25  # (B, 1): where each row's stream begins
    steps = torch.arange(len(batches) * 5)[None, :]  # (1, len·T)
    assert torch.equal(inputs, starts + steps)
    assert torch.equal(targets, starts + steps + 1)
    for k in range(len(batches)):
        assert all(torch.equal(a, b) for a, b in zip(batches[k + len(batches)], batches[k]))


def test_exactly_one_batch_is_enough():
    """B × (T + 1) ids make exactly one chunk."""
    batches = StreamBatches(torch.arange(3 * 5), batch_size=3, seq_len=4)
    assert len(batches) == 1
    assert batches[0][0].shape == batches[0][1].shape == (3, 4)


def test_text_shorter_than_one_batch_is_an_error():
    """One id fewer than B × (T + 1) is an error saying how many are needed, naming what was too short."""
    with pytest.raises(RnnkitError, match=r"corpus\.txt has 14 characters.*= 15"):
        StreamBatches(torch.arange(14), batch_size=3, seq_len=4, what="corpus.txt")


@pytest.mark.parametrize("batch_size, seq_len", [(0, 4), (3, 0), (-1, 4)])
def test_non_positive_sizes_are_errors(batch_size, seq_len):
    """batch_size and seq_len must be positive."""
    with pytest.raises(RnnkitError, match="must be positive"):
        StreamBatches(torch.arange(100), batch_size, seq_len)


def test_whole_text_reads_every_token_once_with_a_shorter_last_chunk():
    """ids 0..6, T = 3: inputs [0 1 2] -> [1 2 3], then [3 4 5] -> [4 5 6]; T = 4: the last chunk has 2 steps."""
    from rnnkit.data.batching import WholeText

    batches = WholeText(torch.arange(7), seq_len=3)
    assert len(batches) == 2 and batches.carries_state and batches.targets_in(2) == 6
    assert [b.inputs.tolist() for b in (batches[0], batches[1])] == [[[0, 1, 2]], [[3, 4, 5]]]
    assert [b.targets.tolist() for b in (batches[0], batches[1])] == [[[1, 2, 3]], [[4, 5, 6]]]
    shorter = WholeText(torch.arange(7), seq_len=4)
    assert (
        shorter[1].inputs.tolist() == [[4, 5]]
        and shorter[1].targets.tolist() == [[5, 6]]
        and shorter.targets_in(2) == 6
    )
    with pytest.raises(RnnkitError, match="at least 2"):
        WholeText(torch.arange(1), what="x.txt")
