"""qmqp-sink: parallelized QMQP test server that checks, counts, keeps and misbehaves.

    qmqp-sink [-46cv] [-x time] [options] [inet:][host]:port backlog
    qmqp-sink [-46cv] [-x time] [options] unix:pathname backlog

Postfix's arguments, plus faults on purpose (--tempfail, --reject, --delay,
--hang, --drop, reproducible with --seed), durable delivery (--maildir) and a
machine-readable summary (--json). Stops on SIGINT, SIGTERM or after -x
seconds, printing its counts.

Thin by design: parse and validate, build a SinkConfig, run the Sink from
qmqpsource.sink, print the summary. Bad arguments get one line,
``qmqp-sink: fatal: ...``, and exit status 1, never a traceback.
"""

# No `from __future__ import annotations` here: typer reads sink()'s annotations four
# times a start, and as strings each read would evaluate them all again (see cli.py).

import contextlib
import json
import os
import resource
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Annotated, Any, NoReturn

import trio
import typer

from qmqpsource import __version__, values
from qmqpsource.addresses import Family
from qmqpsource.cli.common import (
    Command,
    UsageFailure,
    fatal,
    make_app,
    run_command,
    usage_text,
)
from qmqpsource.cli.outfile import OutputError, OutputFile
from qmqpsource.cli.stdio import guard
from qmqpsource.sink import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_SIZE,
    DEFAULT_TIMEOUT,
    PROG,
    Faults,
    Lines,
    ListenError,
    Sink,
    SinkConfig,
    SinkError,
    check_delay,
    check_rate,
    format_summary,
    parse_endpoint,
)
from qmqpsource.sink.loglines import LineWriter
from qmqpsource.values import ValueProblem

__all__ = ["app", "check_embedded_options", "main", "parse_delay", "parse_rate"]

USAGE = (
    "usage: qmqp-sink [-46cv] [-x time] [--max-size bytes] [--timeout seconds] "
    "[--max-connections n] [--tempfail rate] [--reject rate] [--delay seconds|min-max] "
    "[--hang rate] [--drop rate] [--seed n] [--maildir dir] [--json path] [--control-fd fd] "
    "[inet:][host]:port backlog | unix:pathname backlog"
)
# Descriptors kept aside for listeners, the Maildir, logs and worker threads.
_SPARE_FDS = 64
# At the exit, how long the summary may wait for a reader of stderr (or stdout).
OUTPUT_WAIT = 2.0
# Whether main() runs as the command's own process (not called in-process by a test).
_own_process = False

app = make_app()


def _fatal(text: str) -> NoReturn:
    fatal(PROG, text)


@contextlib.contextmanager
def _usage_failure() -> Iterator[None]:
    """A value out of bounds, found by the one check of it, as a usage error."""
    try:
        yield
    except ValueProblem as exc:
        raise UsageFailure(str(exc)) from None


def parse_rate(name: str, value: float) -> float:
    """A share of requests for a fault option (the command leaves this to Faults)."""
    with _usage_failure():
        return check_rate(name, value)


def parse_delay(value: str) -> tuple[float, float]:
    """``SECONDS`` or ``MIN-MAX``: the (min, max) seconds to wait before replying."""
    low, dash, high = value.partition("-")
    try:
        bounds = (float(low), float(high)) if dash else (float(low), float(low))
    except ValueError:
        raise UsageFailure(f"--delay wants SECONDS or MIN-MAX, not {value!r}") from None
    with _usage_failure():
        # The check Faults makes, here with the text as the user wrote it.
        return check_delay(*bounds, value)


def _check_control_fd(fd: int) -> int:
    """A descriptor that is open now: a wrong number would be ignored, or worse."""
    if fd < 0:
        raise UsageFailure(f"--control-fd must be a descriptor number (0 or more), not {fd}")
    try:
        os.fstat(fd)
    except OverflowError:
        raise UsageFailure(f"--control-fd {fd}: no such descriptor number") from None
    except OSError as exc:
        _fatal(f"--control-fd {fd}: {exc.strerror or exc}")
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


# The manual part of the module's docstring; the rest is for people reading the code.
@app.command(cls=Command, options_metavar="[OPTIONS] ENDPOINT BACKLOG",
             help=(__doc__ or "").split("\n\nThin by design")[0], no_args_is_help=False)
def sink(
    endpoint: Annotated[
        str | None,
        typer.Argument(metavar="ENDPOINT",
                       help="[inet:][host]:port or unix:pathname to listen on."),
    ] = None,
    backlog: Annotated[
        str | None,
        typer.Argument(metavar="BACKLOG", help="Listen queue length (the kernel may cap it)."),
    ] = None,
    ipv4: Annotated[bool, typer.Option("-4", "--ipv4", help="Listen on IPv4 only.")] = False,
    ipv6: Annotated[bool, typer.Option("-6", "--ipv6", help="Listen on IPv6 only.")] = False,
    counter: Annotated[
        bool, typer.Option("-c", "--counter", help="Running count of replies on stdout.")
    ] = False,
    verbose: Annotated[
        int,
        typer.Option("-v", "--verbose", count=True, show_default=False,
                     help="One line per connection on stderr; twice: with the sender too."),
    ] = 0,
    duration: Annotated[
        float | None,
        typer.Option("-x", metavar="SECONDS", help="Stop after SECONDS, with the summary."),
    ] = None,
    max_size: Annotated[
        int,
        typer.Option("--max-size", metavar="BYTES", help="Largest request accepted, in BYTES."),
    ] = DEFAULT_MAX_SIZE,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", show_default=f"{DEFAULT_TIMEOUT:g}",
                     help="SECONDS a client gets to send its request, then to read the reply."),
    ] = DEFAULT_TIMEOUT,
    max_connections: Annotated[
        int,
        typer.Option("--max-connections", metavar="N",
                     help="Connections served at once; more wait in the listen queue."),
    ] = DEFAULT_MAX_CONNECTIONS,
    tempfail: Annotated[
        float,
        typer.Option("--tempfail", metavar="RATE", show_default="0",
                     help="Share of valid requests answered Z."),
    ] = 0.0,
    reject: Annotated[
        float,
        typer.Option("--reject", metavar="RATE", show_default="0", help="Share answered D."),
    ] = 0.0,
    hang: Annotated[
        float,
        typer.Option("--hang", metavar="RATE", show_default="0",
                     help="Share never answered (held until the client leaves or --timeout)."),
    ] = 0.0,
    drop: Annotated[
        float,
        typer.Option("--drop", metavar="RATE", show_default="0",
                     help="Share closed without a reply."),
    ] = 0.0,
    delay: Annotated[
        str | None,
        typer.Option("--delay", metavar="SECONDS|MIN-MAX",
                     help="Wait before replying: SECONDS, or at random from MIN to MAX."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="N",
                     help="Seed for the faults: the same requests get the same answers."),
    ] = None,
    maildir: Annotated[
        str | None,
        typer.Option("--maildir", metavar="DIR",
                     help="Keep every accepted message in the Maildir DIR."),
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("--json", metavar="PATH", help="Write the summary as JSON to PATH at exit."),
    ] = None,
    control_fd: Annotated[
        int | None,
        typer.Option(
            "--control-fd", metavar="FD",
            help="For a parent process: write the listening addresses on FD once ready; "
            "stop when FD reports end-of-file.",
        ),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        print(f"qmqp-sink {__version__}")
        raise typer.Exit(0)
    if endpoint is None:
        raise UsageFailure("missing endpoint")
    if backlog is None:
        raise UsageFailure("missing backlog")
    # The operand as Postfix takes it: decimal digits. Its bounds are SinkConfig's.
    if not (backlog.isascii() and backlog.isdigit()) or int(backlog) <= 0:
        raise UsageFailure(f"backlog must be a positive number, not {backlog!r}")
    if ipv4 and ipv6:
        raise UsageFailure("-4 and -6 exclude each other")
    if maildir == "":
        raise UsageFailure("--maildir wants a folder, not ''")  # '' was the current folder
    if control_fd is not None:
        _check_control_fd(control_fd)
    delay_min, delay_max = parse_delay(delay) if delay is not None else (0.0, 0.0)
    with _usage_failure():
        # Faults and SinkConfig check every value of theirs, in the options' words.
        config = SinkConfig(
            endpoint=endpoint,
            backlog=int(backlog),
            family=Family.INET if ipv4 else Family.INET6 if ipv6 else Family.ANY,
            max_size=max_size,
            timeout=timeout,
            max_connections=max_connections,
            faults=Faults(
                drop=drop, hang=hang, tempfail=tempfail, reject=reject,
                delay_min=delay_min, delay_max=delay_max, seed=seed,
            ),
            maildir=maildir,
            counter=counter,
            verbose=verbose,
        )
        try:
            parse_endpoint(endpoint)
        except ListenError as exc:
            raise UsageFailure(str(exc)) from None
        stop_after = values.seconds("-x", duration) if duration is not None else None
    config = replace(config, max_connections=_fit_descriptors(config.max_connections))
    json_file = None
    if json_path is not None:
        try:
            json_file = OutputFile.at(json_path)  # a bad path fails now, not after the run
        except OutputError as exc:
            _fatal(f"--json: {exc}")
    raise typer.Exit(run_sink(config, stop_after, json_file, control_fd))


def check_embedded_options(args: Sequence[str]) -> None:
    """qmqp-source's --sink-options, before its run: options as the sink parses them,
    and none of those that --embedded-sink sets itself (given twice, the user's would
    win, and the source would learn only after its run that it has no summary)."""
    command = typer.main.get_command(app)
    try:
        # A placeholder endpoint and backlog: any positional argument given is one too many.
        ctx = command.make_context(PROG, ["127.0.0.1:0", "1", *args])
    except typer.exceptions.TyperException as exc:
        raise UsageFailure(f"--sink-options: {usage_text(exc)}") from None
    with ctx:
        for name, option in (("json_path", "--json"), ("control_fd", "--control-fd")):
            if ctx.params.get(name) is not None:
                raise UsageFailure(f"--sink-options: {option} is --embedded-sink's own")
        if ctx.params.get("counter"):
            # The embedded sink's stdout carries its summary to the source.
            raise UsageFailure("--sink-options: -c does not go with --embedded-sink")


def run_sink(
    config: SinkConfig,
    duration: float | None = None,
    json_file: OutputFile | None = None,
    control_fd: int | None = None,
) -> int:
    """Serve until a signal, -x or the parent says stop; print the summary; exit status."""
    log, out = _outputs()
    server = Sink(config, log=log, out=out)
    failure: str | None = None
    # SIGTERM outside the signal receiver's scope: noted, never fatal (see _StopFlag).
    previous = signal.signal(signal.SIGTERM, _stop_flag)
    try:
        try:
            trio.run(_serve, server, duration, json_file, control_fd)
        except* (SinkError, _SinkFailure) as group:
            failure = str(group.exceptions[0])
    except KeyboardInterrupt:
        return 130  # a Ctrl-C before the signal receiver was up, or after the summary
    finally:
        signal.signal(signal.SIGTERM, previous)
        if failure is not None:
            _tell(log, f"{PROG}: fatal: {failure}\n")
        for stream in (out, log):
            if isinstance(stream, LineWriter):
                stream.close(OUTPUT_WAIT)
    return 0 if failure is None else 1


def _outputs() -> tuple[Lines, Lines]:
    """stderr and stdout for the run: in the command's own process, writers that never
    block the event loop (an unread pipe froze the sink); called in-process (tests), the
    caller's streams as they are."""
    if _own_process:
        return LineWriter(2), LineWriter(1)
    return sys.stderr, sys.stdout


def _tell(stream: Lines, text: str) -> None:
    """A line that must not be dropped for a full queue: the summary, a failure."""
    if isinstance(stream, LineWriter):
        stream.write(text, always=True)
    else:
        stream.write(text)
        stream.flush()


class _StopFlag:
    """A SIGTERM handler for the edges of the run, where trio's receiver is not up.

    One that comes during start-up stops the sink as soon as it listens; one that
    comes after the summary (a parent that signals twice) must not kill the process
    with status -15 on its way out.
    """

    requested = False

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True


_stop_flag = _StopFlag()


class _SinkFailure(Exception):
    """The run ended, but its results could not be written."""


async def _serve(
    server: Sink, duration: float | None, json_file: OutputFile | None, control_fd: int | None
) -> None:
    # Signals are held for the whole run, summary included: a second SIGTERM while
    # the JSON is being written must not kill the process halfway through it.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            labels = await nursery.start(server.serve)
            nursery.start_soon(_stop_on_signal, signals, nursery.cancel_scope)
            if _stop_flag.requested:
                nursery.cancel_scope.cancel()  # a SIGTERM came while we started
            if control_fd is not None:
                nursery.start_soon(_control, control_fd, labels, nursery.cancel_scope)
            if duration is not None:
                nursery.cancel_scope.deadline = trio.current_time() + duration
        _finish(server, json_file)


async def _stop_on_signal(signals: Any, scope: trio.CancelScope) -> None:
    async for _ in signals:
        scope.cancel()
        return


async def _control(fd: int, labels: list[str], scope: trio.CancelScope) -> None:
    """Tell the parent where we listen; stop when it closes its end (or dies)."""
    try:
        os.set_blocking(fd, False)
        os.write(fd, (" ".join(labels) + "\n").encode())
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                if os.read(fd, 512):
                    continue
            except BlockingIOError:
                continue
            break
    except OSError:
        pass  # a descriptor we cannot use: no parent to follow, nothing to stop for
    else:
        scope.cancel()
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _finish(server: Sink, json_file: OutputFile | None) -> None:
    config = server.config
    stats = server.stats
    if config.counter:
        _tell(server.out, "\n")
    if isinstance(server.out, LineWriter):
        server.out.close(OUTPUT_WAIT)  # -c's counts before a --json - on the same stdout
    dropped = server.log.dropped if isinstance(server.log, LineWriter) else 0
    for line in format_summary(stats):
        _tell(server.log, f"{PROG}: {line}\n")
    if dropped:
        _tell(server.log, f"{PROG}: {dropped} log lines dropped: stderr was not read fast "
                          "enough\n")
    if json_file is None:
        return
    result = stats.as_dict()
    result["listen"] = server.labels
    result["maildir"] = config.maildir
    result["log_dropped"] = dropped
    try:
        json_file.write(json.dumps(result, indent=2) + "\n")  # whole, or not at all
    except OutputError as exc:
        raise _SinkFailure(f"--json: {exc}") from None


def main(argv: list[str] | None = None) -> None:
    """Console entry point: Postfix's exit statuses, never a traceback for bad input."""
    global _own_process
    if argv is None:
        _own_process = True
        # The real process, not a caller in-process: SIGTERM is ours until the exit.
        signal.signal(signal.SIGTERM, _stop_flag)
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
