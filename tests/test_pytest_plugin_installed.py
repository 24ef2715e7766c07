"""The pytest plugin where only pip put it: a fresh venv into which pip installs qmqpsource,
pytest and pytest-trio, and a throwaway project whose tests use its fixtures (the manual's
examples among them), run by that venv's pytest.

Slow: one venv and one install for the whole test session (a session-scoped fixture),
every subprocess bounded by a timeout. Where no venv can be made or pip cannot reach its
index, the tests skip with the reason, but not in CI, which has both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NoReturn

import pytest

from tests.docs_support import page, python_blocks

ROOT = Path(__file__).parent.parent
# What the build of the package reads. It builds from a copy: a build in the checkout
# would write build/ and egg-info there.
BUILD_INPUTS = ("pyproject.toml", "README.md", "qmqpsource", "man")

MORE_TESTS = '''
import sys
from pathlib import Path

import pytest

import qmqpsource
from qmqpsource import SourceConfig, run_load


def test_qmqpsource_is_the_one_pip_installed(request):
    assert Path(qmqpsource.__file__).is_relative_to(sys.prefix)
    assert request.config.pluginmanager.hasplugin("qmqpsource")


@pytest.mark.qmqp_sink(reject=1.0)
async def test_faults_from_the_marker(qmqp_sink):
    result = await run_load(SourceConfig(target=qmqp_sink.address, messages=5,
                                         keep_going=True))
    assert result.counts.permfail == 5


async def test_a_failing_assertion_fails(qmqp_sink):
    result = await run_load(SourceConfig(target=qmqp_sink.address, messages=5))
    assert result.counts.accepted == 6


def test_a_sync_test_is_told(qmqp_sink):
    pass
'''


def _unavailable(what: str, done: subprocess.CompletedProcess[str]) -> NoReturn:
    lines = (done.stderr or done.stdout).strip().splitlines()
    reason = f"cannot {what}: {lines[-1] if lines else f'exit status {done.returncode}'}"
    if os.environ.get("CI"):
        pytest.fail(f"CI must be able to {what}; {reason}")
    pytest.skip(reason)


def _env() -> dict[str, str]:
    """Ours, without what would let the venv see this checkout or this venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="session")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a new venv with qmqpsource (a plain install), pytest and pytest-trio."""
    root = tmp_path_factory.mktemp("fresh-venv")
    source = root / "qmqpsource-source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    venv = root / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, timeout=300, env=_env(), check=False)
    if made.returncode != 0:
        _unavailable(f"make a venv with {sys.executable} -m venv", made)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(source), "pytest", "pytest-trio"],
        capture_output=True, text=True, timeout=900, env=_env(), check=False,
    )
    if installed.returncode != 0:
        _unavailable("pip install qmqpsource, pytest and pytest-trio into a fresh venv",
                     installed)
    return python


def _outcomes(report: Path) -> dict[str, str]:
    """test -> passed, failure, error or skipped, from pytest's JUnit XML."""
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[f"{case.get('classname')}.{case.get('name')}"] = (kinds or ["passed"])[0]
    return outcomes


def test_the_fixtures_work_where_pip_installed_them(fresh_python: Path, tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    (tmp_path / "test_manual.py").write_text(python_blocks(page("pytest-plugin.md"))[0])
    (tmp_path / "test_more.py").write_text(MORE_TESTS)
    done = subprocess.run(
        [str(fresh_python), "-m", "pytest", "-p", "no:cacheprovider", "--junitxml=report.xml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env(), check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # 1: tests failed, as they must
    assert _outcomes(tmp_path / "report.xml") == {
        "test_manual.test_takes_load": "passed",
        "test_manual.test_counts_tempfail": "passed",
        "test_manual.test_keeps_mail": "passed",
        "test_more.test_qmqpsource_is_the_one_pip_installed": "passed",
        "test_more.test_faults_from_the_marker": "passed",
        "test_more.test_a_failing_assertion_fails": "failure",
        "test_more.test_a_sync_test_is_told": "error",
    }
    assert "assert 5 == 6" in done.stdout
    assert "qmqp_sink and qmqp_sink_factory are for trio tests" in done.stdout


def test_a_session_that_does_not_use_it_imports_nothing_of_ours(
    fresh_python: Path, tmp_path: Path
) -> None:
    (tmp_path / "conftest.py").write_text(
        "import sys\n\n"
        "def pytest_sessionfinish(session):\n"
        "    loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('trio', 'qmqpsource'))\n"
        "    (session.config.rootpath / 'loaded').write_text(' '.join(loaded))\n"
    )
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    # Without pytest-trio, which imports trio itself.
    done = subprocess.run(
        [str(fresh_python), "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:trio"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=_env(), check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "loaded").read_text().split() == ["qmqpsource", "qmqpsource.pytest_plugin"]


def test_the_manual_pages_are_installed_where_man_finds_them(fresh_python: Path) -> None:
    """pip puts them in the venv's share/man/man1; man-db looks there for a venv whose
    bin is on PATH, before Postfix's pages of the same names."""
    venv = fresh_python.parent.parent
    pages = venv / "share" / "man" / "man1"
    for program in ("qmqp-source", "qmqp-sink", "qmqp-report"):
        ours = (ROOT / "man" / "man1" / f"{program}.1").read_text()
        assert (pages / f"{program}.1").read_text() == ours
    if shutil.which("man") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have man (.ci/run installs man-db)")
        pytest.skip("man is missing: apt-get install man-db")
    env = {k: v for k, v in _env().items() if k != "MANPATH"}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    found = subprocess.run(["man", "-w", "qmqp-source"], capture_output=True, text=True,
                           timeout=60, env=env, check=False)
    assert found.stdout.strip() == str(pages / "qmqp-source.1"), found.stderr
