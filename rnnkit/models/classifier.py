"""SequenceClassifier: read a whole sequence, predict one label from its last memory (the notes' many-to-one).

    ids (B, T) --embedding--> (B, T, E)  \\
                                          core (any cell, stacked, maybe bidirectional) -> (B, T, H)
    features (B, T, D) --------------->  /
    (with a character encoder, ids (B, T, 1 + L): each word's id, then its letters, read by a BiLSTM
     whose two last memories join the word's embedding, so unseen words are read by their spelling)
        --readout (last valid step, or mean/max over valid steps)--> h_l (B, H) --dropout--> head

The head is the notes' for each case: two classes are one Bernoulli, μ = σ(vᵀh_l), a single logit
per sequence trained with binary cross-entropy; K > 2 classes are a softmax over V h_l (the loss and the
probabilities of either head: rnnkit/tasks/classify.py's class_loss and probabilities).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import Cell
from rnnkit.models.chars import CharEncoder
from rnnkit.models.core import make_core
from rnnkit.readout import readout
from rnnkit.regularization import unknown_dropout, word_dropout


class SequenceClassifier(nn.Module):
    """forward(inputs, lengths) -> logits: (B,) for two classes (vᵀh_l), (B, K) for K classes (V h_l).

    `vocab_size` gives an embedding for token ids (B, T); without it the inputs are features (B, T, D),
    D = input_size (pixels, rows of an image, a generated signal). `num_chars` > 0 (with config.char_hidden_size)
    adds the character encoder: inputs (B, T, 1 + L), each word's id then its L letter ids (padding_id after
    the word's end). With token ids, in training config.unk_dropout of the word ids are read as <unk> (`unk_id`)."""

    def __init__(
        self,
        num_classes: int,
        config,
        vocab_size: int | None = None,
        input_size: int | None = None,
        padding_id: int = 0,
        num_chars: int = 0,
        unk_id: int | None = None,
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.config, self.num_classes, self.padding_id, self.unk_id = config, num_classes, padding_id, unk_id
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=padding_id) if vocab_size else None
        self.chars = (
            CharEncoder(
                num_chars, config.char_embedding_size, config.char_hidden_size, padding_id, config.implementation
            )
            if num_chars and config.char_hidden_size
            else None
        )
        width = (config.embedding_size + (self.chars.output_size if self.chars else 0)) if vocab_size else input_size
        self.core = make_core(config, width, bidirectional=config.bidirectional)
        self.head = nn.Linear(self.core.output_size, 1 if num_classes == 2 else num_classes)  # v (1, H), or V (K, H)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight from `generator` alone: embeddings N(0, 1) as torch's, head U(±1/√H), bias 0."""
        for embedding in (m for m in self.modules() if isinstance(m, nn.Embedding)):
            nn.init.normal_(embedding.weight, generator=generator)
            with torch.no_grad():
                embedding.weight[embedding.padding_idx].zero_()
        bound = self.head.in_features**-0.5
        nn.init.uniform_(self.head.weight, -bound, bound, generator=generator)
        nn.init.zeros_(self.head.bias)
        for module in self.modules():  # the core's cells, and the character encoder's first
            if isinstance(module, Cell):
                module.reset_parameters(generator)

    def init_state(self, batch_size: int) -> list:
        return self.core.init_state(batch_size)

    def encode(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """inputs (B, T) ids, (B, T, 1 + L) ids and letters, or (B, T, D) features, lengths (B,) (None: no padding)
        -> h_l (B, H): what the head reads."""
        if self.embedding is not None:  # words: some read as <unk>, then some dropped whole, in training
            ids = unknown_dropout(
                inputs[..., 0] if self.chars is not None else inputs,
                self.config.unk_dropout,
                self.unk_id,
                self.training,
            )  # (B, T)
            x = self.embedding(ids)  # (B, T, E)
            if self.chars is not None:  # and by spelling, letters read even where the id is <unk>
                letters = inputs[..., 1:]  # (B, T, L)
                x = torch.cat([x, self.chars(letters, (letters != self.padding_id).sum(-1))], dim=-1)  # (B, T, E + 2C)
            x = word_dropout(x, self.config.word_dropout, self.training)  # (B, T, E [+ 2C]): some words read as nothing
        else:
            x = inputs  # (B, T, D)
        x = F.dropout(x, self.config.input_dropout, self.training)  # (B, T, E)
        outputs, _ = self.core(
            x, None, lengths
        )  # (B, T, H): each sequence from the zero state (no lengths: the fastest path)
        B, T = x.shape[:2]
        lengths = torch.full((B,), T, dtype=torch.long) if lengths is None else lengths  # (B,)
        return readout(outputs, lengths, self.config.readout, self.config.bidirectional)  # (B, H)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        summary = F.dropout(self.encode(inputs, lengths), self.config.output_dropout, self.training)  # (B, H)
        logits = self.head(summary)  # (B, 1) or (B, K)
        return logits[:, 0] if self.num_classes == 2 else logits  # (B,): vᵀh_l + b, or (B, K)


class ImageSequenceClassifier(nn.Module):
    """An image read as a sequence (the notes' sequential processing of non-sequential data), then classified:

        row        T = Y steps of D = X pixels (one row per step)
        pixel      T = Y·X steps of D = 1, in reading order (sequential MNIST, T = 784)
        permuted   the same pixels in a fixed random order (permuted MNIST), the buffer `order`

    `order` is a buffer, so a checkpoint carries its permutation with its weights. forward(images (B, Y, X),
    uint8 or float in [0, 255]) -> the classifier's logits."""

    MEAN, STD = 0.1307 * 255, 0.3081 * 255  # MNIST's pixel statistics: inputs near zero mean, unit variance

    def __init__(self, num_classes: int, config, height: int, width: int, reading: str, order: Tensor | None = None):
        super().__init__()
        if reading not in ("row", "pixel", "permuted"):
            raise ValueError(f"reading must be row, pixel or permuted, got {reading!r}")
        self.height, self.width, self.reading = height, width, reading
        self.register_buffer("order", torch.arange(height * width) if order is None else order.clone())  # (Y·X,)
        self.classifier = SequenceClassifier(num_classes, config, input_size=width if reading == "row" else 1)

    @property
    def core(self):  # what diagnostics and the run's log read (the spectra of U)
        return self.classifier.core

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        self.classifier.reset_parameters(generator)

    def extra_repr(self) -> str:
        return f"reading={self.reading!r}, image={self.height}x{self.width}"

    def sequence(self, images: Tensor) -> Tensor:
        """(B, Y, X) images -> (B, T, D) steps, normalised."""
        B = images.shape[0]
        x = (images.float() - self.MEAN) / self.STD  # (B, Y, X)
        if self.reading == "row":
            return x  # (B, T = Y, D = X)
        return x.reshape(B, -1)[:, self.order, None]  # (B, T = Y·X, D = 1)

    def forward(self, images: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.classifier(self.sequence(images))  # every image is all there: no lengths
