"""``python -m bench [SECTION ...]``: run the benchmarks and print their tables.

Sections: throughput, instructions, latency, startup, throttle, memory, profile, textscan (all by
default, in that order).
Load stays on 127.0.0.1; every run is bounded in time and count.
"""

from __future__ import annotations

import argparse
import importlib.util

from . import instructions, latency, memory, startup, text_scan, throttle, throughput
from . import profile as profiling
from .common import machine

SECTIONS = ("throughput", "instructions", "latency", "startup", "throttle", "memory", "profile", "textscan")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("sections", nargs="*", choices=[*SECTIONS, []], help="default: all")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run (5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating bare/floor/emulator rounds (2)")
    parser.add_argument("--requests", type=int, default=100_000, help="calls for the memory run")
    parser.add_argument("--uvloop", action="store_true", help="throughput under uvloop as well")
    parser.add_argument(
        "--peers", action="store_true", help="throughput of Mountebank and WireMock too (bench/peers.py)"
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check")
    args = parser.parse_args()
    sections = args.sections or list(SECTIONS)
    quick = args.quick
    print(f"# emulator benchmarks\n\n{machine()}")
    has_uvloop = importlib.util.find_spec("uvloop") is not None
    if args.uvloop and not has_uvloop:
        print("(uvloop not installed: the uvloop rows are skipped; pip install -e '.[bench]')")
    if "throughput" in sections:
        throughput.main(
            duration=1.0 if quick else args.duration,
            rounds=1 if quick else args.rounds,
            loops=(False, True) if args.uvloop and has_uvloop else (False,),
            peers=args.peers,
        )
    if "instructions" in sections:
        instructions.main(calls=200 if quick else 1000)
    if "latency" in sections:
        latency.main(duration=2.0 if quick else 10.0)
    if "startup" in sections:
        startup.main(n_in_process=10 if quick else 50, n_cli=2 if quick else 5)
    if "throttle" in sections:
        throttle.main(duration=3.0 if quick else 10.0)
    if "memory" in sections:
        memory.main(total=12_000 if quick else args.requests, n=500 if quick else 2_000)
    if "profile" in sections:
        profiling.main(duration=2.0 if quick else 5.0)
    if "textscan" in sections:
        text_scan.main(n_texts=500 if quick else 2_000, n_naive=5 if quick else 20)


if __name__ == "__main__":
    main()
