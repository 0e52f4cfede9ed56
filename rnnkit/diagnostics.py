"""The inside view, part 1: gradients through time, spectra of the recurrent matrices, hidden-state norms.

The notes' analysis of h_t = g(a_t), a_t = U h_{t-1} + W x_t + b: a loss at step l reaches step t < l as

    ∂L/∂h_t = (∂h_l/∂h_t)ᵀ ∂L/∂h_l,    ∂h_l/∂h_t = Π_{k=t+1..l} diag(g'(a_k)) U

so its norm shrinks or grows roughly like ρ(U)^(l−t) (vanishing or exploding gradients). Since |g'| ≤ γ
(γ = 1 for tanh, 1/4 for the sigmoid), ‖∂h_l/∂h_t‖ ≤ (γ‖U‖)^(l−t): below ρ(U) < 1/γ (for a normal U, whose
norm is its spectral radius) the gradient must vanish. For a linear RNN (g = identity) the product is exactly
U^(l−t). The LSTM's cell state c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t is the notes' "highway": ∂c_t/∂c_{t-1} = diag(f_t),
no U and no squashing, so ∂L/∂c_t can survive where ∂L/∂h_t of a vanilla RNN vanishes. These functions measure
all of that on a real model.

state_gradients measures the model's own forward (whatever connects its layers: stacking, both directions, skip
connections): while the loss is computed, every Recurrent layer of the core runs its reference loop, one Python
step per t, and each cell's returned state is recorded, the very tensors the next step reads, so autograd gives
∂L/∂h_t and ∂L/∂c_t. The recording is the one forward hook in rnnkit, and it only reads: return_states=True
returns copies stacked after the loop, which the loss never reads, so their gradient would be zero.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import Cell, GRUCell, LSTMCell, MUTCell, RNNCell
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.recurrent import Bidirectional, Recurrent, Stacked


@dataclass(frozen=True)
class Diagnosis:
    """What `rnnkit diagnose` measures: `loss()` runs `model`'s own forward on one fixed batch, every row T steps
    (no padding), running `core` once, and returns the loss at the last step; `what` names that loss."""

    model: nn.Module
    core: nn.Module
    loss: Callable[[], Tensor]
    what: str


def recurrent_layers(core) -> list[tuple[str, Recurrent]]:
    """Every Recurrent layer of a core, bidirectional ones included: layer0, or layer0.forward and layer0.backward."""
    named = []
    for index, layer in enumerate(core.layers if isinstance(core, Stacked) else [core]):
        directions = (
            {"forward": layer.forward_rnn, "backward": layer.backward_rnn}
            if isinstance(layer, Bidirectional)
            else {"": layer}
        )
        for direction, recurrent in directions.items():
            recurrent = getattr(recurrent, "layer", recurrent)  # WeightDrop's layer
            if not isinstance(recurrent, Recurrent):
                raise RnnkitError(f"layer {index} is a {type(recurrent).__name__}, not a Recurrent layer")
            named.append((f"layer{index}{'.' + direction if direction else ''}", recurrent))
    return named


def named_cells(core) -> list[tuple[str, Cell]]:
    """Every cell of a core, named as recurrent_layers names its layer."""
    return [(name, layer.cell) for name, layer in recurrent_layers(core)]


@contextmanager
def recording(core) -> Iterator[dict[str, list[NamedTuple]]]:
    """Inside the block, every state each cell of `core` returns, in the order of its steps: {name: [state_t]}."""
    layers = recurrent_layers(core)
    steps: dict[str, list[NamedTuple]] = {name: [] for name, _ in layers}
    implementations = [layer.implementation for _, layer in layers]
    handles = []
    try:
        for name, layer in layers:
            layer.implementation = "reference"  # one call of the cell per step: the fast paths keep no state_t
            handles.append(
                layer.cell.register_forward_hook(lambda cell, args, state, kept=steps[name]: kept.append(state))
            )
        yield steps
    finally:
        for handle in handles:
            handle.remove()
        for (_, layer), implementation in zip(layers, implementations):
            layer.implementation = implementation


def state_gradients(diagnosis: Diagnosis) -> tuple[dict[str, NamedTuple], dict[str, NamedTuple]]:
    """(∂L/∂state_t, state_t) of every cell of the core at each of its steps t, each field (B, T, H), in the cell's
    state type: {"layer0": LSTMState(h=∂L/∂h_t, c=∂L/∂c_t)}, and the states themselves, detached. t counts in the
    cell's own reading order: a backward direction's step 1 is the window's last position, its step T the first.
    The model runs in eval mode: this measures the network, not a random dropout mask."""
    with evaluating(diagnosis.model), recording(diagnosis.core) as steps:
        loss = diagnosis.loss()
    counts = {name: len(states) for name, states in steps.items()}
    if len(set(counts.values())) != 1 or 0 in counts.values():
        raise RnnkitError(f"the loss must run the core once, every layer T steps; its layers ran {counts} steps")
    nodes = [field for states in steps.values() for state in states for field in state]
    # autograd.grad, not backward: the model's parameters' .grad stay as the caller had them
    found = iter(torch.autograd.grad(loss, nodes, allow_unused=True, materialize_grads=True))
    gradients, values = {}, {}
    for name, states in steps.items():
        State = type(states[0])
        per_step = [State(*(next(found) for _ in state)) for state in states]
        gradients[name] = State(*(torch.stack(f, dim=1) for f in zip(*per_step)))  # each (B, T, H)
        values[name] = State(*(torch.stack(f, dim=1).detach() for f in zip(*states)))  # each (B, T, H)
    return gradients, values


def gradient_through_time(core, inputs: Tensor, loss_of_last: Callable[[Tensor], Tensor]) -> list[Tensor]:
    """∂L/∂h_t for every layer and step, where L = loss_of_last(the core's output at the last step).

    inputs (B, T, D); returns one (B, T, H) tensor per layer (per direction), bottom first."""
    diagnosis = Diagnosis(core, core, lambda: loss_of_last(core(inputs)[0][:, -1]), "the last step")
    return [gradient.h for gradient in state_gradients(diagnosis)[0].values()]


def gradient_norms(gradients: list[Tensor]) -> Tensor:
    """(L, T): ‖∂L/∂h_t‖ per layer and step, averaged over the batch."""
    return torch.stack([g.norm(dim=-1).mean(dim=0) for g in gradients])  # (L, T)


def recurrent_matrices(cell: Cell) -> dict[str, Tensor]:
    """The H×H matrices that multiply h_{t-1}, one per gate, named as in the cell's equations."""
    H = cell.hidden_size
    if isinstance(cell, LSTMCell):
        return {f"U_{gate}": cell.U[k * H : (k + 1) * H] for k, gate in enumerate("ifgo")}
    if isinstance(cell, GRUCell):
        return {f"U_{gate}": cell.U[k * H : (k + 1) * H] for k, gate in enumerate("rzn")}
    if isinstance(cell, RNNCell):
        return {"U": cell.U}
    if isinstance(cell, MUTCell):  # W_hz, W_hr, W_hh multiply h_{t-1}; W_x* may be H×H too when D = H
        return {name: p for name, p in cell.named_parameters() if name.startswith("W_h")}
    return {name: p for name, p in cell.named_parameters() if p.shape == (H, H)}  # a user's cell: its H×H matrices


def spectral_radius(matrix: Tensor) -> float:
    """max |λ| over the eigenvalues of a square matrix."""
    return float(torch.linalg.eigvals(matrix.detach().double()).abs().max())


def spectra(core, top: int = 3) -> dict[str, dict]:
    """For every layer's recurrent matrices: spectral radius and the largest singular values."""
    report = {}
    for layer, cell in named_cells(core):
        for name, matrix in recurrent_matrices(cell).items():
            singular = torch.linalg.svdvals(matrix.detach().double())[:top]
            report[f"{layer}.{name}"] = {
                "spectral_radius": spectral_radius(matrix),
                "singular_values": singular.tolist(),
            }
    return report


@torch.no_grad()
def hidden_norms(core, inputs: Tensor) -> Tensor:
    """(L, T): ‖h_t‖ per layer (per direction) and step, averaged over the batch (the rectifier blow-up shows here)."""
    with recording(core) as steps:
        core(inputs)
    return torch.stack(
        [torch.stack([state.h for state in states], dim=1).norm(dim=-1).mean(dim=0) for states in steps.values()]
    )


# --- the notes' toy: the vanilla RNN with U = r · Q ------------------------------------------------------------------

GAMMA = {"tanh": 1.0, "sigmoid": 0.25}  # γ = max |g'|: below ρ(U) < 1/γ the gradient must vanish


def orthogonal(size: int, generator: torch.Generator, dtype=torch.float64) -> Tensor:
    """A random orthogonal matrix (size, size), Haar-distributed: Q of the QR of a Gaussian matrix, the signs of R's
    diagonal moved into Q. Every eigenvalue has |λ| = 1, so ρ(r · Q) = ‖r · Q‖ = r."""
    Q, R = torch.linalg.qr(torch.randn(size, size, generator=generator, dtype=dtype))
    return Q * torch.sign(torch.diagonal(R))  # (H, H)


def jacobian_norms(cell: Cell, inputs: Tensor) -> tuple[Tensor, Tensor]:
    """For one sequence inputs (1, T, D) read from the zero state: ‖∂h_T/∂h_t‖ (the Jacobian's spectral norm, 1 at
    t = T) and ‖h_t‖, each (T,)."""
    layer = Recurrent(cell)
    with recording(layer) as steps:
        layer(inputs)
    hidden = [state.h for state in steps["layer0"]]  # each (1, H)
    H = cell.hidden_size
    rows = torch.eye(H, dtype=inputs.dtype)[:, None, :]  # (H, 1, H): one backward pass per unit j of h_T, batched
    jacobians = torch.autograd.grad(  # each (H, 1, H): row j is ∂h_T[j]/∂h_t
        hidden[-1], hidden, rows, is_grads_batched=True, allow_unused=True, materialize_grads=True
    )
    norms = torch.stack([torch.linalg.matrix_norm(J[:, 0], ord=2) for J in jacobians])  # (T,)
    return norms.detach(), torch.cat(hidden).norm(dim=-1).detach()  # (T,), (T,)


def radius_toy(
    radii: list[float], seq_len: int = 50, hidden_size: int = 32, input_size: int = 8, seed: int = 0
) -> dict[float, dict]:
    """The notes' toy: for each r, the vanilla tanh RNN with U = r · Q, Q one seeded random orthogonal matrix
    (ρ(U) = r), every other weight the same (the cell's initialisation from `seed`), reading the same N(0, 1) inputs.
    {r: {"spectral_radius": ρ(U) as measured, "jacobian_norm": ‖∂h_T/∂h_t‖ (T,), "hidden_norm": ‖h_t‖ (T,)}}, in
    float64 so that r^T stays representable far longer."""
    generator = torch.Generator().manual_seed(seed)
    Q = orthogonal(hidden_size, generator)  # (H, H)
    inputs = torch.randn(1, seq_len, input_size, generator=generator, dtype=torch.float64)  # (1, T, D)
    measured = {}
    for radius in radii:
        cell = RNNCell(input_size, hidden_size, nonlinearity="tanh", dtype=torch.float64)
        cell.reset_parameters(torch.Generator().manual_seed(seed))  # the same W and b for every r
        with torch.no_grad():
            cell.U.copy_(radius * Q)
        jacobian, hidden = jacobian_norms(cell, inputs)
        measured[radius] = {
            "spectral_radius": spectral_radius(cell.U),
            "jacobian_norm": jacobian.tolist(),
            "hidden_norm": hidden.tolist(),
        }
    return measured


def vanishing_certain(radius: float, nonlinearity: str = "tanh") -> bool:
    """The notes' sufficient condition: ρ(U) < 1/γ (for U = r · Q, ρ = ‖U‖) makes the gradient vanish."""
    return radius < 1.0 / GAMMA[nonlinearity]


# --- windows of a text ----------------------------------------------------------------------------------------------


def windows(ids: Tensor, length: int, what: str, unit: str, batch_size: int = 8) -> Tensor:
    """batch_size windows of `length` rows of ids (N, ...), spread evenly from the text's start to its end, none
    overlapping: (B, length, ...)."""
    if len(ids) < batch_size * length:
        raise RnnkitError(
            f"{what} has {len(ids)} {unit}; diagnose needs {batch_size} windows of {length}: "
            f"{batch_size * length} (a longer text or a shorter seq_len)"
        )
    starts = torch.linspace(0, len(ids) - length, batch_size).long()  # (B,)
    return torch.stack([ids[s : s + length] for s in starts.tolist()])  # (B, length, ...)


def next_token_diagnosis(model: nn.Module, ids: Tensor, seq_len: int, what: str = "text", batch_size: int = 8):
    """A language model (embedding -> core -> readout) on a text's ids (N,): windows of seq_len tokens, the loss of
    the token after each."""
    chunk = windows(ids, seq_len + 1, what, "tokens", batch_size)  # (B, T + 1)
    inputs, last_target = chunk[:, :-1], chunk[:, -1]  # (B, T), (B,)
    x = model.embedding(inputs).detach()  # (B, T, E)
    return Diagnosis(
        model,
        model.core,
        lambda: F.cross_entropy(model.readout(model.core(x)[0][:, -1]), last_target),
        "the next token",
    )


def clipping_statistics(records: list[dict]) -> dict:
    """From a run's metrics: how often clipping fired, and the pre-clip gradient norm's spread."""
    norms = torch.tensor([r["grad_norm"] for r in records if r.get("grad_norm") is not None], dtype=torch.float64)
    if len(norms) == 0:
        return {}
    quantiles = torch.quantile(norms, torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64)).tolist()
    return {
        "steps": len(norms),
        "clipped_fraction": sum(bool(r.get("clipped")) for r in records) / len(records),
        "grad_norm_median": quantiles[0],
        "grad_norm_p90": quantiles[1],
        "grad_norm_p99": quantiles[2],
        "grad_norm_max": float(norms.max()),
    }
