"""How a qmqp-source run finishes, whatever ran it (one process, workers, a rate search):
the summary, the embedded sink's line, the JSON result, the stop signal's word and exit
status, the failure lines.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qmqpsource import SOURCE_PROG as PROG
from qmqpsource.cli.common import fatal, say_failed_checks
from qmqpsource.wording import counted

if TYPE_CHECKING:
    from qmqpsource.cli.outfile import OutputFile
    from qmqpsource.load.start import Start
    from qmqpsource.results.checks import Check, Verdict
    from qmqpsource.results.identity import Shards
    from qmqpsource.results.result import Result
    from qmqpsource.source.config import SourceConfig

__all__ = ["STOP_SIGNALS", "exit_status", "finish", "never_ran", "open_json", "report",
           "sink_line", "write_json"]

# The signals that stop a run: its exit status and the word of its last line. SIGHUP
# too: a closed terminal or ssh session must not end the run without its result.
STOP_SIGNALS: dict[signal.Signals, tuple[int, str]] = {
    signal.SIGINT: (130, "interrupted"),
    signal.SIGTERM: (143, "terminated"),
    signal.SIGHUP: (129, "hung up"),
}


def open_json(path: str | None) -> OutputFile | None:
    """--json's file, checked now (and left as it is until the end: see outfile.py)."""
    if path is None:
        return None
    if not path:  # else refused only at the end, by the rename, the result lost
        fatal(PROG, "--json wants a path, not ''")
    from qmqpsource.cli.outfile import OutputError, OutputFile  # here: only --json needs it

    try:
        return OutputFile.at(path)
    except OutputError as exc:
        fatal(PROG, str(exc))


def report(
    value: Result,
    *,
    quiet: bool,
    json_file: OutputFile | None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """The summary and the embedded sink's line on stderr, then the JSON result (with
    ``extra``: more keys, such as find_rate).

    No summary when ``quiet`` (-c's counter is on stdout and -v's lines come before it,
    as in Postfix), nor for a failed run: then Postfix's fatal line says it.
    """
    if not quiet and value.status != "failed":
        from qmqpsource.results.outcome import Outcome
        from qmqpsource.results.summary import format_summary  # here: -q runs need none

        sys.stderr.write(format_summary(value))
        if value.sink:
            sys.stderr.write(sink_line(value.sink, value.outcomes[Outcome.ACCEPTED]))
        sys.stderr.flush()
    if json_file is not None:
        write_json(json_file, value, extra)


def finish(
    value: Result,
    signals: Sequence[int],
    *,
    quiet: bool,
    json_file: OutputFile | None,
    checks: Sequence[Check] = (),
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Report a run's result (see report), say how it ended, and return the exit status
    (``checks``: those the result was judged by)."""
    from qmqpsource.results.checks import unjudged_failures  # imported already by the run
    from qmqpsource.results.outcome import Outcome

    report(value, quiet=quiet, json_file=json_file, extra=extra)
    signum = signals[0] if signals else None
    if signum is not None and value.failure:
        # Stopped by a signal, after something failed (a worker lost): both are news.
        sys.stderr.write(f"{PROG}: warning: {value.failure}\n")
    failure = value.failure if value.status == "failed" else None
    failed = value.attempted - value.outcomes[Outcome.ACCEPTED]
    return exit_status(signum, failure=failure, failed=failed, attempted=value.attempted,
                       checks=value.checks, unjudged=unjudged_failures(checks, value.outcomes))


def exit_status(
    signum: int | None = None,
    *,
    failure: str | None = None,
    failed: int = 0,
    attempted: int = 0,
    checks: Sequence[Verdict] = (),
    unjudged: int | None = None,
) -> int:
    """The run's last line and its exit status, once its result is out.

    Stopped by ``signum``: the signal's word, and 130, 143 or 129. A ``failure`` that
    ended the run: Postfix's fatal line, exit 1. A check (--check) that failed: exit 3.
    Otherwise how many messages ``failed`` (with -A), and 1 if any did that no check
    judged (``unjudged``, from checks.unjudged_failures; None: all of them).
    """
    if signum is not None:
        status, word = STOP_SIGNALS[signal.Signals(signum)]
        sys.stderr.write(f"{PROG}: {word}\n")
        return status
    if failure is not None:
        fatal(PROG, failure)
    if failed:
        sys.stderr.write(f"{PROG}: {failed} of {counted(attempted, 'message')} failed\n")
    if say_failed_checks(PROG, checks):
        return 3
    return 1 if (failed if unjudged is None else unjudged) else 0


def sink_line(counts: Mapping[str, Any], accepted: int) -> str:
    """The embedded sink's counts, and whether its accepted replies agree with ours."""
    replies = counts.get("replies", {})
    seen = replies.get("K", 0)
    verdict = "agrees" if seen == accepted else f"DISAGREES: source counted {accepted} accepted"
    return (
        f"sink: {counted(counts.get('connections', 0), 'connection')}, "
        f"{counted(counts.get('messages', 0), 'message')}, "
        f"{counted(counts.get('recipients', 0), 'recipient')}; replies K {seen}, "
        f"Z {replies.get('Z', 0)}, D {replies.get('D', 0)}; malformed "
        f"{counts.get('malformed', 0)} ({verdict})\n"
    )


def never_ran(config: SourceConfig, failure: str, run_id: str, shards: Shards) -> Result:
    """The result of a run that failed before its first message (its target could not be
    resolved, say): no message, the status "failed", and why; which run and shard it was."""
    from qmqpsource import __version__
    from qmqpsource.results import result
    from qmqpsource.results.stats import RunStats

    stats = RunStats(config.recipients, 0)
    stats.begin()
    stats.finish()
    value = result.from_stats(stats, config.as_dict(), tool_name=PROG,
                              tool_version=__version__, status="failed", failure=failure)
    return dataclasses.replace(value, run_id=run_id, shards=shards)


def empty_share(config: SourceConfig, start: Start) -> Result:
    """The result of a shard whose share of -m is empty: no message, completed, at the
    run's start, so that the merge of the run finds every shard."""
    from qmqpsource.results.identity import Shards  # here: at run time

    value = never_ran(config, "", "", Shards.one(config.shard_index, config.shard_count))
    started = start.at or value.started_at
    return dataclasses.replace(value, status="completed", failure=None, started_at=started,
                               run_id=start.run_id_of(started, config.shard_count))


def write_json(
    file: OutputFile, value: Result, extra: Mapping[str, Any] | None = None
) -> None:
    # Imported already: the caller made ``value`` and ``file`` with them.
    from qmqpsource.cli.outfile import OutputError
    from qmqpsource.results import result

    try:
        file.write(result.dumps(value, extra))
    except (OutputError, result.ResultError) as exc:  # ResultError: NaN or Infinity
        fatal(PROG, str(exc))
