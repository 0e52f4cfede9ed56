"""Part-of-speech tagging (the notes' many-to-many, |x| = |y|): one tag per word, plain or conditioned on y_{t-1}.

    rnnkit tagger train --data ../data/ud-english-ewt --preset ewt-cpu --out runs/pos
    rnnkit tagger train --data ../data/ud-english-ewt --preset ewt-cpu --model.conditioned=true --out runs/pos-y
    rnnkit tagger eval runs/pos-y/best.pt --data en_ewt-ud-dev.conllu --beam_width 4 --out runs/pos-y/eval
    echo "The old man the boat ." | rnnkit tagger tag runs/pos/best.pt            # The/DET old/NOUN ...
    rnnkit tagger tag runs/pos/best.pt --input raw.txt --format conllu > tagged.conllu

--data is a CoNLL-U file (one alone is split: a seeded val_fraction of its sentences validate) or a
directory holding train and dev files (UD's en_ewt-ud-train.conllu, ...; .gz read as it is). The loss is
the notes' C_x(θ) = −Σ_t log μ_{t,y_t} over the valid steps, reported per word. --model.conditioned adds
the notes' recurrence h_t = g(W_x e_t + W_y φ_y(y_{t-1}) + W_h h_{t-1}): trained on the gold y_{t-1},
evaluated and tagging on its own, greedily or with a beam (--beam_width).
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit import config as settings_module
from rnnkit.config import TrainConfig, option
from rnnkit.data.conllu import TaggedSentence, read_conllu, to_conllu
from rnnkit.data.datasets import tiny_tagged
from rnnkit.data.splits import scored_files, split_files
from rnnkit.data.tagged import IGNORE, TagBuckets, char_vocab, collate, encode_sentence
from rnnkit.data.text import Progress, check_input, input_batches
from rnnkit.data.vocab import PAD, UNK, TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.metrics import classification_metrics, confusion_matrix, metrics_table
from rnnkit.models.core import CoreConfig
from rnnkit.models.tagger import Tagger
from rnnkit.plots import confusion_png
from rnnkit.recurrent import map_state

name = "tagger"
description = "part-of-speech tagger, plain or conditioned on the previous tag (CoNLL-U): train, eval, tag"
unit, per = "words", "word"
predict_verb = "tag"
headline = "accuracy"


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    hidden_size: int = option(128, "hidden units per direction and layer of the word encoder", at_least=1)
    num_layers: int = option(2, "stacked recurrent layers of the word encoder (at most 1000)", at_least=1, at_most=1000)
    dropout: float = option(0.25, "dropout between the encoder's layers", at_least=0, below=1)
    embedding_size: int = option(100, "size of the word embeddings", at_least=1)
    char_embedding_size: int = option(32, "size of the character embeddings", at_least=1)
    char_hidden_size: int = option(
        64, "hidden units per direction of the character BiLSTM (0: no character encoder)", at_least=0
    )
    bidirectional: bool = option(True, "read each sentence both ways")
    input_dropout: float = option(0.33, "dropout on each word's vector (embedding and characters)", at_least=0, below=1)
    output_dropout: float = option(0.33, "dropout on what the head reads", at_least=0, below=1)
    word_dropout: float = option(
        0.0, "training: the share of words read as <unk>, so the unknown-word vector learns", at_least=0, below=1
    )
    conditioned: bool = option(
        False, "feed the previous tag back in: h_t = g(W_x e_t + W_y φ_y(y_{t-1}) + W_h h_{t-1}) (the notes' tagger)"
    )
    tag_embedding_size: int = option(32, "conditioned: size of φ_y, the previous tag's embedding", at_least=1)
    decoder_size: int = option(128, "conditioned: hidden units of the recurrence over the tags", at_least=1)
    sampling_probability: float = option(
        0.0,
        "conditioned, training: feed the model's own previous tag this often instead of "
        "the gold one (scheduled sampling at a fixed rate)",
        at_least=0,
        at_most=1,
    )


@dataclass(frozen=True)
class DataConfig:
    path: str = option(
        "", "a CoNLL-U file, or a directory with train and dev CoNLL-U files (empty: generated tiny sentences)"
    )
    column: str = option(
        "upos", "which tags to learn: upos (universal) or xpos (the treebank's own)", choices=("upos", "xpos")
    )
    lowercase: bool = option(
        True, "lowercase the words looked up in the embedding (the character encoder sees them as written)"
    )
    val_fraction: float = option(
        0.1, "one file alone: the seeded fraction of its sentences held out for validation", above=0, below=1
    )
    min_count: int = option(1, "words seen fewer times in training become <unk>", at_least=1)
    max_vocab: int = option(0, "keep at most this many words, the most frequent (0: all)", at_least=0)


@dataclass(frozen=True)
class RunConfig:
    """Everything a tagger run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class PredictConfig:
    input: str = option(
        "-", "file of sentences to tag, one per line, words split on spaces ('-': standard input, read as it comes)"
    )
    text: str = option("", "one sentence to tag instead of --input")
    format: str = option(
        "pairs", "pairs (word/TAG ...) or conllu (10 columns, UD's format)", choices=("pairs", "conllu")
    )
    batch_size: int = option(64, "sentences tagged together", at_least=1)
    beam_width: int = option(
        1, "conditioned tagger: 1 decodes greedily, more keeps that many hypotheses", at_least=1, at_most=1000
    )


@dataclass(frozen=True)
class EvaluateConfig:
    beam_width: int = option(
        1, "conditioned tagger: 1 decodes greedily, more keeps that many hypotheses", at_least=1, at_most=1000
    )


Config, Predict, Evaluate = RunConfig, PredictConfig, EvaluateConfig

PRESETS: dict[str, dict[str, Any]] = {
    # seconds on CPU, on generated sentences: for tests and --dry-run
    "tiny": {
        "model.embedding_size": 16,
        "model.char_embedding_size": 8,
        "model.char_hidden_size": 8,
        "model.hidden_size": 16,
        "model.num_layers": 1,
        "model.dropout": 0.0,
        "model.input_dropout": 0.0,
        "model.output_dropout": 0.0,
        "model.tag_embedding_size": 8,
        "model.decoder_size": 16,
        "train.batch_size": 16,
        "train.max_steps": 120,
        "train.eval_interval": 40,
        "train.learning_rate": 1e-2,
        "train.weight_decay": 0.0,
    },
    # UD English EWT on 2 CPU cores: 45 minutes annealed by time, best.pt by dev accuracy
    "ewt-cpu": {
        "train.batch_size": 32,
        "train.max_steps": 100000,
        "train.max_minutes": 45.0,
        "train.lr_schedule": "budget",
        "train.eval_interval": 500,
        "train.learning_rate": 2e-3,
        "train.best_by": "accuracy",
        "model.word_dropout": 0.05,
        "model.char_hidden_size": 100,
    },
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings_module.build_config(RunConfig, PRESETS, preset, overrides)


@dataclass
class TaggerData:
    vocabularies: dict  # {"words", "chars", "tags"}
    train: list[TaggedSentence]
    val: list[TaggedSentence]
    source: str


def generated(count: int, seed: int) -> list[TaggedSentence]:
    return [
        TaggedSentence(words, tags, ["_"] * len(tags), f"generated:{i + 1}")
        for i, (words, tags) in enumerate(tiny_tagged(count, seed))
    ]


def tags_of(sentence: TaggedSentence, column: str) -> list[str]:
    return sentence.upos if column == "upos" else sentence.xpos


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> TaggerData:
    data = config.data
    if tiny or not data.path:
        train, val, source = generated(1000, 0), generated(200, 1), "generated tiny sentences"
    elif Path(data.path).is_dir():
        files = split_files(Path(data.path))
        train, val, source = read_conllu(files["train"]), read_conllu(files["dev"]), data.path
    else:
        sentences = read_conllu(data.path)
        order = torch.randperm(
            len(sentences), generator=torch.Generator().manual_seed(0)
        ).tolist()  # a fixed split, whatever the seed
        cut = max(1, int(len(sentences) * data.val_fraction))
        train, val, source = [sentences[i] for i in order[cut:]], [sentences[i] for i in order[:cut]], data.path
        if not train:
            raise RnnkitError(
                f"{data.path}: {len(sentences)} sentence(s) leave nothing to train on after holding out --data.val_fraction"
            )
    tags = sorted({t for s in train for t in tags_of(s, data.column)})
    if len(tags) < 2:
        raise RnnkitError(
            f"{source}: the training data has {len(tags)} {data.column.upper()} tag(s) ({', '.join(tags)}); a tagger needs at least 2"
        )
    check_tags(val, tags, data.column)
    counts = Counter(w.lower() if data.lowercase else w for s in train for w in s.words)
    vocabularies = {
        "words": TokenVocab.from_counts(counts, [PAD, UNK], data.min_count, data.max_vocab),
        "chars": char_vocab(w for s in train for w in s.words),
        "tags": TokenVocab(tags),
    }
    return TaggerData(vocabularies, train, val, source)


def check_tags(sentences: list[TaggedSentence], tags: list[str], column: str) -> None:
    known = set(tags)
    for sentence in sentences:
        for k, (word, tag) in enumerate(zip(sentence.words, tags_of(sentence, column))):
            if tag not in known:
                raise RnnkitError(
                    f"{sentence.word_where(k)}: {column.upper()} tag {tag!r} (of {word!r}) is not one of the {len(tags)} tags trained on"
                )


def build_model(config: RunConfig, vocabularies: dict) -> Tagger:
    words, chars = vocabularies["words"], vocabularies["chars"]
    model = Tagger(
        len(vocabularies["tags"]),
        config.model,
        len(words),
        len(chars),
        words.index[PAD],
        chars.index[PAD],
        words.unk_id,
    )
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def encode(
    sentences: list[TaggedSentence], vocabularies: dict, config: RunConfig, train: bool, what: str
) -> TagBuckets:
    data = config.data
    encoded = [encode_sentence(s.words, tags_of(s, data.column), vocabularies, data.lowercase) for s in sentences]
    batch_size = config.train.batch_size if train else 64
    batches = TagBuckets(
        encoded,
        batch_size,
        train,
        config.train.seed,
        vocabularies["words"].index[PAD],
        vocabularies["chars"].index[PAD],
        what,
    )
    batches.tags = list(vocabularies["tags"].symbols)
    return batches


def batches(config: RunConfig, data: TaggerData) -> tuple[TagBuckets, TagBuckets]:
    return (
        encode(data.train, data.vocabularies, config, True, f"{data.source} (training part)"),
        encode(data.val, data.vocabularies, config, False, f"{data.source} (validation part)"),
    )


def loss(model, batch, state) -> tuple[torch.Tensor, None, int]:
    """The summed per-word cost −Σ_t log μ_{t,y_t} over the valid words, divided by their count (per word)."""
    logits = model(batch.words, batch.lengths, batch.chars, batch.char_lengths, batch.tags)  # (B, T, K)
    count = int(batch.lengths.sum())
    return (
        F.cross_entropy(logits.flatten(0, 1), batch.tags.flatten(), ignore_index=IGNORE, reduction="sum") / count,
        None,
        count,
    )


@torch.no_grad()
def evaluate(
    model, batches: TagBuckets, device="cpu", max_tokens: int = 0, settings: EvaluateConfig | None = None
) -> dict:
    """Loss per word (teacher-forced), and of the decoded tags: accuracy per word, per sentence, on words
    outside the training vocabulary, per-tag precision/recall/F1 and the confusion matrix."""
    beam_width = (settings or EvaluateConfig()).beam_width
    total, words, truth, guessed, unseen, sentences_right, sentences = 0.0, 0, [], [], [], 0, 0
    with evaluating(model):
        for k in range(len(batches)):
            batch = map_state(lambda field: field.to(device), batches[k])
            encoded = model.encode(
                batch.words, batch.lengths, batch.chars, batch.char_lengths
            )  # (B, T, H): once, for both
            logits = model.read(encoded, batch.lengths, batch.tags)  # (B, T, K): teacher-forced, for the loss
            total += float(
                F.cross_entropy(logits.flatten(0, 1), batch.tags.flatten(), ignore_index=IGNORE, reduction="sum")
            )
            words += int(batch.lengths.sum())
            predicted = model.decode_encoded(encoded, batch.lengths, beam_width)  # (B, T): its own tags
            valid = batch.tags != IGNORE  # (B, T)
            sentences_right += int(((predicted == batch.tags) | ~valid).all(dim=1).sum())
            sentences += len(batch.lengths)
            truth.append(batch.tags[valid].cpu())
            guessed.append(predicted[valid].cpu())
            unseen.append(batch.unseen[valid].cpu())
    truth, guessed, unseen = torch.cat(truth), torch.cat(guessed), torch.cat(unseen)
    metrics = classification_metrics(confusion_matrix(truth, guessed, len(batches.tags)), batches.tags)
    right = truth == guessed
    return {
        "loss": total / words,
        **metrics,
        "sentence_accuracy": sentences_right / sentences,
        "unseen_accuracy": float(right[unseen].double().mean()) if bool(unseen.any()) else None,
        "unseen_words": int(unseen.sum()),
        "examples": words,
        "sentences": sentences,
        "beam_width": beam_width,
    }


def describe(metrics: dict, per: str = per) -> str:
    unseen = (
        f", unseen words {metrics['unseen_accuracy']:.2%} ({metrics['unseen_words']:,})"
        if metrics.get("unseen_accuracy") is not None
        else ""
    )
    return (
        f"loss {metrics['loss']:.4f} nats/{per}, accuracy {metrics['accuracy']:.2%}{unseen}, sentences "
        f"{metrics['sentence_accuracy']:.2%}, macro F1 {metrics['macro_f1']:.3f} ({metrics['examples']:,} words)"
    )


def details(metrics: dict) -> str:
    return metrics_table(metrics)


def most_confused(metrics: dict, count: int = 10) -> list[int]:
    """The `count` tags with the most errors, made or suffered, in the tags' order."""
    confusion = torch.tensor(metrics["confusion"])  # (K, K)
    errors = confusion.sum(0) + confusion.sum(1) - 2 * confusion.diagonal()  # (K,)
    return sorted(errors.argsort(descending=True, stable=True)[:count].tolist())


def figures(metrics: dict) -> dict[str, bytes]:
    """confusion.png of the most confused tags."""
    chosen, names = most_confused(metrics), list(metrics["per_class"])
    confusion = [[metrics["confusion"][i][j] for j in chosen] for i in chosen]
    return {
        "confusion.png": confusion_png(
            confusion,
            [names[i] for i in chosen],
            f"accuracy {metrics['accuracy']:.2%} (the {len(chosen)} most confused tags)",
        )
    }


def summary(loss_value: float, per: str = per) -> str:
    return f"{loss_value:.4f} nats/{per}"


def eval_data(path: str, vocabularies: dict, config: RunConfig | None = None) -> dict:
    """A CoNLL-U file, or a directory's dev and test files."""
    config = config or RunConfig()
    files = scored_files(path)
    splits = {}
    for file in files.values():
        sentences = read_conllu(file)
        check_tags(sentences, list(vocabularies["tags"].symbols), config.data.column)
        splits[file] = encode(sentences, vocabularies, config, False, file)
    return splits


def tag_sentences(
    model, vocabularies: dict, sentences: list[list[str]], config: RunConfig | None = None, beam_width: int = 1
) -> list[list[str]]:
    """The tags of each sentence (lists of words), from Python."""
    lowercase = (config or RunConfig()).data.lowercase
    encoded = [encode_sentence(words, None, vocabularies, lowercase) for words in sentences]
    batch = collate(encoded, vocabularies["words"].index[PAD], vocabularies["chars"].index[PAD])
    with evaluating(model):
        device = next(model.parameters()).device
        batch = map_state(lambda field: field.to(device), batch)
        predicted = model.decode(
            batch.words, batch.lengths, batch.chars, batch.char_lengths, beam_width
        ).cpu()  # (B, T)
    symbols = vocabularies["tags"].symbols
    return [[symbols[k] for k in predicted[b, : len(words)].tolist()] for b, words in enumerate(sentences)]


def predict(model, vocabularies: dict, settings: PredictConfig, config: RunConfig | None = None) -> Iterator[str]:
    """One line of word/TAG pairs per input line (or a CoNLL-U sentence), written batch by batch as the input comes."""
    check_input(settings.input, settings.text)
    done = 0
    for batch in input_batches(settings.input, settings.text, settings.batch_size):
        for line, where in batch:
            if not line.split():
                raise RnnkitError(
                    f"{where}: an empty line (one sentence per line, words split on spaces; there is nothing to tag)"
                )
        sentences = [line.split() for line, _ in batch]
        for k, (words, tags) in enumerate(
            zip(sentences, tag_sentences(model, vocabularies, sentences, config, settings.beam_width))
        ):
            yield (
                to_conllu(words, tags, done + k + 1)
                if settings.format == "conllu"
                else " ".join(f"{w}/{t}" for w, t in zip(words, tags)) + "\n"
            )
        done += len(batch)


def dry_run(settings: PredictConfig) -> PredictConfig:
    """--dry-run with no input given tags one generated sentence instead of waiting for stdin."""
    return (
        settings if settings.text or settings.input != "-" else replace(settings, text=" ".join(tiny_tagged(1)[0][0]))
    )


def preview(model, data: TaggerData, config: RunConfig, length: int, seed: int) -> str:
    """Two validation sentences as the model tags them, a * after each wrong tag."""
    sentences = data.val[:2]
    guesses = tag_sentences(model, data.vocabularies, [s.words for s in sentences], config)
    return "\n".join(
        " ".join(f"{w}/{g}{'' if g == t else '*'}" for w, g, t in zip(s.words, tags, tags_of(s, config.data.column)))[
            :160
        ]
        for s, tags in zip(sentences, guesses)
    )
