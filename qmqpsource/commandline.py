"""What the three commands share: a typer app set up alike, Postfix-style fatal lines,
and an entry point that turns every bad argument into one line and exit status 1."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

__all__ = ["UsageFailure", "click_message", "fatal", "make_app", "run_command"]


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


def fatal(prog: str, text: str) -> NoReturn:
    sys.stderr.write(f"{prog}: fatal: {text}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def click_message(exc: Exception) -> str:
    """A click error as one line."""
    format_message = getattr(exc, "format_message", None)
    text = format_message() if callable(format_message) else str(exc)
    return " ".join(str(text).split())


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
        fatal(prog, f"{click_message(exc)}; {usage}")
    except typer.Exit as exc:
        status = exc.exit_code
    except BrokenPipeError:
        status = 1
    except (typer.Abort, KeyboardInterrupt):
        # Ctrl-C before the command's own handling was up (click turns it into Abort).
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    return status if isinstance(status, int) else 0
