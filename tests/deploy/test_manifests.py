"""deploy/: the manifests are valid Kubernetes (its schema, strict: an unknown field is an
error), agree with each other and with the manual, and the image holds what the package's
build reads. No test here reaches the network: kubernetes-validate ships the schemas."""

from __future__ import annotations

import copy
import re
import socket
from pathlib import Path
from typing import Any, NoReturn

import kubernetes_validate
import pytest

from tests.deploy.manifests import (
    DEPLOY,
    INDEX,
    LOAD_JOB,
    PVC,
    REPORT_JOB,
    command_line,
    container,
    documents,
    environment,
    mount_path,
    references,
)
from tests.docs_support import DOCS, fenced_blocks
from tests.test_pytest_plugin_installed import BUILD_INPUTS

KUBERNETES = "1.33"  # backoffLimitPerIndex is stable from 1.33 on
MANIFESTS = sorted(DEPLOY.glob("*.yaml"))


def validate(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES, strict=True)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> NoReturn:
        raise AssertionError("the validation tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_valid_against_the_kubernetes_schema(path: Path) -> None:
    assert documents(path)
    for document in documents(path):
        validate(document)


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(("where", "value"), [("completion", 8), ("completions", "8")],
                         ids=["a misspelt field", "a count as text"])
def test_the_schema_refuses_a_wrong_job(where: str, value: object) -> None:
    [job] = documents(LOAD_JOB)
    wrong = copy.deepcopy(job)
    wrong["spec"][where] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(wrong)


def test_the_load_is_one_indexed_job_of_shard_count_pods() -> None:
    [job] = documents(LOAD_JOB)
    shards = int(environment(LOAD_JOB)["SHARD_COUNT"])
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == shards
    assert environment(REPORT_JOB)["SHARD_COUNT"] == str(shards)
    line = command_line(LOAD_JOB)
    assert line[0] == "qmqp-source"
    assert line[line.index("--shard") + 1] == f"$({INDEX})/$(SHARD_COUNT)"
    assert line[line.index("--json") + 1] == f"{mount_path(LOAD_JOB)}/shard-$({INDEX}).json"
    # Every reference is to a variable the pod has, or Kubernetes would leave it as it is.
    assert references(line) <= {*environment(LOAD_JOB), INDEX}


def test_both_jobs_mount_the_claimed_volume() -> None:
    [claim] = documents(PVC)
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    for job in (LOAD_JOB, REPORT_JOB):
        [document] = documents(job)
        [volume] = document["spec"]["template"]["spec"]["volumes"]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert mount_path(job) == "/results"


def test_the_report_reads_the_shards_results() -> None:
    script = container(REPORT_JOB)["args"][0]
    assert "/results/shard-*.json" in script and "qmqp-report --check" in script
    # The merge (--json) and its page (--html) in two steps: qmqp-report compares several
    # files given to --html instead of merging them, and refuses both at once.
    assert "--json /results/merged.json" in script
    assert "--html /results/report.html /results/merged.json" in script
    assert references(command_line(REPORT_JOB)) == set()  # no $(...) for Kubernetes to take


def test_the_manual_shows_the_manifests_as_they_are() -> None:
    shown = [block.body + "\n" for block in fenced_blocks(DOCS / "kubernetes.md")
             if block.lang == "yaml"]
    assert shown == [LOAD_JOB.read_text(), REPORT_JOB.read_text()]


def test_the_kubectl_steps_name_the_manifests() -> None:
    steps = "\n".join(block.body for block in fenced_blocks(DOCS / "kubernetes.md")
                      if block.first_line.startswith("kubectl "))
    assert sorted(re.findall(r"-f (deploy/\S+)", steps)) == sorted(
        f"deploy/{path.name}" for path in MANIFESTS)
    jobs = {documents(path)[0]["metadata"]["name"] for path in (LOAD_JOB, REPORT_JOB)}
    assert set(re.findall(r"job/([\w-]+)", steps)) == jobs


def test_the_image_is_built_from_what_the_package_build_reads() -> None:
    """No podman here: the build is not run. What it copies is what pip's build reads
    (the fresh-venv test builds from exactly these), and the manual's command builds it
    from the checkout's root."""
    containerfile = (DEPLOY / "Containerfile").read_text()
    copied = {source for line in re.findall(r"^COPY (.*) \S+$", containerfile, re.M)
              for source in line.split()}
    assert copied == set(BUILD_INPUTS)
    [build] = [block.first_line for block in fenced_blocks(DOCS / "kubernetes.md")
               if block.first_line.startswith("podman build")]
    assert build.startswith("podman build -f deploy/Containerfile -t ") and build.endswith(" .")
