"""Faults on purpose, as a QMQP client sees them: Z, D, drops, hangs, delays, --seed."""

from __future__ import annotations

import sys
import time

import pytest
import trio

from qmqpsource.protocol import Status
from qmqpsource.sink import Faults
from tests.sink_support import (
    POSTFIX_SOURCE,
    exchange,
    parse_reply,
    postfix_source_missing,
    request,
    running_sink,
    wait_idle,
)

pytestmark = pytest.mark.usefixtures("no_fd_leaks")


async def _client_exchange(target: str) -> tuple[Status | None, bytes]:
    """One message over a raw socket: the reply's (status, text), or (None, b"") on a close."""
    raw = await exchange(target, request(), within=10)
    if not raw:
        return None, b""
    reply = parse_reply(raw)
    return reply.status, reply.text


async def _our_source(target: str, *options: str) -> tuple[int, str]:
    """One message with our qmqp-source CLI: (exit status, its stderr)."""
    with trio.fail_after(30):
        done = await trio.run_process(
            [sys.executable, "-m", "qmqpsource", *options, target],
            capture_stderr=True, check=False,
        )
    return done.returncode, done.stderr.decode()


async def _postfix_source(target: str) -> tuple[int, str]:
    reason = postfix_source_missing()
    if reason is not None:
        pytest.skip(reason)
    with trio.fail_after(30):
        done = await trio.run_process(
            [POSTFIX_SOURCE, "-m", "1", target], capture_stderr=True, check=False
        )
    return done.returncode, done.stderr.decode()


FAULT_VIEWS = [
    (Faults(tempfail=1.0), "recoverable error: 4.3.0 Error: tempfail on purpose"),
    (Faults(reject=1.0), "unrecoverable error: 5.7.1 Error: rejected on purpose"),
    (Faults(drop=1.0), "lost connection while receiving server reply"),
]


@pytest.mark.parametrize(("faults", "says"), FAULT_VIEWS)
async def test_fault_as_our_source_sees_it(faults: Faults, says: str) -> None:
    async with running_sink(faults=faults) as run:
        status, err = await _our_source(run.target)
    assert status == 1
    assert f"qmqp-source: fatal: {says}" in err.splitlines(), err  # its summary may follow


@pytest.mark.postfix
async def test_faults_as_postfix_source_sees_them() -> None:
    # Concurrently: Postfix's client sleeps a second before each fatal exit.
    seen: dict[str, tuple[int, str]] = {}

    async def one(faults: Faults, says: str) -> None:
        async with running_sink(faults=faults) as run:
            seen[says] = await _postfix_source(run.target)

    async with trio.open_nursery() as nursery:
        for faults, says in FAULT_VIEWS:
            nursery.start_soon(one, faults, says)
    for says, (status, err) in seen.items():
        assert status == 1
        assert err.strip() == f"{POSTFIX_SOURCE}: fatal: {says}"


async def test_fault_hang_as_our_source_sees_it() -> None:
    async with running_sink(faults=Faults(hang=1.0)) as run:
        status, err = await _our_source(run.target, "--timeout", "0.3")
    assert status == 1
    assert "qmqp-source: fatal: timeout while receiving server reply" in err.splitlines(), err
    assert run.sink.stats.hung == 1


async def test_fault_tempfail() -> None:
    async with running_sink(faults=Faults(tempfail=1.0)) as run:
        status, text = await _client_exchange(run.target)
    assert status is Status.TEMPFAIL and b"tempfail" in text
    assert run.sink.stats.replies_z == 1


async def test_fault_reject() -> None:
    async with running_sink(faults=Faults(reject=1.0)) as run:
        status, text = await _client_exchange(run.target)
    assert status is Status.PERMFAIL and b"rejected" in text
    assert run.sink.stats.replies_d == 1


async def test_fault_drop() -> None:
    async with running_sink(faults=Faults(drop=1.0)) as run:
        status, _ = await _client_exchange(run.target)
    assert status is None
    assert run.sink.stats.dropped == 1
    assert run.log_lines == []  # on purpose: not a warning


async def test_fault_hang_until_client_gives_up() -> None:
    async with running_sink(faults=Faults(hang=1.0)) as run:
        with trio.move_on_after(0.3) as scope:
            await _client_exchange(run.target)
        assert scope.cancelled_caught  # no reply ever came
        await wait_idle(run)
    assert run.sink.stats.hung == 1
    assert run.sink.stats.timeouts == 0


async def test_fault_hang_ends_at_the_timeout() -> None:
    async with running_sink(faults=Faults(hang=1.0), timeout=0.3) as run:
        started = time.monotonic()
        status, _ = await _client_exchange(run.target)
        took = time.monotonic() - started
    assert status is None  # closed without a reply
    assert 0.25 <= took < 2.0


async def test_fault_fixed_delay() -> None:
    async with running_sink(faults=Faults(delay_min=0.2, delay_max=0.2)) as run:
        started = time.monotonic()
        status, _ = await _client_exchange(run.target)
        took = time.monotonic() - started
    assert status is Status.OK
    assert took >= 0.2


async def test_fault_delay_range() -> None:
    async with running_sink(faults=Faults(delay_min=0.05, delay_max=0.15, seed=3)) as run:
        took = []
        for _ in range(4):
            started = time.monotonic()
            assert (await _client_exchange(run.target))[0] is Status.OK
            took.append(time.monotonic() - started)
    assert all(t >= 0.05 for t in took)


async def _fates(seed: int) -> list[str]:
    faults = Faults(tempfail=0.25, reject=0.25, drop=0.2, seed=seed)
    async with running_sink(faults=faults) as run:
        seen = []
        for _ in range(40):  # one at a time: the order of draws is the order of requests
            status, _ = await _client_exchange(run.target)
            seen.append(status.value if status is not None else "drop")
    return seen


async def test_faults_reproducible_with_seed() -> None:
    first, second, other = await _fates(7), await _fates(7), await _fates(8)
    assert first == second
    assert first != other
    assert set(first) == {"K", "Z", "D", "drop"}


def test_fault_rates_are_checked() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(tempfail=1.5)
    with pytest.raises(ValueError, match="add up"):
        Faults(tempfail=0.6, reject=0.6)
    with pytest.raises(ValueError, match="delay_min must be at most delay_max"):
        Faults(delay_min=2, delay_max=1)

