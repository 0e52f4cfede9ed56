"""Which device a command or a Python call runs on: a name torch knows, and one this machine has."""

import torch

from rnnkit.errors import ArgumentError, ArgumentTypeError


def checked_device(device, argument: str = "device") -> torch.device:
    """torch.device(device), or an error naming `argument` (the CLI passes "--device") that says what is wrong."""
    if isinstance(device, torch.device):
        parsed = device
    elif not isinstance(device, str):
        raise ArgumentTypeError(
            argument, f"expected a device name such as 'cpu' or 'cuda', got {type(device).__name__}"
        )
    else:
        try:
            parsed = torch.device(device)
        except (RuntimeError, TypeError):
            raise ArgumentError(argument, f"unknown device {device!r} (cpu, cuda, cuda:1, mps, ...)") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ArgumentError(argument, f"{device!r} asked for, but no CUDA GPU is available")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ArgumentError(
            argument, f"{device!r} asked for, but this machine has {torch.cuda.device_count()} CUDA GPU(s)"
        )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ArgumentError(argument, f"{device!r} asked for, but MPS is not available here")
    if parsed.type == "cpu" and parsed.index not in (None, 0):
        raise ArgumentError(argument, f"{device!r}: there is one CPU device, cpu")
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise ArgumentError(argument, f"rnnkit runs on cpu, cuda or mps, not {parsed.type!r}")
    return parsed
