"""RNN, LSTM, GRU: drop-in replacements for torch.nn.RNN/LSTM/GRU, built from rnnkit's parts.

Same constructor arguments, same input/output/state shapes and layouts (time-first unless
batch_first=True; state (L·directions, B, H); PackedSequence and unbatched inputs too), and the same
state_dict keys, so

    ours = rnnkit.LSTM(32, 64, num_layers=2, bidirectional=True)
    ours.load_state_dict(torch.nn.LSTM(32, 64, num_layers=2, bidirectional=True).state_dict())

gives torch's outputs and gradients. Inside, each facade is Stacked([Bidirectional(Recurrent(cell),
Recurrent(cell)) or Recurrent(cell), ...]): torch's key `weight_ih_l1_reverse` is our
`stack.layers.1.backward_rnn.cell.W`. The facade renames keys (and flips the GRU's z rows, whose sign
convention differs, see GRUCell) whenever a state_dict is saved or loaded.

      x ─► layer 0 ─► dropout ─► layer 1 ─► ... ─► outputs
           (fwd ▸, bwd ◂)                              state: (L·directions, B, H) ◄─► [layer][direction]
"""

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnkit.cells import GRUCell, LSTMCell, LSTMState, RNNCell, RNNState
from rnnkit.errors import RnnkitError, check_shape, format_shape
from rnnkit.recurrent import Recurrent, stack_layers

TORCH_SUFFIXES = {"W": "weight_ih", "U": "weight_hh", "b": "bias_ih", "b_U": "bias_hh"}


class TorchCompatibleRNN(nn.Module):
    """The shared body of RNN, LSTM and GRU; `make_cell(input_size)` builds one direction's cell."""

    State = RNNState

    def __init__(
        self,
        make_cell: Callable[[int], nn.Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
    ):
        super().__init__()
        if num_layers < 1:
            raise RnnkitError(f"{type(self).__name__}: num_layers must be at least 1, got {num_layers}")
        if proj_size:
            raise RnnkitError(f"{type(self).__name__}: proj_size is not supported (got {proj_size})")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        self.num_directions = 2 if bidirectional else 1
        self.stack = stack_layers(
            lambda index, size: Recurrent(make_cell(size)), input_size, num_layers, bidirectional, dropout
        )
        self.register_state_dict_post_hook(_save_in_torch_layout)
        self.register_load_state_dict_pre_hook(_load_from_torch_layout)

    # --- torch's names <-> ours ---------------------------------------------------------------
    def torch_names(self) -> dict[str, str]:
        """torch's parameter name -> ours, e.g. 'weight_hh_l1_reverse' -> 'stack.layers.1.backward_rnn.cell.U'."""
        names = {}
        for layer in range(self.num_layers):
            directions = {"": "forward_rnn.", "_reverse": "backward_rnn."} if self.bidirectional else {"": ""}
            for suffix, path in directions.items():
                for ours, theirs in TORCH_SUFFIXES.items():
                    if ours.startswith("b") and not self.bias:
                        continue
                    names[f"{theirs}_l{layer}{suffix}"] = f"stack.layers.{layer}.{path}cell.{ours}"
        return names

    def convert_to_torch(self, name: str, tensor: Tensor) -> Tensor:
        """A tensor laid out as our parameter `name` -> as torch's (identity except the GRU's z rows)."""
        return tensor

    convert_from_torch = convert_to_torch  # both directions are the same map (an involution)

    def to_torch_layout(self, tensors: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Our-named tensors (parameters, or their gradients) -> torch-named, torch-laid-out tensors."""
        return {theirs: self.convert_to_torch(ours, tensors[ours]) for theirs, ours in self.torch_names().items()}

    def flatten_parameters(self) -> None:
        """torch.nn.RNNBase API; our parameters need no flattening, so this does nothing."""

    # --- forward ------------------------------------------------------------------------------
    def forward(self, input: Tensor | PackedSequence, hx=None):
        name = type(self).__name__
        lengths = packed = None
        batched = True
        if isinstance(input, PackedSequence):
            packed = input
            input, lengths = pad_packed_sequence(input, batch_first=True)  # (B, T, D)
        elif input.dim() in (2, 3):
            check_shape(f"{name} input", input, (None,) * (input.dim() - 1) + (self.input_size,))
            batched = input.dim() == 3
            if not batched:  # unbatched (T, D), as torch allows
                input = input.unsqueeze(0 if self.batch_first else 1)
            input = input if self.batch_first else input.transpose(0, 1)  # (B, T, D)
        else:
            layout = "(B, T, D)" if self.batch_first else "(T, B, D)"
            raise RnnkitError(
                f"{name}: expected input of shape {layout} or unbatched (T, D), got {format_shape(input.shape)}"
            )
        check_shape(f"{name} input", input, (None, None, self.input_size))

        outputs, final = self.stack(input, self._nested_state(hx, input.shape[0], batched), lengths)
        flat = self._flat_state(final)
        if packed is not None:
            outputs = pack_padded_sequence(
                outputs, lengths, batch_first=True, enforce_sorted=packed.sorted_indices is None
            )
        elif not self.batch_first:
            outputs = outputs.transpose(0, 1)  # (T, B, H·directions)
        if not batched:
            outputs = outputs.squeeze(0 if self.batch_first else 1)  # (T, H·directions)
            flat = self.State(*(h.squeeze(1) for h in flat))  # each (L·directions, H)
        return outputs, (tuple(flat) if self.State is LSTMState else flat.h)

    def _nested_state(self, hx, batch_size: int, batched: bool):
        """torch's (L·directions, B, H) state -> Stacked's [layer] -> state or (forward, backward)."""
        if hx is None:
            return None
        fields = tuple(hx) if self.State is LSTMState else (hx,)
        if len(fields) != len(self.State._fields):
            raise RnnkitError(
                f"{type(self).__name__}: expected a state of {len(self.State._fields)} tensors, got {len(fields)}"
            )
        expected = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        if not batched:
            expected = (expected[0], expected[2])
        for field_name, field in zip(self.State._fields, fields):
            check_shape(f"{type(self).__name__} initial state {field_name}", field, expected)
        fields = [field if batched else field.unsqueeze(1) for field in fields]  # each (L·directions, B, H)
        per_slot = [self.State(*(field[k] for field in fields)) for k in range(expected[0])]  # each field (B, H)
        if self.bidirectional:
            return [(per_slot[2 * layer], per_slot[2 * layer + 1]) for layer in range(self.num_layers)]
        return per_slot

    def _flat_state(self, final: list):
        """Stacked's final state -> torch's layout, each field (L·directions, B, H)."""
        slots = [s for layer in final for s in (layer if self.bidirectional else (layer,))]
        return self.State(*(torch.stack(field) for field in zip(*slots)))


def _save_in_torch_layout(module: TorchCompatibleRNN, state_dict: dict, prefix: str, local_metadata) -> None:
    for theirs, ours in module.torch_names().items():
        state_dict[prefix + theirs] = module.convert_to_torch(ours, state_dict.pop(prefix + ours))


def _load_from_torch_layout(module: TorchCompatibleRNN, state_dict: dict, prefix: str, *args) -> None:
    for theirs, ours in module.torch_names().items():
        if prefix + theirs in state_dict:
            state_dict[prefix + ours] = module.convert_from_torch(ours, state_dict.pop(prefix + theirs))


class RNN(TorchCompatibleRNN):
    """torch.nn.RNN's drop-in: stacked RNNCells, nonlinearity 'tanh' or 'relu' (or rnnkit's identity, sigmoid)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        self.nonlinearity = nonlinearity

        def make_cell(layer_input: int) -> RNNCell:
            return RNNCell(layer_input, hidden_size, nonlinearity, bias, device=device, dtype=dtype)

        super().__init__(make_cell, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)


class LSTM(TorchCompatibleRNN):
    """torch.nn.LSTM's drop-in: stacked LSTMCells; state (h_0, c_0)."""

    State = LSTMState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        def make_cell(layer_input: int) -> LSTMCell:
            return LSTMCell(layer_input, hidden_size, bias, device=device, dtype=dtype)

        super().__init__(
            make_cell, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size
        )


class GRU(TorchCompatibleRNN):
    """torch.nn.GRU's drop-in: stacked reset-after GRUCells (torch's form).

    Our GRUCell writes h_t = (1 − z) ⊙ h_{t-1} + z ⊙ h̃_t; torch swaps z and 1 − z, so the z rows
    (the second third) of every weight and bias are negated on the way in and out of a state_dict.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
    ):
        def make_cell(layer_input: int) -> GRUCell:
            return GRUCell(layer_input, hidden_size, bias, reset_after=True, device=device, dtype=dtype)

        super().__init__(make_cell, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)

    def convert_to_torch(self, name: str, tensor: Tensor) -> Tensor:
        H = self.hidden_size
        return torch.cat([tensor[:H], -tensor[H : 2 * H], tensor[2 * H :]])

    convert_from_torch = convert_to_torch
