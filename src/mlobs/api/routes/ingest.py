"""Predictions made elsewhere: ``POST /models/{name}/predictions`` logs a model's served traffic
as JSON or NDJSON and monitors it like its own predictions.

Each record is logged once: the log's key is (model, prediction id), and the insert reports
which records are new. Only those are counted (drift windows, metrics), so a sender that retries
a batch, or sends a record twice, is counted once and told which were duplicates. Records
without an id get a UUID; with an ``Idempotency-Key`` header their ids derive from the key and
their position, so a retried batch without ids counts once too. While the database cannot be
reached nothing is accepted (503 with ``Retry-After``): a record that cannot be checked for a
duplicate is not counted.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
)
from sqlalchemy import exc as sa_exc
from starlette.concurrency import run_in_threadpool

from mlobs.api.auth import Guard, KeyPolicy
from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import BODY, responses
from mlobs.api.runtime import Runtime
from mlobs.api.schemas import ClassLabel, PredictionId
from mlobs.errors import InvalidInput, NotFound, Unavailable
from mlobs.models.base import label_key
from mlobs.models.manifest import Manifest
from mlobs.monitoring.records import PredictionRecord

# A sender's clock may run a little ahead of ours; a timestamp further ahead is refused.
CLOCK_SKEW = timedelta(minutes=5)
# Ids made from an Idempotency-Key: the same key, model and position give the same id.
_IDEMPOTENT = uuid.UUID("6f1d2c3a-5b4e-4f7a-9c8d-0e1f2a3b4c5d")
NDJSON = "application/x-ndjson"

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class IngestRecord(BaseModel):
    """One prediction made elsewhere."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prediction_id": "txn-42",
                    "timestamp": "2026-12-07T10:00:00Z",
                    "features": {"mean radius": 14.1},
                    "prediction": 1,
                    "probability": 0.93,
                }
            ]
        },  # fmt: skip
    )
    prediction_id: PredictionId | None = Field(
        None, description="The sender's id, unique per model (absent: one is made)."
    )
    timestamp: AwareDatetime | None = Field(
        None, description="When the model predicted, with a time zone (absent: now)."
    )
    features: dict[str, Any] = Field(description="The model's features, as `/predict` takes them.")
    prediction: StrictBool | StrictInt | StrictFloat | ClassLabel | None = Field(
        None,
        description="0/1 or false/true (binary), a class label (multiclass), a number "
        "(regression); a classifier's may be left out when `probability` or `scores` say it.",
    )
    probability: Probability | None = Field(
        None, description="Binary classifiers: the positive class's probability."
    )
    scores: list[Probability] | None = Field(
        None,
        min_length=2,
        max_length=1000,
        description="Multiclass classifiers: every class's probability, in `class_labels` order.",
    )


class IngestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    records: list[dict[str, Any]] = Field(
        min_length=1, description="The records (each an `IngestRecord`)."
    )


class RejectedOut(BaseModel):
    index: int = Field(description="The record's position in the batch (or NDJSON line).")
    loc: list[str | int]
    msg: str


class IngestOut(BaseModel):
    model_name: str
    accepted: int = Field(description="Logged now and counted.")
    duplicate: int = Field(description="Logged before (or twice in this batch): counted once.")
    rejected: int = Field(description="Invalid records left out (`on_error=skip` only).")
    prediction_ids: list[str | None] = Field(
        description="Each record's id, in order (null for a rejected record)."
    )
    errors: list[RejectedOut] = Field(default_factory=list)


class _Refused(Exception):
    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc, self.msg = loc, msg


def _parse(body: bytes, content_type: str) -> list[Any]:
    """The raw records of a JSON (``{"records": [...]}``) or NDJSON body; a 422 naming the line
    or the field when it is neither."""
    if content_type.split(";")[0].strip().lower() == NDJSON:
        rows = []
        for i, line in enumerate(body.splitlines()):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(
                    ("body", i), f"line {i + 1} is not JSON: {exc}", "json_invalid"
                ) from None
        if not rows:
            raise InvalidInput(("body",), "no records", "missing")
        return rows
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(("body",), f"not JSON: {exc}", "json_invalid") from None
    try:
        return IngestBody.model_validate(data).records
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None


def _outputs(
    rec: IngestRecord, manifest: Manifest
) -> tuple[float, float | None, list[float] | None, Any]:
    """(prediction as logged, probability, scores, class label) of a record, by the model's task;
    ``_Refused`` naming the field when they do not fit it."""
    task = manifest.task
    if task == "regression":
        if rec.probability is not None or rec.scores is not None:
            raise _Refused(("probability",), "a regressor's record has no probability or scores")
        v = rec.prediction
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Refused(("prediction",), "a regressor's prediction is a finite number")
        return float(v), None, None, None
    if task == "binary_classification":
        if rec.scores is not None:
            raise _Refused(
                ("scores",), "a binary classifier's record has a probability, not scores"
            )
        v = rec.prediction
        if v is None:
            if rec.probability is None:
                raise _Refused(("prediction",), "give the prediction, the probability or both")
            return float(rec.probability >= manifest.threshold), rec.probability, None, None
        if isinstance(v, str) or label_key(v) not in (0, 1):
            raise _Refused(("prediction",), "a binary classifier's prediction is 0/1 or false/true")
        return float(label_key(v)), rec.probability, None, None
    classes = list(manifest.class_labels or ())
    if rec.probability is not None:
        raise _Refused(("probability",), "a multiclass record has scores, not a probability")
    keys = [label_key(c) for c in classes]
    scores = rec.scores
    if scores is not None and len(scores) != len(classes):
        raise _Refused(("scores",), f"needs {len(classes)} scores, one per class {classes}")
    if rec.prediction is None:
        if scores is None:
            raise _Refused(("prediction",), "give the prediction, the scores or both")
        index = max(range(len(scores)), key=scores.__getitem__)
    else:
        key = label_key(rec.prediction)
        if isinstance(rec.prediction, bool) or key not in keys:
            raise _Refused(("prediction",), f"must be one of the classes {classes}")
        index = keys.index(key)
    proba = scores[index] if scores is not None else None
    return float(index), proba, scores, classes[index]


def _made_id(name: str, index: int, key: str | None) -> str:
    """The id of a record sent without one: from the Idempotency-Key and its position (the same
    on a retry), else a fresh UUID."""
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_IDEMPOTENT, f"{name}\x00{key}\x00{index}"))


def ingest(
    rt: Runtime, name: str, raw: list[Any], skip: bool, idempotency_key: str | None
) -> IngestOut:
    """Validate, log what is new, count it; see the module's docstring."""
    manifest = rt.models.manifests.get(name)
    if manifest is None:
        raise NotFound("model", name, loc=("path", "model_name"))
    now = datetime.now(timezone.utc)
    errors: list[RejectedOut] = []
    parsed: dict[int, IngestRecord] = {}
    for i, item in enumerate(raw):
        try:
            rec = IngestRecord.model_validate(item)
        except ValidationError as exc:
            errors.extend(RejectedOut(index=i, loc=["body", "records", i, *e["loc"]], msg=e["msg"])
                          for e in exc.errors())  # fmt: skip
            continue
        if rec.timestamp is not None and rec.timestamp > now + CLOCK_SKEW:
            errors.append(RejectedOut(index=i, loc=["body", "records", i, "timestamp"],
                                      msg="is in the future"))  # fmt: skip
            continue
        parsed[i] = rec
    features, feature_errors = rt.bodies.check(name, {i: r.features for i, r in parsed.items()})
    for i, problems in feature_errors.items():
        errors.extend(RejectedOut(index=i, loc=["body", "records", i, "features", *e["loc"]],
                                  msg=e["msg"]) for e in problems)  # fmt: skip
    records: list[PredictionRecord] = []
    ids: list[str | None] = [None] * len(raw)
    for i, rec in parsed.items():
        if i not in features:
            continue
        try:
            value, proba, scores, label = _outputs(rec, manifest)
        except _Refused as exc:
            errors.append(RejectedOut(index=i, loc=["body", "records", i, *exc.loc], msg=exc.msg))
            continue
        ids[i] = prediction_id = rec.prediction_id or _made_id(name, i, idempotency_key)
        records.append(PredictionRecord(
            id=prediction_id, model_name=name, model_version=manifest.version or "",
            created_at=(rec.timestamp or now).astimezone(timezone.utc), features=features[i],
            prediction=value, probability=proba, latency_ms=0.0, scores=scores, label=label,
        ))  # fmt: skip
    if errors and not skip:
        raise RequestValidationError(
            [{"loc": tuple(e.loc), "msg": e.msg, "type": "value_error"} for e in errors]
        )
    try:
        fresh = rt.predictions.insert_new(records)
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise Unavailable("database", f"unreachable: {type(exc).__name__}") from None
    # A record twice in the batch was inserted once: only its first copy is counted.
    first = {r.id: r for r in reversed(records) if r.id in fresh}
    counted = [r for r in records if first.get(r.id) is r]
    rejected = sorted({e.index for e in errors})
    rt.count_ingested(name, counted, duplicates=len(records) - len(counted), rejected=len(rejected))
    return IngestOut(
        model_name=name, accepted=len(counted), duplicate=len(records) - len(counted),
        rejected=len(rejected), prediction_ids=ids, errors=errors,
    )  # fmt: skip


def build_router(policy: KeyPolicy) -> APIRouter:
    router = APIRouter(tags=["ingest"])
    guard = Guard.of(policy, "predict")

    @router.post(
        "/models/{model_name}/predictions",
        response_model=IngestOut,
        status_code=202,
        responses=responses(*BODY, 404, 503, *guard.statuses),
        dependencies=list(guard.dependencies),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["records"],
                            "properties": {
                                "records": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {"$ref": "#/components/schemas/IngestRecord"},
                                }
                            },
                        }
                    },
                    NDJSON: {"schema": {"$ref": "#/components/schemas/IngestRecord"}},
                },
            }
        },  # fmt: skip
    )
    async def ingest_predictions(
        model_name: str,
        request: Request,
        rt: RuntimeDep,
        on_error: Annotated[
            Literal["reject", "skip"],
            Query(
                description="`reject`: an invalid record rejects the batch (422); `skip`: the "
                "valid records are logged, the others listed."
            ),  # fmt: skip
        ] = "reject",
        idempotency_key: Annotated[
            str | None,
            Header(max_length=200, description="Makes a retried batch without ids count once."),
        ] = None,
    ) -> IngestOut:
        """Log predictions a model made elsewhere (JSON `{"records": [...]}` or NDJSON, one
        record a line) and monitor them like its own: drift windows, quality, metrics, feedback
        by their ids. Answered 202 with the records accepted, duplicate (sent before: counted
        once) and rejected."""
        if model_name not in rt.models.manifests:
            raise NotFound("model", model_name, loc=("path", "model_name"))
        content_type = request.headers.get("content-type", "application/json")
        if content_type.split(";")[0].strip().lower() not in ("application/json", NDJSON):
            raise InvalidInput(
                ("header", "content-type"), f"takes application/json or {NDJSON}", "media_type"
            )
        raw = _parse(await request.body(), content_type)
        return await run_in_threadpool(
            ingest, rt, model_name, raw, on_error == "skip", idempotency_key
        )

    return router
