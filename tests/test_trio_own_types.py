"""trio's own inline types, not trio-typing's stubs, are what mypy checks us against."""

from __future__ import annotations

from pathlib import Path

from tests.trio_own_types import problems


def test_nothing_shadows_trios_own_types() -> None:
    assert problems() == []


def test_trio_typing_would_be_found(tmp_path: Path) -> None:
    (tmp_path / "trio-stubs").mkdir()
    info = tmp_path / "trio_typing-0.10.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: trio-typing\nVersion: 0.10.0\n")
    [problem] = problems([str(tmp_path)])
    assert problem.startswith("trio-typing's stubs would shadow trio's own types: ")
    assert f"{tmp_path}/trio-stubs" in problem and "trio-typing 0.10.0" in problem
