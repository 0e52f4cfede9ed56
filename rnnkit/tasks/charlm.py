"""The character-level language model (the notes' many-to-many LM, sampled one character at a time).

    rnnkit charlm train --data input.txt --out runs/mine
    rnnkit charlm sample runs/mine/best.pt --prime "ROMEO:" --length 500 --temperature 0.8
    rnnkit charlm eval runs/mine/best.pt --data held_out.txt

The vocabulary is the text's sorted code points; the last val_fraction of the text is validation
(nanoGPT's split of Tiny Shakespeare, which ships with rnnkit so the tiny preset needs no download).
"""

from dataclasses import dataclass

import torch

from rnnkit.config import option
from rnnkit.data.datasets import tiny_text
from rnnkit.data.text import bundled_text, read_text, split_text
from rnnkit.data.tokens import encode_file
from rnnkit.data.vocab import Vocab, describe_symbols
from rnnkit.errors import ArgumentError, RnnkitError
from rnnkit.evaluate import bits_per_char
from rnnkit.models.char_lm import CharLM
from rnnkit.models.core import CoreConfig
from rnnkit.tasks import lm
from rnnkit.tasks.lm import LanguageModel, LMData


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    embedding_size: int = option(128, "size of the embedding table (one-hot × W is a lookup)", at_least=1)


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "UTF-8 text file to train on, .gz read as it is (empty: the bundled Tiny Shakespeare)")
    val_fraction: float = option(
        0.1, "the last fraction of the text held out for validation (nanoGPT's split)", above=0, below=1
    )
    token_cache: str = option(
        "",
        "directory to encode the text into once and memory-map from "
        "(for corpora larger than RAM; empty: read into memory)",
    )


class CharacterModel(LanguageModel):
    """Predicts the next character of a text; samples one character at a time."""

    name = "charlm"
    description = "character-level language model: train, sample, eval"
    per = "character"
    stream_unit = "characters"
    Model, Data = ModelConfig, DataConfig
    vocabulary_kinds = {"text": Vocab}

    def load_data(self, config, tiny: bool = False, progress=None) -> LMData:
        """Read the text (the file, or the bundled Tiny Shakespeare), build its vocabulary, split by position.

        With data.token_cache, the file is encoded once into a memory-mapped token array instead of being
        read into memory; the split is then two views of the mapped array.
        """
        data = config.data
        if data.token_cache and not tiny:
            if not data.path:
                raise RnnkitError("--data.token_cache needs --data.path FILE (the text to encode)")
            ids, vocab = encode_file(data.path, data.token_cache, progress)  # (N,) memory-mapped
            train_ids, val_ids = split_text(ids, data.val_fraction)  # two views of the mapped array
            return LMData({"text": vocab}, train_ids, val_ids, data.path)
        if tiny:
            text, source = tiny_text(), "built-in tiny text"
        elif data.path:
            text, source = read_text(data.path), data.path
        else:
            text, source = bundled_text("shakespeare"), "bundled Tiny Shakespeare"
        vocab = Vocab.from_text(text)  # from the whole text, so validation has no unseen characters
        train_text, val_text = split_text(text, data.val_fraction)
        return LMData({"text": vocab}, vocab.encode(train_text), vocab.encode(val_text), source)

    def build_model(self, config, vocabularies: dict) -> CharLM:
        model = CharLM(len(vocabularies["text"]), config.model)
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def describe(self, metrics: dict) -> str:
        return (
            f"loss {metrics['loss']:.4f} nats/char, {metrics['bits']:.4f} bits/char, "
            f"perplexity {metrics['perplexity']:.3f} ({metrics['tokens']:,} characters)"
        )

    def summary(self, loss_value: float) -> str:
        return f"{loss_value:.4f} nats/char ({bits_per_char(loss_value):.3f} bits/char)"

    def eval_data(self, path: str, vocabularies: dict, config=None) -> dict:
        text = read_text(path)
        return {path: lm.whole_text(vocabularies["text"].encode(text, what=path), path, "characters")}

    def encode_text(self, vocabularies: dict, text: str, what: str = "text") -> torch.Tensor:
        return vocabularies["text"].encode(text, what=what)  # (N,)

    def default_prime(self, vocabularies: dict) -> str:
        """A line break, as a text starts after one; a text without line breaks (the notes' "hellohello...") starts
        from a space, or failing that from its first character in sorted order."""
        vocab = vocabularies["text"]
        return next((c for c in ("\n", " ") if c in vocab.index), vocab.symbols[0])

    def prime_ids(self, vocabularies: dict, prime: str) -> torch.Tensor:
        """The prime's characters (at least one: the state is warmed up on it)."""
        if not prime:
            raise ArgumentError("prime", "must have at least one character (the state is warmed up on it)")
        return vocabularies["text"].encode(prime, what="prime text")  # (P,)

    def candidate_id(self, vocabularies: dict, token: str) -> int:
        """A character asked about by `next`: one character the model knows."""
        vocab = vocabularies["text"]
        if len(token) != 1:
            raise ArgumentError("words", f"{token!r} is not one character (a character model's tokens are characters)")
        if token not in vocab.index:
            raise ArgumentError(
                "words", f"{describe_symbols(token)} is not among the {len(vocab)} characters the model knows"
            )
        return vocab.index[token]

    def scored_ids(self, vocabularies: dict, text: str) -> torch.Tensor:
        """The text's characters: the first is context, each later one is scored."""
        return vocabularies["text"].encode(text, what="text to score")  # (N,)

    def show(self, vocabularies: dict, ids: list[int], previous: int | None) -> str:
        return vocabularies["text"].decode(ids)


task = CharacterModel()
