"""The long-memory problems: which cells carry information across long gaps, on generated data.

    rnnkit memory train --data.problem=adding --data.seq_len=400 --model.cell=lstm --out runs/adding-lstm
    rnnkit memory train --data.problem=adding --data.seq_len=400 --model.cell=rnn  --out runs/adding-rnn
    rnnkit memory eval runs/adding-lstm/best.pt             # MSE beside the trivial baseline's 0.1667
    rnnkit diagnose runs/adding-lstm/best.pt                # the gradient through the 400 steps
    rnnkit memory train --data.problem=add1 --data.seq_len=20 --model.cell=rnn --model.nonlinearity=identity

The adding problem asks for the sum of two marked numbers among T (one answer per sequence, MSE); the
copy-memory problem asks to repeat 10 digits after T blanks (cross-entropy per step); add1, the notes' first
example, asks how many of T bits are 1 (one count per sequence; regressed with MSE, as adding's sum is,
because a count is a number: an answer of 11 for 12 is nearly right, which a softmax over 0..T would not
know, and the notes' one-unit linear RNN h_t = h_{t-1} + x_t is then an exact solution). Each result is
printed beside its trivial baseline (rnnkit/data/synthetic.py), so a cell that learned nothing shows it.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.config import option
from rnnkit.data.synthetic import MARKER, PROBLEMS, GeneratedBatches, baseline
from rnnkit.errors import RnnkitError
from rnnkit.models.core import CoreConfig
from rnnkit.models.memory import MemoryModel
from rnnkit.tasks.base import NoSettings, Task, evaluation_batches
from rnnkit.trained import Trained

EVAL_CHUNK = 100  # sequences evaluated (and answered) together


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    hidden_size: int = option(128, "hidden units per layer", at_least=1)
    num_layers: int = option(1, "stacked recurrent layers (at most 1000)", at_least=1, at_most=1000)
    dropout: float = option(0.0, "dropout between layers", at_least=0, below=1)
    embedding_size: int = option(16, "copy: size of each symbol's embedding", at_least=1)


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "not read: the problems are generated (a path given here is refused)")
    problem: str = option(
        "adding",
        "adding (sum of two marked numbers), copy (repeat 10 digits after T blanks) or add1 (count the 1s of T bits)",
        choices=PROBLEMS,
    )
    seq_len: int = option(
        400,
        "T: adding's and add1's sequence length, or copy's blank gap (its sequences are T + 20 long)",
        at_least=2,
        at_most=10000,
    )
    val_size: int = option(1000, "generated validation sequences (one fixed draw)", at_least=1, at_most=10000)


@dataclass(frozen=True)
class DrawConfig:
    """Which fresh problems to solve: what `rnnkit memory predict` and TrainedMemory.solve draw."""

    count: int = option(4, "generated sequences to answer, each printed with its target", at_least=1, at_most=10000)
    seed: int = option(0, "seed of the generated sequences", at_least=0, below=2**63)


@dataclass
class MemoryData:
    vocabularies: dict  # none: the symbols are the problem's
    source: str


@dataclass(frozen=True, eq=False)  # compared by identity: == of tensors is not a truth value
class Problem:
    """One generated sequence and what it asks for."""

    inputs: Tensor  # adding (T, 2): values and marks; copy (T + 20,): symbols; add1 (T, 1): bits
    target: Tensor  # adding (): the sum; copy (T + 20,): blanks, then the 10 digits; add1 (): the count of 1s


@dataclass(frozen=True, eq=False)  # compared by identity: == of tensors is not a truth value
class Solution:
    """A problem answered. Adding: answer and target are sums (floats); add1: counts (the answer a float, the
    model's regression); copy: the 10 digits recalled after the gap and the 10 given before it (lists of ints)."""

    inputs: Tensor  # the problem's: adding (T, 2), copy (T + 20,), add1 (T, 1)
    answer: float | list[int]
    target: float | list[int]

    def __str__(self) -> str:
        if isinstance(self.answer, float):
            return f"answer {self.answer:.4f}\ttarget {self.target:.4f}"
        return f"recalled {''.join(map(str, self.answer))}\ttarget {''.join(map(str, self.target))}"


def validation(problem: str, size: int, seq_len: int, seed: int) -> GeneratedBatches:
    """`size` fixed sequences (rounded up to whole chunks of EVAL_CHUNK), for evaluation."""
    chunk = min(size, EVAL_CHUNK)
    return GeneratedBatches(problem, chunk, seq_len, seed, count=-(-size // chunk))


def problem_loss(outputs: Tensor, targets: Tensor) -> Tensor:
    """Adding and add1: MSE of the last step's answer (outputs (B, T, 1), targets (B,)). Copy: mean cross-entropy
    per step (outputs (B, T, 10), targets (B, T))."""
    if targets.dim() == 1:
        return F.mse_loss(outputs[:, -1, 0], targets)
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))


class TrainedMemory(Trained):
    """A long-memory model from Python: solve fresh problems of the kind it was trained on."""

    def solve(self, **settings) -> list[Solution]:
        """`count` problems of the model's kind and length, drawn from `seed`, with the model's answers.

        >>> solved = rnnkit.load("runs/adding-lstm").solve(count=2, seed=1)
        >>> solved[0].answer, solved[0].target
        (0.912, 0.9133)
        """
        chosen = self.settings(settings, DrawConfig)
        problems = self.task.problems(self.config, chosen.count, chosen.seed)
        return list(self.task.predict(self.model, self.vocabularies, problems, NoSettings()))


class LongMemory(Task):
    """Generated problems that need a memory (adding, copy, add1), each scored beside its trivial baseline."""

    name = "memory"
    description = (
        "long-memory problems (adding, copy memory, add1 counting), each beside its trivial baseline: "
        "train, eval, predict"
    )
    unit, per = "sequences", "sequence"
    Model, Data = ModelConfig, DataConfig
    trained = TrainedMemory
    generates_data = True  # eval and diagnose draw the checkpoint's problem afresh; no --data

    def load_data(self, config, tiny: bool = False) -> MemoryData:
        data = config.data
        if data.path and not tiny:
            raise RnnkitError(f"--data.path: the {data.problem} problem is generated; drop it ({data.path})")
        return MemoryData({}, f"generated {data.problem} problem, T = {data.seq_len}")

    def build_model(self, config, vocabularies: dict) -> MemoryModel:
        problem = config.data.problem
        copy = problem == "copy"
        model = MemoryModel(
            config.model,
            MARKER + 1 if copy else 1,
            symbols=MARKER + 1 if copy else None,
            input_size=1 if problem == "add1" else 2,
        )
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        if problem == "add1":  # start at the trivial answer T/2: the readout then learns only what the bits add
            torch.nn.init.constant_(model.decoder.bias, config.data.seq_len / 2)
        return model

    def batches(self, config, data: MemoryData) -> tuple[GeneratedBatches, GeneratedBatches]:
        problem, seq_len = config.data.problem, config.data.seq_len
        train = GeneratedBatches(problem, config.train.batch_size, seq_len, config.train.seed)
        val = validation(problem, config.data.val_size, seq_len, seed=2**31 - 1)  # one fixed draw, seed apart
        return train, val

    def loss(self, model: MemoryModel, batch) -> tuple[Tensor, int]:
        return problem_loss(model(batch.inputs), batch.targets), len(batch.targets)

    def evaluate(self, model: MemoryModel, batches: GeneratedBatches, device="cpu") -> dict:
        """The loss beside the trivial baseline; copy also the share of the 10 recalled digits that are right, add1
        the share of sequences whose answer, rounded, is the count."""
        total, recalled, count = 0.0, 0.0, 0
        for batch in evaluation_batches(model, batches, device):  # a few sequences at a time: T may be long
            outputs, targets = model(batch.inputs), batch.targets  # (B, T, K), (B,) or (B, T)
            total += float(problem_loss(outputs, targets)) * len(targets)
            if batches.problem == "copy":
                recalled += float((outputs[:, -10:].argmax(-1) == targets[:, -10:]).double().mean()) * len(targets)
            if batches.problem == "add1":
                recalled += float((outputs[:, -1, 0].round() == targets).sum())
            count += len(targets)
        metrics = {"loss": total / count, "baseline": baseline(batches.problem, batches.seq_len), "sequences": count}
        if batches.problem == "copy":
            metrics["recall_accuracy"] = recalled / count
        if batches.problem == "add1":
            metrics["count_accuracy"] = recalled / count
        return metrics

    def describe(self, metrics: dict) -> str:
        what = "MSE" if "recall_accuracy" not in metrics else "cross-entropy"
        extra = f", digits recalled {metrics['recall_accuracy']:.1%}" if "recall_accuracy" in metrics else ""
        extra += f", counted exactly {metrics['count_accuracy']:.1%}" if "count_accuracy" in metrics else ""
        baseline_value, sequences = metrics["baseline"], metrics["sequences"]
        return f"{what} {metrics['loss']:.4f} (trivial baseline {baseline_value:.4f}){extra} ({sequences:,} sequences)"

    def summary(self, loss_value: float) -> str:
        return f"{loss_value:.4f}"

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """A fresh draw of the checkpoint's problem (`path` is not read: the problems are generated)."""
        data = config.data
        draw = validation(data.problem, data.val_size, data.seq_len, seed=2**31 - 2)
        return {f"generated {data.problem}, T = {data.seq_len}": draw}

    def problems(self, config, count: int, seed: int) -> list[Problem]:
        """`count` fresh problems of the config's kind and length, drawn from `seed`."""
        batch = GeneratedBatches(config.data.problem, count, config.data.seq_len, seed, count=1)[0]
        return [Problem(inputs, target) for inputs, target in zip(batch.inputs, batch.targets)]

    def predict(
        self, model: MemoryModel, vocabularies: dict, inputs: list[Problem], settings: NoSettings
    ) -> Iterator[Solution]:
        """The model's answer to each problem, EVAL_CHUNK problems at a time."""
        chunks = [inputs[k : k + EVAL_CHUNK] for k in range(0, len(inputs), EVAL_CHUNK)]
        batches = [torch.stack([problem.inputs for problem in chunk]) for chunk in chunks]  # (B, T, 2) or (B, T + 20)
        for chunk, batch in zip(chunks, evaluation_batches(model, batches, next(model.parameters()).device)):
            outputs = model(batch).cpu()  # (B, T, K)
            for problem, output in zip(chunk, outputs):
                if problem.target.dim() == 0:  # adding, add1: the last step's answer
                    yield Solution(problem.inputs, float(output[-1, 0]), float(problem.target))
                else:  # copy: the 10 digits after the gap
                    yield Solution(problem.inputs, output[-10:].argmax(-1).tolist(), problem.target[-10:].tolist())

    def preview(self, model: MemoryModel, data: MemoryData, config, length: int, seed: int) -> str:
        """Two fresh problems answered."""
        return "\n".join(map(str, self.predict(model, data.vocabularies, self.problems(config, 2, seed), NoSettings())))

    def diagnosis(self, model: MemoryModel, vocabularies: dict, config):
        """For rnnkit diagnose: the core's inputs (B, T, D) on a generated batch, and the loss at its last step."""
        batch = GeneratedBatches(config.data.problem, 16, config.data.seq_len, seed=2**31 - 3, count=1)[0]
        model = model.cpu()
        x = model.features(batch.inputs).detach()  # (B, T, D)
        if config.data.problem != "copy":  # adding, add1
            return x, lambda h: F.mse_loss(model.readout(h)[:, 0], batch.targets), "the answer at the last step"
        return x, lambda h: F.cross_entropy(model.readout(h), batch.targets[:, -1]), "the last recalled digit"


task = LongMemory()
