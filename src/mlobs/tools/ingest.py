"""Ground truth from a file: ``mlobs ingest-labels NAME FILE --id-col --label-col``.

Each row's label is joined to the logged prediction of model NAME with that id (an id that mlobs
made, or the sender's own from ``POST /models/{name}/predictions``), checked against the model's
task, and stored in chunks; the service's background loop then counts them like labels sent to
``/feedback``. Written to the database of ``DATABASE_URL``, or with ``--url`` posted through a
running service's ``/feedback/batch``. A label that contradicts a stored one is left out and
counted (the stored label stands, as over HTTP); so are unknown ids and labels of the wrong kind.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from mlobs.models.registry import ModelRegistry
from mlobs.monitoring.drift_monitor import DriftConfig
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


# ---------------------------------------------------------------------------------- backfill

PERIODS = {"hour": "h", "day": "D"}


@dataclass
class PeriodDone:
    start: datetime
    end: datetime
    rows: int
    new: int
    status: str  # the drift verdict, or "already logged"
    drift_share: float | None
    realized: dict[str, float] | None


@dataclass
class Backfilled:
    rows: int = 0
    new: int = 0
    duplicate: int = 0
    labels: int = 0
    periods: list[PeriodDone] = field(default_factory=list)


def _period_keys(times: pd.Series, period: str) -> pd.Series:
    if period in PERIODS:
        floored: pd.Series = times.dt.floor(PERIODS[period])
        return floored
    try:
        n = int(period)
    except ValueError:
        raise CommandError(f"--period is hour, day or a number of rows, not {period!r}") from None
    if n < 1:
        raise CommandError("--period needs at least 1 row")
    return pd.Series(range(len(times)), index=times.index) // n


def backfill_local(
    database_url: str,
    model_dir: Path,
    name: str,
    path: Path,
    *,
    timestamp_col: str,
    id_col: str | None = None,
    prediction_col: str | None = None,
    probability_col: str | None = None,
    score_cols: Sequence[str] = (),
    label_col: str | None = None,
    period: str = "day",
    config: DriftConfig | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> Backfilled:
    """Log a historical prediction log of model ``name`` (with its event times) and judge it
    period by period: each period's drift and quality, stored in the drift history with the
    period in event time, and with labels its realized figures in the performance history.
    Records already logged (the same ids) are skipped, and so is a period with nothing new, so
    a backfill run twice stores everything once. No alert is opened and the live window is not
    touched. Each period is judged as ``POST /monitoring/drift/check`` judges posted rows
    (``config``: the service's drift settings)."""
    from mlobs.monitoring.live_windows import drift_result
    from mlobs.monitoring.performance import realized_metrics
    from mlobs.monitoring.profiles import load_profile
    from mlobs.monitoring.quality import assess
    from mlobs.monitoring.records import PerformanceResult, PredictionRecord
    from mlobs.monitoring.windows import WindowCounts
    from mlobs.storage.db import make_engine, migrate
    from mlobs.storage.drift_repository import DriftRepository
    from mlobs.storage.feedback_repository import FeedbackRepository
    from mlobs.storage.model_catalog import RegistrationError, api_values, outputs_from_columns
    from mlobs.storage.repositories import PredictionRepository

    registry = ModelRegistry.load(model_dir, [name])
    if name not in registry.manifests:
        raise CommandError(f"no model {name!r} in {model_dir}: {registry.errors.get(name, '')}")
    manifest, model = registry.manifests[name], registry.observed.get(name)
    profile = load_profile(model_dir, name)
    if profile is None:
        raise CommandError(f"model {name!r} has no reference profile in {model_dir}")
    try:
        frame = read_table(path, text=[id_col] if id_col else [])
    except DataFileError as exc:
        raise CommandError(str(exc)) from None
    outputs = [c for c in (prediction_col, probability_col, *score_cols) if c]
    if not outputs:
        raise CommandError("give the model's output: --prediction-col, --probability-col or "
                           "--score-cols")  # fmt: skip
    wanted = [timestamp_col, *outputs, *(c for c in (id_col, label_col) if c)]
    wanted += [f.name for f in manifest.features]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise CommandError(f"{path} has no columns {missing[:10]}")
    times = pd.to_datetime(frame[timestamp_col], utc=True, errors="coerce", format="mixed")
    if times.isna().any():
        bad = int(times.isna().to_numpy().argmax())
        raise CommandError(f"row {bad}: {timestamp_col} {frame[timestamp_col].iloc[bad]!r} is "
                           "not a time")  # fmt: skip
    order = times.sort_values(kind="stable").index
    frame, times = frame.loc[order].reset_index(drop=True), times.loc[order].reset_index(drop=True)
    try:
        features = api_values(frame, manifest)
        out = outputs_from_columns(manifest, frame, prediction_col, probability_col, score_cols)
    except RegistrationError as exc:
        raise CommandError(str(exc)) from None
    ids = (frame[id_col].astype(str).tolist() if id_col else
           [str(uuid.uuid5(_BACKFILL, f"{name}\x00{Path(path).name}\x00{i}"))
            for i in order])  # fmt: skip
    records_all: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()}
        for r in features.astype(object).where(features.notna(), None).to_dict("records")
    ]
    classes = list(manifest.class_labels or ())
    stamps = list(times.dt.to_pydatetime())  # per-row Python values, made once
    values = out.values.tolist()
    probabilities = None if out.probabilities is None else out.probabilities.tolist()
    scores = None if out.scores is None else out.scores.tolist()
    monitored = out.monitored if (out.probabilities is not None or
                                  manifest.task == "regression") else None  # fmt: skip
    engine = make_engine(database_url)
    result = Backfilled(rows=len(frame))
    config = config or DriftConfig()
    detector = config.detector(profile, config.check_min_samples)
    try:
        migrate(engine)
        predictions, drift = PredictionRepository(engine), DriftRepository(engine)
        labels = FeedbackRepository(engine)
        seq = max((r.window_seq for r in labels.history(name, "backfill", 1)), default=0)
        version = manifest.version or ""
        for _, idx in pd.Series(range(len(frame))).groupby(_period_keys(times, period)):
            rows = idx.to_list()
            start, end = stamps[rows[0]], stamps[rows[-1]]
            batch = [PredictionRecord(
                id=ids[i], model_name=name, model_version=version, created_at=stamps[i],
                features=records_all[i], prediction=values[i],
                probability=None if probabilities is None else probabilities[i], latency_ms=0.0,
                scores=None if scores is None else scores[i],
                label=classes[int(values[i])] if classes else None,
            ) for i in rows]  # fmt: skip
            new = predictions.insert_new(batch)
            result.new += len(new)
            result.duplicate += len(batch) - len(new)
            progress(len(rows))
            if not new:
                result.periods.append(PeriodDone(start, end, len(rows), 0, "already logged",
                                                 None, None))  # fmt: skip
                continue
            now = datetime.now(timezone.utc)
            counts = WindowCounts.from_frame(
                profile, features.iloc[rows],
                None if monitored is None else monitored[rows],
            )  # fmt: skip
            report = detector.evaluate(counts)
            quality = assess(profile, counts, config.quality)
            verdict = drift_result(name, "backfill", None, now, report, quality)
            drift.save_result(dataclasses.replace(verdict, window_start=start, window_end=end))
            realized = None
            if label_col:
                labelled = _backfill_labels(model, batch, new, frame[label_col], rows, now)
                _store(labels, labelled, LabelsIngested())
                result.labels += len(labelled)
                realized = realized_metrics(model, labelled) if model and labelled else None
                if realized:
                    seq += 1
                    labels.save_estimate(PerformanceResult(
                        model_name=name, model_version=version, kind="backfill", window_seq=seq,
                        created_at=now, n_rows=len(labelled), realized=realized, estimated=None,
                        concept={"window_start": start.isoformat(), "window_end": end.isoformat()},
                    ))  # fmt: skip
            result.periods.append(PeriodDone(start, end, len(rows), len(new), report.status,
                                             report.drift_share, realized))  # fmt: skip
    finally:
        engine.dispose()
    return result


_BACKFILL = uuid.UUID("0c5b2f1e-3d4a-4e6b-8f70-1a2b3c4d5e6f")


def _backfill_labels(
    model: Any,
    batch: Sequence[Any],
    new: set[str],
    labels: pd.Series,
    rows: Sequence[int],
    now: datetime,
) -> list[LabelRecord]:
    """Label records for the newly logged predictions of a period that have a label."""
    out = []
    for rec, i in zip(batch, rows, strict=True):
        value = labels.iloc[i]
        if rec.id not in new or _missing(value):
            continue
        value = value.item() if hasattr(value, "item") else value
        try:
            actual = label_number(model, rec, value)
        except ValueError:
            continue
        out.append(LabelRecord(
            prediction_id=rec.id, model_name=rec.model_name, model_version=rec.model_version,
            predicted_at=rec.created_at, received_at=now, actual=actual,
            prediction=rec.prediction, probability=rec.probability, scores=rec.scores,
        ))  # fmt: skip
    return out
