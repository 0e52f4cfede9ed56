"""Captioner: one image in, a sentence out (the notes' one-to-many).

    image (B, Y, X) --CNN--> v (B, F)                                   or precomputed features (B, F_in) --linear--> v
    step t    h_t = g(W_xh x_t + W_hh h_{t-1} + W_ih v·[t = 0] + b)     x_0 = E <s>, x_t = E y_{t-1}
              p(y_t | y_<t, v) = softmax(V h_t)                          until it writes </s>

The image enters as the notes write it, through an extra term W_ih·v in the first step's pre-activation
(`inject="every"` adds it at every step). With `attention` the decoder also looks back at the CNN's map
(Xu et al. 2015, "Show, Attend and Tell"), one location's features per place on a coarse grid, each knowing
where it is:

    step t    s_t = cells([x_t; v_t; h̃_{t-1}], s_{t-1})
              c_t = Σ_j a_tj m_j,  a_t = softmax(score(s_t, m_j))       over the map's locations j
              h̃_t = tanh(W_c [c_t; s_t]),   p(y_t | y_<t, v) = softmax(V h̃_t)

(rnnkit.models.attention, as the translator's decoder). Written as a layer over [x_t; v_t] with v_t = v at t = 0 and 0
after, W = [W_xh W_ih] is one matrix and the whole caption is one call of the recurrent core under teacher
forcing, on the fast paths of any cell (for the vanilla RNN, the equation above exactly; for an LSTM or GRU
the same term enters every gate's pre-activation). Decoding steps the same cells one token at a time through
rnnkit.decoding (greedy or beam search).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.decoding import best, sequences
from rnnkit.errors import RnnkitError
from rnnkit.models.attention import Attention, DecoderState, Memory
from rnnkit.models.core import make_core, reset_weights
from rnnkit.models.vision import FeatureEncoder, ImageEncoder
from rnnkit.regularization import word_dropout


class Captioner(nn.Module):
    """forward(images, captions_in, lengths) -> logits (B, T, V); captions_in starts with <s>."""

    def __init__(self, config, vocab_size: int, image_size: int, padding_id: int, start_id: int, end_id: int):
        super().__init__()
        self.config, self.padding_id, self.start_id, self.end_id = config, padding_id, start_id, end_id
        if config.image_features and config.attention != "none":
            raise RnnkitError(
                "--model.attention needs the CNN's map of each image; "
                "precomputed features (--model.image_features) are one vector"
            )
        self.encoder = (
            FeatureEncoder(config.image_features, config.feature_size)
            if config.image_features
            else ImageEncoder(image_size, config.feature_size, config.channels, config.context_layers)
        )
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=padding_id)  # E
        H = config.hidden_size
        self.attention = (
            None
            if config.attention == "none"
            else Attention(config.attention, H, self.encoder.map_size, config.attention_size)
        )
        self.feed_size = H if self.attention is not None and config.input_feeding else 0
        self.core = make_core(
            config, config.embedding_size + config.feature_size + self.feed_size
        )  # reads [x_t; v_t; h̃_{t-1}]
        self.combine = (
            nn.Linear(self.encoder.map_size + H, H, bias=False) if self.attention is not None else None
        )  # W_c
        self.head = nn.Linear(self.core.output_size, vocab_size)  # V

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight from `generator` alone: embeddings N(0, 1) (padding row 0), convolutions He-normal, linear
        maps U(±1/√fan_in), biases 0, the cells their own way."""
        nn.init.normal_(self.embedding.weight, generator=generator)
        with torch.no_grad():
            self.embedding.weight[self.padding_id].zero_()
        reset_weights(self, generator)

    def image_terms(self, v: Tensor, steps: int) -> Tensor:
        """v (B, F) -> v_t (B, T, F): v at t = 0 and zeros after, or v at every step."""
        if self.config.inject == "every":
            return v[:, None].expand(-1, steps, -1)  # (B, T, F)
        return torch.cat([v[:, None], v.new_zeros(v.shape[0], steps - 1, v.shape[1])], dim=1)  # (B, T, F)

    def look(self, images: Tensor) -> tuple[Tensor, Memory | None]:
        """images (B, Y, X), or feature vectors (B, F_in) -> v (B, F) and, with attention, the map as the
        decoder's memory."""
        v, grid = self.encoder(images)  # (B, F), (B, P, C_m)
        if self.attention is None:
            return v, None
        return v, Memory(
            grid, self.attention.keys(grid), torch.ones(grid.shape[:2], dtype=torch.bool, device=grid.device)
        )

    def forward(self, images: Tensor, captions_in: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.read(*self.look(images), captions_in, lengths)  # (B, T, V)

    def read(self, v: Tensor, memory: Memory | None, captions_in: Tensor, lengths: Tensor | None = None) -> Tensor:
        """forward's caption RNN over the image vectors v (B, F) (and the maps, with attention)."""
        x = F.dropout(self.embedding(captions_in), self.config.dropout, self.training)  # (B, T, E)
        x = word_dropout(
            x, self.config.word_dropout, self.training
        )  # whole input words dropped: the next word must come from the image
        x = torch.cat([x, self.image_terms(v, captions_in.shape[1])], dim=-1)  # (B, T, E + F)
        if self.attention is None:
            outputs, _ = self.core(x, None, lengths)  # (B, T, H): one call, on the core's fast paths
        else:  # step by step: each step's input holds the last step's attentional vector
            state, steps = self.first_state(x.shape[0]), []
            for t in range(x.shape[1]):
                out, state, _ = self.attend(x[:, t], state, memory)  # (B, H)
                steps.append(out)
            outputs = torch.stack(steps, dim=1)  # (B, T, H)
        return self.head(F.dropout(outputs, self.config.dropout, self.training))  # (B, T, V)

    def first_state(self, batch_size: int) -> DecoderState:
        feed = self.head.weight.new_zeros(batch_size, self.feed_size)  # (B, H) or (B, 0)
        return DecoderState([layer.cell.init_state(batch_size) for layer in self.core.layers], feed)

    def attend(
        self, x: Tensor, state: DecoderState, memory: Memory | None
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One step of the caption RNN on x_t = [E y_{t-1}; v_t] (N, E + F) -> (its output (N, H), state,
        weights (N, P))."""
        x = torch.cat([x, state.feed], dim=-1)  # (N, E + F + H): input feeding (nothing without attention or feeding)
        below, layers = [x], []  # the core's input, then each layer's output: what its skip connections read
        for k, layer in enumerate(self.core.layers):
            read = self.core.reads(k, below)  # (N, D_k)
            s = layer.cell.one_step(F.dropout(read, self.config.dropout, self.training) if k else read, state.layers[k])
            layers.append(s)
            below.append(self.core.joins(k, read, s.h))  # (N, H)
        x = below[-1]  # (N, H)
        if self.attention is None:
            return x, DecoderState(layers, state.feed), None
        context, weights = self.attention(x, memory.keys, memory.outputs, memory.mask)  # (N, C_m), (N, P)
        x = torch.tanh(self.combine(torch.cat([context, x], dim=-1)))  # (N, H): h̃_t
        return x, DecoderState(layers, x if self.feed_size else state.feed), weights

    def step_function(self, v: Tensor, memory: Memory | None):
        """rnnkit.decoding's step(previous, state, t) -> (log-probabilities, state) for images whose features
        are v (N, F)."""

        def step(previous: Tensor, state, t: int):
            state = self.first_state(previous.shape[0]) if state is None else state
            image = v if t == 0 or self.config.inject == "every" else torch.zeros_like(v)
            out, state, _ = self.attend(torch.cat([self.embedding(previous), image], dim=-1), state, memory)  # (N, H)
            return self.head(out).log_softmax(-1), state  # (N, V)

        return step

    @torch.no_grad()
    def caption(self, images: Tensor, beam_width: int = 1, max_length: int = 20) -> list[list[int]]:
        """Each image's caption ids, the end token left off: greedy or beam search, at most max_length tokens."""
        return self.caption_features(*self.look(images), beam_width, max_length)

    @torch.no_grad()
    def caption_features(
        self, v: Tensor, memory: Memory | None, beam_width: int = 1, max_length: int = 20
    ) -> list[list[int]]:
        """caption for image vectors v (B, F) (and maps) already computed."""
        start = torch.full((v.shape[0],), self.start_id, dtype=torch.long, device=v.device)  # (B,)
        step_over = lambda image: self.step_function(*image)  # noqa: E731  each hypothesis sees its image
        found = best(step_over, (v, memory), None, start, beam_width, max_length, self.end_id, pad_id=self.padding_id)
        return sequences(found, self.end_id)
