"""finish.py: how every qmqp-source run ends, whatever ran it."""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path

import pytest

from qmqpsource.cli import finish
from qmqpsource.cli.outfile import OutputFile
from qmqpsource.results import result
from qmqpsource.results.figures import RunStatus
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import RunStats
from qmqpsource.source.config import SourceConfig

SINK_COUNTS = {"connections": 1, "messages": 3, "recipients": 3, "replies": {"K": 2, "Z": 1}}


def run_result(status: RunStatus = "completed", **fields: object) -> result.Result:
    """A run of three messages: two accepted, one tempfailed (``fields``: more of it)."""
    stats = RunStats(recipients_per_message=1, bytes_per_message=100)
    stats.begin()
    for outcome in (Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.TEMPFAIL):
        stats.record(outcome, 0.0, 0.001, 0.002)
    stats.finish()
    made = result.from_stats(stats, SourceConfig("127.0.0.1:628").as_dict(),
                             tool_name="qmqp-source", tool_version="0.1.0")
    return dataclasses.replace(made, status=status, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("signum", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated"),
     (signal.SIGHUP, 129, "hung up")],
)
def test_a_stop_signal_has_its_word_and_status(
    capsys: pytest.CaptureFixture[str], signum: int, status: int, word: str
) -> None:
    # The signal wins over a failure: the run was stopped, not failed.
    assert finish.exit_status(signum, failure="unrecoverable error", failed=1,
                              attempted=2) == status
    assert capsys.readouterr().err == f"qmqp-source: {word}\n"


def test_the_stop_signals_are_those_a_run_watches() -> None:
    assert set(finish.STOP_SIGNALS) == {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def test_a_failure_is_postfixs_fatal_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        finish.exit_status(failure="connect: Connection refused", failed=1, attempted=1)
    assert exited.value.code == 1
    assert capsys.readouterr().err == "qmqp-source: fatal: connect: Connection refused\n"


@pytest.mark.parametrize(
    ("failed", "attempted", "status", "line"),
    [(0, 5, 0, ""), (1, 1, 1, "qmqp-source: 1 of 1 message failed\n"),
     (3, 6, 1, "qmqp-source: 3 of 6 messages failed\n")],
)
def test_failed_messages_are_counted(
    capsys: pytest.CaptureFixture[str], failed: int, attempted: int, status: int, line: str
) -> None:
    assert finish.exit_status(failed=failed, attempted=attempted) == status
    assert capsys.readouterr().err == line


def test_report_shows_the_summary_and_the_sinks_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    finish.report(run_result(sink=SINK_COUNTS), quiet=False, json_file=None)
    err = capsys.readouterr().err
    assert ", 3 messages: 2 accepted," in err
    assert err.endswith(finish.sink_line(SINK_COUNTS, accepted=2))
    assert "(agrees)" in err


@pytest.mark.parametrize(("quiet", "status"), [(True, "completed"), (False, "failed")])
def test_report_is_silent_when_quiet_or_failed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, quiet: bool, status: RunStatus
) -> None:
    # A failed run's fatal line says it all; its JSON is written all the same.
    path = tmp_path / "r.json"
    finish.report(run_result(status), quiet=quiet, json_file=OutputFile.at(str(path)))
    assert capsys.readouterr().err == ""
    assert json.loads(path.read_text())["status"] == status


def test_report_writes_extra_keys_workers_and_the_sinks_counts(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    finish.report(run_result(sink=SINK_COUNTS, workers=2), quiet=True,
                  json_file=finish.open_json(str(path)), extra={"find_rate": {"rate": 5}})
    value = json.loads(path.read_text())
    assert (value["workers"], value["sink"]) == (2, SINK_COUNTS)
    assert value["find_rate"] == {"rate": 5}
    assert value["counts"]["accepted"] == 2


def test_report_without_a_sink_writes_no_sink_key(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    finish.report(run_result(), quiet=True, json_file=finish.open_json(str(path)))
    assert "sink" not in json.loads(path.read_text())
    assert "workers" not in json.loads(path.read_text())


def test_sink_line_says_when_the_counts_disagree() -> None:
    assert finish.sink_line(SINK_COUNTS, accepted=3).endswith(
        "malformed 0 (DISAGREES: source counted 3 accepted)\n"
    )


def test_no_json_path_opens_nothing() -> None:
    assert finish.open_json(None) is None


def test_a_json_path_that_cannot_be_written_is_fatal_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit):
        finish.open_json(str(tmp_path / "no" / "such" / "r.json"))
    assert capsys.readouterr().err.startswith("qmqp-source: fatal: ")
