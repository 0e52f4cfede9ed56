"""Sequence to sequence with attention: one RNN reads the source, a second writes the target one token at a
time, each output fed back as the next input, until it writes the end token (the notes' many-to-many with
|x| ≠ |y|).

    source (B, S) --embedding--> encoder (stacked, bidirectional) --> memory m (B, S, H_e), final state
    bridge     s_0 = tanh(W_b [h→_S; h←_1] + b_b)          the decoder's first state, from the encoder's last
    step t     x_t = [E y_{t-1}; h̃_{t-1}]                   input feeding: last step's attentional vector
               s_t = decoder cells (x_t, s_{t-1})          stacked, any cell
               a_t = softmax(score(s_t, m_j)) over the valid source positions j (exactly 0 at padding)
               c_t = Σ_j a_tj m_j                           the context
               h̃_t = tanh(W_c [c_t; s_t])                   the attentional vector
               p(y_t | y_<t, x) = softmax(V h̃_t)

score is additive vᵀ tanh(W_q s + W_k m) (Bahdanau et al. 2015), or multiplicative sᵀ m ("dot") or sᵀ W m
("general") (Luong et al. 2015); all three sit where Luong et al. place them, after the decoder's step
(OpenNMT's global attention does the same). Without attention (`attention="none"`) h̃_t = s_t and the
decoder reads E y_{t-1} alone. The encoder runs on the fast paths like every core; the decoder runs one
step at a time (its input depends on its last output), the same `step` in training and decoding.
"""

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import Cell
from rnnkit.decoding import best, sequences
from rnnkit.errors import RnnkitError
from rnnkit.kernels import compiled
from rnnkit.models.attention import Attention, DecoderState, Memory
from rnnkit.models.core import make_cell, make_core

BRIDGES = ("linear", "copy", "zeros")


class Seq2Seq(nn.Module):
    """forward(source, source_lengths, target_in) -> (logits (B, T, V), attention weights (B, T, S))."""

    def __init__(self, config, source_size: int, target_size: int, padding_id: int, start_id: int, end_id: int):
        super().__init__()
        self.config, self.padding_id, self.start_id, self.end_id = config, padding_id, start_id, end_id
        E = config.embedding_size
        self.source_embedding = nn.Embedding(source_size, E, padding_idx=padding_id)
        self.encoder = make_core(config, E, bidirectional=config.bidirectional)
        H_e = self.encoder.output_size
        self.decoder_config = replace(
            config,
            cell=config.decoder_cell or config.cell,
            hidden_size=config.decoder_size or H_e,
            num_layers=config.decoder_layers or config.num_layers,
        )
        H_d, L_d = self.decoder_config.hidden_size, self.decoder_config.num_layers
        self.attention = (
            None if config.attention == "none" else Attention(config.attention, H_d, H_e, config.attention_size)
        )
        self.feed_size = H_d if self.attention is not None and config.input_feeding else 0
        self.target_embedding = nn.Embedding(target_size, E, padding_idx=padding_id)
        self.cells = nn.ModuleList(
            make_cell(self.decoder_config, E + self.feed_size if k == 0 else H_d) for k in range(L_d)
        )
        self.combine = nn.Linear(H_e + H_d, H_d, bias=False) if self.attention is not None else None  # W_c
        self.template = [cell.init_state(1) for cell in self.cells]
        fields = sum(len(state) for state in self.template)
        self.check_bridge(config.bridge, H_e, H_d)
        self.bridge = nn.Linear(H_e, fields * H_d) if config.bridge == "linear" else None  # W_b, b_b
        self.head = nn.Linear(H_d, target_size)  # V

    def check_bridge(self, bridge: str, H_e: int, H_d: int) -> None:
        if bridge not in BRIDGES:
            raise RnnkitError(f"bridge must be one of {', '.join(BRIDGES)}, got {bridge!r}")
        config = self.config
        if bridge == "copy" and (
            config.bidirectional
            or H_e != H_d
            or config.num_layers != len(self.cells)
            or config.decoder_cell not in ("", config.cell)
        ):
            raise RnnkitError(
                "bridge=copy needs a one-directional encoder of the decoder's cell, size and layers; use bridge=linear"
            )

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight from `generator` alone: embeddings N(0, 1) (padding rows 0), linear maps U(±1/√fan_in),
        biases 0."""
        for embedding in (self.source_embedding, self.target_embedding):
            nn.init.normal_(embedding.weight, generator=generator)
            with torch.no_grad():
                embedding.weight[self.padding_id].zero_()
        for module in self.modules():
            if isinstance(module, nn.Linear):
                bound = module.in_features**-0.5
                nn.init.uniform_(module.weight, -bound, bound, generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, Cell):
                module.reset_parameters(generator)

    def encode(self, source: Tensor, lengths: Tensor | None) -> tuple[Memory, DecoderState]:
        """source (B, S), lengths (B,) (None: no padding) -> (the memory, the decoder's state at step 0)."""
        B, S = source.shape
        x = F.dropout(self.source_embedding(source), self.config.dropout, self.training)  # (B, S, E)
        outputs, finals = self.encoder(x, None, lengths)  # (B, S, H_e): 0 at padding
        if lengths is None:
            mask = torch.ones(B, S, dtype=torch.bool, device=source.device)  # (B, S)
        else:
            mask = torch.arange(S, device=source.device) < lengths.to(source.device)[:, None]  # (B, S)
        keys = self.attention.keys(outputs) if self.attention is not None else outputs
        return Memory(outputs, keys, mask), self.bridged(finals, B)

    def bridged(self, finals: list, batch_size: int) -> DecoderState:
        """The decoder's state at step 0 from the encoder's final states (one per layer)."""
        feed = self.head.weight.new_zeros(batch_size, self.feed_size)  # (B, H_d) or (B, 0)
        if self.config.bridge == "zeros":
            return DecoderState([cell.init_state(batch_size) for cell in self.cells], feed)
        if self.config.bridge == "copy":
            return DecoderState(list(finals), feed)  # s_0 = the encoder's final state, layer by layer
        top = finals[-1]
        summary = (
            torch.cat([top[0].h, top[1].h], dim=-1) if self.config.bidirectional else top.h
        )  # (B, H_e): [h→_S; h←_1]
        values = iter(torch.tanh(self.bridge(summary)).split(self.decoder_config.hidden_size, dim=-1))  # each (B, H_d)
        return DecoderState([type(template)(*(next(values) for _ in template)) for template in self.template], feed)

    def attend_path(self):
        """attend itself, or with decoder_path="compiled" attend compiled by torch.compile with dynamic shapes (other
        batch and source lengths reuse its graphs). The default is eager: at the multi30k sizes the step's time is
        its matrix products, and compiling gained about a tenth on CPU (README, Speed)."""
        if self.config.decoder_path != "compiled":
            return self.attend
        why_not = compiled.compiler_missing(self.head.weight.device.type)
        if why_not is not None:
            raise RnnkitError(f"decoder_path=compiled: {why_not}")
        return compiled.compiled_step(self, self.attend)

    def step(self, previous: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step: y_{t-1} (N,), its state, the memory (N rows) -> (logits (N, V), state, weights (N, S))."""
        attended, state, weights = self.attend_path()(previous, state, memory)  # (N, H_d)
        return self.head(F.dropout(attended, self.config.dropout, self.training)), state, weights  # (N, V)

    def attend(
        self, previous: Tensor, state: DecoderState, memory: Memory
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """The step up to the output layer: -> (h̃_t (N, H_d), state, weights (N, S))."""
        dropout = lambda x: F.dropout(x, self.config.dropout, self.training)  # noqa: E731
        x = dropout(self.target_embedding(previous))  # (N, E)
        if self.feed_size:
            x = torch.cat([x, state.feed], dim=-1)  # (N, E + H_d): input feeding
        layers = []
        for k, cell in enumerate(self.cells):
            s = cell.one_step(dropout(x) if k else x, state.layers[k])  # the cell's equations, one step
            layers.append(s)
            x = s.h  # (N, H_d)
        weights = None
        if self.attention is not None:
            context, weights = self.attention(x, memory.keys, memory.outputs, memory.mask)  # (N, H_e), (N, S)
            x = torch.tanh(self.combine(torch.cat([context, x], dim=-1)))  # (N, H_d): h̃_t
        return x, DecoderState(layers, x if self.feed_size else state.feed), weights

    def forward(
        self, source: Tensor, lengths: Tensor, target_in: Tensor, teacher_forcing: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: the decoder reads the gold y_{t-1} (target_in (B, T), <s> first), or with
        teacher_forcing < 1 in training its own most probable token that often. -> logits (B, T, V),
        weights (B, T, S)."""
        return self.read(*self.encode(source, lengths), target_in, teacher_forcing)

    def read(
        self, memory: Memory, state: DecoderState, target_in: Tensor, teacher_forcing: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """forward's decoder over what encode() returned."""
        B, T = target_in.shape
        own_tokens = self.training and teacher_forcing < 1.0
        attended, weights, previous = [], [], target_in[:, 0]
        attend = self.attend_path()
        for t in range(T):
            if own_tokens:  # the output layer at every step: the next input may be this step's guess
                step_logits, state, step_weights = self.step(previous, state, memory)  # (B, V)
                attended.append(step_logits)
            else:  # the output layer runs once below, on all steps together
                step_attended, state, step_weights = attend(previous, state, memory)  # (B, H_d)
                attended.append(step_attended)
            weights.append(step_weights)
            if t + 1 < T:
                previous = target_in[:, t + 1]
                if own_tokens:
                    own = torch.rand(B, device=target_in.device) >= teacher_forcing  # (B,)
                    previous = torch.where(own, step_logits.detach().argmax(-1), previous)
        stacked = torch.stack(attended, dim=1)  # (B, T, V) or (B, T, H_d)
        logits = (
            stacked if own_tokens else self.head(F.dropout(stacked, self.config.dropout, self.training))
        )  # (B, T, V)
        return logits, (torch.stack(weights, dim=1) if self.attention is not None else None)  # (B, T, V), (B, T, S)

    def step_function(self, memory: Memory):
        """rnnkit.decoding's step(previous, state, t) -> (log-probabilities, state) over this memory."""

        def step(previous: Tensor, state: DecoderState, t: int):
            logits, state, _ = self.step(previous, state, memory)
            return logits.log_softmax(-1), state  # (N, V)

        return step

    @torch.no_grad()
    def translate(
        self,
        source: Tensor,
        lengths: Tensor,
        beam_width: int = 1,
        max_ratio: float = 1.5,
        max_extra: int = 10,
        alpha: float = 0.0,
    ) -> list[list[int]]:
        """Each sentence's output ids, the end token left off: greedy (beam_width 1) or beam search, at most
        max_ratio · |x| + max_extra tokens; beam hypotheses ranked by score / GNMT length penalty (alpha)."""
        return self.translate_encoded(*self.encode(source, lengths), lengths, beam_width, max_ratio, max_extra, alpha)

    @torch.no_grad()
    def translate_encoded(
        self,
        memory: Memory,
        state: DecoderState,
        lengths: Tensor,
        beam_width: int = 1,
        max_ratio: float = 1.5,
        max_extra: int = 10,
        alpha: float = 0.0,
    ) -> list[list[int]]:
        """translate over what encode() returned."""
        device = memory.outputs.device
        limits = (lengths.to(device).double() * max_ratio).ceil().long() + max_extra  # (B,)
        start = torch.full((len(limits),), self.start_id, dtype=torch.long, device=device)  # (B,)
        found = best(  # each hypothesis reads its sentence's memory
            self.step_function,
            memory,
            state,
            start,
            beam_width,
            int(limits.max()),
            self.end_id,
            limits,
            self.padding_id,
            alpha,
        )
        return sequences(found, self.end_id)
