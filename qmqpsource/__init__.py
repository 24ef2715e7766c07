"""qmqpsource: a QMQP load generator and test server built on trio.

The Python API (see api.py and docs/api.md):

    from qmqpsource import SinkConfig, SourceConfig, Result, open_sink, run_load

The names are imported on first use, so that the commands, which import this package
first, do not pay for what they may not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The three programs' names, as their usage, version and stderr lines give them: here
# once, for the commands and for the code that writes lines in their name.
SOURCE_PROG = "qmqp-source"
SINK_PROG = "qmqp-sink"
REPORT_PROG = "qmqp-report"

# Public name -> the module that defines it.
_PUBLIC = {
    "SourceConfig": "qmqpsource.source.config",
    "SinkConfig": "qmqpsource.sink.config",
    "Faults": "qmqpsource.sink.faults",
    "SinkStats": "qmqpsource.sink.stats",
    "Result": "qmqpsource.results.result",
    "Interval": "qmqpsource.results.timeline",
    "Verdict": "qmqpsource.results.checks",
    "Outcome": "qmqpsource.results.outcome",
    "Family": "qmqpsource.addresses",
    "run_load": "qmqpsource.api",
    "find_rate": "qmqpsource.api",
    "FoundRate": "qmqpsource.api",
    "run_load_sync": "qmqpsource.api",
    "find_rate_sync": "qmqpsource.api",
    "open_sink": "qmqpsource.api",
    "RunningSink": "qmqpsource.api",
    "LoadControl": "qmqpsource.api",
    "WorkerPool": "qmqpsource.api",
    "EMBEDDED_TARGET": "qmqpsource.api",
    # What the library raises on purpose: one base, and its kinds.
    "QmqpsourceError": "qmqpsource.errors",
    "AddressError": "qmqpsource.errors",
    "CheckError": "qmqpsource.errors",
    "ConfigError": "qmqpsource.errors",
    "LimitError": "qmqpsource.errors",
    "ResultError": "qmqpsource.errors",
    "RunError": "qmqpsource.errors",
    "SinkError": "qmqpsource.errors",
    "TrioRequiredError": "qmqpsource.errors",
}

__all__ = [
    "EMBEDDED_TARGET",
    "REPORT_PROG",
    "SINK_PROG",
    "SOURCE_PROG",
    "AddressError",
    "CheckError",
    "ConfigError",
    "Family",
    "Faults",
    "FoundRate",
    "Interval",
    "LimitError",
    "LoadControl",
    "Outcome",
    "QmqpsourceError",
    "Result",
    "ResultError",
    "RunError",
    "RunningSink",
    "SinkConfig",
    "SinkError",
    "SinkStats",
    "SourceConfig",
    "TrioRequiredError",
    "Verdict",
    "WorkerPool",
    "__version__",
    "find_rate",
    "find_rate_sync",
    "open_sink",
    "run_load",
    "run_load_sync",
]

if TYPE_CHECKING:
    from qmqpsource.addresses import Family
    from qmqpsource.api import (
        EMBEDDED_TARGET,
        FoundRate,
        LoadControl,
        RunningSink,
        WorkerPool,
        find_rate,
        find_rate_sync,
        open_sink,
        run_load,
        run_load_sync,
    )
    from qmqpsource.errors import (
        AddressError,
        CheckError,
        ConfigError,
        LimitError,
        QmqpsourceError,
        ResultError,
        RunError,
        SinkError,
        TrioRequiredError,
    )
    from qmqpsource.results.checks import Verdict
    from qmqpsource.results.outcome import Outcome
    from qmqpsource.results.result import Result
    from qmqpsource.results.timeline import Interval
    from qmqpsource.sink.config import SinkConfig
    from qmqpsource.sink.faults import Faults
    from qmqpsource.sink.stats import SinkStats
    from qmqpsource.source.config import SourceConfig


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'qmqpsource' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once found, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
