"""What the README tells a newcomer about our commands and the API, checked by running them."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qmqpsource import __version__
from tests.readme_support import README, python_blocks, section

POSTFIX = {"qmqp-source": "/usr/sbin/qmqp-source", "qmqp-sink": "/usr/sbin/qmqp-sink"}


def module_forms() -> dict[str, str]:
    """The README's table of module forms: command -> module."""
    rows = re.findall(r"^\| `(qmqp-[a-z]+)` \| `python -m ([\w.]+)` \|$", README, re.M)
    return dict(rows)


def test_readme_gives_a_module_form_for_each_command() -> None:
    assert sorted(module_forms()) == ["qmqp-report", "qmqp-sink", "qmqp-source"]


@pytest.mark.parametrize(("command", "module"), sorted(module_forms().items()))
def test_module_forms_run_ours(command: str, module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{command} {__version__}\n", "")
    # Each section's synopsis shows its module form too.
    assert f"python -m {module} [" in README


@pytest.mark.postfix
@pytest.mark.parametrize("command", sorted(POSTFIX))
def test_postfix_commands_refuse_version_as_the_readme_says(command: str) -> None:
    if shutil.which(POSTFIX[command]) is None:
        pytest.skip("Postfix's tools are missing: apt-get install postfix (CI installs it)")
    done = subprocess.run([POSTFIX[command], "--version"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert f"{command}: invalid option -- '-'" in done.stderr
    if command == "qmqp-sink":  # the README quotes what Postfix's sink answers
        assert re.search(r"answers\s+`qmqp-sink: invalid option -- '-'`", README)


# The README's figures come from benchmarks/RESULTS.md, which one `nox -s bench` run writes.
RESULTS = (Path(__file__).parent.parent / "benchmarks" / "RESULTS.md").read_text()


def flat(text: str) -> str:
    return " ".join(text.split())


def ratios(text: str) -> list[tuple[str, str]]:
    """(work, ratio ours/Postfix) of each row of the table whose columns start so."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 2 and re.fullmatch(r"\d+\.\d\d", cells[-1]):
            rows.append((cells[0], cells[-1]))
        elif line.startswith("| ") and len(cells) >= 8 and re.fullmatch(r"\d+\.\d\d", cells[3]):
            rows.append((cells[0], cells[3]))
    return rows


def test_readme_names_the_bench_run_its_figures_come_from() -> None:
    stamp = RESULTS.split("\n\n")[1]  # "DATE, MACHINE."
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, .+ CPUs, Python \d", stamp), stamp
    assert flat(stamp) in flat(section(README, "## Performance"))


def test_readme_ratios_are_every_row_of_the_bench_table() -> None:
    results_table = RESULTS.split("\n## ")[0]  # the main table, before any other section
    assert ratios(section(README, "## Performance")) == ratios(results_table)
    assert len(ratios(results_table)) >= 8


def test_readme_performance_figures_are_all_in_the_results() -> None:
    figures = re.findall(r"(?<![\w.])\d+\.\d+(?![\d.])", section(README, "## Performance"))
    assert figures
    missing = [figure for figure in figures if figure not in RESULTS]
    assert missing == [], f"in README's Performance but not in benchmarks/RESULTS.md: {missing}"


def test_readme_quick_start_is_the_command_the_bench_runs() -> None:
    from benchmarks.bench import QUICK_START

    assert f"qmqp-source {' '.join(QUICK_START)}" in section(README, "## Quick start")


def test_readme_quick_start_output_is_the_bench_run() -> None:
    from benchmarks.bench import QUICK_START_HEADING

    if f"\n{QUICK_START_HEADING}\n" not in RESULTS:
        pytest.skip("benchmarks/RESULTS.md predates the bench's quick-start run: run "
                    "`nox -s bench`, and copy its quick-start summary into the README")
    theirs = re.search(r"```text\n(.*?)\n```", section(RESULTS, QUICK_START_HEADING), re.S)
    ours = re.search(r"```text\n(.*?)\n```", section(README, "## Quick start"), re.S)
    assert theirs is not None and ours is not None
    assert ours[1] == theirs[1]


def test_readme_layout_names_every_module_with_a_line_on_it() -> None:
    layout = README[README.index("\nLayout:\n"):]
    layout = layout[: layout.index("\n```\n", layout.index("```text"))]
    package = Path(__file__).parent.parent / "qmqpsource"
    folder = ""
    named: set[str] = set()
    for line in layout.splitlines():
        match = re.match(r"^(  +)(\S+)\s{2,}\S", line)  # a name, then what it does
        if not match:
            continue
        name = match[2]
        if len(match[1]) == 2:  # top level of the package
            folder = name if name.endswith("/") else ""
            named.add(name.rstrip("/") if name.endswith("/") else name)
        else:
            named.add(folder + name)
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")
               if p.name != "__init__.py" or p.parent == package}
    assert sorted(modules - named) == []


def test_readme_api_example_runs_and_prints_what_it_says() -> None:
    example = python_blocks(section(README, "## Python API"))[0]
    done = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    counts, verdicts = done.stdout.splitlines()
    # The seeded faults give the same counts every run: those the comment shows.
    said = re.search(r"print\(result\.counts\)  # (Counts\(.*), \.\.\.\)", example)
    assert said is not None and counts.startswith(said[1])
    assert [(check, ok) for check, _, ok in ast.literal_eval(verdicts)] == [
        ("p99<1s", True), ("failed<20%", True)]


def test_readme_run_load_sync_example_runs_against_a_sink(tmp_path: Path) -> None:
    example = python_blocks(section(README, "## Python API"))[1]
    assert example.count("127.0.0.1:6280") == 1
    ready = tmp_path / "ready"
    sink = subprocess.Popen([sys.executable, "-m", "qmqpsource.cli.sink", "--ready-file",
                             str(ready), "127.0.0.1:0", "5"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30  # a bound on the wait, not a timed assertion
        while not ready.exists():
            assert sink.poll() is None and time.monotonic() < deadline, "no sink listens"
            time.sleep(0.02)
        address = ready.read_text().split()[0]
        done = subprocess.run([sys.executable, "-c", example.replace("127.0.0.1:6280", address)],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        sink.terminate()
        sink.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    accepted, p99, held = done.stdout.split()
    assert (accepted, held) == ("100", "True") and float(p99) > 0
