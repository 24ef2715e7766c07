"""The sink's tests in process leak no descriptor: ``pytestmark = usefixtures("no_fd_leaks")``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sink_support import no_fd_leak


@pytest.fixture
def no_fd_leaks() -> Iterator[None]:
    with no_fd_leak():
        yield
