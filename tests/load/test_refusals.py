"""What the API refuses before a load, in one line of its own (a hostile pass found each
leaking a TypeError, an AttributeError or a ValueError), and a stop ordered before the
workers have their jobs."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from qmqpsource import SinkConfig, SourceConfig, open_sink
from qmqpsource.api import EMBEDDED_TARGET, LoadControl, find_rate, run_load
from qmqpsource.errors import CheckError, ConfigError, QmqpsourceError
from tests.qmqp_server import qmqp_server

LIMIT = 60  # seconds for any one load here: a hang fails the test, not the suite
EMBEDDED = SourceConfig(target=EMBEDDED_TARGET, messages=3)


@pytest.mark.parametrize("checks", [None, "failed==0", b"failed==0", [None], [b"p99<1s"]],
                         ids=["None", "one string", "bytes", "a None", "a bytes"])
async def test_checks_that_are_not_a_list_of_checks(checks: Any) -> None:
    with pytest.raises(CheckError, match=r"^checks must be ") as caught:
        await run_load(EMBEDDED, embedded_sink=[], checks=checks)
    assert caught.value.field == "checks"


@pytest.mark.parametrize("check", ["failed==0\n", "failed==0\t", "failed\n==0"])
async def test_a_check_is_one_line(check: str) -> None:
    with pytest.raises(CheckError, match="expected NAME OP VALUE"):
        await run_load(EMBEDDED, embedded_sink=[], checks=[check])


@pytest.mark.parametrize(("options", "why"), [
    ([None], "must be a list of qmqp-sink's options"),
    ("--seed 1", "must be a list of qmqp-sink's options"),
    (["--seed", "\0"], "without NUL"),
    (["--json", "sink.json"], "--json is --embedded-sink's own"),
    (["--version"], "--version does not go with --embedded-sink"),
    (["-h"], "no such option: -h"),
    (["--help"], "no such option: --help"),
    (["-x", "1"], "-x does not go with --embedded-sink"),
])
async def test_embedded_sink_options_refused_before_the_sink_starts(options: Any,
                                                                    why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await run_load(EMBEDDED, embedded_sink=options)
    assert why in str(caught.value) and caught.value.field == "embedded_sink"


async def test_open_sink_wants_a_sink_config() -> None:
    with pytest.raises(ConfigError, match=r"^config must be a SinkConfig, not dict$"):
        async with open_sink({"endpoint": "127.0.0.1:0"}):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize("step_duration", ["1", None, float("nan"), True],
                         ids=["text", "None", "NaN", "True"])
async def test_find_rate_names_step_duration(step_duration: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        await find_rate(SourceConfig(target=EMBEDDED_TARGET, rate=20), checks=["failed==0"],
                        embedded_sink=[], step_duration=step_duration)
    assert caught.value.field == "step_duration"
    assert str(caught.value).startswith("step_duration must be ")


async def test_find_rate_wants_on_step_a_function_before_any_step() -> None:
    with pytest.raises(ConfigError, match=r"^on_step must be a function") as caught:
        await find_rate(SourceConfig(target=EMBEDDED_TARGET, rate=20), checks=["failed==0"],
                        embedded_sink=[], step_duration=1.0, on_step=5)  # type: ignore[arg-type]
    assert caught.value.field == "on_step"


@pytest.mark.parametrize("grace", ["1", None, float("nan"), -1.0])
async def test_a_stop_wants_a_grace_in_seconds(grace: Any) -> None:
    control = LoadControl()
    with pytest.raises(ConfigError) as caught:
        control.stop(grace=grace)
    assert caught.value.field == "grace" and not control.stopped


def test_a_stop_outside_trio_says_so() -> None:
    with pytest.raises(QmqpsourceError, match=r"^LoadControl\.stop needs trio"):
        LoadControl().stop()


@pytest.mark.parametrize(("make", "why"), [
    (lambda: SourceConfig(target="x", message_file="a\0b"), "message_file must be a path"),
    (lambda: SourceConfig(target="x", subject="x\nBcc: someone@example.com"),
     "subject must be one line"),
    (lambda: SourceConfig(target="x", rate=5e-324),
     "rate must be at least one message in 31536000 seconds"),
    (lambda: SinkConfig(endpoint="127.0.0.1:0", maildir="a\0b"), "maildir must be a path"),
])
def test_configs_refuse_what_no_run_can_use(make: Any, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make()
    assert str(caught.value).startswith(why)


async def test_a_unix_path_holds_no_nul() -> None:
    with pytest.raises(QmqpsourceError, match=r"^unix:\\x00sink: a pathname has no NUL$"):
        async with open_sink(SinkConfig(endpoint="unix:\0sink")):
            pass
    with pytest.raises(QmqpsourceError, match=r"^unix:\\x00sink: a pathname has no NUL$"):
        await run_load(SourceConfig(target="unix:\0sink"))


async def test_a_stop_before_the_workers_have_their_jobs_reaches_them() -> None:
    # Ctrl-C while the pool starts: the round was told to stop before it had told any
    # worker anything, and the order was dropped; the load ran its whole --duration.
    control = LoadControl()
    async with qmqp_server() as server:
        control.stop(grace=1.0)
        config = SourceConfig(target=server.target, sessions=2, rate=100.0, duration=30.0,
                              messages=10**6)
        with trio.fail_after(LIMIT):
            result = await run_load(config, workers=2, control=control)
    assert result.status == "interrupted"
    # At 100 msg/s, a run of its whole 30 s sends 3000; a worker told at once may have
    # begun its first messages (at most 2 sessions' worth) before it reads the stop.
    assert result.counts.attempted == len(server.raw) <= 4
