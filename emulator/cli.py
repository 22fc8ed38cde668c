"""The ``emulator`` command."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import workers
from ._version import __version__
from .config import Settings, default_config_path, load
from .contract import commands as contract_commands
from .contract.proxy import DEFAULT_REDACTED
from .core import log, scenarios
from .errors import EmulatorError
from .server import start

DESCRIPTION = """\
A local stand-in for the content-moderation APIs of Alibaba Cloud Green and Tencent
Cloud Infinite (CI), both served on one port and told apart by path:

Alibaba Green (2018-05-09, JSON; signed as the official SDKs sign):
  POST /green/image/feedback     ImageScanFeedback
  POST /green/text/feedback      TextFeedback
  POST /green/image/scan         ImageSyncScan (answers as the feedback says)
  POST /green/text/scan          TextScan
  POST /green/image/asyncscan    ImageAsyncScan (callback + seed notify)
  POST /green/image/results      ImageAsyncScanResults
Tencent CI (XML; COS signatures, Host <bucket>-<appid>.ci.<region>.myqcloud.com):
  POST /report/badcase           ReportBadcase
  POST /text/auditing            CreateAuditingTextJob (synchronous)
  GET  /text/auditing/{jobId}    DescribeAuditingTextJob
  POST /image/auditing           BatchImageAuditing (synchronous)
Admin API under /_emulator/ (GET /_emulator/health, GET /_emulator/openapi.json):
journal, fault rules, reset, callbacks and the providers' consoles."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emulator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the emulator until Ctrl-C or SIGTERM",
        description=(
            "Serve both providers and the admin API on one port. When ready, prints one line "
            "with the base URL; Ctrl-C or SIGTERM stops it cleanly. Settings come from the config "
            "file, then EMULATOR_<SECTION>__<KEY> environment variables, then these options."
        ),
    )
    serve.add_argument(
        "--host",
        help="address to bind (default: server.host from the config, 127.0.0.1 in the built-in "
        "one; use 0.0.0.0 to accept other machines)",
    )
    serve.add_argument(
        "--port",
        type=_port,
        help="TCP port (default: server.port from the config, 8080 in the built-in one); 0 picks a free port",
    )
    serve.add_argument(
        "--scenario",
        action="append",
        metavar="NAME_OR_FILE",
        help="load a fault scenario at start: a shipped one by name (see `emulator scenarios`) or a "
        "JSON or YAML scenario file; repeatable",
    )
    serve.add_argument(
        "--clock",
        type=str.lower,
        metavar="real|manual",
        help="the emulator clock (default: server.clock, real): manual starts at the real time and "
        "moves only when told (POST /_emulator/clock), for retry schedules and confirm delays",
    )
    serve.add_argument(
        "--log-level",
        type=str.lower,
        metavar="LEVEL",
        help="the request log on stderr, one line per exchange (default: server.log_level, info): "
        "debug, info, warning or error (warning hides the exchanges)",
    )
    serve.add_argument(
        "--log-format",
        type=str.lower,
        metavar="text|json",
        help="the request log's format (default: server.log_format, text); json: one object a line",
    )
    serve.add_argument(
        "--data",
        metavar="DIR",
        help="keep state in DIR (SQLite: DIR/emulator.sqlite3) so that it survives a restart or a "
        "crash: journal, fault rules, provider state, console settings, pending callbacks (default: "
        "storage.path; none: in memory). One emulator per directory",
    )
    serve.add_argument(
        "--state",
        metavar="FILE",
        help="seed from a state document (GET /_emulator/state): a namespace made afresh (first "
        "use, or POST /_emulator/reset) starts from it (default: storage.state)",
    )
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="serve from N processes on one port (SO_REUSEPORT), one core each; more than one "
        "needs a shared store (--store or storage.url), through which they answer as one emulator "
        "(README: Running several replicas)",
    )
    serve.add_argument(
        "--store",
        metavar="URL",
        help="a Redis replicas and workers share, redis://HOST:PORT/DB (needs the redis extra; "
        "default: storage.url): provider state, console settings, fault rules and their counts, "
        "the throttle's windows, the callback outbox (leased) and the journal are kept there, so "
        "that any of them answers for all; refused at start when Redis does not answer; not with "
        "--data (README: Running several replicas)",
    )
    serve.add_argument(
        "--config",
        metavar="FILE",
        help=f"JSON or YAML config file (default: the built-in {default_config_path().name}, which "
        "defines the test accounts listed in the README)",
    )
    commands.add_parser(
        "scenarios",
        help="list the shipped fault scenarios",
        description="List the fault scenarios shipped with the emulator, for serve --scenario NAME.",
    )
    _add_contract_commands(commands)
    return parser


def _add_contract_commands(commands: Any) -> None:
    """record, contract check, contracts export (README, "Contract testing")."""
    record = commands.add_parser(
        "record",
        help="forward calls to a provider (or an emulator) and record them to a HAR file",
        description=(
            "A recording proxy: point the SDKs at it as at the emulator. Each request is forwarded "
            "unchanged (signatures intact) to --upstream and each exchange appended to --out, a "
            "HAR 1.2 file that is whole after every entry. When ready, prints one line with its URL; "
            "Ctrl-C or SIGTERM stops it."
        ),
    )
    record.add_argument(
        "--upstream",
        required=True,
        metavar="URL",
        help="where to forward, e.g. https://green.cn-shanghai.aliyuncs.com or http://127.0.0.1:8080",
    )
    record.add_argument("--out", required=True, metavar="FILE.har", help="the HAR file to write")
    record.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    record.add_argument("--port", type=_port, default=8081, help="TCP port (default 8081; 0 picks one)")
    record.add_argument(
        "--redact",
        nargs="*",
        metavar="NAME",
        help="replace these headers, query parameters, JSON fields and XML elements with "
        "[redacted] in the file (not in what is forwarded); without names: " + ", ".join(DEFAULT_REDACTED),
    )
    contract = commands.add_parser(
        "contract",
        help="check a recording against the emulator (drift report)",
        description="Contract testing against recorded provider traffic.",
    )
    sub = contract.add_subparsers(dest="contract_command", metavar="COMMAND", required=True)
    check = sub.add_parser(
        "check",
        help="replay a HAR recording against an in-process emulator and report the differences",
        description=(
            "Replays every entry that names a served action against an in-process emulator whose "
            "clock is set to the entry's time, and compares the answers structurally (status, "
            "error code, content type, field names, nesting, types). Exit status 1 when a finding "
            "is at least --fail-on severe, 2 when the file cannot be read."
        ),
    )
    check.add_argument("har", metavar="FILE.har")
    check.add_argument("--format", choices=("text", "json", "junit"), default="text")
    check.add_argument("--fail-on", choices=("info", "warn", "error"), default="error")
    check.add_argument(
        "--config", metavar="FILE", help="the emulator's config (accounts whose signatures are verified)"
    )
    contracts = commands.add_parser(
        "contracts",
        help="the shipped contracts (JSON Schemas, XSDs)",
        description="The request and response schemas the emulator checks and answers by.",
    )
    csub = contracts.add_subparsers(dest="contracts_command", metavar="COMMAND", required=True)
    export = csub.add_parser("export", help="write the schema files to DIR/<provider>/")
    export.add_argument("dir", metavar="DIR")


#: serve's options that set a setting, and the dotted key each sets.
OPTIONS = {
    "--host": "server.host",
    "--port": "server.port",
    "--scenario": "scenarios",
    "--clock": "server.clock",
    "--log-level": "server.log_level",
    "--log-format": "server.log_format",
    "--data": "storage.path",
    "--state": "storage.state",
    "--store": "storage.url",
}


def _bounded(what: str, name: str, low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (``what`` and ``name`` word the errors)."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {what}: {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{name} must be {low}..{high}, not {number}")
        return number

    return parse


_port = _bounded("port number", "port", 0, 65535)
_workers = _bounded("number of workers", "workers", 1, 64)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "scenarios":
        for name in scenarios.available():
            print(f"{name:18} {scenarios.load_scenario(name).description}")
        return 0
    if args.command in ("record", "contract", "contracts"):
        return contract_commands.run(args)
    overrides: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for option, key in OPTIONS.items():
        value = getattr(args, option.removeprefix("--").replace("-", "_"))
        if value is not None:
            overrides[key] = value
            origins[key] = f"option {option}"
    try:
        settings = load(args.config, overrides=overrides, origins=origins)
    except EmulatorError as exc:
        print(f"emulator: error: {exc}", file=sys.stderr)
        return 2
    if settings.storage.url and settings.storage.path:
        print(
            "emulator: error: storage.url and storage.path both set: state is kept in one store, "
            "a shared Redis (--store) or a data directory (--data)",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1 and not settings.storage.url:
        print(
            f"emulator: error: --workers {args.workers}: several workers need a shared store "
            "(--store redis://HOST:PORT/DB); apart, each would keep its own state, throttle "
            "windows and journal",
            file=sys.stderr,
        )
        return 2
    log.configure(settings.server.log_level, settings.server.log_format)
    try:
        if settings.storage.url:
            workers.check_store(settings.storage.url)
        if args.workers > 1:
            return workers.run(args.workers, settings, _worker)
        asyncio.run(_serve(settings))
    except scenarios.ScenarioError as exc:
        print(f"emulator: error: {exc}", file=sys.stderr)
        return 2
    except EmulatorError as exc:
        print(f"emulator: error: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(
    settings: Any,
    port: int | None = None,
    ready: Callable[[], None] | None = None,
    lifeline: int | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM. With ``ready`` (a worker of several): on ``port`` with
    SO_REUSEPORT, ``ready`` is called instead of printing the line, and it also stops when
    ``lifeline`` reads end-of-file (the command that started it is gone)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if lifeline is not None:
        loop.add_reader(lifeline, stop.set)
    runner, server = await start(settings, port=port, reuse_port=ready is not None)
    try:
        if ready is not None:
            ready()
        else:
            print(f"emulator serving on {server.url}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
        # asyncio closes its wakeup pipe before it takes its signal handlers down (3.11), so a
        # signal in between would print a traceback: the process is ending, later ones are ignored.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
        if ready is None:
            print("emulator stopped", file=sys.stderr, flush=True)


def _worker(settings: Settings, port: int, ready: Callable[[], None], lifeline: int) -> None:
    asyncio.run(_serve(settings, port, ready, lifeline))
