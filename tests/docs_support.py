"""The manual (docs/, one page a topic) and README.md: their pages, sections and fenced
blocks, for the tests that check what they say."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()


def page(name: str) -> str:
    """One page of the manual, by its file name in docs/."""
    return (DOCS / name).read_text()


def nav() -> list[str]:
    """The pages in mkdocs.yml's nav, in order."""
    return re.findall(r"^\s+- [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)


def section(text: str, heading: str) -> str:
    """From the heading to the next one of level 2 (or the end)."""
    start = text.index(f"\n{heading}\n") if not text.startswith(f"{heading}\n") else 0
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)\n```", text, re.S)


@dataclass(frozen=True)
class Block:
    """A fenced block: the file it is in (docs/X.md or README.md), its language, its text."""

    where: str
    lang: str
    body: str

    @property
    def first_line(self) -> str:
        return self.body.split("\n", 1)[0]


def fenced_blocks(path: Path) -> list[Block]:
    where = str(path.relative_to(ROOT))
    return [Block(where, lang, body)
            for lang, body in re.findall(r"^```(\w*)\n(.*?)\n```$", path.read_text(), re.M | re.S)]


def example_files() -> list[Path]:
    """Every file whose examples are tested: README.md and the manual's pages."""
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
