"""The README's Python quickstart runs as written, in a fresh interpreter, and prints what it says."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_quickstart_runs_as_written(tmp_path):
    block = re.search(r"<!-- quickstart[^>]*-->\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, "the README has no quickstart block"
    result = subprocess.run([sys.executable, "-c", block[1]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.match(r"loss [\d.]+ nats/char, [\d.]+ bits/char", lines[0]), result.stdout
    assert "\n".join(lines[1:]).startswith("ROMEO:") and len("\n".join(lines[1:])) >= len("ROMEO:") + 100
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_the_library_snippet_runs_as_written(tmp_path):
    text = README.read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", text[text.index("## The library") :], re.S)
    result = subprocess.run([sys.executable, "-c", block[1]], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "compiling" not in result.stderr  # one call of each shape: nothing waits for the compiler


def test_every_setting_the_readme_names_exists():
    """Each --model./--data./--train. flag the README names is a field of some task's config, so a renamed or
    removed setting cannot linger in the documentation."""
    import dataclasses

    from rnnkit.tasks import TASKS

    named = set(re.findall(r"--(model|data|train)\.([a-z_]+)", README.read_text(encoding="utf-8")))
    known = {
        (section.name, field.name)
        for task in TASKS.values()
        for section in dataclasses.fields(task.Config)
        for field in dataclasses.fields(getattr(task.Config(), section.name))
    }
    assert named and named <= known, sorted(named - known)
