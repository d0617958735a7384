"""``python -m bench``: run the benchmarks on one local stack, print the table, write ``results/latest.md``.

Defaults finish in a few minutes; ``--full`` runs the production-scale sizes for P5 (6,000 events, ≥ 10 min
quota-bound), P6 (10,000 channels) and P8 (10,000 calendars).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    p1_incremental,
    p2_full_sync,
    p3_webhook_ack,
    p4_edit_latency,
    p5_publish,
    p6_renewal,
    p7_chain,
    p8_poll,
)
from bench.harness import RESULTS, BenchStack, Row, machine, markdown_table, quiet_logs
from devstack import procs

ALL = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated benchmarks, e.g. P1,P3")
    parser.add_argument("--events", type=int, default=10_000, help="P1/P2 calendar size")
    parser.add_argument("--changes", type=int, default=100, help="P1 changed events")
    parser.add_argument("--p3-rate", type=float, default=50.0, help="P3 requests per second")
    parser.add_argument("--p3-seconds", type=float, default=10.0, help="P3 duration")
    parser.add_argument("--p4-edits", type=int, default=30, help="P4 edits measured")
    parser.add_argument("--p4-debounce", type=int, default=1, help="P4 webhook debounce (s)")
    parser.add_argument("--p5-events", type=int, default=600, help="P5 events published (6,000 with --full)")
    parser.add_argument("--p6-channels", type=int, default=500, help="P6 channels renewed (10,000 with --full)")
    parser.add_argument("--p8-calendars", type=int, default=1000, help="P8 calendars polled (10,000 with --full)")
    parser.add_argument(
        "--full",
        action="store_true",
        help="P5 6,000 events, P6 10,000 channels, P7 the whole chain, P8 10,000 calendars",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.md", help="where to write the markdown")
    args = parser.parse_args(argv)
    if args.full:
        args.p5_events, args.p6_channels, args.p8_calendars = 6000, 10_000, 10_000
    return args


def report(rows: list[Row], args: argparse.Namespace, seconds: float, failures: list[str]) -> str:
    """The markdown document of one run."""
    lines = [
        "# calsync benchmarks",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} in {seconds / 60:.1f} min: "
        f"`python -m bench {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"Machine: {machine()}.",
        "",
        "All on the local stack: Google's Firestore emulator, calsync's Calendar API emulator, the Cloud "
        "Tasks emulator, functions under functions-framework, all on 127.0.0.1. Ratios are "
        "reference / calsync for counts and times (above 1: calsync needs fewer calls, reads, writes or "
        "seconds); for P3 it is calsync / bare function (the webhook's overhead factor); for P5 wall time "
        "/ quota-bound minimum.",
        "",
        markdown_table(rows),
    ]
    if failures:
        lines += ["", "Failed:", *[f"- {f}" for f in failures]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; exit 1 when one failed."""
    args = parse(argv)
    selected = {s.strip().upper() for s in args.only.split(",") if s.strip()}
    rows: list[Row] = []
    failures: list[str] = []
    started = time.monotonic()

    def attempt(name: str, stack: BenchStack, step: Callable[[], list[Row]]) -> None:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            rows.extend(step())
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            stack.keep_logs = True
        print(f"[bench] {name} done in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)

    procs.exit_on_sigterm()  # a stopped run still stops its stack
    with quiet_logs(), BenchStack() as stack:
        if selected & {"P1", "P2"}:

            def sync_benches() -> list[Row]:
                p2_rows, world = p2_full_sync.run(stack, args.events)
                p1_rows = p1_incremental.run(world, args.changes) if "P1" in selected else []
                return p1_rows + (p2_rows if "P2" in selected else [])

            attempt("P1/P2", stack, sync_benches)
        if "P3" in selected:
            attempt("P3", stack, lambda: p3_webhook_ack.run(stack, rate=args.p3_rate, seconds=args.p3_seconds))
        if "P4" in selected:
            attempt("P4", stack, lambda: p4_edit_latency.run(stack, edits=args.p4_edits, debounce_s=args.p4_debounce))
        if "P5" in selected:
            attempt("P5", stack, lambda: p5_publish.run(stack, events=args.p5_events))
        if "P6" in selected:
            attempt("P6", stack, lambda: p6_renewal.run(stack, channels=args.p6_channels))
        if "P7" in selected:
            attempt("P7", stack, lambda: p7_chain.run(stack, full=args.full))
        if "P8" in selected:
            attempt("P8", stack, lambda: p8_poll.run(stack, calendars=args.p8_calendars))
    text = report(rows, args, time.monotonic() - started, failures)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
