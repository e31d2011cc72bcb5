"""Cancellation: :class:`CancelToken`, how a run, a job and a step are asked to stop.

A run has one token. SIGINT/SIGTERM cancel it; nothing is ever raised inside running
code. Each step attempt gets a child token (a *cancel scope*): it is cancelled with its
parent, and also alone when the step's ``timeout_seconds`` passes, so a timeout stops
one step and not the run.

Code that blocks registers what stops it, for as long as it blocks::

    proc = subprocess.Popen(...)
    with ctx.cancel.on_cancel(lambda: os.killpg(proc.pid, signal.SIGTERM)):
        proc.wait()

A callback registered after the token was cancelled runs at once, so there is no window
between starting something and registering how to stop it. Callbacks run in the thread
that cancels (a signal relay, a timer): they must be quick (send a signal, ask a server
to cancel a query, close a socket) and leave the waiting and the clean-up to the code
that blocked. An exception in a callback is logged and does not stop the others.

Connectors need no access to the step: :func:`current_cancel` is the token of the step
running in this thread (a token that is never cancelled outside a step), so a driver can
register a query cancel around the call that blocks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_log = logging.getLogger("aetherflow")


class CancelToken:
    """A one-way switch: not cancelled, then cancelled with a reason, for good.

    Thread-safe. :attr:`event` is a :class:`threading.Event` set on cancellation, for
    code that waits on events (``ctx.cancel_event`` is this event).
    """

    def __init__(self, *, timeout_seconds: float | None = None, parent: CancelToken | None = None):
        self.event = threading.Event()
        self._reason: str | None = None
        self._timed_out = False
        self._guard = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0
        self._timer: threading.Timer | None = None
        self._unlink: Callable[[], None] | None = None
        self.timeout_seconds = timeout_seconds
        if parent is not None:
            link = parent.on_cancel(lambda: self.cancel(parent.reason))
            link.__enter__()
            self._unlink = lambda: link.__exit__(None, None, None)
        if timeout_seconds is not None and not self.cancelled:
            self._timer = threading.Timer(timeout_seconds, self._expire)
            self._timer.daemon = True
            self._timer.name = "aetherflow-timeout"
            self._timer.start()

    # -- state ----------------------------------------------------------------------------

    @property
    def cancelled(self) -> bool:
        return self.event.is_set()

    @property
    def reason(self) -> str | None:
        """Why it was cancelled (``"interrupted by SIGINT"``, ``"timed out after 5s"``), or None."""
        return self._reason

    @property
    def timed_out(self) -> bool:
        """Cancelled because its own ``timeout_seconds`` passed (not because of its parent)."""
        return self._timed_out

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds, waking early on cancellation; True if cancelled."""
        return self.event.wait(timeout)

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~aetherflow.core.errors.Interrupted` (with the reason) if cancelled."""
        if self.cancelled:
            from .errors import Interrupted

            raise Interrupted(self._reason or "cancelled")

    # -- switching ------------------------------------------------------------------------

    def cancel(self, reason: str | None = None) -> bool:
        """Cancel with ``reason`` and run the registered callbacks; False if it already was."""
        with self._guard:
            if self.event.is_set():
                return False
            self._reason = reason or "cancelled"
            self.event.set()
            callbacks, self._callbacks = list(self._callbacks.values()), {}
        self._stop_timer()
        for callback in callbacks:
            _call(callback)
        return True

    def _expire(self) -> None:
        with self._guard:
            if self.event.is_set():
                return
            self._timed_out = True
        self.cancel(f"timed out after {self.timeout_seconds:g}s")

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()

    def close(self) -> None:
        """Done with this token: stop its timer and detach it from its parent."""
        self._stop_timer()
        unlink, self._unlink = self._unlink, None
        if unlink is not None:
            unlink()

    def child(self, timeout_seconds: float | None = None) -> CancelToken:
        """A token cancelled with this one, and alone after ``timeout_seconds``; close it when done."""
        return CancelToken(timeout_seconds=timeout_seconds, parent=self)

    @contextmanager
    def on_cancel(self, callback: Callable[[], None]) -> Iterator[None]:
        """Run ``callback`` on cancellation while the block runs (at once if already cancelled)."""
        with self._guard:
            already = self.event.is_set()
            if not already:
                key = self._next
                self._next += 1
                self._callbacks[key] = callback
        if already:
            _call(callback)
        try:
            yield
        finally:
            if not already:
                with self._guard:
                    self._callbacks.pop(key, None)


def _call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception as exc:  # noqa: BLE001 - one failed stop must not keep the others from running
        _log.warning("cancel.callback_failed", extra={"error": f"{type(exc).__name__}: {exc}"})


#: The token of a run that nothing cancels: what code outside a step sees.
NEVER = CancelToken()

_current = threading.local()


def current_cancel() -> CancelToken:
    """The cancel token of the step running in this thread (:data:`NEVER` outside steps)."""
    return getattr(_current, "token", NEVER)


@contextmanager
def cancel_scope(token: CancelToken) -> Iterator[CancelToken]:
    """Make ``token`` this thread's :func:`current_cancel` while the block runs."""
    previous = getattr(_current, "token", NEVER)
    _current.token = token
    try:
        yield token
    finally:
        _current.token = previous

