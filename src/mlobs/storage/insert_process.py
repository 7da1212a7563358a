"""The prediction log's inserts, run in a child process of the serving process.

A batch insert holds the GIL for most of its work (binding parameters, building rows): measured
in the serving process it took as many samples as the request handlers themselves, and each
flush stalled the request thread for milliseconds (queueing behind it set the p90/p99 of
/predict). Here the writer thread of ``PredictionLog`` only serialises the batch with orjson (a
dataclass list in Rust, about a microsecond a record) and hands it to a child process over a
pipe; the child owns its own engine and runs ``PredictionRepository.insert_many``. The writer
waits for the child's answer with the GIL released, so its semantics are unchanged: a batch
counts as written only once the child has committed it.

The transport, the timeout and the child's lifecycle are ``child_process``'s. The set-up frame
is the database URL; then one JSON list of predictions per batch, answered with ``{"ok": n}`` or
``{"error": kind, "message": text}``, kind one of ``refused`` (the database refuses some row: data
or integrity error), ``unreachable`` (connection, schema or any other driver error) or
``invalid`` (the payload itself). A child that dies or does not answer in time is killed and the
batch is reported ``unreachable``; the next batch starts a new child. Inserts are idempotent
(``ON CONFLICT DO NOTHING`` on the id), so a batch whose answer was lost may be sent again.

    python -m mlobs.storage.insert_process     # the child; started by InsertProcess only
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from mlobs.storage.child_process import ChildProcess, StoreUnreachable, child_main

if TYPE_CHECKING:
    from mlobs.monitoring.ports import PredictionStore
    from mlobs.monitoring.records import PredictionRecord

log = logging.getLogger(__name__)

__all__ = ["InsertProcess", "OffProcessStore", "RowsRefused", "StoreUnreachable"]


class RowsRefused(Exception):
    """The database refused a row of the batch (a data or integrity error in the child)."""


class InsertProcess(ChildProcess):
    """The parent's side: ``insert_many`` forwards a batch to the child and waits for it."""

    def __init__(self, database_url: str, *, timeout: float = 60.0) -> None:
        super().__init__("mlobs.storage.insert_process", database_url.encode(), timeout=timeout)
        self.database_url = database_url

    def insert_many(self, records: Sequence[PredictionRecord]) -> None:
        if not records:
            return
        # Encoding errors (a value orjson cannot write) raise here, in the caller, as they
        # would from the driver: the log isolates and drops that row.
        for r in records:
            # orjson writes NaN and infinities as null: refuse them here instead of storing a
            # different value (the log isolates and counts the row).
            if not math.isfinite(r.prediction) or (
                r.probability is not None and not math.isfinite(r.probability)
            ):
                raise ValueError(f"prediction {r.id}: output is not a finite number")
        payload = orjson.dumps(list(records), default=_encode, option=orjson.OPT_SERIALIZE_NUMPY)
        answer = self.call(lambda generation: payload)
        if "ok" in answer:
            return
        kind, message = answer.get("error"), str(answer.get("message", ""))
        if kind == "refused":
            raise RowsRefused(message)
        if kind == "invalid":
            raise ValueError(message)
        raise StoreUnreachable(message)


class OffProcessStore:
    """A ``PredictionStore`` whose reads run in this process and whose inserts run in the child."""

    def __init__(self, reads: PredictionStore, writer: InsertProcess) -> None:
        self.reads, self.writer = reads, writer

    def insert_many(self, records: Sequence[PredictionRecord]) -> None:
        self.writer.insert_many(records)

    def get(self, prediction_id: str, model_name: str | None = None) -> PredictionRecord | None:
        return self.reads.get(prediction_id, model_name)

    def get_many(
        self, prediction_ids: Sequence[str], *, features: bool = True
    ) -> dict[str, list[PredictionRecord]]:
        return self.reads.get_many(prediction_ids, features=features)


def _encode(obj: Any) -> Any:
    """What orjson does not write natively: feature mappings that are not dicts."""
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"cannot log a value of type {type(obj).__name__}")


# -------------------------------------------------------------------- the child


def _setup(first: bytes) -> tuple[Callable[[bytes], dict[str, Any]], Callable[[], None]]:
    """The child's set-up: the database URL, then one handler per batch."""
    from sqlalchemy import exc as sa_exc

    from mlobs.storage.db import make_engine
    from mlobs.storage.repositories import PredictionRepository
    from mlobs.storage.spill import prediction_from_json

    # One connection is all a sequential writer uses.
    engine = make_engine(first.decode())
    repo = PredictionRepository(engine)

    def handle(payload: bytes) -> dict[str, Any]:
        try:
            records = [prediction_from_json(d) for d in orjson.loads(payload)]
        except Exception as exc:
            return {"error": "invalid", "message": f"{type(exc).__name__}: {exc}"}
        try:
            repo.insert_many(records)
        except (sa_exc.DataError, sa_exc.IntegrityError) as exc:
            return {"error": "refused", "message": f"{type(exc).__name__}: {exc}"}
        except (sa_exc.SQLAlchemyError, OSError) as exc:  # away, restarting, not migrated
            return {"error": "unreachable", "message": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # a value that cannot be bound: as in-process, isolate it
            return {"error": "invalid", "message": f"{type(exc).__name__}: {exc}"}
        return {"ok": len(records)}

    return handle, engine.dispose


def main() -> None:
    child_main(_setup)


if __name__ == "__main__":
    main()
