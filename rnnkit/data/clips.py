"""Video clips that need no download: one digit moving and bouncing on a small canvas, behind an occluder.

    frame t    the digit at p_t, drawn under a grey vertical band (the occluder) that hides it when it passes
    motion     p_{t+1} = p_t + v_t, reflected at the canvas's edges (v flips there: the digit bounces)
    labels     direction_t = the signs of p_{t+1} − p_t: up-left, up-right, down-left or down-right (where it goes next)
               digit_t     = the digit's class, at every frame, hidden or not
    clip label the digit's class: the one label a clip keeps throughout (a model with one label per clip
               reads digits[:, 0]; the direction changes at every bounce)

No single frame shows the direction (a still digit could be going anywhere), and no frame in which the digit
is behind the band shows which digit it is: both labels need what the recurrence remembers (or, for the
direction, what the next frame shows: a bidirectional layer reads it). Every clip is a pure function of
its seed, so batch k of training is too (rnnkit/tasks/frames.py).
"""

import random
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.data.batching import OneProcess, batch_seed
from rnnkit.errors import RnnkitError

CANVAS = 32  # pixels on a side
DIGIT = 12  # a digit is scaled to this many pixels on a side
BAND = 10  # the occluder's width: a digit's ink (about 8 of its 12 pixels) fits behind it
SHADE = 128  # the occluder's grey
FRAMES = 16  # frames per clip
DIRECTIONS = ("up-left", "up-right", "down-left", "down-right")  # index 2·[s_y > 0] + [s_x > 0] (y grows downwards)
SPEEDS = (1, 2, 3)  # pixels per frame along each axis
INK = 40  # a pixel of the digit at least this bright shows it


class Clips(NamedTuple):
    frames: Tensor  # (N, T, Y, X) uint8
    directions: Tensor  # (N, T) index into DIRECTIONS
    digits: Tensor  # (N, T) the digit's class at every frame
    hidden: Tensor  # (N, T) bool: the digit wholly behind the occluder (none of its ink shows)


def direction_of(sy: int, sx: int) -> int:
    return 2 * (sy > 0) + (sx > 0)


def bounce(p: int, v: int, top: int) -> tuple[int, int]:
    """p + v reflected into [0, top]; v flips when the digit meets an edge."""
    p += v
    if p < 0:
        return -p, -v
    if p > top:
        return 2 * top - p, -v
    return p, v


def trajectory(chooser: random.Random, steps: int) -> list[tuple[int, int, int, int]]:
    """(y, x, s_y, s_x) at each frame: s = ±1, the way the digit moves from this frame to the next along each axis
    (at a bounce that lands where it started, the way it leaves)."""
    top = CANVAS - DIGIT
    y, x = chooser.randint(0, top), chooser.randint(0, top)
    vy, vx = chooser.choice(SPEEDS) * chooser.choice((-1, 1)), chooser.choice(SPEEDS) * chooser.choice((-1, 1))
    path = []
    for _ in range(steps):
        (ny, vy), (nx, vx) = bounce(y, vy, top), bounce(x, vx, top)
        path.append((y, x, ny - y or vy, nx - x or vx))
        y, x = ny, nx
    return path


def scaled(glyphs: Tensor) -> Tensor:
    """Glyphs (N, 28, 28) at DIGIT pixels: (N, DIGIT, DIGIT) uint8."""
    return F.interpolate(glyphs.float()[:, None], size=(DIGIT, DIGIT), mode="area")[:, 0].round().to(torch.uint8)


def make_clips(glyphs: Tensor, labels: Tensor, count: int, seed: int, frames: int = FRAMES) -> Clips:
    """`count` clips of `frames` frames from `glyphs` (N, DIGIT, DIGIT) of classes `labels` (N,), all from `seed`."""
    if len(glyphs) == 0:
        raise RnnkitError("no digits to make clips from")
    chooser = random.Random(seed)
    video = torch.zeros(count, frames, CANVAS, CANVAS, dtype=torch.uint8)
    directions = torch.zeros(count, frames, dtype=torch.long)
    digits = torch.zeros(count, frames, dtype=torch.long)
    hidden = torch.zeros(count, frames, dtype=torch.bool)
    for n in range(count):
        k = chooser.randrange(len(glyphs))
        band = chooser.randint(4, CANVAS - BAND - 4)  # the occluder's left edge
        for t, (y, x, sy, sx) in enumerate(trajectory(chooser, frames)):
            video[n, t, y : y + DIGIT, x : x + DIGIT] = glyphs[k]
            directions[n, t] = direction_of(sy, sx)
        ink = video[n] >= INK  # (T, Y, X)
        ink[:, :, band : band + BAND] = False  # what the band will cover
        hidden[n] = ~ink.flatten(1).any(1)  # (T,)
        video[n, :, :, band : band + BAND] = SHADE  # drawn over the digit
        digits[n] = labels[k]
    return Clips(video, directions, digits, hidden)


class ClipBatches(OneProcess):
    """Training: batch k is `batch_size` new clips made from seed (seed, k), so no two passes repeat a clip and a
    resumed run reads the same ones; `count` clips make a pass. Evaluation: fixed clips, each batch once."""

    def __init__(
        self, glyphs: Tensor, labels: Tensor, batch_size: int, train: bool, seed: int, count: int, what: str = "clips"
    ):
        if batch_size < 1 or count < 1:
            raise RnnkitError(
                f"{what}: batch_size and the number of clips must be positive, got {batch_size} and {count}"
            )
        self.glyphs, self.labels, self.batch_size, self.train, self.seed, self.what = (
            glyphs,
            labels,
            batch_size,
            train,
            seed,
            what,
        )
        self.num_batches = max(1, count // batch_size) if train else -(-count // batch_size)
        self.fixed = None if train else make_clips(glyphs, labels, count, seed)

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, k: int) -> Clips:
        if self.train:
            return make_clips(self.glyphs, self.labels, self.batch_size, batch_seed(self.seed, k))
        if not 0 <= k < self.num_batches:
            raise IndexError(k)
        rows = slice(k * self.batch_size, (k + 1) * self.batch_size)
        return Clips(*(field[rows] for field in self.fixed))
