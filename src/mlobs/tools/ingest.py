"""Ground truth from a file: ``mlobs ingest-labels NAME FILE --id-col --label-col``.

Each row's label is joined to the logged prediction of model NAME with that id (an id that mlobs
made, or the sender's own from ``POST /models/{name}/predictions``), checked against the model's
task, and stored in chunks; the service's background loop then counts them like labels sent to
``/feedback``. Written to the database of ``DATABASE_URL``, or with ``--url`` posted through a
running service's ``/feedback/batch``. A label that contradicts a stored one is left out and
counted (the stored label stands, as over HTTP); so are unknown ids and labels of the wrong kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from mlobs.models.registry import ModelRegistry
from mlobs.monitoring.performance import LabelConflict, label_number
from mlobs.monitoring.records import LabelRecord
from mlobs.storage.datafiles import DataFileError, read_table
from mlobs.tools.register import CommandError

CHUNK = 1_000


@dataclass
class LabelsIngested:
    rows: int = 0
    recorded: int = 0
    duplicate: int = 0
    unknown: int = 0  # no logged prediction of the model with that id
    invalid: int = 0  # a label of the wrong kind (or missing)
    conflicting: int = 0  # a different label was stored before
    examples: list[str] = field(default_factory=list)  # the first few problems, for the summary

    def problem(self, kind: str, text: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < 5:
            self.examples.append(text)


def _pairs(path: Path, id_col: str, label_col: str) -> list[tuple[str, Any]]:
    try:
        frame = read_table(path, text=[id_col])
    except DataFileError as exc:
        raise CommandError(str(exc)) from None
    missing = [c for c in (id_col, label_col) if c not in frame.columns]
    if missing:
        raise CommandError(f"{path} has no columns {missing}; it has {list(frame.columns)[:20]}")
    out = []
    for pid, label in zip(frame[id_col], frame[label_col], strict=True):
        if isinstance(pid, float) and pid.is_integer():  # a Parquet id column of floats
            pid = int(pid)
        value = label.item() if hasattr(label, "item") else label
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out.append((str(pid), value))
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def ingest_labels_local(
    database_url: str,
    model_dir: Path,
    name: str,
    path: Path,
    id_col: str,
    label_col: str,
    progress: Callable[[int], None] = lambda n: None,
) -> LabelsIngested:
    """Store the file's labels for model ``name`` in the database of ``database_url``."""
    from mlobs.storage.db import make_engine, migrate
    from mlobs.storage.feedback_repository import FeedbackRepository
    from mlobs.storage.repositories import PredictionRepository

    registry = ModelRegistry.load(model_dir, [name])
    if name not in registry.manifests:
        raise CommandError(f"no model {name!r} in {model_dir}: {registry.errors.get(name, '')}")
    model = registry.observed.get(name)
    pairs = _pairs(path, id_col, label_col)
    engine = make_engine(database_url)
    out = LabelsIngested(rows=len(pairs))
    try:
        migrate(engine)
        predictions, labels = PredictionRepository(engine), FeedbackRepository(engine)
        for start in range(0, len(pairs), CHUNK):
            chunk = pairs[start : start + CHUNK]
            found = predictions.get_many([pid for pid, _ in chunk], features=False)
            now = datetime.now(timezone.utc)
            batch: list[LabelRecord] = []
            for pid, value in chunk:
                rec = next((r for r in found.get(pid, ()) if r.model_name == name), None)
                if rec is None:
                    out.problem("unknown", f"{pid}: no logged prediction of {name}")
                    continue
                if _missing(value):
                    out.problem("invalid", f"{pid}: no label")
                    continue
                try:
                    actual = label_number(model, rec, value)
                except ValueError as exc:
                    out.problem("invalid", f"{pid}: {exc}")
                    continue
                batch.append(LabelRecord(
                    prediction_id=rec.id, model_name=name, model_version=rec.model_version,
                    predicted_at=rec.created_at, received_at=now, actual=actual,
                    prediction=rec.prediction, probability=rec.probability, scores=rec.scores,
                ))  # fmt: skip
            _store(labels, batch, out)
            progress(len(chunk))
    finally:
        engine.dispose()
    return out


def _store(labels: Any, batch: list[LabelRecord], out: LabelsIngested) -> None:
    """Add a chunk in one transaction; a label contradicting a stored one is left out (and the
    rest added again), so a file's conflicts cost one retry each."""
    while batch:
        try:
            outcomes = labels.add(batch)
        except LabelConflict as exc:
            bad = batch.pop(exc.index)
            out.problem("conflicting", f"{bad.prediction_id}: {exc}")
            continue
        out.recorded += outcomes.count("recorded")
        out.duplicate += outcomes.count("duplicate")
        return


def ingest_labels_remote(
    url: str,
    api_key: str | None,
    name: str,
    path: Path,
    id_col: str,
    label_col: str,
    progress: Callable[[int], None] = lambda n: None,
) -> LabelsIngested:
    """Post the file's labels to a running service's ``/feedback/batch``, chunk by chunk."""
    pairs = _pairs(path, id_col, label_col)
    out = LabelsIngested(rows=len(pairs))
    headers = {"X-API-Key": api_key} if api_key else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120) as client:
        for start in range(0, len(pairs), CHUNK):
            chunk = pairs[start : start + CHUNK]
            items = []
            for pid, value in chunk:
                if _missing(value):
                    out.problem("invalid", f"{pid}: no label")
                else:
                    items.append({"prediction_id": pid, "actual": value, "model_name": name})
            _post(client, items, out)
            progress(len(chunk))
    return out


def _post(client: httpx.Client, items: Sequence[dict[str, Any]], out: LabelsIngested) -> None:
    """One chunk; an item the service refuses (404, 409, 422 name it) is left out and the rest
    sent again."""
    pending = list(items)
    while pending:
        try:
            r = client.post("/feedback/batch", json={"items": pending})
        except httpx.TransportError as exc:
            raise CommandError(f"cannot reach {client.base_url}: {exc}") from None
        if r.status_code == 200:
            body = r.json()
            out.recorded += int(body["recorded"]) + int(body.get("queued", 0))
            out.duplicate += int(body["duplicates"])
            return
        detail = r.json().get("detail") if r.headers.get("content-type", "").startswith(
            "application/json") else None  # fmt: skip
        loc = detail[0].get("loc", []) if isinstance(detail, list) and detail else []
        index = loc[2] if len(loc) > 2 and loc[:2] == ["body", "items"] else None
        if r.status_code not in (404, 409, 422) or not isinstance(index, int):
            raise CommandError(f"{client.base_url} answered {r.status_code}: {r.text[:500]}")
        kind = {404: "unknown", 409: "conflicting", 422: "invalid"}[r.status_code]
        bad = pending.pop(index)
        msg = detail[0].get("msg") if isinstance(detail, list) else r.text[:200]
        out.problem(kind, f"{bad['prediction_id']}: {msg}")
