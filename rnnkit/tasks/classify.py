"""Sequence classification (the notes' many-to-one): read a whole text, predict one label from h_l.

    rnnkit classify train --data ../data/sst2 --preset sst2 --out runs/sst2
    rnnkit classify eval runs/sst2/best.pt --data ../data/sst2/dev.tsv --out runs/sst2/eval   # + confusion.png
    echo "a gorgeous , witty film" | rnnkit classify predict runs/sst2/best.pt              # label<TAB>probability

--data names a table (.tsv as GLUE's SST-2, .csv; --data.text_column, --data.label_column, --data.header),
a treebank of bracketed trees (the Stanford Sentiment Treebank: --data.labels=sst2|sst3|sst5 maps its
0-4 labels, --data.phrases=true adds every labelled phrase to training), or a directory holding
train and dev (or valid) files of either kind. One file alone is split: a seeded val_fraction of its
rows is validation. Words are split on whitespace; those outside the vocabulary become <unk>.

`Classifier` holds what every many-to-one task shares (the loss of either head, the metrics, their table and
confusion picture, `Label` results); `TextClassifier` is this task, sequential MNIST (seqmnist.py) another.
"""

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import option
from rnnkit.data.datasets import tiny_sentiment
from rnnkit.data.labelled import SCHEMES, TABLE_SCHEMES, Example, looks_like_trees, read_table, read_trees
from rnnkit.data.padded import LengthBuckets, pad_batch
from rnnkit.data.splits import scored_files, split_files
from rnnkit.data.tagged import char_vocab, spelled
from rnnkit.data.text import decoded_blocks
from rnnkit.data.vocab import PAD, UNK, TokenVocab
from rnnkit.diagnostics import Diagnosis, windows
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.metrics import classification_metrics, confusion_matrix, metrics_table
from rnnkit.models.classifier import SequenceClassifier
from rnnkit.models.core import CoreConfig
from rnnkit.plots import confusion_png
from rnnkit.readout import READOUTS
from rnnkit.tasks.base import Task, evaluation_batches
from rnnkit.trained import Trained, one_or_many


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    embedding_size: int = option(128, "size of the word embeddings", at_least=1)
    bidirectional: bool = option(
        True,
        "read each text both ways; the readout joins the forward direction's last step and the backward one's first",
    )
    readout: str = option(
        "last", "what the head reads: last (h_l, the notes'), mean or max over the valid steps", choices=READOUTS
    )
    input_dropout: float = option(0.3, "dropout on the word embeddings", at_least=0, below=1)
    word_dropout: float = option(
        0.0,
        "in training, the share of words (input steps) read as nothing, so no single word decides (Iyyer et al. 2015)",
        at_least=0,
        below=1,
    )
    char_hidden_size: int = option(
        0,
        "hidden units per direction of a character BiLSTM over each word, joined to its embedding, "
        "so words unseen in training are read by their spelling (0: none)",
        at_least=0,
    )
    char_embedding_size: int = option(
        32, "size of the character embeddings (with --model.char_hidden_size)", at_least=1
    )
    unk_dropout: float = option(
        0.0,
        "in training, the share of words read as <unk> (with characters, their letters still read), "
        "so the model learns to read unseen words",
        at_least=0,
        below=1,
    )
    output_dropout: float = option(0.3, "dropout on h_l before the head", at_least=0, below=1)


@dataclass(frozen=True)
class DataConfig:
    path: str = option(
        "",
        "a .tsv/.csv table, a treebank file, or a directory with train and dev files (empty: generated tiny sentiment)",
    )
    text_column: str = option("sentence", "tables: the text's column, by header name or 0-based number")
    label_column: str = option("label", "tables: the label's column, by header name or 0-based number")
    header: bool = option(True, "tables: the first line names the columns")
    labels: str = option(
        "",
        "label scheme: empty (labels as written), sst2, sst3 or sst5 (the treebank's 0-4 mapped; see the task's help)",
        choices=("", "sst2", "sst3", "sst5"),
    )
    phrases: bool = option(False, "treebanks: train on every labelled phrase too, not only whole sentences")
    unique_phrases: bool = option(
        False, "treebanks with phrases: each labelled text once, not once per tree that holds it (SST: 157k, not 319k)"
    )
    lowercase: bool = option(True, "lowercase the words")
    val_fraction: float = option(
        0.1, "one file alone: the seeded fraction of its rows held out for validation", above=0, below=1
    )
    min_count: int = option(1, "words seen fewer times in training become <unk>", at_least=1)
    max_vocab: int = option(0, "keep at most this many words, the most frequent (0: all)", at_least=0)


@dataclass(frozen=True)
class Label:
    """One input's class: the most likely label, and every class's probability by label, in the classes' order
    (they sum to 1); `probability` is the chosen label's."""

    label: str
    probabilities: dict[str, float]

    @property
    def probability(self) -> float:
        return self.probabilities[self.label]


@dataclass
class ClassifyData:
    vocabularies: dict  # {"text": words, "labels": classes[, "chars": letters]}
    train: list[Example]
    val: list[Example]
    source: str


def read_examples(path: str, data: DataConfig, training: bool = False) -> list[Example]:
    """A table or a treebank file, by its content; phrases only where they are training data."""
    if path.removesuffix(".gz").endswith((".tsv", ".csv")) or not looks_like_trees(path):
        return read_table(path, data.text_column, data.label_column, data.header, data.lowercase, data.labels)
    return read_trees(path, data.labels or "sst5", data.phrases and training, data.lowercase, data.unique_phrases)


def has_labels(path: str, data: DataConfig) -> bool:
    """Does a table's header name the label column (GLUE's test.tsv has none)? Trees always have labels."""
    if not path.removesuffix(".gz").endswith((".tsv", ".csv")) or not data.header or data.label_column.isdecimal():
        return True
    first = next(decoded_blocks(Path(path)), "").lstrip("\ufeff").split("\n", 1)[0]
    return data.label_column in [name.strip() for name in first.split("\t" if ".tsv" in path else ",")]


def class_names(labels: Iterable[str], scheme: str) -> list[str]:
    """The classes in a fixed order: the scheme's, or sorted as written."""
    present = set(labels)
    if scheme:
        ordered = list(dict.fromkeys({**SCHEMES[scheme], **TABLE_SCHEMES.get(scheme, {})}.values()))
        return [label for label in ordered if label in present]
    return sorted(present)


def check_labels(examples: list[Example], labels: list[str]) -> None:
    known = set(labels)
    for example in examples:
        if example.label not in known:
            raise RnnkitError(
                f"{example.where}: label {example.label!r} is not one of the classes trained on ({', '.join(labels)})"
            )


def text_ids(words: list[str], vocabularies: dict) -> Tensor:
    """One text's input: word ids (T,), or with a character vocabulary (T, 1 + MAX_CHARS), each word's id then its
    letters."""
    ids = vocabularies["text"].encode(words)  # (T,): unknown words -> <unk>
    return torch.cat([ids[:, None], spelled(words, vocabularies["chars"])], dim=1) if "chars" in vocabularies else ids


def words_of(text: str, data: DataConfig) -> list[str]:
    """A text's words as training read its texts: split on whitespace, lowercased with data.lowercase."""
    return (text.lower() if data.lowercase else text).split()


def encode(
    examples: list[Example], vocabularies: dict, train: bool, batch_size: int, seed: int = 0, what: str = "data"
) -> LengthBuckets:
    sequences = [text_ids(e.words, vocabularies) for e in examples]  # each (T_n,) or (T_n, 1 + L)
    labels = torch.tensor([vocabularies["labels"].index[e.label] for e in examples])  # (N,)
    batches = LengthBuckets(
        sequences, labels, batch_size, train, seed, vocabularies["text"].index[PAD], what, "sentences"
    )
    batches.classes = list(vocabularies["labels"].symbols)
    return batches


def class_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """(B,) logits of σ(vᵀh_l) or (B, K) of a softmax, against (B,) class ids: the mean cross-entropy."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    return F.cross_entropy(logits, labels)


def probabilities(logits: Tensor) -> Tensor:
    """Either head's logits -> class probabilities (B, K)."""
    if logits.dim() == 1:
        positive = torch.sigmoid(logits)  # (B,): μ = σ(vᵀh_l)
        return torch.stack([1 - positive, positive], dim=-1)  # (B, 2)
    return torch.softmax(logits, dim=-1)  # (B, K)


def labelled(model: nn.Module, inputs: Tensor, lengths: Tensor | None, vocabularies: dict) -> list[Label]:
    """One Label per row of `inputs` (lengths: each row's valid steps, None: all), classified together."""
    with torch.no_grad(), evaluating(model):
        device = next(model.parameters()).device
        chances = probabilities(model(inputs.to(device), lengths)).cpu()  # (B, K)
    classes = vocabularies["labels"].symbols
    return [Label(classes[k], dict(zip(classes, row))) for k, row in zip(chances.argmax(-1).tolist(), chances.tolist())]


class Classifier(Task):
    """A many-to-one task: one label per sequence from h_l, scored by accuracy, macro F1 and a confusion matrix.
    Its batches are LabelledBatch records (inputs, lengths, labels) that know their `classes`."""

    headline = "accuracy"  # shown with the best validation loss when training ends
    draws_figures = True

    def loss(self, model: nn.Module, batch) -> tuple[Tensor, int]:
        """Each sequence from the zero state (no state carried), one loss per sequence; count: sequences."""
        logits = model(batch.inputs, batch.lengths)  # (B,) or (B, K)
        return class_loss(logits, batch.labels), len(batch.labels)

    def evaluate(self, model: nn.Module, batches, device="cpu") -> dict:
        """Loss per sequence, accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix."""
        total, truth, predicted = 0.0, [], []
        for batch in evaluation_batches(model, batches, device):
            logits = model(batch.inputs, batch.lengths)  # (B,) or (B, K)
            total += float(class_loss(logits, batch.labels)) * len(batch.labels)
            truth.append(batch.labels.cpu())
            predicted.append(probabilities(logits).argmax(-1).cpu())  # (B,)
        truth, predicted = torch.cat(truth), torch.cat(predicted)  # (N,)
        metrics = classification_metrics(confusion_matrix(truth, predicted, len(batches.classes)), batches.classes)
        return {"loss": total / len(truth), **metrics, "examples": len(truth)}

    def describe(self, metrics: dict) -> str:
        count, plural = metrics["examples"], "s" * (metrics["examples"] != 1)
        return f"{super().describe(metrics)}, macro F1 {metrics['macro_f1']:.3f} ({count:,} {self.per}{plural})"

    def details(self, metrics: dict) -> str:
        return metrics_table(metrics)

    def figures(self, metrics: dict) -> dict[str, bytes]:
        title = f"accuracy {metrics['accuracy']:.2%}"
        return {"confusion.png": confusion_png(metrics["confusion"], list(metrics["per_class"]), title)}


class TrainedTextClassifier(Trained):
    """A text classifier from Python: label texts."""

    def classify(self, texts: str | list[str], **settings) -> Label | list[Label]:
        """The label of `texts` (one text, or a list of them, classified together), with every class's probability.

        >>> rnnkit.load("runs/sst2").classify("a gorgeous , witty film")
        Label(label='positive', probabilities={'negative': 0.031, 'positive': 0.969})
        >>> [label.label for label in trained.classify(["dull", "a joy"])]
        ['negative', 'positive']
        """
        items, single = one_or_many(texts, "texts", str, "a text")
        words = [words_of(text, self.config.data) for text in items]
        results = list(self.task.predict(self.model, self.vocabularies, words, self.settings(settings)))
        return results[0] if single else results


class TextClassifier(Classifier):
    """Labels a whole text: sentiment, or any labelled text."""

    name = "classify"
    description = "sequence classifier (sentiment, any labelled text): train, eval, predict"
    unit, per = "sentences", "sentence"
    Model, Data = ModelConfig, DataConfig
    vocabulary_kinds = {"text": TokenVocab, "labels": TokenVocab, "chars": TokenVocab}
    optional_vocabularies = frozenset({"chars"})  # with --model.char_hidden_size
    trained = TrainedTextClassifier
    reads_text = True  # rnnkit diagnose reads windows of a text's words, each a text to classify

    def load_data(self, config, tiny: bool = False) -> ClassifyData:
        data = config.data
        if tiny or not data.path:
            make = lambda pairs: [Example(t.split(), label, f"generated:{i + 1}") for i, (t, label) in enumerate(pairs)]
            train, val = make(tiny_sentiment(2000, seed=0)), make(tiny_sentiment(300, seed=1))
            source = "generated tiny sentiment"
        elif Path(data.path).is_dir():
            files = split_files(Path(data.path))
            train, val = read_examples(str(files["train"]), data, training=True), read_examples(str(files["dev"]), data)
            source = data.path
        else:
            examples = read_examples(data.path, data, training=True)
            generator = torch.Generator().manual_seed(0)
            order = torch.randperm(len(examples), generator=generator).tolist()  # a fixed split, whatever the seed
            cut = max(1, int(len(examples) * data.val_fraction))
            train, val, source = [examples[i] for i in order[cut:]], [examples[i] for i in order[:cut]], data.path
            if not train:
                raise RnnkitError(
                    f"{data.path}: {len(examples)} row(s) leave nothing to train on after holding out "
                    "--data.val_fraction"
                )
        labels = class_names((e.label for e in train), data.labels)
        if len(labels) < 2:
            raise RnnkitError(
                f"{source}: the training data has {len(labels)} label(s) ({', '.join(labels)}); "
                "a classifier needs at least 2"
            )
        check_labels(val, labels)
        words = TokenVocab.from_counts(
            Counter(w for e in train for w in e.words), [PAD, UNK], data.min_count, data.max_vocab
        )
        vocabularies = {"text": words, "labels": TokenVocab(labels)}
        if config.model.char_hidden_size:
            vocabularies["chars"] = char_vocab(w for e in train for w in e.words)  # <pad> 0, as the words'
        return ClassifyData(vocabularies, train, val, source)

    def build_model(self, config, vocabularies: dict) -> SequenceClassifier:
        model = SequenceClassifier(
            len(vocabularies["labels"]),
            config.model,
            vocab_size=len(vocabularies["text"]),
            padding_id=vocabularies["text"].index[PAD],
            num_chars=len(vocabularies.get("chars", ())),
            unk_id=vocabularies["text"].unk_id,
        )
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def batches(self, config, data: ClassifyData) -> tuple[LengthBuckets, LengthBuckets]:
        size, seed = config.train.batch_size, config.train.seed
        train = encode(data.train, data.vocabularies, True, size, seed, f"{data.source} (training part)")
        return train, encode(data.val, data.vocabularies, False, size, what=f"{data.source} (validation part)")

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """A file, or a directory's dev and test files, read as training read its data."""
        splits = {}
        for split, file in scored_files(path).items():
            if split == "test" and not has_labels(file, config.data):
                continue  # GLUE's test files come without labels
            examples = read_examples(file, config.data)
            check_labels(examples, list(vocabularies["labels"].symbols))
            splits[file] = encode(examples, vocabularies, False, 64, what=file)
        return splits

    def predict(self, model: nn.Module, vocabularies: dict, inputs: list[list[str]], settings) -> Iterator[Label]:
        """The Label of each text of `inputs`, classified together; each text is its words, read as training read
        its texts (words_of). `settings` are the task's Predict (it has none)."""
        for k, words in enumerate(inputs):
            where = "texts" if len(inputs) == 1 else f"texts[{k}]"
            if isinstance(words, str):  # its characters would be read as words, each <unk>
                raise ArgumentTypeError(where, "expected a text's words (words_of(text, config.data)), got str")
            if not words:
                raise ArgumentError(where, "an empty text: there is nothing to classify")
        sequences = [text_ids(words, vocabularies) for words in inputs]  # each (T_k,) or (T_k, 1 + L)
        batch = pad_batch(sequences, torch.zeros(len(sequences)), vocabularies["text"].index[PAD])
        yield from labelled(model, batch.inputs, batch.lengths, vocabularies)

    def encode_text(self, vocabularies: dict, text: str, what: str = "text") -> Tensor:
        """The text's words (split on whitespace), each looked up as written, <unk> outside the vocabulary: (N,), or
        with a character vocabulary (N, 1 + L), each word's id then its letters."""
        return text_ids(text.split(), vocabularies)

    def text_diagnosis(
        self, model: nn.Module, vocabularies: dict, config, text: str, seq_len: int, what: str = "text"
    ) -> Diagnosis:
        """Windows of seq_len of the text's words (lowercased where training read its texts so), each classified as
        one text; the loss is the class loss against the label the model gives each window (a text comes with no
        label), read from h at the last word, or from the mean or max over the words (config.model.readout)."""
        ids = self.encode_text(vocabularies, text.lower() if config.data.lowercase else text, what)  # (N[, 1 + L])
        inputs = windows(ids, seq_len, what, "words")  # (B, T) or (B, T, 1 + L)
        with torch.no_grad(), evaluating(model):
            labels = probabilities(model(inputs)).argmax(-1)  # (B,)
        readout = config.model.readout
        read = "h at the last word" if readout == "last" else f"the {readout} of h_t over the words"
        return Diagnosis(model, model.core, lambda: class_loss(model(inputs), labels), f"the label read from {read}")

    def preview(self, model: nn.Module, data: ClassifyData, config, length: int, seed: int) -> str:
        """Three validation texts with the label the model gives them and the true one."""
        examples = data.val[:3]
        guesses = self.predict(model, data.vocabularies, [e.words for e in examples], self.Predict())
        return "\n".join(
            f"{guess.label} ({guess.probability:.2f}; true {e.label}): {' '.join(e.words)[:80]}"
            for guess, e in zip(guesses, examples)
        )


task = TextClassifier()
