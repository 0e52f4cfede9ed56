"""The inside view, part 1: gradients through time, spectra of the recurrent matrices, hidden-state norms.

The notes' analysis of h_t = g(a_t), a_t = U h_{t-1} + W x_t + b: a loss at step l reaches step t < l as

    ∂L/∂h_t = (∂h_l/∂h_t)ᵀ ∂L/∂h_l,    ∂h_l/∂h_t = Π_{k=t+1..l} diag(g'(a_k)) U

so its norm shrinks or grows roughly like ρ(U)^(l−t) (vanishing or exploding gradients). For a linear
RNN (g = identity) the product is exactly U^(l−t). Gates with additive updates (the LSTM's c_t) let the
gradient through where the vanilla RNN's vanishes. These functions measure all of that on a real model.

gradient_through_time runs its own loop over each layer's cell, because it needs every h_t as a node of
the graph (to read ∂L/∂h_t); Recurrent's loop stays the one that trains.
"""

from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.cells import Cell, GRUCell, LSTMCell, MUTCell, RNNCell
from rnnkit.errors import RnnkitError
from rnnkit.recurrent import Bidirectional, Recurrent, Stacked, time_loop


def layer_cells(core) -> list[Cell]:
    """The cells of a Recurrent or a Stacked of Recurrent layers (one direction each)."""
    layers = [
        getattr(layer, "layer", layer) for layer in (core.layers if isinstance(core, Stacked) else [core])
    ]  # WeightDrop's layer
    if not all(isinstance(layer, Recurrent) for layer in layers):
        raise RnnkitError("gradient through time needs unidirectional Recurrent layers")
    return [layer.cell for layer in layers]


def named_cells(core) -> list[tuple[str, Cell]]:
    """Every cell of a core, bidirectional ones included: layer0, or layer0.forward and layer0.backward."""
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
            named.append((f"layer{index}{'.' + direction if direction else ''}", recurrent.cell))
    return named


def gradient_through_time(core, inputs: Tensor, loss_of_last: Callable[[Tensor], Tensor]) -> list[Tensor]:
    """∂L/∂h_t for every layer and step, where L = loss_of_last(top layer's h_T).

    inputs (B, T, D); returns one (B, T, H) tensor per layer, bottom first. Dropout between layers is
    not applied (this measures the network, not a random mask).
    """
    x, hidden = inputs, []
    for cell in layer_cells(core):
        state, steps = cell.init_state(x.shape[0]), []
        for x_t in x.unbind(1):
            state = cell(x_t, state)
            steps.append(state.h)  # h_t: an inner node of the graph, differentiated below
        hidden.append(steps)
        x = torch.stack(steps, dim=1)  # (B, T, H): the next layer's input
    loss = loss_of_last(hidden[-1][-1])
    # autograd.grad, not backward: the model's parameters' .grad stay as the caller had them
    gradients = torch.autograd.grad(
        loss, [h for steps in hidden for h in steps], allow_unused=True, materialize_grads=True
    )
    T = inputs.shape[1]
    return [torch.stack(gradients[k * T : (k + 1) * T], dim=1) for k in range(len(hidden))]  # each (B, T, H)


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
    """(L, T): ‖h_t‖ per layer and step, averaged over the batch (the rectifier blow-up shows here)."""
    x, norms = inputs, []
    for cell in layer_cells(core):
        x, _ = time_loop(
            cell, x, cell.init_state(x.shape[0]), None
        )  # (B, T, H); the plain loop: one call is not worth compiling
        norms.append(x.norm(dim=-1).mean(dim=0))
    return torch.stack(norms)


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
