"""Where each command starts: its console script calls source(), sink() or report(); or
qmqpsource(), the one name that no one can mistake for Postfix's commands of the same
names (``qmqpsource source ...`` is ``qmqp-source ...``, whatever comes first on PATH).

Two things happen here, before and around the command's imports, and nowhere else:

- Ctrl-C during the imports (a tenth of a second) exits 130 with one line, not a
  KeyboardInterrupt traceback from deep inside some import.
- The garbage collector stays out of start-up. The imports make over 30,000 objects
  that live until the exit: the collector would walk them again and again while they
  are made, and at the exit Python would take them apart piece by piece. Measured on
  `qmqp-source -s 1 -m 1` (medians of 25 runs against Postfix's sink): 87.3 ms with
  this, 102.8 ms without, 91.8 ms with only the freeze after the imports.

The command modules import plainly; `python -m` forms of them run without this.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import signal
import sys
from collections.abc import Iterator

from qmqpsource import REPORT_PROG, SINK_PROG, SOURCE_PROG

__all__ = ["COMMANDS", "interrupts_end_quietly", "qmqpsource", "report", "sink", "source"]

# qmqpsource's subcommands: the program each one is, its module, what it does.
COMMANDS = {
    "source": (SOURCE_PROG, "qmqpsource.cli.source",
               "put a QMQP load on a server: Postfix's qmqp-source, remade"),
    "sink": (SINK_PROG, "qmqpsource.cli.sink", "a QMQP test server: Postfix's qmqp-sink, remade"),
    "report": (REPORT_PROG, "qmqpsource.cli.report",
               "merge, check and draw results of qmqp-source"),
}
NAME = "qmqpsource"
USAGE = f"usage: {NAME} {{{','.join(COMMANDS)}}} [ARGS]... | {NAME} --version"


def source() -> None:
    """The qmqp-source console script (and ``python -m qmqpsource``)."""
    _start(SOURCE_PROG, "qmqpsource.cli.source")


def sink() -> None:
    """The qmqp-sink console script."""
    _start(SINK_PROG, "qmqpsource.cli.sink")


def report() -> None:
    """The qmqp-report console script."""
    _start(REPORT_PROG, "qmqpsource.cli.report")


def qmqpsource() -> None:
    """The qmqpsource console script: ``qmqpsource COMMAND [ARGS]...`` runs COMMAND's program
    with ARGS, exactly as its own script would (``qmqpsource source --help``)."""
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        stream = sys.stdout if args else sys.stderr
        stream.write(_help())
        raise SystemExit(0 if args else 1)
    if args[0] == "--version":
        from qmqpsource import __version__

        print(f"{NAME} {__version__}")
        raise SystemExit(0)
    if args[0] not in COMMANDS:
        sys.stderr.write(f"{NAME}: fatal: no such command: {args[0]!r}; {USAGE}\n")
        raise SystemExit(1)
    prog, module, _ = COMMANDS[args[0]]
    sys.argv = [f"{NAME} {args[0]}", *args[1:]]
    _start(prog, module)


def _help() -> str:
    lines = [USAGE, "", "Commands (each takes the options of its program; COMMAND --help "
             "lists them):"]
    lines += [f"  {name:<8}{prog}: {what}" for name, (prog, _, what) in COMMANDS.items()]
    return "\n".join(lines) + "\n"


def _start(prog: str, module: str) -> None:
    with _imports_uncollected(), interrupts_end_quietly(prog):
        main = importlib.import_module(module).main
    # This process's own start-up is done: what it made lives until the exit anyway.
    # Frozen, later collections no longer walk it, and the exit leaves it to the
    # operating system instead of taking it apart.
    gc.freeze()
    main()


@contextlib.contextmanager
def _imports_uncollected() -> Iterator[None]:
    """No collections while the block runs; then what it made goes straight to the oldest
    generation, as if it had survived the collections it skipped (freeze() then
    unfreeze() moves them all without the walk that plain re-enabling would cost)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():  # frozen by someone else: not ours to thaw
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()


@contextlib.contextmanager
def interrupts_end_quietly(prog: str) -> Iterator[None]:
    """Ctrl-C while the block runs: exit 130 with one line.

    Nothing is open yet that would need closing, so the handler exits at once. The
    previous handler is back after the block: from there on the command handles
    KeyboardInterrupt itself.
    """

    def interrupted(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.write(2, f"{prog}: interrupted\n".encode())
        os._exit(130)

    try:
        previous = signal.signal(signal.SIGINT, interrupted)
    except ValueError:  # not the main thread (imported by a test's thread): not ours
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
