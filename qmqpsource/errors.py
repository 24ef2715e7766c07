"""The errors the library raises on purpose: one base, a few kinds, each ``str()`` one line.

    try:
        result = await run_load(config)
    except qmqpsource.QmqpsourceError as exc:
        print(exc)          # one line, no traceback needed

Modules raise these (or their own subclasses of them); this imports only wording.py,
which imports nothing, so every module may import it. The commands turn each into
Postfix's one fatal line.
"""

from __future__ import annotations

from qmqpsource.wording import one_line

__all__ = [
    "AddressError",
    "CheckError",
    "ConfigError",
    "LimitError",
    "QmqpsourceError",
    "ResultError",
    "RunError",
    "SinkError",
    "TrioRequiredError",
]


class QmqpsourceError(Exception):
    """Base of every error qmqpsource raises on purpose; ``str()`` is one line for a user."""

    def __str__(self) -> str:
        # What a user gave is quoted as given: a newline or an escape in it stays escaped.
        return one_line(super().__str__())


class ConfigError(QmqpsourceError, ValueError):
    """A value that makes no run: a field out of bounds or of the wrong type, options that
    exclude each other. ``field`` names the config field (None: no one field)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AddressError(ConfigError):
    """A target that cannot be parsed or resolved."""


class CheckError(ConfigError):
    """A check (--check) that cannot be parsed, or cannot be judged on a result."""


class LimitError(QmqpsourceError):
    """A run that this machine cannot hold (descriptors, memory), refused before it starts."""


class ResultError(QmqpsourceError, ValueError):
    """A result document that cannot be read, or results that cannot be merged."""


class SinkError(QmqpsourceError):
    """A sink that cannot run (it cannot listen, its Maildir cannot be written)."""


class RunError(QmqpsourceError):
    """A load that could not run to its end for a reason outside its messages: a worker
    process lost, an embedded sink that did not start, a rate-search step that could not
    connect."""


class TrioRequiredError(QmqpsourceError, RuntimeError):
    """An async function of the API called outside trio (under asyncio, say), or a
    _sync one inside a trio loop."""
