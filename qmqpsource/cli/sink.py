"""qmqp-sink: parallelized QMQP test server that checks, counts, keeps and misbehaves.

    qmqp-sink [-46cv] [-x time] [options] [inet:][host]:port backlog
    qmqp-sink [-46cv] [-x time] [options] unix:pathname backlog

Postfix's arguments, plus faults on purpose (--tempfail, --reject, --delay,
--hang, --drop, reproducible with --seed), durable delivery (--maildir), a
machine-readable summary (--json) and a file that says where it listens
(--ready-file). Stops on SIGINT, SIGTERM or after -x seconds, printing its
counts.

Thin by design: parse the command line into a SinkConfig (whose checks are the
only ones of its values), then run it (sink_run.py). Bad arguments get one line,
``qmqp-sink: fatal: ...``, and exit status 1, never a traceback.
"""

# No `from __future__ import annotations` here: typer reads sink()'s annotations four
# times a start, and as strings each read would evaluate them all again (see source.py).

import contextlib
import os
import resource
import signal
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Annotated

import typer

from qmqpsource import __version__, values
from qmqpsource.addresses import Family
from qmqpsource.cli.common import (
    Command,
    UsageFailure,
    fatal,
    make_app,
    option_words,
    run_command,
    usage_text,
)
from qmqpsource.cli.numbers import number, parse_number, whole
from qmqpsource.cli.outfile import OutputError, OutputFile
from qmqpsource.cli.readyfile import ReadyFile
from qmqpsource.cli.sink_run import run_sink, stop_flag
from qmqpsource.cli.stdio import guard
from qmqpsource.errors import ConfigError
from qmqpsource.sink import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_SIZE,
    DEFAULT_TIMEOUT,
    PROG,
    Faults,
    ListenError,
    SinkConfig,
    check_delay,
    check_rate,
    parse_endpoint,
)
from qmqpsource.sink.config import OPTIONS

__all__ = ["app", "check_embedded_options", "main", "parse_delay", "parse_rate"]

USAGE = (
    "usage: qmqp-sink [-46cv] [-x time] [--max-size bytes] [--timeout seconds] "
    "[--max-connections n] [--tempfail rate] [--reject rate] [--delay seconds|min-max] "
    "[--hang rate] [--drop rate] [--seed n] [--maildir dir] [--json path] [--ready-file path] "
    "[--control-fd fd] [inet:][host]:port backlog | unix:pathname backlog"
)
# Descriptors kept aside for listeners, the Maildir, logs and worker threads.
_SPARE_FDS = 64
# Whether main() runs as the command's own process (not called in-process by a test).
_own_process = False

app = make_app()


@contextlib.contextmanager
def _usage_failure() -> Iterator[None]:
    """A value that the one check of it refuses, as a usage error in the options' words."""
    try:
        yield
    except ConfigError as exc:
        raise UsageFailure(option_words(exc, OPTIONS)) from None


def parse_rate(name: str, value: float) -> float:
    """A share of requests for a fault option (the command leaves this to Faults)."""
    with _usage_failure():
        return check_rate(name, value)


def _delay_bounds(value: str) -> tuple[float, float] | None:
    """``SECONDS`` or ``MIN-MAX`` as numbers; None if it is neither. The dash between
    MIN and MAX is the first one that is no exponent's sign (``1e-3-2e-3``)."""
    for at in range(1, len(value)):
        if value[at] == "-" and value[at - 1] not in "eE":
            low, high = parse_number(value[:at]), parse_number(value[at + 1:])
            return None if low is None or high is None else (low, high)
    seconds = parse_number(value)
    return None if seconds is None else (seconds, seconds)


def parse_delay(value: str) -> tuple[float, float]:
    """``SECONDS`` or ``MIN-MAX``: the (min, max) seconds to wait before replying."""
    bounds = _delay_bounds(value)
    if bounds is None:
        raise UsageFailure(f"--delay wants SECONDS or MIN-MAX, not {value!r}")
    try:
        return check_delay(*bounds)  # the check Faults makes
    except ConfigError as exc:
        if exc.field is None:  # MIN above MAX, in the user's own text
            raise UsageFailure(f"--delay wants SECONDS or MIN-MAX with 0 <= MIN <= MAX, "
                               f"not {value!r}") from None
        raise UsageFailure(option_words(exc, OPTIONS)) from None


def _check_control_fd(fd: int) -> int:
    """A descriptor that is open now: a wrong number would be ignored, or worse."""
    if fd < 0:
        raise UsageFailure(f"--control-fd must be a descriptor number (0 or more), not {fd}")
    try:
        os.fstat(fd)
    except OverflowError:
        raise UsageFailure(f"--control-fd {fd}: no such descriptor number") from None
    except OSError as exc:
        fatal(PROG, f"--control-fd {fd}: {exc.strerror or exc}")
    return fd


def _fit_descriptors(max_connections: int) -> int:
    """Raise the soft descriptor limit if need be; else serve fewer connections at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + _SPARE_FDS
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        if soft < want:
            return max(1, soft - _SPARE_FDS)
    return max_connections


# The operands and options, one type each, so that sink() below reads on one screen.
_Endpoint = Annotated[
    str | None,
    typer.Argument(metavar="ENDPOINT", help="[inet:][host]:port or unix:pathname to listen on."),
]
_Backlog = Annotated[
    str | None,
    typer.Argument(metavar="BACKLOG", help="Listen queue length (the kernel may cap it)."),
]
_IPv4 = Annotated[bool, typer.Option("-4", "--ipv4", help="Listen on IPv4 only.")]
_IPv6 = Annotated[bool, typer.Option("-6", "--ipv6", help="Listen on IPv6 only.")]
_Counter = Annotated[
    bool, typer.Option("-c", "--counter", help="Running count of replies on stdout.")
]
_Verbose = Annotated[
    int,
    typer.Option("-v", "--verbose", count=True, show_default=False,
                 help="One line per connection on stderr; twice: with the sender too."),
]
_Duration = Annotated[
    float | None,
    typer.Option("-x", parser=number, metavar="SECONDS",
                 help="Stop after SECONDS, with the summary."),
]
_MaxSize = Annotated[
    int,
    typer.Option("--max-size", parser=whole, metavar="BYTES",
                 help="Largest request accepted, in BYTES."),
]
_Timeout = Annotated[
    float,
    typer.Option("--timeout", parser=number, metavar="SECONDS", show_default=f"{DEFAULT_TIMEOUT:g}",
                 help="SECONDS a client gets to send its request, then to read the reply."),
]
_MaxConnections = Annotated[
    int,
    typer.Option("--max-connections", parser=whole, metavar="N",
                 help="Connections served at once; more wait in the listen queue."),
]
_Tempfail = Annotated[
    float,
    typer.Option("--tempfail", parser=number, metavar="RATE", show_default="0",
                 help="Share of valid requests answered Z."),
]
_Reject = Annotated[
    float,
    typer.Option("--reject", parser=number, metavar="RATE", show_default="0",
                 help="Share answered D."),
]
_Hang = Annotated[
    float,
    typer.Option("--hang", parser=number, metavar="RATE", show_default="0",
                 help="Share never answered (held until the client leaves or --timeout)."),
]
_Drop = Annotated[
    float,
    typer.Option("--drop", parser=number, metavar="RATE", show_default="0",
                 help="Share closed without a reply."),
]
_Delay = Annotated[
    str | None,
    typer.Option("--delay", metavar="SECONDS|MIN-MAX",
                 help="Wait before replying: SECONDS, or at random from MIN to MAX."),
]
_Seed = Annotated[
    int | None,
    typer.Option("--seed", parser=whole, metavar="N",
                 help="Seed for the faults: the same requests get the same answers."),
]
_MaildirOption = Annotated[
    str | None,
    typer.Option("--maildir", metavar="DIR",
                 help="Keep every accepted message in the Maildir DIR."),
]
_JsonPath = Annotated[
    str | None,
    typer.Option("--json", metavar="PATH", help="Write the summary as JSON to PATH at exit."),
]
_ReadyFilePath = Annotated[
    str | None,
    typer.Option("--ready-file", metavar="PATH",
                 help="Once listening, write the listening addresses to PATH, one a line "
                 "(port 0 resolved); removed at exit."),
]
_ControlFd = Annotated[
    int | None,
    typer.Option("--control-fd", parser=whole, metavar="FD",
                 help="For a parent process: write the listening addresses on FD once ready, "
                 "and 'ending' before stopping on its own; stop when FD reports end-of-file."),
]
_Version = Annotated[bool, typer.Option("--version", help="Print the version.")]


# The manual part of the module's docstring; the rest is for people reading the code.
@app.command(cls=Command, options_metavar="[OPTIONS] ENDPOINT BACKLOG",
             help=(__doc__ or "").split("\n\nThin by design")[0], no_args_is_help=False)
def sink(
    endpoint: _Endpoint = None,
    backlog: _Backlog = None,
    ipv4: _IPv4 = False,
    ipv6: _IPv6 = False,
    counter: _Counter = False,
    verbose: _Verbose = 0,
    duration: _Duration = None,
    max_size: _MaxSize = DEFAULT_MAX_SIZE,
    timeout: _Timeout = DEFAULT_TIMEOUT,
    max_connections: _MaxConnections = DEFAULT_MAX_CONNECTIONS,
    tempfail: _Tempfail = 0.0,
    reject: _Reject = 0.0,
    hang: _Hang = 0.0,
    drop: _Drop = 0.0,
    delay: _Delay = None,
    seed: _Seed = None,
    maildir: _MaildirOption = None,
    json_path: _JsonPath = None,
    ready_file_path: _ReadyFilePath = None,
    control_fd: _ControlFd = None,
    version: _Version = False,
) -> None:
    if version:
        print(f"qmqp-sink {__version__}")
        raise typer.Exit(0)
    endpoint, listen_backlog = _operands(endpoint, backlog)
    if ipv4 and ipv6:
        raise UsageFailure("-4 and -6 exclude each other")
    if ready_file_path == "":
        raise UsageFailure("--ready-file wants a path, not ''")
    if control_fd is not None:
        _check_control_fd(control_fd)
    delay_min, delay_max = parse_delay(delay) if delay is not None else (0.0, 0.0)
    with _usage_failure():
        # Faults and SinkConfig check every value of theirs, in the options' words.
        faults = Faults(drop=drop, hang=hang, tempfail=tempfail, reject=reject,
                        delay_min=delay_min, delay_max=delay_max, seed=seed)
        config = SinkConfig(
            endpoint=endpoint, backlog=listen_backlog,
            family=Family.INET if ipv4 else Family.INET6 if ipv6 else Family.ANY,
            max_size=max_size, timeout=timeout, max_connections=max_connections,
            faults=faults, maildir=maildir,
        )
        _check_endpoint(endpoint)
        stop_after = values.seconds("-x", duration) if duration is not None else None
    config = replace(config, max_connections=_fit_descriptors(config.max_connections))
    json_file = _json_file(json_path)
    ready_file = _ready_file(ready_file_path)
    raise typer.Exit(run_sink(config, stop_after, json_file, control_fd, ready_file=ready_file,
                              own_process=_own_process, verbose=verbose, counter=counter))


def _operands(endpoint: str | None, backlog: str | None) -> tuple[str, int]:
    """ENDPOINT as given (parsed by _check_endpoint), and BACKLOG as a number."""
    if endpoint is None:
        raise UsageFailure("missing endpoint")
    if backlog is None:
        raise UsageFailure("missing backlog")
    # The operand as Postfix takes it: decimal digits. Its bounds are SinkConfig's.
    if not (backlog.isascii() and backlog.isdigit()):
        raise UsageFailure(f"backlog must be a whole number, not {backlog!r}")
    return endpoint, int(backlog)


def _check_endpoint(endpoint: str) -> None:
    # Now, as a usage error; the Sink parses it again when it starts to listen.
    try:
        parse_endpoint(endpoint)
    except ListenError as exc:
        raise UsageFailure(str(exc)) from None


def _json_file(path: str | None) -> OutputFile | None:
    if path is None:
        return None
    if not path:
        fatal(PROG, "--json wants a path, not ''")
    try:
        return OutputFile.at(path)  # a bad path fails now, not after the run
    except OutputError as exc:
        fatal(PROG, f"--json: {exc}")


def _ready_file(path: str | None) -> ReadyFile | None:
    if path is None:
        return None
    try:
        return ReadyFile.at(path)  # a bad path fails now, before the sink listens
    except OutputError as exc:
        fatal(PROG, f"--ready-file: {exc}")


def check_embedded_options(args: Sequence[str]) -> None:
    """qmqp-source's --sink-options, before its run: options as the sink parses them,
    and none of those that --embedded-sink sets itself (given twice, the user's would
    win, and the source would learn only after its run that it has no summary)."""
    command = typer.main.get_command(app)
    try:
        # A placeholder endpoint and backlog: any positional argument given is one too many.
        # No -h: the sink's help, printed in the source's place, would end the run unrun.
        ctx = command.make_context(PROG, ["127.0.0.1:0", "1", *args], help_option_names=[])
    except typer.exceptions.TyperException as exc:
        raise UsageFailure(f"--sink-options: {usage_text(exc)}") from None
    with ctx:
        for name, option in (("json_path", "--json"), ("control_fd", "--control-fd")):
            if ctx.params.get(name) is not None:
                raise UsageFailure(f"--sink-options: {option} is --embedded-sink's own")
        if ctx.params.get("version"):
            raise UsageFailure("--sink-options: --version does not go with --embedded-sink")
        if ctx.params.get("counter"):
            # The embedded sink's stdout carries its summary to the source.
            raise UsageFailure("--sink-options: -c does not go with --embedded-sink")
        if ctx.params.get("duration") is not None:
            raise UsageFailure("--sink-options: -x does not go with --embedded-sink: the "
                               "sink runs as long as the load")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: Postfix's exit statuses, never a traceback for bad input."""
    global _own_process
    if argv is None:
        _own_process = True
        # The real process, not a caller in-process: SIGTERM is ours until the exit.
        signal.signal(signal.SIGTERM, stop_flag)
        guard()  # closed or failing stdio must not change the run (see stdio.py)
    try:
        status = run_command(app, PROG, USAGE, argv)
    finally:
        if argv is None:
            # Python's finalization resets Python-level handlers to the default (fatal)
            # one, but leaves SIG_IGN alone: a late SIGTERM then cannot kill the exit.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(status)


if __name__ == "__main__":
    main()
