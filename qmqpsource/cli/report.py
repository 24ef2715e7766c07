"""qmqp-report: merge qmqp-source results and summarize them, or compare them on a page.

    qmqp-report [-q] [--json PATH] [--html PATH] [--check EXPR]... [--merge-anyway] FILE...

Reads one or more JSON results (schema qmqpsource.result/2 or /1; FILE '-' is stdin),
merges them exactly (counts add, histograms merge, elapsed spans every run, timelines
line up on wall-clock time), prints the human summary on stdout, and with --json writes
the merged result. This is how the parts of one run (the hosts of --shard I/N, the
processes of --workers) come together: files that are not (another target or other
options than their shares, a gap in time between them) are refused in one line, unless
--merge-anyway; the same run given twice is refused, whatever its files' names. A
--find-rate result read alone keeps its search: the step table follows the summary,
and ``find_rate`` stays in --json; the searches of several files are not merged (a
note says so).

--html PATH writes one self-contained page of charts. Of several files it compares
them, unmerged (before and after a change, say): each file is a run of its own on the
page, overlaid, with a verdict banner at the top; the summary on stdout is each run's,
--check judges each run, and --json (a merge) is refused. Each --find-rate FILE's search
is charted and tabled on the page as its own, its answer first in the banner.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any, TextIO

import typer

from qmqpsource import REPORT_PROG as PROG
from qmqpsource import __version__
from qmqpsource.cli.common import (
    Command,
    UsageFailure,
    fatal,
    make_app,
    parse_checks,
    run_command,
    say_failed_checks,
)
from qmqpsource.cli.outfile import OutputError, OutputFile
from qmqpsource.cli.overwrite import one_file_twice, overwritten
from qmqpsource.cli.stdio import closed_at_start, failed, guard
from qmqpsource.infile import InputError, read_fd_limited, read_limited
from qmqpsource.results import result
from qmqpsource.results.checks import Check, CheckError, judge, unjudged_failures
from qmqpsource.results.findrate import find_rate_in, table
from qmqpsource.results.summary import format_summary
from qmqpsource.wording import counted

__all__ = ["PROG", "app", "main", "report"]


app = make_app()


class Fatal(Exception):
    """One line for stderr after 'qmqp-report: fatal: '; exit status 1."""


def _read(path: str) -> tuple[result.Result, dict[str, Any] | None]:
    """One result, and its --find-rate search (find_rate) if it has one."""
    try:
        if path != "-":
            data = read_limited(path, result.SIZE_LIMIT)
        elif closed_at_start(0):
            raise Fatal("-: stdin is closed")
        else:
            data = read_fd_limited(0, result.SIZE_LIMIT)
        return result.decode(data), find_rate_in(data)
    except (ValueError, InputError) as exc:  # ResultError is a ValueError
        raise Fatal(f"{path}: {exc}") from None


def _read_all(paths: list[str], twice: str) -> list[tuple[result.Result, dict[str, Any] | None]]:
    """Every result named, each file once: the same one twice would count its runs twice
    (or, compared, show a run beside itself: ``twice`` says which)."""
    seen: dict[tuple[int, int], str] = {}
    results = []
    for path in paths:
        try:
            info = os.fstat(0) if path == "-" else os.stat(path)
        except OSError:
            pass  # _read says why
        else:
            key = (info.st_dev, info.st_ino)
            if key in seen:
                raise Fatal(f"{path}: the same file as {seen[key]}: {twice}")
            seen[key] = path
        results.append(_read(path))
    return results


def _labels(paths: Sequence[str]) -> list[str]:
    """Each run's name on the page: its file name, or the path as given where two share one."""
    names = ["stdin" if path == "-" else os.path.basename(path) or path for path in paths]
    return names if len(set(names)) == len(names) else list(paths)


Read = list[tuple[result.Result, dict[str, Any] | None]]  # each file's result and search


def _write_html(html_file: OutputFile, paths: Sequence[str], read: Read) -> None:
    """The page; each file's own search (find_rate) goes with its run: none is merged."""
    from qmqpsource.report.page import render
    from qmqpsource.report.view import view_of

    views = [view_of({**r.to_dict(), "find_rate": search} if search else r.to_dict(), label,
                     unjudged=unjudged_failures(r.checks, r.outcomes))
             for (r, search), label in zip(read, _labels(paths), strict=True)]
    try:
        html_file.write(render(views, generator=f"{PROG} {__version__}"))
    except OutputError as exc:
        raise Fatal(str(exc)) from None


def _output(option: str, path: str | None) -> OutputFile | None:
    if path == "":
        raise Fatal(f"{option} wants a path, not ''")
    try:
        return OutputFile.at(path) if path is not None else None
    except OutputError as exc:
        raise Fatal(str(exc)) from None


def _refuse_overwrite(paths: Sequence[str], json_path: str | None,
                      html_path: str | None) -> None:
    """--json or --html onto one of the FILEs read would replace a result: refused now."""
    outputs = [(option, path) for option, path in (("--json", json_path), ("--html", html_path))
               if path is not None]
    line = overwritten(outputs, [("the input", path) for path in paths]) or one_file_twice(
        outputs)
    if line is not None:
        raise Fatal(line)


def _search_of(paths: Sequence[str], searches: Sequence[dict[str, Any] | None]
               ) -> dict[str, Any] | None:
    """A --find-rate result's search, kept when it is read alone. Several searches are
    not merged (each chose its own rates from its own verdicts): one line says so."""
    found = [path for path, search in zip(paths, searches, strict=True) if search is not None]
    if len(searches) == 1:
        return searches[0]
    if found:
        sys.stderr.write(f"{PROG}: note: find_rate of {', '.join(found)} left out: the step "
                         "tables of several searches do not merge; the rest of each result "
                         "(its step at the answer) is merged\n")
    return None


def _judged(checks: Sequence[Check], value: result.Result) -> result.Result:
    """``value`` with the checks' verdicts; a check on a latency the result has none of
    (reply, in some of schema /1) is one line."""
    if not checks:
        return value
    try:
        return dataclasses.replace(value, checks=tuple(judge(checks, value)))
    except CheckError as exc:
        raise Fatal(str(exc)) from None


def _merged(paths: Sequence[str], read: Read, merge_anyway: bool) -> result.Result:
    """The files' results as one, if they are the parts of one run (or ``merge_anyway``)."""
    from qmqpsource.results.parts import missing_shards, not_one_run, same_run_twice

    named = [(path, value) for path, (value, _) in zip(paths, read, strict=True)]
    problem = same_run_twice(named)
    if problem is not None:
        raise Fatal(problem)
    problem = None if merge_anyway else not_one_run(named)
    if problem is not None:
        raise Fatal(f"{problem}; --merge-anyway merges them all the same")
    try:
        merged = result.merge([value for _, value in named], tool_name=PROG,
                              tool_version=__version__)
    except result.ResultError as exc:  # counts past what a result holds
        raise Fatal(str(exc)) from None
    missing = missing_shards(merged)
    if missing is not None:
        sys.stderr.write(f"{PROG}: warning: {missing}\n")
    return merged


# What --html of several files says of one run given twice (a file, or its copy).
_BESIDE_ITSELF = "a comparison would set a run beside itself"


def _compare(paths: Sequence[str], read: Read, checks: Sequence[Check], out: TextIO | None
             ) -> tuple[Read, int]:
    """--html of several files: each run judged and summarized on its own, unmerged; the
    runs judged, and the exit status (3: a check of any run failed)."""
    from qmqpsource.results.parts import same_content  # here: only a comparison needs it

    problem = same_content(list(zip(paths, (value for value, _ in read), strict=True)),
                           _BESIDE_ITSELF)
    if problem is not None:
        raise Fatal(problem)
    judged = [(_judged(checks, value), search) for value, search in read]
    failed = False
    for label, (value, search) in zip(_labels(paths), judged, strict=True):
        if out is not None:
            out.write(f"{label}:\n{format_summary(value)}")
            out.write(table(PROG, search) if search is not None else "")
        failed |= _status(f"{PROG}: {label}", value, checks) != 0
    return judged, 3 if failed else 0


def _status(prog: str, value: result.Result, checks: Sequence[Check]) -> int:
    """A judged run's exit status: 3 when a check failed; 1, as qmqp-source's, when
    ``checks`` were given and messages failed that none of them judged; else 0."""
    if say_failed_checks(prog, value.checks):
        return 3
    unjudged = unjudged_failures(checks, value.outcomes) if checks else 0
    if unjudged:
        sys.stderr.write(f"{prog}: {unjudged} of {counted(value.attempted, 'message')} "
                         "failed, and no check judged them\n")
        return 1
    return 0


def report(
    paths: list[str], *, json_path: str | None = None, quiet: bool = False,
    checks: Sequence[Check] = (), html_path: str | None = None, merge_anyway: bool = False,
) -> int:
    """Read, merge (or, --html of several files, compare), judge, summarize, write; the
    exit status (3: a check failed). Raises Fatal with the line to print."""
    if json_path == "-" and html_path == "-":
        raise Fatal("--json - and --html - cannot both go to stdout")
    _refuse_overwrite(paths, json_path, html_path)
    compare = html_path is not None and len(paths) > 1
    if compare and json_path is not None:
        raise Fatal("--html of several files compares them, --json merges them: not both "
                    "(merge with --json first, then give the merged file to --html)")
    json_file = _output("--json", json_path)
    html_file = _output("--html", html_path)
    read = _read_all(paths, _BESIDE_ITSELF if compare else "its runs would count twice")
    # stdout is the JSON's (or the page's) when --json (--html) is '-'.
    out = None if quiet else sys.stderr if "-" in (json_path, html_path) else sys.stdout
    if compare:
        read, status = _compare(paths, read, checks, out)
    else:
        merged = read[0][0] if len(read) == 1 else _merged(paths, read, merge_anyway)
        search = _search_of(paths, [found for _, found in read])
        merged = _judged(checks, merged)  # a sharded run over many hosts is judged whole
        if out is not None:
            out.write(format_summary(merged) + (table(PROG, search) if search else ""))
        if json_file is not None:
            try:
                json_file.write(result.dumps(merged, {"find_rate": search} if search else None))
            except (OutputError, result.ResultError) as exc:
                raise Fatal(str(exc)) from None
        read = [(merged, search)]  # the page's, when there is one: of one file
        status = _status(PROG, merged, checks)
    if out is not None:
        out.flush()
        _summary_written(out)
    if html_file is not None:
        _write_html(html_file, paths, read)
    return status


def _summary_written(out: TextIO) -> None:
    """The summary on stdout is what qmqp-report is run for: one that could not be
    written (a full disk, a reader gone) is fatal, unlike qmqp-source's lines. A stdout
    closed on purpose (``>&-``) asked for none; on stderr (beside ``--json -``), the
    summary is a note, whose loss changes nothing, as qmqp-source's."""
    why = failed(out) if out is sys.stdout else None
    if why is not None:
        raise Fatal(f"stdout: {why}: the summary was not written")


@app.command(cls=Command, options_metavar="[OPTIONS] FILE...", help=__doc__,
             no_args_is_help=False)
def command(
    files: Annotated[
        list[str] | None,
        typer.Argument(metavar="FILE...", help="qmqp-source results ('-': stdin).",
                       show_default=False),
    ] = None,
    json_path: Annotated[
        str | None,
        typer.Option("--json", metavar="PATH",
                     help="Write the merged result to PATH ('-': stdout)."),
    ] = None,
    html_path: Annotated[
        str | None,
        typer.Option("--html", metavar="PATH",
                     help="Write a self-contained HTML page of charts to PATH, each FILE "
                          "a run of its own, overlaid, unmerged ('-': stdout)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No summary.")] = False,
    check: Annotated[
        list[str] | None,
        typer.Option("--check", metavar="EXPR",
                     help="A threshold the merged result (with --html of several files: "
                          "each run) must meet, as qmqp-source's --check; repeatable. One "
                          "that fails: exit status 3."),
    ] = None,
    merge_anyway: Annotated[
        bool,
        typer.Option("--merge-anyway",
                     help="Merge the files even when they are not the parts of one run "
                          "(other targets or options, or apart in time)."),
    ] = False,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        print(f"{PROG} {__version__}")
        raise typer.Exit(0)
    if not files:
        raise UsageFailure("missing FILE")
    checks = parse_checks(check or [])
    raise typer.Exit(report(files, json_path=json_path, quiet=quiet, checks=checks,
                            html_path=html_path, merge_anyway=merge_anyway))


USAGE = (f"usage: {PROG} [-q] [--json PATH] [--html PATH] [--check EXPR]... "
         "[--merge-anyway] FILE...")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: exit 0, or one fatal line and exit 1 (130 for Ctrl-C); never a
    traceback."""
    if argv is None:
        guard()  # closed or failing stdio must not change the run (see stdio.py)
    try:
        status = run_command(app, PROG, USAGE, argv)
    except Fatal as exc:
        fatal(PROG, str(exc))  # one line: fatal() escapes what a path may hold
    raise SystemExit(status)


if __name__ == "__main__":
    main()
