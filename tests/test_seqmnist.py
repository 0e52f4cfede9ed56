"""Sequential MNIST and the long-memory problems: the idx reader on hand-made files, the three readings
of an image (rows, pixels, a permutation kept in the checkpoint), the adding and copy generators against
their definitions, learning on the tiny presets, and the CLI (dry runs, diagnose, bad input)."""

import gzip
import math

import numpy as np
import pytest
import torch
from test_cli import assert_ok, assert_one_line_error, run_rnnkit, run_side_by_side
from test_fuzz import idx_bytes

from rnnkit.checkpoint import load_checkpoint
from rnnkit.data.datasets import tiny_images
from rnnkit.data.idx import parse_idx, read_idx, read_mnist
from rnnkit.data.synthetic import GeneratedBatches, adding_problem, baseline, copy_memory
from rnnkit.errors import ArgumentError, ArgumentTypeError, RnnkitError
from rnnkit.tasks import TASKS, from_checkpoint, memory, seqmnist
from rnnkit.tasks.classify import Label
from rnnkit.train import train

mnist = TASKS["seqmnist"]


# --- idx files --------------------------------------------------------------------------------------
def test_idx_reader_reads_sizes_and_values_big_endian(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "i.idx.gz").write_bytes(gzip.compress(idx_bytes(images)))
    assert torch.equal(read_idx(tmp_path / "i.idx.gz"), torch.from_numpy(images))
    wide = np.array([1, 256, -5], dtype=np.int32)
    assert parse_idx(idx_bytes(wide, 0x0C), "w").tolist() == [1, 256, -5]


@pytest.mark.parametrize(
    "data, expect",
    [
        (b"\x00\x00\x08\x03\x00\x00", "header is cut short"),
        (b"\x12\x34\x08\x01\x00\x00\x00\x02\x01\x02", "not an IDX file (magic 12340801 at byte offset 0"),
        (idx_bytes(np.zeros((2, 2, 2), np.uint8))[:-1], "truncated: sizes 2×2×2 need 24 bytes, the file has 23"),
        (idx_bytes(np.zeros((2,), np.uint8)) + b"\x00", "longer than its header says"),
    ],
)
def test_idx_reader_names_what_is_wrong(data, expect):
    with pytest.raises(RnnkitError, match="bad.idx") as error:
        parse_idx(data, "bad.idx")
    assert expect in str(error.value)


def test_mnist_directory_needs_matching_counts(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((2,), np.uint8))))
    with pytest.raises(RnnkitError, match="2 labels for the 3 images"):
        read_mnist(tmp_path)
    with pytest.raises(RnnkitError, match="no t10k-images-idx3-ubyte"):
        read_mnist(tmp_path, "t10k")


def write_mnist(directory, images: np.ndarray, labels: np.ndarray, images_type: int = 0x08) -> None:
    (directory / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(images, images_type))
    (directory / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels))


def test_mnist_labels_must_be_digits_and_pixels_numbers_of_0_to_255(tmp_path):
    """What every MNIST reader (train and eval of each task) gets: labels 0-9, pixels finite in [0, 255]; float
    pixels in [0, 1] are scaled, as the .npy reader does."""
    write_mnist(tmp_path, np.zeros((2, 28, 28), np.uint8), np.array([3, 200], np.uint8))
    with pytest.raises(RnnkitError, match=r"t10k-labels-idx1-ubyte: labels must be digits 0-9, found 3\.\.200"):
        read_mnist(tmp_path, "t10k")
    nan = np.zeros((2, 28, 28), np.float32)
    nan[1, 5, 5] = np.nan
    write_mnist(tmp_path, nan, np.array([3, 4], np.uint8), 0x0D)
    with pytest.raises(RnnkitError, match="t10k-images-idx3-ubyte: the pixels hold NaN"):
        read_mnist(tmp_path, "t10k")
    write_mnist(tmp_path, np.full((2, 28, 28), 0.5, np.float32), np.array([3, 4], np.uint8), 0x0D)
    images, labels = read_mnist(tmp_path, "t10k")
    assert images.dtype == torch.uint8 and int(images.max()) == 128 and labels.tolist() == [3, 4]
    huge = b"\x00\x00\x08\x03" + b"\xff\xff\xff\xff" * 3
    with pytest.raises(RnnkitError, match=f"need {16 + (2**32 - 1) ** 3} bytes, the file has 16"):
        parse_idx(huge, "huge.idx")


# --- readings ---------------------------------------------------------------------------------------
def test_rows_pixels_and_a_seeded_permutation():
    images = torch.arange(2 * 28 * 28).reshape(2, 28, 28) % 256
    rows = mnist.build_model(mnist.build_config("tiny"), {"labels": list(range(10))})
    assert rows.sequence(images).shape == (2, 28, 28)
    pixels = mnist.build_model(mnist.build_config("tiny", {"data.reading": "pixel"}), {"labels": list(range(10))})
    assert pixels.sequence(images).shape == (2, 784, 1)
    assert torch.equal(pixels.sequence(images)[0, :28, 0], rows.sequence(images)[0, 0])  # the first 28 pixels are row 0
    permuted = [
        mnist.build_model(
            mnist.build_config("tiny", {"data.reading": "permuted", "data.permutation_seed": s}),
            {"labels": list(range(10))},
        )
        for s in (3, 3, 4)
    ]
    assert torch.equal(permuted[0].order, permuted[1].order) and not torch.equal(permuted[0].order, permuted[2].order)
    assert sorted(permuted[0].order.tolist()) == list(range(784))


def test_the_permutation_is_restored_from_the_checkpoint(tmp_path):
    result = run_rnnkit(
        "seqmnist",
        "train",
        "--preset",
        "tiny",
        "--data.reading=permuted",
        "--data.permutation_seed=9",
        "--quiet",
        "--train.max_steps=2",
        "--model.hidden_size=8",
        "--out",
        "run",
        cwd=tmp_path,
    )
    assert_ok(result)
    checkpoint = load_checkpoint(tmp_path / "run" / "last.pt")
    expected = torch.randperm(784, generator=torch.Generator().manual_seed(9))
    assert torch.equal(checkpoint["model"]["order"], expected)
    checkpoint["model"]["order"] = checkpoint["model"]["order"].flip(
        0
    )  # a checkpoint's order wins over the config's seed
    model = from_checkpoint(checkpoint)[0]
    assert torch.equal(model.order, expected.flip(0))


def test_the_tiny_preset_learns_the_generated_images():
    config = mnist.build_config("tiny")
    data = mnist.load_data(config, tiny=True)
    batches, val = mnist.batches(config, data)
    model = mnist.build_model(config, data.vocabularies)
    train(model, batches, config.train, mnist.step_loss)
    assert mnist.evaluate(model, val)["accuracy"] > 0.9  # chance: 10%


# --- predictions as data, and from Python ---------------------------------------------------------------
def test_predict_yields_one_label_per_image_with_every_digits_probability():
    model, vocabularies, _ = mnist.tiny_model()
    images = tiny_images(5, seed=1)[0]  # (5, 28, 28) uint8
    results = list(mnist.predict(model, vocabularies, images, mnist.Predict()))
    assert len(results) == 5 and all(isinstance(result, Label) for result in results)
    for result in results:
        assert list(result.probabilities) == seqmnist.DIGITS
        assert all(0 <= p <= 1 for p in result.probabilities.values())
        assert sum(result.probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert result.label == max(result.probabilities, key=result.probabilities.get)
        assert result.probability == result.probabilities[result.label]
    with pytest.raises(ArgumentError, match=r"^images: images of size 8×8, but the model reads 28×28 images$"):
        list(mnist.predict(model, vocabularies, torch.zeros(2, 8, 8, dtype=torch.uint8), None))
    with pytest.raises(ArgumentError, match=r"^images: expected \(N, Y, X\) images, got shape \(28, 28\)$"):
        list(mnist.predict(model, vocabularies, images[0], None))


def assert_same_labels(got: list[Label], expected: list[Label]) -> None:
    """The same labels, and probabilities equal up to float rounding (a batch of other sizes sums in another order)."""
    assert [label.label for label in got] == [label.label for label in expected]
    for a, b in zip(got, expected):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6)


def test_trained_classify_image_takes_an_image_a_stack_or_a_list():
    model, vocabularies, config = mnist.tiny_model()
    trained = mnist.trained(model.eval(), vocabularies, config, mnist)
    images = tiny_images(3, seed=1)[0]  # (3, 28, 28) uint8
    expected = list(mnist.predict(model, vocabularies, images, mnist.Predict()))
    assert trained.classify_image(images) == expected  # a stack (N, Y, X): a list
    assert trained.classify_image(images.numpy()) == expected
    assert trained.classify_image(list(images.numpy())) == expected  # a list of (Y, X) arrays
    one = trained.classify_image(images[1])  # one (Y, X) image: one Label
    assert isinstance(one, Label)
    assert_same_labels([one], expected[1:2])
    assert_same_labels(trained.classify_image([images[1]]), expected[1:2])
    assert_same_labels([trained.classify_image(images[2].numpy() / 255.0)], expected[2:])  # floats in [0, 1] scaled
    many = tiny_images(seqmnist.BATCH + 3, seed=2)[0]  # more than one batch: the same as each alone
    assert_same_labels(trained.classify_image(many)[-3:], [trained.classify_image(image) for image in many[-3:]])


@pytest.mark.parametrize(
    "images, error, message",
    [
        ("digit.png", ArgumentTypeError, r"^images: expected a \(Y, X\) image or a list of them, got str$"),
        ([np.zeros((28, 28)), "7"], ArgumentTypeError, r"^images\[1\]: expected a \(Y, X\) image, got str$"),
        ([], ArgumentError, r"^images: expected a \(Y, X\) image or a list of them, got an empty list$"),
        (np.zeros((0, 28, 28), np.uint8), ArgumentError, r"^images: an empty stack \(0, Y, X\)"),
        ([np.zeros((2, 28, 28))], ArgumentError, r"^images\[0\]: expected a \(Y, X\) image of numbers, got float64"),
        (np.zeros((8, 8), np.uint8), ArgumentError, r"^images: images of size 8×8, but the model reads 28×28 images$"),
        (np.full((28, 28), "a"), ArgumentError, r"^images: expected a \(Y, X\) image of numbers, got <U1"),
        (torch.full((28, 28), 300.0), RnnkitError, r"^images: pixel values must lie in \[0, 255\]"),
    ],
)
def test_trained_classify_image_names_a_bad_argument(images, error, message):
    model, vocabularies, config = mnist.tiny_model()
    with pytest.raises(error, match=message):
        mnist.trained(model.eval(), vocabularies, config, mnist).classify_image(images)


def test_trained_classify_image_has_no_settings():
    model, vocabularies, config = mnist.tiny_model()
    with pytest.raises(ArgumentTypeError, match=r"^temperature: not an argument here; the settings are none$"):
        mnist.trained(model.eval(), vocabularies, config, mnist).classify_image(np.zeros((28, 28)), temperature=1.0)


# --- long-memory problems -----------------------------------------------------------------------------
def test_adding_problem_matches_its_definition():
    batch = adding_problem(64, 50, torch.Generator().manual_seed(0))
    values, marks = batch.inputs[..., 0], batch.inputs[..., 1]  # (B, T)
    assert batch.inputs.shape == (64, 50, 2) and ((values >= 0) & (values < 1)).all()
    assert (marks.sum(1) == 2).all() and set(marks.unique().tolist()) == {0.0, 1.0}
    b = 5
    marked = marks[b].nonzero().flatten().tolist()
    assert batch.targets[b] == pytest.approx(float(values[b, marked[0]] + values[b, marked[1]]))
    assert baseline("adding", 400) == pytest.approx(1 / 6)


def test_copy_memory_matches_its_definition():
    batch = copy_memory(3, 7, torch.Generator().manual_seed(0))
    x, y = batch.inputs[0].tolist(), batch.targets[0].tolist()
    assert len(x) == len(y) == 7 + 20
    digits = x[:10]
    assert all(1 <= d <= 8 for d in digits) and x[10:16] == [0] * 6 and x[16:] == [9] * 11
    assert y[:17] == [0] * 17 and y[17:] == digits
    assert baseline("copy", 100) == pytest.approx(10 * math.log(8) / 120)


def test_generated_batches_are_a_pure_function_of_k():
    first, second = GeneratedBatches("adding", 4, 30, seed=1), GeneratedBatches("adding", 4, 30, seed=1)
    assert torch.equal(first[17].inputs, second[17].inputs) and not torch.equal(first[17].inputs, first[18].inputs)


def test_the_tiny_adding_problem_beats_its_baseline():
    task = memory.task
    config = task.build_config("tiny", {"train.max_steps": 1000, "train.batch_size": 32})
    data = task.load_data(config)
    batches, val = task.batches(config, data)
    model = task.build_model(config, data.vocabularies)
    train(model, batches, config.train, task.step_loss)
    result = task.evaluate(model, val)
    assert result["loss"] < 0.1 * result["baseline"], result


def test_a_gru_starts_recalling_the_tiny_copy_problem():
    """Copy memory is slow to learn (the LSTM sits at the baseline for long): a GRU with T = 10 begins within
    1000 steps; chance recall is 1/8."""
    task = memory.task
    config = task.build_config(
        "tiny",
        {
            "data.problem": "copy",
            "data.seq_len": 10,
            "model.cell": "gru",
            "model.hidden_size": 32,
            "train.max_steps": 1000,
            "train.batch_size": 32,
        },
    )
    data = task.load_data(config)
    batches, val = task.batches(config, data)
    model = task.build_model(config, data.vocabularies)
    train(model, batches, config.train, task.step_loss)
    result = task.evaluate(model, val)
    assert result["loss"] < result["baseline"] and result["recall_accuracy"] > 0.18, result


# --- the command line ---------------------------------------------------------------------------------
def test_every_seqmnist_and_memory_subcommand_has_a_fast_dry_run(tmp_path):
    runs = run_side_by_side(
        *(
            ((task, action, "--dry-run"), tmp_path)
            for task in ("seqmnist", "memory")
            for action in ("train", "predict", "eval")
        )
    )
    for result in runs:
        assert_ok(result)
    assert len(runs[1].stdout.splitlines()) == 8 and "accuracy" in runs[2].stdout
    assert "target" in runs[4].stdout and "trivial baseline" in runs[5].stdout


def test_diagnose_draws_the_gradient_through_a_memory_problem(tmp_path):
    assert_ok(
        run_rnnkit(
            "memory", "train", "--preset", "tiny", "--quiet", "--train.max_steps=3", "--out", "run", cwd=tmp_path
        )
    )
    result = run_rnnkit("diagnose", "run/best.pt", "--out", "diag", cwd=tmp_path)
    assert_ok(result)
    assert "19 steps back" in result.stdout and (tmp_path / "diag" / "gradient_through_time.png").exists()


def test_images_of_another_size_are_refused(tmp_path):
    assert_ok(
        run_rnnkit(
            "seqmnist", "train", "--preset", "tiny", "--quiet", "--train.max_steps=2", "--out", "run", cwd=tmp_path
        )
    )
    (tmp_path / "small.idx").write_bytes(idx_bytes(np.zeros((2, 8, 8), np.uint8)))
    result = run_rnnkit("seqmnist", "predict", "run/best.pt", "--input", "small.idx", cwd=tmp_path)
    assert_one_line_error(
        result.returncode, result.stderr, "small.idx: images of size 8×8, but the model reads 28×28 images"
    )
    (tmp_path / "labels.idx").write_bytes(idx_bytes(np.zeros((3,), np.uint8)))  # a labels file given as images
    result = run_rnnkit("seqmnist", "predict", "run/best.pt", "--input", "labels.idx", cwd=tmp_path)
    assert_one_line_error(
        result.returncode,
        result.stderr,
        "labels.idx: values of sizes 3, not images (N × Y × X: an idx3 file, not idx1)",
    )


def test_training_images_must_be_28_by_28(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((6, 32, 32), np.uint8)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros((6,), np.uint8)))
    with pytest.raises(RnnkitError, match="images of size 32×32, but the model reads 28×28"):
        mnist.load_data(mnist.build_config("tiny", {"data.path": str(tmp_path), "data.val_size": 2}))


def test_a_preset_with_a_time_budget_has_a_dry_run(tmp_path):
    assert_ok(run_rnnkit("wordlm", "train", "--preset", "ptb-cpu", "--dry-run", cwd=tmp_path))
    assert_ok(run_rnnkit("memory", "train", "--dry-run", "--train.seed=9223372036854775807", cwd=tmp_path))
