"""Tests for rnnkit/data/tokens.py: a text encoded block by block into a memory-mapped token array equals
encoding it whole, bad bytes are reported where they are (also across block boundaries), the cache is
reused until its text changes, and training from the mapped array equals training from memory."""

import json

import numpy as np
import pytest
import torch

import rnnkit.data.text as text_module
import rnnkit.data.tokens as tokens
from rnnkit.data.batching import StreamBatches
from rnnkit.data.text import read_text
from rnnkit.data.tokens import encode_file, load_tokens, token_dtype
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError

TEXT = "Ünïcödé text: 日本語 and emoji 🙂, over several lines.\n" * 30


@pytest.fixture
def small_blocks(monkeypatch):
    """7-byte blocks: multi-byte characters are cut at every possible place."""
    monkeypatch.setattr(text_module, "BLOCK_BYTES", 7)


def test_block_encoding_equals_encoding_the_whole_text(tmp_path, small_blocks):
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    ids, vocab = encode_file(tmp_path / "text.txt", tmp_path / "cache")
    assert vocab.symbols == sorted(set(TEXT))
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint8
    assert np.array_equal(np.asarray(ids, dtype=np.int64), Vocab.from_text(TEXT).encode(TEXT).numpy())


@pytest.mark.parametrize(
    "size, dtype", [(256, np.uint8), (257, np.uint16), (1 << 16, np.uint16), ((1 << 16) + 1, np.uint32)]
)
def test_token_dtype_is_the_smallest_that_holds_every_id(size, dtype):
    assert token_dtype(size) == dtype


def test_a_large_vocabulary_uses_uint16(tmp_path):
    text = "".join(chr(0x4E00 + i) for i in range(300)) * 2
    (tmp_path / "cjk.txt").write_text(text, encoding="utf-8")
    ids, vocab = encode_file(tmp_path / "cjk.txt", tmp_path / "cache")
    assert ids.dtype == np.uint16 and len(vocab) == 300
    assert vocab.decode(ids[:5].tolist()) == text[:5]


@pytest.mark.parametrize("prefix", [b"ab\ncd", b"x" * 6, b"line\n" * 3 + b"\xc3"])  # bad byte in and across blocks
def test_bad_bytes_are_reported_with_line_and_offset_like_read_text(tmp_path, small_blocks, prefix):
    """The streaming decoder names the same line and byte offset as decoding the whole file does."""
    path = tmp_path / "bad.txt"
    path.write_bytes(prefix + b"\xff" + b" more text\n" * 3)
    with pytest.raises(RnnkitError) as whole:
        read_text(path)
    with pytest.raises(RnnkitError) as streamed:
        encode_file(path, tmp_path / "cache")
    where = whole.value.args[0].split(" (")[0]  # "<path>: not UTF-8 at line L, byte offset O"
    assert streamed.value.args[0].startswith(where)
    assert not (tmp_path / "cache").exists()  # nothing written for a bad file


def test_a_character_cut_off_at_the_end_is_an_error(tmp_path, small_blocks):
    path = tmp_path / "cut.txt"
    path.write_bytes("ab🙂".encode()[:-1])
    with pytest.raises(RnnkitError, match="byte offset 2"):
        encode_file(path, tmp_path / "cache")


@pytest.mark.parametrize("content, word", [(b"", "empty"), (b" \n\t\n", "only whitespace")])
def test_empty_and_whitespace_files_are_errors(tmp_path, content, word):
    (tmp_path / "t.txt").write_bytes(content)
    with pytest.raises(RnnkitError, match=word):
        encode_file(tmp_path / "t.txt", tmp_path / "cache")


def test_the_cache_is_reused_until_the_text_changes(tmp_path, monkeypatch):
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    encode_file(path, tmp_path / "cache")
    calls = []
    real_scan = tokens.scan_vocabulary
    monkeypatch.setattr(tokens, "scan_vocabulary", lambda *a: calls.append(1) or real_scan(*a))
    encode_file(path, tmp_path / "cache")
    assert calls == []  # up to date: mapped, not encoded again
    path.write_text(TEXT + "new ending ✓\n", encoding="utf-8")
    ids, vocab = encode_file(path, tmp_path / "cache")
    assert calls == [1] and "✓" in vocab.symbols and len(ids) == len(TEXT) + len("new ending ✓\n")
    assert json.loads((tmp_path / "cache" / "source.json").read_text())["bytes"] == path.stat().st_size
    assert not list((tmp_path / "cache").glob(".*.tmp"))


def test_files_of_the_cache_names_that_it_did_not_write_are_never_replaced(tmp_path):
    """A directory holding the user's own tokens.npy is refused as a cache; a cache whose encoding was cut
    short (its marker, no source.json yet) is encoded again."""
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "tokens.npy").write_bytes(b"the user's own array")
    with pytest.raises(RnnkitError, match="tokens.npy that are no rnnkit token cache"):
        encode_file(path, tmp_path / "mine")
    assert (tmp_path / "mine" / "tokens.npy").read_bytes() == b"the user's own array"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "source.json").write_text(
        '{"user": "mine"}'
    )  # a source.json alone is no sign of a cache either
    with pytest.raises(RnnkitError, match="source.json that are no rnnkit token cache"):
        encode_file(path, tmp_path / "notes")
    encode_file(path, tmp_path / "cut")
    (tmp_path / "cut" / "source.json").unlink()  # killed before its last file
    ids, _ = encode_file(path, tmp_path / "cut")
    assert len(ids) == len(TEXT) and (tmp_path / "cut" / "source.json").exists()


def test_a_corrupt_cache_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "vocab.json").write_text('{"symbols": "ab"}')
    (tmp_path / "tokens.npy").write_bytes(b"not numpy")
    with pytest.raises(RnnkitError, match="not a readable token cache"):
        load_tokens(tmp_path)


def test_stream_batches_over_the_memory_map_equal_batches_over_a_tensor(tmp_path):
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    ids, vocab = encode_file(tmp_path / "text.txt", tmp_path / "cache")
    mapped, in_memory = StreamBatches(ids, 4, 16), StreamBatches(vocab.encode(TEXT), 4, 16)
    assert len(mapped) == len(in_memory)
    for k in range(len(mapped)):
        for a, b in zip(mapped[k], in_memory[k]):
            assert a.dtype == torch.int64 and torch.equal(a, b)
