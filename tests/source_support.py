"""Running qmqp-source's runner in the test's own trio loop, output captured."""

from __future__ import annotations

import io
from typing import Any

import trio

from qmqpsource.config import SourceConfig
from qmqpsource.connector import resolve
from qmqpsource.request import RequestFactory
from qmqpsource.runner import Runner, RunResult
from qmqpsource.stats import RunStats

__all__ = ["run_in_process"]

# No test load takes near this long; a hang fails the test instead of the suite.
RUN_LIMIT = 30.0


async def run_in_process(target: str, **options: Any) -> tuple[RunResult, str, str]:
    """One run with SourceConfig ``options``: (result, stdout text, stderr text)."""
    config = SourceConfig(target=target, **options)
    requests = RequestFactory(config)
    assert requests.fixed is not None
    out, err = io.StringIO(), io.StringIO()
    endpoint = await resolve(config.target, config.family)
    with trio.fail_after(RUN_LIMIT):
        result = await Runner(
            config, endpoint, requests, RunStats(config.recipients, len(requests.fixed)),
            out=out, err=err,
        ).run()
    return result, out.getvalue(), err.getvalue()
