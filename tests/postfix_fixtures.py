"""pytest fixtures for real Postfix peers; load with `pytest_plugins = ["tests.postfix_fixtures"]`.

postfix_instance: one private Postfix instance (qmqpd holding every message) for the session.
postfix_qmqpd: that instance with an empty queue, for one test.
postfix_sink: a factory of Postfix qmqp-sink servers, all stopped after the test.
Each skips the test with the reason when Postfix's tools (or root, for the instance) are missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest

from tests.postfix_support import PostfixInstance, PostfixSink, postfix_tools_missing


class SinkFactory(Protocol):
    def __call__(
        self, endpoint: str | None = None, backlog: int = 100, options: tuple[str, ...] = ()
    ) -> PostfixSink: ...


@pytest.fixture(scope="session")
def postfix_instance() -> Iterator[PostfixInstance]:
    """A private Postfix instance for the whole session; prefer postfix_qmqpd in tests."""
    reason = postfix_tools_missing()
    if reason is not None:
        pytest.skip(reason)
    with PostfixInstance() as instance:
        yield instance


@pytest.fixture
def postfix_qmqpd(postfix_instance: PostfixInstance) -> PostfixInstance:
    """The session's Postfix instance, its queue emptied of earlier tests' messages."""
    postfix_instance.purge()
    return postfix_instance


@pytest.fixture
def postfix_sink() -> Iterator[SinkFactory]:
    """Start Postfix's qmqp-sink on an endpoint (default: a free port on 127.0.0.1)."""
    reason = postfix_tools_missing(need_root=False)
    if reason is not None:
        pytest.skip(reason)
    sinks: list[PostfixSink] = []

    def start(
        endpoint: str | None = None, backlog: int = 100, options: tuple[str, ...] = ()
    ) -> PostfixSink:
        sink = PostfixSink(endpoint, backlog, options)
        sink.start()
        sinks.append(sink)
        return sink

    yield start
    for sink in reversed(sinks):
        sink.close()


def qmqpd_target(instance: PostfixInstance, family: str) -> str:
    """The instance's qmqpd address for "ipv4" or "ipv6" (skips where ::1 is missing)."""
    if family == "ipv4":
        return f"127.0.0.1:{instance.port}"
    if instance.port6 is None:
        pytest.skip("IPv6 loopback is not available here")
    return f"[::1]:{instance.port6}"
