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
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.config import option
from rnnkit.data.conllu import TaggedSentence, read_conllu
from rnnkit.data.datasets import tiny_tagged
from rnnkit.data.splits import scored_files, split_files
from rnnkit.data.tagged import IGNORE, TagBuckets, char_vocab, collate, encode_sentence, spelled
from rnnkit.data.vocab import PAD, UNK, TokenVocab
from rnnkit.diagnostics import Diagnosis, windows
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.metrics import classification_metrics, confusion_matrix, metrics_table
from rnnkit.models.core import CoreConfig
from rnnkit.models.tagger import Tagger
from rnnkit.plots import confusion_png
from rnnkit.tasks.base import Task, evaluation_batches, summed_cross_entropy
from rnnkit.trained import Trained


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
class EvaluateConfig:
    beam_width: int = option(
        1, "conditioned tagger: 1 decodes greedily, more keeps that many hypotheses", at_least=1, at_most=1000
    )


@dataclass(frozen=True)
class PredictConfig(EvaluateConfig):
    batch_size: int = option(64, "sentences tagged together", at_least=1)  # what the model runs at once


@dataclass
class TaggerData:
    vocabularies: dict  # {"words", "chars", "tags"}
    train: list[TaggedSentence]
    val: list[TaggedSentence]
    source: str


@dataclass(frozen=True)
class Tagged:
    """One sentence tagged: its words, a tag per word, and the model's probability of each tag it chose (for
    the conditioned tagger, given the tags it chose before)."""

    words: list[str]
    tags: list[str]
    probabilities: list[float]


def generated(count: int, seed: int) -> list[TaggedSentence]:
    return [
        TaggedSentence(words, tags, ["_"] * len(tags), f"generated:{i + 1}")
        for i, (words, tags) in enumerate(tiny_tagged(count, seed))
    ]


def tags_of(sentence: TaggedSentence, column: str) -> list[str]:
    return sentence.upos if column == "upos" else sentence.xpos


def check_tags(sentences: list[TaggedSentence], tags: list[str], column: str) -> None:
    known = set(tags)
    for sentence in sentences:
        for k, (word, tag) in enumerate(zip(sentence.words, tags_of(sentence, column))):
            if tag not in known:
                raise RnnkitError(
                    f"{sentence.word_where(k)}: {column.upper()} tag {tag!r} (of {word!r}) "
                    f"is not one of the {len(tags)} tags trained on"
                )


def encode(sentences: list[TaggedSentence], vocabularies: dict, config, train: bool, what: str) -> TagBuckets:
    data = config.data
    encoded = [encode_sentence(s.words, tags_of(s, data.column), vocabularies, data.lowercase) for s in sentences]
    batch_size, padding = config.train.batch_size if train else 64, vocabularies["words"].index[PAD]
    batches = TagBuckets(encoded, batch_size, train, config.train.seed, padding, vocabularies["chars"].index[PAD], what)
    batches.tags = list(vocabularies["tags"].symbols)
    return batches


def most_confused(metrics: dict, count: int = 10) -> list[int]:
    """The `count` tags with the most errors, made or suffered, in the tags' order."""
    confusion = torch.tensor(metrics["confusion"])  # (K, K)
    errors = confusion.sum(0) + confusion.sum(1) - 2 * confusion.diagonal()  # (K,)
    return sorted(errors.argsort(descending=True, stable=True)[:count].tolist())


def words_of(sentence, argument: str) -> list[str]:
    """A sentence given from Python (a string split on spaces, or a list of words) as its words, checked."""
    if not isinstance(sentence, (str, list, tuple)):
        raise ArgumentTypeError(argument, f"expected a string or a list of words, got {type(sentence).__name__}")
    words = sentence.split() if isinstance(sentence, str) else list(sentence)
    for k, word in enumerate(words):
        if not isinstance(word, str):
            raise ArgumentTypeError(f"{argument}[{k}]", f"expected a word (a string), got {type(word).__name__}")
        if word.split() != [word]:
            raise ArgumentError(f"{argument}[{k}]", f"a word is one or more characters and no space, got {word!r}")
    if not words:
        raise ArgumentError(argument, "has no words; there is nothing to tag")
    return words


class TrainedTagger(Trained):
    """A tagger from Python: tag sentences."""

    def tag(self, sentences, **settings) -> Tagged | list[Tagged]:
        """The tags of one sentence (a string, split on spaces) or of a list of sentences (each a string or a
        list of words); `beam_width` > 1 decodes the conditioned tagger with a beam, `batch_size` sentences at
        a time.

        >>> rnnkit.load("runs/pos").tag("The old man the boat .").tags
        ['DET', 'NOUN', 'VERB', 'DET', 'NOUN', 'PUNCT']
        """
        single = isinstance(sentences, str)  # a list is of sentences: one sentence's words go as [words]
        if not single and not isinstance(sentences, (list, tuple)):
            what = type(sentences).__name__
            raise ArgumentTypeError("sentences", f"expected a sentence (a string) or a list of sentences, got {what}")
        if not single and not sentences:
            raise ArgumentError("sentences", "expected a sentence (a string) or a list of sentences, got an empty list")
        given = [sentences] if single else sentences
        words = [words_of(s, "sentences" if single else f"sentences[{k}]") for k, s in enumerate(given)]
        results = list(self.task.predict(self.model, self.vocabularies, words, self.settings(settings)))
        return results[0] if single else results


class PartOfSpeech(Task):
    """Tags each word of a sentence with its part of speech."""

    name = "tagger"
    description = "part-of-speech tagger, plain or conditioned on the previous tag (CoNLL-U): train, eval, tag"
    verb = "tag"
    unit, per = "words", "word"
    Model, Data, Predict, Evaluate = ModelConfig, DataConfig, PredictConfig, EvaluateConfig
    vocabulary_kinds = {"words": TokenVocab, "chars": TokenVocab, "tags": TokenVocab}
    trained = TrainedTagger
    headline = "accuracy"
    draws_figures = True
    reads_text = True  # rnnkit diagnose reads windows of a text's words, each a sentence to tag

    def load_data(self, config, tiny: bool = False) -> TaggerData:
        data = config.data
        if tiny or not data.path:
            train, val, source = generated(1000, 0), generated(200, 1), "generated tiny sentences"
        elif Path(data.path).is_dir():
            files = split_files(Path(data.path))
            train, val, source = read_conllu(files["train"]), read_conllu(files["dev"]), data.path
        else:
            sentences = read_conllu(data.path)
            generator = torch.Generator().manual_seed(0)  # a fixed split, whatever the seed
            order = torch.randperm(len(sentences), generator=generator).tolist()
            cut = max(1, int(len(sentences) * data.val_fraction))
            train, val, source = [sentences[i] for i in order[cut:]], [sentences[i] for i in order[:cut]], data.path
            if not train:
                raise RnnkitError(
                    f"{data.path}: {len(sentences)} sentence(s) leave nothing to train on "
                    "after holding out --data.val_fraction"
                )
        tags = sorted({t for s in train for t in tags_of(s, data.column)})
        if len(tags) < 2:
            raise RnnkitError(
                f"{source}: the training data has {len(tags)} {data.column.upper()} tag(s) ({', '.join(tags)}); "
                "a tagger needs at least 2"
            )
        check_tags(val, tags, data.column)
        counts = Counter(w.lower() if data.lowercase else w for s in train for w in s.words)
        vocabularies = {
            "words": TokenVocab.from_counts(counts, [PAD, UNK], data.min_count, data.max_vocab),
            "chars": char_vocab(w for s in train for w in s.words),
            "tags": TokenVocab(tags),
        }
        return TaggerData(vocabularies, train, val, source)

    def build_model(self, config, vocabularies: dict) -> Tagger:
        words, chars = vocabularies["words"], vocabularies["chars"]
        model = Tagger(
            len(vocabularies["tags"]),
            config.model,
            len(words),
            len(chars),
            words.index[PAD],
            chars.index[PAD],
            words.unk_id,
            config.data.lowercase,
        )
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def batches(self, config, data: TaggerData) -> tuple[TagBuckets, TagBuckets]:
        return (
            encode(data.train, data.vocabularies, config, True, f"{data.source} (training part)"),
            encode(data.val, data.vocabularies, config, False, f"{data.source} (validation part)"),
        )

    def loss(self, model: Tagger, batch) -> tuple[Tensor, int]:
        """The summed per-word cost −Σ_t log μ_{t,y_t} over the valid words, divided by their count (per word)."""
        logits = model(batch.words, batch.lengths, batch.chars, batch.char_lengths, batch.tags)  # (B, T, K)
        count = int(batch.lengths.sum())
        return summed_cross_entropy(logits, batch.tags) / count, count

    def evaluate(
        self, model: Tagger, batches: TagBuckets, device="cpu", settings: EvaluateConfig | None = None
    ) -> dict:
        """Loss per word (teacher-forced), and of the decoded tags: accuracy per word, per sentence, on words
        outside the training vocabulary, per-tag precision/recall/F1 and the confusion matrix."""
        beam_width = (settings or EvaluateConfig()).beam_width
        total, words, truth, guessed, unseen, sentences_right, sentences = 0.0, 0, [], [], [], 0, 0
        for batch in evaluation_batches(model, batches, device):
            encoded = model.encode(batch.words, batch.lengths, batch.chars, batch.char_lengths)  # (B, T, H): once
            logits = model.read(encoded, batch.lengths, batch.tags)  # (B, T, K): teacher-forced, for the loss
            total += float(summed_cross_entropy(logits, batch.tags))
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

    def describe(self, metrics: dict) -> str:
        unseen = (
            f", unseen words {metrics['unseen_accuracy']:.2%} ({metrics['unseen_words']:,})"
            if metrics.get("unseen_accuracy") is not None
            else ""
        )
        return (
            f"loss {metrics['loss']:.4f} nats/{self.per}, accuracy {metrics['accuracy']:.2%}{unseen}, sentences "
            f"{metrics['sentence_accuracy']:.2%}, macro F1 {metrics['macro_f1']:.3f} ({metrics['examples']:,} words)"
        )

    def details(self, metrics: dict) -> str:
        return metrics_table(metrics)

    def figures(self, metrics: dict) -> dict[str, bytes]:
        """confusion.png of the most confused tags."""
        chosen, names = most_confused(metrics), list(metrics["per_class"])
        confusion = [[metrics["confusion"][i][j] for j in chosen] for i in chosen]
        title = f"accuracy {metrics['accuracy']:.2%} (the {len(chosen)} most confused tags)"
        return {"confusion.png": confusion_png(confusion, [names[i] for i in chosen], title)}

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """A CoNLL-U file, or a directory's dev and test files."""
        splits = {}
        for file in scored_files(path).values():
            sentences = read_conllu(file)
            check_tags(sentences, list(vocabularies["tags"].symbols), config.data.column)
            splits[file] = encode(sentences, vocabularies, config, False, file)
        return splits

    def predict(
        self, model: Tagger, vocabularies: dict, inputs: list[list[str]], settings: PredictConfig
    ) -> Iterator[Tagged]:
        """Each sentence of `inputs` (its words, at least one) tagged, settings.batch_size sentences at a time;
        the words are looked up as training read them (model.lowercase)."""
        padding = vocabularies["words"].index[PAD], vocabularies["chars"].index[PAD]
        chunks = [inputs[k : k + settings.batch_size] for k in range(0, len(inputs), settings.batch_size)]
        batches = [
            collate([encode_sentence(words, None, vocabularies, model.lowercase) for words in chunk], *padding)
            for chunk in chunks
        ]
        device = next(model.parameters()).device
        for chunk, batch in zip(chunks, evaluation_batches(model, batches, device)):
            encoded = model.encode(batch.words, batch.lengths, batch.chars, batch.char_lengths)  # (B, T, H)
            tags = model.decode_encoded(encoded, batch.lengths, settings.beam_width)  # (B, T)
            # μ of each chosen tag, the conditioned tagger reading its own previous choices as y_{t-1}
            chosen = model.read(encoded, batch.lengths, tags).softmax(-1).gather(-1, tags[..., None])[..., 0]  # (B, T)
            tags, chosen = tags.cpu(), chosen.cpu()
            for b, words in enumerate(chunk):
                n, symbols = len(words), vocabularies["tags"].symbols
                yield Tagged(list(words), [symbols[k] for k in tags[b, :n].tolist()], chosen[b, :n].tolist())

    def encode_text(self, vocabularies: dict, text: str, what: str = "text") -> Tensor:
        """The text's words (split on whitespace): (N, 1 + L), each word's id, looked up as written (<unk> outside the
        vocabulary), then its letters."""
        words = text.split()
        return torch.cat([vocabularies["words"].encode(words)[:, None], spelled(words, vocabularies["chars"])], dim=1)

    def text_diagnosis(
        self, model: Tagger, vocabularies: dict, config, text: str, seq_len: int, what: str = "text"
    ) -> Diagnosis:
        """Windows of seq_len of the text's words, each tagged as one sentence; the loss is the per-word loss at the
        last word, against the tag the model gives it (a conditioned tagger reading its own tags as y_{t-1})."""
        ids = self.encode_text(vocabularies, text, what)  # (N, 1 + L)
        if model.lowercase:  # the words looked up as training read them, their letters as written
            ids[:, 0] = self.encode_text(vocabularies, text.lower(), what)[:, 0]
        rows = windows(ids, seq_len, what, "words")  # (B, T, 1 + L)
        words, chars = rows[..., 0], rows[..., 1:]  # (B, T), (B, T, L)
        char_lengths = (chars != vocabularies["chars"].index[PAD]).sum(-1)  # (B, T)
        lengths = torch.full((len(rows),), seq_len)  # (B,): every window is whole
        with torch.no_grad(), evaluating(model):
            tags = model.decode_encoded(model.encode(words, lengths, chars, char_lengths), lengths)  # (B, T)

        def loss() -> Tensor:
            logits = model(words, lengths, chars, char_lengths, tags)  # (B, T, K)
            return F.cross_entropy(logits[:, -1], tags[:, -1])  # the per-word loss at the last word

        return Diagnosis(model, model.core, loss, "the last word's tag")

    def preview(self, model: Tagger, data: TaggerData, config, length: int, seed: int) -> str:
        """Two validation sentences as the model tags them, a * after each wrong tag."""
        sentences = data.val[:2]
        guesses = self.predict(model, data.vocabularies, [s.words for s in sentences], PredictConfig())
        return "\n".join(
            " ".join(
                f"{w}/{g}{'' if g == t else '*'}"
                for w, g, t in zip(s.words, tagged.tags, tags_of(s, config.data.column))
            )[:160]
            for s, tagged in zip(sentences, guesses)
        )


task = PartOfSpeech()
