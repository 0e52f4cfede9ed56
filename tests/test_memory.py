"""The long-memory task's answers as data (rnnkit/tasks/memory.py): predict on drawn problems, solve() from
Python with its arguments checked, and the problem diagnose measures; add1 (counting the 1s) from its
generator to its baseline, learning and command line. The adding and copy generators and their learning tests
are in test_seqmnist.py."""

import pytest
import torch
from test_cli import run_main
from torch.testing import assert_close

from rnnkit.cells import RNNCell
from rnnkit.data.synthetic import GeneratedBatches, baseline, count_ones
from rnnkit.errors import ArgumentError, ArgumentTypeError
from rnnkit.tasks import TASKS
from rnnkit.tasks.base import NoSettings
from rnnkit.tasks.memory import Problem, Solution
from rnnkit.train import train

memory = TASKS["memory"]


def tiny(problem: str):
    config = memory.build_config("tiny", {"data.problem": problem})
    model = memory.build_model(config, {}).eval()
    return config, model, memory.trained(model, {}, config, memory)


def test_problems_are_the_generators_draw_one_by_one():
    config, _, _ = tiny("adding")
    problems = memory.problems(config, 5, seed=3)
    batch = GeneratedBatches("adding", 5, config.data.seq_len, 3, count=1)[0]
    assert [type(p) for p in problems] == [Problem] * 5
    assert torch.equal(torch.stack([p.inputs for p in problems]), batch.inputs)
    assert torch.equal(torch.stack([p.target for p in problems]), batch.targets)


def test_adding_answers_are_the_last_steps_output_beside_the_sum():
    config, model, _ = tiny("adding")
    problems = memory.problems(config, 3, seed=1)
    solved = list(memory.predict(model, {}, problems, NoSettings()))
    with torch.no_grad():
        outputs = model(torch.stack([p.inputs for p in problems]))  # (B, T, 1)
    for problem, solution, output in zip(problems, solved, outputs):
        assert isinstance(solution, Solution) and solution.inputs.shape == (config.data.seq_len, 2)
        assert isinstance(solution.answer, float) and isinstance(solution.target, float)
        assert solution.answer == pytest.approx(float(output[-1, 0]), abs=1e-6)
        assert solution.target == pytest.approx(float(problem.target))
        assert str(solution) == f"answer {solution.answer:.4f}\ttarget {solution.target:.4f}"


def test_copy_answers_are_the_ten_digits_recalled_beside_the_ten_given():
    config, model, _ = tiny("copy")
    problems = memory.problems(config, 2, seed=0)
    for problem, solution in zip(problems, memory.predict(model, {}, problems, NoSettings())):
        assert solution.inputs.shape == (config.data.seq_len + 20,)
        assert len(solution.answer) == 10 and all(isinstance(d, int) and 0 <= d <= 9 for d in solution.answer)
        assert solution.target == problem.inputs[:10].tolist()  # the digits given before the gap
        digits = "".join(map(str, solution.answer)), "".join(map(str, solution.target))
        assert str(solution) == "recalled {}\ttarget {}".format(*digits)


def test_solve_draws_count_problems_from_seed_and_answers_in_chunks_like_at_once():
    config, model, trained = tiny("adding")
    solved = trained.solve(count=150, seed=7)  # two chunks of EVAL_CHUNK or fewer
    again = trained.solve(count=150, seed=7)
    assert len(solved) == 150 and [(s.answer, s.target) for s in again] == [(s.answer, s.target) for s in solved]
    assert [s.target for s in trained.solve(count=150, seed=8)] != [s.target for s in solved]
    batch = GeneratedBatches("adding", 150, config.data.seq_len, 7, count=1)[0]
    with torch.no_grad():
        at_once = model(batch.inputs)[:, -1, 0]  # (B,)
    assert_close(torch.tensor([s.answer for s in solved]), at_once, atol=1e-5, rtol=1e-5)
    assert len(trained.solve()) == 4  # the defaults: 4 problems from seed 0


@pytest.mark.parametrize(
    "settings, error, named",
    [
        ({"count": 0}, ArgumentError, "count"),
        ({"count": 10001}, ArgumentError, "count"),
        ({"count": "3"}, ArgumentTypeError, "count"),  # a string where a number goes
        ({"count": [3]}, ArgumentTypeError, "count"),  # a list where a number goes
        ({"seed": -1}, ArgumentError, "seed"),
        ({"problems": 3}, ArgumentTypeError, "problems"),
    ],
)
def test_solve_names_a_bad_argument(settings, error, named):
    _, _, trained = tiny("adding")
    with pytest.raises(error) as raised:
        trained.solve(**settings)
    assert str(raised.value).startswith(f"{named}: ")


def test_memory_declares_its_own_diagnosis():
    """rnnkit diagnose measures a memory model on a batch of its own problem: the core's inputs and the loss at
    the last step."""
    assert memory.generates_data and not TASKS["tagger"].generates_data
    for problem, width in (("adding", 2), ("copy", 16), ("add1", 1)):
        config, model, _ = tiny(problem)
        x, loss_of_last, what = memory.diagnosis(model, {}, config)
        assert x.shape[0] == 16 and x.shape[2] == width and what
        outputs, _ = model.core(x)  # (B, T, H)
        assert loss_of_last(outputs[:, -1]).dim() == 0


# --- add1: count the 1s ---------------------------------------------------------------------------------------
def test_add1_is_bits_and_the_count_of_their_ones():
    batch = count_ones(64, 30, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == (64, 30, 1) and batch.targets.shape == (64,)
    assert set(batch.inputs.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(batch.targets, batch.inputs[..., 0].sum(1))
    assert 0.3 < float(batch.inputs.mean()) < 0.7  # fair bits
    first, again = GeneratedBatches("add1", 4, 30, seed=1), GeneratedBatches("add1", 4, 30, seed=1)
    assert torch.equal(first[5].inputs, again[5].inputs) and not torch.equal(first[5].inputs, first[6].inputs)


def test_add1s_baseline_is_the_mse_of_always_answering_half_of_t():
    """Answering T/2 every time scores the count's variance, T/4: measured on 20,000 draws, within 3%."""
    for seq_len in (20, 400):
        counts = GeneratedBatches("add1", 20000, seq_len, seed=3, count=1)[0].targets  # (N,)
        measured = float(((counts - seq_len / 2) ** 2).mean())
        assert baseline("add1", seq_len) == seq_len / 4 and measured == pytest.approx(seq_len / 4, rel=0.03)


def test_an_untrained_add1_model_starts_at_the_baseline_answer():
    """The readout's bias starts at T/2, so an untrained model answers about the mean count, and predict gives each
    problem's answer beside its count."""
    config, model, _ = tiny("add1")
    problems = memory.problems(config, 3, seed=1)
    solved = list(memory.predict(model, {}, problems, NoSettings()))
    with torch.no_grad():
        outputs = model(torch.stack([p.inputs for p in problems]))  # (B, T, 1)
    for problem, solution, output in zip(problems, solved, outputs):
        assert solution.inputs.shape == (config.data.seq_len, 1) and solution.target == float(problem.inputs.sum())
        assert solution.answer == pytest.approx(float(output[-1, 0]), abs=1e-5)
        assert abs(solution.answer - config.data.seq_len / 2) < 2
        assert str(solution) == f"answer {solution.answer:.4f}\ttarget {solution.target:.4f}"


def test_the_tiny_add1_problem_is_learned_far_past_its_baseline():
    config = memory.build_config("tiny", {"data.problem": "add1", "train.max_steps": 300})
    data = memory.load_data(config)
    batches, val = memory.batches(config, data)
    model = memory.build_model(config, data.vocabularies)
    train(model, batches, config.train, memory.step_loss)
    result = memory.evaluate(model, val)
    assert result["loss"] < 0.1 * result["baseline"] and result["count_accuracy"] > 0.5, result
    assert "counted exactly" in memory.describe(result) and "trivial baseline 5.0000" in memory.describe(result)


def test_add1_from_the_command_line(tmp_path, monkeypatch, capsys):
    """train --data.problem=add1, then eval prints the MSE beside T/4 and predict an answer per problem."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(
        ["memory", "train", "--preset", "tiny", "--data.problem=add1", "--train.max_steps=2", "--quiet", "--out", "r"],
        capsys,
    )
    assert code == 0, err
    code, out, err = run_main(["memory", "eval", "r/best.pt"], capsys)
    assert code == 0 and out.startswith("generated add1, T = 20: MSE ") and "(trivial baseline 5.0000)" in out, err
    code, out, err = run_main(["memory", "predict", "r/best.pt", "--count", "2"], capsys)
    assert code == 0 and [line.split("\t")[1].split()[0] for line in out.splitlines()] == ["target", "target"]


def test_the_vanilla_rnn_takes_the_sigmoid_as_its_g():
    """--model.nonlinearity=sigmoid reaches the cell: every h_t lies in (0, 1), and equals σ of the step's sum."""
    config = memory.build_config("tiny", {"data.problem": "add1", "model.cell": "rnn", "model.nonlinearity": "sigmoid"})
    model = memory.build_model(config, {}).eval()
    (cell,) = [module for module in model.modules() if isinstance(module, RNNCell)]
    assert cell.nonlinearity == "sigmoid"
    inputs = memory.problems(config, 4, seed=0)[0].inputs[None]  # (1, T, 1)
    with torch.no_grad():
        outputs, _ = model.core(inputs)  # (1, T, H)
        first = torch.sigmoid(inputs[:, 0] @ cell.W.T + cell.b + cell.b_U)  # (1, H): h_1 from h_0 = 0
    assert bool(((outputs > 0) & (outputs < 1)).all()) and torch.allclose(outputs[:, 0], first, atol=1e-6)
