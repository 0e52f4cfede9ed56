"""Tests for rnnkit/config.py: presets, dotted type-checked overrides, and the asdict/from_dict round trip."""

from dataclasses import asdict, fields

import pytest

from rnnkit.config import StreamTrainConfig, TrainConfig, apply_overrides, from_dict
from rnnkit.errors import RnnkitError
from rnnkit.tasks import TASKS
from rnnkit.tasks.charlm import DataConfig, ModelConfig

charlm = TASKS["charlm"]


def test_defaults_then_preset_then_overrides():
    """build_config layers the defaults, the preset and the user's overrides, later ones winning."""
    config = charlm.build_config("tiny", {"train.learning_rate": "3e-3", "train.max_steps": "7", "model.cell": "gru"})
    assert config.model.hidden_size == charlm.presets["tiny"]["model.hidden_size"]  # from the preset
    assert config.train.max_steps == 7  # the override beats the preset's 20
    assert config.train.learning_rate == 3e-3 and isinstance(config.train.learning_rate, float)
    assert config.model.cell == "gru"
    assert config.train.optimizer == TrainConfig().optimizer  # untouched: the default


def test_no_preset_gives_the_defaults():
    """Without a preset or overrides, the config is exactly the dataclass defaults."""
    assert charlm.build_config() == charlm.Config()


@pytest.mark.parametrize("name", sorted(charlm.presets))
def test_every_preset_builds(name):
    """Each preset names real fields with values of the right type, and build_config applies all of them."""
    config = charlm.build_config(name)
    for key, value in charlm.presets[name].items():
        section, field_name = key.split(".")
        assert getattr(getattr(config, section), field_name) == value


def test_unknown_preset_is_an_error():
    """A misspelt preset names itself and the choices."""
    with pytest.raises(RnnkitError, match=r"unknown preset 'tinny'.*tiny"):
        charlm.build_config("tinny")


@pytest.mark.parametrize(
    "key, text",
    [
        ("train.learning_rate", "abc"),
        ("train.max_steps", "3.5"),  # an int field refuses a float
        ("train.carry_state", "maybe"),
        ("model.forget_bias", "high"),
    ],
)
def test_override_values_are_type_checked(key, text):
    """A value that does not parse as the field's type is a one-line error naming the key and the value."""
    with pytest.raises(RnnkitError) as error:
        charlm.build_config(overrides={key: text})
    message = str(error.value)
    assert f"--{key}" in message and repr(text) in message and "\n" not in message


@pytest.mark.parametrize("key", ["train.learning_rat", "bogus.seed", "learning_rate", "train."])
def test_unknown_keys_are_errors(key):
    """Misspelt fields, unknown sections and keys without a section are refused, naming the key."""
    with pytest.raises(RnnkitError, match=f"unknown setting --{key}"):
        charlm.build_config(overrides={key: "1"})


@pytest.mark.parametrize(
    "text, expected",
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_bools_parse(text, expected):
    """Bool fields read the usual spellings (not Python's bool('false') == True)."""
    assert charlm.build_config(overrides={"train.carry_state": text}).train.carry_state is expected


@pytest.mark.parametrize("text, expected", [("none", None), ("None", None), ("null", None), ("1.5", 1.5), ("-2", -2.0)])
def test_optional_float(text, expected):
    """An optional float field (forget_bias) takes 'none' as None, and numbers as floats."""
    assert charlm.build_config(overrides={"model.forget_bias": text}).model.forget_bias == expected


def test_typed_override_values_pass_through():
    """Presets and notebooks may give already-typed values; strings are parsed only for non-str fields."""
    config = apply_overrides(charlm.Config(), {"train.max_steps": 9, "model.cell": "rnn", "data.path": "1e3"})
    assert config.train.max_steps == 9 and config.model.cell == "rnn"
    assert config.data.path == "1e3"  # a str field keeps its text as is


def test_configs_are_frozen():
    """Configs cannot be mutated in place; overrides build new ones."""
    config = charlm.Config()
    with pytest.raises(AttributeError):
        config.train.max_steps = 1  # type: ignore[misc]
    assert (
        apply_overrides(config, {"train.max_steps": "1"}) is not config
        and config.train.max_steps == TrainConfig().max_steps
    )


def test_from_dict_round_trips():
    """from_dict(charlm.Config, asdict(config)) rebuilds the same nested config (how checkpoints store it)."""
    config = charlm.build_config(
        "tiny", {"model.forget_bias": "1.0", "train.carry_state": "false", "data.path": "x.txt"}
    )
    rebuilt = from_dict(charlm.Config, asdict(config))
    assert rebuilt == config
    assert isinstance(rebuilt.model, ModelConfig) and isinstance(rebuilt.train, TrainConfig)


@pytest.mark.parametrize("path", [(), ("train",)], ids=["top-level", "section"])
def test_from_dict_refuses_unknown_keys(path):
    """A checkpoint written by a different rnnkit with fields this one lacks is an error, not a silent drop."""
    data = asdict(charlm.Config())
    target = data
    for name in path:
        target = target[name]
    target["surprise"] = 1
    with pytest.raises(RnnkitError, match="surprise"):
        from_dict(charlm.Config, data)


def test_every_field_has_help_text():
    """--help shows each field's help text, so none may be missing."""
    for cls in (ModelConfig, DataConfig, TrainConfig, StreamTrainConfig, charlm.Predict):
        for field in fields(cls):
            assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"


def test_a_fraction_above_one_is_refused():
    """min_lr_fraction > 1 would end the cosine schedule above its peak: refused where it is parsed."""
    with pytest.raises(RnnkitError, match="--train.min_lr_fraction: must be at most 1"):
        charlm.build_config(overrides={"train.min_lr_fraction": "9389033"})
