"""Every developer and integration task: `nox` runs the default set (README's test command)."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["tests", "interop", "lint", "typecheck", "bench_smoke"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
POSTFIX_TOOLS = ("/usr/sbin/qmqp-source", "/usr/sbin/qmqp-sink", "/usr/lib/postfix/sbin/qmqpd")
# The interop suite fakes a day below 10 for Postfix's qmqp-source with it (the Date header).
FAKETIME = "faketime"


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


def _require_postfix_in_ci(session: nox.Session, *also: str) -> None:
    """Locally a missing Postfix skips its tests; in CI that would hide a broken install."""
    missing = [tool for tool in (*POSTFIX_TOOLS, *also) if not shutil.which(tool)]
    if missing and os.environ.get("CI"):
        session.error(f"CI must have Debian's postfix and faketime installed; missing: "
                      f"{', '.join(missing)}")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and end-to-end tests (in-test servers; Postfix's tools where they help)."""
    _install(session)
    _require_postfix_in_ci(session)
    session.run("pytest", "-m", "not postfix", *session.posargs)


@nox.session(python=PYTHON)
def interop(session: nox.Session) -> None:
    """Against real Postfix: a throw-away qmqpd instance and Postfix's qmqp-sink/qmqp-source."""
    _install(session)
    _require_postfix_in_ci(session, FAKETIME)
    session.run("pytest", "-m", "postfix", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    _install(session)
    session.run("mypy", "--strict")


def _install_as_users_do(session: nox.Session) -> None:
    """A plain (not editable) install, compiled by pip, as a user's is: what the bench times.

    An editable install adds its import hook to every start (~12 ms), and where
    PYTHONDONTWRITEBYTECODE is set it compiles every module of ours at every start.
    """
    session.install(".")
    session.install("--no-deps", "--force-reinstall", ".")  # this tree's code, every time


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Ours beside Postfix's qmqp-source, as ratios; writes benchmarks/RESULTS.md."""
    _install_as_users_do(session)
    session.run("python", "benchmarks/bench.py", *session.posargs)


@nox.session(python=PYTHON)
def bench_smoke(session: nox.Session) -> None:
    """The benchmark at a tiny size, so that it keeps working; its numbers are not judged."""
    _install_as_users_do(session)
    _require_postfix_in_ci(session)
    session.run("python", "benchmarks/bench.py", "--tiny")
