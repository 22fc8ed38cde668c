"""The README's feedback-loop examples run as written (in a subprocess, as a user would paste them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def first_python_block(heading: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize(
    "heading",
    ["### Feedback that takes effect (Alibaba Green)", "### Feedback that takes effect (Tencent CI)"],
)
def test_feedback_loop_example(heading: str) -> None:
    code = first_python_block(heading)
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
