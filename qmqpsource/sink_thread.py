"""A qmqp-sink for synchronous code: open_sink in a thread with a trio loop of its own.

    sink = SinkThread(SinkConfig(endpoint="127.0.0.1:0"))
    running = sink.start()          # listening when it returns
    run_load_sync(SourceConfig(target=running.address, messages=10))
    sink.stop()                     # cancelled, its sockets closed, the thread joined

trio runs one loop per thread, so the caller's thread may run its own (run_load_sync)
while the sink serves. The pytest plugin's qmqp_sink_sync is this.
"""

from __future__ import annotations

import contextlib
import threading

import trio

from qmqpsource.api import RunningSink, open_sink
from qmqpsource.errors import RunError
from qmqpsource.sink.config import SinkConfig

__all__ = ["START_TIMEOUT", "SinkThread"]

# A sink listens, and stops, within milliseconds; past this, something is wrong, and
# the caller is told so rather than left waiting.
START_TIMEOUT = 30.0


class SinkThread:
    """One sink served in a daemon thread; start() once, then stop() (also after a failure)."""

    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()  # set once listening, or once the thread has failed
        self._running: RunningSink | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._error: BaseException | None = None

    def start(self) -> RunningSink:
        """Start the sink; once it listens, where and its live counts. Raises what kept it
        from listening (SinkError, say), or RunError when it did not start in time."""
        self._thread = threading.Thread(target=self._run, name="qmqp-sink thread", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            self.stop()
            raise RunError(f"the sink did not start in {START_TIMEOUT:g} s")
        if self._running is None:
            error = self._error
            self.stop()
            assert error is not None
            raise error
        return self._running

    def stop(self) -> None:
        """Cancel the sink and join its thread; raises what the sink failed with, if it did."""
        thread = self._thread
        if thread is None:
            return
        if self._token is not None and self._scope is not None:
            # Ended already (it failed): nothing to cancel.
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        thread.join(START_TIMEOUT)
        if thread.is_alive():  # a daemon: it cannot keep the process from exiting
            raise RunError(f"the sink did not stop in {START_TIMEOUT:g} s")
        self._thread = None
        error, self._error = self._error, None
        if error is not None and self._running is not None:
            raise error

    def _run(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # handed to the caller's thread: start() or stop()
            self._error = _one_error(exc)
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        with trio.CancelScope() as scope:
            self._scope = scope
            self._token = trio.lowlevel.current_trio_token()
            async with open_sink(self.config) as running:
                self._running = running
                self._ready.set()
                await trio.sleep_forever()


def _one_error(exc: BaseException) -> BaseException:
    """The error itself, out of the nursery groups that trio wraps one error in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
