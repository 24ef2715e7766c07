"""A command's start-up without the garbage collector's needless work (~30 ms a run).

Start-up imports trio, attrs, typer and ours: over 30,000 objects, made at once and
kept until the exit. The collector would walk them again and again while they are
made (~8 ms); at the exit, Python would take them apart piece by piece (~20 ms, a
sixth of a short run). So a command imports inside ``imports_uncollected()``, and
its own process then calls ``freeze_for_good()``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
from collections.abc import Iterator

__all__ = ["freeze_for_good", "imports_uncollected", "interrupts_end_quietly"]


@contextlib.contextmanager
def imports_uncollected() -> Iterator[None]:
    """No collections while the block runs; then what it made goes straight to the oldest
    generation, as if it had survived the collections it skipped.

    Plain re-enabling would not do: the first collection after it would walk every object
    made meanwhile (~6 ms). freeze() then unfreeze() moves them all without a walk.
    """
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


def freeze_for_good() -> None:
    """Take every object alive now out of the collector's sight, for good.

    Only for a command's own process, once its imports are done; never for a caller
    in-process. What start-up made lives until the exit anyway: frozen, later
    collections no longer walk it, and the exit leaves it to the operating system
    instead of taking it apart (Python never promised to finalize what is alive then).
    """
    gc.freeze()


@contextlib.contextmanager
def interrupts_end_quietly(prog: str) -> Iterator[None]:
    """Ctrl-C while the block runs (a command's imports, a tenth of a second): exit 130
    with one line, not a KeyboardInterrupt traceback from deep inside some import.

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
