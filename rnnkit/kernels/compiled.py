"""A fast path for any cell, standard or custom: the time loop compiled by torch.compile.

A cell's Python time loop is slow because every step launches a dozen small ops from Python, forward and
backward (docs/speed-notes.md has the measurements behind every choice here).
This path removes what it can without changing a single equation:

  1. the terms that read x_t alone are computed for all T steps at once, as one large matrix product,
     when the cell splits its step into project(x) and step(p_t, state) (every rnnkit cell does; see Cell);
     a cell with forward alone runs whole at each step;
  2. Recurrent's own time loop (rnnkit.recurrent.time_loop) runs in chunks of 32 steps (CHUNKS), each
     chunk one graph compiled by torch.compile: the chunk is unrolled, each step's pointwise ops fuse into one
     generated kernel (C++ on CPU, Triton on GPU) and Python runs once per chunk, not once per op; autograd
     differentiates the compiled graph as a whole;
  3. the inputs are split into chunks with `split` and each step read with `unbind`, whose backwards are one
     cat/stack, where slicing x[:, t] would zero-fill a whole (B, T, ·) gradient at every step;
  4. with Inductor, a graph pass over each compiled chunk (rnnkit/kernels/products.py) makes each weight's
     gradient one product over the chunk's 32·B rows instead of 32 accumulating products over B rows,
     and batches the products that wait on no other step (so a cell without project(x) gets its input terms
     hoisted all the same, a chunk at a time).

Compiling takes time, so "auto" compiles only what repeats: a cell's first call with a given shape runs
eagerly (`repeated`), and the next one compiles, saying so once at WARNING (what, and about how long);
training, which calls the same shapes thousands of times, compiles from its second step, and a one-off call
(a notebook cell, a prediction) never waits for the compiler. torch keeps the compiled code in its on-disk
cache, so a later process compiling the same cell and shapes mostly reads it back.

A sequence is cut into as many chunks of the longest length in CHUNKS as fit, then one of each shorter
length that fits (T = 100: 32, 32, 32, then 4 steps); steps that fill no chunk run the same code
uncompiled. Each chunk length is one graph, compiled when first met: the first call for a new length,
shape, dtype or grad mode compiles (about a minute for a 32-step LSTM chunk, forward and backward, on
2 cores; later runs read torch's on-disk cache).

What is left per step is what the recurrence forces: the products U h_{t-1} forward and δ_t U backward,
and the pointwise work of the step. Tried and dropped: computing the weight gradients once for all steps
by re-running the step on all B·T rows: exact, but slower than the small products it saves; the graph
pass gets the same one product without re-running anything.
"""

from __future__ import annotations

import functools
import logging
import shutil
import types
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

# Steps per compiled graph, longest first. Longer chunks make larger products (the pass below merges a
# weight's gradient over the chunk's rows) and fewer calls, but compile longer: 32 was faster than 16 and
# as fast as 64 at half its compile time (docs/speed-notes.md). 16 stays for sequences too short for 32.
CHUNKS = (32, 16)
BACKEND = "inductor"  # torch.compile's code generator (tests also use "aot_eager")
MODE: str | None = (
    None  # torch.compile's mode for inductor; None: "reduce-overhead" (CUDA graphs) on a GPU, the default on the CPU
)
RECOMPILE_LIMIT = 16  # graphs per cell: each (chunk length, batch size, dtype, grad mode, padded or not) is one
MERGE_PRODUCTS = (
    True  # inductor only: run rnnkit/kernels/products.py's pass (read when a cell's loop is first compiled)
)


@functools.cache
def compiler_missing(device_type: str) -> str | None:
    """None when torch.compile can generate code for this device type, else why not."""
    if device_type == "cpu":
        return (
            None
            if shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
            else "no C++ compiler on PATH for torch.compile"
        )
    if device_type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "Triton is not installed (torch.compile needs it on CUDA)"
        return None
    return f"torch.compile is not used on {device_type!r}"


def splits_step(cell: nn.Module) -> bool:
    """Does the cell offer project(x) and step(p_t, state), so its input terms can be hoisted?"""
    return callable(getattr(cell, "project", None)) and callable(getattr(cell, "step", None))


def unsupported_reason(inputs: Tensor) -> str | None:
    """None when the compiled path can run on these inputs (any cell can), else why not (logged by Recurrent)."""
    if torch.compiler.is_compiling():
        return "already inside a torch.compile region"
    return compiler_missing(inputs.device.type)


def mode_for(device_type: str) -> str | None:
    """torch.compile's mode: on a GPU, "reduce-overhead" replays each compiled chunk as a CUDA graph (the
    launches of a chunk's small kernels cost more than their work there)."""
    if BACKEND != "inductor":
        return None
    if MODE is not None:
        return MODE
    return "reduce-overhead" if device_type == "cuda" else None


def inductor_options(mode: str | None) -> dict:
    """Inductor's settings for `mode` (torch.compile takes a mode or options, not both), plus the product pass."""
    from torch._inductor import list_mode_options  # Inductor loads only once something compiles

    options = dict(list_mode_options(mode or "default"))
    if MERGE_PRODUCTS:
        from rnnkit.kernels import products  # imports Inductor's pattern matcher

        options["post_grad_custom_post_pass"] = products.ChunkProducts()
    return options


_compiled: weakref.WeakKeyDictionary[nn.Module, dict[str, Callable]] = weakref.WeakKeyDictionary()


def compile_for(cell: nn.Module, function: Callable, device_type: str = "cpu") -> Callable:
    """`function` compiled for this cell alone.

    torch.compile keeps its graphs per code object and, at every call, checks the guards of each graph in
    turn until one matches: with one shared function, a model of many layers (each with training and
    evaluation graphs) would pay for checking all of them on every chunk. Each cell gets its own copy of
    the code, hence its own short list; identical graphs still share compiled code through torch's cache.
    """
    mode = mode_for(device_type)
    functions = _compiled.setdefault(cell, {})
    if (BACKEND, mode) not in functions:
        copy = types.FunctionType(
            function.__code__.replace(), function.__globals__, function.__name__, function.__defaults__
        )
        if BACKEND == "inductor":
            compiled_function = torch.compile(copy, dynamic=False, options=inductor_options(mode))
        else:
            compiled_function = torch.compile(copy, dynamic=False, backend=BACKEND)

        def call(*args):
            with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
                return compiled_function(*args)

        functions[BACKEND, mode] = call
    return functions[BACKEND, mode]


_seen: weakref.WeakKeyDictionary[nn.Module, set[tuple]] = weakref.WeakKeyDictionary()  # shapes each cell has run on
_announced: weakref.WeakKeyDictionary[nn.Module, set[tuple]] = (
    weakref.WeakKeyDictionary()
)  # compilations already logged


def call_key(inputs: Tensor) -> tuple:
    return (tuple(inputs.shape), inputs.dtype, str(inputs.device), torch.is_grad_enabled())


def repeated(cell: nn.Module, inputs: Tensor) -> bool:
    """Has this cell run on inputs like these (shape, dtype, device, grad mode) before? Records this call."""
    seen = _seen.setdefault(cell, set())
    key = call_key(inputs)
    if key in seen:
        return True
    seen.add(key)
    return False


def announce(cell: nn.Module, inputs: Tensor, lengths: list[int]) -> None:
    """One WARNING before the first compilation of this cell for this shape: no silent multi-minute wait."""
    key = call_key(inputs)
    announced = _announced.setdefault(cell, set())
    if key not in announced and any(length in CHUNKS for length in lengths):
        announced.add(key)
        logger.warning(
            "compiling %s's time loop in %s-step chunks for inputs %s (%s): about a minute per layer on 2 CPU cores "
            "the first time, much less once torch's on-disk cache holds it",
            type(cell).__name__,
            "/".join(map(str, sorted(set(lengths) & set(CHUNKS), reverse=True))),
            tuple(inputs.shape),
            "training" if torch.is_grad_enabled() else "inference",
        )


def chunk_lengths(steps: int) -> list[int]:
    """How run() cuts `steps` time steps: chunks of each length in CHUNKS, longest first, as many as fit,
    then the remainder (shorter than every chunk; run uncompiled) if any."""
    lengths, left = [], steps
    for chunk in CHUNKS:
        lengths += [chunk] * (left // chunk)
        left %= chunk
    return lengths + ([left] if left else [])


def run(cell: nn.Module, inputs: Tensor, state: NamedTuple, alive: Tensor | None, loop: Callable) -> tuple[Tensor, Any]:
    """One layer, one direction: (B, T, D) inputs (padding zeroed) -> ((B, T, H) outputs, final state).

    loop is Recurrent's time loop (rnnkit.recurrent.time_loop), run here one chunk at a time.
    """
    hoisted = splits_step(cell)
    xs = cell.project(inputs) if hoisted else inputs  # (B, T, ·): every step's input terms in one product
    lengths = chunk_lengths(inputs.shape[1])
    announce(cell, inputs, lengths)
    pieces = xs.split(lengths, dim=1)  # split, not slices: its backward is one cat
    alive_pieces = (None,) * len(pieces) if alive is None else alive.split(lengths, dim=1)
    outputs = []
    for piece, alive_piece in zip(pieces, alive_pieces):
        chunk_loop = (
            compile_for(cell, loop, inputs.device.type) if piece.shape[1] in CHUNKS else loop
        )  # the remainder runs uncompiled
        out, state = chunk_loop(cell, piece, state, alive_piece, hoisted)
        outputs.append(out)
    if mode_for(inputs.device.type) == "reduce-overhead":  # a CUDA graph's outputs are overwritten by its next replay:
        state = type(state)(
            *(field.clone() for field in state)
        )  # the state the caller carries to the next call is a copy
    return torch.cat(outputs, dim=1), state  # (B, T, H)


_steps: weakref.WeakKeyDictionary[nn.Module, dict[str, Callable]] = weakref.WeakKeyDictionary()


def compiled_step(module: nn.Module, function: Callable) -> Callable:
    """`function` (a method of `module` that runs one step, such as a decoder's step with attention) compiled
    with dynamic shapes, so batches of other source lengths reuse one graph; cached per module. For steps that
    cannot be hoisted into Recurrent's chunks because each one reads the last one's output."""
    functions = _steps.setdefault(module, {})
    if BACKEND not in functions:
        functions[BACKEND] = torch.compile(function, dynamic=True, backend=BACKEND)
    return functions[BACKEND]
