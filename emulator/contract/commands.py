"""What ``emulator record``, ``emulator contract check`` and ``emulator contracts export`` do
(cli.py parses their options)."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
from pathlib import Path
from typing import cast

from aiohttp import web

from ..config import load
from ..errors import EmulatorError
from .compare import Severity
from .har import HarError, HarWriter
from .proxy import DEFAULT_REDACTED, Recorder
from .replay import CONTRACTS, check_file
from .report import exit_status, render


def run(args: argparse.Namespace) -> int:
    if args.command == "record":
        return record(args)
    if args.command == "contract":
        return check(args)
    return export(Path(args.dir))


def record(args: argparse.Namespace) -> int:
    redact: tuple[str, ...] = ()
    if args.redact is not None:
        redact = tuple(args.redact) or DEFAULT_REDACTED
    try:
        writer = HarWriter(args.out)
    except OSError as exc:
        print(f"emulator: error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        recorder = Recorder(args.upstream, writer, redact)
    except ValueError as exc:
        writer.close()
        print(f"emulator: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_record(recorder, args.host, args.port, args.out))
    except OSError as exc:
        where = f"{args.host}:{args.port}"
        print(f"emulator: error: cannot listen on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"emulator recorded {writer.count} exchanges to {args.out}", file=sys.stderr, flush=True)
    return 0


async def _record(recorder: Recorder, host: str, port: int, out: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(recorder.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        recorder.port = bound
        print(
            f"emulator recording on http://{shown}:{bound} -> {recorder.upstream}, writing {out}", flush=True
        )
        await stop.wait()
    finally:
        await runner.cleanup()


def check(args: argparse.Namespace) -> int:
    try:
        settings = load(args.config) if args.config else load(env={})
        report = check_file(args.har, settings)
    except (OSError, HarError, ValueError) as exc:
        print(f"emulator: error: cannot read {args.har}: {exc}", file=sys.stderr)
        return 2
    except EmulatorError as exc:
        print(f"emulator: error: {exc}", file=sys.stderr)
        return 2
    fail_on = cast(Severity, args.fail_on)
    sys.stdout.write(render(report, args.format, fail_on))
    return exit_status(report, fail_on)


def export(target: Path) -> int:
    """Copy every provider's schema files to ``target/<provider>/``."""
    for name, contract in CONTRACTS.items():
        folder = target / name
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(contract.schemas.iterdir()):
            if path.suffix in (".json", ".xsd"):
                shutil.copyfile(path, folder / path.name)
                print(folder / path.name)
    return 0
