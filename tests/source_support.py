"""Running qmqp-source's runner in the test's own trio loop, output captured."""

from __future__ import annotations

import io
from typing import Any

import trio

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
    """A runner for SourceConfig ``options``, with its stdout and stderr captured."""
    config = SourceConfig(target=target, **options)
    requests = RequestFactory(config)
    assert requests.fixed is not None
    out, err = io.StringIO(), io.StringIO()
    endpoint = await resolve(config.target, config.family)
    stats = RunStats(config.recipients, len(requests.fixed))
    return Runner(config, endpoint, requests, stats, out=out, err=err), out, err


async def run_in_process(target: str, **options: Any) -> tuple[RunResult, str, str]:
    """One run with SourceConfig ``options``: (result, stdout text, stderr text)."""
    runner, out, err = await make_runner(target, **options)
    with trio.fail_after(RUN_LIMIT):
        result = await runner.run()
    return result, out.getvalue(), err.getvalue()
