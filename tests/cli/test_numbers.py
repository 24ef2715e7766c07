"""Numbers on the command line: ASCII digits only, in every numeric option and operand of
the three commands; exponent notation wherever seconds or rates are taken."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from qmqpsource.cli import numbers
from qmqpsource.cli import report as report_cli
from qmqpsource.cli import sink as sink_cli
from qmqpsource.cli import source as source_cli
from qmqpsource.cli.sink import parse_delay

NOWHERE = "127.0.0.1:1"  # nothing listens there: a number let through fails fast
APPS = {"qmqp-source": source_cli.app, "qmqp-sink": sink_cli.app, "qmqp-report": report_cli.app}
# Python's int() and float() take each of these; a command line must not.
NOT_WHOLE = ["\u0663", "1_000", "\uff11", " 5", "5 ", "", "1.0", "0x10"]
NOT_A_NUMBER = ["\u0663", "1_000", "1_0.5", "\u0661.\u0665", "nan", "inf", "-inf", "0x1p3",
                "1e400", " 1", "infinity"]


@pytest.mark.parametrize("text", NOT_WHOLE)
def test_whole_numbers_are_ascii_digits(text: str) -> None:
    assert numbers.parse_whole(text) is None


@pytest.mark.parametrize("text", NOT_A_NUMBER)
def test_numbers_are_ascii_decimals_and_finite(text: str) -> None:
    assert numbers.parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [("2", 2.0), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("1e-3", 0.001), ("2.5E+2", 250.0),
     ("-1", -1.0), ("+3", 3.0)],
)
def test_decimal_and_exponent_notation_are_taken(text: str, value: float) -> None:
    assert numbers.parse_number(text) == value


def test_whole_numbers_keep_their_sign_for_the_bounds_to_judge() -> None:
    assert (numbers.parse_whole("-1"), numbers.parse_whole("+7")) == (-1, 7)
    assert numbers.parse_whole("9" * 30) == 10**30 - 1


def _numeric_options(prog: str) -> list[tuple[str, str]]:
    """(option, kind) of every option of ``prog`` that takes a number."""
    found = []
    for param in typer.main.get_command(APPS[prog]).params:
        if getattr(param, "count", False) or getattr(param, "is_flag", False):
            continue  # -v counts; flags take no value
        kind = getattr(getattr(param.type, "func", None), "__name__", param.type.name)
        if kind in ("whole", "number", "integer", "float", "int"):
            found.append((param.opts[0], kind))
    return found


@pytest.mark.parametrize("prog", ["qmqp-source", "qmqp-sink"])
def test_every_numeric_option_is_parsed_here(prog: str) -> None:
    # click's own int and float types take what Python's int() and float() take.
    kinds = {kind for _, kind in _numeric_options(prog)}
    assert kinds == {"whole", "number"}, _numeric_options(prog)


def _fatal_line(prog: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main = {"qmqp-source": source_cli.main, "qmqp-sink": sink_cli.main,
            "qmqp-report": report_cli.main}[prog]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 1, err
    assert err.count("\n") == 1, err
    return err.split("; usage: ")[0]


OPERANDS = {"qmqp-source": [NOWHERE], "qmqp-sink": ["127.0.0.1:0", "5"]}
# Before the option tested, so that it wins when it is the same one: a value taken by
# mistake (-C 1_000: a thousand connect attempts, a second apart) ends within seconds.
BOUND = {"qmqp-source": ["--timeout", "2", "--duration", "3"], "qmqp-sink": ["-x", "1"]}
CASES = [
    (prog, option, kind, text)
    for prog in ("qmqp-source", "qmqp-sink")
    for option, kind in _numeric_options(prog)
    for text in ("\u0663", "1_000", *(["nan", "inf", "0x10"] if kind == "number" else []))
]


@pytest.mark.parametrize(("prog", "option", "kind", "text"), CASES)
def test_every_numeric_option_refuses_what_is_no_ascii_number(
    prog: str, option: str, kind: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _fatal_line(prog, [*BOUND[prog], option, text, *OPERANDS[prog]], capsys)
    words = "a whole number" if kind == "whole" else "a number"
    assert line.startswith(f"{prog}: fatal: {option} must be {words}"), line
    assert line.endswith(f", not {text!r}"), line


@pytest.mark.parametrize(
    ("prog", "argv", "says"),
    [
        ("qmqp-source", ["-m", "\u0663", NOWHERE], "-m must be a whole number, not '\u0663'"),
        ("qmqp-source", ["--shard", "\u0661/\u0662", "-m", "4", NOWHERE],
         "--shard wants I/N (e.g. 0/4), not '\u0661/\u0662'"),
        ("qmqp-source", ["--workers", "\u0662", NOWHERE],
         "--workers wants a number from 1 to 256 or 'auto', not '\u0662'"),
        ("qmqp-sink", ["-x", "1", "127.0.0.1:0", "1_0"],
         "backlog must be a whole number, not '1_0'"),
        ("qmqp-sink", ["-x", "1", "127.0.0.1:0", "\u0663"],
         "backlog must be a whole number, not '\u0663'"),
        ("qmqp-sink", ["-x", "1", "--delay", "1_0", "127.0.0.1:0", "5"],
         "--delay wants SECONDS or MIN-MAX, not '1_0'"),
        ("qmqp-sink", ["-x", "1", "--delay", "\u0661-\u0662", "127.0.0.1:0", "5"],
         "--delay wants SECONDS or MIN-MAX, not '\u0661-\u0662'"),
        ("qmqp-sink", ["-x", "1", "--delay", "nan", "127.0.0.1:0", "5"],
         "--delay wants SECONDS or MIN-MAX, not 'nan'"),
        ("qmqp-sink", ["-x", "1", "--delay", "0-inf", "127.0.0.1:0", "5"],
         "--delay wants SECONDS or MIN-MAX, not '0-inf'"),
        ("qmqp-sink", ["-x", "1", "--delay", "2e-3-1e-3", "127.0.0.1:0", "5"],
         "--delay wants SECONDS or MIN-MAX with 0 <= MIN <= MAX, not '2e-3-1e-3'"),
        ("qmqp-report", ["--check", "p99<\u0663ms", "r.json"], "--check 'p99<\u0663ms': "),
        ("qmqp-report", ["--check", "rate>=1_000", "r.json"], "--check 'rate>=1_000': "),
    ],
)
def test_operands_and_options_that_are_not_typer_numbers(
    prog: str, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fatal_line(prog, argv, capsys).startswith(f"{prog}: fatal: {says}")


@pytest.mark.parametrize(
    ("text", "bounds"),
    [("1e-3", (0.001, 0.001)), ("1e-3-2e-3", (0.001, 0.002)), ("2E-1-1", (0.2, 1.0)),
     ("0.5-1e1", (0.5, 10.0)), ("3", (3.0, 3.0))],
)
def test_the_sinks_delay_takes_exponent_notation(text: str, bounds: tuple[float, float]) -> None:
    assert parse_delay(text) == bounds


def _parsed(app: Any, prog: str, argv: list[str]) -> dict[str, Any]:
    with typer.main.get_command(app).make_context(prog, argv) as ctx:
        return dict(ctx.params)


def test_seconds_and_rates_take_exponent_notation() -> None:
    source = _parsed(source_cli.app, "qmqp-source",
                     ["-w", "1e-3", "--timeout", "5E1", "--rate", "2.5e2", NOWHERE])
    assert (source["fixed_delay"], source["timeout"], source["rate"]) == (0.001, 50.0, 250.0)
    sink = _parsed(sink_cli.app, "qmqp-sink",
                   ["-x", "1e1", "--tempfail", "5e-1", "127.0.0.1:0", "5"])
    assert (sink["duration"], sink["tempfail"]) == (10.0, 0.5)
    sink_cli.check_embedded_options(["--delay", "1e-3", "--timeout", "1e2"])  # no refusal
