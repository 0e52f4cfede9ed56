"""The regularisers of AWD-LSTM (Merity, Keskar & Socher 2017, "Regularizing and Optimizing LSTM
Language Models"), each a small function or module with its own tests:

    locked_dropout               variational dropout (Gal & Ghahramani 2016): one mask per sequence,
                                 the same at every step, on inputs, between layers and on outputs
    embedding_dropout            drop whole words: rows of the embedding table, one mask per batch
    word_dropout                 drop word occurrences: each input step's vector zeroed (Bowman et al. 2016;
                                 Iyyer et al. 2015), so the model cannot lean on any one word
    unknown_dropout              read word occurrences as <unk> (Kiperwasser & Goldberg 2016), so the
                                 unknown-word vector is trained on words whose meaning the model knows
    WeightDrop                   DropConnect on the recurrent weights U (Wan et al. 2013): a new mask per
                                 forward, and the fast kernels run on the masked weight
    activation_regularization    AR:  α · mean(m ⊙ h_t)²       large activations cost
    temporal_activation_...      TAR: β · mean(h_t − h_{t−1})²  fast-changing activations cost

Every mask is drawn from torch's RNG (training saves and restores it, so a resumed run draws the same
masks), and every one is the identity in eval mode.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import RnnkitError


def locked_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """x (B, T, D) with one Bernoulli(1 − p) mask per row (B, 1, D), scaled by 1/(1 − p), reused at every step."""
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1.0 - p) / (1.0 - p)  # (B, 1, D)
    return x * mask  # (B, T, D): the same units dropped at every step


class LockedDropout(nn.Module):
    """locked_dropout as a module, for models built from parts."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, D) -> x with one mask per sequence in training mode, x itself in eval mode."""
        return locked_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def embedding_dropout(embedding: nn.Embedding, ids: Tensor, p: float, training: bool) -> Tensor:
    """Look ids up in a copy of the table whose rows are dropped with probability p (whole words, every
    occurrence in the batch) and the kept rows scaled by 1/(1 − p)."""
    weight = embedding.weight  # (V, E)
    if training and p > 0.0:
        mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1.0 - p) / (1.0 - p)  # (V, 1)
        weight = weight * mask  # (V, E)
    return F.embedding(ids, weight, embedding.padding_idx)  # (B, T, E)


def word_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """x (B, T, E) with each step's whole vector replaced by zeros with probability p, in training only. Kept
    vectors are not rescaled: a dropped word is read as nothing, not as a weaker word."""
    if not training or p == 0.0:
        return x
    return x * (torch.rand(x.shape[:2], device=x.device) >= p).unsqueeze(-1)  # (B, T, E)


def unknown_dropout(ids: Tensor, p: float, unk_id: int, training: bool) -> Tensor:
    """ids (B, T) with each replaced by `unk_id` with probability p, in training only. Without it a vocabulary
    of every training word never trains <unk>, and each unseen word is read as an untrained vector."""
    if not training or p == 0.0:
        return ids
    return ids.masked_fill(torch.rand(ids.shape, device=ids.device) < p, unk_id)  # (B, T)


def recurrent_weight_names(cell: nn.Module) -> tuple[str, ...]:
    """The weights that multiply h_{t-1}: U for the stacked-gate cells, W_h* for MUT1-3."""
    names = tuple(name for name, _ in cell.named_parameters(recurse=False) if name == "U" or name.startswith("W_h"))
    if not names:
        raise RnnkitError(f"weight drop: {type(cell).__name__} has no recurrent weight (U or W_h*) to drop")
    return names


class WeightDrop(nn.Module):
    """DropConnect on a Recurrent layer's recurrent weights: each training forward runs the layer with
    U (MUT1-3: each W_h*) replaced by dropout(U), one mask for all T steps and all B rows.

    The raw parameters stay where they were and are never deleted, renamed or patched:
    torch.func.functional_call runs the layer with the masked tensors in their place for this one call, so
    the gradient flows through the mask into U, and whichever path the layer takes (torch's fused kernel,
    the compiled loop, the reference loop) reads the masked weight. The cell is this module's only child,
    so the state_dict keys are a plain layer's (`cell.U`): a model with and without weight drop share them.
    """

    def __init__(self, layer: nn.Module, p: float):
        super().__init__()
        self.cell, self.p = layer.cell, p  # the cell registered here: keys as a plain Recurrent's
        self.names = recurrent_weight_names(layer.cell)
        self.output_size = layer.output_size
        object.__setattr__(self, "layer", layer)  # not a child: its parameters are the cell's, registered above

    def init_state(self, batch_size: int):
        return self.layer.init_state(batch_size)

    def step(self, x: Tensor, state=None):
        """One time step in evaluation, where no weight is dropped (Recurrent.step); training runs forward."""
        if self.training:
            raise RnnkitError("WeightDrop.step is for evaluation: in training, run forward on the whole chunk")
        return self.layer.step(x, state)

    def forward(self, inputs: Tensor, state=None, lengths: Tensor | None = None, return_states: bool = False):
        """The wrapped layer's call, on dropout(U) in training mode (a new mask per call), on U in eval mode."""
        if not self.training or self.p == 0.0:
            return self.layer(inputs, state, lengths, return_states)
        dropped = {
            f"cell.{name}": F.dropout(getattr(self.cell, name), self.p, True) for name in self.names
        }  # each (4H, H) for an LSTM
        return torch.func.functional_call(self.layer, dropped, (inputs, state, lengths, return_states))

    def extra_repr(self) -> str:
        return f"p={self.p}, weights={self.names}, implementation={self.layer.implementation!r}"


def activation_regularization(outputs: Tensor, alpha: float) -> Tensor:
    """AR: α · mean(h²) over the (dropped-out) outputs of the last layer, (B, T, H) -> a scalar."""
    return alpha * outputs.pow(2).mean()


def temporal_activation_regularization(outputs: Tensor, beta: float) -> Tensor:
    """TAR: β · mean((h_t − h_{t−1})²) over the raw outputs of the last layer, (B, T, H) -> a scalar."""
    if outputs.shape[1] < 2:
        return outputs.new_zeros(())
    return beta * (outputs[:, 1:] - outputs[:, :-1]).pow(2).mean()
