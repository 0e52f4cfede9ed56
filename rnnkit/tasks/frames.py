"""Frame-level video labelling (the notes' many-to-many, equal lengths): a label per frame of a clip; or one
label per clip (many-to-one, the notes' video classification), with --model.head=clip.

    rnnkit frames train --data ../data/mnist --preset mnist-cpu --out runs/frames
    rnnkit frames train --data ../data/mnist --preset mnist-cpu --model.context=none --out runs/cnn   # no recurrence
    rnnkit frames train --data ../data/mnist --preset mnist-cpu --model.head=clip --out runs/clip    # the clip's digit
    rnnkit frames eval runs/frames/best.pt --data ../data/mnist                        # clips of the t10k digits
    rnnkit frames predict runs/frames/best.pt --input clips.npy --out runs/frames/shown   # strip PNG, GIF per clip

Clips are generated (rnnkit/data/clips.py): a digit bouncing around a 32×32 canvas behind a grey band. Each
frame's labels are where the digit goes next (up-left, up-right, down-left, down-right), which no single frame
shows, and which digit it is, which the frames where it is behind the band do not show. --data is MNIST's idx
directory (validation clips use the last 5000 training digits, eval the t10k ones); without it, bar glyphs
generated in the package.

A clip's own label is its digit: the one label it keeps throughout (its direction changes at every bounce).
The clip head reads it from the last state; with --model.context=none the per-frame CNN's frames are pooled
(their mean: what the frames' own logits say on average), the baseline to set beside it on the same clips.
"""

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.config import option
from rnnkit.data.clips import CANVAS, DIRECTIONS, FRAMES, ClipBatches, make_clips, scaled
from rnnkit.data.compose import NAMES
from rnnkit.data.idx import read_mnist
from rnnkit.data.images import argument_pixels, pixel_argument
from rnnkit.data.vocab import TokenVocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import evaluating
from rnnkit.models.core import CoreConfig
from rnnkit.models.frames import HEADS, FrameLabeller
from rnnkit.tasks.base import Task, evaluation_batches
from rnnkit.tasks.caption import glyphs
from rnnkit.trained import Trained, one_or_stack


@dataclass(frozen=True)
class ModelConfig(CoreConfig):
    context: str = option(
        "rnn",
        "what each frame's labels read: rnn (the recurrent layer over the frames) or none (the per-frame CNN alone)",
        choices=("rnn", "none"),
    )
    bidirectional: bool = option(
        True, "read the clip both ways (a one-directional layer cannot know the first frame's direction)"
    )
    hidden_size: int = option(128, "hidden units of the recurrent layer (per direction)", at_least=1)
    num_layers: int = option(1, "stacked recurrent layers (at most 1000)", at_least=1, at_most=1000)
    dropout: float = option(0.0, "dropout between layers and before the heads", at_least=0, below=1)
    feature_size: int = option(64, "F: the size of each frame's vector v_t", at_least=1)
    channels: int = option(16, "channels of the CNN's first convolution (then twice that)", at_least=1)
    head: str = option(
        "frames",
        "what is labelled: frames (each frame's direction and digit) or clip (the clip's digit, from the last state; "
        "with context=none from the mean of the frames)",
        choices=HEADS,
    )


@dataclass(frozen=True)
class DataConfig:
    path: str = option("", "MNIST's idx directory (train-images-idx3-ubyte[.gz], ...; empty: generated bar glyphs)")
    train_count: int = option(20000, "clips per pass (every training batch is new clips)", at_least=1)
    val_count: int = option(1000, "validation clips", at_least=1)


BATCH = 64  # clips labelled together from Python


@dataclass
class ClipData:
    vocabularies: dict  # {"directions", "digits"}
    train_glyphs: Tensor  # (N, DIGIT, DIGIT) uint8
    train_labels: Tensor  # (N,)
    val_glyphs: Tensor
    val_labels: Tensor
    source: str


@dataclass(frozen=True)
class FrameLabels:
    """One clip's labels, frame by frame: where the digit goes next (directions) and which digit it is (digits),
    each with the probability the model gives it (of the 4 directions, of the 10 digits), one per frame."""

    directions: list[str]
    digits: list[str]
    direction_probabilities: list[float]
    digit_probabilities: list[float]


@dataclass(frozen=True)
class ClipLabel:
    """One clip's label (a model of head "clip"): which digit it shows, and the probability the model gives it
    (of the 10 digits)."""

    digit: str
    probability: float


def vocabularies() -> dict:
    return {"directions": TokenVocab(list(DIRECTIONS)), "digits": TokenVocab(list(NAMES))}


def most_likely(logits: Tensor, symbols: list[str]) -> tuple[list[list[str]], list[list[float]]]:
    """Logits (B, T, K) -> each frame's most likely symbol and its probability, clip by clip."""
    best = logits.argmax(-1)  # (B, T)
    chances = logits.softmax(-1).gather(-1, best[..., None])[..., 0]  # (B, T)
    return [[symbols[k] for k in row] for row in best.tolist()], chances.tolist()


def clip_of(value, argument: str) -> Tensor:
    """A (T, Y, X) numpy array or tensor of the canvas's pixels -> (T, Y, X) uint8 (floats in [0, 1] scaled, as the
    readers do)."""
    clip = pixel_argument(value, argument, f"a (T, {CANVAS}, {CANVAS}) clip", (None, CANVAS, CANVAS))
    return argument_pixels(clip, argument)  # (T, Y, X)


def labelled(trained: Trained, clips, settings: dict, head: str) -> list | FrameLabels | ClipLabel:
    """What label_frames (head "frames") and label_clips (head "clip") share: the clips checked, then labelled."""
    method = {"frames": "label_frames", "clip": "label_clips"}
    if trained.config.model.head != head:
        raise RnnkitError(
            f"{method[head]}: this model was trained with model.head={trained.config.model.head}; "
            f"use {method[trained.config.model.head]}"
        )
    chosen = trained.settings(settings)
    empty = "an empty stack (0, T, Y, X): there is nothing to label"
    items, single = one_or_stack(clips, "clips", "a (T, Y, X) clip", 3, empty)
    items = [clip_of(item, "clips" if single else f"clips[{k}]") for k, item in enumerate(items)]
    results = trained.predict_in_batches(items, chosen, BATCH)
    return results[0] if single else results


def clip_metrics(model: FrameLabeller, batches: ClipBatches, device="cpu") -> dict:
    """A clip head's metrics: its loss (per frame, as training's; and per clip), the share of clips whose digit is
    right, and of those that end with the digit hidden."""
    total, frames, clips, right, ended_hidden, ended_hidden_right = 0.0, 0, 0, 0, 0, 0
    for batch in evaluation_batches(model, batches, device):
        logits, digits = model(batch.frames), batch.digits[:, 0]  # (B, K_c), (B,)
        total += float(F.cross_entropy(logits, digits, reduction="sum"))
        correct = logits.argmax(-1) == digits  # (B,)
        frames, clips, right = frames + batch.digits.numel(), clips + len(digits), right + int(correct.sum())
        ended_hidden += int(batch.hidden[:, -1].sum())
        ended_hidden_right += int((correct & batch.hidden[:, -1]).sum())
    return {
        "loss": total / frames,  # per frame, as training's
        "clip_loss": total / clips,
        "accuracy": right / clips,
        "ended_hidden_accuracy": ended_hidden_right / max(ended_hidden, 1),
        "clips": clips,
        "ended_hidden": ended_hidden,
    }


class TrainedClipLabeller(Trained):
    """A frame labeller from Python: label each frame of a clip, or each clip (a model of head "clip")."""

    def label_frames(self, clips, **settings) -> FrameLabels | list[FrameLabels]:
        """Each frame's direction and digit. A clip is (T, Y, X) pixels of the 32 × 32 canvas, light on dark (a
        numpy array or torch tensor, uint8 or floats in [0, 1]); give one, a list, or a stack (N, T, Y, X).

        >>> labels = rnnkit.load("runs/frames").label_frames(clip)
        >>> labels.directions[:2], labels.digits[:2]
        (['down-left', 'down-left'], ['four', 'four'])
        """
        return labelled(self, clips, settings, "frames")

    def label_clips(self, clips, **settings) -> ClipLabel | list[ClipLabel]:
        """Each clip's digit, from a model trained with head "clip". Clips are given as to label_frames.

        >>> label = rnnkit.load("runs/clip").label_clips(clip)
        >>> label.digit, label.probability
        ('four', 0.97)
        """
        return labelled(self, clips, settings, "clip")


class ClipLabelling(Task):
    """Labels every frame of a clip with the digit's direction of motion and the digit, hidden or not."""

    name = "frames"
    description = (
        "video labelling: direction of motion and the occluded digit per frame (many-to-many), or the digit per "
        "clip (many-to-one): train, eval, predict"
    )
    unit, per = "frames", "frame"
    Model, Data = ModelConfig, DataConfig
    vocabulary_kinds = {"directions": TokenVocab, "digits": TokenVocab}
    headline = "accuracy"
    trained = TrainedClipLabeller

    def load_data(self, config, tiny: bool = False) -> ClipData:
        images, labels, source = glyphs(config, tiny)
        cut = len(images) * 11 // 12  # MNIST: 55,000 digits for training clips, the last 5,000 for validation ones
        small = scaled(images)  # (N, DIGIT, DIGIT)
        return ClipData(
            vocabularies(), small[:cut], labels[:cut], small[cut:], labels[cut:], f"{source} in moving clips"
        )

    def batches(self, config, data: ClipData) -> tuple[ClipBatches, ClipBatches]:
        seed, counts = config.train.seed, config.data
        train = ClipBatches(
            data.train_glyphs,
            data.train_labels,
            config.train.batch_size,
            True,
            seed,
            counts.train_count,
            f"{data.source} (training)",
        )
        val = ClipBatches(
            data.val_glyphs, data.val_labels, 100, False, seed + 1, counts.val_count, f"{data.source} (validation)"
        )
        return train, val

    def build_model(self, config, vocabularies: dict) -> FrameLabeller:
        model = FrameLabeller(config.model, CANVAS, len(vocabularies["directions"]), len(vocabularies["digits"]))
        model.reset_parameters(torch.Generator().manual_seed(config.train.seed))
        return model

    def loss(self, model: FrameLabeller, batch) -> tuple[Tensor, int]:
        """Head "frames": the two labels' cross-entropies, summed, per frame. Head "clip": the clip's cross-entropy
        spread over its T frames (per frame too, so the loss, its plot and the throughput all count frames)."""
        if model.config.head == "clip":
            B, T = batch.digits.shape
            return F.cross_entropy(model(batch.frames), batch.digits[:, 0]) / T, B * T  # every clip T frames long
        directions, digits = model(batch.frames)  # (B, T, K_d), (B, T, K_c)
        total = F.cross_entropy(directions.flatten(0, 1), batch.directions.flatten()) + F.cross_entropy(
            digits.flatten(0, 1), batch.digits.flatten()
        )
        return total, batch.directions.numel()

    def evaluate(self, model: FrameLabeller, batches: ClipBatches, device="cpu") -> dict:
        """Loss per frame; the share of frames with both labels right (accuracy), each label's, and the digit's on
        the frames where it is hidden. Head "clip": the share of clips whose digit is right (accuracy), and of
        those that end with the digit hidden (what only a memory of earlier frames can tell)."""
        if model.config.head == "clip":
            return clip_metrics(model, batches, device)
        total, frames, both, direction, digit, hidden, hidden_right = 0.0, 0, 0, 0, 0, 0, 0
        for batch in evaluation_batches(model, batches, device):
            direction_logits, digit_logits = model(batch.frames)  # (B, T, K_d), (B, T, K_c)
            total += float(
                F.cross_entropy(direction_logits.flatten(0, 1), batch.directions.flatten(), reduction="sum")
                + F.cross_entropy(digit_logits.flatten(0, 1), batch.digits.flatten(), reduction="sum")
            )
            direction_right = direction_logits.argmax(-1) == batch.directions  # (B, T)
            digit_right = digit_logits.argmax(-1) == batch.digits  # (B, T)
            frames += batch.directions.numel()
            both += int((direction_right & digit_right).sum())
            direction += int(direction_right.sum())
            digit += int(digit_right.sum())
            hidden += int(batch.hidden.sum())
            hidden_right += int((digit_right & batch.hidden).sum())
        return {
            "loss": total / frames,
            "accuracy": both / frames,
            "direction_accuracy": direction / frames,
            "digit_accuracy": digit / frames,
            "hidden_digit_accuracy": hidden_right / max(hidden, 1),
            "examples": frames,
            "hidden_frames": hidden,
        }

    def describe(self, metrics: dict) -> str:
        if "clips" in metrics:  # head "clip"
            return (
                f"loss {metrics['clip_loss']:.4f} nats/clip, clips right {metrics['accuracy']:.2%} "
                f"(those ending hidden {metrics['ended_hidden_accuracy']:.2%}, {metrics['ended_hidden']:,} of them; "
                f"{metrics['clips']:,} clips)"
            )
        return (
            f"loss {metrics['loss']:.4f} nats/frame, frames right {metrics['accuracy']:.2%} "
            f"(direction {metrics['direction_accuracy']:.2%}, digit {metrics['digit_accuracy']:.2%}, "
            f"digit while hidden {metrics['hidden_digit_accuracy']:.2%}; {metrics['examples']:,} frames)"
        )

    def eval_data(self, path: str, vocabularies: dict, config) -> dict:
        """Clips of MNIST's t10k digits."""
        images, labels = read_mnist(path, "t10k")
        if tuple(images.shape[1:]) != (28, 28):
            raise RnnkitError(f"{path}: MNIST digits are 28 × 28, these are {tuple(images.shape[1:])}")
        clips = ClipBatches(scaled(images), labels, 100, False, config.train.seed + 2, config.data.val_count, path)
        return {f"{path} (t10k digits in moving clips)": clips}

    def predict(
        self, model: FrameLabeller, vocabularies: dict, inputs: list[Tensor], settings
    ) -> Iterator[FrameLabels | ClipLabel]:
        """Each clip's labels, frame by frame (head "frames") or its digit (head "clip"); clips (T, Y, X) uint8 of
        the model's canvas, those of one length next to each other labelled together."""
        device = next(model.parameters()).device
        for _, group in itertools.groupby(inputs, key=lambda clip: clip.shape):
            clips = torch.stack(list(group))  # (B, T, Y, X)
            with torch.no_grad(), evaluating(model):
                logits = model(clips.to(device))  # head "clip": (B, K_c); "frames": (B, T, K_d), (B, T, K_c)
            if model.config.head == "clip":
                digits, chances = most_likely(logits.cpu()[:, None], vocabularies["digits"].symbols)  # one "frame"
                yield from (ClipLabel(digit[0], chance[0]) for digit, chance in zip(digits, chances))
                continue
            direction_logits, digit_logits = logits
            directions, direction_chances = most_likely(direction_logits.cpu(), vocabularies["directions"].symbols)
            digits, digit_chances = most_likely(digit_logits.cpu(), vocabularies["digits"].symbols)
            yield from map(FrameLabels, directions, digits, direction_chances, digit_chances)

    def preview(self, model: FrameLabeller, data: ClipData, config, length: int, seed: int) -> str:
        """One validation clip: its labels and the model's, frame by frame (or the clip's digit)."""
        clip = make_clips(data.val_glyphs, data.val_labels, 1, random.Random(seed).randrange(2**31))
        names, words = data.vocabularies["digits"].symbols, data.vocabularies["directions"].symbols
        labels = next(self.predict(model, data.vocabularies, list(clip.frames), self.Predict()))
        hidden = [t for t, h in enumerate(clip.hidden[0].tolist()) if h]
        if isinstance(labels, ClipLabel):
            return (
                f"true {names[int(clip.digits[0, 0])]}, predicted {labels.digit} ({labels.probability:.0%})\n"
                f"({FRAMES} frames; hidden at {hidden})"
            )
        truth = zip(clip.directions[0].tolist(), clip.digits[0].tolist())
        return (
            f"true      {' '.join(f'{words[d]}/{names[c]}' for d, c in truth)}\n"
            f"predicted {' '.join(f'{d}/{c}' for d, c in zip(labels.directions, labels.digits))}\n"
            f"({FRAMES} frames; hidden at {hidden})"
        )


task = ClipLabelling()
