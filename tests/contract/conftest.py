"""A recording made through the official SDKs: `emulator record` (its own process) between the SDKs
and a second emulator as the upstream."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator import serve_in_thread
from emulator.core.journal import Entry
from emulator.keys import JOURNAL
from emulator.testing.settings import make_settings

from .traffic import drive


@dataclass(frozen=True)
class Capture:
    path: Path
    #: What the upstream emulator journaled of the SDKs' calls.
    upstream: list[Entry]
    ready_line: str


@pytest.fixture(scope="session")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    out = tmp_path_factory.mktemp("contract") / "sdks.har"
    with serve_in_thread(make_settings()) as upstream:
        command = [sys.executable, "-m", "emulator", "record", "--upstream", upstream.url, "--out", str(out)]
        proxy = subprocess.Popen([*command, "--port", "0"], stdout=subprocess.PIPE, text=True)
        try:
            assert proxy.stdout is not None
            ready = proxy.stdout.readline()
            drive(ready.split()[3])
        finally:
            proxy.send_signal(signal.SIGINT)
            proxy.wait(10)
            if proxy.stdout is not None:
                proxy.stdout.close()
        yield Capture(out, upstream.app[JOURNAL].select(), ready)
