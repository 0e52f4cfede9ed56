"""The long-memory task's answers as data (rnnkit/tasks/memory.py): predict on drawn problems, solve() from
Python with its arguments checked, and the problem diagnose measures. The generators and the learning tests
are in test_seqmnist.py."""

import pytest
import torch
from torch.testing import assert_close

from rnnkit.data.synthetic import GeneratedBatches
from rnnkit.errors import ArgumentError, ArgumentTypeError
from rnnkit.tasks import TASKS
from rnnkit.tasks.base import NoSettings
from rnnkit.tasks.memory import Problem, Solution

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
    for problem, width in (("adding", 2), ("copy", 16)):
        config, model, _ = tiny(problem)
        x, loss_of_last, what = memory.diagnosis(model, {}, config)
        assert x.shape[0] == 16 and x.shape[2] == width and what
        outputs, _ = model.core(x)  # (B, T, H)
        assert loss_of_last(outputs[:, -1]).dim() == 0
