"""Running qmqp-source's runner in the test's own trio loop, output captured."""

from __future__ import annotations

import io
from typing import Any

import trio

from qmqpsource import SOURCE_PROG
from qmqpsource.cli.logs import printing
from qmqpsource.results.stats import RunStats
from qmqpsource.source.config import SourceConfig
from qmqpsource.source.connector import resolve
from qmqpsource.source.request import RequestFactory
from qmqpsource.source.runner import Runner, RunResult

__all__ = ["make_runner", "run_in_process"]

# No test load takes near this long; a hang fails the test instead of the suite. (Under
# trio's MockClock this is virtual time, which a hang reaches at once.)
RUN_LIMIT = 30.0


async def make_runner(target: str, **options: Any) -> tuple[Runner, io.StringIO, io.StringIO]:
    """A runner for SourceConfig ``options`` (and the command's display options ``verbose``
    and ``counter``), with what the command would print captured: stdout and stderr.
    Lines are printed only while ``printing_to`` (below) is in force."""
    config = SourceConfig(target=target, **options)
    requests = RequestFactory(config)
    assert requests.fixed is not None
    out, err = io.StringIO(), io.StringIO()
    endpoint = await resolve(config.target, config.family)
    stats = RunStats(config.recipients, len(requests.fixed))
    return Runner(config, endpoint, requests, stats), out, err


async def run_in_process(
    target: str, *, verbose: int = 0, counter: bool = False, **options: Any
) -> tuple[RunResult, str, str]:
    """One run with SourceConfig ``options``: (result, stdout text, stderr text), the
    lines printed as qmqp-source prints them with ``verbose`` (-v) and ``counter`` (-c)."""
    out, err = io.StringIO(), io.StringIO()
    with printing(SOURCE_PROG, verbose=verbose, counter=counter, err=lambda: err,
                  out=lambda: out):
        runner, _, _ = await make_runner(target, **options)
        with trio.fail_after(RUN_LIMIT):
            result = await runner.run()
    if counter:
        out.write("\n")  # as the command ends the running count
    return result, out.getvalue(), err.getvalue()
