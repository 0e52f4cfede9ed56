"""DRAW: the filterbanks reproduce an image they cover at full resolution, the KL term is its closed form, the
bound is above the true −log p(x) of a model small enough to integrate, learning on the tiny bars, the CLI
and its pictures."""

import math

import pytest
import torch
from test_cli import assert_ok, assert_one_line_error, run_rnnkit, run_side_by_side
from torch.testing import assert_close

from rnnkit.errors import ArgumentError, ArgumentTypeError
from rnnkit.models.draw import DRAW, filterbank, gaussian_kl, nats_bound, read_glimpse, write_patch
from rnnkit.tasks import TASKS
from rnnkit.tasks.draw import Drawing
from rnnkit.train import train

draw = TASKS["draw"]


def test_filterbanks_covering_the_image_at_full_resolution_reproduce_it():
    """N = A filters, stride 1, centred, narrow: F is the identity, so reading and writing give the image back."""
    A = 6
    image = torch.rand(1, A, A)
    centre, delta, sigma2 = torch.tensor([(A + 1) / 2]), torch.tensor([1.0]), torch.tensor([0.01])
    F_ = filterbank(centre, delta, sigma2, A, A)  # (1, A, A)
    assert_close(F_[0], torch.eye(A), atol=1e-6, rtol=0)
    assert_close(read_glimpse(image, F_, F_, torch.ones(1)), image, atol=1e-5, rtol=0)
    assert_close(write_patch(image, F_, F_, torch.ones(1)), image, atol=1e-5, rtol=0)
    wide = filterbank(centre, torch.tensor([2.0]), torch.tensor([1.0]), 3, A)  # rows sum to 1 whatever the window
    assert_close(wide.sum(-1), torch.ones(1, 3))


def test_the_kl_term_is_its_closed_form():
    mu, log_sigma = torch.randn(5, 4), torch.randn(5, 4) * 0.5
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, log_sigma.exp()), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    assert_close(gaussian_kl(mu, log_sigma), expected)


def test_the_bound_is_above_the_true_negative_log_likelihood():
    """2×2 binary images, one step, z of one number: p(x) = ∫ p(x | z) N(z; 0, 1) dz by quadrature over all 16 images
    (they sum to 1), and the bound's mean over many samples of z stays above −log p(x) for each."""
    torch.manual_seed(0)
    config = draw.build_config(
        "tiny", {"model.attention": False, "model.steps": 1, "model.z_size": 1, "model.hidden_size": 8}
    )
    model = DRAW(config.model, 2, 2)
    model.reset_parameters(torch.Generator().manual_seed(3))
    images = torch.tensor([[(k >> b) & 1 for b in range(4)] for k in range(16)], dtype=torch.float32).view(
        16, 2, 2
    )  # all 16
    z = torch.linspace(-9, 9, 6001)[:, None]  # (Q, 1)
    with torch.no_grad():
        dec = model.decoder.step(model.decoder.project(z), model.decoder.init_state(len(z)))
        logits = model.write(dec.h).view(-1, 1, 2, 2)  # (Q, 1, 2, 2): the canvas for each z
        log_px_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits.expand(-1, 16, 2, 2), images.expand(len(z), -1, -1, -1), reduction="none"
        ).sum((2, 3))  # (Q, 16)
        log_prior = -0.5 * z**2 - 0.5 * math.log(2 * math.pi)  # (Q, 1)
        log_px = torch.logsumexp(log_px_z + log_prior, 0) + math.log(float(z[1] - z[0]))  # (16,): the quadrature
        assert abs(float(log_px.exp().sum()) - 1) < 1e-3
        model.train()  # z sampled from Q
        bound = nats_bound(model(images.repeat(4000, 1, 1))).view(4000, 16).mean(0)  # (16,)
    assert bool((bound >= -log_px - 0.02).all()), (bound, -log_px)


def test_the_tiny_preset_lowers_the_bound():
    for attention in (True, False):
        config = draw.build_config("tiny", {"model.attention": attention})
        data = draw.load_data(config, tiny=True)
        model = draw.build_model(config, data.vocabularies)
        train_batches, val_batches = draw.batches(config, data)
        before = draw.evaluate(model, val_batches)["bound"]
        train(model, train_batches, config.train, draw.step_loss)
        after = draw.evaluate(model.eval(), val_batches)["bound"]
        assert after < 0.6 * before, (attention, before, after)
        assert draw.evaluate(model, val_batches)["bound"] == after  # the same samples of z each time


@pytest.fixture(scope="module")
def tiny():
    model, vocabularies, config = draw.tiny_model()
    return draw.trained(model.eval(), vocabularies, config, draw)


def test_predict_draws_every_step_of_each_seed(tiny):
    """One Drawing per seed: each step's canvas σ(c_t), where it wrote (the model's own windows, in pixels from 0),
    the same for the same seed and other digits for another."""
    settings = draw.Predict(count=3)
    first, again, other = draw.predict(tiny.model, tiny.vocabularies, [4, 4, 5], settings)
    assert type(first) is Drawing and first.canvases.shape == (3, 4, 28, 28) and first.windows.shape == (3, 4, 3)
    assert bool(((first.canvases >= 0) & (first.canvases <= 1)).all()) and torch.equal(
        first.digits, first.canvases[:, -1]
    )
    assert torch.equal(first.canvases, again.canvases) and not torch.equal(first.canvases, other.canvases)
    drawn = tiny.model.sample(3, torch.Generator().manual_seed(4))
    assert_close(first.canvases, torch.sigmoid(drawn.canvases))
    window = drawn.windows[2]  # step 3's
    expected = torch.stack([window.g_y - 1, window.g_x - 1, window.delta * tiny.model.config.write_size], -1)
    assert_close(first.windows[:, 2].float(), expected)
    config = draw.build_config("tiny", {"model.attention": False})
    plain = draw.build_model(config, tiny.vocabularies).eval()
    assert next(draw.predict(plain, tiny.vocabularies, [0], settings)).windows is None  # it writes everywhere


def test_draw_gives_a_drawing_for_a_seed_and_a_list_for_a_list(tiny):
    one = tiny.draw(count=2, seed=3)
    assert isinstance(one, Drawing) and one.canvases.shape == (2, 4, 28, 28)
    assert tiny.draw(2, 3).canvases.equal(one.canvases) and tiny.draw(count=64).canvases.shape[0] == 64
    several = tiny.draw(count=2, seed=[3, 4])
    assert isinstance(several, list) and len(several) == 2 and torch.equal(several[0].canvases, one.canvases)
    assert len(tiny.draw(count=1, seed=[3])) == 1  # a list of one is a list


@pytest.mark.parametrize(
    "arguments,error,named",
    [
        ({"seed": "3"}, ArgumentTypeError, "seed:"),  # a string where a seed goes
        ({"seed": [3, "4"]}, ArgumentTypeError, "seed[1]:"),
        ({"seed": []}, ArgumentError, "seed:"),
        ({"seed": -1}, ArgumentError, "seed:"),
        ({"seed": [0, 2**63]}, ArgumentError, "seed[1]:"),
        ({"seed": True}, ArgumentTypeError, "seed:"),
        ({"count": 0}, ArgumentError, "count:"),
        ({"count": "4"}, ArgumentTypeError, "count:"),
        ({"count": [4]}, ArgumentTypeError, "count:"),  # a list where a number goes
        ({"temperature": 0.5}, ArgumentTypeError, "temperature:"),
    ],
)
def test_draw_names_what_is_wrong(tiny, arguments, error, named):
    with pytest.raises(error) as raised:
        tiny.draw(**arguments)
    assert str(raised.value).startswith(named) and "\n" not in str(raised.value)


def test_every_draw_subcommand_has_a_fast_dry_run(tmp_path):
    runs = run_side_by_side(*((("draw", action, "--dry-run"), tmp_path) for action in ("train", "eval", "sample")))
    for result in runs:
        assert_ok(result)
    assert "trained 100 steps on generated bar images (binarised)" in runs[0].stdout and "nats/image" in runs[1].stdout


def test_sample_writes_a_grid_and_a_gif_of_the_drawing_and_refuses_to_replace_them(tmp_path):
    from PIL import Image

    result = run_rnnkit("draw", "sample", "--dry-run", "--count", "6", "--out", "shown", cwd=tmp_path)
    assert_ok(result)
    with Image.open(tmp_path / "shown" / "samples.png") as grid:
        assert grid.size[0] > 6 * 28
    with Image.open(tmp_path / "shown" / "drawing.gif") as gif:
        assert gif.n_frames == draw.build_config("tiny").model.steps
    again = run_rnnkit("draw", "sample", "--dry-run", "--out", "shown", cwd=tmp_path)
    assert_one_line_error(again.returncode, again.stderr, "already holds samples.png")
