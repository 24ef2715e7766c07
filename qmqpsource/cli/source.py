"""qmqp-source: parallelized QMQP test generator, a trio remake of Postfix's tool.

    qmqp-source [options] [inet:]host[:port]
    qmqp-source [options] unix:pathname

Thin by design: parse and validate the options, build the message once, hand a
frozen config to the runner, map the result to Postfix's messages and exit codes.
"""

# No `from __future__ import annotations` here: typer reads source()'s 31 annotations
# four times a start (inspect.signature and get_type_hints, twice each). As strings,
# each read evaluated them all again (~6 ms in all); as objects, they are made once
# (~2.5 ms).

import dataclasses
import math
import os
from typing import Annotated

import typer

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource import __version__
from qmqpsource.addresses import Family
from qmqpsource.cli.common import Command, UsageFailure, fatal, make_app, run_command
from qmqpsource.cli.launch import run_source
from qmqpsource.cli.stdio import guard
from qmqpsource.source.config import ConfigError, SourceConfig
from qmqpsource.source.limits import LimitError, check_resources
from qmqpsource.source.message import HostnameError, check_myhostname
from qmqpsource.source.request import MessageFileError, message_file_size
from qmqpsource.source.shard import Shard, ShardError, parse_shard
from qmqpsource.values import MAX_COUNT, MAX_SECONDS

__all__ = ["app", "main", "run_source"]

USAGE = (
    f"usage: {PROG} [-46AcNqv] [-C count] [-f from] [-F file] [-l msglen] [-m msgs] "
    "[-M myhostname] [-r rcpts] [-R delay] [-s sess] [-S subject] [-t to] [-w delay] "
    "[--duration secs] [--rate msgs/s] [--shard I/N] [--json path] ... "
    "[inet:]host[:port] | unix:pathname"
)

# What the config records as the target of an --embedded-sink run.
EMBEDDED_TARGET = "embedded-sink"
# More worker processes than this on one host is a typo; spread over hosts with --shard.
MAX_WORKERS = 256

app = make_app()


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


HELP = """Send QMQP messages in parallel sessions (Postfix's qmqp-source, remade) and
report outcomes, latency percentiles and throughput.

\b
qmqp-source [options] [inet:]host[:port]
qmqp-source [options] [inet:][addr]:port
qmqp-source [options] unix:pathname
qmqp-source [options] --embedded-sink
"""


@app.command(cls=Command, options_metavar="[OPTIONS] [TARGET]", help=HELP,
             no_args_is_help=False)
def source(
    target: Annotated[
        str | None,
        typer.Argument(metavar="TARGET",
                       help="[inet:]host[:port], [inet:][addr]:port or unix:pathname."),
    ] = None,
    ipv4: Annotated[bool, typer.Option("-4", "--ipv4", help="Connect with IPv4 only.")] = False,
    ipv6: Annotated[bool, typer.Option("-6", "--ipv6", help="Connect with IPv6 only.")] = False,
    keep_going: Annotated[
        bool,
        typer.Option("-A", "--keep-going", help="Don't stop at a failed message: count it."),
    ] = False,
    counter: Annotated[
        bool, typer.Option("-c", "--counter", help="Running count of deliveries on stdout.")
    ] = False,
    connect_attempts: Annotated[
        int,
        typer.Option("-C", "--connect-attempts", metavar="N",
                     help="Try each connect N times when refused or reset."),
    ] = 1,
    sender: Annotated[
        str | None,
        typer.Option("-f", "--from", metavar="ADDR", show_default="foo@MYHOSTNAME",
                     help="Sender address; '' is the null sender."),
    ] = None,
    length: Annotated[
        int,
        typer.Option("-l", "--length", metavar="BYTES",
                     help="Message size in BYTES, headers included."),
    ] = 1024,
    messages: Annotated[
        int | None,
        typer.Option("-m", "--messages", metavar="N", show_default="1",
                     help="Messages to send over all sessions; with --duration, at most N."),
    ] = None,
    myhostname: Annotated[
        str | None,
        typer.Option("-M", "--myhostname", metavar="NAME", show_default="this host's name",
                     help="Hostname or [address] for the default addresses and Message-Id."),
    ] = None,
    recipients: Annotated[
        int,
        typer.Option("-r", "--recipients", metavar="N",
                     help="Recipients per message: 0ADDR, 1ADDR, ... (1: ADDR as given)."),
    ] = 1,
    random_delay: Annotated[
        float | None,
        typer.Option("-R", "--random-delay", metavar="SECONDS",
                     help="Each session waits a random 0..SECONDS between messages."),
    ] = None,
    sessions: Annotated[
        int, typer.Option("-s", "--sessions", metavar="N", help="Sessions in parallel.")
    ] = 1,
    recipient: Annotated[
        str | None,
        typer.Option("-t", "--to", metavar="ADDR", show_default="foo@MYHOSTNAME",
                     help="Recipient address."),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option("-v", "--verbose", count=True, show_default=False,
                     help="A '<< REPLY' line per reply; twice: also one per connection."),
    ] = 0,
    fixed_delay: Annotated[
        float | None,
        typer.Option("-w", "--wait", metavar="SECONDS",
                     help="Each session waits SECONDS between messages. Not with -R."),
    ] = None,
    connect_limit: Annotated[
        int,
        typer.Option("--connect-limit", metavar="N",
                     help="Connection attempts in flight at once."),
    ] = 1,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", show_default="300",
                     help="Deadline for each step: connect, send, read the reply."),
    ] = 300.0,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No summary and no progress on stderr.")
    ] = False,
    interval: Annotated[
        float | None,
        typer.Option("--interval", metavar="SECONDS",
                     help="One progress line on stderr every SECONDS."),
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("--json", metavar="PATH",
                     help="Write the result as JSON to PATH ('-': stdout)."),
    ] = None,
    message_file: Annotated[
        str | None,
        typer.Option("-F", "--message-file", metavar="FILE",
                     help="Send FILE as the message (CRLF becomes LF)."),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option("-S", "--subject", metavar="TEXT",
                     help="Add 'Subject: TEXT' to the generated message."),
    ] = None,
    number_recipients: Annotated[
        bool,
        typer.Option("-N", "--number-recipients",
                     help="Number the recipients across the run (1ADDR, 2ADDR, ...)."),
    ] = False,
    unique_message_id: Annotated[
        bool,
        typer.Option("--unique-message-id",
                     help="Each message its own Message-Id, and X-Qmqpsource-Seq: SEQ."),
    ] = False,
    duration: Annotated[
        float | None,
        typer.Option("--duration", metavar="SECONDS",
                     help="Run for SECONDS; -m, if given too, caps the count."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option("--rate", metavar="R",
                     help="Open loop: start R messages per second over all sessions."),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option("--shard", metavar="I/N",
                     help="Do the I-th (from 0) of N equal shares of -m, -s and --rate."),
    ] = None,
    embedded: Annotated[
        bool,
        typer.Option("--embedded-sink",
                     help="No target: start a qmqp-sink on loopback, load it, stop it."),
    ] = False,
    sink_options: Annotated[
        str | None,
        typer.Option("--sink-options", metavar="TEXT",
                     help="Options for the embedded sink, such as: --tempfail 0.1 --seed 1."),
    ] = None,
    workers: Annotated[
        str,
        typer.Option("--workers", metavar="N|auto",
                     help="N processes ('auto': one per CPU), each with its share of -s; "
                          "one merged summary and --json."),
    ] = "1",
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        print(f"{PROG} {__version__}")
        raise typer.Exit(0)
    if embedded and target is not None:
        raise UsageFailure("--embedded-sink brings its own target; give none")
    if sink_options is not None and not embedded:
        raise UsageFailure("--sink-options goes with --embedded-sink")
    sink_args: list[str] = []
    if sink_options is not None:
        import shlex  # here: only --sink-options needs it

        try:
            sink_args = shlex.split(sink_options)
        except ValueError as exc:
            raise UsageFailure(f"--sink-options: {exc}") from None
        from qmqpsource.cli.sink import check_embedded_options

        check_embedded_options(sink_args)  # now, not when the sink fails after the run
    if embedded:
        target = EMBEDDED_TARGET
    if target is None:
        raise UsageFailure("missing target")
    if ipv4 and ipv6:
        raise UsageFailure("-4 and -6 exclude each other")
    if fixed_delay is not None and random_delay is not None:
        raise UsageFailure("-w and -R exclude each other")
    _delay("--timeout", timeout)
    if interval is not None:
        _delay("--interval", interval)
    if duration is not None:
        _delay("--duration", duration)
    if rate is not None and (not math.isfinite(rate) or rate <= 0):
        raise UsageFailure(f"--rate must be a positive number of messages per second, not {rate}")
    if messages is None:
        # With --duration the clock ends the run; -m, if given, only caps it.
        messages = MAX_COUNT if duration is not None else 1
    for name, value in (("-C", connect_attempts), ("-l", length), ("-m", messages),
                        ("-r", recipients), ("-s", sessions), ("--connect-limit", connect_limit)):
        _positive(name, value)
    if myhostname is not None:
        try:
            check_myhostname(myhostname)
        except HostnameError as exc:
            fatal(PROG, str(exc))
    try:
        part = parse_shard(shard) if shard is not None else Shard(0, 1)
    except ShardError as exc:
        raise UsageFailure(str(exc)) from None
    if messages != MAX_COUNT and part.share(messages) == 0:
        # A shard whose share is empty (-m 3 --shard 3/4) has nothing to do.
        raise typer.Exit(0)
    message_size = None
    if message_file is not None:
        try:
            message_size = message_file_size(message_file)  # unreadable: now, not mid-run
        except MessageFileError as exc:
            fatal(PROG, str(exc))
    def make_config(share: Shard) -> SourceConfig:
        """The config of one share of the run (this process's, or a worker's)."""
        assert target is not None and messages is not None
        try:
            return SourceConfig(
                target=target,
                sessions=share.share_at_least_one(sessions),
                messages=messages if messages == MAX_COUNT else share.share(messages),
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
                message_file=message_file,
                subject=subject,
                number_recipients=number_recipients,
                unique_message_id=unique_message_id,
                duration=duration,
                rate=share.rate(rate) if rate is not None else None,
                shard_index=share.index,
                shard_count=share.count,
            )
        except ConfigError as exc:
            raise UsageFailure(str(exc)) from None

    config = make_config(part)
    try:
        check_resources(config, message_size=message_size)  # now, not a crash mid-run
    except LimitError as exc:
        fatal(PROG, str(exc))
    worker_count = _worker_count(workers)
    if worker_count > 1:
        if counter:
            raise UsageFailure("-c shows one process's count; it does not go with --workers")
        if interval is not None:
            raise UsageFailure("--interval does not go with --workers")
        from qmqpsource.cli.workers import run_workers  # here: only --workers needs it

        # -s is the run's concurrency: a worker has at least one session of it.
        worker_count = min(worker_count, config.sessions)
        budget = None
        if rate is None and messages != MAX_COUNT:
            # So many messages as fast as they go: one budget the workers take from,
            # each with its share of the sessions, numbering as this process would.
            from qmqpsource.source.budget import MessageBudget

            worker_count = min(worker_count, config.messages)
            budget = MessageBudget(config.messages, worker_count)
            configs = [
                dataclasses.replace(
                    config, sessions=Shard(w, worker_count).share_at_least_one(config.sessions)
                )
                for w in range(worker_count)
            ]
        else:
            shares = [Shard(part.index + part.count * w, part.count * worker_count)
                      for w in range(worker_count)]
            configs = [make_config(share) for share in shares
                       if messages == MAX_COUNT or share.share(messages) > 0]
        raise typer.Exit(run_workers(
            configs, keep_going=keep_going, quiet=quiet, json_path=json_path,
            embedded_sink_args=sink_args if embedded else None, budget=budget,
        ))
    raise typer.Exit(run_source(
        config, quiet=quiet, interval=interval, json_path=json_path,
        embedded_sink_args=sink_args if embedded else None,
    ))


def _worker_count(text: str) -> int:
    if text == "auto":
        return os.cpu_count() or 1
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_WORKERS:
        raise UsageFailure(f"--workers wants a number from 1 to {MAX_WORKERS} or 'auto', "
                           f"not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: Postfix's exit statuses, never a traceback for bad input."""
    if argv is None:
        guard()  # closed or failing stdio must not change the run (see stdio.py)
    raise SystemExit(run_command(app, PROG, USAGE, argv))
