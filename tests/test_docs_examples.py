"""Every fenced example of README.md and the manual is tested: COVERED names, for each one,
the test that runs it or checks what it says, and the first test fails for an example in
no entry (a new one) or an entry for no example (one that changed or went). The tests
here run the shell examples and transcripts (see docs_run.py)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from tests.docs_run import commands, same_shape, shell, steps
from tests.docs_support import ROOT, Block, example_files, fenced_blocks

HERE = "tests/test_docs_examples.py"
DOCS_TESTS = "tests/test_docs.py"
README_TESTS = "tests/test_readme.py"
MANIFESTS = "tests/deploy/test_manifests.py"

# (file, the block's first line) -> the test that covers it.
COVERED: dict[tuple[str, str], str] = {
    ("README.md", "pip install . && qmqpsource source --embedded-sink -s 20 -m 10000"):
        f"{HERE}::test_the_quick_start_runs",
    ("README.md", "pip install nox && nox"): f"{README_TESTS}::test_ci_runs_the_test_command",
    ("README.md", "qmqpsource sink 127.0.0.1:6280 1024 &"):
        f"{README_TESTS}::test_the_examples_run",
    ("README.md", "from qmqpsource import SourceConfig, run_load_sync"):
        f"{README_TESTS}::test_the_api_example_runs_against_a_sink",
    ("docs/api.md", "import trio"): f"{DOCS_TESTS}::test_api_example_runs_and_prints_what_it_says",
    ("docs/api.md", "from qmqpsource import SourceConfig, run_load_sync"):
        f"{DOCS_TESTS}::test_run_load_sync_example_runs_against_a_sink",
    ("docs/api.md", "# Two worker processes share the load; its result is theirs, merged."):
        f"{DOCS_TESTS}::test_the_workers_example_runs_against_a_sink",
    ("docs/api.md", "# A qmqp-sink of its own in a child process, as qmqp-source "
     "--embedded-sink starts one."):
        f"{DOCS_TESTS}::test_the_embedded_sink_example_prints_the_sinks_counts",
    ("docs/api.md", "# Stop a load from outside it, as Ctrl-C stops qmqp-source."):
        f"{DOCS_TESTS}::test_the_stop_example_interrupts_the_load",
    ("docs/api.md", "# The highest rate at which every check holds, as qmqp-source "
     "--find-rate searches it."):
        f"{DOCS_TESTS}::test_the_find_rate_example_answers_the_highest_rate_that_held",
    ("docs/checks.md", "$ qmqp-source --check 'p99<1s' --check 'failed<1%' --check "
     "'rate>=100000' --embedded-sink -m 200 -s 4"): f"{HERE}::test_transcripts_of_their_own",
    ("docs/development.md", "DEBIAN_FRONTEND=noninteractive apt-get install -y postfix "
     "faketime chromium groff-base man-db"):
        f"{DOCS_TESTS}::test_the_apt_get_line_is_what_ci_installs",
    ("docs/development.md", "nox -s tests -- tests/test_protocol.py"):
        f"{DOCS_TESTS}::test_nox_commands_name_sessions_and_tests_that_exist",
    ("docs/development.md", "qmqpsource/"):
        f"{DOCS_TESTS}::test_layout_names_every_module_with_a_line_on_it",
    ("docs/find-rate.md", "qmqp-source --find-rate --check 'p99<200ms' --check 'failed==0' "
     "-s 200 --connect-limit 200 127.0.0.1:6280"):
        "tests/cli/test_findrate_cli.py::test_finds_the_capacity_of_a_sink",
    ("docs/find-rate.md", "python -c 'import time; from tests.postfix_support import "
     "PostfixInstance"): "tests/test_postfix_support.py::test_qmqp_source_into_qmqpd",
    ("docs/find-rate.md", "$ qmqp-source --find-rate --check 'p99<200ms' --check 'failed==0' "
     "-s 200 --connect-limit 200 --step-duration 5 --rate 200 127.0.0.1:PORT"):
        f"{DOCS_TESTS}::test_the_find_rate_transcript_is_our_table",
    ("docs/getting-started.md",
     "pip install . && qmqpsource source --embedded-sink -s 20 -m 10000"):
        f"{HERE}::test_the_quick_start_runs",
    ("docs/getting-started.md", "0.483 s, 10000 messages: 10000 accepted, 0 tempfail, "
     "0 permfail, 0 error"): f"{DOCS_TESTS}::test_quick_start_output_is_the_bench_run",
    ("docs/getting-started.md", "pip install nox && nox"):
        f"{README_TESTS}::test_ci_runs_the_test_command",
    ("docs/kubernetes.md", "podman build -f deploy/Containerfile -t "
     "registry.example.com/qmqpsource:0.1.0 ."):
        f"{MANIFESTS}::test_the_image_is_built_from_what_the_package_build_reads",
    ("docs/kubernetes.md", "# One load from SHARD_COUNT pods: an Indexed Job whose pod I runs "
     "shard I of SHARD_COUNT"): f"{MANIFESTS}::test_the_manual_shows_the_manifests_as_they_are",
    ("docs/kubernetes.md", "kubectl apply -f deploy/results-pvc.yaml"):
        f"{MANIFESTS}::test_the_kubectl_steps_name_the_manifests",
    ("docs/kubernetes.md", "kubectl apply -f deploy/report-job.yaml"):
        f"{MANIFESTS}::test_the_kubectl_steps_name_the_manifests",
    ("docs/kubernetes.md", "# Once every pod of qmqp-load has ended: merge the shards' results "
     "into one, judge it with"): f"{MANIFESTS}::test_the_manual_shows_the_manifests_as_they_are",
    ("docs/load-shapes.md", "qmqp-source -s 20 -m 10000 127.0.0.1:6280"):
        f"{HERE}::test_the_options_and_load_shapes_examples_run",
    ("docs/load-shapes.md", "$ qmqp-source --embedded-sink --sink-options '--delay 0.05' "
     "--rate 200 --duration 2 -s 5"): f"{HERE}::test_transcripts_of_their_own",
    ("docs/load-shapes.md", "$ qmqp-source --duration 3 --interval 1 -s 4 127.0.0.1:6280"):
        f"{HERE}::test_transcripts_against_the_options_sink",
    ("docs/nox-load-tests.md", '"""noxfile.py of a mail-server project: `nox -s load` fails '
     'when the server falls short."""'):
        "tests/test_docs_recipe.py::test_the_recipe_fails_the_session_on_a_failed_check",
    ("docs/nox-load-tests.md", "$ nox -s load"):
        "tests/test_docs_recipe.py::test_the_recipe_fails_the_session_on_a_failed_check",
    ("docs/output.md", "qmqp-source: fatal: recoverable error: TEXT                "
     "(a Z reply)"): f"{DOCS_TESTS}::test_the_fatal_lines_are_worded_by_our_code",
    ("docs/output.md", "$ qmqp-source -A --timeout 2 -s 10 -m 1000 127.0.0.1:6282"):
        f"{HERE}::test_the_broken_server_transcripts",
    ("docs/performance.md", "nox -s bench"):
        f"{DOCS_TESTS}::test_nox_commands_name_sessions_and_tests_that_exist",
    ("docs/pytest-plugin.md", "import pytest"):
        "tests/test_pytest_plugin.py::test_the_manual_examples_pass",
    ("docs/pytest-plugin.md", "from qmqpsource import SourceConfig, run_load_sync"):
        "tests/test_pytest_plugin.py::test_the_manual_sync_example_passes_without_pytest_trio",
    ("docs/qmqp-report.md", "qmqp-report [-q] [--json PATH] [--html PATH] [--check EXPR]... "
     "[--merge-anyway] FILE..."): f"{DOCS_TESTS}::test_synopses_are_the_commands_usage",
    ("docs/qmqp-report.md", "qmqp-report results/*.json --json merged.json"):
        f"{HERE}::test_the_report_examples_run",
    ("docs/qmqp-report.md", "qmqp-source --embedded-sink -q -s 10 --duration 15 --interval "
     "0.5 \\"): f"{HERE}::test_the_html_example_runs",
    ("docs/qmqp-sink.md", "qmqp-sink [-46cv] [-x time] [options] [inet:][host]:port backlog"):
        f"{DOCS_TESTS}::test_synopses_are_the_commands_usage",
    ("docs/qmqp-sink.md", "$ qmqp-sink --delay 0.1-0.3 127.0.0.1:6281 1024"):
        f"{HERE}::test_the_slow_server_transcript",
    ("docs/qmqp-sink.md", "$ qmqp-sink --tempfail 0.05 --reject 0.02 --drop 0.02 --hang 0.01 "
     "--timeout 10 --seed 7 127.0.0.1:6282 1024"): f"{HERE}::test_the_broken_server_transcripts",
    ("docs/qmqp-sink.md", "^Cqmqp-sink: 1024 connections, 1024 messages, 1024 recipients, "
     "1079296 bytes in 9.030 s (113.4 msg/s)"): f"{HERE}::test_the_broken_server_transcripts",
    ("docs/qmqp-sink.md", "$ qmqp-sink --maildir ./Maildir --json sink.json 127.0.0.1:6283 "
     "1024"): f"{HERE}::test_the_maildir_transcript_and_its_json",
    ("docs/qmqp-sink.md", "/usr/sbin/qmqp-source -s 10 -m 2000 127.0.0.1:6283"):
        f"{HERE}::test_postfixs_source_against_the_maildir_sink",
    ("docs/qmqp-sink.md", "{"): f"{HERE}::test_the_maildir_transcript_and_its_json",
    ("docs/qmqp-source.md", "qmqp-source [options] [inet:]host[:port]"):
        f"{DOCS_TESTS}::test_synopses_are_the_commands_usage",
    ("docs/qmqp-source.md", "qmqp-sink :6280 1024 &"):
        f"{HERE}::test_the_options_and_load_shapes_examples_run",
    ("docs/qmqp-source.md", "qmqp-source -t \"$(printf 'caf\\351@example.com')\" -m 1 "
     "127.0.0.1:6280"): f"{HERE}::test_the_options_and_load_shapes_examples_run",
    ("docs/several-hosts.md", "$ qmqp-source --embedded-sink --workers 2 -s 20 -m 10000"):
        f"{HERE}::test_transcripts_of_their_own",
    ("docs/several-hosts.md", "qmqp-report results/*.json --json merged.json"):
        f"{HERE}::test_transcripts_against_the_options_sink",
    ("docs/several-hosts.md", "$ mkdir -p results"):
        f"{HERE}::test_transcripts_against_the_options_sink",
}


def every_block() -> list[Block]:
    return [block for path in example_files() for block in fenced_blocks(path)]


def the_block(where: str, first_line: str) -> str:
    [block] = [block.body for block in fenced_blocks(ROOT / where)
               if block.first_line == first_line]
    return block


def test_every_example_is_covered_by_a_test_that_exists() -> None:
    keys = [(block.where, block.first_line) for block in every_block()]
    assert sorted(set(keys) - set(COVERED)) == [], "examples no test covers: add them here"
    assert sorted(set(COVERED) - set(keys)) == [], "entries for examples that are no more"
    for test in set(COVERED.values()):
        path, name = test.split("::")
        defined = {node.name for node in ast.walk(ast.parse((ROOT / path).read_text()))
                   if isinstance(node, ast.FunctionDef)}
        assert name in defined, f"{test}: no such test"


def test_the_quick_start_runs(tmp_path: Path) -> None:
    """The part after `pip install .`: the bench runs it too, but only in its own session."""
    [command] = commands(the_block("README.md", "pip install . && qmqpsource source "
                                   "--embedded-sink -s 20 -m 10000"))
    with shell(tmp_path) as reader:
        done = reader.run(command.split(" && ")[1])
    assert done.returncode == 0, done.stdout
    assert "10000 messages: 10000 accepted" in done.stdout
    assert done.stdout.rstrip().endswith("(agrees)")


@pytest.mark.once
def test_the_options_and_load_shapes_examples_run(tmp_path: Path) -> None:
    with shell(tmp_path) as reader:
        reader.block(the_block("docs/qmqp-source.md", "qmqp-sink :6280 1024 &"))
        reader.block(the_block("docs/qmqp-source.md", "qmqp-source -t \"$(printf "
                               "'caf\\351@example.com')\" -m 1 127.0.0.1:6280"))
        reader.block(the_block("docs/load-shapes.md", "qmqp-source -s 20 -m 10000 127.0.0.1:6280"))
        said = reader.servers[0].stop()
    assert "10101 messages" in said  # 1, 10000 and 100: every run reached it


@pytest.mark.parametrize("example", [
    ("docs/checks.md", "$ qmqp-source --check 'p99<1s' --check 'failed<1%' --check "
     "'rate>=100000' --embedded-sink -m 200 -s 4"),
    ("docs/load-shapes.md", "$ qmqp-source --embedded-sink --sink-options '--delay 0.05' "
     "--rate 200 --duration 2 -s 5"),
    ("docs/several-hosts.md", "$ qmqp-source --embedded-sink --workers 2 -s 20 -m 10000"),
], ids=["checks", "rate", "workers"])
def test_transcripts_of_their_own(tmp_path: Path, example: tuple[str, str]) -> None:
    """Transcripts that start their own sink (--embedded-sink)."""
    with shell(tmp_path) as reader:
        reader.transcript(the_block(*example))


@pytest.mark.parametrize("example", [
    ("docs/load-shapes.md", "$ qmqp-source --duration 3 --interval 1 -s 4 127.0.0.1:6280"),
    ("docs/several-hosts.md", "$ mkdir -p results"),
], ids=["duration", "shards"])
def test_transcripts_against_the_options_sink(tmp_path: Path, example: tuple[str, str]) -> None:
    """Transcripts against the sink that the options page starts first."""
    with shell(tmp_path) as reader:
        reader.block(the_block("docs/qmqp-source.md", "qmqp-sink :6280 1024 &"))
        reader.transcript(the_block(*example))


def test_the_slow_server_transcript(tmp_path: Path) -> None:
    with shell(tmp_path) as reader:
        reader.transcript(the_block("docs/qmqp-sink.md",
                                    "$ qmqp-sink --delay 0.1-0.3 127.0.0.1:6281 1024"))


BROKEN_FIRST = [f"qmqp-source: fatal: {line}\n" for line in (
    "unrecoverable error: 5.7.1 Error: rejected on purpose",
    "lost connection while receiving server reply")]


@pytest.mark.once
def test_the_broken_server_transcripts(tmp_path: Path) -> None:
    """As the sink's page tells it: the run that stops at the first failure, then the -A run
    of the output page, then Ctrl-C to the sink, which prints its counts of both."""
    sink = ("$ qmqp-sink --tempfail 0.05 --reject 0.02 --drop 0.02 --hang 0.01 --timeout 10 "
            "--seed 7 127.0.0.1:6282 1024")
    counts = ("^Cqmqp-sink: 1024 connections, 1024 messages, 1024 recipients, 1079296 bytes "
              "in 9.030 s (113.4 msg/s)")
    [(serve, _), (first, said_first)] = steps(the_block("docs/qmqp-sink.md", sink))
    with shell(tmp_path) as reader:
        reader.serve(serve)
        # The first failure the sessions see ends the run; which fault that is depends on
        # the timing of replies in flight, so any of the sink's will do.
        stopped = reader.run(first).stdout
        assert stopped in [said_first[0] + "\n", *BROKEN_FIRST], stopped
        reader.transcript(the_block("docs/output.md",
                                    "$ qmqp-source -A --timeout 2 -s 10 -m 1000 127.0.0.1:6282"))
        printed = reader.servers[0].stop().splitlines()
    said = the_block("docs/qmqp-sink.md", counts).removeprefix("^C").splitlines()
    assert same_shape(said, printed[-2:]), printed


def test_the_maildir_transcript_and_its_json(tmp_path: Path) -> None:
    sink = "$ qmqp-sink --maildir ./Maildir --json sink.json 127.0.0.1:6283 1024"
    block = the_block("docs/qmqp-sink.md", sink)
    with shell(tmp_path) as reader:
        reader.transcript(block.split("\n$ head")[0])  # the sink, the load, the count
        [head] = [line[2:] for line in block.splitlines() if line.startswith("$ head")]
        printed = reader.run(head).stdout.splitlines()
        reader.servers[0].stop()
    said = block.split("$ head")[1].splitlines()[1:]
    # The headers the manual shows, in its order; the host's name and the date are this run's.
    assert [line.split(":")[0] for line in printed] == [line.split(":")[0] for line in said]
    summary = json.loads((tmp_path / "sink.json").read_text())
    shown = json.loads(the_block("docs/qmqp-sink.md", "{"))
    assert list(summary) == list(shown)
    assert (summary["messages"], summary["recipients"], summary["maildir"]) == (100, 300,
                                                                                "./Maildir")


@pytest.mark.postfix
def test_postfixs_source_against_the_maildir_sink(tmp_path: Path) -> None:
    if shutil.which("/usr/sbin/qmqp-source") is None:
        pytest.skip("Postfix's qmqp-source is missing: apt-get install postfix (CI has it)")
    sink = "$ qmqp-sink --maildir ./Maildir --json sink.json 127.0.0.1:6283 1024"
    with shell(tmp_path) as reader:
        reader.transcript(the_block("docs/qmqp-sink.md", sink).split("\n$ ")[0])
        reader.block(the_block("docs/qmqp-sink.md",
                               "/usr/sbin/qmqp-source -s 10 -m 2000 127.0.0.1:6283"))
        reader.servers[0].stop()
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 2000


def test_the_report_examples_run(tmp_path: Path) -> None:
    """The files they read made first, by runs against the options page's sink. The two
    shards run at once, as two hosts run them: qmqp-report merges only the parts of one
    run, which overlap in time (at --rate 4, each shard's 5 messages take 2 s)."""
    shard = ("qmqp-source -q -m 10 --rate 4 --shard {0}/2 --run-id both --json results/{0}.json"
             " 127.0.0.1:6280")
    with shell(tmp_path) as reader:
        reader.block(the_block("docs/qmqp-source.md", "qmqp-sink :6280 1024 &"))
        reader.block("mkdir results\n"
                     "qmqp-source -q -m 10 --json run.json 127.0.0.1:6280\n"
                     f"{shard.format(0)} & {shard.format(1)}; wait")
        reader.block(the_block("docs/qmqp-report.md",
                               "qmqp-report results/*.json --json merged.json"))
    assert json.loads((tmp_path / "merged.json").read_text())["counts"]["attempted"] == 10


def test_the_html_example_runs(tmp_path: Path) -> None:
    """Two runs of 1 second where the manual's take 15 (the page is the same but for its
    length), then the page of both. Their checks may fail (the second's must: 3% of its
    messages fail), which is exit status 3."""
    block = the_block("docs/qmqp-report.md", "qmqp-source --embedded-sink -q -s 10 --duration "
                      "15 --interval 0.5 \\")
    assert block.count("--duration 15") == 2
    with shell(tmp_path) as reader:
        reader.block(block.replace("--duration 15", "--duration 1"), statuses=(0, 3))
    assert "<svg" in (tmp_path / "report.html").read_text()

