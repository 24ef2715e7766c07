"""What became of one message: the classes that counts, reports and exit statuses use."""

from __future__ import annotations

import enum

__all__ = ["DeliveryError", "Outcome"]


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # K
    TEMPFAIL = "tempfail"  # Z
    PERMFAIL = "permfail"  # D
    # Errors, by cause.
    REFUSED = "refused"
    RESET = "reset"
    TIMEOUT = "timeout"
    LOST_CONNECTION = "lost_connection"
    PROTOCOL_ERROR = "protocol_error"
    CONNECT_ERROR = "connect_error"

    @property
    def is_error(self) -> bool:
        return self not in _REPLIED

    @property
    def is_failure(self) -> bool:
        return self is not Outcome.ACCEPTED


_REPLIED = frozenset({Outcome.ACCEPTED, Outcome.TEMPFAIL, Outcome.PERMFAIL})


class DeliveryError(Exception):
    """One message failed; ``str()`` is Postfix's wording, ``outcome`` its class."""

    def __init__(self, outcome: Outcome, text: str) -> None:
        super().__init__(text)
        self.outcome = outcome
