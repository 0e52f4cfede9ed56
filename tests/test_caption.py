"""The captioner: composed digit images and their captions, the held-out pairs, W_ih·v at the first step, decoding
that stops at the end token, learning on the tiny glyphs, the image readers, and the CLI."""

import re

import numpy as np
import pytest
import torch
from test_cli import assert_ok, assert_one_line_error, run_rnnkit, run_side_by_side
from torch.testing import assert_close

from rnnkit.data.compose import CANVAS, NAMES, SIZES, Composed, compose, held_out_pairs, pairs_of
from rnnkit.data.datasets import tiny_images
from rnnkit.data.images import read_images
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.tasks import TASKS, caption
from rnnkit.train import train

captioner = TASKS["caption"]
GLYPHS = tiny_images(300, seed=0)


# --- the composed data --------------------------------------------------------------------------------
def test_compositions_are_deterministic_and_captioned_from_the_layout():
    held_out = held_out_pairs()
    first, again = compose(*GLYPHS, 50, 3, held_out, unseen=False), compose(*GLYPHS, 50, 3, held_out, unseen=False)
    assert torch.equal(first.images, again.images) and first.captions == again.captions
    assert compose(*GLYPHS, 50, 4, held_out, unseen=False).captions != first.captions
    for image, text, digits in zip(first.images, first.captions, first.digits):
        words = text.split()
        assert words[0] == "a" and len(words) == 3 * len(digits) + 2 * (len(digits) - 1)
        inked = int((image > 0).any(0).sum())  # columns the digits cover: their widths, never overlapping
        assert inked == sum(SIZES[words[5 * k + 1]] for k in range(len(digits)))


def test_held_out_pairs_never_meet_in_training_and_every_evaluation_image_holds_one():
    held_out = held_out_pairs(10, seed=0)
    assert len(held_out) == 10 and held_out == held_out_pairs(10, seed=0) != held_out_pairs(10, seed=1)
    training = compose(*GLYPHS, 400, 0, held_out, unseen=False)
    unseen = compose(*GLYPHS, 200, 1, held_out, unseen=True)
    assert not any(pairs_of(d) & held_out for d in training.digits)
    assert all(len(d) >= 2 and pairs_of(d) & held_out for d in unseen.digits)
    assert {len(d) for d in training.digits} == {1, 2, 3}


def test_training_batches_are_new_compositions_a_pure_function_of_their_number():
    """Batch k is composed from (seed, k): the same k gives the same images (a resumed run reads them again),
    another k other images; no training image holds a held-out pair, and every caption's words are known."""
    config = captioner.build_config("tiny")
    data = captioner.load_data(config, tiny=True)
    training, _ = captioner.batches(config, data)
    words = data.vocabularies["words"]
    first, again, other = training[3], training[3], training[4]
    assert torch.equal(first.images, again.images) and torch.equal(first.captions_in, again.captions_in)
    assert not torch.equal(first.images, other.images)
    for batch in (first, other):
        assert batch.images.shape == (config.train.batch_size, CANVAS, CANVAS)
        for row, length in zip(batch.captions_out, batch.lengths.tolist()):
            text = words.decode(row[: length - 1].tolist())  # the words, </s> left off
            digits = tuple(NAMES.index(w) for w in text if w in NAMES)
            assert row[length - 1] == words.index["</s>"] and words.unk_id not in row[:length].tolist()
            assert not pairs_of(digits) & data.held_out
    assert len(training) == config.data.train_count // config.train.batch_size


# --- the model ----------------------------------------------------------------------------------------
def tiny(**model):
    config = captioner.build_config("tiny", {f"model.{k}": v for k, v in model.items()})
    data = captioner.load_data(config, tiny=True)
    return config, data, captioner.build_model(config, data.vocabularies).eval()


def test_the_image_enters_at_the_first_step_only():
    """W_ih·v reaches h_1: another image changes the first hidden state; with inject=first nothing of the image
    reaches a later step's input, and the first state reads nothing but <s> and v."""
    config, data, model = tiny()
    batch = captioner.batches(config, data)[1][0]
    T = batch.captions_in.shape[1]
    (v, _), (other, _) = model.encoder(batch.images), model.encoder(batch.images.flip(0))
    terms, other_terms = model.image_terms(v, T), model.image_terms(other, T)
    assert torch.equal(terms[:, 1:], torch.zeros_like(terms[:, 1:])) and not torch.equal(terms[:, 0], other_terms[:, 0])
    cell = model.core.layers[0].cell
    x = torch.cat([model.embedding(batch.captions_in), terms], dim=-1)  # (B, T, E + F)
    outputs, _ = model.core(x, None, batch.lengths)
    zeroed, _ = model.core(
        torch.cat([model.embedding(batch.captions_in), torch.zeros_like(terms)], dim=-1), None, batch.lengths
    )
    assert not torch.allclose(outputs[:, 0], zeroed[:, 0])  # zeroing v changes h_1
    later = batch.captions_in.clone()
    later[:, 1:] = model.start_id  # every later input changed
    changed, _ = model.core(torch.cat([model.embedding(later), terms], dim=-1), None, batch.lengths)
    assert_close(changed[:, 0], outputs[:, 0])  # nothing else reaches the first step
    expected = torch.tanh(cell.project(x[:, 0]) + cell.b_U)  # the notes' h_1 = tanh(W_xh x_1 + W_ih v + b), h_0 = 0
    assert_close(outputs[:, 0], expected)


@pytest.mark.parametrize("layers", [0, 1, 2])
def test_context_layers_widen_what_a_location_of_the_map_sees(layers):
    """Each 3×3 convolution at the map's resolution (stride 8) widens a location's receptive field by 16 pixels,
    from the strided layers' 17: measured as the columns of the image a location's pre-normalisation
    features depend on (group norm, which mixes the whole map, taken out)."""
    import copy

    from rnnkit.models.vision import ImageEncoder

    encoder = ImageEncoder(CANVAS, 16, channels=8, context_layers=layers)
    convolutions = copy.deepcopy(encoder.layers)
    for k, layer in enumerate(convolutions):
        if isinstance(layer, torch.nn.GroupNorm):
            convolutions[k] = torch.nn.Identity()
    image = torch.randn(1, 3, CANVAS, CANVAS, requires_grad=True)
    convolutions(image)[0, :, 4, 4].sum().backward()  # one location in the middle of the 8 × 8 map
    columns = int((image.grad.abs().sum((0, 1, 2)) > 0).sum())
    assert columns == 17 + 16 * layers, columns


@pytest.mark.parametrize("attention", ["none", "additive"])
def test_captions_stop_at_the_end_token_and_beam_1_is_greedy(attention):
    config, data, model = tiny(attention=attention)
    images = data.val.images[:6]
    greedy = model.caption(images, beam_width=1, max_length=15)
    assert all(len(ids) <= 15 and model.end_id not in ids for ids in greedy)
    assert model.caption(images, beam_width=3, max_length=15) is not None
    with torch.no_grad():  # a caption shorter than the limit ended because the end token was the most probable
        for ids, image in zip(greedy, images):
            if len(ids) < 15:
                step = model.step_function(*model.look(image[None]))
                state, previous = None, torch.tensor([model.start_id])
                for t, token in enumerate([*ids, model.end_id]):
                    log_probs, state = step(previous, state, t)
                    assert int(log_probs.argmax()) == token
                    previous = torch.tensor([token])


@pytest.fixture(scope="module")
def learned():
    config = captioner.build_config(
        "tiny", {"model.inject": "every", "train.max_steps": 500, "train.learning_rate": 2e-3}
    )
    data = captioner.load_data(config, tiny=True)
    model = captioner.build_model(config, data.vocabularies)
    batches, _ = captioner.batches(config, data)
    seen = data.composer(
        200, 99, data.held_out, unseen=False
    )  # compositions of the training glyphs, like those trained on
    scored = caption.encode(seen, data.vocabularies, config, False, "seen")
    before = captioner.evaluate(model, scored)
    train(model, batches, config.train, captioner.step_loss)
    return before, captioner.evaluate(model.eval(), scored)


def test_the_tiny_preset_learns_to_read_the_images(learned):
    """A tenth of whole captions of new compositions right can only come from the images: from the words alone, a
    caption is right about 1 time in 60 (a one-digit caption, a third of them, 1 in 20; longer ones almost never)."""
    before, after = learned
    assert after["loss"] < 0.7 < before["loss"] and after["exact_match"] > 0.1 > before["exact_match"], (before, after)


# --- predictions as data, and caption() from Python -----------------------------------------------------
@pytest.mark.parametrize("attention", ["none", "additive"])
def test_predict_yields_captions_with_their_attention_over_the_map(attention):
    """Each Caption holds the words model.caption writes and, with attention, the (words + 1, 8, 8) weights over the
    CNN's map while reading its own caption back: the same, batched or alone (each row sums to 1)."""
    config, data, model = tiny(attention=attention)
    images = data.val.images[:5]
    settings = captioner.Predict(beam_width=2, max_length=12)
    captions = list(captioner.predict(model, data.vocabularies, images, settings))
    expected = model.caption(images, beam_width=2, max_length=12)
    assert [c.words for c in captions] == [data.vocabularies["words"].decode(ids) for ids in expected]
    assert all(type(c) is caption.Caption and c.text == " ".join(c.words) for c in captions)
    for k, written in enumerate(captions):
        if attention == "none":
            assert written.attention is None
            continue
        assert written.attention.shape == (len(written.words) + 1, 8, 8)
        assert ((written.attention >= 0) & (written.attention <= 1)).all()
        assert_close(written.attention.sum((1, 2)), torch.ones(len(written.words) + 1))
        (alone,) = captioner.predict(model, data.vocabularies, images[k : k + 1], settings)
        assert alone.words == written.words
        assert_close(alone.attention, written.attention)


@pytest.fixture(scope="module")
def python_captioner():
    config, data, model = tiny(attention="additive")
    return captioner.trained(model, data.vocabularies, config, captioner), data.val.images[:3]


def test_caption_from_python_takes_images_in_every_form(python_captioner, tmp_path):
    from PIL import Image

    trained, images = python_captioner
    texts = [c.text for c in trained.caption(images)]  # (N, 64, 64) tensor: a list
    assert len(texts) == 3
    one = trained.caption(images[0].numpy())  # one (64, 64) array: one caption
    assert isinstance(one, caption.Caption) and one.text == texts[0]
    Image.fromarray(images[1].numpy()).save(tmp_path / "one.png")
    np.save(tmp_path / "all.npy", images.numpy())
    assert trained.caption(str(tmp_path / "one.png")).text == texts[1]  # a PNG file: one caption
    assert trained.caption(Image.fromarray(images[2].numpy()).convert("RGB")).text == texts[2]
    assert [c.text for c in trained.caption(tmp_path / "all.npy")] == texts  # an .npy file: a list
    mixed = trained.caption([images[0], tmp_path / "one.png", images[1:].numpy()], beam_width=1, max_length=20)
    assert [c.text for c in mixed] == [texts[0], texts[1], texts[1], texts[2]]
    assert [c.text for c in trained.caption([images[2].numpy()])] == [texts[2]]  # a list of one: a list


def test_caption_from_python_names_a_bad_argument(python_captioner):
    from PIL import Image

    trained, images = python_captioner
    for given, settings, error, expect in (
        ([images[0], [images[1]]], {}, ArgumentTypeError, "images[1]: expected an image"),
        (images[0], {"beam_width": "2"}, ArgumentTypeError, "beam_width: expected int, got str"),
        (images[0], {"beam": 2}, ArgumentTypeError, "beam: not an argument here"),
        (7, {}, ArgumentTypeError, "images: expected an image (a file name, a PIL image"),
        ([], {}, ArgumentError, "images: expected an image"),
        (images[0], {"max_length": 0}, ArgumentError, "max_length: must be at least 1, got 0"),
        (images[0].float(), {}, ArgumentTypeError, "images: expected uint8 pixels"),
        ([images[0], images[0, :28, :28]], {}, ArgumentError, "images[1]: expected (64, 64) or (N, 64, 64) pixels"),
        (Image.new("RGBA", (64, 64)), {}, ArgumentError, "images: the image has an alpha channel (RGBA)"),
    ):
        with pytest.raises(error, match=re.escape(expect)):
            trained.caption(given, **settings)


def test_caption_from_python_reads_feature_vectors_for_a_features_model():
    config = captioner.build_config("tiny", {"model.image_features": 6})
    data = captioner.load_data(captioner.build_config("tiny"), tiny=True)
    trained = captioner.trained(captioner.build_model(config, data.vocabularies), data.vocabularies, config, captioner)
    vectors = torch.randn(3, 6)
    many = trained.caption(vectors)
    assert len(many) == 3 and all(c.attention is None for c in many)
    assert trained.caption(vectors[1].numpy()).words == many[1].words
    for given, error, expect in (
        (torch.randn(2, 5), ArgumentError, "images: expected (6,) or (N, 6) feature vectors"),
        (torch.full((6,), float("nan")), ArgumentError, "images: the features hold NaN"),
        (data.val.images[0], ArgumentError, "images: expected (6,) or (N, 6) feature vectors"),
    ):
        with pytest.raises(error, match=re.escape(expect)):
            trained.caption(given)


# --- reading images -----------------------------------------------------------------------------------
def test_images_are_read_or_refused_naming_the_file(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((64, 64), 200, np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "rgb.jpg")
    assert read_images(tmp_path / "gray.png", 64).shape == (1, 64, 64) and read_images(
        tmp_path / "rgb.jpg", 64
    ).shape == (1, 64, 64)
    np.save(tmp_path / "many.npy", np.zeros((3, 64, 64), np.float32))
    assert read_images(tmp_path / "many.npy", 64).shape == (3, 64, 64)
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(tmp_path / "alpha.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "gray.png").read_bytes()[:60])
    (tmp_path / "text.png").write_text("not an image")
    np.save(tmp_path / "nan.npy", np.full((64, 64), np.nan))
    for name, expect in (
        ("small.png", "an image of 32 × 48 pixels"),
        ("alpha.png", "alpha channel"),
        ("truncated.png", "truncated"),
        ("text.png", "not an image"),
        ("nan.npy", "NaN"),
    ):
        with pytest.raises(RnnkitError) as error:
            read_images(tmp_path / name, 64)
        assert str(tmp_path / name) in str(error.value) and expect in str(error.value) and "\n" not in str(error.value)


# --- the command line ---------------------------------------------------------------------------------
def test_every_caption_subcommand_has_a_fast_dry_run(tmp_path):
    """train and eval here; predict --dry-run in the next test, on images written for it."""
    runs = run_side_by_side(*((("caption", action, "--dry-run"), tmp_path) for action in ("train", "eval")))
    for result in runs:
        assert_ok(result)
    assert "trained 150 steps on generated bar glyphs composed" in runs[0].stdout and "exact captions" in runs[1].stdout


def test_predict_writes_captioned_pngs_and_refuses_to_replace_them(tmp_path):
    from PIL import Image

    np.save(tmp_path / "two.npy", compose(*GLYPHS, 2, 0, held_out_pairs(), unseen=True).images.numpy())
    result = run_rnnkit("caption", "predict", "--dry-run", "--input", "two.npy", "--out", "shown", cwd=tmp_path)
    assert_ok(result)
    assert all(len(line.split("\t")) == 2 for line in result.stdout.splitlines())
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["two.npy[0]", "two.npy[1]"]
    for n in (1, 2):
        with Image.open(tmp_path / "shown" / f"captioned-{n}.png") as picture:
            assert picture.size[0] > CANVAS
    again = run_rnnkit("caption", "predict", "--dry-run", "--input", "two.npy", "--out", "shown", cwd=tmp_path)
    assert_one_line_error(again.returncode, again.stderr, "already holds captioned-1.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "mnist-sized.png")
    wrong = run_rnnkit("caption", "predict", "--dry-run", "--input", "mnist-sized.png", cwd=tmp_path)
    assert_one_line_error(
        wrong.returncode,
        wrong.stderr,
        "mnist-sized.png: an image of 28 × 28 pixels (shape (1, 28, 28)); the model reads 64 × 64",
    )


# --- precomputed features -----------------------------------------------------------------------------
def features_of(composed: Composed) -> np.ndarray:
    """Stand-in "pretrained" features: each image average-pooled to 8 × 8, flattened (N, 64)."""
    return torch.nn.functional.avg_pool2d(composed.images.float()[:, None], 8).flatten(1).numpy() / 255.0


def test_features_from_npy_or_safetensors_train_evaluate_and_caption(tmp_path):
    from safetensors.numpy import save_file

    held_out = held_out_pairs()
    training, validation = (
        compose(*GLYPHS, 400, 0, held_out, unseen=False),
        compose(*GLYPHS, 60, 1, held_out, unseen=True),
    )
    np.save(tmp_path / "train.npy", features_of(training))
    (tmp_path / "train.txt").write_text("\n".join(training.captions) + "\n")
    save_file({"features": features_of(validation)}, str(tmp_path / "val.safetensors"))
    (tmp_path / "val.txt").write_text("\n".join(validation.captions) + "\n")
    flags = (
        "--data.features",
        "train.npy",
        "--data.val_features",
        "val.safetensors",
        "--model.image_features",
        "64",
        "--preset",
        "tiny",
        "--train.max_steps",
        "30",
        "--quiet",
    )
    trained = run_rnnkit("caption", "train", *flags, "--out", "run", cwd=tmp_path)
    assert_ok(trained)
    assert "train.npy (precomputed features)" in trained.stdout
    scored = run_rnnkit("caption", "eval", "run/best.pt", "--data", "val.safetensors", cwd=tmp_path)
    assert_ok(scored)
    assert "exact captions" in scored.stdout
    written = run_rnnkit("caption", "predict", "run/best.pt", "--input", "val.safetensors", cwd=tmp_path)
    assert_ok(written)
    assert len(written.stdout.splitlines()) == 60 and written.stdout.startswith("val.safetensors[0]\t")
    np.save(tmp_path / "wide.npy", np.zeros((2, 65), np.float32))
    wrong = run_rnnkit("caption", "predict", "run/best.pt", "--input", "wide.npy", cwd=tmp_path)
    assert_one_line_error(
        wrong.returncode, wrong.stderr, "wide.npy: feature vectors of 65 numbers; the checkpoint's model reads 64"
    )
    (tmp_path / "short.npy").write_bytes((tmp_path / "train.npy").read_bytes())
    (tmp_path / "short.txt").write_text("a small one\n")
    mismatched = run_rnnkit("caption", "train", *flags, "--data.features", "short.npy", "--out", "other", cwd=tmp_path)
    assert_one_line_error(
        mismatched.returncode, mismatched.stderr, "short.txt has 1 lines but its features file holds 400 vectors"
    )
    assert not (tmp_path / "other").exists()


def test_feature_files_are_read_or_refused_naming_the_file(tmp_path):
    from safetensors.numpy import save_file

    from rnnkit.data.images import read_features

    np.save(tmp_path / "good.npy", np.ones((3, 5), np.float16))
    assert read_features(tmp_path / "good.npy", 5).dtype == torch.float32
    save_file({"a": np.ones((2, 5), np.float32), "b": np.ones((2, 5), np.float32)}, str(tmp_path / "two.safetensors"))
    np.save(tmp_path / "images.npy", np.zeros((3, 64, 64), np.uint8))
    np.save(tmp_path / "nan.npy", np.full((2, 5), np.nan, np.float32))
    np.save(tmp_path / "huge.npy", np.full((2, 5), 1e300))
    (tmp_path / "zip.npy").write_bytes(b"PK\x03\x04" + bytes(60))  # numpy takes it for an .npz archive
    np.savez(tmp_path / "arrays.npz", a=np.ones((2, 5)))
    (tmp_path / "arrays.npz").rename(tmp_path / "arrays.npy")
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    for name, expect in (
        ("two.safetensors", "holds 2 tensors"),
        ("images.npy", "(N, F) array"),
        ("nan.npy", "NaN"),
        ("huge.npy", "beyond float32's range"),
        ("zip.npy", "not a readable .npy array"),
        ("arrays.npy", "an .npz archive of arrays"),
        ("broken.safetensors", "not a readable .safetensors"),
        ("good.npy", "of 5 numbers; the checkpoint's model reads 7"),
    ):
        with pytest.raises(RnnkitError) as error:
            read_features(tmp_path / name, 7 if name == "good.npy" else None)
        assert str(tmp_path / name) in str(error.value) and expect in str(error.value) and "\n" not in str(error.value)


def test_word_dropout_drops_whole_input_words_in_training_only():
    config, data, model = tiny(word_dropout=1 - 1e-12, inject="every")
    batch = captioner.batches(config, data)[1][0]
    blank = torch.full_like(batch.captions_in, model.padding_id)  # the padding row of the embedding is zero
    with torch.no_grad():
        evaluated = model(batch.images, batch.captions_in, batch.lengths)
        model.train()
        dropped = model(batch.images, batch.captions_in, batch.lengths)
        model.eval()
        assert_close(dropped, model(batch.images, blank, batch.lengths))  # every word dropped: as if none were read
        assert not torch.allclose(dropped, evaluated)


def test_without_input_feeding_a_step_reads_only_the_last_word_and_v():
    """Input feeding adds the last step's attentional vector h̃_{t-1} to each step's input; turned off, the
    first layer reads [E y_{t-1}; v_t] alone, and teacher forcing and step-by-step decoding still agree (here with
    an additive attention of its own size, --model.attention_size, smaller than the decoder's)."""
    config, data, model = tiny(attention="additive", input_feeding=False, attention_size=8)
    assert model.attention.v.in_features == 8 != config.model.hidden_size
    fed = tiny(attention="additive")[2]
    E, F, H = config.model.embedding_size, config.model.feature_size, config.model.hidden_size
    assert model.core.layers[0].cell.W.shape[1] == E + F and fed.core.layers[0].cell.W.shape[1] == E + F + H
    batch = captioner.batches(config, data)[1][0]
    with torch.no_grad():
        logits = model(batch.images[:1], batch.captions_in[:1])  # (1, T, V)
        step, state = model.step_function(*model.look(batch.images[:1])), None
        for t in range(batch.captions_in.shape[1]):
            log_probs, state = step(batch.captions_in[:1, t], state, t)
            assert_close(log_probs, logits[:, t].log_softmax(-1))


def test_eval_scores_a_directory_of_ones_own_images_against_captions_txt(tmp_path):
    """PNGs (and an .npy of several) in name order, line n of captions.txt the caption of image n: the same
    metrics as the same images and captions scored in memory; a line count that differs names the file."""
    from PIL import Image

    config = captioner.build_config("tiny")
    data = captioner.load_data(config, tiny=True)
    model = captioner.build_model(config, data.vocabularies).eval()
    images, captions = data.val.images[:5], data.val.captions[:5]
    for k in range(3):
        Image.fromarray(images[k].numpy()).save(tmp_path / f"image-{k}.png")
    np.save(tmp_path / "more.npy", images[3:].numpy())  # "more" sorts after "image-*": images 3 and 4
    (tmp_path / "captions.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
    [(name, batches)] = captioner.eval_data(str(tmp_path), data.vocabularies, config).items()
    in_memory = caption.encode(Composed(images, captions, []), data.vocabularies, config, False, "memory")
    assert name == str(tmp_path) and captioner.evaluate(model, batches) == captioner.evaluate(model, in_memory)
    (tmp_path / "captions.txt").write_text("\n".join(captions[:4]) + "\n", encoding="utf-8")
    with pytest.raises(RnnkitError, match=f"captions.txt has 4 lines but {tmp_path} holds 5 images; give one caption"):
        captioner.eval_data(str(tmp_path), data.vocabularies, config)
