"""What the manual (docs/) says about our commands, the API and the project, checked by
running them or against what they stand for."""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.core
import typer.main

from qmqpsource import __version__
from tests.docs_run import free_port, shell
from tests.docs_support import DOCS, README, ROOT, fenced_blocks, nav, page, section

POSTFIX = {"qmqp-source": "/usr/sbin/qmqp-source", "qmqp-sink": "/usr/sbin/qmqp-sink"}


INDEX = page("index.md")
SYNOPSIS_PAGES = {"qmqp-source": "qmqp-source.md", "qmqp-sink": "qmqp-sink.md",
                  "qmqp-report": "qmqp-report.md"}
# Each command's typer app (qmqpsource's __main__ runs qmqpsource.cli.source's).
CLI_MODULES = {"qmqp-source": "qmqpsource.cli.source", "qmqp-sink": "qmqpsource.cli.sink",
               "qmqp-report": "qmqpsource.cli.report"}


def module_forms() -> dict[str, str]:
    """The overview's table of module forms: command -> module."""
    rows = re.findall(r"^\| `(qmqp-[a-z]+)` \| `python -m ([\w.]+)` \|$", INDEX, re.M)
    return dict(rows)


def test_the_overview_gives_a_module_form_for_each_command() -> None:
    assert sorted(module_forms()) == ["qmqp-report", "qmqp-sink", "qmqp-source"]


@pytest.mark.parametrize(("command", "module"), sorted(module_forms().items()))
def test_module_forms_run_ours(command: str, module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{command} {__version__}\n", "")
    # Each command's page shows its module form in the synopsis too.
    assert f"\npython -m {module} [" in page(SYNOPSIS_PAGES[command])


@pytest.mark.postfix
@pytest.mark.parametrize("command", sorted(POSTFIX))
def test_postfix_commands_refuse_version_as_the_manual_says(command: str) -> None:
    if shutil.which(POSTFIX[command]) is None:
        pytest.skip("Postfix's tools are missing: apt-get install postfix (CI installs it)")
    done = subprocess.run([POSTFIX[command], "--version"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert f"{command}: invalid option -- '-'" in done.stderr
    if command == "qmqp-sink":  # the overview quotes what Postfix's sink answers
        assert re.search(r"answers\s+`qmqp-sink: invalid option -- '-'`", INDEX)


# The Performance page's figures come from benchmarks/RESULTS.md, written by one `nox -s bench`.
RESULTS = (ROOT / "benchmarks" / "RESULTS.md").read_text()


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


def test_performance_names_the_bench_run_its_figures_come_from() -> None:
    stamp = RESULTS.split("\n\n")[1]  # "DATE, MACHINE."
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, .+ CPUs, Python \d", stamp), stamp
    assert flat(stamp) in flat(page("performance.md"))


def test_performance_ratios_are_every_row_of_the_bench_table() -> None:
    results_table = RESULTS.split("\n## ")[0]  # the main table, before any other section
    assert ratios(page("performance.md")) == ratios(results_table)
    assert len(ratios(results_table)) >= 8


def test_performance_figures_are_all_in_the_results() -> None:
    figures = re.findall(r"(?<![\w.])\d+\.\d+(?![\d.])", page("performance.md"))
    assert figures
    missing = [figure for figure in figures if figure not in RESULTS]
    assert missing == [], f"in docs/performance.md but not in benchmarks/RESULTS.md: {missing}"


def test_quick_start_is_the_command_the_bench_runs() -> None:
    from benchmarks.bench import QUICK_START

    command = f"pip install . && {' '.join(QUICK_START)}\n"
    assert command in section(README, "## Set-up")
    assert command in page("getting-started.md")


def test_quick_start_output_is_the_bench_run() -> None:
    from benchmarks.bench import QUICK_START_HEADING

    if f"\n{QUICK_START_HEADING}\n" not in RESULTS:
        pytest.skip("benchmarks/RESULTS.md predates the bench's quick-start run: run "
                    "`nox -s bench`, and copy its quick-start summary into the manual")
    theirs = re.search(r"```text\n(.*?)\n```", section(RESULTS, QUICK_START_HEADING), re.S)
    ours = re.search(r"```text\n(.*?)\n```", page("getting-started.md"), re.S)
    assert theirs is not None and ours is not None
    assert ours[1] == theirs[1]


def test_layout_names_every_module_with_a_line_on_it() -> None:
    development = page("development.md")
    layout = development[development.index("\n## Layout\n"):]
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


def api_example(first_line: str) -> str:
    """The Python API page's example that starts with ``first_line``."""
    [block] = [block.body for block in fenced_blocks(DOCS / "api.md")
               if block.lang == "python" and block.first_line == first_line]
    return block


def run_example(example: str, timeout: float = 120) -> str:
    """What the example prints; it must exit 0."""
    done = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def said(example: str, line: str) -> str:
    """What the example's comment after ``line`` says it prints."""
    [comment] = re.findall(rf"^\s*{re.escape(line)}  # (.*)$", example, re.M)
    return str(comment)


def test_api_example_runs_and_prints_what_it_says() -> None:
    example = api_example("import trio")
    counts, verdicts = run_example(example).splitlines()
    # The seeded faults give the same counts every run: those the comment shows.
    shown = re.search(r"print\(result\.counts\)  # (Counts\(.*), \.\.\.\)", example)
    assert shown is not None and counts.startswith(shown[1])
    assert [(check, ok) for check, _, ok in ast.literal_eval(verdicts)] == [
        ("p99<1s", True), ("failed<20%", True)]


def test_run_load_sync_example_runs_against_a_sink(tmp_path: Path) -> None:
    example = api_example("from qmqpsource import SourceConfig, run_load_sync")
    assert_runs_against_a_sink(example, tmp_path)


@pytest.mark.once
def test_the_workers_example_runs_against_a_sink(tmp_path: Path) -> None:
    example = api_example("# Two worker processes share the load; its result is theirs, merged.")
    printed = run_against_a_sink(example, tmp_path)
    assert printed.split() == said(example, "print(result.workers, result.counts.accepted, "
                                   "result.ok)").split() == ["2", "2000", "True"]


def test_the_embedded_sink_example_prints_the_sinks_counts() -> None:
    example = api_example("# A qmqp-sink of its own in a child process, as qmqp-source "
                          "--embedded-sink starts one.")
    # The sink's seeded faults: the same tempfails every run, those the comment shows.
    line = 'print(result.counts.tempfail, result.sink["replies"])'
    assert run_example(example).strip() == said(example, line)


def test_the_stop_example_interrupts_the_load() -> None:
    example = api_example("# Stop a load from outside it, as Ctrl-C stops qmqp-source.")
    counted, ended = run_example(example).splitlines()
    assert re.fullmatch(r"accepted after a second: \d+", counted)
    assert ended == said(example, "print(result.status, result.counts.attempted < 1_000_000)")
    assert ended == "interrupted True"


@pytest.mark.once
def test_the_find_rate_example_answers_the_highest_rate_that_held() -> None:
    """The steps' rates and verdicts are the machine's; what holds whatever they are: the
    steps start at the rate given, and the answer is the highest rate that held."""
    example = api_example("# The highest rate at which every check holds, as qmqp-source "
                          "--find-rate searches it.")
    *steps, answer = [line.split() for line in run_example(example, timeout=300).splitlines()]
    assert steps and float(steps[0][0]) == 100.0
    assert {verdict for *_, verdict in steps} <= {"held", "failed", "sessions"}
    held = [float(rate) for rate, _, verdict in steps if verdict == "held"]
    rate, stopped = answer[0], " ".join(answer[1:])
    assert (float(rate) == max(held)) if held else rate == "None"
    assert stopped in ("bracket", "step cap", "sessions", "first step failed")


def run_against_a_sink(example: str, tmp_path: Path) -> str:
    """What an example prints with its 127.0.0.1:6280 a sink of the test's own."""
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
        return run_example(example.replace("127.0.0.1:6280", address))
    finally:
        sink.terminate()
        sink.wait(timeout=30)


def assert_runs_against_a_sink(example: str, tmp_path: Path) -> None:
    """The run_load_sync example, its 127.0.0.1:6280 a sink of the test's own."""
    accepted, p99, held = run_against_a_sink(example, tmp_path).split()
    assert (accepted, held) == ("100", "True") and float(p99) > 0


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    assert sorted(nav()) == sorted(path.name for path in DOCS.glob("*.md"))


def command_of(module: str) -> typer.core.TyperCommand:
    command = typer.main.get_command(importlib.import_module(module).app)
    assert isinstance(command, typer.core.TyperCommand)
    return command


@pytest.mark.parametrize("command", sorted(CLI_MODULES))
def test_every_option_is_on_its_commands_page(command: str) -> None:
    """Each name of each option (--help's) on the command's page: one the manual misses
    fails here, with its name."""
    text = page(SYNOPSIS_PAGES[command])
    names = [name for param in command_of(CLI_MODULES[command]).params
             if param.param_type_name == "option"
             for name in [*param.opts, *param.secondary_opts]]
    assert names
    assert [name for name in names if not re.search(rf"`{re.escape(name)}[ `]", text)] == []


def test_synopses_are_the_commands_usage() -> None:
    """Each synopsis line of a command's page is in its --help or its usage line, and its
    python -m line names its module form."""
    forms = module_forms()
    for command, name in SYNOPSIS_PAGES.items():
        module = CLI_MODULES[command]
        helped = subprocess.run([sys.executable, "-m", forms[command], "--help"],
                                capture_output=True, text=True, timeout=60, check=True).stdout
        usage = str(importlib.import_module(module).USAGE).removeprefix("usage: ")
        synopsis = fenced_blocks(DOCS / name)[0].body.splitlines()
        for line in synopsis:
            if line.startswith("python -m "):
                assert line.startswith(f"python -m {forms[command]} ")
            else:
                assert line in helped or line == usage, f"{name}: {line}"


def test_the_find_rate_transcript_is_our_table() -> None:
    """The worked example's table, as our code writes those steps (the search itself runs
    against Postfix, as root, for minutes: tests/cli/test_findrate_cli.py runs searches)."""
    from qmqpsource.results.findrate import table
    from tests.report.synthetic import find_rate

    [transcript] = [block.body for block in fenced_blocks(DOCS / "find-rate.md")
                    if block.lang == "text"]
    assert transcript.split("\n", 1)[1] + "\n" == table("qmqp-source", find_rate())


def test_the_apt_get_line_is_what_ci_installs() -> None:
    [line] = [block.body for block in fenced_blocks(DOCS / "development.md")
              if "apt-get install" in block.body]
    packages = set(line.split("-y ")[1].split())
    ci = (ROOT / ".ci" / "run").read_text()
    installed = re.search(r"apt-get install -y --no-install-recommends ([^\n]*)", ci)
    assert installed is not None
    assert packages <= set(installed[1].split())


def test_nox_commands_name_sessions_and_tests_that_exist() -> None:
    sessions = set(re.findall(r"^def (\w+)\(session: nox.Session\)",
                              (ROOT / "noxfile.py").read_text(), re.M))
    lines = [line for name in ("development.md", "performance.md")
             for block in fenced_blocks(DOCS / name) if block.lang == "sh"
             for line in block.body.splitlines() if line.startswith("nox ")]
    assert len(lines) == 4
    for line in lines:
        words = line.split()
        assert words[2] in sessions, line
        tests = words[words.index("--") + 1:] if "--" in words else []
        if tests:
            assert (ROOT / tests[0]).is_file(), line
        if "-k" in tests:
            assert tests[tests.index("-k") + 1] in (ROOT / tests[0]).read_text(), line


def test_the_fatal_lines_are_worded_by_our_code(tmp_path: Path) -> None:
    """The fatal lines a sink can make us print, each in the shape of one of the page's
    (TEXT and DETAIL stand for any words); the rest need a server that breaks the
    protocol, which tests/source's do."""
    [listed] = [block.body for block in fenced_blocks(DOCS / "output.md")
                if block.first_line.startswith("qmqp-source: fatal:")]
    patterns = [pattern for line in listed.splitlines() for pattern in _line_patterns(line)]
    printed = []
    with shell(tmp_path) as reader:
        for faults in ("--tempfail 1", "--reject 1", "--drop 1", "--hang 1"):
            reader.serve(f"qmqp-sink {faults} 127.0.0.1:6280 16 &")
            printed.append(reader.run("qmqp-source --timeout 1 127.0.0.1:6280").stdout)
            reader.servers.pop().stop()
        printed.append(reader.run("qmqp-source -m 0 127.0.0.1:6280").stdout)
        port = free_port()
        printed.append(reader.run(f"qmqp-source 127.0.0.1:{port}").stdout)
    for line in printed:
        assert any(re.fullmatch(pattern, line.strip()) for pattern in patterns), line
    assert printed[-1] == f"qmqp-source: fatal: connect to 127.0.0.1:{port}: Connection refused\n"


def _line_patterns(line: str) -> list[str]:
    """A listed line as patterns: TEXT and DETAIL any words, ... anything, and one line
    for each step of "timeout while STEP (also: STEP, STEP)"."""
    listed, _, note = re.sub(r"\s{2,}\(", "\0(", line).partition("\0")
    steps = note.removeprefix("(also: ").removesuffix(")").split(", ") if "also:" in note else []
    variants = [listed, *(listed.rsplit("while ", 1)[0] + "while " + step for step in steps)]
    return [re.escape(variant).replace("TEXT", ".+").replace("DETAIL", ".+")
            .replace("ADDRESS", r"\S+").replace(r"\.\.\.", ".*") for variant in variants]


def test_the_files_the_manual_names_exist() -> None:
    """Paths in the repository that a page names in code (tests/..., deploy/...)."""
    named = {path for name in nav()
             for path in re.findall(r"`((?:tests|benchmarks|deploy|tools|docs|man)/[\w./-]+)`",
                                    page(name))}
    assert len(named) > 10
    assert sorted(path for path in named if not (ROOT / path).exists()) == []
