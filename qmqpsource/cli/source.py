"""qmqp-source: parallelized QMQP test generator, a trio remake of Postfix's tool.

    qmqp-source [options] [inet:]host[:port]
    qmqp-source [options] unix:pathname

Thin by design: parse the options into the whole run's config (which checks every
value), plan this host's share of it (plan.py), check what would fail mid-run, and
hand the configs to one process (launch.py) or to --workers (workers.py).
"""

# No `from __future__ import annotations` here: typer reads source()'s 34 annotations
# four times a start (inspect.signature and get_type_hints, twice each). As strings,
# each read evaluated them all again (~6 ms in all); as objects, they are made once
# (~2.5 ms).

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Annotated

import typer

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource import __version__, values
from qmqpsource.addresses import Family
from qmqpsource.cli.common import (
    Command,
    UsageFailure,
    fatal,
    limit_words,
    make_app,
    option_words,
    parse_checks,
    run_command,
)
from qmqpsource.cli.launch import Display, run_source
from qmqpsource.cli.numbers import number, whole
from qmqpsource.cli.stdio import guard
from qmqpsource.load.embedded import EMBEDDED_TARGET
from qmqpsource.load.plan import share_of
from qmqpsource.load.start import Start
from qmqpsource.results.checks import Check
from qmqpsource.source.config import OPTIONS, ConfigError, SourceConfig
from qmqpsource.source.limits import LimitError, check_resources
from qmqpsource.source.message import HostnameError
from qmqpsource.source.request import MessageFileError, message_file_size
from qmqpsource.source.shard import Shard, ShardError, parse_shard
from qmqpsource.values import MAX_COUNT

__all__ = ["app", "main", "run_source"]

USAGE = (
    f"usage: {PROG} [-46AcNqv] [-C count] [-f from] [-F file] [-l msglen] [-m msgs] "
    "[-M myhostname] [-r rcpts] [-R delay] [-s sess] [-S subject] [-t to] [-w delay] "
    "[--duration secs] [--rate msgs/s] [--shard I/N] [--json path] ... "
    "[inet:]host[:port] | unix:pathname"
)

# More worker processes than this on one host is a typo; spread over hosts with --shard.
MAX_WORKERS = 256

app = make_app()

HELP = """Send QMQP messages in parallel sessions (Postfix's qmqp-source, remade) and
report outcomes, latency percentiles and throughput.

\b
qmqp-source [options] [inet:]host[:port]
qmqp-source [options] [inet:][addr]:port
qmqp-source [options] unix:pathname
qmqp-source [options] --embedded-sink
"""

# The operand and options, as typer reads them: one alias each, so that source()'s
# signature reads on one screen. Their values are checked by SourceConfig.
_Target = Annotated[
    str | None,
    typer.Argument(metavar="TARGET",
                   help="[inet:]host[:port], [inet:][addr]:port or unix:pathname."),
]
_IPv4 = Annotated[bool, typer.Option("-4", "--ipv4", help="Connect with IPv4 only.")]
_IPv6 = Annotated[bool, typer.Option("-6", "--ipv6", help="Connect with IPv6 only.")]
_KeepGoing = Annotated[
    bool,
    typer.Option("-A", "--keep-going", help="Don't stop at a failed message: count it."),
]
_Counter = Annotated[
    bool, typer.Option("-c", "--counter", help="Running count of deliveries on stdout.")
]
_ConnectAttempts = Annotated[
    int,
    typer.Option("-C", "--connect-attempts", parser=whole, metavar="N",
                 help="Try each connect N times when refused or reset."),
]
_Sender = Annotated[
    str | None,
    typer.Option("-f", "--from", metavar="ADDR", show_default="foo@MYHOSTNAME",
                 help="Sender address; '' is the null sender."),
]
_Length = Annotated[
    int,
    typer.Option("-l", "--length", parser=whole, metavar="BYTES",
                 help="Message size in BYTES, headers included."),
]
_Messages = Annotated[
    int | None,
    typer.Option("-m", "--messages", parser=whole, metavar="N", show_default="1",
                 help="Messages to send over all sessions; with --duration, at most N."),
]
_MyHostname = Annotated[
    str | None,
    typer.Option("-M", "--myhostname", metavar="NAME", show_default="this host's name",
                 help="Hostname or [address] for the default addresses and Message-Id."),
]
_Recipients = Annotated[
    int,
    typer.Option("-r", "--recipients", parser=whole, metavar="N",
                 help="Recipients per message: 0ADDR, 1ADDR, ... (1: ADDR as given)."),
]
_RandomDelay = Annotated[
    float | None,
    typer.Option("-R", "--random-delay", parser=number, metavar="SECONDS",
                 help="Each session waits a random 0..SECONDS between messages."),
]
_Sessions = Annotated[
    int, typer.Option("-s", "--sessions", parser=whole, metavar="N", help="Sessions in parallel.")
]
_Recipient = Annotated[
    str | None,
    typer.Option("-t", "--to", metavar="ADDR", show_default="foo@MYHOSTNAME",
                 help="Recipient address."),
]
_Verbose = Annotated[
    int,
    typer.Option("-v", "--verbose", count=True, show_default=False,
                 help="A '<< REPLY' line per reply; twice: also one per connection."),
]
_FixedDelay = Annotated[
    float | None,
    typer.Option("-w", "--wait", parser=number, metavar="SECONDS",
                 help="Each session waits SECONDS between messages. Not with -R."),
]
_ConnectLimit = Annotated[
    int,
    typer.Option("--connect-limit", parser=whole, metavar="N",
                 help="Connection attempts in flight at once."),
]
_Timeout = Annotated[
    float,
    typer.Option("--timeout", parser=number, metavar="SECONDS", show_default="300",
                 help="Deadline for each step: connect, send, read the reply."),
]
_Quiet = Annotated[
    bool, typer.Option("-q", "--quiet", help="No summary and no progress on stderr.")
]
_Interval = Annotated[
    float | None,
    typer.Option("--interval", parser=number, metavar="SECONDS",
                 help="The result's timeline step (default 1), and one progress line "
                      "on stderr every SECONDS (not with -q or --workers)."),
]
_JsonPath = Annotated[
    str | None,
    typer.Option("--json", metavar="PATH",
                 help="Write the result as JSON to PATH ('-': stdout)."),
]
_MessageFile = Annotated[
    str | None,
    typer.Option("-F", "--message-file", metavar="FILE",
                 help="Send FILE as the message (CRLF becomes LF)."),
]
_Subject = Annotated[
    str | None,
    typer.Option("-S", "--subject", metavar="TEXT",
                 help="Add 'Subject: TEXT' to the generated message."),
]
_NumberRecipients = Annotated[
    bool,
    typer.Option("-N", "--number-recipients",
                 help="Number the recipients across the run (1ADDR, 2ADDR, ...)."),
]
_UniqueMessageId = Annotated[
    bool,
    typer.Option("--unique-message-id",
                 help="Each message its own Message-Id, and X-Qmqpsource-Seq: SEQ."),
]
_Duration = Annotated[
    float | None,
    typer.Option("--duration", parser=number, metavar="SECONDS",
                 help="Run for SECONDS; -m, if given too, caps the count."),
]
_Rate = Annotated[
    float | None,
    typer.Option("--rate", parser=number, metavar="R",
                 help="Open loop: start R messages per second over all sessions. "
                      "Not with -w or -R."),
]
_Shard = Annotated[
    str | None,
    typer.Option("--shard", metavar="I/N",
                 help="Do the I-th (from 0) of N equal shares of -m, -s and --rate."),
]
_Embedded = Annotated[
    bool,
    typer.Option("--embedded-sink",
                 help="No target: start a qmqp-sink on loopback, load it, stop it."),
]
_SinkOptions = Annotated[
    str | None,
    typer.Option("--sink-options", metavar="TEXT",
                 help="Options for the embedded sink, such as: --tempfail 0.1 --seed 1."),
]
_Workers = Annotated[
    str,
    typer.Option("--workers", metavar="N|auto",
                 help="N processes ('auto': one per CPU), each with its share of -s; "
                      "one merged summary and --json."),
]
_Check = Annotated[
    list[str] | None,
    typer.Option("--check", metavar="EXPR",
                 help="A threshold the run must meet, such as p99<250ms, failed==0, "
                      "rate>=500; repeatable. One that fails: exit status 3."),
]
_FindRate = Annotated[
    bool,
    typer.Option("--find-rate",
                 help="Find the highest rate that meets every --check: steps from --rate "
                      "(10 msg/s without it), doubling until one fails, then halving the "
                      "gap to 5%; at most 20 steps."),
]
_StepDuration = Annotated[
    float | None,
    typer.Option("--step-duration", parser=number, metavar="SECONDS", show_default="10",
                 help="--find-rate: each step's judged run, after a settling run of a "
                      "third of it (at most 1 s)."),
]
_StartAt = Annotated[
    str | None,
    typer.Option("--start-at", metavar="TIME",
                 help="Start then: an RFC 3339 time with its offset (2026-12-06T03:30:00Z) "
                      "or epoch seconds; shards given one start together."),
]
_RunId = Annotated[
    str | None,
    typer.Option("--run-id", metavar="ID",
                 help="The run this is, in the JSON; the shards of one run share it "
                      "(default: the start time and the shard count)."),
]
_Version = Annotated[bool, typer.Option("--version", help="Print the version.")]


@app.command(cls=Command, options_metavar="[OPTIONS] [TARGET]", help=HELP,
             no_args_is_help=False)
def source(  # the options in the order --help lists them
    target: _Target = None, ipv4: _IPv4 = False, ipv6: _IPv6 = False,
    keep_going: _KeepGoing = False, counter: _Counter = False,
    connect_attempts: _ConnectAttempts = 1, sender: _Sender = None, length: _Length = 1024,
    messages: _Messages = None, myhostname: _MyHostname = None, recipients: _Recipients = 1,
    random_delay: _RandomDelay = None, sessions: _Sessions = 1, recipient: _Recipient = None,
    verbose: _Verbose = 0, fixed_delay: _FixedDelay = None, connect_limit: _ConnectLimit = 1,
    timeout: _Timeout = 300.0, quiet: _Quiet = False, interval: _Interval = None,
    json_path: _JsonPath = None, message_file: _MessageFile = None, subject: _Subject = None,
    number_recipients: _NumberRecipients = False, unique_message_id: _UniqueMessageId = False,
    duration: _Duration = None, rate: _Rate = None, shard: _Shard = None,
    embedded: _Embedded = False, sink_options: _SinkOptions = None, workers: _Workers = "1",
    check: _Check = None, find_rate: _FindRate = False, step_duration: _StepDuration = None,
    start_at: _StartAt = None, run_id: _RunId = None, version: _Version = False,
) -> None:
    if version:
        print(f"{PROG} {__version__}")
        raise typer.Exit(0)
    sink_args = _embedded_sink_args(embedded, target, sink_options)
    checks = parse_checks(check or [])
    if embedded:
        target = EMBEDDED_TARGET
    if target is None:
        raise UsageFailure("missing target")
    if ipv4 and ipv6:
        raise UsageFailure("-4 and -6 exclude each other")
    _refuse_both_waits(fixed_delay, random_delay, find_rate)
    messages, duration, rate = _load_shape(
        find_rate, checks, (messages, duration, rate, step_duration), shard, interval, counter)
    _check_interval(interval)
    with _usage_failure():
        whole = SourceConfig(
            target=target, sessions=sessions, messages=messages, length=length,
            recipients=recipients, sender=sender, recipient=recipient, myhostname=myhostname,
            family=Family.INET if ipv4 else Family.INET6 if ipv6 else Family.ANY,
            connect_attempts=connect_attempts, connect_limit=connect_limit,
            fixed_delay=_no_wait_if_none(fixed_delay), random_delay=_no_wait_if_none(random_delay),
            timeout=timeout, keep_going=keep_going,
            message_file=message_file, subject=subject, number_recipients=number_recipients,
            unique_message_id=unique_message_id, duration=duration, rate=rate,
        )
        _refuse_zero_waits(fixed_delay, random_delay)
    _refuse_overwrite(json_path, message_file)
    host_shard = _parse_shard(shard)
    with _usage_failure():  # a share's own bounds: --shard 0/1e20, --rate 1e-7 over shards
        share = share_of(whole, host_shard)
    if share is None:  # a shard whose share is empty (-m 3 --shard 3/4): nothing to send
        _empty_share(dataclasses.replace(whole, shard_index=host_shard.index,
                                         shard_count=host_shard.count),
                     json_path, _start(start_at, run_id))
        raise typer.Exit(0)
    _check_resources(share)  # now, not a crash mid-run
    worker_count = _worker_count(workers, counter=counter)
    display = Display(quiet=quiet, verbose=verbose, counter=counter, interval=interval)
    start = _start(start_at, run_id)
    # The whole run, with this host's shard: the library plans the share (and workers).
    ours = dataclasses.replace(whole, shard_index=host_shard.index, shard_count=host_shard.count)
    raise typer.Exit(_run(ours, worker_count, display, interval, json_path=json_path,
                          embedded_sink_args=sink_args, checks=checks, find_rate=find_rate,
                          start=start))


def _check_interval(interval: float | None) -> None:
    if interval is not None:
        from qmqpsource.results.timeline import check_interval  # only --interval needs it

        with _usage_failure():
            check_interval(interval, "--interval")


@contextlib.contextmanager
def _usage_failure() -> Iterator[None]:
    """A value that the checks refuse is a usage failure: its line in the options' words,
    then the usage. A bad -M is Postfix's fatal line, without the usage."""
    try:
        yield
    except HostnameError as exc:
        fatal(PROG, str(exc))
    except ConfigError as exc:
        raise UsageFailure(option_words(exc, OPTIONS)) from None


def _embedded_sink_args(
    embedded: bool, target: str | None, sink_options: str | None
) -> list[str] | None:
    """The embedded sink's arguments (--sink-options, split and checked); None: no sink."""
    if embedded and target is not None:
        raise UsageFailure("--embedded-sink brings its own target; give none")
    if sink_options is not None and not embedded:
        raise UsageFailure("--sink-options goes with --embedded-sink")
    if sink_options is None:
        return [] if embedded else None
    import shlex  # here: only --sink-options needs it

    try:
        sink_args = shlex.split(sink_options)
    except ValueError as exc:
        raise UsageFailure(f"--sink-options: {exc}") from None
    from qmqpsource.cli.sink import check_embedded_options

    check_embedded_options(sink_args)  # now, not when the sink fails after the run
    return sink_args


def _load_shape(
    find_rate: bool, checks: list[Check],
    given: tuple[int | None, float | None, float | None, float | None],
    shard: str | None, interval: float | None, counter: bool,
) -> tuple[int, float | None, float | None]:
    """-m, --duration and --rate as the config takes them, from those given and
    --step-duration. --find-rate: no count, a step's length, the start rate."""
    messages, duration, rate, step_duration = given
    if not find_rate:
        if step_duration is not None:
            raise UsageFailure("--step-duration goes with --find-rate")
        # With --duration the clock ends the run; -m, if given, only caps it.
        if messages is None:
            messages = MAX_COUNT if duration is not None else 1
        return messages, duration, rate
    from qmqpsource.cli.findrate import refuse_options
    from qmqpsource.source.ratesearch import START_RATE

    refuse_options(checks, messages=messages, duration=duration, shard=shard,
                   interval=interval, counter=counter)
    with _usage_failure():
        seconds = values.seconds("--step-duration", 10.0 if step_duration is None
                                 else step_duration)
    return MAX_COUNT, seconds, START_RATE if rate is None else rate


def _no_wait_if_none(wait: float | None) -> float:
    """-w or -R as the config takes it: 0 is no wait between messages."""
    return 0.0 if wait is None else wait


def _refuse_both_waits(fixed_delay: float | None, random_delay: float | None,
                       find_rate: bool) -> None:
    """-w and -R given together, whatever their values (the config sees only waits);
    either with --find-rate, whose steps run at set rates (said so, not as --rate)."""
    if fixed_delay is not None and random_delay is not None:
        raise UsageFailure(f"{OPTIONS['fixed_delay']} and {OPTIONS['random_delay']} "
                           "exclude each other")
    if find_rate and (fixed_delay is not None or random_delay is not None):
        raise UsageFailure("--find-rate runs each step at a set rate, without pauses: "
                           "not with -w or -R")


def _refuse_zero_waits(fixed_delay: float | None, random_delay: float | None) -> None:
    """A -w or -R of 0 is refused, as Postfix does; the config would take it as no wait."""
    for name, wait in (("fixed_delay", fixed_delay), ("random_delay", random_delay)):
        if wait == 0:
            values.seconds(OPTIONS[name], wait)  # refuses it, in the shared words


def _refuse_overwrite(json_path: str | None, message_file: str | None) -> None:
    """--json onto -F's file would replace the message with the result: refused now."""
    if json_path is None or message_file is None:
        return
    from qmqpsource.cli.overwrite import overwritten  # here: only -F with --json needs it

    line = overwritten([("--json", json_path)], [("-F", message_file)])
    if line is not None:
        fatal(PROG, line)


def _parse_shard(text: str | None) -> Shard:
    """--shard I/N; the whole run (0/1) without it."""
    try:
        return parse_shard(text) if text is not None else Shard(0, 1)
    except ShardError as exc:
        raise UsageFailure(str(exc)) from None


def _check_resources(config: SourceConfig) -> None:
    """Refuse in one line what would fail mid-run: an unreadable -F, too little memory
    for the request, too few file descriptors for the sessions."""
    try:
        size = None if config.message_file is None else message_file_size(config.message_file)
        check_resources(config, message_size=size)
    except MessageFileError as exc:
        fatal(PROG, str(exc))
    except LimitError as exc:
        fatal(PROG, limit_words(str(exc), OPTIONS))


def _worker_count(text: str, *, counter: bool) -> int:
    """--workers N or 'auto' (one per CPU), and the options that one process only has."""
    if text == "auto":
        count = os.cpu_count() or 1
    elif not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_WORKERS:
        raise UsageFailure(f"--workers wants a number from 1 to {MAX_WORKERS} or 'auto', "
                           f"not {text!r}")
    else:
        count = int(text)
    if count > 1 and counter:
        raise UsageFailure("-c shows one process's count; it does not go with --workers")
    return count


def _run(
    config: SourceConfig,
    workers: int,
    display: Display,
    interval: float | None,
    *,
    json_path: str | None,
    embedded_sink_args: list[str] | None,
    checks: list[Check],
    find_rate: bool,
    start: Start,
) -> int:
    """Run this host's share of ``config``, in this process or in --workers; the exit
    status. With ``find_rate``, the rate search instead."""
    if find_rate:
        from qmqpsource.cli.findrate import run_find_rate  # here: only --find-rate needs it

        return run_find_rate(config, workers=workers, checks=checks, quiet=display.quiet,
                             verbose=display.verbose, json_path=json_path,
                             embedded_sink_args=embedded_sink_args, start=start)
    return run_source(config, workers=workers, quiet=display.quiet, verbose=display.verbose,
                      counter=display.counter, interval=interval, json_path=json_path,
                      embedded_sink_args=embedded_sink_args, checks=checks, start=start)


def _empty_share(config: SourceConfig, json_path: str | None, start: Start) -> None:
    """An empty share's result, for --json: the merge of its run then finds every shard
    (a missing one would fail the run's report)."""
    from qmqpsource.cli import finish  # here: only an empty share needs it before the run

    json_file = finish.open_json(json_path)
    if json_file is not None:
        finish.write_json(json_file, finish.empty_share(config, start))


def _start(start_at: str | None, run_id: str | None) -> Start:
    """--start-at and --run-id, checked now: a start already past, or a bad id, is a
    usage error before anything runs."""
    from qmqpsource.load.start import parse_start_at, start_of

    try:
        return start_of(parse_start_at(start_at) if start_at is not None else None, run_id)
    except ConfigError as exc:
        field = exc.field or ""
        flag = {"start_at": "--start-at", "run_id": "--run-id"}.get(field, field)
        raise UsageFailure(str(exc).replace(field, flag, 1)) from None


def main(argv: list[str] | None = None) -> None:
    """Console entry point: Postfix's exit statuses, never a traceback for bad input."""
    if argv is None:
        guard()  # closed or failing stdio must not change the run (see stdio.py)
    raise SystemExit(run_command(app, PROG, USAGE, argv))
