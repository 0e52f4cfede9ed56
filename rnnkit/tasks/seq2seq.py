"""Translation (the notes' many-to-many with different lengths): an encoder reads the source, a decoder with
attention writes the target token by token until its end token.

    rnnkit seq2seq train --data ../data/multi30k/raw --preset multi30k-cpu --out runs/de-en
    rnnkit seq2seq eval runs/de-en/best.pt --data ../data/multi30k/raw --beam_width 5      # BLEU, chrF (sacrebleu)
    echo "Ein Hund läuft über die Wiese." | rnnkit translate runs/de-en/best.pt           # A dog runs across the grass.
    rnnkit translate runs/de-en/best.pt --input sentences.de --attention-png runs/de-en/attention
    rnnkit.load("runs/de-en").translate("Ein Hund läuft über die Wiese.").text         # the same, from Python

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
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence

from rnnkit.cells import CELLS
from rnnkit.config import option
from rnnkit.data.datasets import tiny_parallel
from rnnkit.data.parallel import IGNORE, EncodedPair, Pair, ParallelBuckets, read_parallel
from rnnkit.data.splits import split_files
from rnnkit.data.subword import Subwords, Words
from rnnkit.data.vocab import END, PAD, START, UNK, TokenVocab
from rnnkit.errors import ArgumentError, RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.metrics import bleu_scores
from rnnkit.models.attention import ATTENTION
from rnnkit.models.core import CoreConfig
from rnnkit.models.seq2seq import BRIDGES, Seq2Seq
from rnnkit.tasks.base import Task, evaluation_batches, search_name, summed_cross_entropy
from rnnkit.trained import Trained, one_or_many


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
class EvaluateConfig:
    """How translations are decoded, by eval, translate and Trained.translate."""

    beam_width: int = option(5, "hypotheses kept per sentence (1: greedy)", at_least=1, at_most=1000)
    alpha: float = option(
        0.6,
        "beam search: rank by score / ((5 + |y|) / 6)^alpha, GNMT's length normalisation (0: raw score)",
        at_least=0,
        at_most=10,
    )
    max_ratio: float = option(1.5, "write at most max_ratio · (source tokens) + 10 tokens", above=0, at_most=100)


BATCH_SIZE = 64  # sentences Trained.translate decodes together


@dataclass
class ParallelData:
    vocabularies: dict  # {"source", "target"}: TokenVocab; {"source_tokens", "target_tokens"}: Words or Subwords
    train: list[Pair]
    val: list[Pair]
    source: str


@dataclass(frozen=True)
class Translation:
    """One sentence translated: its text as written (detokenised), the target tokens it is made of (words, or
    byte-pair pieces as the vocabulary spells them), and where the model looked while writing them: `attention`
    (len(tokens) + 1, S), row t the weights over the S source tokens while writing token t (each row sums to 1;
    the last row while writing the end token), or None for a model without attention (--model.attention=none)."""

    text: str
    tokens: list[str]
    attention: torch.Tensor | None


def generated(count: int, seed: int) -> list[Pair]:
    return [Pair(s, t, f"generated:{i + 1}") for i, (s, t) in enumerate(tiny_parallel(count, seed))]


def language_files(directory: Path, language: str, needed: tuple[str, ...]) -> dict[str, Path]:
    return split_files(directory, needed, suffixes=(f".{language}", f".{language}.gz"))


def split_pairs(directory: str, data: DataConfig, needed: tuple[str, ...] = ("train", "dev")) -> dict[str, list[Pair]]:
    """{split: pairs} for every split with files in both languages."""
    if not Path(directory).is_dir():
        raise RnnkitError(
            f"{directory}: not a directory; translation data is a directory of parallel files "
            f"(train.{data.source}, train.{data.target}, ...)"
        )
    sources, targets = (
        language_files(Path(directory), data.source, needed),
        language_files(Path(directory), data.target, needed),
    )
    return {split: read_parallel(sources[split], targets[split]) for split in sources if split in targets}


def encode_pair(pair: Pair, vocabularies: dict) -> EncodedPair:
    source = vocabularies["source"].encode(vocabularies["source_tokens"].split(pair.source))  # (S,)
    target_vocab = vocabularies["target"]
    target = target_vocab.encode([START, *vocabularies["target_tokens"].split(pair.target), END])  # (T + 1,)
    return EncodedPair(source, target)


def encode(pairs: list[Pair], vocabularies: dict, config, train: bool, what: str) -> ParallelBuckets:
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


def detokenised(ids: list[int], vocabularies: dict) -> str:
    return vocabularies["target_tokens"].join(vocabularies["target"].decode(ids))


def source_ids(vocabularies: dict, sentence: str, argument: str = "sentence") -> torch.Tensor:
    """One source sentence's ids (S,); an empty sentence, or one of nothing but unknown tokens, is an
    ArgumentError naming `argument`."""
    tokens = vocabularies["source_tokens"].split(sentence)
    if not tokens:
        raise ArgumentError(argument, "an empty line (there is nothing to translate)")
    ids = vocabularies["source"].encode(tokens)  # (S,)
    if bool((ids == vocabularies["source"].unk_id).all()):
        raise ArgumentError(
            argument,
            f"every token of the sentence is unknown to the model ({' '.join(tokens)[:80]!r}); "
            "is it in the source language?",
        )
    return ids


class TrainedTranslator(Trained):
    """A translation model from Python: translate sentences."""

    def translate(self, sentences: str | list[str], **settings) -> Translation | list[Translation]:
        """Translate one sentence or a list, by beam search of `beam_width` hypotheses (1: greedy) ranked with
        GNMT's length normalisation `alpha`, writing at most `max_ratio` · (source tokens) + 10 tokens.

        >>> rnnkit.load("runs/de-en").translate("Ein Hund läuft über die Wiese.", beam_width=5).text
        'A dog runs across the grass.'
        """
        given, single = one_or_many(sentences, "sentences", str, "a sentence")
        chosen = self.settings(settings)
        for k, sentence in enumerate(given):  # every sentence checked before any is translated
            source_ids(self.vocabularies, sentence, "sentences" if single else f"sentences[{k}]")
        results = self.predict_in_batches(given, chosen, BATCH_SIZE)
        return results[0] if single else results


class Translator(Task):
    """Translates a sentence into another language: an encoder-decoder with attention, decoded by beam search."""

    name = "seq2seq"
    description = (
        "translation: an encoder-decoder with attention, beam search, BLEU (parallel text files): "
        "train, eval, translate"
    )
    verb = "translate"
    Model, Data, Predict, Evaluate = ModelConfig, DataConfig, EvaluateConfig, EvaluateConfig
    vocabulary_kinds = {
        "source_tokens": (Words, Subwords),
        "target_tokens": (Words, Subwords),
        "source": TokenVocab,
        "target": TokenVocab,
    }
    headline, headline_format = "bleu", ".2f"  # BLEU is 0-100, not a fraction
    trained = TrainedTranslator

    def load_data(self, config, tiny: bool = False) -> ParallelData:
        data = config.data
        if tiny or not data.path:
            train, val, source = generated(2000, 0), generated(200, 1), "generated tiny sentence pairs"
        else:
            splits = split_pairs(data.path, data)
            train, val, source = splits["train"], splits["dev"], data.path
        sentences = {side: [getattr(p, side) for p in train] for side in ("source", "target")}
        vocabularies = {
            f"{side}_tokens": Words() if data.tokens == "words" else Subwords.learn(sentences[side], data.bpe_size)
            for side in sentences
        }
        for side in sentences:
            counts = Counter(token for s in sentences[side] for token in vocabularies[f"{side}_tokens"].split(s))
            vocabularies[side] = TokenVocab.from_counts(counts, [PAD, UNK, START, END], data.min_count)
        return ParallelData(vocabularies, train, val, source)

    def build_model(self, config, vocabularies: dict) -> Seq2Seq:
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

    def batches(self, config, data: ParallelData) -> tuple[ParallelBuckets, ParallelBuckets]:
        return (
            encode(data.train, data.vocabularies, config, True, f"{data.source} (training part)"),
            encode(data.val, data.vocabularies, config, False, f"{data.source} (validation part)"),
        )

    def loss(self, model, batch) -> tuple[torch.Tensor, int]:
        """−Σ_t log p(y_t | y_<t, x) over the valid target tokens (the end token included), per token."""
        config = getattr(model, "module", model).config  # the model itself, or inside torch's DistributedDataParallel
        logits, _ = model(batch.source, batch.source_lengths, batch.target_in, config.teacher_forcing)  # (B, T, V)
        count = int((batch.target_out != IGNORE).sum())
        total = summed_cross_entropy(logits, batch.target_out, config.label_smoothing if model.training else 0.0)
        return total / count, count

    def evaluate(self, model, batches: ParallelBuckets, device="cpu", settings: EvaluateConfig | None = None) -> dict:
        """Loss per target token (teacher-forced) and perplexity; BLEU and chrF of the decoded translations
        (greedy during training, where `settings` is None; eval's --beam_width otherwise)."""
        settings = settings or EvaluateConfig(beam_width=1)
        total, tokens, hypotheses = 0.0, 0, {}
        for batch in evaluation_batches(model, batches, device):
            memory, state = model.encode(batch.source, batch.source_lengths)  # once, for both
            logits, _ = model.read(memory, state, batch.target_in)  # (B, T, V): teacher-forced, for the loss
            total += float(summed_cross_entropy(logits, batch.target_out))
            tokens += int((batch.target_out != IGNORE).sum())
            outputs = model.translate_encoded(
                memory, state, batch.source_lengths, settings.beam_width, settings.max_ratio, alpha=settings.alpha
            )
            for i, ids in zip(batch.index.tolist(), outputs):
                hypotheses[i] = detokenised(ids, batches.vocabularies)
        ordered = [hypotheses[i] for i in range(len(hypotheses))]
        references = batches.references
        return {
            "loss": total / tokens,
            "perplexity": math.exp(min(total / tokens, 50.0)),
            **bleu_scores(ordered, references),
            "exact_match": sum(h == r for h, r in zip(ordered, references)) / len(references),
            "examples": tokens,
            "sentences": len(references),
            "beam_width": settings.beam_width,
        }

    def describe(self, metrics: dict) -> str:
        return (
            f"loss {metrics['loss']:.4f} nats/{self.per} (perplexity {metrics['perplexity']:.2f}), "
            f"BLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f}, exact {metrics['exact_match']:.1%} "
            f"({metrics['sentences']:,} sentences, {search_name(metrics['beam_width'])})"
        )

    def details(self, metrics: dict) -> str:
        return f"sacrebleu {metrics['bleu_signature']} on detokenised output"

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """A directory's parallel dev/val and test files, each pair scored."""
        splits = split_pairs(path, config.data, needed=())
        scored = {split: pairs for split, pairs in splits.items() if split != "train"}
        if not scored:
            raise RnnkitError(
                f"{path}: no val, dev or test pair of .{config.data.source} and .{config.data.target} files "
                "to evaluate on"
            )
        return {
            pairs[0].where.rsplit(":", 1)[0]: encode(pairs, vocabularies, config, False, split)
            for split, pairs in scored.items()
        }

    def predict(
        self, model: Seq2Seq, vocabularies: dict, inputs: list[str], settings: EvaluateConfig
    ) -> Iterator[Translation]:
        """The sentences of `inputs` translated together (one batch: the caller sizes it), in order; each checked
        before any is translated. The attention is the decoder's as it reads its own translation back."""
        encoded = [source_ids(vocabularies, sentence, f"sentences[{k}]") for k, sentence in enumerate(inputs)]
        lengths = torch.tensor([len(ids) for ids in encoded])  # (B,)
        device = next(model.parameters()).device
        source = pad_sequence(encoded, batch_first=True, padding_value=vocabularies["source"].index[PAD])  # (B, S)
        with torch.no_grad(), evaluating(model):
            memory, state = model.encode(source.to(device), lengths)
            outputs = model.translate_encoded(
                memory, state, lengths, settings.beam_width, settings.max_ratio, alpha=settings.alpha
            )
            weights = None
            if model.attention is not None:  # what it attended to while writing each token, the end token last
                written = [torch.tensor([model.start_id, *ids]) for ids in outputs]
                target_in = pad_sequence(written, batch_first=True, padding_value=model.padding_id)  # (B, T + 1)
                _, weights = model.read(memory, state, target_in.to(device))  # (B, T + 1, S)
                weights = weights.cpu()
        for b, ids in enumerate(outputs):
            attention = None if weights is None else weights[b, : len(ids) + 1, : len(encoded[b])]  # (T + 1, S_b)
            yield Translation(detokenised(ids, vocabularies), vocabularies["target"].decode(ids), attention)

    def preview(self, model, data: ParallelData, config, length: int, seed: int) -> str:
        """Two validation sentences and their greedy translations."""
        pairs = data.val[:2]
        greedy = EvaluateConfig(beam_width=1)
        translations = self.predict(model, data.vocabularies, [p.source for p in pairs], greedy)
        return "\n".join(f"{p.source[:70]} -> {t.text[:80]}" for p, t in zip(pairs, translations))


task = Translator()
