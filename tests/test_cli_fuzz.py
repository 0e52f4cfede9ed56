"""A fuzzer for the command line: hypothesis draws a subcommand of every task (and the inspection and
export commands), a few of its flags and a value for each (numbers, nan and inf, negatives, empty, unicode,
other flags' words), and runs it with --dry-run through main(), the code `python -m rnnkit` runs. Whatever
comes, the answer is success or rnnkit's own one-line error: never a traceback, never an internal error.

RNNKIT_FUZZ_EXAMPLES sets the number of examples (200 here; 10,000 for a long run).
"""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnkit.cli import build_parser, main

EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES", "200"))


def subcommands() -> dict[tuple[str, ...], list[str]]:
    """Every subcommand's words and its flags (those that take a value), read from the parser itself."""
    found = {}

    def walk(parser, words):
        subparsers = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subparsers:
            found[tuple(words)] = [
                a.option_strings[0]
                for a in parser._actions
                if a.option_strings and a.nargs is None and a.option_strings[0] not in ("--out", "--onnx")
            ]
            return
        for name, child in subparsers[0].choices.items():
            walk(child, [*words, name])

    walk(build_parser(), [])
    return found


COMMANDS = subcommands()
NUMBERS = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-1", "1e-300", "1e308", "nan", "inf", "-inf", "0x10", "1_000", " 3", "3 "]),
)
WORDS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "none", "true", "false", "lstm", "mut3", "cuda", "cpu:5", "mps", "é😀", "-", "--"]),
)
VALUES = st.one_of(NUMBERS, WORDS)


@st.composite
def command_lines(draw) -> list[str]:
    words = draw(st.sampled_from(sorted(COMMANDS)))
    flags = draw(st.lists(st.sampled_from(COMMANDS[words]), max_size=3, unique=True)) if COMMANDS[words] else []
    return [*words, "--dry-run", *(f"{flag}={draw(VALUES)}" for flag in flags)]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
@given(command_lines())
def test_every_command_line_succeeds_or_explains_itself(tmp_path_factory, capsys, line):
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz"))  # where the command may write (it must not, under --dry-run)
    try:
        code = main(line)
    except SystemExit as exit:  # argparse's own usage errors and --help
        code = exit.code
    finally:
        os.chdir(before)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, f"{line}\n{err}"
    if code != 0:  # one line of rnnkit's, the last thing written (a training run may have drawn its progress bar first)
        assert code in (1, 2), f"{line}: exit {code}\n{err}"
        assert err.strip().splitlines()[-1].startswith("rnnkit: error: ") and err.count("rnnkit: error: ") == 1, (
            f"{line}\n{err}"
        )
