"""The markdown of the manual, as much of it as the manual pages take, turned into man(7)
roff: paragraphs, bullet lists, tables (a tagged paragraph a row), fenced code, `###`
headings, and inline code, bold and links. Anything else stays as plain text."""

from __future__ import annotations

import re

__all__ = ["escape", "inline", "roff_from_markdown"]

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def escape(text: str) -> str:
    """Text as roff prints it: a backslash is \\e; a minus is \\- (an option name must copy
    as ASCII); a line that starts with . or ' is text, not a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def inline(text: str) -> str:
    """One paragraph's markdown on one line: code in bold (as man pages show literals)."""
    text = " ".join(text.split())
    text = _LINK.sub(r"\1", text)
    parts = _CODE.split(text)  # even: prose, odd: code
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(f"\\fB{escape(part)}\\fR")
        else:
            out.append(_BOLD.sub(r"\\fB\1\\fR", escape(part)))
    return "".join(out)


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _table(rows: list[str]) -> list[str]:
    """A row a tagged paragraph, its first cell the tag; the heading row is left out."""
    out = []
    for row in rows[2:]:
        first, *rest = _cells(row)
        out += [".TP", inline(first), inline("; ".join(rest))]
    return out


def _code(lines: list[str]) -> list[str]:
    return [".PP", ".RS 4", ".nf", *(escape(line) for line in lines), ".fi", ".RE"]


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """(kind, lines): code, table, item, heading or paragraph, in order."""
    blocks: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            end = lines.index("```", index + 1)
            blocks.append(("code", lines[index + 1:end]))
            index = end + 1
            continue
        if not line.strip():
            kind = ""
        elif line.startswith("|"):
            kind = "table"
        elif line.startswith("- "):
            kind = "item"
        elif line.startswith("#"):
            kind = "heading"
        elif line.startswith("  ") and blocks and blocks[-1][0] == "item":
            kind = "more"  # an item's continued line
        else:
            kind = "paragraph"
        if kind == "more" or (blocks and kind == blocks[-1][0] and kind in ("table", "paragraph")
                              and lines[index - 1].strip()):
            blocks[-1][1].append(line)
        elif kind:
            blocks.append((kind, [line]))
        index += 1
    return blocks


def roff_from_markdown(text: str) -> str:
    out: list[str] = []
    for kind, lines in _blocks(text):
        if kind == "code":
            out += _code(lines)
        elif kind == "table":
            out += _table(lines)
        elif kind == "item":
            out += [".IP \\(bu 2", inline(" ".join(lines)[2:])]
        elif kind == "heading":
            out += [".SS", inline(lines[0].lstrip("#"))]
        else:
            out += [".PP", inline(" ".join(lines))]
    return "\n".join(out)
