"""A local, append-only spill for records the database cannot take right now.

While the database is unreachable, the prediction log (and the feedback route) append what they
accepted to a JSON-lines file in ``DATA_DIR/spill/``, one file per process, each append flushed
and fsync'd before it counts as kept. When the database answers again, the files are replayed
into it in batches with idempotent inserts (a prediction by its id, a label by its prediction
id), so a replay that is interrupted and started again stores each record exactly once; a file
is deleted only after all of it is stored.

A process claims a file before replaying it by renaming it (atomic on one file system), so two
processes never replay one file at once, and files left by a process that died (its own, or a
claim it did not finish) are picked up by the next replay of any process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from mlobs.monitoring.records import LabelRecord, PredictionRecord

log = logging.getLogger(__name__)

ACTIVE = ".jsonl"
CLAIMED = ".replaying"


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


def prediction_to_json(r: PredictionRecord) -> dict[str, Any]:
    return {
        "id": r.id, "model_name": r.model_name, "model_version": r.model_version,
        "created_at": r.created_at.isoformat(), "features": dict(r.features),
        "prediction": r.prediction, "probability": r.probability, "latency_ms": r.latency_ms,
        "scores": list(r.scores) if r.scores is not None else None, "label": r.label,
    }  # fmt: skip


def prediction_from_json(d: dict[str, Any]) -> PredictionRecord:
    return PredictionRecord(**{**d, "created_at": _dt(d["created_at"])})


def label_to_json(r: LabelRecord) -> dict[str, Any]:
    return {
        "prediction_id": r.prediction_id, "model_name": r.model_name,
        "model_version": r.model_version, "predicted_at": r.predicted_at.isoformat(),
        "received_at": r.received_at.isoformat(), "actual": r.actual,
        "prediction": r.prediction, "probability": r.probability,
        "scores": list(r.scores) if r.scores is not None else None,
    }  # fmt: skip


def label_from_json(d: dict[str, Any]) -> LabelRecord:
    return LabelRecord(
        **{**d, "predicted_at": _dt(d["predicted_at"]), "received_at": _dt(d["received_at"])}
    )


@dataclass
class ReplayResult:
    predictions: int = 0
    labels: int = 0
    files: int = 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spill:
    """The spill directory of one process (``append``) and the replay of every process's files."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"spill-{os.getpid()}{ACTIVE}"
        self._lock = threading.Lock()

    def append(self, kind: str, rows: Sequence[dict[str, Any]]) -> None:
        """Append rows durably (flushed and fsync'd); raises OSError when that fails."""
        if not rows:
            return
        data = b"".join(orjson.dumps({"kind": kind, "data": row}) + b"\n" for row in rows)
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending_files(self) -> list[Path]:
        """Files waiting for replay; none when the directory is missing or unreadable."""
        try:
            names = list(self.directory.iterdir())
        except OSError:
            return []
        return sorted(p for p in names if p.suffix == ACTIVE or CLAIMED in p.name)

    def pending_bytes(self) -> int:
        total = 0
        for p in self.pending_files():
            with contextlib.suppress(OSError):
                total += p.stat().st_size
        return total

    def _claim(self) -> Iterator[Path]:
        """Files to replay, each renamed to a name this process owns. An active file (ours
        included: appends then start a fresh one) or a claim whose process is gone."""
        me = os.getpid()
        for p in self.pending_files():
            if CLAIMED in p.name:
                claimer = int(p.name.rsplit("-", 1)[-1])
                if claimer != me and _pid_alive(claimer):
                    continue  # another live process is replaying it
            base = p.name.split(".", 1)[0]
            target = p.with_name(f"{base}.{time.time_ns()}{CLAIMED}-{me}")
            try:
                os.rename(p, target)
            except FileNotFoundError:
                continue  # another process claimed it first
            yield target

    @staticmethod
    def _replay_file(
        path: Path,
        insert_predictions: Callable[[list[PredictionRecord]], None],
        insert_labels: Callable[[list[LabelRecord]], None],
        batch: int,
        result: ReplayResult,
    ) -> None:
        preds: list[PredictionRecord] = []
        labels: list[LabelRecord] = []
        with path.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    # A torn last line (the process died mid-write): it was never acknowledged
                    # as kept, so it is not replayed.
                    log.warning("spill %s ends with a partial line; skipped", path.name)
                    break
                item = orjson.loads(line)
                if item["kind"] == "prediction":
                    preds.append(prediction_from_json(item["data"]))
                else:
                    labels.append(label_from_json(item["data"]))
                if len(preds) + len(labels) >= batch:
                    _flush(preds, labels, insert_predictions, insert_labels, result)
        _flush(preds, labels, insert_predictions, insert_labels, result)

    def replay(
        self,
        insert_predictions: Callable[[list[PredictionRecord]], None],
        insert_labels: Callable[[list[LabelRecord]], None],
        batch: int = 1_000,
    ) -> ReplayResult:
        """Store every spilled record, file by file; a file is deleted once stored. Raises what
        the inserts raise (the database went away again): the claimed file stays, to be resumed."""
        result = ReplayResult()
        with self._lock:  # appends wait while our active file is renamed away
            claimed = list(self._claim())
        for path in claimed:
            self._replay_file(path, insert_predictions, insert_labels, batch, result)
            path.unlink()
            result.files += 1
        if result.files:
            log.info(
                "replayed %d predictions and %d labels from %d spill file(s)",
                result.predictions, result.labels, result.files,
            )  # fmt: skip
        return result


def _flush(
    preds: list[PredictionRecord],
    labels: list[LabelRecord],
    insert_predictions: Callable[[list[PredictionRecord]], None],
    insert_labels: Callable[[list[LabelRecord]], None],
    result: ReplayResult,
) -> None:
    if preds:
        insert_predictions(list(preds))
        result.predictions += len(preds)
        preds.clear()
    if labels:
        insert_labels(list(labels))
        result.labels += len(labels)
        labels.clear()


class Backoff:
    """When to try the database again: doubling delays up to a ceiling."""

    def __init__(self, first: float = 0.5, ceiling: float = 5.0) -> None:
        self.first, self.ceiling = first, ceiling
        self.delay = first
        self.next_at = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def failed(self) -> None:
        self.next_at = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, self.ceiling)

    def succeeded(self) -> None:
        self.delay, self.next_at = self.first, 0.0
