"""The pytest plugin, in pytest sessions of their own (pytester): its fixtures and marker in
trio tests, clear words where they cannot run, and nothing changed for sessions that do
not use it. tests/test_pytest_plugin_installed.py runs it where only pip installed it."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

# Imported before any inner session, which pytester (in-process) follows by dropping the
# modules that it imported: a later import would make second copies of our classes.
import qmqpsource.api  # noqa: F401
from qmqpsource import pytest_plugin
from tests.docs_support import page, python_blocks

TRIO_MODE = "[pytest]\ntrio_mode = true\naddopts = --strict-markers -p no:cacheprovider\n"

TESTS = '''
import pytest
from qmqpsource import Faults, SinkConfig, SourceConfig, run_load


async def test_takes_load(qmqp_sink):
    result = await run_load(SourceConfig(target=qmqp_sink.address, sessions=4, messages=50))
    assert result.counts.accepted == 50
    assert qmqp_sink.stats.replies_k == 50


@pytest.mark.qmqp_sink(tempfail=1.0)
async def test_faults_from_the_marker(qmqp_sink):
    result = await run_load(SourceConfig(target=qmqp_sink.address, messages=10,
                                         keep_going=True))
    assert result.counts.tempfail == 10 and qmqp_sink.stats.replies_z == 10


async def test_sinks_from_the_factory(qmqp_sink_factory, tmp_path):
    kept = await qmqp_sink_factory(maildir=tmp_path / "Maildir")
    rejecting = await qmqp_sink_factory(SinkConfig(endpoint="127.0.0.1:0",
                                                   faults=Faults(seed=1)), reject=1.0)
    await run_load(SourceConfig(target=kept.address, messages=3))
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 3
    result = await run_load(SourceConfig(target=rejecting.address, messages=3,
                                         keep_going=True))
    assert result.counts.permfail == 3


async def test_a_failing_assertion_fails(qmqp_sink):
    result = await run_load(SourceConfig(target=qmqp_sink.address, messages=5))
    assert result.counts.accepted == 6
'''


def test_the_fixtures_in_trio_mode(pytester: pytest.Pytester) -> None:
    pytester.makeini(TRIO_MODE)
    pytester.makepyfile(TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*assert 5 == 6*"])


def test_the_manual_examples_pass(pytester: pytest.Pytester) -> None:
    examples = python_blocks(page("pytest-plugin.md"))
    assert len(examples) == 2
    pytester.makeini(TRIO_MODE)
    pytester.makepyfile(examples[0])
    pytester.runpytest().assert_outcomes(passed=3)


def test_the_manual_sync_example_passes_without_pytest_trio(pytester: pytest.Pytester) -> None:
    [_, example] = python_blocks(page("pytest-plugin.md"))
    pytester.makepyfile(example)
    result = pytester.runpytest("-p", "no:trio", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert sink_threads() == []  # their sinks stopped, their threads joined


def test_a_test_marked_trio_gets_a_sink_without_trio_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        import pytest

        @pytest.mark.trio
        async def test_marked(qmqp_sink):
            assert qmqp_sink.address.startswith("127.0.0.1:")
            assert qmqp_sink.addresses == [qmqp_sink.address]
    ''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_sinks_stop_when_the_test_ends(pytester: pytest.Pytester) -> None:
    pytester.makeini(TRIO_MODE)
    pytester.makepyfile('''
        from pathlib import Path

        async def test_two(qmqp_sink, qmqp_sink_factory):
            other = await qmqp_sink_factory()
            Path("addresses").write_text(qmqp_sink.address + " " + other.address)
    ''')
    pytester.runpytest().assert_outcomes(passed=1)
    for address in (pytester.path / "addresses").read_text().split():
        host, _, port = address.rpartition(":")
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect((host, int(port)))  # closed: nothing listens there any more


def test_a_sync_test_is_told_the_fixtures_are_for_trio_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(TRIO_MODE)
    pytester.makepyfile("def test_sync(qmqp_sink):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["qmqp_sink and qmqp_sink_factory are for trio tests: *; "
                                 "a plain test has qmqp_sink_sync"])


def test_without_pytest_trio_the_error_names_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("async def test_async(qmqp_sink_factory):\n    pass\n")
    result = pytester.runpytest("-p", "no:trio", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*qmqp_sink and qmqp_sink_factory need pytest-trio: "
                                 "pip install pytest-trio"])


@pytest.mark.parametrize(
    ("marker", "says"),
    [("bogus=1", "*qmqp_sink: no option bogus; the options are backlog, *"),
     ("tempfail=2.0", "*ConfigError: tempfail must be a rate between 0 and 1, not 2.0")],
)
def test_bad_marker_options_fail_the_test_in_their_words(
    pytester: pytest.Pytester, marker: str, says: str
) -> None:
    pytester.makeini(TRIO_MODE)
    pytester.makepyfile(f'''
        import pytest

        @pytest.mark.qmqp_sink({marker})
        async def test_bad(qmqp_sink):
            pass
    ''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([says])


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["@pytest.mark.qmqp_sink(config=None, **options): *"])


def test_a_session_that_does_not_use_it_runs_as_without_it(pytester: pytest.Pytester) -> None:
    pytester.makeini(TRIO_MODE)
    pytester.makepyfile('''
        import pytest

        async def test_async(tmp_path):
            pass

        def test_sync():
            pass

        @pytest.mark.parametrize("n", [1, 2])
        def test_failing(n):
            assert n == 1
    ''')

    def run(*args: str) -> list[str]:
        result = pytester.runpytest("-v", "--setup-show", *args)
        result.assert_outcomes(passed=3, failed=1)
        # pytest's header names the plugins installed, and the last line the time taken.
        return [line for line in result.outlines[:-1] if not line.startswith("plugins:")]

    with_it = run()
    assert any("SETUP    F tmp_path" in line for line in with_it)  # fixtures are shown
    assert with_it == run("-p", "no:qmqpsource")
    # Its one hook registers the marker: none that collects, runs or reports.
    hooks = [name for name in vars(pytest_plugin) if name.startswith("pytest_")]
    assert hooks == ["pytest_configure"]


def test_loading_it_imports_neither_trio_nor_our_modules(pytester: pytest.Pytester) -> None:
    # pytest-trio imports trio itself: without it, nothing else of the session needs it.
    pytester.makeconftest('''
        import sys

        def pytest_sessionfinish(session):
            loaded = sorted(name for name in sys.modules
                            if name.split(".")[0] in ("trio", "qmqpsource"))
            (session.config.rootpath / "loaded").write_text(" ".join(loaded))
    ''')
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:trio", "-p", "no:cacheprovider",
                                           timeout=120)
    result.assert_outcomes(passed=1)
    loaded = (pytester.path / "loaded").read_text().split()
    assert loaded == ["qmqpsource", "qmqpsource.pytest_plugin"]


def test_sink_config_maps_options_onto_sink_config_and_faults() -> None:
    from qmqpsource import Faults, SinkConfig

    config = pytest_plugin.sink_config(tempfail=0.25, delay=(0.1, 0.2), seed=3,
                                       maildir=Path("/tmp/md"), timeout=5)
    assert config == SinkConfig(endpoint="127.0.0.1:0", timeout=5, maildir="/tmp/md",
                                faults=Faults(tempfail=0.25, delay_min=0.1, delay_max=0.2,
                                              seed=3))
    base = SinkConfig(endpoint="unix:/tmp/s", faults=Faults(reject=0.5))
    assert pytest_plugin.sink_config(base, delay=0.5) == SinkConfig(
        endpoint="unix:/tmp/s", faults=Faults(reject=0.5, delay_min=0.5, delay_max=0.5))
    assert pytest_plugin.sink_config() == SinkConfig(endpoint="127.0.0.1:0")


SYNC_TESTS = '''
import threading
import time
from pathlib import Path

import pytest
from qmqpsource import SourceConfig, run_load_sync


def settled(sink):
    """The sink's counts once its connections have ended: it counts a reply once sent,
    in its own thread, and the client may have read it before."""
    deadline = time.monotonic() + 30
    while sink.stats.active and time.monotonic() < deadline:
        time.sleep(0.01)
    return sink.stats


def test_takes_load(qmqp_sink_sync):
    assert threading.current_thread() is threading.main_thread()
    result = run_load_sync(SourceConfig(target=qmqp_sink_sync.address, sessions=4,
                                        messages=50))
    assert result.counts.accepted == 50
    assert settled(qmqp_sink_sync).replies_k == 50


@pytest.mark.qmqp_sink(tempfail=1.0)
def test_faults_from_the_marker(qmqp_sink_sync):
    result = run_load_sync(SourceConfig(target=qmqp_sink_sync.address, messages=10,
                                        keep_going=True))
    assert result.counts.tempfail == 10 and settled(qmqp_sink_sync).replies_z == 10


def test_sinks_from_the_factory(qmqp_sink_sync_factory, tmp_path):
    kept = qmqp_sink_sync_factory(maildir=tmp_path / "Maildir")
    rejecting = qmqp_sink_sync_factory(reject=1.0)
    run_load_sync(SourceConfig(target=kept.address, messages=3))
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 3
    result = run_load_sync(SourceConfig(target=rejecting.address, messages=3,
                                        keep_going=True))
    assert result.counts.permfail == 3
    Path("addresses").write_text(kept.address + " " + rejecting.address + " ")


def test_a_failing_assertion_fails(qmqp_sink_sync):
    with Path("addresses").open("a") as addresses:
        addresses.write(qmqp_sink_sync.address)
    result = run_load_sync(SourceConfig(target=qmqp_sink_sync.address, messages=5))
    assert result.counts.accepted == 6
'''


def sink_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "qmqp-sink thread"]


def error_report(result: pytest.RunResult) -> list[str]:
    """The lines of the one 'ERROR at setup' section of a run's output."""
    lines = result.outlines
    start = next(n for n, line in enumerate(lines) if "ERROR at setup of" in line) + 1
    end = next(n for n, line in enumerate(lines) if n > start and line.startswith("==="))
    return lines[start:end]


def test_the_sync_fixtures_in_plain_tests_without_pytest_trio(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(SYNC_TESTS)
    result = pytester.runpytest("-p", "no:trio", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*assert 5 == 6*"])
    # Every sink stopped, the failed test's too: its thread joined, its socket closed.
    assert sink_threads() == []
    addresses = (pytester.path / "addresses").read_text().split()
    assert len(addresses) == 3
    for address in addresses:
        host, _, port = address.rpartition(":")
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect((host, int(port)))


def test_a_sync_sink_that_cannot_listen_fails_its_test_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        pytester.makepyfile(f'''
            import pytest

            @pytest.mark.qmqp_sink(endpoint="127.0.0.1:{port}")
            def test_sink_elsewhere(qmqp_sink_sync):
                pass
        ''')
        result = pytester.runpytest("-p", "no:trio", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    [said] = error_report(result)  # one line: no traceback, no chained exception
    assert said.startswith(f"qmqp_sink_sync: the sink did not start: bind 127.0.0.1:{port}: ")
    assert sink_threads() == []


def test_bad_marker_options_fail_a_sync_test_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
        import pytest

        @pytest.mark.qmqp_sink(bogus=1)
        def test_bad(qmqp_sink_sync):
            pass
    ''')
    result = pytester.runpytest("-p", "no:trio", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    [said] = error_report(result)
    assert said.startswith("qmqp_sink_sync: qmqp_sink: no option bogus; the options are ")
