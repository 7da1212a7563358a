"""The prediction log writer: a bounded queue drained by one background thread in batches.

Requests only enqueue (microseconds); the thread inserts up to ``batch_size`` rows per
transaction, waiting at most ``flush_interval`` seconds to fill a batch. While the database is
reachable nothing is dropped: a failed insert is retried with backoff, keeping its batch, and only a
full queue drops records (each counted in ``mlobs_prediction_log_dropped_total``). A record is
readable through ``get`` from the moment it is submitted, whether it is still queued or stored.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence

from mlobs.errors import Unavailable
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.ports import PredictionStore
from mlobs.monitoring.records import PredictionRecord

log = logging.getLogger(__name__)

_STOP = object()


class PredictionLog:
    """Implements ``mlobs.monitoring.ports.PredictionSink`` over a ``PredictionStore``."""

    def __init__(
        self,
        store: PredictionStore,
        metrics: Metrics,
        *,
        queue_size: int = 100_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.store, self.metrics = store, metrics
        self.batch_size, self.flush_interval, self.max_backoff = (
            batch_size,
            flush_interval,
            max_backoff,
        )
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._pending: dict[str, PredictionRecord] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.last_error: str | None = None

    # ------------------------------------------------------------------ request side

    def submit(self, record: PredictionRecord) -> bool:
        with self._lock:
            self._pending[record.id] = record
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self._pending.pop(record.id, None)
            self.metrics.log_dropped.labels(record.model_name).inc()
            return False
        self.metrics.log_queue_depth.set(self._queue.qsize())
        return True

    def get(self, prediction_id: str) -> PredictionRecord | None:
        """A logged prediction: from the queue if it is still waiting, else from the store."""
        with self._lock:
            record = self._pending.get(prediction_id)
        if record is not None:
            return record
        try:
            return self.store.get(prediction_id)
        except Exception as exc:  # driver errors vary; to the caller they mean "try later"
            raise Unavailable("database", f"{type(exc).__name__}") from exc

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------ writer side

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> int:
        """Stop accepting, drain what is queued, and return how many records could not be written."""
        if self._thread is None:
            return 0
        self._stopping.set()
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        with self._lock:
            lost = len(self._pending)
            self._pending.clear()
        if lost:
            log.error("prediction log stopped with %d records unwritten", lost)
        return lost

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._collect()
            if batch:
                self._write(batch)
        log.debug("prediction log writer stopped")

    def _collect(self) -> tuple[list[PredictionRecord], bool]:
        """Up to ``batch_size`` records: block for the first, then wait ``flush_interval`` at most."""
        batch: list[PredictionRecord] = []
        item = self._queue.get()
        if item is _STOP:
            return batch, True
        assert isinstance(item, PredictionRecord)
        batch.append(item)
        deadline = time.monotonic() + self.flush_interval
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            assert isinstance(item, PredictionRecord)
            batch.append(item)
        return batch, False

    def _write(self, batch: Sequence[PredictionRecord]) -> None:
        backoff = 0.05
        while True:
            try:
                t = time.perf_counter()
                self.store.insert_many(batch)
            except Exception as exc:  # the driver's errors vary; every one means "retry"
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.metrics.log_write_errors.inc()
                log.warning(
                    "prediction log insert of %d failed (%s); retrying in %.2fs",
                    len(batch),
                    type(exc).__name__,
                    backoff,
                )
                if self._stopping.is_set() and backoff >= self.max_backoff:
                    return  # shutting down against a dead database: stop() counts what is left
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self.last_error = None
            self.metrics.log_write_seconds.observe(time.perf_counter() - t)
            break
        with self._lock:
            for r in batch:
                self._pending.pop(r.id, None)
        for model_name, n in Counter(r.model_name for r in batch).items():
            self.metrics.log_written.labels(model_name).inc(n)
        self.metrics.log_queue_depth.set(self._queue.qsize())
