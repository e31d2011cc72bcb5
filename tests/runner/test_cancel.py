"""The cancel token: callbacks, late registration, child scopes and timeouts, and the
token a step's thread sees."""

from __future__ import annotations

import logging
import threading

from aetherflow.core.api import CancelToken, current_cancel
from aetherflow.core.cancel import NEVER, cancel_scope
from aetherflow.core.errors import Interrupted


def test_cancelling_runs_each_registered_callback_once_and_keeps_the_first_reason():
    token = CancelToken()
    calls = []
    with token.on_cancel(lambda: calls.append("a")), token.on_cancel(lambda: calls.append("b")):
        assert token.cancel("interrupted by SIGINT") is True
        assert token.cancel("again") is False
    assert sorted(calls) == ["a", "b"]
    assert token.cancelled and token.reason == "interrupted by SIGINT" and token.event.is_set()


def test_a_callback_registered_after_cancellation_runs_at_once():
    token = CancelToken()
    token.cancel("stop")
    calls = []
    with token.on_cancel(lambda: calls.append("late")):
        assert calls == ["late"]  # already run when the block starts: no window to miss


def test_a_callback_is_forgotten_when_its_block_ends():
    token = CancelToken()
    calls = []
    with token.on_cancel(lambda: calls.append("x")):
        pass
    token.cancel()
    assert calls == []


def test_a_failing_callback_does_not_keep_the_others_from_running(caplog):
    token = CancelToken()
    calls = []

    def broken():
        raise RuntimeError("no")

    with caplog.at_level(logging.WARNING, logger="aetherflow"), token.on_cancel(broken), token.on_cancel(lambda: calls.append("ok")):
        token.cancel()
    assert calls == ["ok"]
    assert any(r.getMessage() == "cancel.callback_failed" for r in caplog.records)


def test_a_child_is_cancelled_with_its_parent_but_not_the_other_way_round():
    parent = CancelToken()
    child = parent.child()
    other = parent.child()
    other.cancel("only me")
    assert not parent.cancelled and not child.cancelled
    parent.cancel("interrupted by SIGTERM")
    assert child.cancelled and child.reason == "interrupted by SIGTERM" and not child.timed_out
    child.close()
    other.close()


def test_a_closed_child_no_longer_follows_its_parent():
    parent = CancelToken()
    child = parent.child()
    child.close()
    parent.cancel()
    assert not child.cancelled


def test_a_timeout_cancels_the_child_alone_and_says_so():
    parent = CancelToken()
    child = parent.child(timeout_seconds=0.05)
    assert child.wait(30)
    assert child.timed_out and child.reason == "timed out after 0.05s"
    assert not parent.cancelled
    child.close()


def test_raise_if_cancelled_raises_interrupted_with_the_reason():
    token = CancelToken()
    token.raise_if_cancelled()
    token.cancel("timed out after 1s")
    try:
        token.raise_if_cancelled()
    except Interrupted as exc:
        assert str(exc) == "timed out after 1s"
    else:
        raise AssertionError("not raised")


def test_current_cancel_is_the_scope_of_this_thread_only():
    token = CancelToken()
    seen = {}
    with cancel_scope(token):
        assert current_cancel() is token
        worker = threading.Thread(target=lambda: seen.setdefault("other", current_cancel()))
        worker.start()
        worker.join()
    assert seen["other"] is NEVER and current_cancel() is NEVER
