"""The glimpse classifier: the sensor's patches worked out by hand (borders included), REINFORCE unbiased on a
problem whose gradient is known, translated and cluttered images, learning on the tiny bars, the CLI and its
pictures."""

import numpy as np
import pytest
import torch
from test_cli import assert_ok, assert_one_line_error, run_rnnkit, run_side_by_side
from torch.testing import assert_close

from rnnkit.data.datasets import tiny_images
from rnnkit.data.translated import place
from rnnkit.errors import ArgumentError, ArgumentTypeError
from rnnkit.models.glimpse import gaussian_log_prob, glimpse_sensor, reinforce_loss, sampled_sensor
from rnnkit.tasks import TASKS
from rnnkit.tasks.classify import Label
from rnnkit.tasks.glimpse import Glimpses
from rnnkit.train import train

glimpse = TASKS["glimpse"]


def test_the_sensor_returns_the_patches_at_each_scale_borders_padded_with_zeros():
    image = torch.arange(1, 65, dtype=torch.float32).reshape(1, 8, 8)  # pixel (y, x) holds 8y + x + 1: never 0
    pooled = lambda square: torch.nn.functional.avg_pool2d(square[None], 2)[0]  # noqa: E731
    centre = glimpse_sensor(
        image, torch.zeros(1, 2), patch=2, scales=2
    )  # (0, 0) is pixel (4, 4): the 2×2 and 4×4 around it
    assert centre.shape == (1, 2, 2, 2)
    assert_close(centre[0, 0], image[0, 3:5, 3:5])
    assert_close(centre[0, 1], pooled(image[0, 2:6, 2:6]))
    corner = glimpse_sensor(image, torch.tensor([[-1.0, -1.0]]), patch=2, scales=2)  # centred on the top-left corner
    assert_close(corner[0, 0], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    assert_close(corner[0, 1], torch.tensor([[0.0, 0.0], [0.0, (1 + 2 + 9 + 10) / 4]]))
    beyond = glimpse_sensor(
        image, torch.tensor([[1.0, 1.0]]), patch=2, scales=1
    )  # the bottom-right corner: one pixel inside
    assert_close(beyond[0, 0], torch.tensor([[64.0, 0.0], [0.0, 0.0]]))
    outside = glimpse_sensor(
        image, torch.tensor([[5.0, -7.0]]), patch=2, scales=1
    )  # far outside: clamped to the edge, never an error
    assert_close(outside, glimpse_sensor(image, torch.tensor([[1.0, -1.0]]), patch=2, scales=1))
    again = sampled_sensor(
        image, torch.zeros(1, 2), patch=2, scales=1
    )  # bilinear sampling at pixel centres reads the same
    assert_close(again[0, 0], centre[0, 0])


def test_reinforce_is_unbiased_where_the_gradient_is_known():
    """l ~ N(μ, σ²), R(l) = −(l − 3)²: E[R] = −((μ − 3)² + σ²), so ∂E[R]/∂μ = −2(μ − 3). The estimator's mean over
    many samples (with or without a baseline) matches it."""
    torch.manual_seed(0)
    mu, sigma, n = torch.tensor([1.0], requires_grad=True), 0.5, 200_000
    samples = mu.detach() + sigma * torch.randn(n, 1)  # (n, 1)
    rewards = -((samples[:, 0] - 3) ** 2)  # (n,)
    log_probs = gaussian_log_prob(samples, mu.expand(n, 1), sigma)[:, None]  # (n, 1)
    for baseline in (torch.zeros(n, 1), torch.full((n, 1), float(rewards.mean()))):
        (gradient,) = torch.autograd.grad(reinforce_loss(log_probs, rewards, baseline), mu, retain_graph=True)
        assert abs(-float(gradient) - (-2 * (1.0 - 3))) < 0.05, float(gradient)


def test_translated_and_cluttered_images_are_deterministic_and_hold_the_digit():
    digits, _ = tiny_images(6, seed=0)
    translated = place(digits, "translated", 60, 0, seed=1)
    assert translated.shape == (6, 60, 60) and torch.equal(translated, place(digits, "translated", 60, 0, seed=1))
    assert [int(t.sum()) for t in translated] == [int(d.sum()) for d in digits]  # the whole digit, somewhere
    cluttered = place(digits, "cluttered", 60, 4, seed=1)
    assert bool((cluttered >= translated).all()) and int(cluttered.sum()) > int(translated.sum())
    assert not torch.equal(translated, place(digits, "translated", 60, 0, seed=2))


def test_training_places_the_digits_anew_in_every_batch():
    """Batch k of a cluttered canvas is a pure function of k (a resumed run reads it again); the same digits in
    another pass sit elsewhere; validation images are placed once, the same at every evaluation."""
    config = glimpse.build_config("tiny", {"data.canvas": "cluttered", "data.size": 40})
    data = glimpse.load_data(config, tiny=True)
    training, validation = glimpse.batches(config, data)
    first, again = training[0], training[0]
    assert (
        first.inputs.shape == (32, 40, 40)
        and torch.equal(first.inputs, again.inputs)
        and torch.equal(first.labels, again.labels)
    )
    digit = int(training.indices(0)[0])  # the first image's digit, found again in the second pass
    k = next(k for k in range(len(training), 2 * len(training)) if digit in training.indices(k).tolist())
    there = training[k].inputs[training.indices(k).tolist().index(digit)]  # (40, 40)
    assert not torch.equal(first.inputs[0], there) and int(there.sum()) > 0  # one digit, two passes, two places
    assert torch.equal(validation[0].inputs, validation[0].inputs) and validation[0].inputs.shape[1:] == (40, 40)


@pytest.mark.parametrize("location", ["reinforce", "differentiable"])
def test_the_locations_learn_by_their_own_route(location):
    config = glimpse.build_config("tiny", {"model.location": location})
    data = glimpse.load_data(config, tiny=True)
    model = glimpse.build_model(config, data.vocabularies).train()
    batch = glimpse.batches(config, data)[0][0]
    total, _, _ = glimpse.loss(model, batch)
    total.backward()
    assert model.locate.weight.grad is not None and float(model.locate.weight.grad.abs().sum()) > 0
    out = model.eval()(batch.inputs)
    assert out.locations.shape == (32, 4, 2) and bool((out.locations.abs() <= 1).all())
    assert_close(out.locations, model(batch.inputs).locations)  # evaluation places glimpses at the mean: no noise


def test_the_tiny_preset_learns_well_above_chance():
    config = glimpse.build_config("tiny")
    data = glimpse.load_data(config, tiny=True)
    model = glimpse.build_model(config, data.vocabularies)
    train_batches, val_batches = glimpse.batches(config, data)
    before = glimpse.evaluate(model, val_batches)
    train(model, train_batches, config.train, glimpse.step_loss)
    after = glimpse.evaluate(model.eval(), val_batches)
    assert after["accuracy"] > 0.6 > 0.3 > before["accuracy"], (before["accuracy"], after["accuracy"])


@pytest.fixture(scope="module")
def tiny():
    model, vocabularies, config = glimpse.tiny_model()
    return glimpse.trained(model.eval(), vocabularies, config, glimpse)


def test_predict_gives_each_image_its_class_probabilities_and_glimpses(tiny):
    images = tiny_images(5, seed=2)[0]  # (5, 28, 28) uint8
    results = list(glimpse.predict(tiny.model, tiny.vocabularies, images, glimpse.Predict()))
    seen = tiny.model(images)
    assert len(results) == 5 and all(type(r) is Glimpses and isinstance(r, Label) for r in results)
    for k, result in enumerate(results):
        assert list(result.probabilities) == [str(d) for d in range(10)]  # every class, in the classes' order
        assert abs(sum(result.probabilities.values()) - 1) < 1e-5
        assert all(0 <= p <= 1 for p in result.probabilities.values())
        assert result.label == str(int(seen.logits[k].argmax())) and result.probability == max(
            result.probabilities.values()
        )
        assert result.locations.shape == (4, 2) and bool((result.locations.abs() <= 1).all())
        assert_close(result.locations, seen.locations[k])  # where the model looked, in order
    with pytest.raises(ArgumentError, match="^images: images of size 60×60, but the model reads 28×28"):
        next(glimpse.predict(tiny.model, tiny.vocabularies, torch.zeros(2, 60, 60, dtype=torch.uint8), None))


def test_classify_image_takes_an_image_a_list_or_a_stack(tiny):
    images = tiny_images(3, seed=2)[0]  # (3, 28, 28) uint8
    one = tiny.classify_image(images[0])
    assert isinstance(one, Glimpses) and one.locations.shape == (4, 2)
    stacked, listed = tiny.classify_image(images), tiny.classify_image([image.numpy() for image in images])
    assert isinstance(stacked, list) and len(stacked) == 3 and [s.label for s in stacked] == [s.label for s in listed]
    assert stacked[0].label == one.label and abs(stacked[0].probability - one.probability) < 1e-5
    assert len(tiny.classify_image([images[0]])) == 1  # a list of one is a list


@pytest.mark.parametrize(
    "given,settings,error,named",
    [
        ("digit.png", {}, ArgumentTypeError, "images:"),  # a file name where an image goes
        (7, {}, ArgumentTypeError, "images:"),
        ([np.zeros((28, 28), np.uint8), "digit.png"], {}, ArgumentTypeError, "images[1]:"),
        ([], {}, ArgumentError, "images:"),
        (np.zeros((0, 28, 28), np.uint8), {}, ArgumentError, "images:"),  # an empty stack
        (np.zeros((60, 60), np.uint8), {}, ArgumentError, "images:"),  # another size
        ([np.zeros((28, 28)), np.zeros((2, 2, 28, 28))], {}, ArgumentError, "images[1]:"),
        (np.zeros((28, 28), np.uint8), {"beam_width": 2}, ArgumentTypeError, "beam_width:"),
    ],
)
def test_classify_image_names_what_is_wrong(tiny, given, settings, error, named):
    with pytest.raises(error) as raised:
        tiny.classify_image(given, **settings)
    assert str(raised.value).startswith(named) and "\n" not in str(raised.value)


def test_every_glimpse_subcommand_has_a_fast_dry_run(tmp_path):
    runs = run_side_by_side(*((("glimpse", action, "--dry-run"), tmp_path) for action in ("train", "eval", "predict")))
    for result in runs:
        assert_ok(result)
    assert "trained 150 steps on generated bar images (mnist)" in runs[0].stdout and "error" in runs[1].stdout
    assert len(runs[2].stdout.splitlines()) == 3


def test_predict_draws_the_glimpse_path_and_refuses_other_sizes(tmp_path):
    from PIL import Image

    np.save(tmp_path / "two.npy", tiny_images(2, seed=4)[0].numpy())
    result = run_rnnkit("glimpse", "predict", "--dry-run", "--input", "two.npy", "--out", "shown", cwd=tmp_path)
    assert_ok(result)
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["two.npy[0]", "two.npy[1]"]
    for n in (1, 2):
        with Image.open(tmp_path / "shown" / f"glimpses-{n}.png") as picture:
            assert picture.size == (28 * 4, 28 * 4)
        with Image.open(tmp_path / "shown" / f"glimpses-{n}.gif") as gif:
            assert gif.n_frames == glimpse.build_config("tiny").model.glimpses
    again = run_rnnkit("glimpse", "predict", "--dry-run", "--input", "two.npy", "--out", "shown", cwd=tmp_path)
    assert_one_line_error(again.returncode, again.stderr, "already holds glimpses-1.gif")
    np.save(tmp_path / "large.npy", np.zeros((60, 60), np.uint8))
    wrong = run_rnnkit("glimpse", "predict", "--dry-run", "--input", "large.npy", cwd=tmp_path)
    assert_one_line_error(
        wrong.returncode,
        wrong.stderr,
        "large.npy: an image of 60 × 60 pixels (shape (1, 60, 60)); the model reads 28 × 28",
    )
