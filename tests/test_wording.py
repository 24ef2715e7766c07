"""Counts in words in every summary: '1 message', never '1 messages'."""

from __future__ import annotations

import dataclasses

import pytest

from qmqpsource.cli.finish import sink_line
from qmqpsource.cli.progress import IntervalLines
from qmqpsource.results import result
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import RunStats
from qmqpsource.results.summary import format_summary
from qmqpsource.sink import SinkStats
from qmqpsource.sink import format_summary as sink_summary
from qmqpsource.source.config import SourceConfig
from qmqpsource.wording import counted


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 messages"), (1, "1 message"), (2, "2 messages"), (10, "10 messages")],
)
def test_counted(count: int, expected: str) -> None:
    assert counted(count, "message") == expected
    assert counted(count, "reply", "replies").endswith("reply" if count == 1 else "replies")


def one_message_result(cut_off: int, behind_schedule: int) -> result.Result:
    stats = RunStats(recipients_per_message=1, bytes_per_message=100)
    stats.record(Outcome.ACCEPTED, 0.0, 0.001, 0.002)
    stats.begin()
    stats.finish()
    config = SourceConfig("127.0.0.1:628").as_dict()
    made = result.from_stats(stats, config, tool_name="qmqp-source", tool_version="0.1.0")
    return dataclasses.replace(made, cut_off=cut_off, behind_schedule=behind_schedule)


def test_summary_of_one_message() -> None:
    lines = format_summary(one_message_result(cut_off=1, behind_schedule=1)).splitlines()
    assert ", 1 message: 1 accepted," in lines[0]
    assert lines[1].startswith("1 message was in flight when the run was stopped")
    assert lines[2].startswith("1 message started behind schedule")
    lines = format_summary(one_message_result(cut_off=2, behind_schedule=3)).splitlines()
    assert lines[1].startswith("2 messages were in flight")
    assert lines[2].startswith("3 messages started behind schedule")


def test_sink_summaries_of_one() -> None:
    stats = SinkStats()
    stats.connections = stats.messages = stats.recipients = stats.bytes = 1
    assert sink_summary(stats)[0].startswith("1 connection, 1 message, 1 recipient, 1 byte in ")
    stats.connections = stats.messages = stats.recipients = stats.bytes = 2
    assert sink_summary(stats)[0].startswith("2 connections, 2 messages, 2 recipients, 2 bytes")
    counts = {"connections": 1, "messages": 1, "recipients": 1, "replies": {"K": 1}}
    assert sink_line(counts, accepted=1).startswith(
        "sink: 1 connection, 1 message, 1 recipient; replies K 1,"
    )


def test_interval_line_of_one_message() -> None:
    stats = RunStats(1, 100)
    stats.begin()
    lines = IntervalLines(stats)
    stats.record(Outcome.ACCEPTED, 10.0, 10.0, 10.001)
    assert ": 1 message, " in lines.line()
