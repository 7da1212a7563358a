"""Alert notifications: channels that shape one HTTP request per alert event, and the notifier
that delivers them off the caller's thread.

Design:

* ``Notifier`` is an ``AlertManager`` listener. ``__call__`` only pushes small records onto an
  in-memory heap under a lock, so alerting never waits on a receiver, dead or slow. Payloads are
  built, silences checked and requests sent by ONE background thread.
* The heap holds one *delivery* (channel, alert, event, attempt) per entry, ordered by the time
  its next attempt is due. A new delivery is due at once; a failed one is pushed back with
  exponential backoff. A dead receiver's retries thus interleave with fresh deliveries instead
  of blocking them, and a slow one costs at most ``timeout`` per attempt.
* The heap is bounded (``queue_size`` pending deliveries): beyond it a new notification is dropped
  and counted, never buffered without limit. Retries already admitted are never dropped.
* Every outcome is counted in ``mlobs_notifications_total{channel, outcome}`` with the outcomes
  ``sent``, ``retried``, ``failed``, ``dropped`` and ``silenced``; the number of pending
  deliveries is ``mlobs_notification_queue_depth``.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from mlobs.monitoring.alerts import Alert, EventKind
from mlobs.monitoring.metrics import Metrics

log = logging.getLogger(__name__)

SOURCE = "mlobs"
NOTIFY_KINDS: frozenset[str] = frozenset({"opened", "escalated", "resolved"})
OPEN_STATES: frozenset[str] = frozenset({"active", "acknowledged"})
DATASET_SCOPES: frozenset[str] = frozenset({"live", "request"})
NO_LABEL_SCOPES: frozenset[str] = frozenset({"predict", ""})
# Client errors that may pass on their own; any other 4xx means the payload or URL is wrong and
# retrying it only delays the 'failed' count.
RETRYABLE_4XX: frozenset[int] = frozenset({408, 425, 429})


def _iso(dt: datetime) -> str:
    """ISO 8601 / RFC 3339 with an offset (naive datetimes are taken as UTC)."""
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)).isoformat()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    """Every field of the alert, JSON-ready (datetimes as ISO 8601 strings, events as a list)."""
    out: dict[str, Any] = _jsonable(dataclasses.asdict(alert))
    return out


def _summary(alert: Alert) -> str:
    return f"{alert.alert_type} on {alert.model_name} ({alert.scope})"


@dataclass(frozen=True)
class Request:
    """One HTTP POST: where, and the JSON body."""

    url: str
    body: Any


class Channel(ABC):
    """Turns an (alert, event) into one HTTP request. Built and used on the worker thread only.

    Attributes:
        name: The ``channel`` label value of the metrics.
        resends_open: Whether ``Notifier.resend_open`` re-sends open alerts to this channel.
    """

    name: ClassVar[str] = "channel"
    resends_open: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        if not url.strip():
            raise ValueError(f"{type(self).__name__} needs a URL")
        self.url = url.strip()

    @abstractmethod
    def build(self, alert: Alert, kind: EventKind) -> Request:
        """The request announcing ``kind`` happening to ``alert``."""

    def describe(self) -> str:
        """Where it sends, without path or query (webhook URLs often carry secrets)."""
        parts = urlsplit(self.url)
        return f"{self.name} {parts.scheme}://{parts.hostname}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class WebhookChannel(Channel):
    """Generic JSON: ``{"event": kind, "alert": {...every field...}, "source": "mlobs"}``."""

    name = "webhook"

    def build(self, alert: Alert, kind: EventKind) -> Request:
        return Request(self.url, {"event": kind, "alert": alert_to_dict(alert), "source": SOURCE})


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel(Channel):
    """A Slack incoming-webhook payload: a one-line ``text`` (also the notification preview) and
    blocks repeating it with the value, threshold and alert id."""

    name = "slack"

    @staticmethod
    def text(alert: Alert, kind: EventKind) -> str:
        """E.g. ``:rotating_light: [CRITICAL] drift_critical on fraud (live): <message>``."""
        message = _slack_escape(alert.message) if alert.message else "no details"
        if kind == "resolved":
            return f":white_check_mark: [RESOLVED] {_summary(alert)}: {message}"
        icon = ":rotating_light:" if alert.severity == "critical" else ":warning:"
        verb = " escalated" if kind == "escalated" else ""
        return f"{icon} [{alert.severity.upper()}] {_summary(alert)}{verb}: {message}"

    def build(self, alert: Alert, kind: EventKind) -> Request:
        text = self.text(alert, kind)
        details = (
            f"value {alert.value:.4g} (threshold {alert.threshold:.4g}) · state {alert.state} · "
            f"alert `{alert.id}` · occurrences {alert.occurrences}"
        )
        blocks = [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": details}]},
        ]
        return Request(self.url, {"text": text, "blocks": blocks})


def alertmanager_labels(alert: Alert) -> dict[str, str]:
    """The contract's label set: alertname, model_name, severity, the scope, source="mlobs".

    Scopes ``live`` and ``request`` are data sets (``dataset_name``), ``predict`` (latency) has no
    scope label, and any other scope is a feature (``feature``).
    """
    labels = {
        "alertname": alert.alert_type,
        "model_name": alert.model_name,
        "severity": alert.severity,
        "source": SOURCE,
    }
    if alert.scope in DATASET_SCOPES:
        labels["dataset_name"] = alert.scope
    elif alert.scope not in NO_LABEL_SCOPES:
        labels["feature"] = alert.scope
    return labels


class AlertmanagerChannel(Channel):
    """Prometheus Alertmanager's API v2: POST ``{base_url}/api/v2/alerts`` with a list of alerts.

    Alertmanager resolves a firing alert by itself once ``resolve_timeout`` passes without a
    re-send, so open alerts must be re-sent periodically (``Notifier.resend_open``); a resolve
    sends ``endsAt``. Alertmanager identifies an alert by its labels, and an escalation changes
    two of them (``alertname``, ``severity``): the channel remembers the labels it last sent per
    alert id and ends the stale label set in the same request, so that no orphan lingers.

    Args:
        base_url: Alertmanager's base URL, e.g. ``http://alertmanager:9093``.
        generator_url: Optional link back to the alert, formatted with ``id`` and ``model_name``
            (e.g. ``https://mlobs.example/alerts/{id}``).
    """

    name = "alertmanager"
    resends_open = True
    MAX_REMEMBERED = 10_000

    def __init__(self, base_url: str, *, generator_url: str | None = None) -> None:
        base = base_url.strip().rstrip("/")
        super().__init__(base + "/api/v2/alerts" if base else "")
        self.base_url = base
        self.generator_url = generator_url
        self._sent_labels: OrderedDict[str, dict[str, str]] = OrderedDict()

    def payload(self, alert: Alert, labels: dict[str, str], ends_at: datetime | None) -> Any:
        """One element of the v2 list for ``alert`` under ``labels``."""
        item: dict[str, Any] = {
            "labels": labels,
            "annotations": {
                "summary": _summary(alert),
                "description": alert.message,
                "value": str(alert.value),
                "threshold": str(alert.threshold),
                "alert_id": alert.id,
            },
            "startsAt": _iso(alert.opened_at),
        }
        if ends_at is not None:
            item["endsAt"] = _iso(ends_at)
        if self.generator_url:
            item["generatorURL"] = self.generator_url.format(
                id=alert.id, model_name=alert.model_name
            )
        return item

    def build(self, alert: Alert, kind: EventKind) -> Request:
        labels = alertmanager_labels(alert)
        previous = self._sent_labels.pop(alert.id, None)
        resolved = kind == "resolved" or alert.state == "resolved"
        ends_at = (alert.resolved_at or alert.updated_at) if resolved else None
        items = [self.payload(alert, labels, ends_at)]
        if previous is not None and previous != labels:
            items.append(self.payload(alert, previous, alert.updated_at))  # end the stale set
        if not resolved:
            self._sent_labels[alert.id] = labels
            while len(self._sent_labels) > self.MAX_REMEMBERED:
                self._sent_labels.popitem(last=False)
        return Request(self.url, items)


@dataclass
class _Job:
    """One notification: an alert event for some channels. Its silence is checked once."""

    alert: Alert
    kind: EventKind
    check_silence: bool
    silenced: bool | None = None


@dataclass
class _Delivery:
    channel: Channel
    job: _Job
    attempt: int = 0  # attempts made so far
    request: Request | None = None  # built once, at the first attempt, and reused by retries


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    delivery: _Delivery = field(compare=False)


class Notifier:
    """An ``AlertManager`` listener that delivers alert events to HTTP channels in the background.

    Notifies on ``opened``, ``escalated`` and ``resolved`` (``repeated`` and ``acknowledged`` are
    noise for a pager). Deliveries run on one daemon thread from a bounded heap ordered by due
    time; failures (transport errors, timeouts, 5xx, 408/425/429) are retried with exponential
    backoff (``backoff``, 2x, 4x, ... capped at ``max_backoff``) up to ``max_attempts`` attempts.
    Other 4xx answers are final at once (the request itself is wrong). The silence check runs on
    the worker thread at a delivery's first attempt, so a slow silence store does not slow
    alerting either; a failing check counts as not silenced (better a page too many than none).

    Args:
        channels: Where to send.
        metrics: ``notifications`` and ``notification_queue_depth`` are updated.
        silenced: Whether an alert is under a silence now.
        queue_size: Most deliveries pending (new ones and retries); further notifications drop.
        timeout: Seconds for every HTTP call (connect, read, write, pool each).
        max_attempts: Attempts per delivery, the first included.
        backoff: Seconds before the first retry.
        max_backoff: Cap of the retry delay.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        metrics: Metrics,
        *,
        silenced: Callable[[Alert], bool] = lambda a: False,
        queue_size: int = 1000,
        timeout: float = 5.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if queue_size < 1 or max_attempts < 1 or timeout <= 0 or backoff < 0 or max_backoff < 0:
            raise ValueError(
                "need queue_size >= 1, max_attempts >= 1, timeout > 0, backoff and max_backoff "
                f">= 0; got {queue_size}, {max_attempts}, {timeout}, {backoff}, {max_backoff}"
            )
        self.channels = tuple(channels)
        # Every series exists from the start at 0, so rate() and increase() see the first
        # notification as a rise.
        for channel in self.channels:
            for outcome in ("sent", "retried", "failed", "dropped", "silenced"):
                metrics.notifications.labels(channel.name, outcome)
        self.metrics = metrics
        self.silenced = silenced
        self.queue_size = queue_size
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self._cond = threading.Condition()
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stop_at: float | None = None  # set by stop(): entries due by then are drained
        self._deadline = 0.0
        self._closed = False

    @classmethod
    def from_settings(
        cls,
        *,
        webhook_urls: Sequence[str],
        slack_url: str | None,
        alertmanager_url: str | None,
        metrics: Metrics,
        silenced: Callable[[Alert], bool] = lambda a: False,
        timeout: float = 5.0,
        **options: Any,
    ) -> Notifier:
        """A notifier for the configured channels (blank URLs are skipped). ``options`` go to the
        constructor (``queue_size``, ``max_attempts``, ...)."""
        channels: list[Channel] = [WebhookChannel(u) for u in webhook_urls if u.strip()]
        if slack_url and slack_url.strip():
            channels.append(SlackChannel(slack_url))
        if alertmanager_url and alertmanager_url.strip():
            channels.append(AlertmanagerChannel(alertmanager_url))
        return cls(channels, metrics, silenced=silenced, timeout=timeout, **options)

    # ----------------------------------------------------------------------------- producers

    def __call__(self, alert: Alert, kind: EventKind) -> None:
        """The listener: queue the event for every channel (only opened/escalated/resolved)."""
        if kind in NOTIFY_KINDS:
            self._enqueue(_Job(alert, kind, check_silence=True), self.channels)

    def notify_now(self, alert: Alert) -> bool:
        """Queue an open alert as ``opened`` without checking silences (the caller knows its
        silence just ended). Returns whether it was queued (False: resolved alert, or dropped)."""
        if alert.state not in OPEN_STATES:
            return False
        return self._enqueue(_Job(alert, "opened", check_silence=False), self.channels)

    def resend_open(self, alerts: Iterable[Alert]) -> int:
        """Re-send open, non-silenced alerts to the channels that need it (Alertmanager) so that
        they stay firing there. Call it well within Alertmanager's ``resolve_timeout`` (every
        minute, say). Returns how many alerts were queued."""
        channels = tuple(c for c in self.channels if c.resends_open)
        if not channels:
            return 0
        queued = 0
        for alert in alerts:
            if alert.state in OPEN_STATES:
                queued += self._enqueue(_Job(alert, "repeated", check_silence=True), channels)
        return queued

    def _enqueue(self, job: _Job, channels: Sequence[Channel]) -> bool:
        if not channels:
            return False
        with self._cond:
            accepted = not self._closed and len(self._heap) < self.queue_size
            if accepted:
                now = self.clock()
                for channel in channels:
                    entry = _Entry(now, next(self._seq), _Delivery(channel, job))
                    heapq.heappush(self._heap, entry)
                self.metrics.notification_queue_depth.set(len(self._heap))
                self._cond.notify()
        if not accepted:
            for channel in channels:
                self._count(channel, "dropped")
            log.warning("notification dropped (queue full or stopped): %s", job.alert.fingerprint)
        return accepted

    # ----------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the delivery thread (once)."""
        with self._cond:
            if self._thread is not None or self._closed:
                raise RuntimeError("the notifier was already started")
            self._thread = threading.Thread(target=self._run, name="mlobs-notifier", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is due now (one attempt each, within ``timeout`` seconds), count the rest
        as dropped, stop the thread and close its HTTP client. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stop_at = self.clock()
            self._deadline = time.monotonic() + timeout
            thread = self._thread
            self._cond.notify_all()
        if thread is None:
            self._abandon()
            return
        # An attempt in flight may last up to about one HTTP timeout past the deadline.
        thread.join(timeout + self.timeout + 1.0)
        if thread.is_alive():
            log.warning("notifier thread still busy after %.1f s; left behind (daemon)", timeout)

    def _abandon(self) -> None:
        with self._cond:
            left, self._heap = self._heap, []
            self.metrics.notification_queue_depth.set(0)
        for entry in left:
            self._count(entry.delivery.channel, "dropped")
        if left:
            log.warning("%d notification deliveries abandoned at shutdown", len(left))

    # ----------------------------------------------------------------------------- worker

    def _next(self) -> _Delivery | None:
        """The next due delivery, waiting for one; None once stopping and nothing more is due."""
        with self._cond:
            while True:
                if self._stop_at is not None:
                    if (
                        self._heap
                        and self._heap[0].due <= self._stop_at
                        and time.monotonic() < self._deadline
                    ):
                        break
                    return None
                if self._heap:
                    wait = self._heap[0].due - self.clock()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            entry = heapq.heappop(self._heap)
            self.metrics.notification_queue_depth.set(len(self._heap))
            return entry.delivery

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while (delivery := self._next()) is not None:
                try:
                    self._deliver(client, delivery)
                except Exception:  # never let one bad delivery kill the thread
                    log.exception("notification delivery crashed (%r)", delivery.channel)
                    self._count(delivery.channel, "failed")
        self._abandon()

    def _is_silenced(self, job: _Job) -> bool:
        if not job.check_silence:
            return False
        if job.silenced is None:
            try:
                job.silenced = bool(self.silenced(job.alert))
            except Exception:
                log.exception("silence check failed for %s; notifying", job.alert.fingerprint)
                job.silenced = False
        return job.silenced

    def _deliver(self, client: httpx.Client, delivery: _Delivery) -> None:
        channel, job = delivery.channel, delivery.job
        if delivery.attempt == 0 and self._is_silenced(job):
            self._count(channel, "silenced")
            return
        if delivery.request is None:
            delivery.request = channel.build(job.alert, job.kind)
        request = delivery.request
        delivery.attempt += 1
        error: str | None
        retryable = True
        try:
            response = client.post(request.url, json=request.body)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            if response.is_success:
                self._count(channel, "sent")
                return
            error = f"HTTP {response.status_code}"
            retryable = response.status_code >= 500 or response.status_code in RETRYABLE_4XX
        if retryable and delivery.attempt < self.max_attempts and self._closed:
            log.warning(
                "%r: %s for %s; not retried (stopping)", channel, error, job.alert.fingerprint
            )
            self._count(channel, "dropped")
            return
        if retryable and delivery.attempt < self.max_attempts:
            delay = min(self.backoff * 2 ** (delivery.attempt - 1), self.max_backoff)
            log.info(
                "%r: %s for %s (attempt %d/%d); retrying in %.2f s", channel, error,
                job.alert.fingerprint, delivery.attempt, self.max_attempts, delay,
            )  # fmt: skip
            self._count(channel, "retried")
            with self._cond:
                entry = _Entry(self.clock() + delay, next(self._seq), delivery)
                heapq.heappush(self._heap, entry)
                self.metrics.notification_queue_depth.set(len(self._heap))
            return
        log.warning(
            "%r: notification of %s %s failed after %d attempt(s): %s", channel, job.kind,
            job.alert.fingerprint, delivery.attempt, error,
        )  # fmt: skip
        self._count(channel, "failed")

    def _count(self, channel: Channel, outcome: str) -> None:
        self.metrics.notifications.labels(channel.name, outcome).inc()
