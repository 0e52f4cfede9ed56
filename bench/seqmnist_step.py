"""The sequence classifier's training step on pixel-by-pixel MNIST against the same model on torch.nn.LSTM.

Both read random 28×28 images one pixel per step (T = 784, D = 1), an LSTM of --hidden units (128),
batch --batch (64), a linear head over h_l, AdamW; rnnkit's is `rnnkit seqmnist`'s model (auto path:
torch's fused kernel on CPU and cuDNN-sized batches, rnnkit's Triton kernels otherwise). Rounds alternate
between them, order flipped every round. Target: rnnkit / torch.nn.LSTM throughput ≥ 0.95.

    python bench/seqmnist_step.py [--device cuda] [--rounds 7] [--json bench/results-seqmnist-step.json]
"""

import argparse
import statistics

import torch
import torch.nn.functional as F
from rounds import alternate, write_json
from torch import nn

from rnnkit.tasks import TASKS
from rnnkit.tasks.seqmnist import DIGITS

seqmnist = TASKS["seqmnist"]


class TorchClassifier(nn.Module):
    """The anchor: torch.nn.LSTM over the pixels, a linear head over the last step."""

    def __init__(self, hidden: int):
        super().__init__()
        self.lstm, self.head = nn.LSTM(1, hidden, batch_first=True), nn.Linear(hidden, 10)

    def forward(self, images):
        x = ((images.float() - 0.1307 * 255) / (0.3081 * 255)).reshape(images.shape[0], -1, 1)  # (B, 784, 1)
        outputs, _ = self.lstm(x)  # (B, T, H)
        return self.head(outputs[:, -1])  # (B, 10)


def make_stepper(model: nn.Module, images, labels):
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)

    def step():
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if images.is_cuda:
            torch.cuda.synchronize()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="steps per round per model")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 28, 28), generator=generator, dtype=torch.uint8).to(args.device)
    labels = torch.randint(0, 10, (args.batch,), generator=generator).to(args.device)
    config = seqmnist.build_config(None, {"data.reading": "pixel", "model.hidden_size": args.hidden})
    ours = seqmnist.build_model(config, {"labels": DIGITS}).to(args.device).train()
    steppers = {
        "rnnkit": make_stepper(ours, images, labels),
        "torch.nn.LSTM": make_stepper(TorchClassifier(args.hidden).to(args.device), images, labels),
    }
    for step in steppers.values():  # warm-up (and a compiled path's first calls)
        step(), step()
    seconds = alternate(steppers, args.rounds, args.steps)
    ratios = [theirs / mine for mine, theirs in zip(seconds["rnnkit"], seconds["torch.nn.LSTM"])]
    result = {
        name: {"images_per_second": args.batch / statistics.median(s), "step_seconds": statistics.median(s)}
        for name, s in seconds.items()
    }
    result["ratio_median"], result["ratio_range"] = statistics.median(ratios), [min(ratios), max(ratios)]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.device}, "
        f"LSTM {args.hidden}, B {args.batch}, T 784"
    )
    for name in steppers:
        print(
            f"{name:>14}: {result[name]['images_per_second']:8,.1f} images/s "
            f"({result[name]['step_seconds'] * 1000:.0f} ms per step)"
        )
    print(
        f"rnnkit / torch.nn.LSTM throughput = {result['ratio_median']:.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})"
    )
    write_json(args.json, vars(args), result)


if __name__ == "__main__":
    main()
