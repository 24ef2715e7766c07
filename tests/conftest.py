"""Shared test setup: the Postfix fixtures (skipped with a reason where Postfix is missing),
and a local time zone set for one test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

# pytester: the pytest plugin is tested in pytest sessions of its own.
pytest_plugins = ["tests.postfix_fixtures", "pytester"]


@pytest.fixture
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set this process's local time zone (a POSIX TZ string: no tzdata needed)."""

    def use(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()
