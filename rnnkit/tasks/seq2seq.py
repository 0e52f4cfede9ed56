"""Translation (the notes' many-to-many with different lengths): an encoder reads the source, a decoder with
attention writes the target token by token until its end token.

    rnnkit seq2seq train --data ../data/multi30k/raw --preset multi30k-cpu --out runs/de-en
    rnnkit seq2seq eval runs/de-en/best.pt --data ../data/multi30k/raw --beam_width 5      # BLEU, chrF (sacrebleu)
    echo "Ein Hund läuft über die Wiese." | rnnkit translate runs/de-en/best.pt            # A dog runs across the grass.
    rnnkit translate runs/de-en/best.pt --input sentences.de --attention-png runs/de-en/attention

--data is a directory of parallel files named by split and language (train.de.gz and train.en.gz, val.de.gz
and val.en.gz, test_2016_flickr.de, ...; --data.source and --data.target name the languages). Sentences are
split into byte-pair pieces learned on the training sentences (sentencepiece) or into words
(--data.tokens=words, for text already tokenised); outputs are joined back (detokenised) before BLEU.
Training pairs longer than --data.max_length tokens on either side are left out (the data's description says
how many); translation reads sentences of any length and writes at most max_ratio · |x| + 10 tokens.
"""

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence

from rnnkit import config as settings_module
from rnnkit.cells import CELLS
from rnnkit.config import TrainConfig, option
from rnnkit.data.datasets import tiny_parallel
from rnnkit.data.parallel import IGNORE, EncodedPair, Pair, ParallelBuckets, read_parallel
from rnnkit.data.splits import split_files
from rnnkit.data.subword import Subwords, Words
from rnnkit.data.text import Progress, check_input, input_batches
from rnnkit.data.vocab import END, PAD, START, UNK, TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.files import atomic_write, staged_output
from rnnkit.metrics import bleu_scores
from rnnkit.models.attention import ATTENTION
from rnnkit.models.core import CoreConfig
from rnnkit.models.seq2seq import BRIDGES, Seq2Seq
from rnnkit.recurrent import map_state

name = "seq2seq"
description = (
    "translation: an encoder-decoder with attention, beam search, BLEU (parallel text files): train, eval, translate"
)
unit, per = "tokens", "token"
predict_verb = "translate"
headline, headline_format = "bleu", ".2f"  # BLEU is 0-100, not a fraction


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    hidden_size: int = option(256, "encoder: hidden units per direction and layer", at_least=1)
    num_layers: int = option(1, "encoder: stacked recurrent layers (at most 1000)", at_least=1, at_most=1000)
    dropout: float = option(
        0.3, "dropout on the embeddings, between layers and before the output layer", at_least=0, below=1
    )
    embedding_size: int = option(256, "size of the source and target token embeddings", at_least=1)
    bidirectional: bool = option(True, "the encoder reads each source sentence both ways")
    decoder_cell: str = option("", "the decoder's cell (empty: the encoder's --model.cell)", choices=("", *CELLS))
    decoder_size: int = option(
        0, "decoder: hidden units per layer (0: the encoder's output size, both directions)", at_least=0
    )
    decoder_layers: int = option(
        0, "decoder: stacked layers (0: as many as the encoder; at most 1000)", at_least=0, at_most=1000
    )
    attention: str = option(
        "additive", "score over the source: additive (Bahdanau), dot or general (Luong), or none", choices=ATTENTION
    )
    attention_size: int = option(0, "additive attention: size of its hidden layer (0: the decoder's size)", at_least=0)
    input_feeding: bool = option(
        True, "feed each step's attentional vector into the next step's input (Luong et al. 2015)"
    )
    bridge: str = option(
        "linear",
        "the decoder's first state from the encoder's last: linear (tanh of a learned map), copy (same "
        "sizes, one direction) or zeros",
        choices=BRIDGES,
    )
    teacher_forcing: float = option(
        1.0,
        "training: the share of steps that read the gold previous token (the rest read the model's own)",
        at_least=0,
        at_most=1,
    )
    decoder_path: str = option(
        "eager", "the decoder's step with attention: eager, or compiled by torch.compile", choices=("eager", "compiled")
    )
    label_smoothing: float = option(
        0.0, "training: cross-entropy against (1 − ε) gold + ε uniform (validation loss is plain)", at_least=0, below=1
    )


@dataclass(frozen=True)
class DataConfig:
    path: str = option(
        "",
        "a directory of parallel files: train.SRC and train.TGT (.gz read as it is), a val/dev pair "
        "(empty: generated tiny sentence pairs)",
    )
    source: str = option("de", "the source language's file suffix (train.de)")
    target: str = option("en", "the target language's file suffix (train.en)")
    tokens: str = option(
        "bpe",
        "bpe (byte-pair pieces learned on the training sentences) or words (split on spaces)",
        choices=("bpe", "words"),
    )
    bpe_size: int = option(
        8000, "bpe: pieces per language (fewer when the sentences hold fewer)", at_least=20, at_most=1_000_000
    )
    min_count: int = option(1, "tokens seen fewer times in training become <unk>", at_least=1)
    max_length: int = option(100, "training pairs with more tokens than this on either side are left out", at_least=1)


@dataclass(frozen=True)
class RunConfig:
    """Everything a translation run needs; its sections are what `--section.key=value` addresses."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()


@dataclass(frozen=True)
class EvaluateConfig:
    beam_width: int = option(5, "hypotheses kept per sentence (1: greedy)", at_least=1, at_most=1000)
    alpha: float = option(
        0.6,
        "beam search: rank by score / ((5 + |y|) / 6)^alpha, GNMT's length normalisation (0: raw score)",
        at_least=0,
        at_most=10,
    )
    max_ratio: float = option(1.5, "write at most max_ratio · (source tokens) + 10 tokens", above=0, at_most=100)


@dataclass(frozen=True)
class PredictConfig(EvaluateConfig):
    input: str = option("-", "file of source sentences, one per line ('-': standard input, read as it comes)")
    text: str = option("", "one sentence to translate instead of --input")
    batch_size: int = option(64, "sentences translated together", at_least=1)
    attention_png: str = option(
        "", "also draw each sentence's attention weights as DIR/sentence-N.png (DIR must hold none yet)"
    )


Config, Predict, Evaluate = RunConfig, PredictConfig, EvaluateConfig

PRESETS: dict[str, dict[str, Any]] = {
    # a minute on CPU, on generated pairs: for tests and --dry-run
    "tiny": {
        "model.embedding_size": 24,
        "model.hidden_size": 32,
        "model.dropout": 0.0,
        "data.tokens": "words",
        "train.batch_size": 32,
        "train.max_steps": 150,
        "train.eval_interval": 50,
        "train.learning_rate": 1e-2,
        "train.weight_decay": 0.0,
    },
    # Multi30k de→en on 2 CPU cores, an hour
    "multi30k-cpu": {
        "model.embedding_size": 256,
        "model.hidden_size": 256,
        "model.cell": "lstm",
        "model.decoder_size": 256,
        "data.bpe_size": 8000,
        "train.batch_size": 64,
        "train.max_steps": 100000,
        "train.max_minutes": 60.0,
        "train.lr_schedule": "budget",
        "train.eval_interval": 1000,
        "train.learning_rate": 2e-3,
        "model.label_smoothing": 0.1,
    },
    # the same model larger, for a GPU
    "multi30k-gpu": {
        "model.embedding_size": 512,
        "model.hidden_size": 512,
        "model.cell": "lstm",
        "model.decoder_layers": 2,
        "data.bpe_size": 8000,
        "train.batch_size": 128,
        "train.max_steps": 20000,
        "train.eval_interval": 1000,
        "train.learning_rate": 1e-3,
        "model.label_smoothing": 0.1,
        "train.device": "cuda",
    },
}


def build_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    return settings_module.build_config(RunConfig, PRESETS, preset, overrides)


@dataclass
class ParallelData:
    vocabularies: dict  # {"source", "target"}: TokenVocab; {"source_tokens", "target_tokens"}: Words or Subwords
    train: list[Pair]
    val: list[Pair]
    source: str


def generated(count: int, seed: int) -> list[Pair]:
    return [Pair(s, t, f"generated:{i + 1}") for i, (s, t) in enumerate(tiny_parallel(count, seed))]


def language_files(directory: Path, language: str, needed: tuple[str, ...]) -> dict[str, Path]:
    return split_files(directory, needed, suffixes=(f".{language}", f".{language}.gz"))


def split_pairs(directory: str, data: DataConfig, needed: tuple[str, ...] = ("train", "dev")) -> dict[str, list[Pair]]:
    """{split: pairs} for every split with files in both languages."""
    if not Path(directory).is_dir():
        raise RnnkitError(
            f"--data: {directory}: expected a directory of parallel files (train.{data.source}, train.{data.target}, ...)"
        )
    sources, targets = (
        language_files(Path(directory), data.source, needed),
        language_files(Path(directory), data.target, needed),
    )
    return {split: read_parallel(sources[split], targets[split]) for split in sources if split in targets}


def load_data(config: RunConfig, tiny: bool = False, progress: Progress | None = None) -> ParallelData:
    data = config.data
    if tiny or not data.path:
        train, val, source = generated(2000, 0), generated(200, 1), "generated tiny sentence pairs"
    else:
        splits = split_pairs(data.path, data)
        train, val, source = splits["train"], splits["dev"], data.path
    tokenizers = {}
    for side in ("source", "target"):
        sentences = [getattr(p, side) for p in train]
        tokenizers[side] = Words() if data.tokens == "words" else Subwords.learn(sentences, data.bpe_size)
    vocabularies = {f"{side}_tokens": tokenizer for side, tokenizer in tokenizers.items()}
    for side, tokenizer in tokenizers.items():
        counts = Counter(token for p in train for token in tokenizer.split(getattr(p, side)))
        vocabularies[side] = TokenVocab.from_counts(counts, [PAD, UNK, START, END], data.min_count)
    return ParallelData(vocabularies, train, val, source)


def encode_pair(pair: Pair, vocabularies: dict) -> EncodedPair:
    source = vocabularies["source"].encode(vocabularies["source_tokens"].split(pair.source))  # (S,)
    target_vocab = vocabularies["target"]
    target = target_vocab.encode([START, *vocabularies["target_tokens"].split(pair.target), END])  # (T + 1,)
    return EncodedPair(source, target)


def encode(pairs: list[Pair], vocabularies: dict, config: RunConfig, train: bool, what: str) -> ParallelBuckets:
    encoded = [encode_pair(p, vocabularies) for p in pairs]
    if train:  # documented: overlong training pairs are left out, never truncated into a wrong translation
        limit = config.data.max_length
        kept = [k for k, e in enumerate(encoded) if len(e.source) <= limit and len(e.target) - 2 <= limit]
        if len(kept) < len(encoded):
            what = f"{what}, {len(encoded) - len(kept):,} pairs longer than --data.max_length={limit} tokens left out"
        encoded, pairs = [encoded[k] for k in kept], [pairs[k] for k in kept]
    batches = ParallelBuckets(
        encoded,
        [p.target for p in pairs],
        config.train.batch_size if train else 64,
        train,
        config.train.seed,
        vocabularies["source"].index[PAD],
        what,
    )
    batches.vocabularies = vocabularies  # evaluation detokenises the translations with them
    return batches


def batches(config: RunConfig, data: ParallelData) -> tuple[ParallelBuckets, ParallelBuckets]:
    return (
        encode(data.train, data.vocabularies, config, True, f"{data.source} (training part)"),
        encode(data.val, data.vocabularies, config, False, f"{data.source} (validation part)"),
    )


def build_model(config: RunConfig, vocabularies: dict) -> Seq2Seq:
    target = vocabularies["target"]
    model = Seq2Seq(
        config.model,
        len(vocabularies["source"]),
        len(target),
        target.index[PAD],
        target.index[START],
        target.index[END],
    )
    model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
    return model


def loss(model, batch, state) -> tuple[torch.Tensor, None, int]:
    """−Σ_t log p(y_t | y_<t, x) over the valid target tokens (the end token included), per token."""
    config = getattr(model, "module", model).config  # the model itself, or inside torch's DistributedDataParallel
    logits, _ = model(batch.source, batch.source_lengths, batch.target_in, config.teacher_forcing)  # (B, T, V)
    count = int((batch.target_out != IGNORE).sum())
    total = F.cross_entropy(
        logits.flatten(0, 1),
        batch.target_out.flatten(),
        ignore_index=IGNORE,
        reduction="sum",
        label_smoothing=config.label_smoothing if model.training else 0.0,
    )
    return total / count, None, count


def detokenised(ids: list[int], vocabularies: dict) -> str:
    return vocabularies["target_tokens"].join(vocabularies["target"].decode(ids))


@torch.no_grad()
def evaluate(
    model, batches: ParallelBuckets, device="cpu", max_tokens: int = 0, settings: EvaluateConfig | None = None
) -> dict:
    """Loss per target token (teacher-forced) and perplexity; BLEU and chrF of the decoded translations
    (greedy during training, where `settings` is None; eval's --beam_width otherwise)."""
    settings = settings or EvaluateConfig(beam_width=1)
    vocabularies = batches.vocabularies
    total, tokens, hypotheses = 0.0, 0, {}
    with evaluating(model):
        for k in range(len(batches)):
            batch = map_state(lambda field: field.to(device), batches[k])
            memory, state = model.encode(batch.source, batch.source_lengths)  # once, for both
            logits, _ = model.read(memory, state, batch.target_in)  # (B, T, V): teacher-forced, for the loss
            total += float(
                F.cross_entropy(logits.flatten(0, 1), batch.target_out.flatten(), ignore_index=IGNORE, reduction="sum")
            )
            tokens += int((batch.target_out != IGNORE).sum())
            outputs = model.translate_encoded(
                memory, state, batch.source_lengths, settings.beam_width, settings.max_ratio, alpha=settings.alpha
            )
            hypotheses.update({int(i): detokenised(ids, vocabularies) for i, ids in zip(batch.index.tolist(), outputs)})
    ordered = [hypotheses[i] for i in range(len(hypotheses))]
    references = batches.references
    exact = sum(h == r for h, r in zip(ordered, references)) / len(references)
    return {
        "loss": total / tokens,
        "perplexity": math.exp(min(total / tokens, 50.0)),
        **bleu_scores(ordered, references),
        "exact_match": exact,
        "examples": tokens,
        "sentences": len(references),
        "beam_width": settings.beam_width,
    }


def describe(metrics: dict, per: str = per) -> str:
    how = "greedy" if metrics["beam_width"] == 1 else f"beam {metrics['beam_width']}"
    return (
        f"loss {metrics['loss']:.4f} nats/{per} (perplexity {metrics['perplexity']:.2f}), BLEU {metrics['bleu']:.2f}, "
        f"chrF {metrics['chrf']:.2f}, exact {metrics['exact_match']:.1%} ({metrics['sentences']:,} sentences, {how})"
    )


def details(metrics: dict) -> str:
    return f"sacrebleu {metrics['bleu_signature']} on detokenised output"


def summary(loss_value: float, per: str = per) -> str:
    return f"{loss_value:.4f} nats/{per}"


def eval_data(path: str, vocabularies: dict, config: RunConfig | None = None) -> dict:
    """A directory's parallel dev/val and test files, each pair scored."""
    config = config or RunConfig()
    splits = split_pairs(path, config.data, needed=())
    scored = {split: pairs for split, pairs in splits.items() if split != "train"}
    if not scored:
        raise RnnkitError(
            f"{path}: no val, dev or test pair of .{config.data.source} and .{config.data.target} files to evaluate on"
        )
    return {
        pairs[0].where.rsplit(":", 1)[0]: encode(pairs, vocabularies, config, False, split)
        for split, pairs in scored.items()
    }


def source_ids(sentence: str, vocabularies: dict, where: str) -> torch.Tensor:
    """One source sentence's ids; a sentence of nothing but unknown tokens is an error naming its line."""
    tokens = vocabularies["source_tokens"].split(sentence)
    if not tokens:
        raise RnnkitError(f"{where}: an empty line (one source sentence per line; there is nothing to translate)")
    ids = vocabularies["source"].encode(tokens)  # (S,)
    if bool((ids == vocabularies["source"].unk_id).all()):
        raise RnnkitError(
            f"{where}: every token of the sentence is unknown to the model ({' '.join(tokens)[:80]!r}); is it in the source language?"
        )
    return ids


def translate_sentences(
    model,
    vocabularies: dict,
    sentences: list[str],
    settings: EvaluateConfig | None = None,
    wheres: list[str] | None = None,
) -> tuple[list[str], list[list[int]], list[torch.Tensor]]:
    """(translations, their target ids, source ids) of each sentence, from Python."""
    settings = settings or EvaluateConfig()
    wheres = wheres or [f"sentence {k + 1}" for k in range(len(sentences))]
    encoded = [source_ids(s, vocabularies, w) for s, w in zip(sentences, wheres)]
    device = next(model.parameters()).device
    source = pad_sequence(encoded, batch_first=True, padding_value=vocabularies["source"].index[PAD])  # (B, S)
    with evaluating(model):
        outputs = model.translate(
            source.to(device),
            torch.tensor([len(ids) for ids in encoded]),
            settings.beam_width,
            settings.max_ratio,
            alpha=settings.alpha,
        )
    return [detokenised(ids, vocabularies) for ids in outputs], outputs, encoded


@torch.no_grad()
def attention_weights(model, vocabularies: dict, source: torch.Tensor, output: list[int]) -> torch.Tensor:
    """The weights (T, S) of the decoder reading its own translation back (the end token last): what it attended to
    while writing each token."""
    target = vocabularies["target"]
    target_in = torch.tensor([[target.index[START], *output]])  # (1, T)
    device = next(model.parameters()).device
    with evaluating(model):
        _, weights = model(source[None].to(device), torch.tensor([len(source)]), target_in.to(device))  # (1, T, S)
    return weights[0].cpu()


def predict(model, vocabularies: dict, settings: PredictConfig, config: RunConfig | None = None) -> Iterator[str]:
    """One translation per input line, written batch by batch as the input comes."""
    check_input(settings.input, settings.text)
    if model.attention is None and settings.attention_png:
        raise RnnkitError("--attention-png: this model has no attention (--model.attention=none) to draw")
    with staged_output(
        settings.attention_png, "sentence-*.png", "--attention-png"
    ) as out:  # no pictures left behind by a failure
        done = 0
        for batch in input_batches(settings.input, settings.text, settings.batch_size):
            translations, outputs, sources = translate_sentences(
                model, vocabularies, [s for s, _ in batch], settings, [w for _, w in batch]
            )
            for k, translation in enumerate(translations):
                if out is not None:
                    from rnnkit.plots import attention_png

                    source_tokens = vocabularies["source"].decode(sources[k].tolist())
                    target_tokens = [*vocabularies["target"].decode(outputs[k]), END]
                    picture = attention_png(
                        attention_weights(model, vocabularies, sources[k], outputs[k]),
                        source_tokens,
                        target_tokens,
                        translation[:80],
                    )
                    atomic_write(out / f"sentence-{done + k + 1}.png", lambda handle, data=picture: handle.write(data))
                yield translation + "\n"
            done += len(batch)


def dry_run(settings: PredictConfig) -> PredictConfig:
    """--dry-run with no input given translates one generated sentence instead of waiting for stdin."""
    return settings if settings.text or settings.input != "-" else replace(settings, text=tiny_parallel(1)[0][0])


def preview(model, data: ParallelData, config: RunConfig, length: int, seed: int) -> str:
    """Two validation sentences and their greedy translations."""
    sentences = data.val[:2]
    translations, _, _ = translate_sentences(
        model, data.vocabularies, [p.source for p in sentences], EvaluateConfig(beam_width=1)
    )
    return "\n".join(f"{p.source[:70]} -> {t[:80]}" for p, t in zip(sentences, translations))
