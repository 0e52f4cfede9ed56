"""Hostile input for every reader rnnkit has (text files, token caches, checkpoints): random, truncated and
corrupted bytes. The only failure allowed is an RnnkitError with a one-line message naming the file;
nothing hangs and nothing is written.

The suite runs RNNKIT_FUZZ_EXAMPLES examples per reader (200 by default, to stay fast); the README's
figure comes from `RNNKIT_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz.py`.
"""

import gzip
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnkit.data.text as text_module
from rnnkit.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, save_checkpoint
from rnnkit.data.text import read_text
from rnnkit.data.tokens import encode_file, load_tokens
from rnnkit.errors import RnnkitError

EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=10_000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def valid_checkpoint_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.pt"
        save_checkpoint(
            path,
            {
                "task": "charlm",
                "model": {"w": torch.randn(3, 4)},
                "config": {"a": 1},
                "vocabularies": {"text": {"symbols": "ab"}},
                "step": 3,
                "train_state": {"carried_state": [[torch.zeros(2, 4)]], "best_val_loss": 1.5},
            },
        )
        return path.read_bytes()


CHECKPOINT = valid_checkpoint_bytes()


def assert_one_line_error(error: RnnkitError, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and str(path) in message


def corrupted(data: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, a prefix of `data` (a truncated write), or `data` with a few bytes overwritten."""
    truncated = st.integers(0, len(data)).map(lambda n: data[:n])
    flips = st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=8)
    overwritten = flips.map(lambda changes: bytes(_apply(data, changes)))
    return st.one_of(st.binary(max_size=2048), truncated, overwritten)


def _apply(data: bytes, changes) -> bytearray:
    out = bytearray(data)
    for position, value in changes:
        out[position] = value
    return out


@FUZZ
@given(st.one_of(st.binary(max_size=512), st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))))
def test_text_readers_accept_or_explain(content):
    """read_text and the streaming encoder agree: both read the text, or both name the same place."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corpus.txt"
        path.write_bytes(content)
        outcomes = []
        for reader in (lambda: read_text(path), lambda: encode_file(path, Path(folder) / "cache")):
            try:
                outcomes.append(("ok", reader()))
            except RnnkitError as error:
                assert_one_line_error(error, path)
                outcomes.append(("error", str(error).split(" (")[0]))
        (first, whole), (second, streamed) = outcomes
        assert first == second
        if first == "ok":
            ids, vocab = streamed
            assert vocab.decode(np.asarray(ids).tolist()) == whole
        else:
            assert whole == streamed
            assert not (Path(folder) / "cache").exists()


@FUZZ
@given(corrupted(CHECKPOINT))
def test_checkpoint_loader_accepts_or_explains(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ckpt.pt"
        path.write_bytes(content)
        try:
            loaded = load_checkpoint(path)
        except RnnkitError as error:
            assert_one_line_error(error, path)
        else:
            assert loaded["format"] == FORMAT and loaded["version"] <= FORMAT_VERSION
        assert sorted(p.name for p in Path(folder).iterdir()) == ["ckpt.pt"]  # nothing written


def token_cache_bytes() -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "t.txt").write_text("hello tokens\n" * 4)
        encode_file(Path(folder) / "t.txt", Path(folder) / "cache")
        return (Path(folder) / "cache" / "tokens.npy").read_bytes(), (
            Path(folder) / "cache" / "vocab.json"
        ).read_bytes()


TOKENS, VOCAB_JSON = token_cache_bytes()


@FUZZ
@given(corrupted(TOKENS), corrupted(VOCAB_JSON))
def test_token_cache_loader_accepts_or_explains(tokens_bytes, vocab_bytes):
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder)
        (cache / "tokens.npy").write_bytes(tokens_bytes)
        (cache / "vocab.json").write_bytes(vocab_bytes)
        try:
            ids, vocab = load_tokens(cache)
        except RnnkitError as error:
            assert_one_line_error(error, cache)
        else:
            assert ids.ndim == 1 and len(vocab) >= 1


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    """A checkpoint crafted to run code on load is refused, and the code never runs."""
    marker = tmp_path / "PWNED"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "version": 1, "payload": Exploit()}, buffer)
    (tmp_path / "evil.pt").write_bytes(buffer.getvalue())
    with pytest.raises(RnnkitError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_small_blocks_are_fuzzed_too(monkeypatch):
    """The streaming decoder's block seams see the same hostile bytes (3-byte blocks)."""
    monkeypatch.setattr(text_module, "BLOCK_BYTES", 3)
    test_text_readers_accept_or_explain()


WORDS = "the cat sat on the mat\nthe dog sat on the log\n" * 4


@FUZZ
@given(
    st.one_of(st.binary(max_size=512), st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass"))),
    st.one_of(corrupted(gzip.compress(WORDS.encode())), st.binary(max_size=256).map(gzip.compress)),
    st.booleans(),
)
def test_word_corpus_reader_accepts_or_explains(plain, compressed, as_directory):
    """The word LM's reader, on a file or a corpus directory with a gzipped train file: success, or one
    RnnkitError naming the file that is wrong."""
    from rnnkit.tasks import TASKS

    wordlm = TASKS["wordlm"]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if as_directory:
            (root / "ptb.train.txt.gz").write_bytes(compressed)
            (root / "ptb.valid.txt").write_bytes(plain)
            target = root
        else:
            target = root / "corpus.txt"
            target.write_bytes(plain)
        config = wordlm.build_config("tiny", {"data.path": str(target)})
        try:
            data = wordlm.load_data(config)
        except RnnkitError as error:
            message = str(error)
            assert "\n" not in message and str(root) in message
        else:
            assert len(data.vocab) >= 3 and len(data.train_ids) >= 1


TABLE = b"sentence\tlabel\na fine film\t1\nawful\t0\n"
CSV_TABLE = b'text,label\n"good, really",yes\nbad,no\n'
TREES = b"(3 (2 It) (4 (3 lovely) (2 film)))\n(1 (1 dull) (2 .))\n"


@FUZZ
@given(
    st.one_of(
        corrupted(TABLE),
        corrupted(CSV_TABLE),
        corrupted(TREES),
        st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    ),
    st.sampled_from(["a.tsv", "a.csv", "trees.txt", "a.tsv.gz"]),
    st.booleans(),
)
def test_labelled_text_readers_accept_or_explain(content, name, phrases):
    """Tables (TSV, CSV) and treebank trees: examples with words and labels, or one line naming the file."""
    from rnnkit.tasks import classify

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
        data = classify.task.build_config("tiny", {"data.phrases": phrases}).data
        try:
            examples = classify.read_examples(str(path), data, training=True)
        except RnnkitError as error:
            assert_one_line_error(error, path)
        else:
            assert examples and all(e.words and e.label for e in examples)


def idx_bytes(values: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, values.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in values.shape)
    return header + values.astype(values.dtype.newbyteorder(">")).tobytes()


IDX_IMAGES = idx_bytes(np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4))


@FUZZ
@given(corrupted(IDX_IMAGES), st.booleans())
def test_idx_reader_accepts_or_explains(content, compressed):
    from rnnkit.data.idx import read_idx

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("images.idx.gz" if compressed else "images.idx")
        path.write_bytes(gzip.compress(content) if compressed else content)
        try:
            values = read_idx(path)
        except RnnkitError as error:
            assert_one_line_error(error, path)
        else:
            assert values.numel() == int(np.prod(values.shape)) and values.dim() >= 1


CONLLU = (
    b"# sent_id = 1\n# text = Don't go.\n1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_\n1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_\n"
    b"2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_\n3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_\n3.1\tgone\t_\t_\t_\t_\t_\t_\t_\t_\n"
    b"4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_\n\n1\tYes\tyes\tINTJ\tUH\t_\t0\troot\t_\t_\n"
)


@FUZZ
@given(
    st.one_of(corrupted(CONLLU), st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))), st.booleans()
)
def test_conllu_reader_accepts_or_explains(content, compressed):
    """CoNLL-U: sentences whose words each have a tag, or one line naming the file (and line)."""
    from rnnkit.data.conllu import read_conllu

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("a.conllu.gz" if compressed else "a.conllu")
        path.write_bytes(gzip.compress(content) if compressed else content)
        try:
            sentences = read_conllu(path)
        except RnnkitError as error:
            assert_one_line_error(error, path)
        else:
            assert sentences and all(s.words and len(s.words) == len(s.upos) == len(s.xpos) for s in sentences)
            assert all(" " not in w and w for s in sentences for w in s.words)


PARALLEL_SOURCE = "Ein Hund läuft.\nZwei Männer sitzen auf einer Bank.\n".encode()
PARALLEL_TARGET = b"A dog runs.\nTwo men sit on a bench.\n"


@FUZZ
@given(
    st.one_of(corrupted(PARALLEL_SOURCE), st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass"))),
    st.one_of(corrupted(PARALLEL_TARGET), st.just(PARALLEL_TARGET)),
    st.booleans(),
)
def test_parallel_text_reader_accepts_or_explains(source, target, compressed):
    """Parallel files: pairs of non-empty sentences, as many as each file has lines, or one line naming a file."""
    from rnnkit.data.parallel import read_parallel

    with tempfile.TemporaryDirectory() as folder:
        source_path, target_path = Path(folder) / ("a.de.gz" if compressed else "a.de"), Path(folder) / "a.en"
        source_path.write_bytes(gzip.compress(source) if compressed else source)
        target_path.write_bytes(target)
        try:
            pairs = read_parallel(source_path, target_path)
        except RnnkitError as error:
            message = str(error)
            assert "\n" not in message and (str(source_path) in message or str(target_path) in message)
        else:
            assert pairs and all(p.source.strip() and p.target.strip() for p in pairs)
            assert len(pairs) == len(source.decode().split("\n")) - source.decode().endswith("\n")


def png_bytes(shape: tuple[int, ...]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros(shape, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(frames: int, size: tuple[int, int]) -> bytes:
    from PIL import Image

    pictures = [Image.fromarray(np.full(size, 40 * k, np.uint8)) for k in range(frames)]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=100)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


PICTURE_FILES = {  # (reader, name, its good content, the size it reads, the rank it returns)
    "image.png": ("read_images", png_bytes((64, 64)), 64, 3),
    "image.npy": ("read_images", npy_bytes(np.zeros((2, 64, 64), np.uint8)), 64, 3),
    "clip.gif": ("read_clips", gif_bytes(3, (32, 32)), 32, 4),
    "clip.npy": ("read_clips", npy_bytes(np.zeros((2, 4, 32, 32), np.uint8)), 32, 4),
}


@FUZZ
@given(
    st.sampled_from(sorted(PICTURE_FILES)).flatmap(
        lambda name: st.tuples(st.just(name), corrupted(PICTURE_FILES[name][1]))
    )
)
def test_image_and_clip_readers_accept_or_explain(case):
    """PNG and animated GIF (Pillow) and .npy images to caption and clips to label: (N, [T,] Y, X) uint8 of the
    size asked for, or one line naming the file."""
    from rnnkit.data import images as readers

    name, content = case
    reader, _, size, rank = PICTURE_FILES[name]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            pictures = getattr(readers, reader)(path, size)
        except RnnkitError as error:
            assert_one_line_error(error, path)
        else:
            assert (
                pictures.dtype == torch.uint8 and pictures.dim() == rank and tuple(pictures.shape[-2:]) == (size, size)
            )
