"""qmqp-source: parallelized QMQP test generator, a trio remake of Postfix's tool.

    qmqp-source [options] [inet:]host[:port]
    qmqp-source [options] unix:pathname

Thin by design: parse and validate the options, build the message once, hand a
frozen config to the runner, map the result to Postfix's messages and exit codes.
"""

from __future__ import annotations

import math
import sys
from functools import partial
from typing import IO, Annotated, NoReturn

import trio
import typer

from qmqpsource import __version__, result
from qmqpsource.config import ConfigError, Family, SourceConfig
from qmqpsource.connector import TargetError, resolve
from qmqpsource.limits import MAX_COUNT, MAX_SECONDS, LimitError, check_resources
from qmqpsource.message import (
    HostnameError,
    build_message,
    check_myhostname,
    default_address,
    recipient_list,
    system_hostname,
)
from qmqpsource.progress import bar_wanted, run_progress
from qmqpsource.protocol import encode_request
from qmqpsource.runner import PROG, Runner, RunResult
from qmqpsource.stats import RunStats
from qmqpsource.summary import format_summary

__all__ = ["app", "main", "run_source"]

USAGE = (
    "usage: qmqp-source [-46Acv] [-C count] [-f from] [-l msglen] [-m msgs] [-M myhostname] "
    "[-r rcpts] [-R delay] [-s sess] [-t to] [-w delay] [-q] [--interval secs] [--json path] "
    "[inet:]host[:port] | unix:pathname"
)

app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


class UsageFailure(Exception):
    """Arguments that make no run: one line on stderr, exit status 1 (as Postfix)."""


def _fatal(text: str) -> NoReturn:
    sys.stderr.write(f"{PROG}: fatal: {text}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def _positive(name: str, value: int) -> int:
    if value <= 0:
        raise UsageFailure(f"{name} must be a positive number, not {value}")
    if value > MAX_COUNT:
        raise UsageFailure(f"{name} must be at most {MAX_COUNT}, not {value}")
    return value


def _delay(name: str, value: float | None) -> float:
    if value is None:
        return 0.0
    if not math.isfinite(value) or value <= 0:
        raise UsageFailure(f"{name} must be a positive number of seconds, not {value}")
    if value > MAX_SECONDS:
        raise UsageFailure(f"{name} must be at most {MAX_SECONDS:.0f} seconds, not {value}")
    return value


@app.command(help=__doc__, no_args_is_help=False)
def source(
    target: Annotated[
        str | None,
        typer.Argument(help="[inet:]host[:port], [inet:][addr]:port or unix:pathname"),
    ] = None,
    ipv4: Annotated[bool, typer.Option("-4", "--ipv4", help="Connect with IPv4 only.")] = False,
    ipv6: Annotated[bool, typer.Option("-6", "--ipv6", help="Connect with IPv6 only.")] = False,
    keep_going: Annotated[
        bool,
        typer.Option("-A", "--keep-going", help="Don't abort on a failed message; count it."),
    ] = False,
    counter: Annotated[
        bool, typer.Option("-c", "--counter", help="Running count of deliveries on stdout.")
    ] = False,
    connect_attempts: Annotated[
        int,
        typer.Option("-C", "--connect-attempts", help="Connect attempts when refused or reset."),
    ] = 1,
    sender: Annotated[
        str | None, typer.Option("-f", "--from", help="Sender (default foo@myhostname).")
    ] = None,
    length: Annotated[
        int, typer.Option("-l", "--length", help="Message size in bytes, headers included.")
    ] = 1024,
    messages: Annotated[
        int, typer.Option("-m", "--messages", help="Messages to send, over all sessions.")
    ] = 1,
    myhostname: Annotated[
        str | None,
        typer.Option("-M", "--myhostname", help="Hostname or [address] for default addresses."),
    ] = None,
    recipients: Annotated[
        int, typer.Option("-r", "--recipients", help="Recipients per message: 0TO, 1TO, ...")
    ] = 1,
    random_delay: Annotated[
        float | None,
        typer.Option("-R", "--random-delay", help="Random wait 0..SECONDS between messages."),
    ] = None,
    sessions: Annotated[
        int, typer.Option("-s", "--sessions", help="Sessions in parallel.")
    ] = 1,
    recipient: Annotated[
        str | None, typer.Option("-t", "--to", help="Recipient (default foo@myhostname).")
    ] = None,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="'<< reply' lines; twice: more.")
    ] = 0,
    fixed_delay: Annotated[
        float | None,
        typer.Option("-w", "--wait", help="Fixed wait of SECONDS between messages."),
    ] = None,
    connect_limit: Annotated[
        int,
        typer.Option("--connect-limit", help="Connection attempts in flight at once."),
    ] = 1,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Deadline in seconds for each I/O step.")
    ] = 300.0,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No summary or progress on stderr.")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option("--interval", help="One progress line on stderr every SECONDS."),
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("--json", help="Write the result as JSON to PATH ('-': stdout)."),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        print(f"qmqp-source {__version__}")
        raise typer.Exit(0)
    if target is None:
        raise UsageFailure("missing target")
    if ipv4 and ipv6:
        raise UsageFailure("-4 and -6 exclude each other")
    if fixed_delay is not None and random_delay is not None:
        raise UsageFailure("-w and -R exclude each other")
    _delay("--timeout", timeout)
    if interval is not None:
        _delay("--interval", interval)
    for name, value in (("-C", connect_attempts), ("-l", length), ("-m", messages),
                        ("-r", recipients), ("-s", sessions), ("--connect-limit", connect_limit)):
        _positive(name, value)
    if myhostname is not None:
        try:
            check_myhostname(myhostname)
        except HostnameError as exc:
            _fatal(str(exc))
    try:
        config = SourceConfig(
            target=target,
            sessions=sessions,
            messages=messages,
            length=length,
            recipients=recipients,
            sender=sender,
            recipient=recipient,
            myhostname=myhostname,
            family=Family.INET if ipv4 else Family.INET6 if ipv6 else Family.ANY,
            connect_attempts=connect_attempts,
            connect_limit=connect_limit,
            fixed_delay=_delay("-w", fixed_delay),
            random_delay=_delay("-R", random_delay),
            timeout=timeout,
            counter=counter,
            verbose=verbose,
            keep_going=keep_going,
        )
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    try:
        check_resources(config)  # before the run, not a crash in its middle
    except LimitError as exc:
        _fatal(str(exc))
    raise typer.Exit(run_source(config, quiet=quiet, interval=interval, json_path=json_path))


def build_request(config: SourceConfig) -> bytes:
    """The whole request, built once per run: every message is the same bytes."""
    hostname = config.myhostname or system_hostname()
    address = default_address(hostname)
    sender = config.sender if config.sender is not None else address
    recipient = config.recipient if config.recipient is not None else address
    message = build_message(sender, recipient, config.length, hostname)
    return encode_request(
        message,
        _wire(sender),
        [_wire(r) for r in recipient_list(recipient, config.recipients)],
    )


def _wire(text: str) -> bytes:
    """Arguments go on the wire as the bytes they were given, UTF-8 or not."""
    return text.encode("utf-8", "surrogateescape")


def run_source(
    config: SourceConfig,
    *,
    quiet: bool = False,
    interval: float | None = None,
    json_path: str | None = None,
) -> int:
    """Run the load; print Postfix's fatal line on failure; return the exit status.

    The JSON result (with ``json_path``) is written however the run ends: completed,
    failed or interrupted. The summary goes to stderr after the run unless ``quiet``
    (-c's counter is on stdout and -v's lines come before it, as in Postfix), or unless
    the run failed: then Postfix's one fatal line says it all.
    """
    request = build_request(config)
    stats = RunStats(config.recipients, len(request))
    summary = not quiet
    # Opened before the run, so that a bad path fails at once, not after a long run.
    json_file = _open_json(json_path)
    bar = bar_wanted(
        quiet=quiet, counter=config.counter, verbose=config.verbose, stream=sys.stderr
    )

    async def main() -> RunResult:
        endpoint = await resolve(config.target, config.family)
        stats.begin()
        async with trio.open_nursery() as nursery:
            if bar or interval:
                await nursery.start(
                    partial(run_progress, stats, config.messages, bar=bar, interval=interval)
                )
            # Built once the bar is up, so that its warnings go through rich's stderr.
            run_result = await Runner(config, endpoint, request, stats).run()
            nursery.cancel_scope.cancel()
        return run_result

    def report(status: str, failure: str | None) -> None:
        stats.finish()
        value = result.from_stats(
            stats, config.as_dict(), tool_name=PROG, tool_version=__version__,
            status=status, failure=failure,
        )
        if summary and status != "failed":
            sys.stderr.write(format_summary(value))
            sys.stderr.flush()
        if json_file is not None:
            _write_json(json_file, value)

    try:
        run_result = trio.run(main)
    except TargetError as exc:
        report("failed", str(exc))
        _fatal(str(exc))
    except BaseException as exc:
        # Ctrl-C arrives inside the runner's nursery, so wrapped in an exception group.
        if isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
        ):
            report("interrupted", None)
            sys.stderr.write(f"{PROG}: interrupted\n")
            return 130
        report("failed", f"{type(exc).__name__}: {exc}")
        raise
    report("completed" if run_result.failure is None else "failed", run_result.failure)
    if run_result.failure is not None:
        _fatal(run_result.failure)
    if run_result.stats.failed:
        sys.stderr.write(
            f"{PROG}: {run_result.stats.failed} of {run_result.stats.attempted} messages failed\n"
        )
    return run_result.exit_status


def _open_json(path: str | None) -> IO[str] | None:
    if path is None:
        return None
    if path == "-":
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8")  # closed by _write_json
    except OSError as exc:
        _fatal(f"open {path}: {exc.strerror or exc}")


def _write_json(file: IO[str], value: result.Result) -> None:
    try:
        result.write(value, file)
    except OSError as exc:
        _fatal(f"write {getattr(file, 'name', 'JSON')}: {exc.strerror or exc}")
    finally:
        if file is not sys.stdout:
            file.close()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: Postfix's exit statuses, never a traceback for bad input."""
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    try:
        status = command.main(args, prog_name=PROG, standalone_mode=False)
    except UsageFailure as exc:
        _fatal(f"{exc}; {USAGE}")
    except typer.exceptions.TyperException as exc:
        _fatal(f"{_click_message(exc)}; {USAGE}")
    except typer.Exit as exc:
        status = exc.exit_code
    except BrokenPipeError:
        status = 1
    raise SystemExit(status if isinstance(status, int) else 0)


def _click_message(exc: Exception) -> str:
    format_message = getattr(exc, "format_message", None)
    text = format_message() if callable(format_message) else str(exc)
    return " ".join(str(text).split())
