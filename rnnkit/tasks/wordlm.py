"""The word-level language model: Penn Treebank, WikiText-2 or any whitespace-tokenised corpus.

    rnnkit wordlm train --data ../data/ptb --preset ptb-cpu --out runs/ptb
    rnnkit wordlm eval runs/ptb/best.pt --data ../data/ptb         # perplexity on valid and test
    rnnkit wordlm sample runs/ptb/best.pt --prime "the company" --length 50

Each line becomes its words and one <eos> (Mikolov's PTB setup, as pytorch/examples reads it); a word
outside the vocabulary is <unk>. --data names a directory holding train, valid and test files (*train*,
*valid*, *test*, .txt or .txt.gz), or one file whose last val_fraction of lines is validation. The
vocabulary comes from the training part: specials first, then words by count (ties sorted).
"""

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnkit.config import option
from rnnkit.data import splits
from rnnkit.data.datasets import tiny_text
from rnnkit.data.text import read_text
from rnnkit.data.vocab import EOS, UNK, TokenVocab
from rnnkit.errors import ArgumentError, RnnkitError
from rnnkit.evaluate import perplexity
from rnnkit.models.core import CoreConfig
from rnnkit.models.word_lm import WordLM
from rnnkit.regularization import activation_regularization, temporal_activation_regularization
from rnnkit.tasks import lm
from rnnkit.tasks.lm import LanguageModel, LMData

SPECIALS = (EOS, UNK)


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    embedding_size: int = option(400, "size of the word embedding (and of the tied softmax)", at_least=1)
    tie_weights: bool = option(True, "the decoder's weight is the embedding table (Press & Wolf 2016)")
    tie_mode: str = option(
        "exact",
        "when tied: exact (hidden_size must equal embedding_size), last_layer (the last layer has "
        "embedding_size units, AWD-LSTM) or projection (a linear map to embedding_size before the decoder)",
        choices=("exact", "last_layer", "projection"),
    )
    embedding_dropout: float = option(
        0.0, "drop whole words: rows of the embedding table (AWD-LSTM's dropoute)", at_least=0, below=1
    )
    input_dropout: float = option(
        0.0, "dropout on the embeddings entering the first layer (dropouti)", at_least=0, below=1
    )
    output_dropout: float = option(0.0, "dropout on the last layer's outputs before the decoder", at_least=0, below=1)
    activation_regularization: float = option(
        0.0, "α of AR: α·mean(h²) of the dropped-out last-layer outputs", at_least=0
    )
    temporal_activation_regularization: float = option(
        0.0, "β of TAR: β·mean((h_t − h_{t−1})²) of the raw last-layer outputs", at_least=0
    )


@dataclass(frozen=True)
class DataConfig:
    path: str = option(
        "",
        "a directory with train, valid and test files (ptb.train.txt.gz, valid.txt, wiki.test.tokens), "
        "or one text file (empty: built-in Shakespeare words)",
    )
    val_fraction: float = option(
        0.1, "for a single file: the last fraction of its lines held out for validation", above=0, below=1
    )
    min_count: int = option(1, "words seen fewer times in training become <unk>", at_least=1)
    max_size: int = option(0, "keep at most this many words besides the specials (0: all)", at_least=0)


@dataclass(frozen=True)
class SampleConfig(lm.SampleConfig):
    length: int = option(100, "words to generate", at_least=0)


def words(text: str) -> list[str]:
    """Each line's words, then <eos> (every line, blank ones too, as pytorch/examples reads PTB and WikiText;
    a final newline ends the last line and starts none)."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [word for line in lines for word in (*line.split(), EOS)]


SUFFIXES = (".txt", ".txt.gz", ".tokens", ".tokens.gz")


def split_files(directory: Path, need_train: bool = True) -> dict[str, Path]:
    """{"train": ..., "valid": ..., "test": ...} in a corpus directory (rnnkit/data/splits.py finds them by
    name); test may be absent, and train too for eval."""
    found = splits.split_files(directory, ("train", "dev") if need_train else ("dev",), SUFFIXES)
    return {"valid" if split == "dev" else split: file for split, file in found.items()}


def split_lines(text: str, val_fraction: float, what: str) -> dict[str, list[str]]:
    """One text: its first lines train, its last val_fraction of lines validate."""
    lines = text.removesuffix("\n").split("\n")
    cut = int(len(lines) * (1 - val_fraction))
    if cut == 0 or cut == len(lines):
        raise RnnkitError(
            f"{what}: {len(lines)} line(s) cannot be split into training and validation lines "
            f"(--data.val_fraction={val_fraction}); give more lines, or a directory with train and valid files"
        )
    return {"train": words("\n".join(lines[:cut])), "valid": words("\n".join(lines[cut:]))}


def read_splits(config: DataConfig, tiny: bool) -> tuple[dict[str, list[str]], str]:
    if tiny or not config.path:
        return split_lines(tiny_text(), config.val_fraction, "built-in text"), "built-in Shakespeare words"
    path = Path(config.path)
    if path.is_dir():
        return {split: words(read_text(file)) for split, file in split_files(path).items()}, str(path)
    return split_lines(read_text(path), config.val_fraction, str(path)), str(path)


def show(vocab: TokenVocab, ids: list[int], previous: int | None) -> str:
    """Words with spaces between them, <eos> as a line break."""
    pieces = []
    for i in ids:
        token = vocab.symbols[i]
        if token == EOS:
            pieces.append("" if previous is None else "\n")  # the <eos> the prime starts from writes nothing
        else:
            pieces.append(("" if previous is None or vocab.symbols[previous] == EOS else " ") + token)
        previous = i
    return "".join(pieces)


class WordModel(LanguageModel):
    """Predicts the next word of a corpus (each line ends in <eos>); samples one word at a time."""

    name = "wordlm"
    description = "word-level language model (PTB, WikiText-2, any corpus): train, sample, eval"
    per = "word"
    stream_unit = "words"
    Model, Data, Predict = ModelConfig, DataConfig, SampleConfig
    vocabulary_kinds = {"text": TokenVocab}

    def load_data(self, config, tiny: bool = False, progress=None) -> LMData:
        splits, source = read_splits(config.data, tiny)
        counts = Counter(splits["train"])
        vocab = TokenVocab.from_counts(counts, SPECIALS, config.data.min_count, config.data.max_size)
        if len(vocab) == len(SPECIALS):
            raise RnnkitError(
                f"{source}: every word appears fewer than --data.min_count={config.data.min_count} times in training"
            )
        return LMData({"text": vocab}, vocab.encode(splits["train"]), vocab.encode(splits["valid"]), source)

    def build_model(self, config, vocabularies: dict) -> WordLM:
        model = WordLM(len(vocabularies["text"]), config.model)
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def loss(self, model: WordLM, batch, state):
        """Cross-entropy of the next word, plus AR and TAR on the last layer's outputs (training only); the
        cross-entropy alone is what training reports."""
        logits, state, raw, dropped = model(batch.inputs, state, activations=True)  # (B, T, V), ..., (B, T, H) twice
        cross_entropy = lm.next_token_loss(logits, batch.targets)
        config = getattr(model, "module", model).config  # under DDP the model is wrapped
        objective = cross_entropy
        if model.training and config.activation_regularization:
            objective = objective + activation_regularization(dropped, config.activation_regularization)
        if model.training and config.temporal_activation_regularization:
            objective = objective + temporal_activation_regularization(raw, config.temporal_activation_regularization)
        return objective, state, batch.targets.numel(), cross_entropy  # the records show nats per word, no penalties

    def describe(self, metrics: dict) -> str:
        return (
            f"loss {metrics['loss']:.4f} nats/word, perplexity {metrics['perplexity']:.2f} "
            f"({metrics['tokens']:,} words)"
        )

    def summary(self, loss_value: float) -> str:
        return f"{loss_value:.4f} nats/word (perplexity {perplexity(loss_value):.2f})"

    def eval_data(self, path: str, vocabularies: dict, config=None) -> dict:
        """A corpus directory: its valid and test files; a file: that file.

        Every word counts (<unk> for unseen ones).
        """
        vocab, where = vocabularies["text"], Path(path)
        files = (
            {split: file for split, file in split_files(where, need_train=False).items() if split != "train"}
            if where.is_dir()
            else {"file": where}
        )
        return {
            f"{split} ({file})": lm.whole_text(vocab.encode(words(read_text(file))), str(file), "words")
            for split, file in files.items()
        }

    def encode_text(self, vocabularies: dict, text: str, what: str = "text") -> torch.Tensor:
        return vocabularies["text"].encode(words(text), what=what)  # (N,)

    def default_prime(self, vocabularies: dict) -> str:
        return ""  # the start of a line

    def prime_ids(self, vocabularies: dict, prime: str) -> torch.Tensor:
        """<eos> (the start of a line), then the prime's words; a prime of unknown words only is an error."""
        vocab, words_given = vocabularies["text"], prime.split()
        if words_given and all(word not in vocab.index for word in words_given):
            shown = ", ".join(map(repr, words_given[:5]))
            raise ArgumentError("prime", f"none of its words is in the model's vocabulary ({shown})")
        return vocab.encode([EOS, *words_given], what="prime")  # (P,): start as a new line would

    def context_ids(self, vocabularies: dict, prime: str) -> torch.Tensor:
        """`next` predicts after at least one word (a line's first word: after the prime <eos>)."""
        if not prime.split():
            raise ArgumentError("prime", "is empty; give the words before the one to predict (a line's first: <eos>)")
        return self.prime_ids(vocabularies, prime)  # (P,)

    def candidate_id(self, vocabularies: dict, token: str) -> int:
        """A word asked about by `next`: one in the vocabulary (the probability of <unk> is every unknown word's)."""
        vocab = vocabularies["text"]
        if token not in vocab.index:
            raise ArgumentError(
                "words",
                f"{token!r} is not among the model's {len(vocab):,} words: it would be read as <unk>, whose "
                "probability is that of every word outside the vocabulary together (ask for <unk> to see it)",
            )
        return vocab.index[token]

    def unknown_words(self, vocabularies: dict, text: str) -> list[str]:
        """The words of `text` outside the vocabulary: read as <unk>."""
        return [word for word in text.split() if word not in vocabularies["text"].index]

    def scored_ids(self, vocabularies: dict, text: str) -> torch.Tensor:
        """<eos> (the start of a line) as context, then each line's words and its <eos>, every one scored; a word
        outside the vocabulary is read and scored as <unk>."""
        return vocabularies["text"].encode([EOS, *words(text)], what="text to score")  # (N,)

    def show(self, vocabularies: dict, ids: list[int], previous: int | None) -> str:
        return show(vocabularies["text"], ids, previous)


task = WordModel()
