"""Our qmqp-sink against Postfix's, both driven by Postfix's qmqp-source, side by side.

    python benchmarks/sink_bench.py [--rounds 7] [--sessions 10] [--messages 10000]
                                    [--ours "qmqp-sink"] [-- extra args for our sink]

Both sinks run at once on loopback; each round times one qmqp-source run against
Postfix's sink, then one against ours (A B A B ...), so that load from anything
else on the machine falls on both alike. Prints each round, then the medians
and bests as messages per second and the ratio ours/Postfix's (goal >= 0.7).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

POSTFIX_SOURCE = Path("/usr/sbin/qmqp-source")
POSTFIX_SINK = Path("/usr/sbin/qmqp-sink")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sink on port {port} exited with status {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port} after {timeout} s")
        time.sleep(0.05)


def _time_source(port: int, sessions: int, messages: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(POSTFIX_SOURCE), "-s", str(sessions), "-m", str(messages), f"127.0.0.1:{port}"],
        check=True,
        timeout=120,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--backlog", type=int, default=1024)
    parser.add_argument("--ours", default=f"{sys.executable} -m qmqpsource.cli.sink")
    parser.add_argument("extra", nargs="*", help="extra arguments for our sink")
    args = parser.parse_args()
    for tool in (POSTFIX_SOURCE, POSTFIX_SINK):
        if not shutil.which(str(tool)):
            print(f"{tool} is missing: install Debian's postfix", file=sys.stderr)
            return 2

    ports = {"postfix": _free_port(), "ours": _free_port()}
    commands = {
        "postfix": [str(POSTFIX_SINK), f"127.0.0.1:{ports['postfix']}", str(args.backlog)],
        "ours": [*shlex.split(args.ours), *args.extra, f"127.0.0.1:{ports['ours']}",
                 str(args.backlog)],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    times: dict[str, list[float]] = {"postfix": [], "ours": []}
    try:
        for name, command in commands.items():
            procs[name] = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        for name, proc in procs.items():
            _wait_listening(ports[name], proc)
        # One warm-up each: page cache, first-connection costs.
        for name in ("postfix", "ours"):
            _time_source(ports[name], args.sessions, min(args.messages, 1000))
        for number in range(1, args.rounds + 1):
            for name in ("postfix", "ours"):
                times[name].append(_time_source(ports[name], args.sessions, args.messages))
            print(f"round {number}: postfix {times['postfix'][-1]:.3f} s, "
                  f"ours {times['ours'][-1]:.3f} s", flush=True)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    m = args.messages
    paired = statistics.median(p / o for p, o in zip(times["postfix"], times["ours"], strict=True))
    print(f"median of per-round ratios: {paired:.2f}")
    for label, pick in (("median", statistics.median), ("best", min)):
        postfix, ours = pick(times["postfix"]), pick(times["ours"])
        print(f"{label}: postfix {m / postfix:.0f} msg/s, ours {m / ours:.0f} msg/s, "
              f"ratio {postfix / ours:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
