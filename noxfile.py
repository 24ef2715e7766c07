"""Every developer and integration task: `nox` runs the default set (README's test command).

Every session runs on the Python that runs nox, any from 3.11 on, and each such Python
has virtual environments of its own (under .nox/python3.X/). With CI set in the
environment, the tests run on 3.11 and on 3.13, and a missing one is an error: nox
neither skips it nor downloads one.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import nox

CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"
IN_CI = bool(os.environ.get("CI"))
# The oldest Python we support and the newest we test on.
CI_PYTHONS = ["3.11", "3.13"]
# The same spec as the dev extra in pyproject.toml.
RUFF = "ruff>=0.17.6,<0.18"
POSTFIX_TOOLS = ("/usr/sbin/qmqp-source", "/usr/sbin/qmqp-sink", "/usr/lib/postfix/sbin/qmqpd")
# The interop suite fakes a day below 10 for Postfix's qmqp-source with it (the Date header).
FAKETIME = "faketime"
# The report's browser test (tests/report/test_browser.py) opens its page in Debian's chromium.
CHROMIUM = "/usr/bin/chromium"

nox.options.sessions = ["tests", "interop", "lint", "typecheck", "bench_smoke", "docs"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True
# Environments are reused, and a session's name does not say its Python: without this, a
# nox run by 3.11 would reuse the environments that a nox run by 3.13 made.
nox.options.envdir = f".nox/python{CURRENT}"


def _pyenv_bins(versions: list[str]) -> list[str]:
    """The bin folders of pyenv's newest X.Y.Z of each X.Y, where pyenv has one.

    pyenv's shims run only the versions selected (`pyenv global`), so an installed 3.13
    is not found through them; CI's machines have 3.11 and 3.13 under pyenv.
    """
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    bins = []
    for version in versions:
        patch = re.compile(re.escape(version) + r"\.(\d+)")
        found = [
            (int(match[1]), path / "bin")
            for path in (root.glob(f"{version}.*") if root.is_dir() else [])
            if (match := patch.fullmatch(path.name))
            and (path / "bin" / f"python{version}").exists()
        ]
        if found:
            bins.append(str(max(found)[1]))
    return bins


if IN_CI:
    # A Python that is missing fails its session (above), rather than being fetched.
    nox.options.download_python = "never"
    # Last on PATH: where an earlier folder has the version, it still wins.
    os.environ["PATH"] = os.pathsep.join(
        [os.environ.get("PATH", os.defpath), *_pyenv_bins(CI_PYTHONS)]
    )


def _install(session: nox.Session) -> None:
    _require_supported_python(session)
    session.install("-e", ".[dev]")


def _require_supported_python(session: nox.Session) -> None:
    # nox itself may run on a Python older than ours: say so, not pip's refusal.
    if sys.version_info < (3, 11):  # noqa: UP036
        session.error(f"qmqpsource needs Python 3.11 or later, and nox runs on {CURRENT}: "
                      "install nox with a newer Python and run it (python3.11 -m nox)")


def _require_postfix_in_ci(session: nox.Session, *also: str) -> None:
    """Locally a missing Postfix skips its tests; in CI that would hide a broken install."""
    missing = [tool for tool in (*POSTFIX_TOOLS, *also) if not shutil.which(tool)]
    if missing and IN_CI:
        session.error(f"CI must have Debian's postfix, faketime and chromium installed; missing: "
                      f"{', '.join(missing)}")


@nox.session(python=CI_PYTHONS if IN_CI else None)
def tests(session: nox.Session) -> None:
    """Unit and end-to-end tests (in-test servers; Postfix's tools where they help; the
    report's page in headless Chromium)."""
    _install(session)
    _require_postfix_in_ci(session, CHROMIUM)
    # The `once` tests (seconds of real time each, nothing Python-version-specific in
    # them) run on CI's oldest Python only: both Pythons in full took over 10 minutes.
    once = IN_CI and session.python not in (None, CI_PYTHONS[0])
    selection = "not postfix and not once" if once else "not postfix"
    session.run("pytest", "-m", selection, *session.posargs)


@nox.session
def interop(session: nox.Session) -> None:
    """Against real Postfix: a throw-away qmqpd instance and Postfix's qmqp-sink/qmqp-source."""
    _install(session)
    _require_postfix_in_ci(session, FAKETIME)
    session.run("pytest", "-m", "postfix", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check ."""
    # The ruff of the dev extra: an unpinned one brings new rules that fail a clean CI run.
    session.install(RUFF)
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict, on trio's own inline types."""
    _install(session)
    # trio's own inline types, which trio-typing's stubs would shadow: none installed.
    session.run("python", "-m", "tests.trio_own_types")
    session.run("mypy", "--strict")


def _install_as_users_do(session: nox.Session) -> None:
    """A plain (not editable) install, compiled by pip, as a user's is: what the bench times.

    An editable install adds its import hook to every start (~12 ms), and where
    PYTHONDONTWRITEBYTECODE is set it compiles every module of ours at every start.
    """
    _require_supported_python(session)
    session.install(".")
    session.install("--no-deps", "--force-reinstall", ".")  # this tree's code, every time


@nox.session
def bench(session: nox.Session) -> None:
    """Ours beside Postfix's qmqp-source, as ratios; writes benchmarks/RESULTS.md."""
    _install_as_users_do(session)
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session
def bench_smoke(session: nox.Session) -> None:
    """The benchmark at a tiny size, so that it keeps working; its numbers are not judged."""
    _install_as_users_do(session)
    _require_postfix_in_ci(session)
    session.run("python", "benchmarks/bench.py", "--tiny")


@nox.session
def docs(session: nox.Session) -> None:
    """The manual: the man pages made again from the commands and docs/ (in CI only checked:
    a stale page fails), then the site, `mkdocs build --strict` (a warning fails) into site/."""
    _require_supported_python(session)
    session.install("-e", ".[docs]")
    session.run("python", "-m", "tools.manpages", *(["--check"] if IN_CI else []))
    session.run("mkdocs", "build", "--strict")
