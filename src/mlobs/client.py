"""Send a model's predictions and labels to mlobs from the service that serves it.

    from mlobs.client import Monitor

    monitor = Monitor("http://mlobs:8000", api_key="...")
    pid = monitor.log("fraud", features, prediction=1, probability=0.93)
    ...
    monitor.label("fraud", pid, actual=0)

``log`` and ``label`` never block and never raise into the serving path: they put the record on
a bounded queue and return (``log`` returns the prediction's id, made here when not given, so
that a retried batch is counted once by the service). A background thread sends batches to
``POST /models/{name}/predictions`` and ``POST /feedback/batch``; a batch that cannot be sent
(the service away, a 5xx, a 429) is kept and retried with backoff. What is lost is counted in
``stats`` and logged: records dropped because the queue was full, and records the service
refused as invalid (a 4xx names them). Pending records are flushed at exit.

Imports only httpx and the standard library: a service that uses it needs none of mlobs's
server dependencies.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import queue
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

__all__ = ["Monitor", "MonitorStats"]

log = logging.getLogger("mlobs.client")


@dataclass
class MonitorStats:
    """What became of the records given to a ``Monitor``."""

    queued: int = 0  # taken by log() / label()
    sent: int = 0  # accepted by the service (new or duplicate)
    dropped: int = 0  # the queue was full, or pending at close after the flush timeout
    refused: int = 0  # the service refused them as invalid (each logged)
    retries: int = 0  # batches sent again after a failure


def _plain(value: Any) -> Any:
    """numpy scalars and the like as plain values; anything else as text."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _clean(features: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in features.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[str(key)] = value
    return out


def _encode(record: dict[str, Any]) -> bytes:
    """A record as the JSON it is sent as; ValueError or TypeError for one that cannot be (an
    infinite or NaN number, an array): it is refused at once, never retried."""
    return json.dumps(record, default=_plain, allow_nan=False).encode()


def _timestamp(ts: datetime | None) -> str:
    ts = ts or datetime.now(timezone.utc)
    if ts.tzinfo is None:  # a naive time is taken as UTC
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.isoformat()


class Monitor:
    """A non-blocking sender of predictions and labels to one mlobs service."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 100_000,
        timeout: float = 10.0,
        max_backoff: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._client = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self.batch_size, self.flush_interval, self.max_backoff = (
            batch_size, flush_interval, max_backoff,
        )  # fmt: skip
        self.stats = MonitorStats()
        self._queue: queue.Queue[tuple[str, str, bytes]] = queue.Queue(max_queue)
        self._outstanding = 0  # queued or taken, not yet sent, refused or dropped
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._last_drop_log = self._last_retry_log = 0.0
        self._pending: list[tuple[str, str, bytes]] = []  # taken, not sent yet
        self._thread = threading.Thread(target=self._run, name="mlobs-monitor", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ------------------------------------------------------------------ the serving side

    def log(
        self,
        model: str,
        features: dict[str, Any],
        prediction: Any = None,
        *,
        prediction_id: str | None = None,
        probability: float | None = None,
        scores: list[float] | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """Queue one prediction; returns its id (``prediction_id``, or a UUID made here)."""
        pid = prediction_id or str(uuid.uuid4())
        try:
            record: dict[str, Any] = {
                "prediction_id": pid, "timestamp": _timestamp(timestamp),
                "features": _clean(features),
            }  # fmt: skip
            if prediction is not None:
                record["prediction"] = (
                    _plain(prediction) if hasattr(prediction, "item") else prediction
                )
            if probability is not None:
                record["probability"] = float(probability)
            if scores is not None:
                record["scores"] = [float(s) for s in scores]
            self._put("prediction", model, _encode(record))
        except Exception as exc:  # never into the caller's serving path
            self._count("refused", 1)
            log.warning("mlobs: a prediction of %s cannot be sent: %s", model, exc)
        return pid

    def label(self, model: str, prediction_id: str, actual: Any) -> None:
        """Queue the ground truth of a logged prediction."""
        try:
            actual = _plain(actual) if hasattr(actual, "item") else actual
            record = {"prediction_id": prediction_id, "actual": actual, "model_name": model}
            self._put("label", model, _encode(record))
        except Exception as exc:
            self._count("refused", 1)
            log.warning("mlobs: a label of %s cannot be sent: %s", model, exc)

    def _put(self, kind: str, model: str, record: bytes) -> None:
        with self._lock:
            self._outstanding += 1
            self._idle.clear()
        try:
            self._queue.put_nowait((kind, model, record))
        except queue.Full:
            self._count("dropped", 1)
            self._done(1)
            now = time.monotonic()
            if now - self._last_drop_log > 10:
                self._last_drop_log = now
                log.warning("mlobs: the send queue is full; records are dropped (%d so far)",
                            self.stats.dropped)  # fmt: skip
            return
        self._count("queued", 1)
        if self._queue.qsize() >= self.batch_size:
            self._wake.set()

    def _count(self, what: str, n: int) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + n)

    def _done(self, n: int) -> None:
        """``n`` records are settled (sent, refused or dropped)."""
        with self._lock:
            self._outstanding -= n
            if self._outstanding <= 0:
                self._idle.set()

    # ------------------------------------------------------------------ control

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far was sent (or given up); False on timeout."""
        self._wake.set()
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is pending (up to ``timeout`` seconds), then stop; what is still pending
        then is counted as dropped."""
        if self._stop.is_set():
            return
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        left = self._queue.qsize() + len(self._pending)
        if left:
            self._count("dropped", left)
            self._done(left)
            log.warning("mlobs: %d records not sent at close", left)
        self._client.close()
        atexit.unregister(self.close)

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the sender thread

    def _run(self) -> None:
        backoff = 0.0
        while True:
            if backoff:  # the service is away: wait it out, whatever the callers queue
                self._stop.wait(backoff)
            else:
                self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set() and backoff:
                return  # stopping while the service is away: the rest is counted at close
            while len(self._pending) < self.batch_size * 4:
                try:
                    self._pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not self._pending:
                if self._stop.is_set():
                    return
                continue
            taken = len(self._pending)
            self._pending, error = self._send(self._pending)
            self._done(taken - len(self._pending))
            if error is not None:  # the service away, a 5xx, a 429: keep and retry
                self._count("retries", 1)
                if not backoff or time.monotonic() - self._last_retry_log > 30:
                    self._last_retry_log = time.monotonic()
                    log.warning("mlobs: sending failed (%s); retrying with backoff", error)
                backoff = min(self.max_backoff, max(0.5, backoff * 2))
                continue
            backoff = 0.0

    def _send(
        self, items: list[tuple[str, str, bytes]]
    ) -> tuple[list[tuple[str, str, bytes]], Exception | None]:
        """Send every model's predictions, then the labels. Returns the items not sent yet and
        the failure that stopped the sending (one worth retrying), if any."""
        predictions: dict[str, list[bytes]] = defaultdict(list)
        labels: list[bytes] = []
        for kind, model, record in items:
            (predictions[model] if kind == "prediction" else labels).append(record)
        done: set[int] = set()
        try:
            for model, records in predictions.items():
                for start in range(0, len(records), self.batch_size):
                    chunk = records[start : start + self.batch_size]
                    self._post_predictions(model, chunk)
                    done.update(id(r) for r in chunk)
            for start in range(0, len(labels), self.batch_size):
                chunk = labels[start : start + self.batch_size]
                self._post_labels(chunk)
                done.update(id(r) for r in chunk)
        except Exception as exc:
            return [item for item in items if id(item[2]) not in done], exc
        return [], None

    def _post(
        self, path: str, key: str, records: list[bytes], params: dict[str, str] | None = None
    ) -> httpx.Response:
        body = b'{"' + key.encode() + b'":[' + b",".join(records) + b"]}"
        r = self._client.post(
            path, content=body, headers={"content-type": "application/json"}, params=params
        )
        if r.status_code == 429 or r.status_code >= 500:
            raise RuntimeError(f"{path}: {r.status_code}")
        return r

    def _post_predictions(self, model: str, records: list[bytes]) -> None:
        r = self._post(f"/models/{model}/predictions", "records", records, {"on_error": "skip"})
        if r.status_code == 202:
            body = r.json()
            self._count("sent", int(body["accepted"]) + int(body["duplicate"]))
            if body["rejected"]:
                self._count("refused", int(body["rejected"]))
                first = body["errors"][0] if body["errors"] else {}
                log.warning("mlobs: %s refused %d prediction(s), e.g. %s: %s", model,
                            body["rejected"], first.get("loc"), first.get("msg"))  # fmt: skip
            return
        self._count("refused", len(records))  # the whole batch: an unknown model, a bad key
        log.warning("mlobs: %s refused %d prediction(s): %s %s", model, len(records),
                    r.status_code, r.text[:300])  # fmt: skip

    def _post_labels(self, labels: list[bytes]) -> None:
        """All or none on the service's side: a label it refuses (named in the answer) is left
        out and the others sent again."""
        pending = list(labels)
        while pending:
            r = self._post("/feedback/batch", "items", pending)
            if r.status_code == 200:
                self._count("sent", len(pending))
                return
            index = None
            try:
                loc = r.json()["detail"][0]["loc"]
                if loc[:2] == ["body", "items"] and isinstance(loc[2], int):
                    index = loc[2]
            except (ValueError, KeyError, IndexError, TypeError):
                pass
            if index is None or index >= len(pending):
                self._count("refused", len(pending))
                log.warning("mlobs: %d label(s) refused: %s %s", len(pending), r.status_code,
                            r.text[:300])  # fmt: skip
                return
            pending.pop(index)
            self._count("refused", 1)
            log.warning("mlobs: a label was refused: %s", r.text[:300])
