"""Captioning data that needs no download: 1-3 digits placed on a canvas, captioned from how they were placed.

    a small seven                          one digit
    a large seven left of a small two      two or three, read left to right

Each digit is a 28×28 image of its class (MNIST's, or any other glyphs) scaled to one of two sizes, placed at a
random height, with random gaps between the digits and at the canvas's edges, so "left of" is always true and
the caption says it all. The split tests composition, not memory: a seeded set of digit pairs
(`held_out_pairs`) never appears together in a training image, and every multi-digit evaluation image holds
at least one such pair (each digit has been seen, in other company). Everything is a pure function of the seed.
"""

import random
from itertools import combinations
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from rnnkit.data.padded import IGNORE, LengthBuckets

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SIZES = {"small": 14, "large": 20}  # pixels a digit is scaled to; three large ones fit a 64-pixel canvas
CANVAS = 64
WORDS = ("a", "left", "of", *SIZES, *NAMES)  # every word a caption can hold


class Composed(NamedTuple):
    images: Tensor  # (N, Y, X) uint8
    captions: list[str]
    digits: list[tuple[int, ...]]  # each image's digits, left to right


def held_out_pairs(count: int = 10, seed: int = 0) -> set[tuple[int, int]]:
    """`count` of the 45 unordered pairs of different digits, chosen by `seed`."""
    pairs = list(combinations(range(10), 2))
    return set(random.Random(seed).sample(pairs, count))


def pairs_of(digits: tuple[int, ...]) -> set[tuple[int, int]]:
    return {(min(a, b), max(a, b)) for a, b in combinations(digits, 2) if a != b}


def caption(digits: tuple[int, ...], sizes: tuple[str, ...]) -> str:
    return " left of ".join(f"a {size} {NAMES[d]}" for d, size in zip(digits, sizes))


def scaled(glyphs: Tensor) -> dict[str, Tensor]:
    """Every glyph (N, 28, 28) at each size: {size: (N, s, s) uint8}."""
    x = glyphs.float()[:, None]  # (N, 1, 28, 28)
    return {name: F.interpolate(x, size=(s, s), mode="area")[:, 0].round().to(torch.uint8) for name, s in SIZES.items()}


class Composer:
    """Composes images from `glyphs` (N, 28, 28) of classes `labels` (N,), each glyph scaled to every size once."""

    def __init__(self, glyphs: Tensor, labels: Tensor):
        self.by_class = {k: (labels == k).nonzero().flatten().tolist() for k in range(10)}
        missing = [k for k, found in self.by_class.items() if not found]
        if missing:
            raise ValueError(f"no glyph of class {missing[0]} to compose from")
        self.sized = scaled(glyphs)

    def __call__(self, count: int, seed: int, held_out: set[tuple[int, int]], unseen: bool) -> Composed:
        """`count` images from `seed`. unseen=False: no image holds a held-out pair (training); unseen=True: every
        image holds 2-3 digits and at least one held-out pair."""
        chooser = random.Random(seed)
        images = torch.zeros(count, CANVAS, CANVAS, dtype=torch.uint8)
        captions, chosen = [], []
        while len(captions) < count:
            digits = tuple(chooser.randrange(10) for _ in range(chooser.choice((2, 3) if unseen else (1, 2, 3))))
            if bool(pairs_of(digits) & held_out) != unseen:
                continue
            sizes = tuple(chooser.choice(tuple(SIZES)) for _ in digits)
            widths = [SIZES[s] for s in sizes]
            free = CANVAS - sum(widths)
            cuts = sorted(chooser.randint(0, free) for _ in range(len(digits)))  # the free pixels split into gaps
            x, n = cuts[0], len(captions)
            for k, (digit, size, width) in enumerate(zip(digits, sizes, widths)):
                y = chooser.randint(0, CANVAS - width)
                glyph = self.sized[size][chooser.choice(self.by_class[digit])]  # (s, s)
                images[n, y : y + width, x : x + width] = torch.maximum(images[n, y : y + width, x : x + width], glyph)
                x += width + ((cuts[k + 1] - cuts[k]) if k + 1 < len(digits) else 0)
            captions.append(caption(digits, sizes))
            chosen.append(digits)
        return Composed(images, captions, chosen)


def compose(
    glyphs: Tensor, labels: Tensor, count: int, seed: int, held_out: set[tuple[int, int]], unseen: bool
) -> Composed:
    """`count` images drawn from `glyphs` (N, 28, 28) of classes `labels` (N,) (see Composer)."""
    return Composer(glyphs, labels)(count, seed, held_out, unseen)


class CaptionBatch(NamedTuple):
    images: Tensor  # (B, Y, X) uint8
    captions_in: Tensor  # (B, T): <s> y_1 ... y_n, padding_id after
    captions_out: Tensor  # (B, T): y_1 ... y_n </s>, IGNORE after
    lengths: Tensor  # (B,): n + 1
    index: Tensor  # (B,): each image's number, for its reference caption


def caption_batch(images: Tensor, captions: list[Tensor], index: Tensor, padding_id: int) -> "CaptionBatch":
    captions_in = pad_sequence([c[:-1] for c in captions], batch_first=True, padding_value=padding_id)  # (B, T)
    captions_out = pad_sequence([c[1:] for c in captions], batch_first=True, padding_value=IGNORE)  # (B, T)
    return CaptionBatch(images, captions_in, captions_out, torch.tensor([len(c) - 1 for c in captions]), index)


class CaptionBuckets(LengthBuckets):
    """Images with their encoded captions (<s> ... </s>), in batches of similar caption lengths."""

    def __init__(
        self,
        images: Tensor,
        captions: list[Tensor],
        references: list[str],
        batch_size: int,
        train: bool,
        seed: int,
        padding_id: int,
        what: str = "data",
    ):
        super().__init__(
            captions, torch.arange(len(captions)), batch_size, train, seed, padding_id, what, "captioned images"
        )
        self.images, self.references = images, references

    def __getitem__(self, k: int) -> CaptionBatch:
        chosen = self.indices(k)  # (B,)
        captions = [self.sequences[i] for i in chosen.tolist()]
        return caption_batch(self.images[chosen], captions, chosen, self.padding_id)


def training_batch(
    composer: Composer, held_out: set[tuple[int, int]], encode, batch_size: int, seed: int, padding_id: int
) -> CaptionBatch:
    """`batch_size` new training compositions from `seed` (no held-out pair), their captions encoded by `encode`."""
    composed = composer(batch_size, seed, held_out, unseen=False)
    return caption_batch(
        composed.images, [encode(text) for text in composed.captions], torch.arange(batch_size), padding_id
    )
