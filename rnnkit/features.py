"""Built-in features of a text, one number per character, for finding the hidden units that track them.

The notes show units of a character model that switch on inside quotes, count brackets or follow the
indentation. To find such units automatically we need, for every character, what the text "is" there:

    in_string       inside a string literal (quotes included; escapes and triple quotes handled)
    in_comment      inside a # comment
    bracket_depth   how many ( [ { are open
    line_position   column in the line (0 at the line's first character)
    indentation     leading spaces of the current line
    in_if_block     inside the body of an `if` (by indentation, Python-style)
    in_quotes       inside "..." or “...” in prose

The source-code features come from one left-to-right pass of a small state machine, which, unlike the
tokenize module, keeps going through code that does not parse (a model's sample, a cut-off file).
"""

import numpy as np

OPENERS, CLOSERS = "([{", ")]}"


def source_features(text: str) -> dict[str, np.ndarray]:
    """The source-code features of `text`, each an array (len(text),)."""
    n = len(text)
    in_string, in_comment, depth = np.zeros(n), np.zeros(n), np.zeros(n)
    i, open_brackets = 0, 0
    while i < n:
        ch = text[i]
        if ch == "#":  # a comment runs to the end of the line
            end = text.find("\n", i)
            end = n if end < 0 else end
            in_comment[i:end] = 1
            depth[i:end] = open_brackets
            i = end
            continue
        if ch in "\"'":
            delimiter = ch * 3 if text.startswith(ch * 3, i) else ch
            j = i + len(delimiter)
            while j < n and not text.startswith(delimiter, j):
                if text[j] == "\\":  # an escape: the next character never closes the string
                    j += 1
                elif text[j] == "\n" and len(delimiter) == 1:  # an unterminated one-line string ends at the line
                    break
                j += 1
            end = min(n, j + len(delimiter)) if j < n and text.startswith(delimiter, j) else min(n, j)
            in_string[i:end] = 1
            depth[i:end] = open_brackets
            i = end
            continue
        if ch in OPENERS:
            open_brackets += 1
        elif ch in CLOSERS:
            open_brackets = max(0, open_brackets - 1)
        depth[i] = open_brackets if ch not in OPENERS else open_brackets - 1  # a bracket belongs to the outer level
        i += 1
    line_position, indentation, in_if = line_features(text)
    return {
        "in_string": in_string,
        "in_comment": in_comment,
        "bracket_depth": depth,
        "line_position": line_position,
        "indentation": indentation,
        "in_if_block": in_if,
    }


def line_features(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column, indentation of the line, and whether the line lies in an `if` body."""
    line_position, indentation, in_if = (np.zeros(len(text)) for _ in range(3))
    start, open_ifs = 0, []  # indentation of the `if` headers whose bodies are still open
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip(" \t")
        indent = len(line) - len(stripped)
        if stripped.strip():  # blank lines neither open nor close blocks
            while open_ifs and indent <= open_ifs[-1]:
                open_ifs.pop()
        span = slice(start, start + len(line))
        line_position[span] = np.arange(len(line))
        indentation[span] = indent
        in_if[span] = 1 if open_ifs else 0
        if stripped.startswith(("if ", "if(", "elif ", "else:")) and stripped.rstrip().endswith(":"):
            open_ifs.append(indent)
        start += len(line)
    return line_position, indentation, in_if


def prose_features(text: str) -> dict[str, np.ndarray]:
    """Inside quotation marks ("..." or “...”, marks included) and the column."""
    in_quotes = np.zeros(len(text))
    inside = False
    for i, ch in enumerate(text):
        if ch in '"“”':
            opening = ch == "“" or (ch == '"' and not inside)
            in_quotes[i] = 1
            inside = opening
        else:
            in_quotes[i] = 1 if inside else 0
    return {"in_quotes": in_quotes, "line_position": line_features(text)[0]}


def correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r between each unit's activations (N, H) and a feature (N,); 0 for constant columns."""
    values = values - values.mean(axis=0)
    feature = feature - feature.mean()
    denominator = np.sqrt((values**2).sum(axis=0) * (feature**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (values * feature[:, None]).sum(axis=0) / denominator
    return np.nan_to_num(r)


def rank_units(values: np.ndarray, features: dict[str, np.ndarray], top: int = 3) -> dict[str, list[tuple[int, float]]]:
    """For each feature, the `top` units with the largest |r|: [(unit, r), ...]."""
    ranking = {}
    for name, feature in features.items():
        r = correlations(values, feature)
        best = np.argsort(-np.abs(r))[:top]
        ranking[name] = [(int(unit), float(r[unit])) for unit in best]
    return ranking
