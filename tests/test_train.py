"""Tests for rnnkit/train.py (and evaluate.py): the CharLM overfits a tiny text, no gradient crosses a
TBPTT cut, the state is carried between chunks, clipping, learning-rate schedules, optimizers, stopping
on NaN, and a resumed run ending bit-identical to one that never stopped."""

import importlib
import math
import time
import types
from dataclasses import asdict, replace

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import rnnkit
from rnnkit.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.config import StreamTrainConfig, TrainConfig
from rnnkit.data.batching import StreamBatches
from rnnkit.data.vocab import Vocab
from rnnkit.errors import RnnkitError
from rnnkit.evaluate import bits_per_char, evaluate_lm, perplexity
from rnnkit.models.char_lm import CharLM
from rnnkit.optim import OPTIMIZERS, clip_gradients, learning_rate_at, make_optimizer
from rnnkit.tasks import TASKS
from rnnkit.tasks.charlm import ModelConfig
from rnnkit.train import TrainingDiverged, train

TEXT = "hello world " * 20
VOCAB = Vocab.from_text(TEXT)
IDS = VOCAB.encode(TEXT)  # (240,)
NEVER = 10**9  # an interval that never comes round
charlm = TASKS["charlm"]
lm_loss = charlm.loss  # loss(model, batch, state), as the training loop calls it


def char_lm(cell: str = "lstm", hidden_size: int = 32, dropout: float = 0.0, seed: int = 0) -> CharLM:
    """A one-layer CharLM over VOCAB, initialised from its own generator."""
    model = CharLM(
        len(VOCAB), ModelConfig(cell=cell, embedding_size=16, hidden_size=hidden_size, num_layers=1, dropout=dropout)
    )
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return model


def record_forward(model: CharLM) -> list[dict]:
    """Wrap model.forward so every call's input ids, incoming state and outgoing state are recorded."""
    calls, original = [], model.forward

    def forward(ids, state=None):
        logits, new_state = original(ids, state)
        calls.append({"ids": ids, "state_in": state, "state_out": new_state})
        return logits, new_state

    model.forward = forward
    return calls


def state_tensors(state) -> list[torch.Tensor]:
    return [tensor for layer in state for tensor in layer]


# --- the model learns ------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_overfits_a_tiny_text(cell):
    """On "hello world " repeated, every next character is determined by the last few, so training drives
    the loss to almost zero: the loop, the loss and the backward pass work together."""
    config = StreamTrainConfig(
        batch_size=1,
        seq_len=16,
        max_steps=200,
        learning_rate=1e-2,
        lr_schedule="constant",
        weight_decay=0.0,
        eval_interval=NEVER,
        seed=0,
    )
    records = train(char_lm(cell), StreamBatches(IDS, 1, 16), config, lm_loss)
    assert [r.step for r in records] == list(range(1, 201))
    assert records[0].loss > 1.5  # it started near uniform over 8 symbols (ln 8 ≈ 2.1)
    assert records[-1].loss < 0.1


def test_records_report_the_schedule_and_the_norm():
    """Each record carries the learning rate used at that step and the pre-clip gradient norm."""
    config = StreamTrainConfig(
        batch_size=2, seq_len=8, max_steps=6, learning_rate=1e-2, warmup_steps=2, eval_interval=NEVER
    )
    records = train(char_lm(), StreamBatches(IDS, 2, 8), config, lm_loss)
    assert [r.learning_rate for r in records] == [learning_rate_at(s, config) for s in range(6)]
    assert all(r.grad_norm > 0 and math.isfinite(r.grad_norm) for r in records)
    assert all(r.units_per_second > 0 and r.val_loss is None for r in records)


# --- truncated backpropagation through time -------------------------------------------------------


@pytest.mark.parametrize("cut", [True, False], ids=["detached", "not-detached"])
def test_no_gradient_crosses_a_tbptt_cut(cut):
    """Chunk 1's loss has no gradient with respect to chunk 0's embedding output once the carried state is
    detached, and has one when it is not: detach keeps the values and cuts the graph."""
    model = char_lm()
    batches = StreamBatches(IDS, 2, 5)
    (inputs0, _), (inputs1, targets1) = batches[0], batches[1]
    embedded0 = model.embedding(inputs0)  # (B, T, E): chunk 0's embedding output
    _, state = model.core(embedded0)
    carried = rnnkit.detach(state) if cut else state
    assert all(torch.equal(a, b) for a, b in zip(state_tensors(carried), state_tensors(state)))  # same values
    logits1, _ = model(inputs1, carried)  # (B, T, V)
    loss1 = F.cross_entropy(logits1.reshape(-1, len(VOCAB)), targets1.reshape(-1))
    (gradient,) = torch.autograd.grad(loss1, embedded0, allow_unused=True)
    if cut:
        assert gradient is None
    else:
        assert gradient is not None and gradient.abs().sum() > 0


@pytest.mark.parametrize("carry_state", [True, False])
def test_train_carries_the_detached_state(carry_state):
    """With carry_state, each step starts from the previous step's final state, detached (same values,
    no graph), except at the start of each pass over the streams, which starts from zeros (None).
    Without it, every step starts from None."""
    model = char_lm()
    calls = record_forward(model)
    batches = StreamBatches(IDS, 2, 36)  # 3 chunks per pass
    assert len(batches) == 3
    config = StreamTrainConfig(batch_size=2, seq_len=36, max_steps=7, carry_state=carry_state, eval_interval=NEVER)
    train(model, batches, config, lm_loss)
    assert len(calls) == 7
    for step, call in enumerate(calls):
        if not carry_state or step % len(batches) == 0:
            assert call["state_in"] is None, f"step {step}"
            continue
        carried, previous = state_tensors(call["state_in"]), state_tensors(calls[step - 1]["state_out"])
        assert all(not t.requires_grad and t.grad_fn is None for t in carried), f"step {step}: state not detached"
        assert all(torch.equal(a, b) for a, b in zip(carried, previous)), f"step {step}: state values not carried"


# --- clipping --------------------------------------------------------------------------------------


def parameters_with_gradients(scale: float) -> list[torch.nn.Parameter]:
    """Three parameters whose gradients are random with global norm around `scale`."""
    generator = torch.Generator().manual_seed(0)
    parameters = [torch.nn.Parameter(torch.zeros(shape)) for shape in [(4, 3), (5,), (2, 2, 2)]]
    for p in parameters:
        p.grad = torch.randn(p.shape, generator=generator) * scale / 5
    return parameters


def flat_gradient(parameters) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in parameters])  # (all elements,)


@pytest.mark.parametrize("tau", [1.0, 0.25])
def test_norm_clipping_bounds_the_norm_and_keeps_the_direction(tau):
    """Huge gradients come back with global norm ≤ τ, pointing the same way; the pre-clip norm is returned."""
    parameters = parameters_with_gradients(1e4)
    before = flat_gradient(parameters).clone()
    norm, clipped = clip_gradients(parameters, TrainConfig(grad_clip=tau, clip_mode="norm"))
    after = flat_gradient(parameters)
    assert norm == pytest.approx(float(before.norm()), rel=1e-6)
    assert clipped is True
    assert float(after.norm()) <= tau * (1 + 1e-6)
    assert float(after.norm()) == pytest.approx(tau, rel=1e-4)
    assert float(F.cosine_similarity(before, after, dim=0)) == pytest.approx(1.0, abs=1e-6)


def test_small_gradients_are_not_clipped():
    """Below τ the gradient is untouched and `clipped` is False."""
    parameters = parameters_with_gradients(0.01)
    before = flat_gradient(parameters).clone()
    norm, clipped = clip_gradients(parameters, TrainConfig(grad_clip=1.0))
    assert torch.equal(flat_gradient(parameters), before)
    assert clipped is False and norm == pytest.approx(float(before.norm()), rel=1e-6)


@pytest.mark.parametrize("clip_mode", ["norm", "value"])
def test_grad_clip_zero_turns_clipping_off_but_still_measures(clip_mode):
    """grad_clip = 0 leaves a huge gradient unchanged and still returns its norm (for the log)."""
    parameters = parameters_with_gradients(1e4)
    before = flat_gradient(parameters).clone()
    norm, clipped = clip_gradients(parameters, TrainConfig(grad_clip=0.0, clip_mode=clip_mode))
    assert torch.equal(flat_gradient(parameters), before)
    assert clipped is False and norm == pytest.approx(float(before.norm()), rel=1e-6)


def test_value_clipping_bounds_each_element():
    """clip_mode="value" clamps each element to ±τ (char-rnn's rule) and returns the pre-clip norm."""
    parameters = parameters_with_gradients(10.0)
    before = flat_gradient(parameters).clone()
    assert before.abs().max() > 0.5  # some elements need clipping
    norm, clipped = clip_gradients(parameters, TrainConfig(grad_clip=0.5, clip_mode="value"))
    assert torch.equal(flat_gradient(parameters), before.clamp(-0.5, 0.5))
    assert clipped is True and norm == pytest.approx(float(before.norm()), rel=1e-6)


def test_unknown_clip_mode_is_an_error():
    with pytest.raises(RnnkitError, match="unknown clip_mode 'global'"):
        clip_gradients(parameters_with_gradients(1.0), TrainConfig(clip_mode="global"))


# --- learning-rate schedules and optimizers --------------------------------------------------------


def test_warmup_is_linear_up_to_the_peak():
    """Warm-up rises linearly to the peak over warmup_steps, then the schedule (here constant) holds it."""
    config = TrainConfig(learning_rate=1.0, warmup_steps=4, max_steps=20, lr_schedule="constant")
    assert [learning_rate_at(s, config) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("warmup_steps", [0, 10])
def test_cosine_runs_from_the_peak_to_the_floor(warmup_steps):
    """Cosine starts at the peak right after warm-up, is halfway at mid-run, ends at peak × min_lr_fraction
    and never rises in between."""
    config = TrainConfig(
        learning_rate=2.0, min_lr_fraction=0.1, warmup_steps=warmup_steps, max_steps=110, lr_schedule="cosine"
    )
    rates = [learning_rate_at(s, config) for s in range(warmup_steps, 111)]
    assert rates[0] == pytest.approx(2.0)
    assert learning_rate_at(warmup_steps + (110 - warmup_steps) // 2, config) == pytest.approx((2.0 + 0.2) / 2)
    assert rates[-1] == pytest.approx(0.2)
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_constant_and_step_schedules():
    """constant holds the peak; step multiplies it by 0.1 at 50% and again at 75% of the run."""
    constant = TrainConfig(learning_rate=3e-3, max_steps=100, lr_schedule="constant")
    assert {learning_rate_at(s, constant) for s in range(101)} == {3e-3}
    step = replace(constant, learning_rate=1.0, lr_schedule="step")
    assert [learning_rate_at(s, step) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )


def test_the_budget_schedule_is_cosine_over_the_time_spent():
    config = TrainConfig(learning_rate=2.0, min_lr_fraction=0.1, max_minutes=1.0, lr_schedule="budget")
    assert [learning_rate_at(7, config, used) for used in (0.0, 0.5, 1.0, 1.7)] == pytest.approx([2.0, 1.1, 0.2, 0.2])
    with pytest.raises(RnnkitError, match="give --train.max_minutes too"):
        rnnkit.config.validate(replace(charlm.Config(), train=replace(config, max_minutes=0.0)))


def test_a_budget_run_anneals_to_the_floor_as_the_budget_ends_and_resumes_with_its_time(monkeypatch):
    """A fake clock advancing one second per reading: the run stops when the budget is spent, its rate fell
    all the way, and a resumed run starts from the time already spent."""
    clock = iter(range(10**6))
    loop = importlib.import_module("rnnkit.train")  # the module (rnnkit.train is also the function)
    monkeypatch.setattr(
        loop, "time", types.SimpleNamespace(monotonic=lambda: float(next(clock)), perf_counter=time.perf_counter)
    )
    config = StreamTrainConfig(
        batch_size=2,
        seq_len=8,
        max_steps=NEVER,
        learning_rate=1.0,
        min_lr_fraction=0.1,
        lr_schedule="budget",
        max_minutes=1.0,
        eval_interval=NEVER,
        checkpoint_minutes=0.0,
    )
    saved = []
    records = train(
        char_lm(), StreamBatches(IDS, 2, 8), config, lm_loss, save=lambda snapshot, best: saved.append(snapshot)
    )
    rates = [r.learning_rate for r in records]
    assert rates[0] > 0.95 and rates[-1] < 0.12 and all(a >= b for a, b in zip(rates, rates[1:]))
    assert 10 < len(records) < 60 and saved[-1]["train_state"]["elapsed_seconds"] >= 60
    half = {**saved[-1], "train_state": {**saved[-1]["train_state"], "elapsed_seconds": 30.0}}
    resumed = train(char_lm(), StreamBatches(IDS, 2, 8), config, lm_loss, resume=half)
    assert resumed[0].learning_rate < 0.6 and len(resumed) < len(records)


def test_unknown_schedule_is_an_error():
    with pytest.raises(RnnkitError, match="unknown lr_schedule 'linear'"):
        learning_rate_at(0, TrainConfig(lr_schedule="linear"))


@pytest.mark.parametrize(
    "name, cls",
    [
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
        ("sgd", torch.optim.SGD),
        ("rmsprop", torch.optim.RMSprop),
        ("adagrad", torch.optim.Adagrad),
    ],
)
def test_make_optimizer(name, cls):
    """Each name gives its torch optimizer over all the model's parameters, with the configured lr and decay."""
    model = char_lm()
    optimizer = make_optimizer(model, TrainConfig(optimizer=name, learning_rate=0.123, weight_decay=0.01, momentum=0.9))
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.123 and group["weight_decay"] == 0.01
    assert {id(p) for p in group["params"]} == {id(p) for p in model.parameters()}
    if name in ("sgd", "rmsprop"):
        assert group["momentum"] == 0.9
    assert set(OPTIMIZERS) == {"adam", "adamw", "sgd", "rmsprop", "adagrad", "ntasgd"}


def test_unknown_optimizer_is_an_error():
    with pytest.raises(RnnkitError, match="unknown optimizer 'lion'"):
        make_optimizer(char_lm(), TrainConfig(optimizer="lion"))


# --- stopping on NaN ---------------------------------------------------------------------------------


def test_nan_loss_stops_training_before_saving():
    """The decoder's output turned NaN in step 3's forward makes that loss NaN: train raises TrainingDiverged
    naming step 3, nothing is saved for that step, and the last snapshot (step 2) holds finite weights."""
    model = char_lm()
    forward_calls, saved = [], {}

    def poison_third_forward(module, args, output):
        forward_calls.append(1)
        return output * float("nan") if len(forward_calls) == 3 else output

    model.decoder.register_forward_hook(poison_third_forward)
    config = StreamTrainConfig(batch_size=2, seq_len=8, max_steps=10, checkpoint_interval=1, eval_interval=NEVER)
    with pytest.raises(TrainingDiverged, match="step 3") as error:
        train(
            model,
            StreamBatches(IDS, 2, 8),
            config,
            lm_loss,
            save=lambda snapshot, is_best: saved.update({snapshot["step"]: snapshot}),
        )
    assert error.value.step == 3
    assert isinstance(error.value, RnnkitError)  # the CLI reports it as one line
    assert sorted(saved) == [1, 2]
    assert all(torch.isfinite(tensor).all() for tensor in saved[2]["model"].values())


def test_nan_gradient_stops_training_before_the_update():
    """A finite loss with a NaN gradient stops at step 1 without the optimizer touching the weights."""
    model = char_lm()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.embedding.weight.register_hook(lambda grad: grad * float("nan"))
    config = StreamTrainConfig(batch_size=2, seq_len=8, max_steps=10, eval_interval=NEVER)
    with pytest.raises(TrainingDiverged, match="gradient norm became nan at step 1"):
        train(model, StreamBatches(IDS, 2, 8), config, lm_loss)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --- resuming ------------------------------------------------------------------------------------------


class Interrupted(Exception):
    """Stands in for a kill: raised right after the checkpoint of step k was written."""


@pytest.mark.parametrize(
    "stop_at, ema", [(4, 0.0), (6, 0.0), (5, 0.9)], ids=["mid-pass", "pass-boundary", "weight-ema"]
)
def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, stop_at, ema):
    """Train 12 steps straight; separately train, get killed after the checkpoint at step k, reload it
    through save_checkpoint/load_checkpoint into a freshly built model and resume to 12. Dropout (drawn
    from the RNG), the carried state, AdamW's moments and the cosine schedule must all pick up exactly
    where they stopped: every final tensor is equal, and so is every later step's loss."""
    batches = StreamBatches(IDS, 2, 18)  # 6 chunks per pass
    assert len(batches) == 6
    config = StreamTrainConfig(
        batch_size=2,
        seq_len=18,
        max_steps=12,
        learning_rate=1e-2,
        warmup_steps=2,
        lr_schedule="cosine",
        carry_state=True,
        checkpoint_interval=stop_at,
        eval_interval=NEVER,
        seed=11,
        ema_decay=ema,
    )
    path = tmp_path / "last.pt"

    straight = char_lm(dropout=0.3)
    straight_records = train(straight, batches, config, lm_loss)

    def save_then_die_at_k(snapshot, is_best):
        save_checkpoint(
            path,
            {
                **snapshot,
                "task": "charlm",
                "config": asdict(charlm.Config(train=config)),
                "vocabularies": {"text": VOCAB.to_dict()},
            },
        )
        if snapshot["step"] == stop_at:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(char_lm(dropout=0.3), batches, config, lm_loss, save=save_then_die_at_k)

    checkpoint = load_checkpoint(path, task="charlm")
    assert checkpoint["step"] == stop_at
    resumed = char_lm(dropout=0.3, seed=99)  # a different initialisation: the checkpoint must overwrite it all
    resumed.load_state_dict(checkpoint["model"])
    resumed_records = train(resumed, batches, config, lm_loss, resume=checkpoint)

    assert [r.step for r in resumed_records] == list(range(stop_at + 1, 13))
    assert [r.loss for r in resumed_records] == [r.loss for r in straight_records[stop_at:]]
    expected = straight.state_dict()
    for name, tensor in resumed.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_weight_ema_follows_its_formula_and_is_what_checkpoints_hold():
    """mean_k = mean_{k-1} + (1 − d_k)(θ_k − mean_{k-1}), d_k = min(d, (1 + k)/(10 + k)); the raw weights keep
    training."""
    from rnnkit.optim import WeightAverage

    weight = torch.nn.Parameter(torch.zeros(2))
    average = WeightAverage([weight], decay=0.5)
    expected = torch.zeros(2)
    for k, value in enumerate([4.0, 8.0, 2.0], start=1):
        with torch.no_grad():
            weight.fill_(value)
        average.update()
        d = min(0.5, (1 + k) / (10 + k))
        expected = expected + (1 - d) * (value - expected)
        assert_close(average.mean[0], expected)
    with average.applied():
        assert_close(weight.detach(), expected)
    assert weight.detach().tolist() == [2.0, 2.0]
    model = char_lm()
    saved = {}
    config = StreamTrainConfig(
        batch_size=2, seq_len=8, max_steps=3, eval_interval=NEVER, checkpoint_interval=3, ema_decay=0.9
    )
    train(model, StreamBatches(IDS, 2, 8), config, lm_loss, save=lambda snapshot, is_best: saved.update(snapshot))
    raw = saved["train_state"]["averaging"]["raw"]
    assert saved["train_state"]["averaging"]["decay"] == 0.9
    assert not torch.equal(
        saved["model"]["decoder.weight"], raw[[n for n, _ in model.named_parameters()].index("decoder.weight")]
    )
    with pytest.raises(RnnkitError, match="choose one"):
        TrainConfig(optimizer="ntasgd", ema_decay=0.9).check()


def test_the_seed_and_dropout_matter():
    """The resume test would pass vacuously if the RNG did not affect training: another seed changes the weights."""
    batches = StreamBatches(IDS, 2, 18)
    config = StreamTrainConfig(batch_size=2, seq_len=18, max_steps=3, learning_rate=1e-2, eval_interval=NEVER, seed=11)
    first, second = char_lm(dropout=0.3), char_lm(dropout=0.3)
    train(first, batches, config, lm_loss)
    train(second, batches, replace(config, seed=12), lm_loss)
    assert not torch.equal(first.decoder.weight, second.decoder.weight)


# --- evaluation ----------------------------------------------------------------------------------------


def test_evaluate_carries_the_state_across_chunks():
    """evaluate_lm equals the mean cross-entropy of running each stream in one call (the state crosses
    chunks), uses eval mode (no dropout) and restores the training mode it found."""
    model = char_lm(dropout=0.5)
    batches = StreamBatches(IDS, 3, 10)
    loss = evaluate_lm(model, batches)
    assert model.training
    model.eval()
    with torch.no_grad():
        steps = len(batches) * 10
        inputs, targets = batches.streams[:, :steps], batches.streams[:, 1 : steps + 1]  # each (B, len·T)
        logits, _ = model(inputs)  # (B, len·T, V)
        expected = F.cross_entropy(logits.reshape(-1, len(VOCAB)), targets.reshape(-1))
    assert loss == pytest.approx(float(expected), rel=1e-5)
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert perplexity(math.log(7)) == pytest.approx(7.0)


def test_nan_policy_skip_drops_the_update_and_halves_the_learning_rate():
    """With nan_policy="skip", a NaN gradient at step 2 leaves the weights as step 1 left them, the record
    says skipped, training goes on, and every later learning rate is half the schedule's."""
    model = char_lm()
    poisoned = {"armed": False}
    model.embedding.weight.register_hook(lambda grad: grad * float("nan") if poisoned["armed"] else grad)
    after_step = {}

    def on_step(record):
        after_step[record.step] = {k: v.clone() for k, v in model.state_dict().items()}
        poisoned["armed"] = record.step == 1  # poison exactly step 2's gradient

    config = StreamTrainConfig(
        batch_size=2, seq_len=8, max_steps=5, eval_interval=NEVER, lr_schedule="constant", nan_policy="skip"
    )
    records = train(model, StreamBatches(IDS, 2, 8), config, lm_loss, on_step=on_step)
    assert [r.skipped for r in records] == [False, True, False, False, False]
    assert all(torch.equal(after_step[1][k], after_step[2][k]) for k in after_step[1])
    assert [r.learning_rate for r in records] == [config.learning_rate] * 2 + [config.learning_rate / 2] * 3
    assert all(math.isfinite(v.abs().sum()) for v in model.state_dict().values())


def test_on_step_returning_true_stops_and_saves_that_step():
    """on_step returning True (the CLI does on SIGTERM) ends training after that step, with a snapshot of it."""
    model = char_lm()
    saved = []
    config = StreamTrainConfig(batch_size=2, seq_len=8, max_steps=50, eval_interval=NEVER, checkpoint_minutes=0)
    records = train(
        model,
        StreamBatches(IDS, 2, 8),
        config,
        lm_loss,
        save=lambda snapshot, is_best: saved.append(snapshot["step"]),
        on_step=lambda record: record.step == 7,
    )
    assert records[-1].step == 7 and saved == [7]


def test_checkpoint_minutes_saves_by_wall_time():
    """checkpoint_minutes > 0 saves whenever that much time has passed: a tiny value saves every step."""
    model = char_lm()
    saved = []
    config = StreamTrainConfig(batch_size=2, seq_len=8, max_steps=4, eval_interval=NEVER, checkpoint_minutes=1e-9)
    train(
        model, StreamBatches(IDS, 2, 8), config, lm_loss, save=lambda snapshot, is_best: saved.append(snapshot["step"])
    )
    assert saved == [1, 2, 3, 4]


def test_evaluating_the_whole_text_scores_every_character():
    """eval's batches (one stream, the last chunk shorter) give the cross-entropy of one pass over all the ids."""
    from rnnkit.data.batching import WholeText

    model = char_lm()
    loss = evaluate_lm(model, WholeText(IDS, seq_len=50))  # 239 targets: chunks of 50, 50, 50, 50, 39
    with torch.no_grad():
        model.eval()
        logits, _ = model(IDS[None, :-1])  # (1, N - 1, V)
        expected = F.cross_entropy(logits[0], IDS[1:])
    assert loss == pytest.approx(float(expected), rel=1e-5)


def test_max_minutes_stops_evaluates_and_saves_the_last_step():
    """A spent time budget ends training after the step it is noticed on, which is evaluated and saved."""
    model = char_lm()
    saved = []
    config = StreamTrainConfig(
        batch_size=2, seq_len=8, max_steps=50, eval_interval=NEVER, checkpoint_minutes=0, max_minutes=1e-9
    )
    records = train(
        model,
        StreamBatches(IDS, 2, 8),
        config,
        lm_loss,
        evaluate=lambda m: {"loss": 1.0},
        save=lambda snapshot, is_best: saved.append(snapshot["step"]),
    )
    assert [r.step for r in records] == [1] and records[0].val_loss == 1.0 and saved == [1]
