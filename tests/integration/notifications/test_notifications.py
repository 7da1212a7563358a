"""Notifier and channels against real HTTP receivers on loopback (no mocks of httpx)."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from helpers import WAIT_SECONDS, eventually
from integration.notifications.receiver import Receiver
from mlobs.monitoring.alerts import Alert
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.notifications import (
    AlertmanagerChannel,
    Channel,
    Notifier,
    SlackChannel,
    WebhookChannel,
    alertmanager_labels,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def make_alert(**changes: Any) -> Alert:
    alert = Alert(
        id="a1", fingerprint="fraud/drift/live", model_name="fraud", family="drift",
        alert_type="drift_critical", scope="live", severity="critical", state="active",
        value=0.42, threshold=0.3, message="drift share 0.42 over 500 rows; drifted: amount",
        opened_at=T0, updated_at=T0, last_seen_at=T0,
    )  # fmt: skip
    return dataclasses.replace(alert, **changes)


def resolved(alert: Alert, at: datetime = T0 + timedelta(minutes=5)) -> Alert:
    return dataclasses.replace(
        alert, state="resolved", resolved_at=at, updated_at=at, resolved_by="system"
    )


def count(metrics: Metrics, channel: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "mlobs_notifications_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


def wait_until(predicate: Callable[[], bool]) -> None:
    eventually(predicate, interval=0.005)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
def make_notifier(metrics: Metrics) -> Iterator[Callable[..., Notifier]]:
    made: list[Notifier] = []

    def make(channels: list[Channel], *, start: bool = True, **options: Any) -> Notifier:
        options.setdefault("backoff", 0.01)
        notifier = Notifier(channels, metrics, **options)
        made.append(notifier)
        if start:
            notifier.start()
        return notifier

    yield make
    for notifier in made:
        notifier.stop(timeout=5)


def test_payloads_of_the_three_channels(
    make_notifier: Callable[..., Notifier], metrics: Metrics
) -> None:
    with Receiver() as hook, Receiver() as slack, Receiver() as am:
        notifier = make_notifier(
            [WebhookChannel(hook.url + "/hook"), SlackChannel(slack.url + "/slack"),
             AlertmanagerChannel(am.url + "/")]
        )  # fmt: skip
        alert = make_alert()
        notifier(alert, "opened")
        notifier(resolved(alert), "resolved")
        opened_hook, resolved_hook = hook.wait_for(2)
        opened_slack, resolved_slack = slack.wait_for(2)
        opened_am, resolved_am = am.wait_for(2)
        wait_until(lambda: count(metrics, "alertmanager", "sent") == 2)

    # Generic webhook: every field of the alert, datetimes in ISO 8601.
    assert opened_hook.method == "POST" and opened_hook.path == "/hook"
    assert opened_hook.body["event"] == "opened" and opened_hook.body["source"] == "mlobs"
    body = opened_hook.body["alert"]
    assert set(body) == {f.name for f in dataclasses.fields(Alert)}
    assert body["id"] == "a1" and body["severity"] == "critical" and body["value"] == 0.42
    assert datetime.fromisoformat(body["opened_at"]) == T0
    assert body["resolved_at"] is None and body["events"] == []
    assert resolved_hook.body["event"] == "resolved"
    assert resolved_hook.body["alert"]["state"] == "resolved"
    assert datetime.fromisoformat(resolved_hook.body["alert"]["resolved_at"]) == T0 + timedelta(
        minutes=5
    )

    # Slack: a one-line text, and blocks.
    assert opened_slack.path == "/slack"
    text = opened_slack.body["text"]
    assert text == (
        ":rotating_light: [CRITICAL] drift_critical on fraud (live): "
        "drift share 0.42 over 500 rows; drifted: amount"
    )
    assert opened_slack.body["blocks"][0]["text"]["text"] == text
    assert resolved_slack.body["text"].startswith(":white_check_mark: [RESOLVED] drift_critical")

    # Alertmanager API v2: a list of one alert; endsAt only on resolve.
    assert opened_am.path == "/api/v2/alerts"
    [firing] = opened_am.body
    assert firing["labels"] == {
        "alertname": "drift_critical", "model_name": "fraud", "severity": "critical",
        "dataset_name": "live", "source": "mlobs",
    }  # fmt: skip
    assert firing["annotations"]["description"] == alert.message
    assert firing["annotations"]["summary"] == "drift_critical on fraud (live)"
    assert firing["annotations"]["value"] == "0.42"
    assert firing["annotations"]["threshold"] == "0.3"
    assert datetime.fromisoformat(firing["startsAt"]) == T0
    assert "endsAt" not in firing
    [ended] = resolved_am.body
    assert ended["labels"] == firing["labels"]
    assert datetime.fromisoformat(ended["endsAt"]) == T0 + timedelta(minutes=5)
    assert count(metrics, "webhook", "sent") == 2 and count(metrics, "slack", "sent") == 2


def test_alertmanager_scope_labels() -> None:
    feature = alertmanager_labels(make_alert(scope="amount", alert_type="feature_drift"))
    assert feature["feature"] == "amount" and "dataset_name" not in feature
    latency = alertmanager_labels(
        make_alert(scope="predict", alert_type="high_latency", severity="warning")
    )
    assert latency == {
        "alertname": "high_latency", "model_name": "fraud", "severity": "warning",
        "source": "mlobs",
    }  # fmt: skip
    assert alertmanager_labels(make_alert(scope="request"))["dataset_name"] == "request"


def test_alertmanager_escalation_ends_the_stale_label_set(
    make_notifier: Callable[..., Notifier],
) -> None:
    with Receiver() as am:
        notifier = make_notifier([AlertmanagerChannel(am.url)])
        warning = make_alert(alert_type="drift_detected", severity="warning", threshold=0.2)
        notifier(warning, "opened")
        escalated_at = T0 + timedelta(minutes=1)
        notifier(make_alert(updated_at=escalated_at), "escalated")
        _, escalation = am.wait_for(2)
    new, stale = escalation.body
    assert new["labels"]["alertname"] == "drift_critical" and "endsAt" not in new
    assert stale["labels"]["alertname"] == "drift_detected"
    assert stale["labels"]["severity"] == "warning"
    assert datetime.fromisoformat(stale["endsAt"]) == escalated_at


def test_repeated_acknowledged_and_silenced_are_not_sent(
    make_notifier: Callable[..., Notifier], metrics: Metrics
) -> None:
    with Receiver() as hook:
        notifier = make_notifier([WebhookChannel(hook.url)], silenced=lambda a: a.id == "silent")
        notifier(make_alert(occurrences=2), "repeated")
        notifier(make_alert(state="acknowledged", acknowledged_by="ops"), "acknowledged")
        notifier(make_alert(id="silent"), "opened")
        notifier(make_alert(id="marker"), "opened")  # delivered in order, after the others
        wait_until(lambda: count(metrics, "webhook", "sent") == 1)
        assert [r.body["alert"]["id"] for r in hook.requests] == ["marker"]
        assert count(metrics, "webhook", "silenced") == 1


def test_notify_now_and_resend_open(
    make_notifier: Callable[..., Notifier], metrics: Metrics
) -> None:
    with Receiver() as hook, Receiver() as am:
        notifier = make_notifier(
            [WebhookChannel(hook.url), AlertmanagerChannel(am.url)],
            silenced=lambda a: a.id.startswith("silent"),
        )
        queued = notifier.resend_open(
            [make_alert(id="open"), make_alert(id="acked", state="acknowledged"),
             resolved(make_alert(id="done")), make_alert(id="silent-1")]
        )  # fmt: skip
        assert queued == 3  # the resolved one is skipped at once, the silenced one on delivery
        assert notifier.notify_now(make_alert(id="silent-2")) is True  # its silence just ended
        assert notifier.notify_now(resolved(make_alert(id="gone"))) is False
        wait_until(lambda: count(metrics, "webhook", "sent") == 1)
        wait_until(lambda: count(metrics, "alertmanager", "sent") == 3)
        assert [r.body["alert"]["id"] for r in hook.requests] == ["silent-2"]
        assert hook.requests[0].body["event"] == "opened"
        ids = [r.body[0]["annotations"]["alert_id"] for r in am.requests]
        assert ids == ["open", "acked", "silent-2"]
        assert all("endsAt" not in r.body[0] for r in am.requests)
        assert count(metrics, "alertmanager", "silenced") == 1


def test_failing_receiver_gets_it_on_the_third_attempt(
    make_notifier: Callable[..., Notifier], metrics: Metrics
) -> None:
    with Receiver(fail_first=2) as hook:
        notifier = make_notifier([WebhookChannel(hook.url)], max_attempts=5)
        notifier(make_alert(), "opened")
        wait_until(lambda: count(metrics, "webhook", "sent") == 1)
        assert hook.arrived == 3 and len(hook.requests) == 1
    assert count(metrics, "webhook", "retried") == 2
    assert count(metrics, "webhook", "failed") == 0


def test_dead_receiver_fails_after_max_attempts(
    make_notifier: Callable[..., Notifier], metrics: Metrics
) -> None:
    notifier = make_notifier(
        [WebhookChannel(f"http://127.0.0.1:{free_port()}/hook")], max_attempts=3
    )
    notifier(make_alert(), "opened")
    wait_until(lambda: count(metrics, "webhook", "failed") == 1)
    assert count(metrics, "webhook", "retried") == 2
    assert count(metrics, "webhook", "sent") == 0


@pytest.mark.parametrize(("status", "retried"), [(400, False), (404, False), (429, True)])
def test_client_errors_are_final_except_the_transient_ones(
    make_notifier: Callable[..., Notifier], metrics: Metrics, status: int, retried: bool
) -> None:
    with Receiver(fail_first=1, fail_status=status) as hook:
        notifier = make_notifier([WebhookChannel(hook.url)], max_attempts=3)
        notifier(make_alert(), "opened")
        outcome = "sent" if retried else "failed"
        wait_until(lambda: count(metrics, "webhook", outcome) == 1)
        assert hook.arrived == (2 if retried else 1)
    assert count(metrics, "webhook", "retried") == (1 if retried else 0)


def test_slow_receiver_times_out_and_is_retried(
    make_notifier: Callable[..., Notifier], metrics: Metrics
) -> None:
    gate = threading.Event()  # never set during the test: the receiver holds every answer
    with Receiver(gate=gate) as hook:
        # The HTTP timeout under test: short, so that the held requests time out.
        notifier = make_notifier([WebhookChannel(hook.url)], timeout=0.1, max_attempts=2)
        notifier(make_alert(), "opened")
        wait_until(lambda: count(metrics, "webhook", "failed") == 1)
        assert count(metrics, "webhook", "retried") == 1
        wait_until(lambda: hook.arrived == 2)  # both attempts reached it; none was answered
        assert hook.answered == 0


def test_call_returns_while_the_receiver_holds_the_request(
    make_notifier: Callable[..., Notifier], metrics: Metrics
) -> None:
    gate = threading.Event()
    with Receiver(gate=gate) as hook:
        # Longer than the test holds the request: the first call must not time out.
        notifier = make_notifier([WebhookChannel(hook.url)], timeout=WAIT_SECONDS)
        notifier(make_alert(id="first"), "opened")
        wait_until(lambda: hook.arrived == 1)  # the worker is now inside the HTTP call
        for i in range(20):
            notifier(make_alert(id=f"more-{i}"), "opened")
        # Every call returned although the receiver has answered nothing yet.
        assert hook.answered == 0 and count(metrics, "webhook", "sent") == 0
        assert metrics.registry.get_sample_value("mlobs_notification_queue_depth") == 20
        gate.set()
        wait_until(lambda: count(metrics, "webhook", "sent") == 21)
        assert [r.body["alert"]["id"] for r in hook.requests][:2] == ["first", "more-0"]


def test_dead_receiver_does_not_hold_up_other_channels(
    make_notifier: Callable[..., Notifier], metrics: Metrics
) -> None:
    with Receiver() as hook:
        notifier = make_notifier(
            [AlertmanagerChannel(f"http://127.0.0.1:{free_port()}"), WebhookChannel(hook.url)],
            # Retries of the dead channel stay scheduled for the whole test.
            backoff=WAIT_SECONDS, max_backoff=WAIT_SECONDS, max_attempts=3,
        )  # fmt: skip
        notifier(make_alert(id="one"), "opened")
        notifier(make_alert(id="two"), "opened")
        wait_until(lambda: count(metrics, "webhook", "sent") == 2)
        # Both went out while the dead channel's retries are still scheduled.
        assert count(metrics, "alertmanager", "retried") == 2
        assert count(metrics, "alertmanager", "failed") == 0
        notifier.stop(timeout=5)
    assert count(metrics, "alertmanager", "dropped") == 2  # pending retries abandoned at stop


def test_full_queue_drops(make_notifier: Callable[..., Notifier], metrics: Metrics) -> None:
    notifier = make_notifier(
        [WebhookChannel("http://127.0.0.1:9/unused")], start=False, queue_size=1
    )
    notifier(make_alert(id="kept"), "opened")
    notifier(make_alert(id="lost"), "opened")
    assert count(metrics, "webhook", "dropped") == 1
    assert metrics.registry.get_sample_value("mlobs_notification_queue_depth") == 1
    notifier.stop()
    assert count(metrics, "webhook", "dropped") == 2  # never started: the pending one too
    assert count(metrics, "webhook", "sent") == 0


def test_from_settings_builds_the_configured_channels(metrics: Metrics) -> None:
    notifier = Notifier.from_settings(
        webhook_urls=["http://a.example/h", " ", "http://b.example/h"],
        slack_url="https://hooks.slack.example/T/B/secret",
        alertmanager_url="http://am.example:9093/",
        metrics=metrics, silenced=lambda a: False, timeout=2.0,
    )  # fmt: skip
    assert [c.name for c in notifier.channels] == ["webhook", "webhook", "slack", "alertmanager"]
    assert notifier.channels[-1].url == "http://am.example:9093/api/v2/alerts"
    assert "secret" not in repr(notifier.channels[2])
    assert notifier.timeout == 2.0
    empty = Notifier.from_settings(
        webhook_urls=[], slack_url=None, alertmanager_url="", metrics=metrics,
        silenced=lambda a: False, timeout=5.0,
    )  # fmt: skip
    assert empty.channels == ()
    empty(make_alert(), "opened")  # no channel: nothing queued, nothing counted
    assert metrics.registry.get_sample_value("mlobs_notification_queue_depth") in (None, 0)
