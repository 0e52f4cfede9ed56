"""Every task keeps the contract of rnnkit/tasks/base.py: what it must say it says, what it declares it has,
and its settings are all read by something (no dead setting)."""

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import rnnkit
from rnnkit.commands.verbs import verb_module
from rnnkit.config import StreamTrainConfig, TrainConfig, read_settings_file
from rnnkit.tasks.base import Task
from rnnkit.trained import Trained

REQUIRED = ("load_data", "build_model", "batches", "loss", "evaluate", "eval_data", "predict")
NAMES = sorted(rnnkit.TASKS)


def overrides(task: Task, method: str) -> bool:
    return getattr(type(task), method) is not getattr(Task, method)


def settings_fields(kind: type) -> list[dataclasses.Field]:
    assert dataclasses.is_dataclass(kind) and kind.__dataclass_params__.frozen, kind
    return dataclasses.fields(kind)


def test_every_module_in_tasks_is_registered():
    modules = {p.stem for p in Path(rnnkit.tasks.__file__).parent.glob("*.py")} - {"__init__", "base", "lm"}
    assert modules == set(rnnkit.TASKS)


@pytest.mark.parametrize("name", NAMES)
def test_the_task_says_what_it_must(name):
    task = rnnkit.TASKS[name]
    assert isinstance(task, Task) and task.name == name
    for attribute in ("description", "verb", "unit", "per"):
        assert isinstance(getattr(task, attribute), str) and getattr(task, attribute)
    assert [m for m in REQUIRED if not overrides(task, m)] == []
    assert "tiny" in task.presets
    for preset in task.presets:
        task.build_config(preset)  # every preset names settings that exist, with values that pass their checks
    for kind in (task.Model, task.Data, task.Predict, *([task.Evaluate] if task.Evaluate else [])):
        for f in settings_fields(kind):
            assert f.metadata.get("help"), f"{kind.__name__}.{f.name} has no help"


@pytest.mark.parametrize("name", NAMES)
def test_every_hook_takes_what_the_contract_passes(name):
    """An override takes the base's parameters, by name and in order (a task's own extra argument would be one
    the shared code cannot pass); a stream task's loss also takes the carried state and its load_data
    `progress`; evaluate takes `settings` where the task declares Evaluate."""
    task = rnnkit.TASKS[name]
    for hook, base in vars(Task).items():
        if hook.startswith("_") or not inspect.isfunction(base) or getattr(type(task), hook) is base:
            continue
        expected = list(inspect.signature(base).parameters)
        if task.streams and hook in ("loss", "load_data"):
            expected.append({"loss": "state", "load_data": "progress"}[hook])
        if task.Evaluate and hook == "evaluate":
            expected.append("settings")
        assert list(inspect.signature(getattr(type(task), hook)).parameters) == expected, hook


@pytest.mark.parametrize("name", NAMES)
def test_a_preset_is_a_config_file(name, tmp_path):
    """rnnkit/presets/NAME.yaml holds each preset as a --config file would: given as --config, it is the preset."""
    import yaml

    task = rnnkit.TASKS[name]
    presets = yaml.safe_load((Path(rnnkit.__file__).parent / "presets" / f"{name}.yaml").read_text(encoding="utf-8"))
    assert list(presets) == list(task.presets)
    for preset, settings in presets.items():
        file = tmp_path / f"{preset}.yaml"
        file.write_text(yaml.safe_dump(settings), encoding="utf-8")
        assert task.build_config(None, read_settings_file(file)) == task.build_config(preset)
        assert task.build_config(preset) != task.Config()  # a preset that changed nothing would be a mistake


@pytest.mark.parametrize("name", NAMES)
def test_declared_capabilities_are_there_and_only_they(name):
    task = rnnkit.TASKS[name]
    assert overrides(task, "figures") == task.draws_figures
    assert overrides(task, "encode_text") == task.reads_text
    assert overrides(task, "diagnosis") == (task.generates_data and overrides(task, "diagnosis"))
    assert task.headline is None or isinstance(task.headline, str)
    train = {f.name: f.type for f in dataclasses.fields(task.Config)}["train"]
    assert train is (StreamTrainConfig if task.streams else TrainConfig)
    stream_only = {f.name for f in dataclasses.fields(StreamTrainConfig)} - {
        f.name for f in dataclasses.fields(TrainConfig)
    }
    assert stream_only == {"seq_len", "carry_state", "eval_tokens"}


@pytest.mark.parametrize("name", NAMES)
def test_the_python_interface_and_the_command_line(name):
    task = rnnkit.TASKS[name]
    assert issubclass(task.trained, Trained)
    methods = [m for m, value in vars(task.trained).items() if not m.startswith("_") and callable(value)]
    assert methods, f"{name}: its Trained names no method for what it does"
    for method in methods:
        assert ">>>" in (getattr(task.trained, method).__doc__ or ""), f"{name}.{method}: no example in its docstring"
    verb = verb_module(name)
    predict_flags = {f.name for f in dataclasses.fields(task.Predict)}
    option_flags = {f.name for f in settings_fields(verb.Options)}
    assert predict_flags.isdisjoint(option_flags)
    assert list(inspect.signature(verb.run).parameters) == ["trained", "settings", "options", "out"]


def source_files() -> list[Path]:
    return sorted(Path(rnnkit.__file__).parent.rglob("*.py"))


def attributes_read() -> set[str]:
    """Every `x.name` read anywhere in rnnkit/ (an attribute load, not the field's own definition)."""
    names = set()
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
    return names


def test_no_setting_is_dead():
    """Each setting of each task's sections (and of predict and eval) is read by name somewhere in rnnkit/;
    a field nothing reads would be a flag that does nothing."""
    read = attributes_read()
    dead = []
    for name in NAMES:
        task = rnnkit.TASKS[name]
        kinds = (task.Model, task.Data, TrainConfig, task.Predict, verb_module(name).Options, task.Evaluate)
        for kind in (k for k in kinds if k is not None):
            dead += [f"{name}: {kind.__name__}.{f.name}" for f in dataclasses.fields(kind) if f.name not in read]
    assert dead == []


FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*(?![\w.=-])")  # --input, --beam-width; not a setting, --data.path


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants in `tree` (their usage examples may show the command line)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
        ):
            found.add(id(body[0].value))
    return found


def test_no_module_under_tasks_or_models_prints_writes_or_names_a_flag():
    root = Path(rnnkit.__file__).parent
    offences = []
    for path in [*(root / "tasks").glob("*.py"), *(root / "models").glob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        documentation = docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "open"):
                offences.append(f"{path.name}:{node.lineno} calls {node.func.id}")
            written = ("write_text", "write_bytes", "savefig", "mkdtemp", "save")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in written:
                offences.append(f"{path.name}:{node.lineno} calls {node.func.attr}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in documentation:
                offences += [f"{path.name}:{node.lineno} names {flag}" for flag in FLAG.findall(node.value)]
    assert offences == []
