"""Side by side with Postfix's qmqp-source: the same work, alternately, as ratios.

    python benchmarks/bench.py            # full run, writes benchmarks/RESULTS.md
    python benchmarks/bench.py --tiny     # smoke run (CI): small counts, one pair, no figures
    python benchmarks/bench.py --only "-s 10 " --only workers   # some cases, no file

These machines are shared and noisy, so every case runs as pairs A B A B ... and
the table reports medians and the ratio ours/Postfix; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

POSTFIX_SOURCE = "/usr/sbin/qmqp-source"
POSTFIX_SINK = "/usr/sbin/qmqp-sink"
# The throw-away Postfix instance of the interop tests: a real qmqpd that holds every message.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.postfix_support import PostfixInstance, postfix_tools_missing  # noqa: E402


def _ours(script: str, module: str) -> list[str]:
    """Our command as a user runs it: the installed script beside this Python (not
    ``python -m``, which would import the source tree when run from the checkout)."""
    installed = Path(sys.executable).with_name(script)
    return [str(installed)] if installed.exists() else [sys.executable, "-m", module]


OURS = _ours("qmqp-source", "qmqpsource")
OUR_SINK = _ours("qmqp-sink", "qmqpsource.cli.sink")
FLOOR = Path(__file__).with_name("python_floor.py")
RESULTS = Path(__file__).with_name("RESULTS.md")
# The README's quick start, run as it is written there; its summary goes into RESULTS.md.
# (qmqpsource source: the one name of ours that PATH cannot mix up with Postfix's.)
QUICK_START = ("qmqpsource", "source", "--embedded-sink", "-s", "20", "-m", "10000")
QUICK_START_HEADING = "## The README's quick start"
# One message: what a run costs beyond its messages (start-up, one exchange, exit).
START_UP = ("-s", "1", "-m", "1")
# No single command may run longer than this: a stuck run must not hang the bench.
COMMAND_TIMEOUT = 600


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    messages: int
    ours_extra: tuple[str, ...] = ()


@dataclass
class Sample:
    wall: float
    cpu: float
    max_rss_kib: int
    stderr: str = ""
    overflows: int = 0  # connections a listen queue dropped during the run (Linux)


def listen_overflows() -> int:
    """The kernel's count of connections dropped by full listen queues (0 where unknown)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(fields.get("ListenOverflows", 0))
    return 0


def make_case(*args: str, ours_extra: tuple[str, ...] = ()) -> Case:
    """A case named by the options it really runs (ours adds ``ours_extra``)."""
    return Case(" ".join((*ours_extra, *args)), args, int(args[args.index("-m") + 1]),
                ours_extra)


def cases(tiny: bool) -> list[Case]:
    scale = 100 if tiny else 1

    def m(n: int) -> str:
        return str(max(10, n // scale))

    return [
        make_case("-s", "1", "-m", m(20000), "-l", "1024"),
        make_case("-s", "10", "-m", m(20000), "-l", "1024"),
        make_case("-s", "100", "-m", m(20000), "-l", "1024"),
        make_case("-s", "10", "-m", m(3000), "-l", "1048576"),
        make_case("-s", "10", "-r", "100", "-m", m(5000)),
        make_case("-s", "10", "-m", m(20000), "-l", "1024", ours_extra=("--workers", "2")),
        # Memory: 500 sessions of 4 MiB messages share one buffer (goal: peak RSS < 120 MiB).
        make_case("-s", "500", "-m", m(500), "-l", "4194304"),
        make_case("-s", "10000", "-m", m(20000), "-l", "1024"),
    ]


def run_measured(command: Sequence[str]) -> Sample:
    """Run to completion; wall time, CPU time and peak RSS of the process tree it waited for."""
    overflows = listen_overflows()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = started + COMMAND_TIMEOUT
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"timed out: {' '.join(command)}")
        time.sleep(0.002)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.stderr is not None
    err = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {err.strip()}")
    # ru_maxrss of wait4 covers the child itself; worker grandchildren report to it.
    children = usage.ru_utime + usage.ru_stime
    return Sample(wall, children, usage.ru_maxrss, err, listen_overflows() - overflows)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def listening(command: Sequence[str], port: int) -> Iterator[list[Sample]]:
    """Run a server while the block runs; afterwards the list holds its own CPU and RSS."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    usage_out: list[Sample] = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"server did not start: {' '.join(command)}") from None
                time.sleep(0.02)
        yield usage_out
    finally:
        process.terminate()
        deadline = time.monotonic() + 10
        while True:
            pid, _, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = 0
                usage_out.append(Sample(0.0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss))
                break
            if time.monotonic() > deadline:
                process.kill()
                deadline = time.monotonic() + 10
            time.sleep(0.01)


def our_workers_supported() -> bool:
    done = subprocess.run([*OURS, "--help"], capture_output=True, text=True, check=False)
    return "--workers" in done.stdout


def our_sink_available() -> bool:
    done = subprocess.run([*OUR_SINK, "--help"], capture_output=True, check=False)
    return done.returncode == 0


@dataclass
class Row:
    name: str
    messages: int
    ours: list[Sample]
    theirs: list[Sample]
    label_ours: str = "ours"
    label_theirs: str = "Postfix"


def median(samples: list[Sample], attr: str) -> float:
    return float(statistics.median(float(getattr(s, attr)) for s in samples))


def bench_clients(pairs: int, tiny: bool, only: Sequence[str]) -> list[Row]:
    rows: list[Row] = []
    port = free_port()
    target = f"127.0.0.1:{port}"
    workers = our_workers_supported()
    with listening([POSTFIX_SINK, target, "1024"], port):
        for case in cases(tiny):
            if only and not any(part in case.name for part in only):
                continue
            if case.ours_extra and not workers:
                print(f"skip {case.name}: this qmqp-source has no --workers yet", flush=True)
                continue
            row = Row(case.name, case.messages, [], [])
            for _ in range(pairs):
                row.theirs.append(run_measured([POSTFIX_SOURCE, *case.args, target]))
                row.ours.append(run_measured([*OURS, "-q", *case.args, *case.ours_extra, target]))
            rows.append(row)
            show(row, tiny)
    return rows


def bench_start_up(pairs: int, tiny: bool, only: Sequence[str]) -> Row | None:
    """Postfix's and ours at one message, alternately: start-up and exit, mostly."""
    if only and not any(part in "start-up" for part in only):
        return None
    port = free_port()
    target = f"127.0.0.1:{port}"
    row = Row(" ".join(START_UP), 1, [], [])
    with listening([POSTFIX_SINK, target, "1024"], port):
        for _ in range(pairs * 3):  # short runs: more of them for the same confidence
            row.theirs.append(run_measured([POSTFIX_SOURCE, *START_UP, target]))
            row.ours.append(run_measured([*OURS, "-q", *START_UP, target]))
    print(f"ran: start-up ({row.name})" if tiny else format_start_up(row), flush=True)
    return row


def format_start_up(row: Row) -> str:
    return (f"| {row.name} | {1000 * median(row.theirs, 'wall'):.1f} | "
            f"{1000 * median(row.ours, 'wall'):.1f} |")


def bench_floor(pairs: int, tiny: bool, only: Sequence[str]) -> list[Row]:
    """benchmarks/python_floor.py, the leanest Python client, beside Postfix's qmqp-source."""
    messages = str(200 if tiny else 20000)
    rows = []
    port = free_port()
    target = f"127.0.0.1:{port}"
    with listening([POSTFIX_SINK, target, "1024"], port):
        for args in (("-s", "10", "-m", messages), ("--processes", "2", "-s", "5", "-m", messages)):
            row = Row(f"floor: python_floor.py {' '.join(args)}", int(messages), [], [],
                      label_ours="the Python floor")
            if only and not any(part in row.name for part in only):
                continue
            for _ in range(pairs):
                row.theirs.append(run_measured(
                    [POSTFIX_SOURCE, "-s", "10", "-m", messages, "-l", "1024", target]))
                row.ours.append(run_measured([sys.executable, str(FLOOR), target, *args]))
            rows.append(row)
            show(row, tiny)
    return rows


@dataclass
class QuickStart:
    command: str
    runs: list[Sample]

    def median_run(self) -> Sample:
        return sorted(self.runs, key=lambda sample: sample.wall)[(len(self.runs) - 1) // 2]


def bench_quick_start(pairs: int, tiny: bool, only: Sequence[str]) -> QuickStart | None:
    """The README's quick start as written there (ours only: it starts its own sink)."""
    if only and not any(part in "quick start" for part in only):
        return None
    args = list(QUICK_START)
    if tiny:
        args[args.index("-m") + 1] = "100"
    quick = QuickStart(" ".join(args), [])
    command = [*_ours("qmqpsource", "qmqpsource.cli"), *args[1:]]
    for _ in range(pairs):
        quick.runs.append(run_measured(command))
    print(f"ran: quick start ({quick.command})" if tiny else
          f"quick start: {quick.command}\n{quick.median_run().stderr.rstrip()}", flush=True)
    return quick


def bench_sinks(pairs: int, tiny: bool, only: Sequence[str]) -> list[Row]:
    if only and not any(part in "sink" for part in only):
        return []
    if not our_sink_available():
        print("skip sink: qmqp-sink is not there yet", flush=True)
        return []
    messages = 100 if tiny else 10000
    args = ("-s", "10", "-m", str(messages))
    row = Row(f"sink: Postfix's qmqp-source -s 10 -m {messages}", messages, [], [],
              label_ours="our sink", label_theirs="Postfix's sink")
    with tempfile.TemporaryDirectory():
        for _ in range(pairs):
            for command, samples in ((POSTFIX_SINK, row.theirs), (None, row.ours)):
                port = free_port()
                target = f"127.0.0.1:{port}"
                server = [POSTFIX_SINK, target, "1024"] if command else [*OUR_SINK, target, "1024"]
                with listening(server, port) as server_usage:
                    client = run_measured([POSTFIX_SOURCE, *args, target])
                # Wall time is the client's; CPU and memory are the sink's own.
                sink = server_usage[0]
                samples.append(Sample(client.wall, sink.cpu, sink.max_rss_kib))
    show(row, tiny)
    return [row]


def bench_qmqpd(pairs: int, tiny: bool, only: Sequence[str]) -> list[Row]:
    """Both clients against a real server: a throw-away Postfix qmqpd that holds every
    message (it takes about 1,500 a second here: the client is not what limits it)."""
    messages = 100 if tiny else 4000
    name = f"qmqpd: -s 10 -m {messages}"
    if only and not any(part in name for part in only):
        return []
    reason = postfix_tools_missing()
    if reason is not None:
        print(f"skip {name}: {reason}", flush=True)
        return []
    args = ("-s", "10", "-m", str(messages))
    row = Row(name, messages, [], [])
    with PostfixInstance() as instance:
        target = f"127.0.0.1:{instance.port}"
        for _ in range(pairs):
            for command, samples in ((POSTFIX_SOURCE, row.theirs), (None, row.ours)):
                instance.purge()  # every run finds the same empty queue
                client = [POSTFIX_SOURCE] if command else [*OURS, "-q"]
                samples.append(run_measured([*client, *args, target]))
        instance.purge()
    show(row, tiny)
    return [row]


def show(row: Row, tiny: bool) -> None:
    """The row's figures; for a smoke run, only that it ran (its figures mean nothing)."""
    print(f"ran: {row.name}" if tiny else format_row(row), flush=True)


def format_row(row: Row) -> str:
    ours = row.messages / median(row.ours, "wall")
    theirs = row.messages / median(row.theirs, "wall")
    return (
        f"| {row.name} | {theirs:,.0f} | {ours:,.0f} | {ours / theirs:.2f} | "
        f"{1e6 * median(row.theirs, 'cpu') / row.messages:.1f} | "
        f"{1e6 * median(row.ours, 'cpu') / row.messages:.1f} | "
        f"{median(row.theirs, 'max_rss_kib') / 1024:.1f} | "
        f"{median(row.ours, 'max_rss_kib') / 1024:.1f} | "
        f"{sum(s.overflows for s in row.theirs)} | {sum(s.overflows for s in row.ours)} |"
    )


HEADER = (
    "| work | Postfix msg/s | ours msg/s | ratio ours/Postfix | Postfix CPU us/msg | "
    "ours CPU us/msg | Postfix peak RSS MiB | ours peak RSS MiB | Postfix listen overflows | "
    "ours listen overflows |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def machine() -> str:
    return (
        f"{platform.node()}: {platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
    )


SMOKE_NOTE = (
    "Smoke run (--tiny): every case once, at about 1/100 of its size, only to check that\n"
    "the bench runs. Runs this short are mostly process start-up, so their rates and\n"
    "ratios mean nothing and none are shown; `nox -s bench` measures."
)


def results_text(
    rows: list[Row], start_up: Row | None, quick: QuickStart | None, pairs: int
) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        "# Benchmark results\n\n"
        f"{stamp}, {machine()}.\n\n"
        f"Medians of {pairs} alternating runs each (A B A B ...), 1 KiB messages unless said, "
        "against Postfix's qmqp-sink on loopback (the qmqpd row: against a throw-away "
        "Postfix qmqpd that holds every message; the sink rows: Postfix's qmqp-source "
        "against each sink; the floor rows: benchmarks/python_floor.py, the leanest Python "
        "client, where the table says ours). msg/s from wall time including process "
        "start-up; CPU is the client's user and system time (the sink rows: the sink's); "
        "listen overflows are the kernel's TcpExt ListenOverflows over all of a tool's runs "
        "(each dropped connection costs a second).\n\n"
        f"{HEADER}\n" + "\n".join(format_row(row) for row in rows) + "\n"
    )
    if start_up is not None:
        text += (
            "\n## Start-up\n\n"
            f"One message, so mostly start-up and exit: medians of {len(start_up.ours)} "
            "alternating runs, wall time.\n\n"
            "| work | Postfix ms | ours ms |\n|---|---|---|\n"
            f"{format_start_up(start_up)}\n"
        )
    if quick is not None:
        text += (
            f"\n{QUICK_START_HEADING}\n\n"
            f"`{quick.command}`: the summary of the run of median wall time, of "
            f"{len(quick.runs)}.\n\n"
            f"```text\n{quick.median_run().stderr.rstrip()}\n```\n"
        )
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="smoke run: small, one pair, no figures shown, no file")
    parser.add_argument("--pairs", type=int, default=3, help="A B pairs per case (default 3)")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="only the cases whose name contains TEXT (repeatable; no file)")
    options = parser.parse_args()
    missing = [tool for tool in (POSTFIX_SOURCE, POSTFIX_SINK) if not shutil.which(tool)]
    if missing:
        print(f"bench skipped: Postfix's tools are missing ({', '.join(missing)}); "
              "apt-get install postfix", file=sys.stderr)
        return 0
    pairs = 1 if options.tiny else max(1, options.pairs)
    print(SMOKE_NOTE if options.tiny else HEADER, flush=True)
    rows = (bench_clients(pairs, options.tiny, options.only)
            + bench_qmqpd(pairs, options.tiny, options.only)
            + bench_sinks(pairs, options.tiny, options.only)
            + bench_floor(pairs, options.tiny, options.only))
    start_up = bench_start_up(pairs, options.tiny, options.only)
    quick = bench_quick_start(pairs, options.tiny, options.only)
    # Made in a smoke run too, so that it keeps working.
    text = results_text(rows, start_up, quick, pairs)
    if options.tiny:
        done = len(rows) + (start_up is not None) + (quick is not None)
        ran = f"{done} case{'' if done == 1 else 's'}"
        print(f"smoke run done: {ran} ran, Postfix's tools and ours", flush=True)
        return 0
    if options.only:
        return 0
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
