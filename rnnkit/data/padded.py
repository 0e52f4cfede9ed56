"""Batches of independent sequences of different lengths, padded, with their lengths: bucketing.

A batch of random sentences is mostly padding (one 50-word sentence pads 31 short ones to 50 steps).
Each pass therefore shuffles the examples (seeded by the pass number), cuts the shuffle into pools of
POOL batches, sorts each pool by length and cuts it into batches of neighbours, then shuffles the
batches' order, so batches hold similar lengths yet every pass sees a new order:

    pass p:  shuffle(seed, p) -> pools of POOL·B -> sort each pool by length -> batches of B -> shuffle

Batch k is a pure function of k (its pass is k // len), so a resumed run reads the same batches.
Training batches are all full (B rows: the remainder of each pass's shuffle is left for later
passes); evaluation batches cover every example exactly once, in length order.
"""

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.batching import OneProcess, batch_seed
from rnnkit.errors import RnnkitError

IGNORE = -100  # the target id of padding in every padded batch of labels per step: cross_entropy's ignore_index
POOL = 50  # batches per sorting pool: large enough to find neighbours, small enough to keep passes random


class LabelledBatch(NamedTuple):
    inputs: Tensor  # (B, T) ids or (B, T, D) features, zero-padded after each row's length
    lengths: Tensor  # (B,): valid steps of each row, in [1, T]
    labels: Tensor  # (B,) class ids (or (B, ...) targets)


def pad_batch(sequences: list[Tensor], labels: Tensor, padding_id: int = 0) -> LabelledBatch:
    """Sequences (each (T_b,) or (T_b, D)) -> one padded batch; labels (B, ...) kept as given."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)  # (B,)
    inputs = pad_sequence(sequences, batch_first=True, padding_value=padding_id)  # (B, T) or (B, T, D)
    return LabelledBatch(inputs, lengths, labels)


class LengthBuckets(OneProcess):
    """Padded batches of similar lengths; `train` ones are full and reshuffled each pass, others cover
    every example once, shortest first. `sequences` may also be one (N, T, D) tensor of equal lengths."""

    def __init__(
        self,
        sequences,
        labels: Tensor,
        batch_size: int,
        train: bool = True,
        seed: int = 0,
        padding_id: int = 0,
        what: str = "data",
        unit: str = "sequences",
    ):
        if batch_size < 1:
            raise RnnkitError(f"batch_size must be positive, got {batch_size}")
        if len(sequences) != len(labels):
            raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
        if len(sequences) == 0:
            raise RnnkitError(f"{what} holds no {unit}")
        if train and len(sequences) < batch_size:
            raise RnnkitError(
                f"{what} has {len(sequences)} {unit}, fewer than one batch of --train.batch_size={batch_size}"
            )
        self.sequences, self.labels, self.batch_size, self.train = sequences, labels, batch_size, train
        self.seed, self.padding_id = seed, padding_id
        self.lengths = (
            torch.tensor([len(s) for s in sequences])
            if isinstance(sequences, list)
            else torch.full((len(sequences),), sequences.shape[1])
        )  # (N,)
        self.num_batches = len(sequences) // batch_size if train else -(-len(sequences) // batch_size)
        self.cached_pass, self.cached_order = None, None

    def __len__(self) -> int:
        return self.num_batches

    def pass_order(self, number: int) -> list[Tensor]:
        """The batches of pass `number`, each a tensor of example indices."""
        if not self.train:
            order = torch.sort(self.lengths, stable=True).indices  # (N,): shortest first
            return list(order.split(self.batch_size))
        generator = torch.Generator().manual_seed(batch_seed(self.seed, number))
        shuffled = torch.randperm(len(self.lengths), generator=generator)[
            : self.num_batches * self.batch_size
        ]  # (n·B,)
        batches = []
        for pool in shuffled.split(POOL * self.batch_size):
            by_length = pool[torch.sort(self.lengths[pool], stable=True).indices]  # neighbours in length
            batches.extend(by_length.split(self.batch_size))
        return [
            batches[i] for i in torch.randperm(len(batches), generator=generator)
        ]  # no pass starts with the short ones

    def indices(self, k: int) -> Tensor:
        number = k // self.num_batches if self.train else 0
        if number != self.cached_pass:
            self.cached_pass, self.cached_order = number, self.pass_order(number)
        return self.cached_order[k % self.num_batches]

    def __getitem__(self, k: int) -> LabelledBatch:
        chosen = self.indices(k)  # (B,)
        if not isinstance(self.sequences, list):  # equal lengths: one slice, no padding
            return LabelledBatch(self.sequences[chosen], self.lengths[chosen], self.labels[chosen])
        return pad_batch([self.sequences[i] for i in chosen.tolist()], self.labels[chosen], self.padding_id)
