"""rnnkit.train from Python: each argument checked before anything runs, in rnnkit's own error naming it."""

from dataclasses import replace

import pytest
import torch

import rnnkit
from rnnkit.config import TrainConfig
from rnnkit.errors import ArgumentError, ArgumentTypeError


def loss(model, batch, state):
    return model(batch).pow(2).mean(), state, len(batch)


MODEL, BATCHES = torch.nn.Linear(2, 1), [torch.ones(3, 2)]


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (("model", BATCHES, TrainConfig(), loss), ArgumentTypeError, "model: expected a torch.nn.Module, got str"),
        ((torch.nn.ReLU(), BATCHES, TrainConfig(), loss), ArgumentError, "model: has no trainable parameters"),
        ((MODEL, 5, TrainConfig(), loss), ArgumentTypeError, r"batches: expected a sequence \(len and batches\[k\]\)"),
        ((MODEL, [], TrainConfig(), loss), ArgumentError, "batches: empty"),
        (
            (MODEL, BATCHES, {"learning_rate": 1e-3}, loss),
            ArgumentTypeError,
            "config: expected a TrainConfig, got dict",
        ),
        ((MODEL, BATCHES, replace(TrainConfig(), learning_rate=-1.0), loss), ArgumentError, "config.learning_rate: "),
        ((MODEL, BATCHES, replace(TrainConfig(), device="banana"), loss), ArgumentError, "config.device: unknown"),
        ((MODEL, BATCHES, TrainConfig(), None), ArgumentTypeError, "loss_fn: expected a function, got None"),
        ((MODEL, BATCHES, TrainConfig(), 3), ArgumentTypeError, "loss_fn: expected a function, got int"),
    ],
)
def test_a_bad_argument_is_named(arguments, error, message):
    before = [p.clone() for p in MODEL.parameters()]
    with pytest.raises(error, match=f"^{message}"):
        rnnkit.train(*arguments)
    assert all(torch.equal(a, b) for a, b in zip(before, MODEL.parameters()))  # nothing ran


def test_good_arguments_train():
    model = torch.nn.Linear(2, 1)
    records = rnnkit.train(model, BATCHES, replace(TrainConfig(), max_steps=3, eval_interval=3), loss)
    assert [r.step for r in records][-1] == 3
