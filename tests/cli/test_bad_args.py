"""Bad input to ``qmqp-source``: one clear line on stderr, exit status 1, no traceback.

Every numeric option gets a non-number, zero, a negative and huge numbers; then option
clashes, unknown options, missing and extra targets, bad -M, bad targets, and the
resource checks (-l beyond memory, -s beyond the descriptor limit) that must refuse a
run before it starts rather than crash in its middle.

The command runs as a user runs it (``python -m qmqpsource``). The table's runs are
independent, so they go all at once, a few processes at a time, and each test then
checks its own; the target is one where nothing listens, so that an option let through
by mistake shows as "connect to 127.0.0.1:1: Connection refused" rather than as a hang.
"""

from __future__ import annotations

import functools
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trio

from qmqpsource.source import limits
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.limits import LimitError
from qmqpsource.source.message import default_address, system_hostname
from tests.qmqp_server import qmqp_server

SOURCE = [sys.executable, "-m", "qmqpsource"]
NOWHERE = "127.0.0.1:1"  # nothing listens on port 1 of a test machine
HUGE = str(10**30)
RUN_LIMIT = 30.0

INT_OPTIONS = ["-s", "-m", "-l", "-r", "-C", "--connect-limit"]
FLOAT_OPTIONS = ["-w", "-R", "--timeout"]

# (arguments, a text the one line must contain)
CASES: list[tuple[list[str], str]] = []
for option in INT_OPTIONS:
    CASES += [
        ([option, "abc", NOWHERE], f"{option} must be a whole number, not 'abc'"),
        ([option, "0", NOWHERE], f"{option} must be at least 1, not 0"),
        ([option, "-1", NOWHERE], f"{option} must be at least 1, not -1"),
        ([option, HUGE, NOWHERE], f"{option} must be at most {2**63 - 1}, not {HUGE}"),
        ([option, "1e400", NOWHERE], f"{option} must be a whole number, not '1e400'"),
        ([option, "\u0663", NOWHERE], f"{option} must be a whole number, not '\u0663'"),
        ([option, "1_000", NOWHERE], f"{option} must be a whole number, not '1_000'"),
    ]
for option in FLOAT_OPTIONS:
    CASES += [
        ([option, "abc", NOWHERE], f"{option} must be a number of seconds, not 'abc'"),
        ([option, "0", NOWHERE], f"{option} must be a positive number of seconds, not 0.0"),
        ([option, "-1", NOWHERE], f"{option} must be a positive number of seconds, not -1.0"),
        ([option, "nan", NOWHERE], f"{option} must be a number of seconds, not 'nan'"),
        ([option, HUGE, NOWHERE], f"{option} must be at most 31536000 seconds, not 1e+30"),
        ([option, "1e400", NOWHERE], f"{option} must be a number of seconds, not '1e400'"),
        ([option, "1_0", NOWHERE], f"{option} must be a number of seconds, not '1_0'"),
        ([option, "\u0661.\u0665", NOWHERE],
         f"{option} must be a number of seconds, not '\u0661.\u0665'"),
    ]
CASES += [
    # Options that clash, or that do not exist.
    (["-w", "1", "-R", "1", NOWHERE], "-w and -R exclude each other"),
    (["-w", "1", "--rate", "5", NOWHERE], "--rate excludes -w and -R: an open loop runs"),
    (["-R", "1", "--rate", "5", NOWHERE], "--rate excludes -w and -R: an open loop runs"),
    (["--find-rate", "--check", "failed==0", "-w", "1", NOWHERE],
     "--find-rate runs each step at a set rate, without pauses: not with -w or -R"),
    (["--find-rate", "--check", "failed==0", "-R", "1", NOWHERE],
     "--find-rate runs each step at a set rate, without pauses: not with -w or -R"),
    (["-4", "-6", NOWHERE], "-4 and -6 exclude each other"),
    (["--bogus", NOWHERE], "no such option: --bogus; usage: "),
    (["--verb", NOWHERE], "no such option: --verb (did you mean --verbose?); usage: "),
    (["--sesions", "2", NOWHERE], "no such option: --sesions (did you mean --sessions"),
    (["-Z", NOWHERE], "no such option: -Z; usage: "),
    (["-m"], "-m requires an argument"),
    # Targets: missing, extra, malformed, unresolvable, out of range, bad UNIX paths.
    ([], "missing target"),
    ([NOWHERE, "127.0.0.1:2"], "unexpected extra argument: 127.0.0.1:2"),
    ([""], "missing target"),
    (["nosuch.invalid"], "nosuch.invalid: "),
    (["127.0.0.1:70000"], "port out of range: 70000"),
    (["127.0.0.1:0"], "port out of range: 0"),
    (["127.0.0.1:" + "9" * 30], "port out of range"),
    (["127.0.0.1:"], "missing port information"),
    (["127.0.0.1:nosuchservice"], "127.0.0.1:nosuchservice: "),
    (["[::1"], "missing ']'"),
    (["[::1]x"], "garbage after ']'"),
    (["::1"], "valid hostname or network address required"),
    (["-4", "[::1]:628"], "[::1]:628: "),
    (["unix:"], "missing pathname"),
    (["unix:/" + "x" * 200], "unix-domain name too long"),
    (["unix:/nonexistent/qmqp.sock"],
     "connect to unix:/nonexistent/qmqp.sock: No such file or directory"),
    (["/nonexistent/qmqp.sock"], "write unix:/nonexistent/qmqp.sock"),
    # -M: neither a valid hostname nor an [address literal].
    (["-M", "bad..name", NOWHERE], "bad hostname: bad..name"),
    (["-M", "123", NOWHERE], "bad hostname: 123"),
    (["-M", "", NOWHERE], "bad hostname: "),
    (["-M", "[1.2.3]", NOWHERE], "bad address literal: [1.2.3]"),
    (["-M", "x" * 300, NOWHERE], "bad hostname: "),
    # Memory: the request is built whole, once, before the run.
    (["-l", str(10**12), NOWHERE], f"-l {10**12} needs about"),
    (["-l", str(2**62), NOWHERE], "of memory to build the request"),
    (["-r", str(10**12), NOWHERE], f"with -r {10**12} needs about"),
    # Descriptors: every session holds a socket (no machine has 2**40 of them).
    (["-s", str(2**40), "-m", str(2**40), NOWHERE],
     f"-s {2**40} needs {2**40 + 32} file descriptors"),
]
IDS = [" ".join(args)[:60] or "(none)" for args, _ in CASES]


def _run(args: list[str]) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run([*SOURCE, *args], capture_output=True, timeout=RUN_LIMIT,
                              check=False)
    except subprocess.TimeoutExpired:
        return None  # a hang


@functools.cache
def all_runs() -> tuple[subprocess.CompletedProcess[bytes] | None, ...]:
    """Every case's run, done once and a few at a time (each is mostly Python start-up)."""
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 1)) as pool:
        return tuple(pool.map(_run, [args for args, _ in CASES]))


def one_line(done: subprocess.CompletedProcess[bytes] | None) -> str:
    assert done is not None, "hung"
    text = done.stderr.decode(errors="replace")
    assert "Traceback" not in text, text
    assert text.count("\n") == 1 and text.endswith("\n"), f"expected one line: {text!r}"
    return text.rstrip("\n")


@pytest.mark.parametrize(("index", "wording"), list(enumerate(w for _, w in CASES)), ids=IDS)
def test_bad_argument(index: int, wording: str) -> None:
    done = all_runs()[index]
    line = one_line(done)
    assert done is not None and done.returncode == 1
    assert line.startswith("qmqp-source: fatal: "), line
    assert wording in line, line
    assert done.stdout == b""


@pytest.mark.parametrize("option", ["-f", "-t"])
def test_address_not_utf8(option: str) -> None:
    # argv bytes that are not UTF-8 reach Python as surrogate escapes.
    done = _run([option, os.fsdecode(b"a\xffb@example.com"), NOWHERE])
    assert one_line(done) == f"qmqp-source: fatal: connect to {NOWHERE}: Connection refused"


def lower_descriptor_limit(soft: int, hard: int) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    return preexec


async def run_limited(
    preexec: Callable[[], None], *args: str
) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(RUN_LIMIT):
        return await trio.run_process([*SOURCE, *args], capture_stdout=True,
                                      capture_stderr=True, check=False, preexec_fn=preexec)


async def test_sessions_beyond_the_hard_descriptor_limit_are_refused() -> None:
    done = await run_limited(lower_descriptor_limit(64, 64), "-s", "100", "-m", "100", NOWHERE)
    assert done.returncode == 1
    assert one_line(done) == (
        "qmqp-source: fatal: -s 100 needs 132 file descriptors; the limit is 64 "
        "(see ulimit -Hn)"
    )


async def test_sessions_beyond_the_messages_need_no_descriptors() -> None:
    # -s 100000 -m 1 uses one session: it was refused for the 99999 it never opens.
    async with qmqp_server() as server:
        done = await run_limited(lower_descriptor_limit(64, 64), "-q", "-s", "100000",
                                 "-m", "1", server.target)
    assert (done.returncode, done.stderr) == (0, b"")
    assert len(server.requests) == 1


def limited_memory() -> None:
    # However a bug reads -F, it cannot take the machine's memory with it.
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


async def test_message_file_that_is_no_plain_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: reading it used to wait for ever
    for path, kind in [("/dev/zero", "a device"), (str(fifo), "a FIFO")]:
        done = await run_limited(limited_memory, "-F", path, NOWHERE)
        assert one_line(done) == (
            f"qmqp-source: fatal: cannot read message file {path}: not a regular file ({kind})"
        )


async def test_message_file_beyond_free_memory_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.eml"
    with big.open("wb") as file:
        file.truncate(16 << 30)  # sparse: 16 GiB that take no room
    done = await run_limited(limited_memory, "-F", str(big), NOWHERE)
    assert one_line(done).startswith(
        f"qmqp-source: fatal: -F {big} (16.0 GiB) needs about 64.0 GiB of memory"
    )


async def test_soft_descriptor_limit_is_raised_to_the_hard_one() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 300:
        pytest.skip(f"hard descriptor limit {hard} is too low for this test")
    async with qmqp_server(delay=0.05) as server:
        done = await run_limited(
            lower_descriptor_limit(64, hard), "-q", "-s", "200", "-m", "200", server.target
        )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    assert len(server.requests) == 200
    assert server.max_active > 64 - limits.RESERVED_DESCRIPTORS  # really held at once


# -- limits.py, the pure parts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "recipients", "recipient", "sender"),
    [(1, 1, "", ""), (1024, 1, None, None), (100, 1000, "a@b", "s@x"), (50_000, 7, "x" * 300,
     "")],
)
def test_request_size_bounds_the_real_request(
    length: int, recipients: int, recipient: str | None, sender: str | None
) -> None:
    from qmqpsource.source.request import RequestFactory

    config = SourceConfig(target="x", length=length, recipients=recipients,
                          recipient=recipient, sender=sender)
    fixed = RequestFactory(config).fixed
    assert fixed is not None
    real = len(fixed)
    default = default_address(system_hostname())
    bound = limits.request_size(length, recipients, len(recipient or default),
                                len(sender if sender is not None else default))
    assert real <= bound <= real + 2 * recipients + 4


def test_check_memory() -> None:
    limits.check_memory(10, None, "length 10")  # unknown: allowed
    limits.check_memory(10, 10, "length 10")
    with pytest.raises(LimitError, match=r"^length 5 needs about 11 bytes of memory to build "
                       r"the request; 10 bytes available$"):
        limits.check_memory(11, 10, "length 5")


def test_check_resources_uses_the_memory_it_is_told() -> None:
    config = SourceConfig(target="x", length=10_000_000)
    limits.check_resources(config, memory=lambda: None)
    # The library speaks the config's fields; the command, its options (below).
    with pytest.raises(LimitError, match=r"^length 10000000 needs about 38\.\d MiB"):
        limits.check_resources(config, memory=lambda: 1 << 20)
    config = SourceConfig(target="x", recipients=100_000)
    with pytest.raises(LimitError, match=r"^length 1024 with recipients 100000 needs about"):
        limits.check_resources(config, memory=lambda: 1 << 20)


def test_limit_words_are_the_commands_options() -> None:
    from qmqpsource.cli.common import limit_words
    from qmqpsource.source.config import OPTIONS

    assert limit_words("length 10 with recipients 9 needs about 1 GiB", OPTIONS) == (
        "-l 10 with -r 9 needs about 1 GiB")
    assert limit_words("message_file /tmp/length sessions (1 GiB) needs", OPTIONS) == (
        "-F /tmp/length sessions (1 GiB) needs")  # a path keeps its words
    assert limit_words("sessions 9 needs 41 file descriptors", OPTIONS) == (
        "-s 9 needs 41 file descriptors")


def test_format_bytes() -> None:
    assert limits.format_bytes(0) == "0 bytes"
    assert limits.format_bytes(1023) == "1023 bytes"
    assert limits.format_bytes(1536) == "1.5 KiB"
    assert limits.format_bytes(3 << 40) == "3.0 TiB"
    assert limits.format_bytes(10**30).endswith(" PiB")


INF = resource.RLIM_INFINITY


@pytest.mark.parametrize(
    ("sessions", "soft", "hard", "planned"),
    [(10, 1024, 4096, None), (10, INF, INF, None), (1000, 1024, 4096, 4096),
     (1000, 1024, INF, 1032), (992, 1024, 1024, None)],
)
def test_plan_descriptors(sessions: int, soft: int, hard: int, planned: int | None) -> None:
    assert limits.plan_descriptors(sessions, soft, hard) == planned


def test_plan_descriptors_refuses_past_the_hard_limit() -> None:
    with pytest.raises(LimitError, match=r"^sessions 993 needs 1025 file descriptors; the limit "
                       r"is 1024 \(see ulimit -Hn\)$"):
        limits.plan_descriptors(993, 256, 1024)


def test_ensure_descriptors_sets_the_soft_limit_or_says_why_not() -> None:
    calls: list[tuple[int, tuple[int, int]]] = []

    def getrlimit(which: int) -> tuple[int, int]:
        return (256, 4096)

    def setrlimit(which: int, value: tuple[int, int]) -> None:
        calls.append((which, value))

    limits.ensure_descriptors(1000, getrlimit, setrlimit)
    assert calls == [(resource.RLIMIT_NOFILE, (4096, 4096))]

    def refuse(which: int, value: tuple[int, int]) -> None:
        raise ValueError("not allowed")

    with pytest.raises(LimitError, match=r"^sessions 1000 needs 1032 file descriptors; the limit "
                       r"is 256 and raising it failed: not allowed$"):
        limits.ensure_descriptors(1000, getrlimit, refuse)


def test_proc_value() -> None:
    text = "MemTotal:       24684092 kB\nMemAvailable:   1000 kB\nHugePages_Total:       0\n"
    assert limits.proc_value(text, "MemAvailable") == 1000 * 1024
    assert limits.proc_value(text, "HugePages_Total") == 0
    assert limits.proc_value(text, "Mem") is None
    assert limits.proc_value("MemAvailable: lots\n", "MemAvailable") is None


def _fake_system(tmp_path: Path, meminfo: str, cgroup: dict[str, str]) -> tuple[Path, Path]:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(meminfo)
    (proc / "self" / "status").write_text("VmSize:\t  100 kB\n")
    for name, text in cgroup.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return proc, root


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        ({}, 8 << 30),
        ({"memory.max": "max\n", "memory.current": "100\n"}, 8 << 30),
        ({"memory.max": "1073741824\n", "memory.current": "73741824\n"}, 1_000_000_000),
        ({"memory/memory.limit_in_bytes": "9223372036854771712\n",
          "memory/memory.usage_in_bytes": "5\n"}, 8 << 30),
        ({"memory/memory.limit_in_bytes": "2000\n", "memory/memory.usage_in_bytes": "3000\n"},
         0),
    ],
)
def test_available_memory(tmp_path: Path, cgroup: dict[str, str], expected: int) -> None:
    proc, root = _fake_system(tmp_path, f"MemAvailable: {8 << 20} kB\n", cgroup)
    assert limits.available_memory(proc, root) == expected


def test_available_memory_without_meminfo_falls_back_to_physical_pages(tmp_path: Path) -> None:
    proc, root = _fake_system(tmp_path, "", {})
    assert limits.available_memory(proc, root) == (
        os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    )
