"""Training throughput of rnnkit's CharLM against the same model built on torch.nn.LSTM, side by side.

Both models take the same training step (embedding -> 2-layer LSTM -> decoder, cross-entropy,
backward, clip, AdamW); rounds alternate between them so drift in the machine hits both alike.
Prints tokens/s for each and the ratio (target: rnnkit / torch >= 0.95). Run by hand:

    python bench/charlm_throughput.py [--hidden 256] [--layers 2] [--batch 32] [--seq 128] [--rounds 7]
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit.models.char_lm import CharLM
from rnnkit.tasks.charlm import ModelConfig


class TorchCharLM(nn.Module):
    """The anchor: the same layout on torch.nn.LSTM."""

    def __init__(self, vocab_size: int, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)
        self.rnn = nn.LSTM(
            config.embedding_size, config.hidden_size, config.num_layers, batch_first=True, dropout=config.dropout
        )
        self.decoder = nn.Linear(config.hidden_size, vocab_size)

    def forward(self, ids, state=None):
        p = self.config.dropout
        outputs, state = self.rnn(F.dropout(self.embedding(ids), p, self.training), state)
        return self.decoder(F.dropout(outputs, p, self.training)), state


def make_stepper(model, vocab_size, batch, seq):
    optimizer = torch.optim.AdamW(model.parameters(), 2e-3)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, vocab_size, (batch, seq), generator=generator)
    targets = torch.randint(0, vocab_size, (batch, seq), generator=generator)

    def step():
        logits, _ = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, vocab_size), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=65)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="steps per round per model")
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    config = ModelConfig(
        cell=args.cell, embedding_size=args.embedding, hidden_size=args.hidden, num_layers=args.layers, dropout=0.1
    )
    models = {"rnnkit": CharLM(args.vocab, config), "torch.nn.LSTM": TorchCharLM(args.vocab, config)}
    steppers = {name: make_stepper(m, args.vocab, args.batch, args.seq) for name, m in models.items()}
    for step in steppers.values():  # warm-up: allocator, oneDNN primitive caches
        step(), step()
    seconds = {name: [] for name in steppers}
    for _ in range(args.rounds):
        for name, step in steppers.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
            seconds[name].append((time.perf_counter() - started) / args.steps)
    tokens = args.batch * args.seq
    result = {name: tokens / statistics.median(s) for name, s in seconds.items()}
    result["ratio"] = result["rnnkit"] / result["torch.nn.LSTM"]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, cell {args.cell} {args.layers}x{args.hidden}, "
        f"emb {args.embedding}, B={args.batch}, T={args.seq}"
    )
    for name in steppers:
        print(f"{name:>14}: {result[name]:9,.0f} tokens/s (median of {args.rounds} rounds)")
    print(f"ratio rnnkit / torch.nn.LSTM = {result['ratio']:.3f}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"config": vars(args), **result}, file, indent=1)


if __name__ == "__main__":
    main()
