"""The sink's counters and its summary."""

from __future__ import annotations

import pytest

from qmqpsource.sink import SinkStats, format_summary

pytestmark = pytest.mark.usefixtures("no_fd_leaks")


def test_summary_lines() -> None:
    stats = SinkStats()
    stats.connections = stats.messages = stats.replies_k = 2
    lines = format_summary(stats)
    assert lines[0].startswith("2 connections, 2 messages")
    assert "2 K, 0 Z, 0 D" in lines[1]
    data = stats.as_dict()
    assert data["replies"] == {"K": 2, "Z": 0, "D": 0}
    assert set(data) >= {"connections", "messages", "recipients", "bytes", "malformed",
                         "timeouts"}

