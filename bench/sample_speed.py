"""Sampling speed: characters per second of rnnkit's sampler (one step of the model per character, the
state carried) beside its limit and its peers, in one run:

    rnnkit                   the sampler as it runs (model.step: the cells' equations, a token at a time)
    rnnkit forward           the same loop stepping through forward on (B, 1) inputs (fast=False): the sampler
                             as it was, through torch's fused kernel
    torch.nn.LSTM            the same model on torch.nn.LSTM, stepped as pytorch/examples' generate.py does
    matrix-vector limit      the step's matrix-vector products alone (W x and U h of each layer, the decoder),
                             nothing else: what no sampler of this model on this machine can beat

All are the 2×256 char-LM (embedding 64, vocabulary 65), untrained (speed does not depend on the weights);
each generates --chars characters at batch 1 and at batch 16, rounds alternating. Run by hand:

    python bench/sample_speed.py [--chars 2000] [--rounds 3] [--threads 1] [--json bench/results-sample-speed.json]
"""

import argparse
import statistics

import torch
from charlm_throughput import TorchCharLM  # the same layout on torch.nn.LSTM
from rounds import alternate, write_json

from rnnkit.data.vocab import Vocab
from rnnkit.models.char_lm import CharLM
from rnnkit.sample import generate, seeded
from rnnkit.tasks.charlm import ModelConfig


def rnnkit_sampler(model, vocab, chars: int, batch: int, fast: bool = True):
    return lambda: sum(
        1 for _ in generate(model, vocab, "\n", chars, 0.8, num_samples=batch, generator=seeded(0), fast=fast)
    )


@torch.no_grad()
def products_alone(model, chars: int, batch: int):
    """Each step's products with every weight matrix (the cells' W and U, the decoder), into buffers made once."""
    weights = [w.detach() for layer in model.core.layers for w in (layer.cell.W, layer.cell.U)]
    weights.append(model.decoder.weight.detach())
    inputs = [torch.randn(batch, w.shape[1]) for w in weights]
    outputs = [torch.empty(batch, w.shape[0]) for w in weights]

    def run():
        for _ in range(chars):
            for w, x, out in zip(weights, inputs, outputs):
                torch.mm(x, w.t(), out=out)
        return chars

    return run


@torch.no_grad()
def torch_sampler(model, chars: int, batch: int):
    """torch.nn.LSTM's model sampled as pytorch/examples' generate.py does: one step, the state carried."""

    def run():
        model.eval()
        ids, state, generator = torch.zeros(batch, 1, dtype=torch.long), None, seeded(0)
        for _ in range(chars):
            logits, state = model(ids, state)  # (B, 1, V)
            ids = torch.multinomial(torch.softmax(logits[:, -1] / 0.8, dim=-1), 1, generator=generator)  # (B, 1)
        return chars

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab = Vocab(
        ["\n", *(chr(c) for c in range(32, 96))]
    )  # 65 symbols, as Tiny Shakespeare has, the prime "\n" among them
    config = ModelConfig(embedding_size=64, hidden_size=256, num_layers=2, dropout=0.0)
    ours, theirs = CharLM(len(vocab), config).eval(), TorchCharLM(len(vocab), config).eval()
    result = {}
    for batch in (1, 16):
        samplers = {
            "rnnkit": rnnkit_sampler(ours, vocab, args.chars, batch),
            "rnnkit forward": rnnkit_sampler(ours, vocab, args.chars, batch, fast=False),
            "torch.nn.LSTM": torch_sampler(theirs, args.chars, batch),
            "matrix-vector limit": products_alone(ours, args.chars, batch),
        }
        seconds = alternate(samplers, args.rounds)
        for name, values in seconds.items():
            result[f"{name} batch {batch}"] = args.chars * batch / statistics.median(values)  # characters per second
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), 2×256 LSTM char-LM, "
        f"{args.chars} characters per continuation"
    )
    for name, value in result.items():
        print(f"{name:>30}: {value:10,.0f} characters/s")
    for batch in (1, 16):
        ours, limit = result[f"rnnkit batch {batch}"], result[f"matrix-vector limit batch {batch}"]
        print(
            f"batch {batch}: rnnkit {ours / result[f'torch.nn.LSTM batch {batch}']:.2f}× torch.nn.LSTM, "
            f"{ours / result[f'rnnkit forward batch {batch}']:.2f}× stepping through forward, "
            f"{limit / ours:.2f}× below the matrix-vector limit"
        )
    write_json(args.json, vars(args), result)


if __name__ == "__main__":
    main()
