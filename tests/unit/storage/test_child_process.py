"""The child-process transport: a child that cannot start is not spawned again and again."""

from __future__ import annotations

import pytest

from mlobs.storage import child_process
from mlobs.storage.child_process import ChildProcess, StoreUnreachable


class _Clock:
    """``child_process``'s ``time``: its ``monotonic`` moves only when the test moves it, so
    that no stall of a busy machine can pass for a pause (nor a pause for a stall)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_a_child_that_keeps_failing_is_started_again_after_a_doubling_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = _Clock()
    monkeypatch.setattr(child_process, "time", clock)
    first_pause = child_process.BACKOFF_FIRST
    proc = ChildProcess("mlobs.no_such_module", b"setup", timeout=10)
    try:
        for expected in (1, 2):  # the first failure is retried at once
            with pytest.raises(StoreUnreachable):
                proc.call(lambda generation: b"{}")
            assert proc.generation == expected and proc.failures == expected
        with pytest.raises(StoreUnreachable, match="next start in"):
            proc.call(lambda generation: b"{}")
        assert proc.generation == 2 and proc.pid is None  # no child started meanwhile
        clock.now += first_pause + 0.1
        with pytest.raises(StoreUnreachable):
            proc.call(lambda generation: b"{}")
        assert proc.generation == 3 and proc.failures == 3
        # The pause doubled: still waiting after the first one's length.
        clock.now += first_pause + 0.1
        with pytest.raises(StoreUnreachable, match="next start in"):
            proc.call(lambda generation: b"{}")
        assert proc.generation == 3
    finally:
        proc.stop()


def test_an_error_building_the_request_does_not_count_against_the_child() -> None:
    from mlobs.storage.insert_process import InsertProcess

    proc = InsertProcess("sqlite://")
    try:
        proc.start()
        pid = proc.pid

        def broken(generation: int) -> bytes:
            raise TypeError("cannot encode this")

        with pytest.raises(TypeError):
            proc.call(broken)
        assert proc.pid == pid and proc.failures == 0 and proc.restarts == 0
    finally:
        proc.stop()
