"""The frame labeller: clips of a bouncing digit behind an occluder, their labels worked out by hand, determinism,
the model's shapes, learning on the tiny glyphs, the clip head (one label per clip) and its baseline, the clip
readers, and the CLI with its PNG strips and GIFs."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import assert_ok, assert_one_line_error, run_main, run_rnnkit, run_side_by_side

from rnnkit.data.clips import (
    BAND,
    CANVAS,
    DIGIT,
    DIRECTIONS,
    INK,
    SHADE,
    bounce,
    direction_of,
    make_clips,
    scaled,
    trajectory,
)
from rnnkit.data.datasets import tiny_images
from rnnkit.data.images import read_clips
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.tasks import TASKS
from rnnkit.tasks.frames import ClipData, ClipLabel, FrameLabels, vocabularies
from rnnkit.train import train

frames = TASKS["frames"]
IMAGES, LABELS = tiny_images(200, seed=0)
GLYPHS = scaled(IMAGES)


# --- the generated clips ------------------------------------------------------------------------------
def test_bounces_and_directions_by_hand():
    top = CANVAS - DIGIT
    assert bounce(5, 3, top) == (8, 3) and bounce(1, -3, top) == (2, 3) and bounce(top - 1, 2, top) == (top - 1, -2)
    assert [DIRECTIONS[direction_of(sy, sx)] for sy, sx in ((-1, -2), (-1, 3), (2, -1), (1, 1))] == list(DIRECTIONS)
    path = trajectory(random.Random(0), 40)
    for (y, x, sy, sx), (ny, nx, _, _) in zip(path, path[1:]):  # the label is where the digit goes next
        assert 0 <= y <= top and 0 <= x <= top
        assert (ny - y == 0 or (ny - y > 0) == (sy > 0)) and (nx - x == 0 or (nx - x > 0) == (sx > 0))
    assert any(a[3] != b[3] for a, b in zip(path, path[1:]))  # it bounced at least once in 40 frames


def test_a_hand_built_clip_is_labelled_right():
    """One bright square glyph: the labels follow its ink frame by frame, and a frame is hidden exactly when none
    of the ink shows outside the occluder."""
    glyph = torch.full((1, DIGIT, DIGIT), 255, dtype=torch.uint8)
    clips = make_clips(glyph, torch.tensor([7]), 6, seed=3)
    assert clips.frames.shape == (6, 16, CANVAS, CANVAS) and bool((clips.digits == 7).all())
    for frames_, directions, hidden in zip(clips.frames, clips.directions, clips.hidden):
        band = (
            (frames_ == SHADE).all(0).all(0).nonzero().flatten()
        )  # (BAND,): the occluder's columns, grey in every frame
        assert len(band) == BAND
        ink = frames_ >= INK
        ink[:, :, band] = False
        assert torch.equal(hidden, ~ink.flatten(1).any(1))
        corners = [(m.nonzero()[:, 0].min().item(), m.nonzero()[:, 1].min().item()) for m in frames_ == 255 if m.any()]
        visible = [t for t in range(16) if (frames_[t] == 255).any()]
        for (t, (y, x)), (u, (ny, nx)) in zip(zip(visible, corners), zip(visible[1:], corners[1:])):
            if (
                u == t + 1 and (frames_[t] == 255).sum() == DIGIT * DIGIT == (frames_[u] == 255).sum()
            ):  # both frames show it whole
                sy, sx = (1 if directions[t] >= 2 else -1), (1 if directions[t] % 2 else -1)
                assert (ny - y == 0 or (ny > y) == (sy > 0)) and (nx - x == 0 or (nx > x) == (sx > 0))


def test_clips_are_deterministic_under_a_seed_and_training_batches_are_new_clips():
    first, again, other = (
        make_clips(GLYPHS, LABELS, 8, 1),
        make_clips(GLYPHS, LABELS, 8, 1),
        make_clips(GLYPHS, LABELS, 8, 2),
    )
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and not torch.equal(first.frames, other.frames)
    config = frames.build_config("tiny")
    data = frames.load_data(config, tiny=True)
    train_batches, val_batches = frames.batches(config, data)
    assert torch.equal(
        train_batches[5].frames, frames.batches(config, data)[0][5].frames
    )  # batch k: a pure function of k
    assert not torch.equal(
        train_batches[5].frames, train_batches[5 + len(train_batches)].frames
    )  # the next pass: other clips
    assert sum(len(val_batches[k].frames) for k in range(len(val_batches))) == config.data.val_count
    assert (
        0.05 < float(val_batches[0].hidden.float().mean()) < 0.6
    )  # the occluder hides the digit in some frames, not most


# --- the model ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("context,bidirectional", [("rnn", True), ("rnn", False), ("none", False)])
def test_one_label_pair_per_frame_and_the_context_it_reads(context, bidirectional):
    config = frames.build_config("tiny", {"model.context": context, "model.bidirectional": bidirectional})
    model = frames.build_model(config, vocabularies()).eval()
    clips = make_clips(GLYPHS, LABELS, 3, 0)
    directions, digits = model(clips.frames)
    assert directions.shape == (3, 16, len(DIRECTIONS)) and digits.shape == (3, 16, 10)
    changed = clips.frames.clone()
    changed[:, 10:] = 0  # later frames blanked
    later_directions, _ = model(changed)
    same_before = torch.allclose(later_directions[:, :10], directions[:, :10], atol=1e-6)
    assert same_before == (context == "none" or not bidirectional)  # only a backward layer reads later frames
    assert torch.allclose(model(changed[:, :1])[0][:, 0], directions[:, 0], atol=1e-6) == (
        context == "none" or not bidirectional
    )


@pytest.fixture(scope="module")
def learned():
    scores = {}
    for context in ("rnn", "none"):
        config = frames.build_config("tiny", {"model.context": context, "train.max_steps": 200, "train.batch_size": 24})
        data = frames.load_data(config, tiny=True)
        model = frames.build_model(config, data.vocabularies)
        train_batches, val_batches = frames.batches(config, data)
        train(model, train_batches, config.train, frames.step_loss)
        scores[context] = frames.evaluate(model.eval(), val_batches)
    return scores


def test_the_tiny_preset_learns_the_direction_only_with_recurrence(learned):
    """Chance is 25%: the recurrent layer sees the motion, the per-frame CNN cannot."""
    assert learned["rnn"]["direction_accuracy"] > 0.5 and learned["none"]["direction_accuracy"] < 0.4, learned


# --- the clip head: one label per clip (many-to-one) ---------------------------------------------------------
def clip_model(**settings):
    config = frames.build_config("tiny", {"model.head": "clip", **settings})
    return frames.build_model(config, vocabularies()).eval()


def test_the_clip_head_reads_the_last_state():
    """One digit per clip: from h_T (one direction), from [h_T forward; h_1 backward] (both), and from the mean of
    the frames for the per-frame CNN; the default head keeps no clip head's weights and the clip head no W_d."""
    clips = make_clips(GLYPHS, LABELS, 3, 0).frames  # (3, 16, Y, X)
    one_way = clip_model(**{"model.bidirectional": False})
    with torch.no_grad():
        logits = one_way(clips)  # (3, K_c)
        v = one_way.encoder(clips.flatten(0, 1))[0].reshape(3, 16, -1)  # (B, T, F)
        h, _ = one_way.core(v)  # (B, T, H)
        assert logits.shape == (3, 10) and torch.allclose(logits, one_way.digit_head(h[:, -1]), atol=1e-6)
        both = clip_model()
        v = both.encoder(clips.flatten(0, 1))[0].reshape(3, 16, -1)  # (B, T, F)
        h, _ = both.core(v)  # (B, T, 2H)
        H = h.shape[-1] // 2
        last = torch.cat([h[:, -1, :H], h[:, 0, H:]], dim=-1)  # (B, 2H): each direction after the whole clip
        assert torch.allclose(both(clips), both.digit_head(last), atol=1e-6)
    assert not hasattr(both, "direction_head") and hasattr(
        frames.build_model(frames.build_config("tiny"), {"directions": [0] * 4, "digits": [0] * 10}), "direction_head"
    )


def test_the_per_frame_baselines_clip_label_ignores_the_order_of_the_frames():
    """context=none pools the frames (their mean): a shuffled clip gets the same logits; the RNN's do change."""
    clips = make_clips(GLYPHS, LABELS, 3, 0).frames  # (3, 16, Y, X)
    shuffled = clips[:, torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        pooled = clip_model(**{"model.context": "none"})
        assert torch.allclose(pooled(clips), pooled(shuffled), atol=1e-5)
        recurrent = clip_model()
        assert not torch.allclose(recurrent(clips), recurrent(shuffled), atol=1e-4)


def shapes() -> torch.Tensor:
    """Ten glyphs (10, DIGIT, DIGIT) a small CNN tells apart at once (bars, squares, diagonals): the tiny set the
    clip head learns in a test's time (the bar glyphs differ only by where a bar sits in an unseen box)."""
    glyphs = torch.zeros(10, DIGIT, DIGIT, dtype=torch.uint8)
    diagonal = torch.eye(DIGIT, dtype=torch.bool)
    glyphs[0, 5:7, 1:11] = glyphs[1, 1:11, 5:7] = glyphs[2, 1:11, 1:11] = glyphs[3, 1:11, 1:11] = 255
    glyphs[3, 3:9, 3:9] = 0  # an outline
    glyphs[4, 5:7, 1:11] = glyphs[4, 1:11, 5:7] = 255  # a plus
    glyphs[5][diagonal], glyphs[6][diagonal.flip(1)], glyphs[7][diagonal | diagonal.flip(1)] = 255, 255, 255
    glyphs[8, 4:8, 4:8] = glyphs[9, 1:3, 1:11] = glyphs[9, 9:11, 1:11] = 255  # a dot; two bars
    return glyphs


def test_the_clip_head_learns_a_tiny_set():
    """Trained on clips of ten glyphs, the clip head names new clips' glyph well above chance (10%), from the
    state after the last frame; eval's metrics say it per clip."""
    config = frames.build_config("tiny", {"model.head": "clip", "train.max_steps": 300, "data.val_count": 300})
    glyphs, labels = shapes(), torch.arange(10)
    data = ClipData(vocabularies(), glyphs, labels, glyphs, labels, "ten shapes")
    model = frames.build_model(config, data.vocabularies)
    train_batches, val_batches = frames.batches(config, data)  # validation: other clips (other paths and bands)
    train(model, train_batches, config.train, frames.step_loss)
    metrics = frames.evaluate(model.eval(), val_batches)
    assert metrics["clips"] == 300 and metrics["accuracy"] > 0.3, metrics
    assert metrics["loss"] == pytest.approx(metrics["clip_loss"] / 16)  # per frame, as the training loss
    assert "clips right" in frames.describe(metrics) and "nats/clip" in frames.describe(metrics)


def test_a_clip_models_predictions_are_clip_labels():
    """predict yields one ClipLabel per clip, the logits' argmax and its probability; label_clips gives them from
    Python, and each labelling method refuses the other head's model, naming the right one."""
    model = clip_model()
    clips = make_clips(GLYPHS, LABELS, 3, 0).frames  # (3, 16, Y, X)
    results = list(frames.predict(model, vocabularies(), [clips[0], clips[1, :8], clips[2]], frames.Predict()))
    assert [type(r) for r in results] == [ClipLabel] * 3
    with torch.no_grad():
        chances = model(clips).softmax(-1)  # (3, K_c)
    for k in (0, 2):
        assert results[k].digit == vocabularies()["digits"].symbols[int(chances[k].argmax())]
        assert results[k].probability == pytest.approx(float(chances[k].max()), abs=1e-6)
    config = frames.build_config("tiny", {"model.head": "clip"})
    trained = frames.trained(model, vocabularies(), config, frames)
    assert trained.label_clips(clips[0]) == results[0] and trained.label_clips(clips.numpy())[2] == results[2]
    with pytest.raises(RnnkitError, match="^label_frames: .*model.head=clip; use label_clips$"):
        trained.label_frames(clips[0])
    tiny_frames = frames.trained(*frames.tiny_model()[:2], frames.build_config("tiny"), frames)
    with pytest.raises(RnnkitError, match="use label_frames$"):
        tiny_frames.label_clips(clips[0])


MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def test_the_command_line_trains_evaluates_and_predicts_with_the_clip_head(tmp_path, monkeypatch, capsys):
    """train --model.head=clip makes a checkpoint that eval scores per clip and whose predict prints
    file<TAB>digit<TAB>probability per clip and draws the clip's label under each frame."""
    monkeypatch.chdir(tmp_path)
    np.save("two.npy", make_clips(GLYPHS, LABELS, 2, 0).frames.numpy())
    code, out, err = run_main(
        ["frames", "train", "--preset", "tiny", "--model.head=clip", "--train.max_steps=2", "--out", "run"], capsys
    )
    assert code == 0 and "trained 2 steps" in out and "clips right" in out, err
    if MNIST.is_dir():  # eval reads MNIST's t10k digits
        code, out, err = run_main(["frames", "eval", "run/best.pt", "--data", str(MNIST)], capsys)
        assert code == 0 and len(out.splitlines()) == 1 and "nats/clip, clips right" in out, err
    code, out, err = run_main(["frames", "predict", "run/best.pt", "--input", "two.npy", "--out", "shown"], capsys)
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [line[0] for line in lines] == ["two.npy[0]", "two.npy[1]"]
    assert all(line[1] in vocabularies()["digits"].symbols and 0.1 <= float(line[2]) <= 1 for line in lines)
    assert sorted(path.name for path in (tmp_path / "shown").iterdir()) == [
        "clip-1.gif",
        "clip-1.png",
        "clip-2.gif",
        "clip-2.png",
    ]


# --- predictions as data, and the Python interface --------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    model, vocabularies_, config = frames.tiny_model()
    return frames.trained(model.eval(), vocabularies_, config, frames)


def test_predict_gives_each_clip_its_labels_frame_by_frame(tiny):
    """One FrameLabels per clip, in order, whatever their lengths; each frame's most likely direction and digit
    with its probability, the same as the logits say and the same labelled alone or together."""
    clips = make_clips(GLYPHS, LABELS, 3, 0).frames  # (3, 16, Y, X)
    inputs = [clips[0], clips[1, :8], clips[2]]  # lengths 16, 8, 16
    results = list(frames.predict(tiny.model, tiny.vocabularies, inputs, frames.Predict()))
    assert [type(r) for r in results] == [FrameLabels] * 3 and [len(r.directions) for r in results] == [16, 8, 16]
    direction_logits, digit_logits = tiny.model(clips)  # (3, 16, K_d), (3, 16, K_c)
    for k in (0, 2):
        labels = results[k]
        assert len(labels.digits) == len(labels.direction_probabilities) == len(labels.digit_probabilities) == 16
        assert labels.directions == [DIRECTIONS[d] for d in direction_logits[k].argmax(-1).tolist()]
        assert labels.digits == [tiny.vocabularies["digits"].symbols[c] for c in digit_logits[k].argmax(-1).tolist()]
        expected = digit_logits[k].softmax(-1).max(-1).values  # (16,)
        assert torch.allclose(torch.tensor(labels.digit_probabilities), expected, atol=1e-6)
        assert all(1 / 4 <= p <= 1 for p in labels.direction_probabilities)  # the most likely of 4
        assert all(1 / 10 <= p <= 1 for p in labels.digit_probabilities)  # the most likely of 10
        alone = next(frames.predict(tiny.model, tiny.vocabularies, [inputs[k]], frames.Predict()))
        assert alone.directions == labels.directions and alone.digits == labels.digits


def test_label_frames_takes_a_clip_a_list_or_a_stack(tiny):
    clips = make_clips(GLYPHS, LABELS, 2, 0).frames  # (2, 16, Y, X) uint8
    one = tiny.label_frames(clips[0])
    assert isinstance(one, FrameLabels) and len(one.directions) == 16
    listed, stacked = tiny.label_frames([clips[0], clips[1]]), tiny.label_frames(clips.numpy())
    assert isinstance(listed, list) and len(listed) == 2 and listed == stacked
    assert tiny.label_frames([clips[0]]) == [one]  # a list of one is a list
    scaled_down = tiny.label_frames(clips[0].numpy().astype(np.float32) / 255)  # floats in [0, 1] are scaled
    for labels in (listed[0], scaled_down):  # the same labels, whatever the batch (its sums may round otherwise)
        assert labels.directions == one.directions and labels.digits == one.digits
        assert np.allclose(labels.digit_probabilities, one.digit_probabilities, atol=1e-5)


@pytest.mark.parametrize(
    "given,settings,error,named",
    [
        ("clip.gif", {}, ArgumentTypeError, "clips:"),  # a file name where a clip goes
        (42, {}, ArgumentTypeError, "clips:"),
        ([np.zeros((4, CANVAS, CANVAS), np.uint8), "clip.gif"], {}, ArgumentTypeError, "clips[1]:"),
        ([], {}, ArgumentError, "clips:"),
        (np.zeros((0, 4, CANVAS, CANVAS), np.uint8), {}, ArgumentError, "clips:"),  # an empty stack
        (np.zeros((4, 64, 64), np.uint8), {}, ArgumentError, "clips:"),  # another canvas
        ([np.zeros((4, CANVAS, CANVAS)), np.zeros((CANVAS, CANVAS))], {}, ArgumentError, "clips[1]:"),  # a frame
        (np.zeros((0, CANVAS, CANVAS), np.uint8), {}, ArgumentError, "clips:"),  # no frames
        (np.full((4, CANVAS, CANVAS), 300.0), {}, ArgumentError, "clips:"),  # not pixels
        (np.zeros((4, CANVAS, CANVAS), np.uint8), {"beam_width": 2}, ArgumentTypeError, "beam_width:"),
    ],
)
def test_label_frames_names_what_is_wrong(tiny, given, settings, error, named):
    with pytest.raises(error) as raised:
        tiny.label_frames(given, **settings)
    assert str(raised.value).startswith(named) and "\n" not in str(raised.value)


# --- reading clips ------------------------------------------------------------------------------------
def test_clips_are_read_or_refused_naming_the_file(tmp_path):
    from PIL import Image

    pictures = [Image.fromarray(np.full((32, 32), 50 * k, np.uint8)) for k in range(4)]
    pictures[0].save(tmp_path / "four.gif", save_all=True, append_images=pictures[1:], duration=100)
    assert read_clips(tmp_path / "four.gif", 32).shape == (1, 4, 32, 32)
    np.save(tmp_path / "many.npy", np.zeros((3, 5, 32, 32), np.uint8))
    assert read_clips(tmp_path / "many.npy", 32).shape == (3, 5, 32, 32)
    np.save(tmp_path / "one.npy", np.zeros((5, 32, 32), np.uint8))
    assert read_clips(tmp_path / "one.npy", 32).shape == (1, 5, 32, 32)
    np.save(tmp_path / "large.npy", np.zeros((5, 64, 64), np.uint8))
    np.save(tmp_path / "flat.npy", np.zeros((32, 32), np.uint8))
    (tmp_path / "text.gif").write_text("not an image")
    (tmp_path / "truncated.gif").write_bytes((tmp_path / "four.gif").read_bytes()[:40])
    for name, expect in (
        ("large.npy", "frames of 64 × 64 pixels"),
        ("flat.npy", "(T, Y, X) or (N, T, Y, X)"),
        ("text.gif", "not an image"),
        ("truncated.gif", str(tmp_path / "truncated.gif")),
    ):
        with pytest.raises(RnnkitError) as error:
            read_clips(tmp_path / name, 32)
        assert str(tmp_path / name) in str(error.value) and expect in str(error.value) and "\n" not in str(error.value)


# --- the command line ---------------------------------------------------------------------------------
def test_every_frames_subcommand_has_a_fast_dry_run(tmp_path):
    commands = [("frames", action, "--dry-run") for action in ("train", "eval", "predict")] + [
        ("frames", "train", "--dry-run", "--model.context=none")
    ]
    runs = run_side_by_side(*((command, tmp_path) for command in commands))
    for result in runs:
        assert_ok(result)
    assert (
        "trained 120 steps on generated bar glyphs in moving clips" in runs[0].stdout
        and "frames right" in runs[1].stdout
    )
    assert len(runs[2].stdout.splitlines()) == 2 and len(runs[2].stdout.splitlines()[0].split("\t")[1].split()) == 16


def test_predict_writes_a_strip_and_a_gif_per_clip_and_refuses_to_replace_them(tmp_path):
    from PIL import Image

    np.save(tmp_path / "two.npy", make_clips(GLYPHS, LABELS, 2, 0).frames.numpy())
    result = run_rnnkit("frames", "predict", "--dry-run", "--input", "two.npy", "--out", "shown", cwd=tmp_path)
    assert_ok(result)
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["two.npy[0]", "two.npy[1]"]
    for n in (1, 2):
        with Image.open(tmp_path / "shown" / f"clip-{n}.png") as strip:
            assert strip.size[0] > 16 * CANVAS
        with Image.open(tmp_path / "shown" / f"clip-{n}.gif") as gif:
            assert gif.n_frames == 16
    again = run_rnnkit("frames", "predict", "--dry-run", "--input", "two.npy", "--out", "shown", cwd=tmp_path)
    assert_one_line_error(again.returncode, again.stderr, "already holds clip-1.gif")
    np.save(tmp_path / "large.npy", np.zeros((4, 64, 64), np.uint8))
    wrong = run_rnnkit("frames", "predict", "--dry-run", "--input", "large.npy", cwd=tmp_path)
    assert_one_line_error(
        wrong.returncode,
        wrong.stderr,
        "large.npy: frames of 64 × 64 pixels (shape (1, 4, 64, 64)); the model reads 32 × 32",
    )


def test_a_gif_holds_a_long_still_stretch_within_the_format():
    """Pillow writes identical frames as one, their times summed; GIF stores at most 65,535 ms a frame, so a
    clip standing still for 400 frames is held that long instead of failing to write."""
    import io

    from PIL import Image

    from rnnkit.plots import animated_gif

    still, moved = Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 255)
    gif = Image.open(io.BytesIO(animated_gif([still] * 400 + [moved] * 3 + [still], 200)))
    durations = []
    for k in range(gif.n_frames):
        gif.seek(k)
        durations.append(gif.info["duration"])
    assert durations == [65535 // 400 * 400, 600, 200]
