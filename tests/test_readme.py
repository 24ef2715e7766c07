"""README.md: five minutes for a newcomer. Its two set-up commands are the project's, its
examples run, and its links lead to pages of the manual that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.docs_run import shell
from tests.docs_support import DOCS, README, ROOT, fenced_blocks, nav, python_blocks, section
from tests.test_docs import assert_runs_against_a_sink

# The project requires README.md to keep exactly these.
SET_UP = ["pip install . && qmqpsource source --embedded-sink -s 20 -m 10000",
          "pip install nox && nox"]


def test_the_set_up_commands_are_exactly_the_two() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", section(README, "## Set-up"), re.S)
    assert blocks == SET_UP


def test_ci_runs_the_test_command() -> None:
    """.ci/run runs README's test command as a newcomer would, and says so."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'echo "+ {SET_UP[1]}" >&2' in ci
    assert re.search(r"^pip install --quiet --disable-pip-version-check nox && nox$", ci, re.M)


def test_the_examples_run(tmp_path: Path) -> None:
    [block] = [block.body for block in fenced_blocks(ROOT / "README.md")
               if block.first_line.startswith("qmqpsource sink ")]
    with shell(tmp_path) as reader:
        reader.block(block)
    assert json.loads((tmp_path / "run.json").read_text())["counts"]["accepted"] == 10000
    assert "<svg" in (tmp_path / "report.html").read_text()


def test_the_api_example_runs_against_a_sink(tmp_path: Path) -> None:
    [example] = python_blocks(README)
    assert example in python_blocks((DOCS / "api.md").read_text())  # the manual's, as it is
    assert_runs_against_a_sink(example, tmp_path)


def links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_links_lead_to_pages_and_headings_that_exist() -> None:
    for link in links(README):
        target, _, anchor = link.partition("#")
        assert (ROOT / target).is_file(), link
        if anchor:
            headings = re.findall(r"^#+ (.*)$", (ROOT / target).read_text(), re.M)
            assert anchor in [slug(heading) for heading in headings], link


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and MkDocs both make it, for the headings we write."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).strip().replace(" ", "-")


def test_every_page_of_the_manual_is_linked() -> None:
    linked = {link.partition("#")[0] for link in links(README)}
    assert sorted(f"docs/{name}" for name in nav() if f"docs/{name}" not in linked) == []
