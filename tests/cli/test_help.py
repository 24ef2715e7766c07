"""The three commands alike: --version, the usage line, help that reads well, and usage
errors in one style (``PROG: fatal: WHAT; usage: ...``)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import typer

from qmqpsource import __version__
from qmqpsource.cli import report as report_cli
from qmqpsource.cli import sink as sink_cli
from qmqpsource.cli import source as cli

MAINS: dict[str, Callable[[list[str] | None], None]] = {
    "qmqp-source": cli.main,
    "qmqp-sink": sink_cli.main,
    "qmqp-report": report_cli.main,
}
APPS = {"qmqp-source": cli.app, "qmqp-sink": sink_cli.app, "qmqp-report": report_cli.app}
PROGS = list(MAINS)


def run(prog: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        MAINS[prog](args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    assert isinstance(code, int)
    return code, out, err


def option_names(prog: str) -> list[str]:
    command = typer.main.get_command(APPS[prog])
    return [name for param in command.params for name in getattr(param, "opts", ())
            if name.startswith("-")]


@pytest.mark.parametrize("prog", PROGS)
def test_version(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(prog, ["--version"], capsys) == (0, f"{prog} {__version__}\n", "")


@pytest.mark.parametrize(
    ("prog", "usage"),
    [("qmqp-source", "Usage: qmqp-source [OPTIONS] [TARGET]"),
     ("qmqp-sink", "Usage: qmqp-sink [OPTIONS] ENDPOINT BACKLOG"),
     ("qmqp-report", "Usage: qmqp-report [OPTIONS] FILE...")],
)
def test_usage_line(prog: str, usage: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(prog, ["--help"], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == usage


@pytest.mark.parametrize(
    ("prog", "term"),
    [
        ("qmqp-source", "-C, --connect-attempts N"), ("qmqp-source", "-f, --from ADDR"),
        ("qmqp-source", "-l, --length BYTES"), ("qmqp-source", "-m, --messages N"),
        ("qmqp-source", "-M, --myhostname NAME"), ("qmqp-source", "-r, --recipients N"),
        ("qmqp-source", "-R, --random-delay SECONDS"), ("qmqp-source", "-s, --sessions N"),
        ("qmqp-source", "-t, --to ADDR"), ("qmqp-source", "-w, --wait SECONDS"),
        ("qmqp-source", "--connect-limit N"), ("qmqp-source", "--timeout SECONDS"),
        ("qmqp-source", "--interval SECONDS"), ("qmqp-source", "--json PATH"),
        ("qmqp-source", "-F, --message-file FILE"), ("qmqp-source", "-S, --subject TEXT"),
        ("qmqp-source", "--duration SECONDS"), ("qmqp-source", "--rate R"),
        ("qmqp-source", "--shard I/N"), ("qmqp-source", "--workers N|auto"),
        ("qmqp-source", "--sink-options TEXT"), ("qmqp-source", "TARGET"),
        ("qmqp-sink", "-x SECONDS"), ("qmqp-sink", "--max-size BYTES"),
        ("qmqp-sink", "--timeout SECONDS"), ("qmqp-sink", "--max-connections N"),
        ("qmqp-sink", "--tempfail RATE"), ("qmqp-sink", "--reject RATE"),
        ("qmqp-sink", "--hang RATE"), ("qmqp-sink", "--drop RATE"),
        ("qmqp-sink", "--delay SECONDS|MIN-MAX"), ("qmqp-sink", "--seed N"),
        ("qmqp-sink", "--maildir DIR"), ("qmqp-sink", "--json PATH"),
        ("qmqp-sink", "--control-fd FD"), ("qmqp-sink", "ENDPOINT"), ("qmqp-sink", "BACKLOG"),
        ("qmqp-report", "--json PATH"), ("qmqp-report", "FILE..."),
    ],
)
def test_values_are_named_as_the_help_speaks_of_them(
    prog: str, term: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(prog, ["--help"], capsys)
    assert any(line.strip().startswith(f"{term}  ") for line in out.splitlines()), out


@pytest.mark.parametrize("prog", PROGS)
def test_no_type_names_for_values(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(prog, ["--help"], capsys)
    assert not re.search(r"<\w+>|\b(INTEGER|FLOAT|BOOLEAN)\b|\{\w+\}", out), out


@pytest.mark.parametrize("prog", ["qmqp-source", "qmqp-sink"])  # qmqp-report has none
def test_defaults_all_read_default_x(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(prog, ["--help"], capsys)
    text = " ".join(out.split())
    shown = re.findall(r"\[([^\]]*)\]", text)
    defaults = [d for d in shown if d.startswith("default:")]
    assert defaults, text
    assert all(re.fullmatch(r"default: [^()\s][^()]*", d) for d in defaults), defaults


def test_source_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run("qmqp-source", ["--help"], capsys)
    text = " ".join(out.split())
    for option, default in [("-m, --messages N", "1"), ("-s, --sessions N", "1"),
                            ("-l, --length BYTES", "1024"), ("--timeout SECONDS", "300"),
                            ("-f, --from ADDR", "foo@MYHOSTNAME"), ("--workers N|auto", "1")]:
        after = text[text.index(option):]
        assert re.match(rf"{re.escape(option)} [^\[]*\[default: {re.escape(default)}\]", after)
    assert "[default: 0]" not in text  # -v counts; a count of 0 is not a default worth a word


@pytest.mark.parametrize("columns", ["50", "60", "70", "80", "120"])
@pytest.mark.parametrize("prog", PROGS)
def test_help_never_breaks_a_line_at_a_hyphen(
    prog: str, columns: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    _, out, _ = run(prog, ["--help"], capsys)
    assert "\u2011" not in out
    for line in out.splitlines():
        assert not line.rstrip().endswith("-") or line.strip() == "-", line
    words = " ".join(out.split()).split(" ")
    for name in option_names(prog):
        assert any(w.strip("'.,;:()[]") == name or w.startswith(f"{name},") for w in words), name


def test_sink_options_example_stays_whole(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run("qmqp-source", ["--help"], capsys)
    assert "--tempfail 0.1 --seed 1" in " ".join(out.split())
    assert "--\n" not in out


# The same kinds of mistake, made with each command: the same shape of answer.
MISTAKES = [
    ("qmqp-source", ["-s", "many", "h"], "-s must be a whole number, not 'many'"),
    ("qmqp-source", ["--bogus", "h"], "no such option: --bogus"),
    ("qmqp-source", ["--sesions", "2", "h"], "no such option: --sesions (did you mean --sessions"),
    ("qmqp-source", [], "missing target"),
    ("qmqp-source", ["-s"], "-s requires an argument"),
    ("qmqp-sink", ["--max-size", "big", ":0", "1"], "--max-size must be a whole number, not 'big'"),
    ("qmqp-sink", ["--bogus", ":0", "1"], "no such option: --bogus"),
    ("qmqp-sink", ["--tempfial", "0.1", ":0", "1"],
     "no such option: --tempfial (did you mean --tempfail?)"),
    ("qmqp-sink", [], "missing endpoint"),
    ("qmqp-sink", ["--seed"], "--seed requires an argument"),
    ("qmqp-report", ["--bogus", "x.json"], "no such option: --bogus"),
    ("qmqp-report", ["--jsno", "m.json", "x.json"],
     "no such option: --jsno (did you mean --json?)"),
    ("qmqp-report", [], "missing FILE"),
    ("qmqp-report", ["--json"], "--json requires an argument"),
]


@pytest.mark.parametrize(("prog", "args", "what"), MISTAKES,
                         ids=[f"{p} {' '.join(a)}" for p, a, _ in MISTAKES])
def test_usage_errors_in_one_style(
    prog: str, args: list[str], what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(prog, args, capsys)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.endswith("\n")
    assert re.fullmatch(rf"{prog}: fatal: {re.escape(what)}.*; usage: {prog} .*\n", err), err
    assert "Possible options" not in err and ".;" not in err
    if "--bogus" in args:
        assert "did you mean" not in err
