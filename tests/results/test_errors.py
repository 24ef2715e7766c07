"""The errors of results/ are qmqpsource.errors' kinds: one ``except`` catches them all."""

from __future__ import annotations

import pytest

from qmqpsource import errors
from qmqpsource.results import checks, histogram, result, timeline_json


def test_check_and_result_errors_are_the_library_kinds() -> None:
    assert issubclass(checks.CheckError, errors.CheckError)
    assert result.ResultError is errors.ResultError


@pytest.mark.parametrize("kind", [histogram.HistogramError, timeline_json.TimelineError])
def test_a_broken_histogram_or_timeline_is_a_result_error(kind: type[Exception]) -> None:
    assert issubclass(kind, errors.ResultError)


def test_each_is_caught_as_a_qmqpsource_error() -> None:
    with pytest.raises(errors.QmqpsourceError):
        checks.parse_check("p99")
    with pytest.raises(errors.QmqpsourceError):
        result.loads("{}")
    with pytest.raises(errors.QmqpsourceError):
        histogram.Histogram.decode("not an hdr")
