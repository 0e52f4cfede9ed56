"""The translation model's training step against the same encoder-decoder built from torch.nn, side by side.

The anchor is what a PyTorch tutorial writes: torch.nn.LSTM (bidirectional) over the source, a tanh bridge,
torch.nn.LSTMCell stepping the decoder, additive attention and input feeding written by hand in a Python
loop, one output layer over all steps. rnnkit's is `rnnkit seq2seq`'s model with the same sizes (the
multi30k-cpu preset's: embeddings 256, encoder 2×256, decoder 256, additive attention). Both train on the
same random batches of --batch pairs with source and target lengths drawn from 8-30 tokens (Multi30k's
range in BPE pieces), vocabularies of --vocab, AdamW. Rounds alternate between them, order flipped every
round. Target: rnnkit's step time / the anchor's ≤ 1.5.

    python bench/seq2seq_step.py [--rounds 7] [--json bench/results-seq2seq-step.json]
"""

import argparse
import statistics

import torch
import torch.nn.functional as F
from rounds import alternate, write_json
from torch import nn

from rnnkit.data.padded import IGNORE
from rnnkit.data.vocab import END, PAD, START, UNK, TokenVocab
from rnnkit.tasks import TASKS

seq2seq = TASKS["seq2seq"]


class TorchSeq2Seq(nn.Module):
    """The anchor, from torch.nn parts and a hand-written attention loop."""

    def __init__(self, vocab: int, E: int, H: int, D: int):
        super().__init__()
        self.source_embedding, self.target_embedding = (
            nn.Embedding(vocab, E, padding_idx=0),
            nn.Embedding(vocab, E, padding_idx=0),
        )
        self.encoder = nn.LSTM(E, H, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * H, 2 * D)
        self.cell = nn.LSTMCell(E + D, D)
        self.W_q, self.W_k, self.v = nn.Linear(D, D, bias=False), nn.Linear(2 * H, D), nn.Linear(D, 1, bias=False)
        self.combine, self.head = nn.Linear(2 * H + D, D, bias=False), nn.Linear(D, vocab)

    def forward(self, source, lengths, target_in):
        x = F.dropout(self.source_embedding(source), 0.3, self.training)  # (B, S, E)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        outputs, (h, _) = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(
            outputs, batch_first=True, total_length=source.shape[1]
        )  # (B, S, 2H)
        mask = torch.arange(source.shape[1])[None] < lengths[:, None]  # (B, S)
        s, c = torch.tanh(self.bridge(torch.cat([h[0], h[1]], dim=-1))).chunk(2, dim=-1)  # (B, D) each
        keys, feed, attended = self.W_k(memory), memory.new_zeros(source.shape[0], s.shape[1]), []
        embedded = F.dropout(self.target_embedding(target_in), 0.3, self.training)  # (B, T, E)
        for t in range(target_in.shape[1]):
            s, c = self.cell(torch.cat([embedded[:, t], feed], dim=-1), (s, c))
            scores = (
                self.v(torch.tanh(keys + self.W_q(s)[:, None])).squeeze(-1).masked_fill(~mask, float("-inf"))
            )  # (B, S)
            context = torch.bmm(scores.softmax(-1)[:, None], memory).squeeze(1)  # (B, 2H)
            feed = torch.tanh(self.combine(torch.cat([context, s], dim=-1)))  # (B, D)
            attended.append(feed)
        return self.head(F.dropout(torch.stack(attended, dim=1), 0.3, self.training))  # (B, T, V)


def random_batch(batch: int, vocab: int, generator: torch.Generator):
    source_lengths = torch.randint(8, 31, (batch,), generator=generator)
    target_lengths = torch.randint(8, 31, (batch,), generator=generator)
    S, T = int(source_lengths.max()), int(target_lengths.max()) + 1
    source = torch.randint(4, vocab, (batch, S), generator=generator) * (
        torch.arange(S) < source_lengths[:, None]
    )  # 0: padding
    target = torch.randint(4, vocab, (batch, T), generator=generator)
    target_in = torch.cat([torch.full((batch, 1), 2), target[:, :-1]], dim=1) * (
        torch.arange(T) <= target_lengths[:, None]
    )
    target_out = target.masked_fill(torch.arange(T) > target_lengths[:, None], IGNORE)
    return source, source_lengths, target_in, target_out


def make_stepper(model: nn.Module, forward, batch):
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    model.train()

    def step():
        logits = forward(*batch[:3])  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), batch[3].flatten(), ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per round per model")
    parser.add_argument("--decoder-path", default="eager", help="rnnkit's --model.decoder_path (eager or compiled)")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    config = seq2seq.build_config("multi30k-cpu", {"model.decoder_path": args.decoder_path})
    words = [f"w{k}" for k in range(args.vocab - 4)]
    vocab = TokenVocab(words, [PAD, UNK, START, END])
    vocabularies = {"source": vocab, "target": vocab}
    ours = seq2seq.build_model(config, vocabularies)
    m = config.model
    theirs = TorchSeq2Seq(args.vocab, m.embedding_size, m.hidden_size, ours.decoder_config.hidden_size)
    batch = random_batch(args.batch, args.vocab, torch.Generator().manual_seed(0))
    steppers = {
        "rnnkit": make_stepper(ours, lambda *b: ours(*b)[0], batch),
        "torch.nn": make_stepper(theirs, theirs, batch),
    }
    for step in steppers.values():  # warm-up (and a compiled path's first calls)
        step(), step()
    seconds = alternate(steppers, args.rounds, args.steps)
    ratios = [mine / reference for mine, reference in zip(seconds["rnnkit"], seconds["torch.nn"])]
    result = {name: {"step_seconds": statistics.median(s)} for name, s in seconds.items()}
    result["time_ratio_median"], result["time_ratio_range"] = statistics.median(ratios), [min(ratios), max(ratios)]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, B {args.batch}, V {args.vocab}, "
        "source and target 8-30 tokens"
    )
    for name in steppers:
        print(f"{name:>9}: {result[name]['step_seconds'] * 1000:.0f} ms per training step")
    print(
        f"rnnkit / torch.nn step time = {result['time_ratio_median']:.3f} "
        f"(rounds {min(ratios):.3f}-{max(ratios):.3f}; target ≤ 1.5)"
    )
    write_json(args.json, vars(args), result)


if __name__ == "__main__":
    main()
