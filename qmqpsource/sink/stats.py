"""What one qmqp-sink run saw: the counters of its connections, and the summary of them.

Plain integer fields, bumped in place on the per-connection path: a counter object
or a lock there would cost more than the rest of an accepted message.
"""

from __future__ import annotations

import time
from typing import Any

from qmqpsource.wording import counted

__all__ = ["SinkStats", "format_summary"]


class SinkStats:
    """What the sink saw. Plain integer fields: they are bumped on the per-message path."""

    __slots__ = (
        "active",
        "bytes",
        "connections",
        "cut_off",
        "dropped",
        "empty",
        "evicted",
        "hung",
        "lost",
        "malformed",
        "max_active",
        "message_bytes",
        "messages",
        "recipients",
        "replies_d",
        "replies_k",
        "replies_z",
        "started",
        "stopped",
        "timeouts",
    )

    def __init__(self) -> None:
        self.connections = 0  # accepted connections
        self.active = 0  # open right now
        self.max_active = 0
        self.messages = 0  # well-formed requests
        self.recipients = 0  # in well-formed requests
        self.bytes = 0  # every byte received
        self.message_bytes = 0  # message text in well-formed requests
        self.replies_k = 0
        self.replies_z = 0
        self.replies_d = 0
        self.malformed = 0  # requests refused: bad framing, bad content, oversize
        self.timeouts = 0  # connections ended by --timeout
        self.lost = 0  # clients that went away mid-request or mid-reply
        self.empty = 0  # connections closed before sending a byte (probes)
        self.dropped = 0  # --drop: closed on purpose without a reply
        self.hung = 0  # --hang: never answered
        self.evicted = 0  # closed before their first byte, to make room for new ones
        # Open when the sink stopped, ended in none of the ways above; set at the stop.
        self.cut_off = 0
        self.started = time.monotonic()
        self.stopped: float | None = None

    @property
    def elapsed(self) -> float:
        end = self.stopped if self.stopped is not None else time.monotonic()
        return end - self.started

    def ended(self) -> int:
        """Connections that ended in one of the counted ways; every one ends in exactly one."""
        return (self.empty + self.lost + self.timeouts + self.replies_k + self.replies_z
                + self.replies_d + self.dropped + self.hung + self.evicted)

    def as_dict(self) -> dict[str, Any]:
        elapsed = self.elapsed
        return {
            "connections": self.connections,
            "max_active": self.max_active,
            "messages": self.messages,
            "recipients": self.recipients,
            "bytes": self.bytes,
            "message_bytes": self.message_bytes,
            "replies": {"K": self.replies_k, "Z": self.replies_z, "D": self.replies_d},
            "malformed": self.malformed,
            "timeouts": self.timeouts,
            "lost": self.lost,
            "empty": self.empty,
            "dropped": self.dropped,
            "hung": self.hung,
            "evicted": self.evicted,
            "cut_off": self.cut_off,
            "elapsed": round(elapsed, 6),
            "messages_per_second": round(self.messages / elapsed, 1) if elapsed > 0 else 0.0,
        }


def format_summary(stats: SinkStats) -> list[str]:
    """The human summary, a few lines."""
    elapsed = stats.elapsed
    rate = stats.messages / elapsed if elapsed > 0 else 0.0
    lines = [
        f"{counted(stats.connections, 'connection')}, {counted(stats.messages, 'message')}, "
        f"{counted(stats.recipients, 'recipient')}, {counted(stats.bytes, 'byte')} "
        f"in {elapsed:.3f} s "
        f"({rate:.1f} msg/s)",
        f"replies: {stats.replies_k} K, {stats.replies_z} Z, {stats.replies_d} D; "
        f"malformed {stats.malformed}, timeouts {stats.timeouts}, lost {stats.lost}, "
        f"dropped {stats.dropped}, hung {stats.hung}",
    ]
    if stats.evicted or stats.cut_off:
        lines.append(
            f"closed idle to make room {stats.evicted}; cut off by the stop {stats.cut_off}"
        )
    return lines
