"""The public API (rnnkit/__init__.py) is what a notebook needs, and help() has something to say about each
part of it: every public class, its forward and every public function have a docstring."""

import inspect

import rnnkit


def test_every_public_name_is_documented():
    missing = []
    for name in rnnkit.__all__:
        obj = getattr(rnnkit, name)
        if inspect.isclass(obj):
            missing += [name] if not obj.__doc__ else []
            forward = obj.__dict__.get("forward")
            missing += [f"{name}.forward"] if forward is not None and not forward.__doc__ else []
        elif callable(obj) and not obj.__doc__:
            missing.append(name)
    assert missing == []


def test_reprs_show_sizes_as_torch_nn_does():
    assert repr(rnnkit.LSTMCell(32, 64)) == "LSTMCell(32, 64)"
    assert repr(rnnkit.RNNCell(8, 16, "relu")) == "RNNCell(8, 16, nonlinearity='relu')"
    assert "implementation='auto'" in repr(rnnkit.Recurrent(rnnkit.GRUCell(4, 4)))


def test_the_tasks_are_listed():
    assert set(rnnkit.TASKS) >= {"charlm", "wordlm"}
