"""The prediction log writer: a bounded buffer drained by one background thread in batches.

Requests only append to a deque (well under a microsecond, no lock handoff). The writer thread
sleeps ``flush_interval`` seconds between drains instead of waking on every record: a thread that
wakes per record takes the GIL a thousand times a second and halves the request thread's
throughput (measured: 560 vs 1,100 predictions/s). Each drain inserts up to ``batch_size`` rows
per transaction (by default in a child process: see ``mlobs.storage.insert_process``, whose
answers map onto the same paths below). While the database is reachable nothing is dropped: an
insert that fails because the database is away is retried with backoff, keeping its batch; only
a full buffer, a row the database refuses, or records still unwritten at shutdown are dropped,
each counted in ``mlobs_prediction_log_dropped_total``. A record is readable through ``get``
from the moment it is submitted, whether it is still buffered or stored.

With a ``Spill`` (the service always has one, in ``DATA_DIR/spill``), a database that cannot be
reached does not hold records back: each batch goes to the append-only spill file instead, and
the writer tries the database again with backoff; once it answers, the spill is replayed into it
exactly once (idempotent inserts) before the writer returns to the database. Spilled records
stay readable (``get``) from a bounded in-memory index until replayed. Only when the spill
itself fails (disk full, no permission) does the writer fall back to retrying with the batch
held, and a full buffer then drops, counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence

from sqlalchemy import exc as sa_exc

from mlobs.errors import AmbiguousId, Unavailable
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.ports import PredictionStore
from mlobs.monitoring.records import LabelRecord, PredictionRecord
from mlobs.storage.insert_process import RowsRefused, StoreUnreachable
from mlobs.storage.spill import Backoff, Spill, prediction_to_json

log = logging.getLogger(__name__)


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
        spill: Spill | None = None,
        replay_labels: Callable[[list[LabelRecord]], None] | None = None,
    ) -> None:
        self.store, self.metrics = store, metrics
        self.queue_size, self.batch_size = queue_size, batch_size
        self.flush_interval, self.max_backoff = flush_interval, max_backoff
        # deque.append and popleft are atomic under the GIL; the dict is only touched by
        # single, atomic operations too.
        self._buffer: deque[PredictionRecord] = deque()
        self._pending: dict[str, PredictionRecord] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.last_error: str | None = None
        # The depth gauge is set by the writer, never per request: at each wake (the backlog that
        # built up since the last drain), before each further batch of a long drain, and while an
        # insert is retried. A callback gauge would be exact but multiprocess mode forbids it.
        self._depth = metrics.log_queue_depth
        self.spill, self.replay_labels = spill, replay_labels
        self._spilled: dict[str, PredictionRecord] = {}  # readable until replayed (bounded)
        self.spilling = False
        self._retry = Backoff(ceiling=max_backoff)

    # ------------------------------------------------------------------ request side

    def submit(self, record: PredictionRecord) -> bool:
        if len(self._buffer) >= self.queue_size:
            self.metrics.log_dropped.labels(record.model_name).inc()
            return False
        self._pending[record.id] = record
        self._buffer.append(record)
        return True

    def get(self, prediction_id: str, model_name: str | None = None) -> PredictionRecord | None:
        """A logged prediction: from the buffer if it is still waiting, else from the store.
        (Queued ones are this service's own, with UUIDs unique across models.)"""
        record = self._pending.get(prediction_id) or self._spilled.get(prediction_id)
        if record is not None and model_name in (None, record.model_name):
            return record
        try:
            return self.store.get(prediction_id, model_name)
        except AmbiguousId:
            raise
        except Exception as exc:  # driver errors vary; to the caller they mean "try later"
            raise Unavailable("database", f"{type(exc).__name__}") from exc

    def get_many(
        self, prediction_ids: Sequence[str], *, features: bool = True
    ) -> dict[str, list[PredictionRecord]]:
        """The logged predictions among ``prediction_ids`` (queued or stored), by id, one per
        model that has the id; one query. Without ``features``, stored ones come back without
        their feature values."""
        found = {i: [r] for i, r in self.get_local(prediction_ids).items()}
        rest = [i for i in prediction_ids if i not in found]
        if rest:
            try:
                found.update(self.store.get_many(rest, features=features))
            except Exception as exc:
                raise Unavailable("database", f"{type(exc).__name__}") from exc
        return found

    def get_local(self, prediction_ids: Sequence[str]) -> dict[str, PredictionRecord]:
        """The predictions among the ids this process still holds (queued or spilled)."""
        out = {}
        for i in prediction_ids:
            r = self._pending.get(i) or self._spilled.get(i)
            if r is not None:
                out[i] = r
        return out

    @property
    def depth(self) -> int:
        return len(self._buffer)

    # ------------------------------------------------------------------ writer side

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> int:
        """Stop, drain what is buffered, and return how many records could not be written."""
        if self._thread is None:
            return 0
        self._stopping.set()
        self._thread.join(timeout)
        self._thread = None
        lost = len(self._pending)
        for r in list(self._pending.values()):
            self.metrics.log_dropped.labels(r.model_name).inc()
        self._pending.clear()
        self._buffer.clear()
        self._depth.set(0)
        if lost:
            log.error("prediction log stopped with %d records unwritten", lost)
        return lost

    def _run(self) -> None:
        while True:
            stopping = self._stopping.wait(self.flush_interval)
            self._depth.set(len(self._buffer))
            if self.spill is not None and self._retry.due() and self.spill.pending_files():
                self.replay()
            # What was queued when the writer woke, and then full batches while there are any;
            # a remainder that came in during these writes waits for the next wake (draining to
            # empty under a steady stream would mean an insert, and a wake-up of the insert
            # process, per handful of records instead of one per interval; leaving full batches
            # behind would let the queue grow near the write capacity).
            due = len(self._buffer)
            while self._buffer and (due > 0 or stopping or len(self._buffer) >= self.batch_size):
                batch = self._take(self.batch_size)
                due -= len(batch)
                if not self._write(batch):
                    # Shutting down against a dead database: put the batch back to be counted.
                    self._buffer.extendleft(reversed(batch))
                    return
                if self._buffer:
                    self._depth.set(len(self._buffer))
            if stopping:
                return

    def _take(self, n: int) -> list[PredictionRecord]:
        batch: list[PredictionRecord] = []
        pop = self._buffer.popleft
        while len(batch) < n:
            try:
                batch.append(pop())
            except IndexError:
                break
        return batch

    def _write(self, batch: Sequence[PredictionRecord]) -> bool:
        """Insert one batch; False only when stopping and the database still fails.

        Database errors about the connection or the schema (away, restarting, not migrated yet)
        are retried with backoff, keeping the batch. Data and integrity errors, and values that
        cannot be bound at all, mean some row cannot be stored: the batch is split in halves
        until the offending rows are isolated, and only those are dropped and counted, so one
        bad row never blocks the log.
        """
        backoff = 0.05
        while True:
            if self.spilling and not self._retry.due() and self._to_spill(batch):
                return True  # the database is away: straight to the spill until the next try
            try:
                t = time.perf_counter()
                self.store.insert_many(batch)
            except (sa_exc.DataError, sa_exc.IntegrityError, RowsRefused) as exc:
                # The rows, not the connection: isolate the ones the database refuses.
                self.metrics.log_write_errors.inc()
                if len(batch) == 1:
                    self._drop(batch, f"{type(exc).__name__}: {exc}")
                    return True
                half = len(batch) // 2
                return self._write(batch[:half]) and self._write(batch[half:])
            except (sa_exc.DBAPIError, StoreUnreachable) as exc:  # away, restarting, no schema yet
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.metrics.log_write_errors.inc()
                self._retry.failed()
                if self._to_spill(batch):
                    if not self.spilling:
                        log.warning("database unreachable: spilling the prediction log to %s",
                                    self.spill.path if self.spill else "-")  # fmt: skip
                    self.spilling = True
                    return True
                log.warning(
                    "prediction log insert of %d failed (%s); retrying in %.2fs",
                    len(batch), type(exc).__name__, backoff,
                )  # fmt: skip
                if self._stopping.is_set() and backoff >= self.max_backoff:
                    return False
                self._depth.set(len(self._buffer) + len(batch))
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            except Exception as exc:  # a value that cannot even be bound or serialised
                self.metrics.log_write_errors.inc()
                if len(batch) == 1:
                    self._drop(batch, f"{type(exc).__name__}: {exc}")
                    return True
                half = len(batch) // 2
                return self._write(batch[:half]) and self._write(batch[half:])
            self.last_error = None
            self.metrics.log_write_seconds.observe(time.perf_counter() - t)
            if self.spilling:
                self.replay()  # the database is back: the spill goes in before anything else
            break
        for r in batch:
            self._pending.pop(r.id, None)
        for model_name, n in Counter(r.model_name for r in batch).items():
            self.metrics.log_written.labels(model_name).inc(n)
        return True

    def _to_spill(self, batch: Sequence[PredictionRecord]) -> bool:
        """Append a batch to the spill; False when there is none or it fails."""
        if self.spill is None:
            return False
        try:
            self.spill.append("prediction", [prediction_to_json(r) for r in batch])
        except Exception as exc:  # disk full, no permission, unserialisable value
            self.metrics.spill_failures.inc()
            log.error("spill failed (%s: %s): holding the batch", type(exc).__name__, exc)
            return False
        room = self.queue_size - len(self._spilled)
        for r in batch:
            self._pending.pop(r.id, None)
            if room > 0:
                self._spilled[r.id] = r
                room -= 1
        for model_name, n in Counter(r.model_name for r in batch).items():
            self.metrics.spilled.labels("prediction", model_name).inc(n)
        return True

    def replay(self) -> bool:
        """Replay the spill into the database; True when it is empty afterwards."""
        if self.spill is None:
            return True
        try:
            result = self.spill.replay(
                self.store.insert_many, self.replay_labels or _no_labels, batch=self.batch_size
            )
        except Exception as exc:  # away again: the claimed file stays for the next try
            self._retry.failed()
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self._retry.succeeded()
        self.spilling = False
        self.last_error = None
        if result.predictions:
            self.metrics.spill_replayed.labels("prediction").inc(result.predictions)
        if result.labels:
            self.metrics.spill_replayed.labels("label").inc(result.labels)
        self._spilled.clear()
        return True

    def _drop(self, records: Sequence[PredictionRecord], reason: str) -> None:
        for r in records:
            self._pending.pop(r.id, None)
            self.metrics.log_dropped.labels(r.model_name).inc()
        log.error("dropped %d prediction log record(s) the database refuses: %s",
                  len(records), reason)  # fmt: skip


def _no_labels(labels: list[LabelRecord]) -> None:
    raise RuntimeError(f"{len(labels)} spilled labels but no label store to replay them into")
