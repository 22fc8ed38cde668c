"""`emulator --help` names every API the emulator serves."""

from __future__ import annotations

import subprocess
import sys

from emulator.providers.alibaba.routes import ACTIONS as ALIBABA
from emulator.providers.tencent.routes import ACTIONS as TENCENT


def test_help_lists_every_served_api() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "emulator", "--help"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for action in ALIBABA + TENCENT:
        line = next((ln for ln in help_text.splitlines() if f" {action.path} " in f"{ln} "), None)
        assert line is not None, f"{action.method} {action.path} is not in --help"
        assert line.split()[0] == action.method and action.name in line
    assert "/_emulator/health" in help_text
