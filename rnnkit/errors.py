"""rnnkit's one error type, and the shape checks that raise it.

Every problem rnnkit can name (a tensor of the wrong shape, a bad file, a bad flag) is an `RnnkitError`
with a one-line message saying what and where. It subclasses ValueError, so code that catches
ValueError keeps working; the CLI turns it into one line on stderr and exit status 2.
"""

from collections.abc import Sequence

import torch


class RnnkitError(ValueError):
    """A problem with the user's input (tensor, file, flag), explained in one line."""


class ArgumentError(RnnkitError):
    """A bad argument of a Python call, named as Python spells it ("length: must be at least 1, got 0");
    the CLI says the same with the flag's name (as_flag("--length"))."""

    def __init__(self, argument: str, problem: str):
        self.argument, self.problem = argument, problem
        super().__init__(f"{argument}: {problem}")

    def as_flag(self, flag: str) -> str:
        return f"{flag}: {self.problem}"


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument of the wrong type (a list where one string goes): a TypeError as well as rnnkit's own."""


def format_shape(shape: Sequence[int | str | None]) -> str:
    """(4, None, 32) -> '(4, *, 32)': None stands for any size."""
    sizes = ["*" if size is None else str(size) for size in shape]
    return "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"


def check_shape(name: str, tensor: torch.Tensor, expected: Sequence[int | None]) -> None:
    """Raise RnnkitError unless `tensor` has len(expected) dims and matches every size that is not None.

    Never a silent broadcast: a (B, 1) state for a (B, H) cell is an error, not a surprise.
    """
    if not isinstance(tensor, torch.Tensor):
        raise RnnkitError(f"{name}: expected a tensor of shape {format_shape(expected)}, got {type(tensor).__name__}")
    received = tuple(tensor.shape)
    if len(received) != len(expected) or any(e is not None and e != r for e, r in zip(expected, received)):
        raise RnnkitError(f"{name}: expected shape {format_shape(expected)}, got {format_shape(received)}")
