"""The manual pages qmqp-source(1), qmqp-sink(1) and qmqp-report(1), generated so that
nothing in them is written twice: the options and arguments from each command's click
definition (the text of --help), the rest from the manual's pages, where regions marked

    <!-- man PROG: SECTION -->
    ...markdown...
    <!-- /man -->

go into PROG's page under SECTION (one marker may name several programs). `nox -s docs`
runs this; the pages are committed, and pip installs them into share/man/man1.

    python -m tools.manpages           # write man/man1/*.1
    python -m tools.manpages --check   # exit status 1 where a page is not current
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import typer.core
import typer.main

from qmqpsource import __version__
from tools.roff import escape, roff_from_markdown

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
MAN1 = ROOT / "man" / "man1"


@dataclass(frozen=True)
class Program:
    name: str
    module: str  # its typer app is the module's `app`


PROGRAMS = (
    Program("qmqp-source", "qmqpsource.cli.source"),
    Program("qmqp-sink", "qmqpsource.cli.sink"),
    Program("qmqp-report", "qmqpsource.cli.report"),
)
# The page's sections in order; the ones from the docs must be among them.
ORDER = ("SYNOPSIS", "DESCRIPTION", "TARGETS", "ARGUMENTS", "OPTIONS", "EXIT STATUS",
         "EXAMPLES", "NOTES", "SEE ALSO")
FROM_CLICK = ("ARGUMENTS", "OPTIONS", "SEE ALSO")
REQUIRED = ("SYNOPSIS", "DESCRIPTION", "EXIT STATUS")
_REGION = re.compile(r"^<!-- man ([\w\- ]+): ([A-Z ]+) -->\n(.*?)^<!-- /man -->$", re.M | re.S)
# Click writes a default given in words as "[default: (X)]"; --help shows "[default: X]".
_DEFAULT_IN_PARENS = re.compile(r"\[default: \((.*?)\)\]")


class ManPageError(Exception):
    """A marker that names no program or section we know, or a page without a section."""


def nav_pages() -> list[Path]:
    """The manual's pages in the order of mkdocs.yml's nav: regions join in that order."""
    nav = re.findall(r"^\s+- [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    return [DOCS / name for name in nav]


def regions(pages: list[Path], root: Path = ROOT) -> dict[tuple[str, str], list[str]]:
    """(program, section) -> the markdown of its regions, in page order; ``root`` is where
    the errors name the pages from."""
    known = {program.name for program in PROGRAMS}
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for page in pages:
        for names, section, body in _REGION.findall(page.read_text()):
            where = f"{page.relative_to(root)}: <!-- man {names}: {section} -->"
            if section not in ORDER or section in FROM_CLICK:
                raise ManPageError(f"{where}: no section {section} is taken from the docs")
            for name in names.split():
                if name not in known:
                    raise ManPageError(f"{where}: no program {name}")
                found[name, section].append(body)
    return found


def command_of(program: Program) -> typer.core.TyperCommand:
    command = typer.main.get_command(importlib.import_module(program.module).app)
    if not isinstance(command, typer.core.TyperCommand):  # an app of subcommands
        raise ManPageError(f"{program.module}.app is not one command")
    return command


def help_items(program: Program) -> dict[str, list[tuple[str, str]]]:
    """ARGUMENTS and OPTIONS: (term, help) of each parameter, as --help shows them."""
    command = command_of(program)
    context = command.context_class(command, info_name=program.name,
                                    **command.context_settings)
    items: dict[str, list[tuple[str, str]]] = {"ARGUMENTS": [], "OPTIONS": []}
    for param in command.get_params(context):
        record = param.get_help_record(context)
        if record is None:  # hidden
            continue
        term, text = record
        if param.param_type_name == "argument":
            items["ARGUMENTS"].append((f"\\fI{escape(term)}\\fR", text))
            continue
        # "-C, --connect-attempts N": the names as --help writes them, then the metavar.
        *names, last = term.split(", ")
        last, _, metavar = last.partition(" ")
        shown = ", ".join(f"\\fB{escape(name)}\\fR" for name in [*names, last])
        if metavar:
            shown += f" \\fI{escape(metavar)}\\fR"
        items["OPTIONS"].append((shown, _DEFAULT_IN_PARENS.sub(r"[default: \1]", text)))
    return items


def summary_line(program: Program) -> str:
    """NAME's text: the first paragraph of the command's help, without "PROG: "."""
    first = (command_of(program).help or "").strip().split("\n\n")[0]
    first = " ".join(first.removeprefix(f"{program.name}: ").split()).rstrip(".")
    return first[:1].lower() + first[1:]


def see_also(program: Program) -> str:
    others = [f".BR {other.name} (1)," for other in PROGRAMS if other != program]
    others[-1] = others[-1].rstrip(",")
    return "\n".join([*others, ".PP",
                      "The manual: docs/ in qmqpsource's source, which "
                      f"\\fB{escape('nox -s docs')}\\fR builds into a site."])


def page(program: Program, found: dict[tuple[str, str], list[str]]) -> str:
    """The whole roff text of one program's manual page."""
    for section in REQUIRED:
        if (program.name, section) not in found:
            raise ManPageError(f"no <!-- man {program.name}: {section} --> region in docs/")
    items = help_items(program)
    lines = [f'.\\" Generated by tools/manpages.py from {program.module} and docs/: '
             "do not edit.",
             f'.TH {escape(program.name.upper())} 1 "" "qmqpsource {__version__}" '
             '"User Commands"',
             ".SH NAME", f"{escape(program.name)} \\- {escape(summary_line(program))}"]
    for section in ORDER:
        if section == "SEE ALSO":
            body = see_also(program)
        elif section in items:
            body = "\n".join(f".TP\n{term}\n{escape(text)}" for term, text in items[section])
        else:
            body = "\n".join(roff_from_markdown(text)
                             for text in found.get((program.name, section), []))
        if body:
            lines += [f".SH {section}", body]
    return "\n".join(lines) + "\n"


def pages() -> dict[Path, str]:
    found = regions(nav_pages())
    return {MAN1 / f"{program.name}.1": page(program, found) for program in PROGRAMS}


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        wanted = pages()
    except ManPageError as exc:
        print(f"tools.manpages: {exc}", file=sys.stderr)
        return 1
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text() != text]
    if check:
        for path in stale:
            print(f"{os.path.relpath(path, ROOT)} is not current: run `nox -s docs` "
                  "(or python -m tools.manpages) and commit it", file=sys.stderr)
        return 1 if stale else 0
    MAN1.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.write_text(wanted[path])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
