"""Result documents no writer of ours writes, read as one line each (a ResultError), never
a traceback, an infinity in --json, or gigabytes of memory."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from qmqpsource.results import histogram, result
from qmqpsource.results.findrate import parse_find_rate
from qmqpsource.results.histogram import MAX_TOTAL, counts_index
from qmqpsource.results.timeline import MAX_INTERVALS
from qmqpsource.values import MAX_COUNT
from tests.report.synthetic import document, find_rate

Change = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Change:
    def change(doc: dict[str, Any]) -> None:
        *keys, last = path.split(".")
        node: Any = doc
        for key in keys:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    return change


def _many_intervals(doc: dict[str, Any]) -> None:
    # The writer caps a timeline at MAX_INTERVALS; 300,000 of them took 1.5 GB to read.
    doc["timeline"] = doc["timeline"][:1] * (MAX_INTERVALS + 1)


def _huge_histogram(doc: dict[str, Any]) -> None:
    # One value more than a histogram holds, encoded as the writer would were it not
    # for its own refusal of such a total.
    sparse = {0: 1, counts_index(1000): MAX_TOTAL}
    with mock.patch.object(histogram, "_refuse_total", lambda total: None):
        doc["latency_ms"]["connect"]["hdr"] = histogram.encode_sparse(sparse)


CASES: list[tuple[str, Change, str]] = [
    ("elapsed tiny", _set("elapsed_s", 5e-324),
     "elapsed_s: 5e-324 is under a microsecond, and not 0"),
    ("interval tiny", _set("interval_s", 5e-324),
     "interval_s: 5e-324 is under a microsecond, and not 0"),
    ("interval short", _set("interval_s", 0.001), "interval_s: 0.001 is under the 0.01 s"),
    ("interval huge", _set("interval_s", 1.7e308),
     "interval_s: 1.7e+308 s from started_at reaches past any date"),
    ("offset huge", _set("timeline.2.offset_s", 1.7e308),
     "timeline[2].offset_s: 1.7e+308 s from started_at reaches past any date"),
    ("duration tiny", _set("timeline.2.duration_s", 5e-324),
     "timeline[2].duration_s: 5e-324 is under a microsecond"),
    ("duration long", _set("timeline.2.duration_s", 1.5),
     "timeline[2].duration_s: longer than interval_s"),
    ("intervals", _many_intervals,
     f"timeline: {MAX_INTERVALS + 1} intervals, more than the {MAX_INTERVALS} a result has"),
    ("count", _set("recipients", MAX_COUNT + 1), f"recipients: more than {MAX_COUNT}"),
    ("histogram", _huge_histogram,
     f"latency_ms.connect.hdr: histogram holds {MAX_TOTAL + 1} values, more than {MAX_TOTAL}"),
]


@pytest.mark.parametrize(("name", "change", "says"), CASES, ids=[c[0] for c in CASES])
def test_what_no_writer_writes_is_one_line(name: str, change: Change, says: str) -> None:
    doc = document(3)
    change(doc)
    with pytest.raises(result.ResultError) as caught:
        result.loads(json.dumps(doc))
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("token", "says"),
    [("NaN", "NaN is not a JSON number"), ("Infinity", "Infinity is not a JSON number"),
     ("-Infinity", "-Infinity is not a JSON number"), ("1e400", "1e400 is beyond a double")],
)
def test_nan_and_infinity_are_not_read(token: str, says: str) -> None:
    # Python's json reads them (and wrote them back into --json); JSON has neither.
    for field in ('"elapsed_s": 3.0', '"rate": null'):
        text = json.dumps(document(3)).replace(field, field.split(":")[0] + ": " + token, 1)
        assert token in text
        with pytest.raises(result.ResultError) as caught:
            result.loads(text)
        assert str(caught.value) == f"not JSON: {says}"


def test_nan_and_infinity_are_never_written() -> None:
    value = result.loads(json.dumps(document(3)))
    # Made by hand, past the reader's checks: its rates are infinite.
    tiny = dataclasses.replace(value, elapsed_s=5e-324)
    assert tiny.throughput.messages_per_s == float("inf")
    with pytest.raises(result.ResultError) as caught:
        result.dumps(tiny)
    assert str(caught.value).startswith("not written: Out of range float values")


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [("p99_ms", 1.7e308, "find_rate.steps: p99_ms is not a number from 0 to "),
     ("p50_ms", -1.0, "find_rate.steps: p50_ms is not a number from 0 to "),
     ("rate", -5.0, "find_rate.steps: a step without its rate")],
)
def test_a_search_with_values_no_search_writes_is_one_line(
    key: str, value: float, says: str
) -> None:
    search = find_rate()
    search["steps"][0][key] = value
    with pytest.raises(ValueError, match=None) as caught:
        parse_find_rate({"find_rate": search})
    assert str(caught.value).startswith(says)


def test_a_search_of_more_steps_than_a_search_runs_is_refused() -> None:
    search = find_rate()
    search["steps"] = search["steps"] * 3  # 30: a search stops at 20
    with pytest.raises(ValueError, match=r"find_rate\.steps: 30 steps, more than the 20"):
        parse_find_rate({"find_rate": search})


def test_half_a_character_is_refused_and_a_whole_one_read() -> None:
    # A lone \ud800 read fine, then failed writing the page with a traceback.
    text = json.dumps(document(3))
    assert '"subject": null' in text
    with pytest.raises(result.ResultError) as caught:
        result.loads(text.replace('"subject": null', '"subject": "\\ud800"'))
    assert str(caught.value).startswith("not JSON: a \\u escape of half a character")
    whole = result.loads(text.replace('"subject": null', '"subject": "\\ud83d\\ude00"'))
    assert whole.config["subject"] == "\U0001f600"


def test_a_key_given_twice_is_refused() -> None:
    # Of two "schema" keys, json took the last; which one another reader takes is open.
    text = json.dumps(document(3)).replace('{"schema": ', '{"schema": "x", "schema": ', 1)
    assert text.count('"schema"') == 2
    with pytest.raises(result.ResultError) as caught:
        result.loads(text)
    assert str(caught.value) == "not JSON: the key 'schema' is given twice in one object"
