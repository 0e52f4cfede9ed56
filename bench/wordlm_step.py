"""The word LM's training step with weight drop on against the same step with it off, side by side.

Both models are the ptb-cpu preset's (2×256 tied LSTM, AR/TAR, locked and embedding dropout) on a
10,000-word vocabulary with random ids (no data needed); they differ only in --model.weight_drop.
Rounds alternate between them, order flipped every round. Target: on / off throughput ≥ 0.9. Run by hand:

    python bench/wordlm_step.py [--weight-drop 0.5] [--rounds 9] [--json bench/results-wordlm-step.json]
"""

import argparse
import statistics
from dataclasses import replace

import torch
from rounds import alternate, write_json

from rnnkit.data.batching import TokenBatch
from rnnkit.data.vocab import TokenVocab
from rnnkit.tasks import TASKS
from rnnkit.tasks.wordlm import SPECIALS

wordlm = TASKS["wordlm"]


def make_stepper(weight_drop: float, vocab_size: int, preset: str):
    config = wordlm.build_config(preset)
    config = replace(config, model=replace(config.model, weight_drop=weight_drop))
    model = wordlm.build_model(config, {"text": TokenVocab([f"w{i}" for i in range(vocab_size - 2)], SPECIALS)}).train()
    optimizer = torch.optim.AdamW(model.parameters(), 2e-3)
    generator = torch.Generator().manual_seed(0)
    shape = (config.train.batch_size, config.train.seq_len)
    batch = TokenBatch(
        torch.randint(0, vocab_size, shape, generator=generator),
        torch.randint(0, vocab_size, shape, generator=generator),
    )

    def step():
        loss = wordlm.loss(model, batch, None)[0]  # the objective: cross-entropy + AR + TAR
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()

    return step, shape[0] * shape[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weight-drop", type=float, default=0.5)
    parser.add_argument("--preset", default="ptb-cpu")
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10, help="steps per round per model")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    steppers = {
        "on": make_stepper(args.weight_drop, args.vocab, args.preset),
        "off": make_stepper(0.0, args.vocab, args.preset),
    }
    for step, _ in steppers.values():  # warm-up
        step(), step()
    seconds = alternate({name: step for name, (step, _) in steppers.items()}, args.rounds, args.steps)
    tokens = steppers["on"][1]
    result = {f"weight_drop_{name}_tokens_per_second": tokens / statistics.median(s) for name, s in seconds.items()}
    ratios = [off / on for on, off in zip(seconds["on"], seconds["off"])]  # per round: throughput on / off
    result["ratio_median"] = statistics.median(ratios)
    result["ratio_range"] = [min(ratios), max(ratios)]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, preset {args.preset}, "
        f"weight drop {args.weight_drop} vs 0"
    )
    for name in steppers:
        print(
            f"weight drop {name:>3}: {result[f'weight_drop_{name}_tokens_per_second']:9,.0f} tokens/s "
            f"(median of {args.rounds} rounds)"
        )
    print(f"throughput on / off = {result['ratio_median']:.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})")
    write_json(args.json, vars(args), result)


if __name__ == "__main__":
    main()
