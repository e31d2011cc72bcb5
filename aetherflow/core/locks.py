"""Locks held in the state store: atomic acquire, renewal while held, release always.

A held lock is renewed by a background heartbeat every third of its TTL, so a step
that runs longer than the TTL keeps it; a holder that dies stops renewing and its lock
expires, after which another owner may take it over.

In the store a lock's owner is the run. Inside the run, a lock taken by a job (the
``with_lock`` step) belongs to that job's thread: another job of the same run running
beside it waits for it like any other run would. A lock taken with ``shared=True``
(the flow lock) belongs to the whole run, so every job may take it again. Taking a
lock again where one already holds it (the same thread, or a shared lock) nests.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from . import procfs
from .errors import LockHeldError
from .state.base import LockOwner, StateStore
from .state.rows import StepRunRow

MAX_POLL_SECONDS = 0.5  # a waiter notices a released lock within this time


def process_alive(host: str, pid: int) -> bool | None:
    """Whether ``pid`` still runs, when ``host`` is this machine; None when it cannot be known."""
    if host != socket.gethostname():
        return None
    return procfs.process_alive(pid)


def leftover_groups(store: StateStore, run_id: str) -> list[tuple[StepRunRow, int, bool | None]]:
    """The process groups steps of ``run_id`` recorded as running (``host:pgid``) and
    that may still run: each with its step row, the group id and whether it runs
    (None: on another machine, which cannot be checked from here)."""
    found = []
    for row in store.step_runs(run_id):
        if not row.process_group:
            continue
        host, _, pgid = row.process_group.rpartition(":")
        if not pgid.isdigit():
            continue
        alive = procfs.session_alive(int(pgid)) if host == socket.gethostname() else None
        if alive is not False:
            found.append((row, int(pgid), alive))
    return found


def stop_leftover_groups(store: StateStore, run_id: str, grace_seconds: float = 10.0) -> list[str]:
    """Stop what :func:`leftover_groups` finds running on this machine; what was done,
    as sentences for warnings (a group on another machine is named, not touched)."""
    done = []
    for row, pgid, alive in leftover_groups(store, run_id):
        where = f"step {row.job_id}.{row.step_id} of run {run_id}"
        if alive is None:
            done.append(f"process group {row.process_group} of {where} may still run on that machine")
            continue
        how = procfs.stop_process_group(pgid, grace_seconds)
        done.append(f"process group {pgid} of {where} was still running and was {how}")
    return done


class LockManager:
    def __init__(self, store: StateStore, run_id: str, logger=None):
        self.store = store
        self.owner = LockOwner(run_id, socket.gethostname(), os.getpid())
        self.logger = logger
        self._held: dict[str, tuple[float, int]] = {}  # key -> (ttl, nesting depth)
        self._holders: dict[str, int | None] = {}  # key -> the thread holding it; None: the whole run
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def acquire(
        self, key: str, ttl_seconds: float, wait_seconds: float = 0, cancel: threading.Event | None = None, *, shared: bool = False
    ) -> bool:
        """Take ``key`` within ``wait_seconds``; False when it stays held (or ``cancel`` is set)."""
        me = None if shared else threading.get_ident()
        deadline = time.monotonic() + max(wait_seconds, 0)
        delay, waited = 0.05, False
        while True:
            if key not in self._held:
                self._stop_leftovers(key)  # outside the guard: it may wait for processes to stop
            with self._guard:
                if key in self._held:
                    holder = self._holders.get(key)
                    if holder is None or holder == me:
                        ttl, depth = self._held[key]
                        self._held[key] = (min(ttl, ttl_seconds), depth + 1)
                        self._wake.set()
                        return True
                    taken = False  # held by another job of this run
                else:
                    # Under the guard: two jobs of this run (one owner in the store) must not both succeed.
                    taken = self.store.acquire_lock(key, self.owner, ttl_seconds)
                    if taken:
                        self._held[key] = (ttl_seconds, 1)
                        self._holders[key] = me
                        self._ensure_heartbeat()
            if taken:
                if self.logger is not None:
                    self.logger.info("lock.acquired", extra={"lock_key": key, "ttl_seconds": ttl_seconds})
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (cancel is not None and cancel.is_set()):
                return False
            if not waited and self.logger is not None:
                self.logger.info("lock.waiting", extra={"lock_key": key, "wait_seconds": wait_seconds})
            waited = True
            # Exponential backoff with jitter, so waiters started together do not poll in step.
            sleep_for = min(delay * random.uniform(0.5, 1.0), remaining)
            if cancel is not None:
                cancel.wait(sleep_for)
            else:
                time.sleep(sleep_for)
            delay = min(delay * 2, MAX_POLL_SECONDS)

    def _stop_leftovers(self, key: str) -> None:
        """Before an expired lock is taken over: the process groups its dead holder's
        steps left running (recorded in the state) stop, so the new holder never works
        beside them."""
        lock = next((lock for lock in self.store.list_locks() if lock.key == key), None)
        if lock is None or lock.expires_at >= self.store.now():
            return
        owner = LockOwner.decode(lock.owner)
        if owner is None or owner.run_id == self.owner.run_id or process_alive(owner.host, owner.pid) is not False:
            return
        for note in stop_leftover_groups(self.store, owner.run_id):
            if self.logger is not None:
                self.logger.warning("lock.leftover_stopped", extra={"lock_key": key, "detail": note})

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
            self._holders.pop(key, None)
            # Under the guard: a job of this run waiting for the key takes it only once the store let it go.
            self.store.release_lock(key, self.owner)
        if self.logger is not None:
            self.logger.info("lock.released", extra={"lock_key": key})

    def release_all(self) -> None:
        """Stop the heartbeat and release every lock still held, whatever the nesting."""
        with self._guard:
            self._stopping = True
            thread = self._thread
            self._wake.set()
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

    def holder(self, key: str) -> str:
        return next((lock.owner for lock in self.store.list_locks() if lock.key == key), "another run")

    @contextmanager
    def hold(self, key: str, ttl_seconds: float, wait_seconds: float = 0, cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold ``key`` for this thread (this job) while the block runs."""
        if not self.acquire(key, ttl_seconds, wait_seconds, cancel):
            raise LockHeldError(
                f"lock {key!r} is held by {self.holder(key)}",
                hint=f"waited {wait_seconds:g}s; raise wait_seconds, or release a stale lock with `aetherflow locks release {key}`",
            )
        try:
            yield
        finally:
            self.release(key)

    # -- heartbeat ----------------------------------------------------------------------

    def _ensure_heartbeat(self) -> None:
        # Called with the guard held, so the thread cannot exit unnoticed in between.
        self._wake.set()
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._heartbeat, name="aetherflow-lock-heartbeat", daemon=True)
            self._thread.start()

    def _heartbeat(self) -> None:
        due: dict[str, float] = {}  # key -> monotonic time of its next renewal
        while True:
            with self._guard:
                if self._stopping or not self._held:
                    self._thread = None
                    return
                now = time.monotonic()
                held = dict(self._held)
                due = {key: due.get(key, now + ttl / 3) for key, (ttl, _depth) in held.items()}
                self._wake.clear()
            # Woken early when a lock is acquired (its TTL may be shorter) or on release_all.
            self._wake.wait(max(min(due.values()) - time.monotonic(), 0))
            now = time.monotonic()
            for key, when in due.items():
                if when > now or self._stopping:
                    continue
                ttl = held[key][0]
                try:
                    renewed = self.store.renew_lock(key, self.owner, ttl)
                except Exception:  # noqa: BLE001 - retried soon: a third of the TTL is still left
                    due[key] = now + min(ttl / 6, 1.0)
                    continue
                due[key] = now + ttl / 3
                if not renewed:
                    with self._guard:
                        lost = self._held.pop(key, None) is not None
                        self._holders.pop(key, None)
                    if lost and self.logger is not None:
                        # Taken over after expiring (the process stalled longer than the TTL) or
                        # released by `aetherflow locks release`.
                        self.logger.error("lock.lost", extra={"lock_key": key})
