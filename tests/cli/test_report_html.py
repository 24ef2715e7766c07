"""qmqp-report --html PATH: the page of each FILE as a run of its own, written as --json is."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

from qmqpsource.report.charts import NO_TIMELINE
from tests.report.synthetic import document, find_rate

REPORT = [sys.executable, "-c", "from qmqpsource.cli.report import main; main()"]


def report(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*REPORT, *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False, cwd=cwd)


def two_files(folder: Path) -> tuple[Path, Path]:
    before, after = folder / "before.json", folder / "after.json"
    before.write_text(json.dumps(document(4)))
    after.write_text(json.dumps(document(4, slow=2.0, seed=2)))
    return before, after


def test_html_of_two_runs_compares_them_unmerged(tmp_path: Path) -> None:
    # Before and after a change are not the parts of one run: no merge, and no merged
    # rate that neither had; each run's own summary, in the order given.
    before, after = two_files(tmp_path)
    page = tmp_path / "report.html"
    done = report("--html", page, before, after)
    assert (done.returncode, done.stderr) == (0, "")
    own = [report(path).stdout for path in (before, after)]
    assert done.stdout == f"before.json:\n{own[0]}after.json:\n{own[1]}"
    assert "(2 runs)" not in done.stdout
    text = page.read_text()
    assert "<title>qmqp-report: before.json, after.json</title>" in text
    assert re.findall(r'data-chart="(\w+)"', text)[-1] == "spectrum"
    assert set(re.findall(r'data-run="(\d)"', text)) == {"0", "1"}  # each file its own run
    assert re.findall(r'<p class="verdict (\w+)"><strong>([^<]*)</strong>: (\w+): ', text) == [
        ("held", "before.json", "passed"), ("held", "after.json", "passed")]


def test_html_of_two_runs_judges_each_against_the_checks(tmp_path: Path) -> None:
    before, after = two_files(tmp_path)  # after: latency twice before's
    page = tmp_path / "report.html"
    p99 = json.loads(before.read_text())["latency_ms"]["total"]["p99"]
    limit = f"p99<{p99 * 1.5:.3f}ms"
    done = report("-q", "--check", limit, "--check", "failed==0", "--html", page,
                  before, after)
    assert done.returncode == 3
    assert done.stderr == f"qmqp-report: after.json: 1 of 2 checks failed: {limit}\n"
    banner = [(css, label, html.unescape(words)) for css, label, words in re.findall(
        r'<p class="verdict (\w+)"><strong>([^<]*)</strong>: ([^<]*)</p>', page.read_text())]
    assert banner == [
        ("held", "before.json", f"passed: completed; every check held ({limit}, failed==0)"),
        ("failed", "after.json", f"FAILED: completed; 1 of 2 checks failed: {limit}")]


def test_html_of_several_files_and_json_are_refused_together(tmp_path: Path) -> None:
    before, after = two_files(tmp_path)
    done = report("--html", tmp_path / "page.html", "--json", tmp_path / "m.json",
                  before, after)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("qmqp-report: fatal: --html of several files compares "
                                  "them, --json merges them: not both")
    assert not (tmp_path / "page.html").exists() and not (tmp_path / "m.json").exists()


def test_html_to_stdout_moves_the_summary_to_stderr(tmp_path: Path) -> None:
    before, _ = two_files(tmp_path)
    done = report("--html", "-", before)
    assert done.returncode == 0
    assert done.stdout.startswith("<!DOCTYPE html>") and done.stdout.endswith("</html>\n")
    assert done.stderr.startswith("4.000 s, ")


def test_html_and_json_both_on_stdout_is_refused(tmp_path: Path) -> None:
    before, _ = two_files(tmp_path)
    done = report("--html", "-", "--json", "-", before)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "qmqp-report: fatal: --json - and --html - cannot both go to stdout\n"


def test_runs_of_the_same_file_name_are_named_by_their_paths(tmp_path: Path) -> None:
    for host in ("a", "b"):
        (tmp_path / host).mkdir()
        (tmp_path / host / "run.json").write_text(json.dumps(document(2, seed=ord(host))))
    done = report("-q", "--html", "page.html", "a/run.json", "b/run.json", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert "<title>qmqp-report: a/run.json, b/run.json</title>" in (
        tmp_path / "page.html").read_text()


def test_a_path_that_cannot_be_written_is_one_line_before_anything_is_read(
    tmp_path: Path
) -> None:
    before, _ = two_files(tmp_path)
    done = report("--html", tmp_path / "missing" / "page.html", before)
    assert (done.returncode, done.stdout) == (1, "")  # no summary: it failed at the start
    assert done.stderr == (f"qmqp-report: fatal: open {tmp_path}/missing/page.html: "
                           "No such file or directory\n")


def test_a_full_disk_is_one_line(tmp_path: Path) -> None:
    before, _ = two_files(tmp_path)
    done = report("-q", "--html", "/dev/full", before)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "qmqp-report: fatal: write /dev/full: No space left on device\n"


def test_an_earlier_page_is_replaced_whole_through_its_symlink(tmp_path: Path) -> None:
    before, _ = two_files(tmp_path)
    target = tmp_path / "target.html"
    target.write_text("old")
    target.chmod(0o640)
    (tmp_path / "link.html").symlink_to(target)
    done = report("-q", "--html", tmp_path / "link.html", before)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "link.html").is_symlink()
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "after.json", "before.json", "link.html", "target.html"]  # no temporary file left


def test_a_result_of_schema_1_has_the_spectrum_and_says_it_has_no_timeline(
    tmp_path: Path
) -> None:
    old = document(3)
    old["schema"] = "qmqpsource.result/1"
    del old["timeline"], old["interval_s"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    done = report("-q", "--html", tmp_path / "page.html", path)
    assert (done.returncode, done.stderr) == (0, "")
    text = (tmp_path / "page.html").read_text()
    assert text.count(NO_TIMELINE) == 2
    assert re.findall(r'data-chart="(\w+)"', text) == ["spectrum"]


def test_each_find_rate_file_shows_its_own_search(tmp_path: Path) -> None:
    before, plain = two_files(tmp_path)
    searched = document(4)
    searched["find_rate"] = find_rate()
    before.write_text(json.dumps(searched))
    page = tmp_path / "page.html"
    done = report("-q", "--html", page, before, plain)
    # Nothing is merged: the page shows each search as its own, its answer first.
    assert (done.returncode, done.stderr) == (0, "")
    text = page.read_text()
    assert text.index("<strong>before.json</strong>: passed: highest rate that met the "
                      "checks: 1950.0 msg/s") < text.index('data-chart="throughput"')
    search = text[text.index('data-chart="search"'):]
    assert set(re.findall(r'data-run="(\d)" data-series="(p\d\d)"', search)) == {
        ("0", "p50"), ("0", "p99")}
    assert re.findall(r"<h3>([^<]*)</h3>", text) == ["before.json"]
    assert "highest rate that met the checks: 1950.0 msg/s (10 steps, stopped: bracket)" in text


def test_a_malformed_find_rate_is_one_line_and_no_page(tmp_path: Path) -> None:
    before, _ = two_files(tmp_path)
    bad = json.loads(before.read_text())
    bad["find_rate"] = {"rate": 10, "steps": [{"rate": "fast"}]}
    before.write_text(json.dumps(bad))
    page = tmp_path / "page.html"
    done = report("-q", "--html", page, before)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"qmqp-report: fatal: {before}: find_rate.steps: a step without "
                           "its rate and achieved rate\n")
    assert not page.exists()


def test_the_merge_of_several_searches_says_they_are_left_out(tmp_path: Path) -> None:
    # Without --html the files are merged: the parts of one run, each with a search of
    # its own (as the workers of a --find-rate step would be, were they written apart).
    paths = []
    for n in range(2):
        doc = document(4, rate=800 + 100 * n, seed=n)
        doc["find_rate"] = find_rate()
        paths.append(tmp_path / f"{n}.json")
        paths[-1].write_text(json.dumps(doc))
    merged = tmp_path / "merged.json"
    done = report("-q", "--json", merged, *paths)
    assert done.returncode == 0
    assert done.stderr == (f"qmqp-report: note: find_rate of {paths[0]}, {paths[1]} left out: "
                           "the step tables of several searches do not merge; the rest of each "
                           "result (its step at the answer) is merged\n")
    assert "find_rate" not in json.loads(merged.read_text())


def test_a_refused_merge_of_searches_says_only_why(tmp_path: Path) -> None:
    paths = []
    for n in range(2):
        doc = document(4, rate=800 + 100 * n, seed=n)
        doc["find_rate"] = find_rate()
        doc["config"]["length"] = 1000 + n
        paths.append(tmp_path / f"{n}.json")
        paths[-1].write_text(json.dumps(doc))
    done = report("-q", *paths)
    assert done.returncode == 1
    assert done.stderr == (f"qmqp-report: fatal: {paths[1]}: not a part of the same run as "
                           f"{paths[0]}: its config.length is 1001, {paths[0]}'s 1000; "
                           "--merge-anyway merges them all the same\n")


def test_a_run_given_twice_to_compare_is_refused_as_a_file_or_a_copy(tmp_path: Path) -> None:
    # Before: the same file refused as if merged ("would count twice"), a copy taken.
    before, _ = two_files(tmp_path)
    copy = tmp_path / "copy.json"
    copy.write_text(before.read_text())
    page = tmp_path / "report.html"
    same = report("--html", page, before, before)
    assert (same.returncode, same.stderr) == (1, (
        f"qmqp-report: fatal: {before}: the same file as {before}: a comparison would set "
        "a run beside itself\n"))
    copied = report("--html", page, before, copy)
    assert (copied.returncode, copied.stderr) == (1, (
        f"qmqp-report: fatal: {copy}: the same run as {before} (same start, length, config, "
        "counts and latencies): a comparison would set a run beside itself\n"))
    assert not page.exists()
