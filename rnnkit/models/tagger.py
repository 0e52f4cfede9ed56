"""Tagger: one label per word (the notes' many-to-many with |x| = |y|), plain or conditioned on y_{t-1}.

    words (B, T) --embedding--------------------------> (B, T, E)  \\
    chars (B, T, L) --char BiLSTM over each word-------> (B, T, 2C)  -- join, dropout --> encoder (stacked,
                                                                      bidirectional) --> e (B, T, H)
    plain        e_t --dropout--> V e_t                                         -> logits (B, T, K)
    conditioned  h_t = g(W_x e_t + W_y φ_y(y_{t-1}) + W_h h_{t-1} + b)          -> V h_t (B, T, K)

The character encoder reads each word's letters both ways and keeps both directions' last memories, so a
word never seen in training still gets a vector from its spelling (its suffix, its capital, its digits).
The conditioned tagger's recurrence is rnnkit.cells.ConditionedRNNCell, y_{-1} a start symbol: with gold
y_{t-1} (teacher forcing) every input is known in advance and the layer runs on the fast paths; with the
model's own (decoding, scheduled sampling) it runs one step at a time.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.cells import Cell, ConditionedRNNCell
from rnnkit.decoding import best
from rnnkit.models.chars import CharEncoder
from rnnkit.models.core import make_core
from rnnkit.recurrent import Recurrent
from rnnkit.regularization import unknown_dropout


class Tagger(nn.Module):
    """forward(words, lengths, chars, char_lengths, tags=None) -> logits (B, T, K).

    The conditioned tagger reads y_{t-1}: the gold `tags` (B, T) shifted right behind the start symbol K
    (teacher forcing), or with config.sampling_probability > 0 in training its own guesses that often
    (scheduled sampling). The plain tagger ignores `tags`. In training, config.word_dropout of the word
    ids become <unk> (`unk_id`), so the unknown-word vector is trained on words the model knows the tags of.
    `lowercase`: words are looked up lowercased, as training read them (data.lowercase); their letters keep case."""

    def __init__(
        self,
        num_tags: int,
        config,
        vocab_size: int,
        num_chars: int,
        padding_id: int = 0,
        char_padding_id: int = 0,
        unk_id: int | None = None,
        lowercase: bool = False,
    ):
        super().__init__()
        self.config, self.num_tags, self.unk_id, self.lowercase = config, num_tags, unk_id, lowercase
        self.embedding = nn.Embedding(vocab_size, config.embedding_size, padding_idx=padding_id)
        self.chars = (
            CharEncoder(
                num_chars, config.char_embedding_size, config.char_hidden_size, char_padding_id, config.implementation
            )
            if config.char_hidden_size
            else None
        )
        width = config.embedding_size + (self.chars.output_size if self.chars is not None else 0)
        self.core = make_core(config, width, bidirectional=config.bidirectional)
        features = self.core.output_size
        if config.conditioned:
            self.tag_embedding = nn.Embedding(
                num_tags + 1, config.tag_embedding_size
            )  # φ_y: the K tags and the start symbol
            cell = ConditionedRNNCell(features, config.tag_embedding_size, config.decoder_size, config.nonlinearity)
            self.decoder = Recurrent(cell, config.implementation)
            features = config.decoder_size
        self.head = nn.Linear(features, num_tags)  # V

    @property
    def start_id(self) -> int:
        return self.num_tags

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight from `generator` alone: embeddings N(0, 1) (padding rows 0), head U(±1/√H), bias 0."""
        embeddings = [m for m in self.modules() if isinstance(m, nn.Embedding)]
        for embedding in embeddings:
            nn.init.normal_(embedding.weight, generator=generator)
            if embedding.padding_idx is not None:
                with torch.no_grad():
                    embedding.weight[embedding.padding_idx].zero_()
        bound = self.head.in_features**-0.5
        nn.init.uniform_(self.head.weight, -bound, bound, generator=generator)
        nn.init.zeros_(self.head.bias)
        for module in self.modules():
            if isinstance(module, Cell):
                module.reset_parameters(generator)

    def encode(self, words: Tensor, lengths: Tensor, chars: Tensor, char_lengths: Tensor) -> Tensor:
        """-> e (B, T, H): what the head (or the conditioned recurrence) reads at each word, dropout applied."""
        if self.unk_id is not None:
            words = unknown_dropout(words, self.config.word_dropout, self.unk_id, self.training)  # (B, T)
        x = self.embedding(words)  # (B, T, E)
        if self.chars is not None:
            x = torch.cat([x, self.chars(chars, char_lengths)], dim=-1)  # (B, T, E + 2C)
        x = F.dropout(x, self.config.input_dropout, self.training)
        outputs, _ = self.core(x, None, lengths)  # (B, T, H): padded steps are 0
        return F.dropout(outputs, self.config.output_dropout, self.training)

    def forward(
        self, words: Tensor, lengths: Tensor, chars: Tensor, char_lengths: Tensor, tags: Tensor | None = None
    ) -> Tensor:
        return self.read(self.encode(words, lengths, chars, char_lengths), lengths, tags)  # (B, T, K)

    def read(self, encoded: Tensor, lengths: Tensor, tags: Tensor | None = None) -> Tensor:
        """e (B, T, H) -> logits (B, T, K): the head, or for the conditioned tagger the recurrence over the tags."""
        if not self.config.conditioned:
            return self.head(encoded)  # (B, T, K)
        if tags is None:
            raise ValueError("the conditioned tagger is trained on the gold tags (B, T); decode() tags without them")
        gold = tags.clamp(min=0)  # (B, T): padding (negative ids) is never read at a valid step
        if self.training and self.config.sampling_probability > 0:
            return self.sampled(encoded, gold, self.config.sampling_probability)
        previous = torch.cat([gold.new_full((gold.shape[0], 1), self.start_id), gold[:, :-1]], dim=1)  # (B, T): y_{t-1}
        inputs = torch.cat([encoded, self.tag_embedding(previous)], dim=-1)  # (B, T, H + D_y): [e_t; φ_y(y_{t-1})]
        hidden, _ = self.decoder(inputs, None, lengths)  # (B, T, H_y)
        return self.head(F.dropout(hidden, self.config.output_dropout, self.training))  # (B, T, K)

    def decoder_step(self, encoded: Tensor, previous: Tensor, state, t: int) -> tuple[Tensor, object]:
        """One step of the conditioned recurrence: e (N, T, H), y_{t-1} (N,), h_{t-1} (None at t = 0) ->
        (logits (N, K), h_t). For decoding and scheduled sampling."""
        cell = self.decoder.cell
        state = cell.init_state(encoded.shape[0]) if state is None else state
        inputs = torch.cat([encoded[:, t], self.tag_embedding(previous)], dim=-1)  # (N, H + D_y)
        state = cell.one_step(inputs, state)
        return self.head(F.dropout(state.h, self.config.output_dropout, self.training)), state  # (N, K)

    def sampled(self, encoded: Tensor, gold: Tensor, probability: float) -> Tensor:
        """Scheduled sampling (Bengio et al. 2015) at a fixed rate: step by step, each y_{t-1} the model's own
        most probable tag with `probability`, else the gold one. e (B, T, H), gold (B, T) -> logits (B, T, K)."""
        B, T = gold.shape
        previous, state, logits = torch.full((B,), self.start_id, dtype=torch.long, device=gold.device), None, []
        for t in range(T):
            step_logits, state = self.decoder_step(encoded, previous, state, t)  # (B, K)
            logits.append(step_logits)
            own = torch.rand(B, device=gold.device) < probability  # (B,)
            previous = torch.where(own, step_logits.detach().argmax(-1), gold[:, t])
        return torch.stack(logits, dim=1)  # (B, T, K)

    @torch.no_grad()
    def decode(
        self, words: Tensor, lengths: Tensor, chars: Tensor, char_lengths: Tensor, beam_width: int = 1
    ) -> Tensor:
        """The tags the model gives (B, T) (0 at padding)."""
        return self.decode_encoded(self.encode(words, lengths, chars, char_lengths), lengths, beam_width)

    @torch.no_grad()
    def decode_encoded(self, encoded: Tensor, lengths: Tensor, beam_width: int = 1) -> Tensor:
        """e (B, T, H) -> tags (B, T): per word the most probable for the plain tagger; for the conditioned
        one, its own y_{t-1} fed back, greedily (beam_width 1) or by beam search."""
        if not self.config.conditioned:
            return self.head(encoded).argmax(-1)  # (B, T)
        B, T = encoded.shape[:2]
        start = torch.full((B,), self.start_id, dtype=torch.long, device=encoded.device)  # (B,)
        # each hypothesis reads its sentence's encoding
        return best(self.step_function, encoded, None, start, beam_width, T, lengths=lengths, pad_id=0).tokens  # (B, T)

    def step_function(self, encoded: Tensor):
        """rnnkit.decoding's step(previous, state, t) -> (log-probabilities, state) over the encoder's outputs."""

        def step(previous: Tensor, state, t: int):
            logits, state = self.decoder_step(encoded, previous, state, t)
            return logits.log_softmax(-1), state  # (N, K)

        return step
