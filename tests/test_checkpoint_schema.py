"""Each task's checkpoint checked against what the task declares before anything is built from it: every key
of a tiny checkpoint deleted and retyped in turn gives rnnkit's own one-line error, never an internal one."""

import copy
from dataclasses import asdict

import pytest

import rnnkit
from rnnkit.checkpoint import save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.tasks import check_vocabularies, from_checkpoint

NAMES = sorted(rnnkit.TASKS)
WRONG = [7, "x", [1], None, {"a": 1}, [[1]]]


def tiny_checkpoint(name: str) -> dict:
    model, vocabularies, config = rnnkit.TASKS[name].tiny_model()
    return {
        "task": name,
        "model": model.state_dict(),
        "config": asdict(config),
        "vocabularies": {n: v.to_dict() for n, v in vocabularies.items()},
        "step": 0,
    }


def mutated(checkpoint: dict):
    """(what, checkpoint, must_fail) for each deletion and retyping of a key, a vocabulary and a vocabulary's key."""
    optional = ("optimizer", "train_state")
    for key in [k for k in checkpoint if k != "model"]:
        changed = copy.deepcopy(checkpoint)
        del changed[key]
        yield f"del {key}", changed, key not in optional
        for wrong in WRONG:
            changed = copy.deepcopy(checkpoint)
            changed[key] = wrong
            yield f"{key}={wrong!r}", changed, not (key == "step" and wrong == 7)  # another step is a step
    task = rnnkit.TASKS[checkpoint["task"]]
    vocabularies = checkpoint["vocabularies"]
    for name, vocabulary in vocabularies.items():
        changed = copy.deepcopy(checkpoint)
        del changed["vocabularies"][name]
        yield f"del vocabularies.{name}", changed, name not in task.optional_vocabularies
        for inner in vocabulary:
            for wrong in ["<deleted>", *WRONG]:
                changed = copy.deepcopy(checkpoint)
                if wrong == "<deleted>":
                    del changed["vocabularies"][name][inner]
                else:
                    changed["vocabularies"][name][inner] = wrong
                # a character vocabulary without its kind is format 1's, and still read
                yield f"vocabularies.{name}.{inner}={wrong!r}", changed, not (inner == "kind" and wrong == "<deleted>")
        for other, data in vocabularies.items():
            if data.get("kind") != vocabulary.get("kind"):  # one of another kind in its place
                changed = copy.deepcopy(checkpoint)
                changed["vocabularies"][name] = copy.deepcopy(data)
                yield f"vocabularies.{name}=<{other}>", changed, True
    changed = copy.deepcopy(checkpoint)
    changed["vocabularies"]["stray"] = {"kind": "tokens", "specials": [], "tokens": ["a"]}
    yield "vocabularies.stray", changed, True


@pytest.mark.parametrize("name", NAMES)
def test_every_key_deleted_or_retyped_is_refused_in_one_line(name, tmp_path):
    checkpoint = tiny_checkpoint(name)
    path = tmp_path / "mutated.pt"
    save_checkpoint(path, checkpoint)
    rnnkit.load(path)  # whole, it loads
    for what, changed, must_fail in mutated(checkpoint):
        save_checkpoint(path, changed)
        try:
            rnnkit.load(path)
        except RnnkitError as error:
            assert str(path) in str(error) and "\n" not in str(error), (what, str(error))
        else:
            assert not must_fail, f"{what}: loaded"


def test_a_missing_tokenizer_is_named():
    """A translation checkpoint without its source tokenizer: the file and the vocabulary named, before building."""
    checkpoint = tiny_checkpoint("seq2seq")
    del checkpoint["vocabularies"]["source_tokens"]
    with pytest.raises(RnnkitError, match="^de-en.pt: a seq2seq checkpoint must hold the vocabulary 'source_tokens'"):
        from_checkpoint(checkpoint, where="de-en.pt")


@pytest.mark.parametrize("name", NAMES)
def test_each_task_declares_the_vocabularies_its_data_hold(name):
    task = rnnkit.TASKS[name]
    _, vocabularies, _ = task.tiny_model()
    check_vocabularies(task, vocabularies, "tiny")
    assert set(task.vocabulary_kinds) - task.optional_vocabularies <= set(vocabularies)
