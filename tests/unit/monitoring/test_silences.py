"""The silencer: matchers, states, and notifying covered alerts when a silence ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from mlobs.monitoring.alerts import Alert
from mlobs.monitoring.silences import Silence, Silencer, validate
from mlobs.storage.db import make_engine, migrate
from mlobs.storage.silence_repository import SilenceRepository

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


Parts = tuple[SilenceRepository, Clock, Silencer]


@pytest.fixture
def one(db_url: str) -> Iterator[Parts]:
    """One serving process's silences on a fresh database: repository, clock, silencer."""
    engine = make_engine(db_url)
    migrate(engine)
    clock = Clock()
    store = SilenceRepository(engine)
    yield store, clock, Silencer(store, clock, refresh_seconds=0)
    engine.dispose()


def _alert(aid: str, model: str, kind: str) -> Alert:
    return Alert(aid, f"{model}/x/live", model, "x", kind, "live", "warning", "active", 0.3, 0.2,
                 "m", T0, T0, T0)  # fmt: skip


def _silence(
    sid: str, model: str | None, kind: str | None, start: datetime, end: datetime
) -> Silence:
    return Silence(sid, model, kind, start, end, "ann", "c", T0)


def test_states_and_matchers() -> None:
    s = _silence("s", "fraud", None, T0, T0 + timedelta(hours=1))
    assert s.state(T0 - timedelta(seconds=1)) == "pending"
    assert s.state(T0) == "active" and s.state(T0 + timedelta(hours=1)) == "expired"
    assert s.silences(_alert("a", "fraud", "drift_detected"), T0)
    assert not s.silences(_alert("a", "price", "drift_detected"), T0)
    both = _silence("t", "fraud", "high_latency", T0, T0 + timedelta(hours=1))
    assert both.covers(_alert("a", "fraud", "high_latency"))
    assert not both.covers(_alert("a", "fraud", "drift_detected"))
    assert validate(None, None, T0, T0 + timedelta(1), ["fraud"])[0][0] == "model_name"
    assert validate("fraud", None, T0, T0, ["fraud"]) == [("ends_at", "must be after starts_at")]


def test_sweep_notifies_covered_open_alerts_when_a_silence_ends(one: Parts) -> None:
    store, clock, silencer = one
    store.create(_silence("s1", "fraud", None, T0, T0 + timedelta(minutes=10)))
    store.create(_silence("s2", None, "high_latency", T0, T0 + timedelta(hours=2)))
    alerts = [_alert("a", "fraud", "drift_detected"), _alert("b", "fraud", "high_latency"),
              _alert("c", "price", "drift_detected")]  # fmt: skip
    notified: list[str] = []
    assert silencer.sweep(alerts, lambda a: notified.append(a.id)) == 0  # first sweep: baseline
    assert [silencer.is_silenced(a) for a in alerts] == [True, True, False]
    clock.now = T0 + timedelta(minutes=11)  # s1 ended; s2 still covers b
    assert silencer.sweep(alerts, lambda a: notified.append(a.id)) == 1
    assert notified == ["a"]
    assert silencer.sweep(alerts, lambda a: notified.append(a.id)) == 0  # once only


def test_each_ended_silence_is_notified_by_one_process_and_after_a_restart(db_url: str) -> None:
    """Two serving processes (their own silencer and engine, one database) sweep in turn: the
    alerts of an ended silence are notified once, by whichever claims the stretch; a process
    started after the silence ended (the others stopped) still notifies it."""
    engines = [make_engine(db_url) for _ in range(3)]
    migrate(engines[0])
    clock = Clock()
    first, second, later = (Silencer(SilenceRepository(e), clock, refresh_seconds=0)
                            for e in engines)  # fmt: skip
    store = SilenceRepository(engines[0])
    store.create(_silence("s1", "fraud", None, T0, T0 + timedelta(minutes=10)))
    store.create(_silence("s2", "price", None, T0, T0 + timedelta(minutes=30)))
    alerts = [_alert("a", "fraud", "drift_detected"), _alert("c", "price", "drift_detected")]
    notified: list[tuple[str, str]] = []

    def sweep(who: str, silencer: Silencer) -> int:
        return silencer.sweep(alerts, lambda a: notified.append((who, a.id)))

    assert sweep("first", first) == 0 and sweep("second", second) == 0  # none has ended
    clock.now = T0 + timedelta(minutes=11)  # s1 ended
    assert sweep("first", first) + sweep("second", second) == 1
    assert [a for _, a in notified] == ["a"]
    clock.now = T0 + timedelta(minutes=12)
    assert sweep("second", second) == 0 and sweep("first", first) == 0
    # Both stop; s2 ends while none runs; a new process's first sweep notifies it.
    clock.now = T0 + timedelta(minutes=45)
    assert sweep("later", later) == 1
    assert notified[1:] == [("later", "c")]
    for e in engines:
        e.dispose()


def test_concurrent_claims_of_an_ended_silence_have_one_winner(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(4)]
    migrate(engines[0])
    repos = [SilenceRepository(e) for e in engines]
    for n in range(5):
        repos[0].create(_silence(f"s{n}", "fraud", None, T0, T0 + timedelta(minutes=n + 1)))

    def claim(repo: SilenceRepository, sid: str, barrier: threading.Barrier,
              won: list[SilenceRepository]) -> None:  # fmt: skip
        barrier.wait()
        if repo.claim_end(sid, T0 + timedelta(hours=1)):
            won.append(repo)

    assert [s.id for s in repos[1].ended_unnotified(T0 + timedelta(minutes=3))] == [
        "s0",
        "s1",
        "s2",
    ]
    for n in range(5):
        barrier, won = threading.Barrier(len(repos)), []
        threads = [threading.Thread(target=claim, args=(r, f"s{n}", barrier, won)) for r in repos]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, (n, won)
    assert repos[2].ended_unnotified(T0 + timedelta(hours=1)) == []
    for e in engines:
        e.dispose()


def test_a_silence_ended_early_is_notified_even_if_a_sweep_ran_meanwhile(one: Parts) -> None:
    """An operator's expire takes its time, then writes it: a sweep by another process in
    between (which sees the silence still in force) must not make the end go unnotified."""
    store, clock, silencer = one
    store.create(_silence("s1", "fraud", None, T0, T0 + timedelta(hours=1)))
    alerts = [_alert("a", "fraud", "drift_detected")]
    notified: list[str] = []
    ended_at = T0 + timedelta(seconds=10)  # the expire request's clock
    clock.now = ended_at + timedelta(seconds=0.2)
    assert silencer.sweep(alerts, lambda a: notified.append(a.id)) == 0
    store.expire("s1", ended_at)  # its write lands after that sweep
    clock.now = ended_at + timedelta(seconds=15)
    assert silencer.sweep(alerts, lambda a: notified.append(a.id)) == 1
    assert notified == ["a"]


def test_a_failed_read_of_the_open_alerts_leaves_the_end_to_the_next_sweep(one: Parts) -> None:
    store, clock, silencer = one
    store.create(_silence("s1", "fraud", None, T0, T0 + timedelta(minutes=1)))
    clock.now = T0 + timedelta(minutes=2)

    def unreadable() -> Iterator[Alert]:
        raise OSError("database away")
        yield  # a generator, read lazily as the runtime's is

    with pytest.raises(OSError):
        silencer.sweep(unreadable(), lambda a: None)
    notified: list[str] = []
    assert silencer.sweep([_alert("a", "fraud", "x")], lambda a: notified.append(a.id)) == 1
    assert notified == ["a"]


def test_a_silence_created_already_ended_notifies_nothing(one: Parts) -> None:
    store, clock, silencer = one
    clock.now = T0 + timedelta(hours=2)
    past = Silence("old", "fraud", None, T0, T0 + timedelta(hours=1), "ann", "c", clock.now)
    store.create(past)
    assert silencer.sweep([_alert("a", "fraud", "x")], lambda a: None) == 0
    store.create(_silence("later", "fraud", None, T0 + timedelta(hours=3), T0 + timedelta(hours=4)))
    store.expire("later", clock.now)  # pending, so it never silenced anything either
    assert silencer.sweep([_alert("a", "fraud", "x")], lambda a: None) == 0
