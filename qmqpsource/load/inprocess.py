"""One run in this process: resolve the target, run the sessions, make the result.

What every load comes down to, whoever asked for it: the API in the caller's trio loop,
the command line in its own, each worker process for its share. Checks are not judged
here: a load judges them once, on its whole result (run.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmqpsource import SOURCE_PROG, __version__
from qmqpsource.results import result
from qmqpsource.results.stats import RunStats
from qmqpsource.source.connector import resolve
from qmqpsource.source.request import RequestFactory
from qmqpsource.source.runner import Runner

if TYPE_CHECKING:
    from qmqpsource.load.budget import MessageBudget
    from qmqpsource.load.control import LoadControl
    from qmqpsource.results.figures import RunStatus
    from qmqpsource.results.result import Result
    from qmqpsource.source.config import SourceConfig

__all__ = ["run_in_process"]


async def run_in_process(
    config: SourceConfig,
    target: str,
    *,
    interval: float,
    control: LoadControl | None = None,
    budget: MessageBudget | None = None,
    requests: RequestFactory | None = None,
) -> Result:
    """Run ``config``'s load against ``target`` here; its result, with a timeline in steps
    of ``interval`` seconds. Its status says how it ended: "completed", "failed" (a
    message failed and the run does not keep going: ``failure`` says how), or
    "interrupted" (``control`` stopped it).

    ``budget``: a --workers share takes its messages from it as it goes. ``requests``:
    the messages, when a caller runs the same config more than once (a rate search).
    Raises AddressError for a target that cannot be resolved.
    """
    requests = requests if requests is not None else RequestFactory(config)
    stats = RunStats(config.recipients, requests.size, interval)
    endpoint = await resolve(target, config.family)
    runner = Runner(config, endpoint, requests, stats, budget=budget)
    stats.begin()
    if control is None:
        outcome = await runner.run()
    else:
        control.publish(stats)
        with control.attach(runner):
            outcome = await runner.run()
    stats.finish()
    status: RunStatus = "completed" if outcome.failure is None else "failed"
    if control is not None and control.stopped:
        status = "interrupted"
    return result.from_stats(stats, config.as_dict(), tool_name=SOURCE_PROG,
                             tool_version=__version__, status=status, failure=outcome.failure)
