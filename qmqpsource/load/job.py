"""What a parent asks a worker to run, as a JOB frame's payload, and back.

A job is a share's config, the target (resolved by the worker itself: an embedded sink's
address is only known once the parent started it), the timeline's step, the shared
message budget if any (its pipe's descriptor travels with the frame), and the levels of
the loggers that want a line per message, so that the worker asks the same question
before its first message that a run in the parent would (logs.wants).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from qmqpsource import logs
from qmqpsource.addresses import Family
from qmqpsource.errors import RunError
from qmqpsource.load.budget import MessageBudget
from qmqpsource.load.channel import Frame, close_all
from qmqpsource.source.config import SourceConfig

__all__ = ["FORWARDED_LOGGERS", "Job", "decode_job", "encode_job", "logger_levels"]

# The loggers a worker's run writes to, whose records go up to the parent.
FORWARDED_LOGGERS = (
    logs.SOURCE, logs.SOURCE_FAILURES, logs.SOURCE_REPLIES, logs.SOURCE_CONNECTIONS,
    logs.SOURCE_ACCEPTED,
)


@dataclass(frozen=True)
class Job:
    config: SourceConfig
    target: str
    interval: float
    budget: MessageBudget | None
    levels: dict[str, int]


def logger_levels() -> dict[str, int]:
    """This process's effective level of each forwarded logger."""
    return {name: logging.getLogger(name).getEffectiveLevel() for name in FORWARDED_LOGGERS}


def encode_job(
    config: SourceConfig, target: str, interval: float, budget: MessageBudget | None
) -> tuple[bytes, list[int]]:
    """The JOB frame's payload and the descriptors that go with it."""
    body: dict[str, Any] = {
        "config": config.as_dict(), "target": target, "interval": interval,
        "levels": logger_levels(), "budget": None,
    }
    fds = []
    if budget is not None:
        body["budget"] = {"total": budget.total, "size": budget.size}
        fds.append(budget.fd)
    return json.dumps(body).encode(), fds


def decode_job(frame: Frame) -> Job:
    """The job a JOB frame asks for; RunError if it is not one (the descriptors it
    brought are closed then)."""
    try:
        body = json.loads(frame.payload)
        fields = dict(body["config"])
        fields["family"] = Family(fields["family"])
        config = SourceConfig(**fields)
        budget = None
        if body["budget"] is not None:
            budget = MessageBudget.adopt(frame.fds.pop(0), int(body["budget"]["total"]),
                                         int(body["budget"]["size"]))
        levels = {str(name): int(level) for name, level in body["levels"].items()}
        return Job(config, str(body["target"]), float(body["interval"]), budget, levels)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise RunError(f"a job that is no job: {exc}") from None
    finally:
        close_all(frame.fds)
