"""What the three commands share: a typer app set up alike, help laid out alike,
Postfix-style fatal lines, and an entry point that turns every bad argument into
one line and exit status 1."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer
import typer.core

from qmqpsource.wording import one_line

if TYPE_CHECKING:
    from typer._click.formatting import HelpFormatter as _BaseFormatter

    from qmqpsource.errors import ConfigError
    from qmqpsource.results.checks import Check, Verdict
else:  # the class itself, without importing typer's private module at run time
    _BaseFormatter = typer.Context.formatter_class

__all__ = [
    "Command", "UsageFailure", "fatal", "make_app", "option_words", "parse_checks",
    "run_command", "say_failed_checks", "usage_text",
]


class UsageFailure(Exception):
    """Arguments that make no run: one line on stderr, exit status 1 (as Postfix)."""


def make_app() -> typer.Typer:
    return typer.Typer(
        add_completion=False,
        # "[inet:]host[:port]" is our syntax, not rich markup.
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
    )


# textwrap breaks lines after a hyphen inside a word ("--embedded-" / "sink") and around
# "--" after a quote ("'--" / "tempfail"). U+2011, a hyphen that does not break, stands
# in for "-" while the help is wrapped, and is turned back before it is shown.
_HYPHEN = "\u2011"
_DEFAULT_IN_PARENS = re.compile(r"\[default: \((.*?)\)\]")


def _whole(text: str) -> str:
    return text.replace("-", _HYPHEN)


class _HelpFormatter(_BaseFormatter):
    """Click's help layout, with two changes: no line breaks at a hyphen, so option
    names stay whole; and a default written out in words shows as ``[default: X]``,
    as the others do, not ``[default: (X)]``."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(_whole(prog), _whole(args), prefix)

    def write_text(self, text: str) -> None:
        super().write_text(_whole(text))

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = [(_whole(term), _whole(_DEFAULT_IN_PARENS.sub(r"[default: \1]", text)))
                for term, text in rows]
        super().write_dl(rows, col_max, col_spacing)

    def getvalue(self) -> str:
        return super().getvalue().replace(_HYPHEN, "-")


class _Context(typer.Context):
    formatter_class = _HelpFormatter


class Command(typer.core.TyperCommand):
    """A command whose usage line is ``PROG`` and its ``options_metavar`` as written:
    give it as ``options_metavar="[OPTIONS] ENDPOINT BACKLOG"``.

    Our operands are optional to typer, so that a missing one gets our own words
    ("missing endpoint"); typer would show them as ``[endpoint]``, or as ``{FILE}``
    when required.
    """

    context_class = _Context

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [self.options_metavar] if self.options_metavar else []


# A field's name, as a word of its own in a config's error (not part of an --option).
_FIELD_NAME = re.compile(r"(?<![-\w])[a-z][a-z_]*\b")


def option_words(exc: ConfigError, options: Mapping[str, str]) -> str:
    """A config's error as the command says it: each field by its option (``options``).

    An error of one field starts with its name (``sessions must be at least 1, not 0``):
    only that name is replaced, since the value after it may hold any word. An error of
    several fields (``field`` None: ``fixed_delay and random_delay exclude each other``)
    names them among words that name no field.
    """
    text = str(exc)
    field = exc.field
    if field is not None:
        if field in options and text.startswith(f"{field} "):
            return options[field] + text[len(field):]
        return text
    return _FIELD_NAME.sub(lambda word: options.get(word[0], word[0]), text)


def limit_words(text: str, options: Mapping[str, str]) -> str:
    """A LimitError as the command says it: its first word, and the recipients after
    "with", are fields (``length 10 with recipients 9 needs ...``), the rest may be a
    path that holds any word."""
    field, space, rest = text.partition(" ")
    if space and field in options:
        text = f"{options[field]} {rest}"
    return text.replace(" with recipients ", f" with {options['recipients']} ", 1)


def parse_checks(texts: Sequence[str]) -> list[Check]:
    """--check EXPR, each parsed now: one that cannot be is a usage error before the run."""
    if not texts:
        return []
    from qmqpsource.results.checks import CheckError, parse_check  # only --check needs it

    try:
        return [parse_check(text) for text in texts]
    except CheckError as exc:
        raise UsageFailure(str(exc)) from None


def say_failed_checks(prog: str, verdicts: Sequence[Verdict]) -> bool:
    """One line naming the checks that failed, if any did; whether any did."""
    missed = [verdict.check for verdict in verdicts if not verdict.ok]
    if missed:
        sys.stderr.write(f"{prog}: {len(missed)} of {len(verdicts)} checks failed: "
                         f"{', '.join(missed)}\n")
    return bool(missed)


def fatal(prog: str, text: str) -> NoReturn:
    sys.stderr.write(f"{prog}: fatal: {one_line(text)}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def _spelled(opts: Sequence[str], args: Sequence[str]) -> str:
    """The name of the option as the command line gave it (``-l`` or ``--length``)."""
    for arg in args:
        if arg == "--":
            break
        for opt in opts:
            if arg == opt or arg.startswith(f"{opt}=") or (
                len(opt) == 2 and arg.startswith(opt) and not arg.startswith("--")
            ):
                return opt
    return opts[0] if opts else "argument"


# What a number option takes, by its metavar; "a number" otherwise.
_NUMBER_KINDS = {"SECONDS": "a number of seconds", "RATE": "a number from 0 to 1",
                 "R": "a number of messages per second"}


def _sentence(text: str) -> str:
    """Click's sentence in our style: lower case, no full stop, one line."""
    text = " ".join(text.split()).rstrip(".")
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return text


def usage_text(exc: Exception, args: Sequence[str] = ()) -> str:
    """What was wrong with the command line, said as our own checks say it:
    ``-l must be a whole number, not 'abc'``, ``no such option: --bogus``."""
    kind = type(exc).__name__
    message = str(getattr(exc, "message", "") or exc)
    param = getattr(exc, "param", None)
    if kind == "NoSuchOption":
        option = str(getattr(exc, "option_name", "") or message.rpartition(" ")[2])
        text = f"no such option: {option}"
        close = _close_options(option, getattr(exc, "possibilities", None) or ())
        return f"{text} (did you mean {' or '.join(close)}?)" if close else text
    if kind == "BadParameter" and param is not None:
        name = _spelled(getattr(param, "opts", ()), args)
        number = re.fullmatch(r"(.+) is not a valid (int|integer|float)\.?", message)
        if number:
            whole = number[2] != "float"
            what = "a whole number" if whole else _NUMBER_KINDS.get(
                str(getattr(param, "metavar", "")), "a number")
            return f"{name} must be {what}, not {number[1]}"
        return f"{name}: {_sentence(message)}"
    needs = re.fullmatch(r"Option '(.+)' requires an argument\.?", message)
    if needs:
        return f"{needs[1]} requires an argument"
    takes_none = re.fullmatch(r"Option '(.+)' does not take a value\.?", message)
    if takes_none:
        return f"{takes_none[1]} takes no value"
    extra = re.fullmatch(r"Got unexpected extra arguments?(?:\(s\))? \((.*)\)\.?", message)
    if extra:
        words = extra[1].split()
        return f"unexpected extra argument{'s' if len(words) > 1 else ''}: {extra[1]}"
    return _sentence(message)


def _close_options(option: str, possibilities: Sequence[str]) -> list[str]:
    """The options that ``option`` was likely meant to be: close in their names, not
    merely in their leading dashes (click offers --verbose for --bogus)."""
    import difflib  # here: only a mistyped option needs it

    names = {p.lstrip("-"): p for p in possibilities}
    return [names[n] for n in difflib.get_close_matches(option.lstrip("-"), names, n=2)]


def run_command(app: typer.Typer, prog: str, usage: str, argv: list[str] | None) -> int:
    """Run the app on argv (default sys.argv[1:]); its exit status. Never a traceback for
    bad input: usage errors become ``PROG: fatal: WHAT; USAGE``."""
    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    try:
        status = command.main(args, prog_name=prog, standalone_mode=False)
    except UsageFailure as exc:
        fatal(prog, f"{exc}; {usage}")
    except typer.exceptions.TyperException as exc:
        fatal(prog, f"{usage_text(exc, args)}; {usage}")
    except typer.Exit as exc:
        status = exc.exit_code
    except BrokenPipeError:
        status = 1
    except (typer.Abort, KeyboardInterrupt):
        # Ctrl-C before the command's own handling was up (click turns it into Abort).
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    return status if isinstance(status, int) else 0
