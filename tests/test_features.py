"""Tests for rnnkit/features.py: the per-character features, on hand-written snippets where the right
answer can be read off, and the unit ranking by correlation."""

import numpy as np
import pytest

from rnnkit.features import correlations, prose_features, rank_units, source_features


def marked(text: str, values: np.ndarray) -> str:
    """The characters where a 0/1 feature is 1, as a string (easy to compare by eye)."""
    return "".join(ch for ch, v in zip(text, values) if v)


def test_strings_with_escapes_and_comments():
    text = 's = "a\\"b" + \'c\'  # not "a string" (\nt = 1'
    f = source_features(text)
    assert marked(text, f["in_string"]) == '"a\\"b"\'c\''
    assert marked(text, f["in_comment"]) == '# not "a string" ('
    assert f["bracket_depth"].max() == 0  # the bracket inside the comment does not count


def test_a_hash_inside_a_string_is_not_a_comment():
    text = 'x = "# no"  # yes'
    f = source_features(text)
    assert marked(text, f["in_string"]) == '"# no"'
    assert marked(text, f["in_comment"]) == "# yes"


def test_triple_quoted_strings_span_lines():
    text = 'a = """one\n"two"\nthree""" + b'
    f = source_features(text)
    assert marked(text, f["in_string"]) == '"""one\n"two"\nthree"""'


def test_an_unterminated_one_line_string_ends_at_the_newline():
    text = 'a = "open\nb = 1'
    assert marked(text, source_features(text)["in_string"]) == '"open'


def test_nested_bracket_depth():
    text = "f(a[1], {2: (3)})"
    depth = source_features(text)["bracket_depth"]
    expected = {"f": 0, "a": 1, "1": 2, "2": 2, "3": 3}
    for ch, d in expected.items():
        assert depth[text.index(ch)] == d, ch
    assert depth[text.index("(")] == 0 and depth[len(text) - 1] == 0  # brackets belong to the outer level
    assert depth[text.index("[")] == 1 and depth[text.index("]")] == 1


def test_brackets_inside_strings_do_not_count():
    text = 'print("(((", x)'
    depth = source_features(text)["bracket_depth"]
    assert depth[text.index("x")] == 1


def test_indentation_line_position_and_if_blocks():
    text = "if x:\n    y = 1\n    if z:\n        w = 2\n\nv = 3\n"
    f = source_features(text)
    assert (
        f["indentation"][text.index("y")] == 4
        and f["indentation"][text.index("w")] == 8
        and f["indentation"][text.index("v")] == 0
    )
    assert f["line_position"][text.index("y")] == 4 and f["line_position"][text.index("v")] == 0
    assert marked(text, f["in_if_block"]) == "    y = 1\n    if z:\n        w = 2\n\n"


def test_prose_quotes_straight_and_curly():
    text = 'He said "hi" and “bye” then left.'
    assert marked(text, prose_features(text)["in_quotes"]) == '"hi"“bye”'


def test_correlations_and_ranking_find_the_unit_that_tracks_a_feature():
    rng = np.random.default_rng(0)
    feature = rng.integers(0, 2, 500).astype(float)
    values = rng.normal(size=(500, 6))
    values[:, 4] = -2 * feature + 0.1 * rng.normal(size=500)  # unit 4 tracks it (negatively)
    values[:, 1] = 0.5  # a constant unit has r = 0, not NaN
    r = correlations(values, feature)
    assert r[1] == 0 and r[4] < -0.95
    assert np.allclose(r[[0, 2, 3, 5]], [np.corrcoef(values[:, k], feature)[0, 1] for k in (0, 2, 3, 5)])
    ranking = rank_units(values, {"bit": feature}, top=2)
    assert ranking["bit"][0][0] == 4 and ranking["bit"][0][1] == pytest.approx(r[4])
