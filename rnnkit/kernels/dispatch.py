"""Which path runs a Recurrent layer's time loop: the choice, and why the faster paths were not taken.

auto      rnnkit's Triton kernels on a GPU (built-in cells, float32; for the cells cuDNN also runs, only
          up to batch 64, above which cuDNN was faster), else torch's fused kernel when the cell has one,
          else the compiled loop when T fills at least its shortest chunk (compiled.CHUNKS) and the cell
          has run on this shape before (a one-off call never waits for the compiler), else the reference loop
triton, fused, compiled   that path, and an error where it cannot run
reference                 always the reference loop (also whenever every step's state is asked for)
"""

from __future__ import annotations

from torch import Tensor

from rnnkit.errors import RnnkitError
from rnnkit.kernels import aten, compiled, triton_rnn

IMPLEMENTATIONS = ("auto", "fused", "triton", "compiled", "reference")


def choose_path(cell, implementation: str, inputs: Tensor, return_states: bool) -> tuple[str, str]:
    """("triton" | "fused" | "compiled" | "reference", why the faster paths were not taken)."""
    if implementation == "reference":
        return "reference", "implementation='reference' asked for"
    if return_states:
        return "reference", "return_states=True needs every step's state"
    triton_reason = triton_rnn.unsupported_reason(cell, inputs, forced=implementation == "triton")
    fused_reason = aten.unsupported_reason(cell)
    if implementation == "triton" and triton_reason is None:
        return "triton", ""
    if implementation == "fused" and fused_reason is None:
        return "fused", ""
    if implementation == "auto":  # rnnkit's Triton kernels, unless cuDNN runs the cell faster at this batch size
        if triton_reason is None and (fused_reason is not None or triton_rnn.beats_cudnn(inputs.shape[0])):
            return "triton", ""
        if fused_reason is None:
            return "fused", ""
    compiled_reason = compiled.unsupported_reason(inputs)
    shortest_chunk = min(compiled.CHUNKS)
    if implementation == "auto" and compiled_reason is None and inputs.shape[1] < shortest_chunk:
        compiled_reason = f"T={inputs.shape[1]} is shorter than one compiled chunk ({shortest_chunk} steps)"
    if implementation == "auto" and compiled_reason is None and not compiled.repeated(cell, inputs):
        compiled_reason = "the first call with this shape runs eagerly; the next one compiles"
    if implementation in ("auto", "compiled") and compiled_reason is None:
        return "compiled", ""
    if implementation != "auto":
        reason = {"fused": fused_reason, "triton": triton_reason, "compiled": compiled_reason}[implementation]
        raise RnnkitError(f"Recurrent: implementation={implementation!r} cannot run {type(cell).__name__}: {reason}")
    return (
        "reference",
        f"no Triton kernel ({triton_reason}); no fused kernel ({fused_reason}); not compiled ({compiled_reason})",
    )
