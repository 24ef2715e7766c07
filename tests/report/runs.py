"""Two short real runs for the report's tests: one against a quick sink, one against a slower
sink that fails some messages on purpose (the page's "before" and "after").

Each run is bounded in time (--duration) and in count (-m), against the built-in sink on
loopback, through the API; the results are written as qmqp-source's --json writes them.
"""

from __future__ import annotations

from pathlib import Path

import trio

from qmqpsource import SinkConfig, SourceConfig, open_sink, run_load
from qmqpsource.results import result
from qmqpsource.sink.faults import Faults

DURATION = 1.5  # seconds a run
INTERVAL = 0.1  # the timeline's step: 15 intervals a run
CAP = 50_000  # messages a run at most

AFTER = Faults(tempfail=0.03, reject=0.02, drop=0.02, delay_min=0.001, delay_max=0.004, seed=1)


async def one_run(path: Path, faults: Faults) -> None:
    async with open_sink(SinkConfig("127.0.0.1:0", faults=faults, timeout=10)) as sink:
        config = SourceConfig(sink.address, sessions=4, messages=CAP, duration=DURATION,
                              keep_going=True, timeout=10)
        done = await run_load(config, interval=INTERVAL)
    await trio.Path(path).write_text(result.dumps(done))


async def before_and_after(folder: Path) -> tuple[Path, Path]:
    """before.json (a quick sink) and after.json (a slower one, with failures) in folder."""
    before, after = folder / "before.json", folder / "after.json"
    await one_run(before, Faults())
    await one_run(after, AFTER)
    return before, after
