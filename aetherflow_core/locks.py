"""Locks held in the state store: atomic acquire, renewal while held, release always.

A held lock is renewed by a background heartbeat every third of its TTL, so a step
that runs longer than the TTL keeps it; a holder that dies stops renewing and its lock
expires, after which another owner may take it over.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import LockHeldError
from .state.base import LockOwner, StateStore


class LockManager:
    def __init__(self, store: StateStore, run_id: str, logger=None):
        self.store = store
        self.owner = LockOwner(run_id, socket.gethostname(), os.getpid())
        self.logger = logger
        self._held: dict[str, tuple[float, int]] = {}  # key -> (ttl, nesting depth)
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, key: str, ttl_seconds: float, wait_seconds: float = 0, cancel: threading.Event | None = None) -> bool:
        with self._guard:
            if key in self._held:
                # Re-entrant: a with_lock step inside a run that already holds the same key.
                ttl, depth = self._held[key]
                self._held[key] = (min(ttl, ttl_seconds), depth + 1)
                return True
        deadline = time.monotonic() + max(wait_seconds, 0)
        delay = 0.05
        while True:
            if self.store.acquire_lock(key, self.owner, ttl_seconds):
                with self._guard:
                    self._held[key] = (ttl_seconds, 1)
                self._ensure_heartbeat()
                if self.logger is not None:
                    self.logger.info("lock.acquired", extra={"lock_key": key, "ttl_seconds": ttl_seconds})
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (cancel is not None and cancel.is_set()):
                return False
            sleep_for = min(delay, remaining)
            if cancel is not None:
                cancel.wait(sleep_for)
            else:
                time.sleep(sleep_for)
            delay = min(delay * 2, 1.0)

    def release(self, key: str) -> None:
        with self._guard:
            held = self._held.get(key)
            if held is None:
                return
            ttl, depth = held
            if depth > 1:
                self._held[key] = (ttl, depth - 1)
                return
            del self._held[key]
        self.store.release_lock(key, self.owner)
        if self.logger is not None:
            self.logger.info("lock.released", extra={"lock_key": key})

    def release_all(self) -> None:
        """Release every lock still held (whatever the nesting) and stop the heartbeat."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._guard:
            keys = list(self._held)
            self._held = {key: (ttl, 1) for key, (ttl, _depth) in self._held.items()}
        for key in keys:
            try:
                self.release(key)
            except Exception as exc:  # noqa: BLE001 - one failed release must not keep the others
                if self.logger is not None:
                    self.logger.error("lock.release_failed", extra={"lock_key": key, "error": str(exc)})

    @contextmanager
    def hold(self, key: str, ttl_seconds: float, wait_seconds: float = 0, cancel: threading.Event | None = None) -> Iterator[None]:
        if not self.acquire(key, ttl_seconds, wait_seconds, cancel):
            holder = next((lock.owner for lock in self.store.list_locks() if lock.key == key), "another run")
            raise LockHeldError(
                f"lock {key!r} is held by {holder}",
                hint=f"waited {wait_seconds:g}s; raise wait_seconds, or release a stale lock with `aetherflow locks release {key}`",
            )
        try:
            yield
        finally:
            self.release(key)

    def _ensure_heartbeat(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name="aetherflow-lock-heartbeat", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        while True:
            with self._guard:
                held = dict(self._held)
            if not held:
                return
            interval = max(min(ttl for ttl, _depth in held.values()) / 3, 0.05)
            if self._stop.wait(interval):
                return
            with self._guard:
                held = {key: value for key, value in self._held.items() if key in held}
            for key, (ttl, _depth) in held.items():
                try:
                    renewed = self.store.renew_lock(key, self.owner, ttl)
                except Exception:  # noqa: BLE001 - a failed renewal is retried at the next beat
                    renewed = True
                if not renewed and self.logger is not None:
                    self.logger.error("lock.lost", extra={"lock_key": key})

