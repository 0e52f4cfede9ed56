"""The glimpse classifier's images (Mnih et al. 2014): MNIST as it is (28×28), a digit placed at random on a
larger canvas (translated, 60×60), and the same with clutter: random 8×8 fragments of other digits scattered
over the canvas, so that a model must find the digit before it can read it. Each image is a pure function of
the seed and its number.
"""

import random

import torch
from torch import Tensor

from rnnkit.data.batching import batch_seed

CANVASES = ("mnist", "translated", "cluttered")
FRAGMENT = 8  # pixels on a side of a clutter fragment


def place(digits: Tensor, canvas: str, size: int, clutter: int, seed: int, pool: Tensor | None = None) -> Tensor:
    """digits (N, 28, 28) uint8 -> (N, size, size): as they are ("mnist"), or each at a random place on a size × size
    canvas, with `clutter` fragments of the digits in `pool` (others than itself) for "cluttered"."""
    if canvas == "mnist":
        return digits
    N, Y, X = digits.shape
    pool = digits if pool is None else pool
    out = torch.zeros(N, size, size, dtype=torch.uint8)
    for n in range(N):
        chooser = random.Random(
            batch_seed(seed, n)
        )  # image n's own: with or without clutter, the digit sits in one place
        y, x = chooser.randint(0, size - Y), chooser.randint(0, size - X)
        if canvas == "cluttered":
            for _ in range(clutter):
                other = pool[chooser.randrange(len(pool))]
                fy, fx = chooser.randint(0, Y - FRAGMENT), chooser.randint(0, X - FRAGMENT)
                cy, cx = chooser.randint(0, size - FRAGMENT), chooser.randint(0, size - FRAGMENT)
                piece = other[fy : fy + FRAGMENT, fx : fx + FRAGMENT]
                out[n, cy : cy + FRAGMENT, cx : cx + FRAGMENT] = torch.maximum(
                    out[n, cy : cy + FRAGMENT, cx : cx + FRAGMENT], piece
                )
        out[n, y : y + Y, x : x + X] = torch.maximum(out[n, y : y + Y, x : x + X], digits[n])
    return out
