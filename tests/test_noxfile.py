"""noxfile.py: sessions on the Python that runs nox; with CI set, the tests on 3.11 and 3.13."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent

# What the noxfile sets, read in a process of its own (nox's registry and options are global).
READ = """
import json, nox, noxfile
print(json.dumps({
    "pythons": {name: getattr(noxfile, name).python
                for name in ("tests", "interop", "lint", "typecheck", "bench_smoke", "bench",
                             "docs")},
    "sessions": nox.options.sessions,
    "envdir": nox.options.envdir,
    "download_python": getattr(nox.options, "download_python", None),
    "error_on_missing_interpreters": nox.options.error_on_missing_interpreters,
}))
"""


def read_noxfile(ci: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    done = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    value: dict[str, Any] = json.loads(done.stdout)
    return value


def test_locally_every_session_runs_on_noxs_own_python() -> None:
    read = read_noxfile(ci=False)
    assert set(read["pythons"].values()) == {None}  # None: the interpreter nox runs on
    assert read["envdir"] == f".nox/python{sys.version_info[0]}.{sys.version_info[1]}"


def test_nox_alone_builds_the_docs_too() -> None:
    assert read_noxfile(ci=True)["sessions"] == [
        "tests", "interop", "lint", "typecheck", "bench_smoke", "docs"]


def test_in_ci_the_tests_run_on_311_and_313_and_none_is_fetched() -> None:
    read = read_noxfile(ci=True)
    assert read["pythons"]["tests"] == ["3.11", "3.13"]
    assert read["error_on_missing_interpreters"] is True
    assert read["download_python"] == "never"


def test_pyenv_bins_are_the_newest_patch_of_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("3.11.2", "3.11.10", "3.11.9", "3.13.0", "3.13.1t", "3.13-dev", "3.12.1"):
        python = version.rstrip("t").split("-")[0][:4]
        (tmp_path / "versions" / version / "bin").mkdir(parents=True)
        (tmp_path / "versions" / version / "bin" / f"python{python}").touch()
    (tmp_path / "versions" / "3.13.5" / "bin").mkdir(parents=True)  # no python3.13 in it
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)  # importing it in CI would append to PATH
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))
    import noxfile

    assert noxfile._pyenv_bins(["3.11", "3.13", "3.14"]) == [
        str(tmp_path / "versions" / "3.11.10" / "bin"),
        str(tmp_path / "versions" / "3.13.0" / "bin"),
    ]
