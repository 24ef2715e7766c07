"""deploy/'s Kubernetes manifests, read as Kubernetes reads them: their documents, a Job's
container, and the $(NAME) references that Kubernetes expands in a command line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.docs_support import ROOT

DEPLOY = ROOT / "deploy"
LOAD_JOB = DEPLOY / "load-job.yaml"
REPORT_JOB = DEPLOY / "report-job.yaml"
PVC = DEPLOY / "results-pvc.yaml"
# Set by the Job controller in each pod of an Indexed Job: the pod's index, from 0.
INDEX = "JOB_COMPLETION_INDEX"
_REFERENCE = re.compile(r"\$\((\w+)\)")


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def container(job: Path) -> dict[str, Any]:
    """The Job's one container."""
    [document] = documents(job)
    [one] = document["spec"]["template"]["spec"]["containers"]
    assert isinstance(one, dict)
    return one


def environment(job: Path) -> dict[str, str]:
    """The variables the manifest sets in the container (Kubernetes adds the index)."""
    return {variable["name"]: str(variable["value"]) for variable in container(job)["env"]}


def references(words: list[str]) -> set[str]:
    return {name for word in words for name in _REFERENCE.findall(word)}


def expand(word: str, env: dict[str, str]) -> str:
    """$(NAME) as Kubernetes expands it in command and args; an unknown name stays as it is."""
    return _REFERENCE.sub(lambda match: env.get(match[1], match[0]), word)


def command_line(job: Path) -> list[str]:
    one = container(job)
    return [*one["command"], *one.get("args", [])]


def mount_path(job: Path) -> str:
    [mount] = container(job)["volumeMounts"]
    path: str = mount["mountPath"]
    return path
