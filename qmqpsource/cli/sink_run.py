"""One qmqp-sink run in this process: trio, signals, --control-fd, --ready-file, the summary
and --json.

cli/sink.py builds the SinkConfig from the command line and calls run_sink(); this
module runs the Sink until a signal, -x or the parent process says stop, then writes
what it counted. A failure to listen or to write the results is one fatal line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from typing import Any, NamedTuple, Protocol, TextIO, cast

import trio

from qmqpsource.cli.loglines import LineWriter
from qmqpsource.cli.logs import printing
from qmqpsource.cli.outfile import OutputError, OutputFile
from qmqpsource.cli.readyfile import ReadyFile
from qmqpsource.sink import PROG, Sink, SinkConfig, SinkError, format_summary
from qmqpsource.wording import one_line

__all__ = ["OUTPUT_WAIT", "run_sink", "stop_flag"]

# At the exit, how long the summary may wait for a reader of stderr (or stdout).
OUTPUT_WAIT = 2.0


def run_sink(
    config: SinkConfig,
    duration: float | None = None,
    json_file: OutputFile | None = None,
    control_fd: int | None = None,
    *,
    ready_file: ReadyFile | None = None,
    own_process: bool = False,
    verbose: int = 0,
    counter: bool = False,
) -> int:
    """Serve until a signal, -x or the parent says stop; print the summary; exit status.

    ``own_process``: the command's own process, whose stdio is its own (see _outputs).
    ``verbose`` (-v) and ``counter`` (-c): the lines and counts printed as it serves.
    """
    log, out = _outputs(own_process)
    failure: str | None = None
    # SIGTERM outside the signal receiver's scope: noted, never fatal (see _StopFlag).
    previous = signal.signal(signal.SIGTERM, stop_flag)
    try:
        with printing(PROG, verbose=verbose, counter=counter, err=lambda: cast(TextIO, log),
                      out=lambda: cast(TextIO, out)):
            server = Sink(config)  # made with the levels set: it asks them once
            try:
                trio.run(_serve, server, duration, json_file, control_fd, ready_file,
                         _Outputs(log, out, counter))
            except* (SinkError, _SinkFailure) as group:
                failure = str(group.exceptions[0])
    except KeyboardInterrupt:
        return 130  # a Ctrl-C before trio's signal receiver was in place, or after the summary
    finally:
        signal.signal(signal.SIGTERM, previous)
        if failure is not None:
            _write_always(log, f"{PROG}: fatal: {one_line(failure)}\n")
        for stream in (out, log):
            if isinstance(stream, LineWriter):
                stream.close(OUTPUT_WAIT)
    return 0 if failure is None else 1


class Lines(Protocol):
    """Where the sink's lines and -c's counts go: a text stream, or a LineWriter."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class _Outputs(NamedTuple):
    log: Lines  # stderr
    out: Lines  # stdout
    counter: bool  # -c: end the running count with a newline


def _outputs(own_process: bool) -> tuple[Lines, Lines]:
    """stderr and stdout for the run: in the command's own process, writers that never
    block the event loop (an unread pipe froze the sink); called in-process (tests), the
    caller's streams as they are."""
    if own_process:
        return LineWriter(2), LineWriter(1)
    return sys.stderr, sys.stdout


def _write_always(stream: Lines, text: str) -> None:
    """A line that must not be dropped for a full queue: the summary, a failure."""
    if isinstance(stream, LineWriter):
        stream.write(text, always=True)
    else:
        stream.write(text)
        stream.flush()


class _StopFlag:
    """A SIGTERM handler for the edges of the run, where trio's receiver is not in place.

    One that comes during start-up stops the sink as soon as it listens; one that
    comes after the summary (a parent that signals twice) must not kill the process
    with status -15 on its way out.
    """

    requested = False

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True


stop_flag = _StopFlag()


class _SinkFailure(Exception):
    """The sink could not say where it listens (--ready-file), or write its results."""


async def _serve(
    server: Sink,
    duration: float | None,
    json_file: OutputFile | None,
    control_fd: int | None,
    ready_file: ReadyFile | None,
    outputs: _Outputs,
) -> None:
    # Signals are held for the whole run, summary included: a second SIGTERM while
    # the JSON is being written must not kill the process halfway through it.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with trio.open_nursery() as nursery:
                labels = await nursery.start(server.serve)
                if ready_file is not None:
                    _announce(ready_file, labels)
                ending = _Ending(nursery.cancel_scope, control_fd)
                nursery.start_soon(_stop_on_signal, signals, ending)
                if stop_flag.requested:
                    nursery.cancel_scope.cancel()  # a SIGTERM came while we started
                if control_fd is not None:
                    _tell_parent(control_fd, " ".join(labels))
                    nursery.start_soon(_follow_parent, control_fd, nursery.cancel_scope)
                if duration is not None:
                    nursery.start_soon(_stop_after, duration, ending)
        finally:
            if ready_file is not None:
                ready_file.remove()  # the sink listens no more
            if control_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(control_fd)  # here, after the last word to the parent
        _write_results(server, json_file, outputs)


def _announce(ready_file: ReadyFile, labels: list[str]) -> None:
    """--ready-file, once listening; a sink that cannot say where it listens stops, as a
    script waiting for the file would otherwise wait for ever."""
    try:
        ready_file.write(labels)
    except OutputError as exc:
        raise _SinkFailure(f"--ready-file: {exc}") from None


class _Ending:
    """The sink's own end (-x, a signal): a parent on --control-fd hears "ending" before
    the listeners close, so that a load whose connections are then refused can tell
    that its sink went, not the server's answer."""

    def __init__(self, scope: trio.CancelScope, control_fd: int | None) -> None:
        self.scope = scope
        self.control_fd = control_fd

    def now(self) -> None:
        if self.control_fd is not None and not self.scope.cancel_called:
            with contextlib.suppress(OSError):
                os.write(self.control_fd, b"ending\n")
        self.scope.cancel()


async def _stop_on_signal(signals: Any, ending: _Ending) -> None:
    async for _ in signals:
        ending.now()
        return


async def _stop_after(duration: float, ending: _Ending) -> None:
    await trio.sleep(duration)
    ending.now()


def _tell_parent(fd: int, line: str) -> None:
    """The listening addresses, on --control-fd: a descriptor that takes no line is
    fatal, not ignored (the parent would wait, and we would serve, for ever)."""
    try:
        os.set_blocking(fd, False)
        os.write(fd, f"{line}\n".encode())
    except OSError as exc:
        raise _SinkFailure(f"--control-fd {fd}: {exc.strerror}") from None


async def _follow_parent(fd: int, scope: trio.CancelScope) -> None:
    """Stop when the parent closes its end of --control-fd (or dies)."""
    while True:
        await trio.lowlevel.wait_readable(fd)
        try:
            if os.read(fd, 512):
                continue
        except BlockingIOError:
            continue
        except OSError:
            pass  # unreadable now: as good as closed
        break
    scope.cancel()


def _write_results(server: Sink, json_file: OutputFile | None, outputs: _Outputs) -> None:
    config = server.config
    stats = server.stats
    log, out = outputs.log, outputs.out
    if outputs.counter:
        _write_always(out, "\n")
    if isinstance(out, LineWriter):
        out.close(OUTPUT_WAIT)  # -c's counts before a --json - on the same stdout
    dropped = log.dropped if isinstance(log, LineWriter) else 0
    for line in format_summary(stats):
        _write_always(log, f"{PROG}: {line}\n")
    if dropped:
        _write_always(log, f"{PROG}: {dropped} log lines dropped: stderr was not read "
                           "fast enough\n")
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
