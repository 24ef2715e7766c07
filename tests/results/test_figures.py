"""A Result's typed figures: the values of its JSON document, as frozen objects."""

from __future__ import annotations

import dataclasses

import pytest

from qmqpsource.results import result
from qmqpsource.results.figures import Counts, LatencySummary, Throughput
from qmqpsource.results.outcome import Outcome
from tests.cli.test_report import run_a, run_b


def test_counts_sum_the_errors_by_cause() -> None:
    counts = Counts.of({Outcome.ACCEPTED: 7, Outcome.TEMPFAIL: 1, Outcome.REFUSED: 2,
                        Outcome.TIMEOUT: 3})
    assert counts == Counts(attempted=13, accepted=7, tempfail=1, permfail=0, error=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        counts.accepted = 8  # type: ignore[misc]


@pytest.mark.parametrize("value", [run_a(), run_b()], ids=["a", "b"])
def test_the_typed_figures_are_the_documents(value: result.Result) -> None:
    document = value.to_dict()
    assert isinstance(value.counts, Counts) and isinstance(value.throughput, Throughput)
    assert value.counts.to_dict() == document["counts"]
    assert value.throughput.to_dict() == document["throughput"]
    assert set(value.latency_ms) == set(document["latency_ms"]) == {"connect", "reply", "total"}
    for name, summary in value.latency_ms.items():
        assert isinstance(summary, LatencySummary)
        entry = dict(document["latency_ms"][name])
        del entry["hdr"]
        assert summary.to_dict() == entry
    assert value.latency_ms["total"].max == document["latency_ms"]["total"]["max"] > 0
