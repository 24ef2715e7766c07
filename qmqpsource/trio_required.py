"""The async API runs only in trio: called elsewhere, it says so in one line.

Under asyncio (or any loop that is not trio), trio's own calls fail deep inside a run
with "must be called from async context" or an AttributeError; the API's functions
call require_trio() first instead.
"""

from __future__ import annotations

import trio

from qmqpsource.errors import TrioRequiredError

__all__ = ["refuse_trio", "require_trio"]


# What a caller without a trio loop can use instead of each async function.
_INSTEAD = {
    "run_load": "call run_load_sync, which runs a trio loop of its own",
    "find_rate": "call find_rate_sync, which runs a trio loop of its own",
    "open_sink": "use the qmqp_sink_sync fixture, which serves a sink from a thread",
}


def require_trio(function: str) -> None:
    """Raise TrioRequiredError unless a trio task is running ``function`` now."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        instead = _INSTEAD.get(function, "run it under trio.run")
        raise TrioRequiredError(
            f"{function} needs trio, and was called {_where()}: call it in a trio program "
            f"(trio.run), or {instead}"
        ) from None


def _where() -> str:
    import sniffio  # trio's own dependency; only on this error path

    try:
        return f"under {sniffio.current_async_library()}"
    except sniffio.AsyncLibraryNotFoundError:
        return "outside trio"


def refuse_trio(function: str, instead: str) -> None:
    """Raise TrioRequiredError when a trio task runs ``function`` (a _sync one): trio
    cannot run a loop inside its own, and would say only that."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return
    raise TrioRequiredError(f"{function} runs a trio loop of its own, and was called inside "
                            f"one: await {instead} instead")
