"""Request and response schemas. The per-model feature bodies are built from the catalogue's
manifests (``mlobs.api.bodies``); the bodies here take them as arguments."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    create_model,
)

from mlobs.models.manifest import NAME_PATTERN
from mlobs.models.schema import FeatureKind, Task
from mlobs.monitoring.records import PredictionRecord

# No NUL characters: PostgreSQL's text and JSONB cannot store them, and no real value has one.
NO_NUL = r"^[^\x00]*$"
# A model of the catalogue; an unknown one is a 404.
ModelName = Annotated[
    str, Field(pattern=NAME_PATTERN, description="A model of the catalogue.", examples=["fraud"])
]


# A prediction id: a UUID when mlobs makes it, else the sender's own (printable, 1-128).
PREDICTION_ID: dict[str, Any] = {
    "min_length": 1, "max_length": 128, "pattern": r"^[^\x00-\x1f\x7f]+$",
}  # fmt: skip
PREDICTION_ID_TEXT = (
    "The id /predict returned, or the sender's own id of an ingested prediction (1-128 printable "
    "characters, unique per model)."
)
PredictionId = Annotated[str, Field(description=PREDICTION_ID_TEXT, **PREDICTION_ID)]


class PredictionOut(BaseModel):
    """One prediction."""

    prediction_id: str = Field(description="UUID; use it to read the prediction or send feedback.")
    model_name: str = Field(description="A model of the catalogue.")
    model_version: str
    prediction: int | float | str = Field(
        description="The class (0/1) of a binary classifier; the class label of a multiclass "
        "classifier; a regressor's value."
    )
    probability: float | None = Field(
        None,
        description="Classifiers: the positive class's probability (binary), the predicted "
        "class's (multiclass).",
    )
    scores: list[float] | None = Field(
        None,
        description="Multiclass classifiers: every class's probability, in the order of the "
        "model's `class_labels` (`GET /models/{name}`).",
    )
    timestamp: datetime

    @classmethod
    def from_record(cls, r: PredictionRecord) -> PredictionOut:
        pred: int | float | str = r.prediction
        if r.scores is not None and r.label is not None:
            pred = r.label
        elif r.probability is not None:
            pred = int(r.prediction)
        return cls(
            prediction_id=r.id,
            model_name=r.model_name,
            model_version=r.model_version,
            prediction=pred,
            probability=r.probability,
            scores=list(r.scores) if r.scores is not None else None,
            timestamp=r.created_at,
        )


class LoggedPredictionOut(PredictionOut):
    """A logged prediction with the features it was made from."""

    features: dict[str, Any]
    latency_ms: float

    @classmethod
    def from_logged(cls, r: PredictionRecord) -> LoggedPredictionOut:
        base = PredictionOut.from_record(r).model_dump()
        return cls(**base, features=dict(r.features), latency_ms=r.latency_ms)


def _example(models: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
    """A ``{model_name, records}`` example: the first model's example row."""
    if not models:
        return {"model_name": "fraud", "records": [{}]}
    name, model = next(iter(models.items()))
    extra = model.model_config.get("json_schema_extra")
    rows = extra.get("examples") if isinstance(extra, dict) else None
    return {"model_name": name, "records": [rows[0] if isinstance(rows, list) and rows else {}]}


def _records_by_model(
    *,
    models: Mapping[str, type[BaseModel]],
    min_items: int,
    max_items: int,
    optional: bool,
    description: str,
) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` that documents a ``{model_name, records}`` body as one variant per
    model, whose records are that model's feature objects. The route checks the records against
    ``model_name``'s schema itself (so that ``loc`` reads ``["body", "records", 3, "amount"]``);
    the document states the same rule, so it admits exactly what the route accepts, where
    ``records: [object]`` would admit a price row in a fraud batch."""

    def variants(schema: dict[str, Any]) -> None:
        for key in ("type", "properties", "required", "additionalProperties"):
            schema.pop(key, None)
        schema["examples"] = [_example(models)]
        schema["oneOf"] = []
        for name, model in models.items():
            rows = {
                "type": "array",
                "minItems": min_items,
                "maxItems": max_items,
                "items": {"$ref": f"#/components/schemas/{model.__name__}"},
            }
            records = {"anyOf": [rows, {"type": "null"}]} if optional else rows
            schema["oneOf"].append(
                {
                    "title": f"{model.__name__}Records",
                    "type": "object",
                    "properties": {
                        "model_name": {"type": "string", "const": name},
                        "records": {**records, "description": description},
                    },
                    "required": ["model_name"] if optional else ["model_name", "records"],
                    "additionalProperties": False,
                }
            )

    return variants


class BatchRequestBase(BaseModel):
    """A batch: the model's name and its records (checked against that model's schema)."""

    model_name: ModelName
    records: list[dict[str, Any]]


def batch_request_model(
    max_records: int, models: Mapping[str, type[BaseModel]]
) -> type[BatchRequestBase]:
    """The batch request; records are checked against ``model_name``'s schema by the route."""
    documented = _records_by_model(
        models=models,
        min_items=1,
        max_items=max_records,
        optional=False,
        description=(
            f"1 to {max_records} feature objects of the model named by model_name. Any invalid "
            "record rejects the batch with a 422 whose loc names it: "
            '["body", "records", <index>, <feature>].'
        ),
    )

    class BatchRequest(BatchRequestBase):
        model_config = ConfigDict(extra="forbid", json_schema_extra=documented)
        model_name: ModelName
        records: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=max_records)]

    return BatchRequest


class BatchOut(BaseModel):
    model_name: str
    model_version: str
    count: int
    predictions: list[PredictionOut]


class FeatureOut(BaseModel):
    name: str
    kind: FeatureKind
    nullable: bool = True
    description: str
    integer: bool
    minimum: float | None
    maximum: float | None
    categories: list[str] = Field(description="Categories seen in training (categorical only).")
    training_range: tuple[float, float] | None = Field(
        None, description="Minimum and maximum seen in training (numeric only)."
    )


class ModelOut(BaseModel):
    name: str
    loaded: bool
    task: Task | None = Field(None, description="None when the manifest is unreadable.")
    algorithm: str | None = None
    artifact_format: str | None = Field(None, description="xgboost, lightgbm, skops or onnx.")
    version: str | None = None
    trained_at: str | None = None
    train_rows: int | None = None
    holdout_metrics: dict[str, float] = Field(default_factory=dict)
    decision_threshold: float | None = None
    class_labels: list[int | str] | None = Field(
        None, description="Multiclass classifiers: the classes, in the order of `scores`."
    )
    features: list[FeatureOut] = Field(default_factory=list)
    error: str | None = Field(None, description="Why the model is not loaded.")


class ModelsOut(BaseModel):
    models: list[ModelOut]


class ModelRemovedOut(BaseModel):
    """A model removed from the catalogue."""

    name: str
    version: str | None
    alerts_resolved: int = Field(description="Its open alerts, resolved by the removal.")
    rows_deleted: int = Field(description="History rows deleted (with purge=true).")


class ModelHealth(BaseModel):
    loaded: bool
    version: str | None = None
    error: str | None = None


class HealthOut(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    reasons: list[str] = Field(description="What is impaired, when not healthy.")
    models: dict[str, ModelHealth]
    database: Literal["ok", "unreachable"]
    log_queue_depth: int
    version: str
    worker: int = Field(description="Process id of the worker that answered (with --workers N).")


class ProbeOut(BaseModel):
    status: str
    reasons: list[str] = Field(default_factory=list)


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(description="Where: e.g. ['body', 'records', 3, 'amount'].")
    msg: str
    type: str


class ErrorOut(BaseModel):
    """The error body of every 4xx and 5xx: FastAPI's validation format."""

    detail: list[ErrorItem]


class ConflictOut(ErrorOut):
    """A 409: the error, and the current state it conflicts with, where there is one."""

    current: str | None = Field(
        None, description="E.g. an alert's status, or the label already stored."
    )


# --------------------------------------------------------------------------------------- drift


class RecordsCheckIn(BaseModel):
    """Rows to check, or none to check the model's current live window."""

    model_name: ModelName
    records: list[dict[str, Any]] | None = None


def records_check_model(
    max_records: int, models: Mapping[str, type[BaseModel]]
) -> type[RecordsCheckIn]:
    """The body of the drift and quality checks; records are checked like a batch's."""
    documented = _records_by_model(
        models=models,
        min_items=1,
        max_items=max_records,
        optional=True,
        description=(
            f"1 to {max_records} feature objects of the model named by model_name; omit (or "
            "null) to check the model's live window."
        ),
    )

    class CheckRequest(RecordsCheckIn):
        model_config = ConfigDict(extra="forbid", json_schema_extra=documented)
        model_name: ModelName
        records: Annotated[
            list[dict[str, Any]] | None, Field(min_length=1, max_length=max_records)
        ] = None

    return CheckRequest


REFERENCE_MIN_ROWS = 100


def reference_model(
    model_name: str, max_records: int, features: type[BaseModel]
) -> type[BaseModel]:
    """The body that replaces ``model_name``'s reference profile: its feature objects."""
    return create_model(
        f"{features.__name__}Reference",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"Rows of the {model_name} model that become its new reference.",
        records=(
            list[features],  # type: ignore[valid-type]
            Field(
                min_length=REFERENCE_MIN_ROWS,
                max_length=max_records,
                description=(
                    f"{REFERENCE_MIN_ROWS} to {max_records} feature objects; every feature needs "
                    "some non-missing values."
                ),
            ),
        ),
    )


class FeatureDriftOut(BaseModel):
    feature: str
    kind: Literal["numeric", "categorical"]
    method: Literal["psi", "ks", "wasserstein", "jensenshannon", "chi2"]
    score: float | None = Field(description="PSI or JS distance; null without enough data.")
    status: Literal["ok", "warning", "critical", "insufficient_data"]
    drifted: bool
    bins: list[str] = Field(description="Bin ranges (numeric) or categories plus (unseen).")
    reference: list[float] = Field(description="Reference proportions per bin.")
    current: list[float] = Field(description="Current proportions per bin.")
    count: int = Field(description="Non-missing values counted.")
    missing_share: float
    reason: str | None = None


class DriftReportOut(BaseModel):
    model_name: str
    created_at: str
    n_rows: int
    status: Literal["ok", "warning", "critical", "insufficient_data"]
    dataset_drift: bool
    drift_share: float
    drifted_features_count: int
    scored_features_count: int
    thresholds: dict[str, float]
    features: dict[str, FeatureDriftOut]
    prediction: FeatureDriftOut | None


class FeatureQualityOut(BaseModel):
    feature: str
    missing_share: float
    reference_missing_share: float
    out_of_range_share: float | None
    unseen_share: float | None
    status: Literal["ok", "warning", "critical"]


class QualityReportOut(BaseModel):
    model_name: str
    n_rows: int
    status: Literal["ok", "warning", "critical"]
    missing_share: float
    missing_status: Literal["ok", "warning", "critical"]
    duplicate_rows: int
    duplicate_share: float
    duplicate_status: Literal["ok", "warning", "critical"]
    features: dict[str, FeatureQualityOut]


class DriftCheckOut(BaseModel):
    dataset_name: Literal["live", "request"]
    window_id: int | None = None
    drift: DriftReportOut
    quality: QualityReportOut


class DriftResultOut(BaseModel):
    model_name: str
    dataset_name: str
    window_id: int | None
    created_at: str
    n_rows: int
    status: str
    dataset_drift: bool
    drift_share: float
    drifted_features_count: int
    report: DriftReportOut
    quality: QualityReportOut | None
    window_start: str | None = Field(
        None, description="A backfilled period's first event time (`dataset_name` backfill)."
    )
    window_end: str | None = Field(None, description="A backfilled period's last event time.")


class DriftHistoryOut(BaseModel):
    model_name: str
    results: list[DriftResultOut]


class DriftStatusOut(BaseModel):
    model_name: str
    reference: dict[str, Any]
    thresholds: dict[str, float]
    window: dict[str, Any]
    last_result: DriftResultOut | None


class ReferenceOut(BaseModel):
    model_name: str
    model_version: str
    rows: int
    created_at: str
    features: dict[str, str]


# --------------------------------------------------------------------------------------- alerts


class AlertEventOut(BaseModel):
    kind: Literal["opened", "repeated", "escalated", "acknowledged", "resolved"]
    at: datetime
    severity: str | None = None
    value: float | None = None
    by: str | None = None
    note: str | None = None


class AlertOut(BaseModel):
    id: str
    fingerprint: str = Field(description="model/family/scope: one open alert per fingerprint.")
    model_name: str
    alert_type: str = Field(
        description="drift_detected, drift_critical, data_quality_issue, high_latency, ..."
    )
    scope: str = Field(description="What the alert is about: live, request, predict, a feature.")
    severity: Literal["warning", "critical"]
    status: Literal["active", "acknowledged", "resolved"]
    value: float = Field(description="The latest value of the watched quantity.")
    threshold: float
    message: str
    opened_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    occurrences: int
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    note: str | None = None
    events: list[AlertEventOut] | None = Field(None, description="History (single alert only).")

    @classmethod
    def from_domain(cls, a: Any, *, with_events: bool = False) -> AlertOut:
        return cls(
            id=a.id, fingerprint=a.fingerprint, model_name=a.model_name,
            alert_type=a.alert_type, scope=a.scope, severity=a.severity, status=a.state,
            value=a.value, threshold=a.threshold, message=a.message, opened_at=a.opened_at,
            updated_at=a.updated_at, last_seen_at=a.last_seen_at, occurrences=a.occurrences,
            acknowledged_by=a.acknowledged_by, acknowledged_at=a.acknowledged_at,
            resolved_by=a.resolved_by, resolved_at=a.resolved_at, note=a.note,
            events=[AlertEventOut(**e.__dict__) for e in a.events] if with_events else None,
        )  # fmt: skip


class AlertListOut(BaseModel):
    total: int
    limit: int
    offset: int
    alerts: list[AlertOut]


class AlertSummaryOut(BaseModel):
    by_status: dict[str, int] = Field(description="All alerts by status.")
    by_severity: dict[str, int] = Field(description="Open alerts by severity.")
    by_model: dict[str, int] = Field(description="Open alerts by model.")
    by_type: dict[str, int] = Field(description="Open alerts by type.")


class AlertActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field("anonymous", max_length=200, pattern=NO_NUL, description="Who acts.")
    note: str | None = Field(None, max_length=2000, pattern=NO_NUL, description="Why (optional).")


# --------------------------------------------------------------------------------------- silences


class SilenceIn(BaseModel):
    """A silence: at least one matcher, and an end (``ends_at`` or ``duration_seconds``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"model_name": "fraud", "alert_type": "drift_detected", "duration_seconds": 3600,
                 "created_by": "ann", "comment": "retraining in progress"}
            ]
        },
    )  # fmt: skip
    model_name: ModelName | None = Field(None, description="Matcher on the model.")
    alert_type: str | None = Field(
        None, max_length=48, pattern=NO_NUL, description="Matcher on the alert type."
    )
    starts_at: AwareDatetime | None = Field(None, description="Default: now.")
    ends_at: AwareDatetime | None = Field(None, description="When the silence ends.")
    duration_seconds: float | None = Field(None, gt=0, le=366 * 86400,
                                           description="Instead of ends_at.")  # fmt: skip
    created_by: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    comment: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)


class SilenceOut(BaseModel):
    id: str
    model_name: str | None
    alert_type: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    status: Literal["pending", "active", "expired"]


class SilenceListOut(BaseModel):
    silences: list[SilenceOut]


# --------------------------------------------------------------------------------------- feedback


def _finite_number(v: bool | int | float | str) -> bool | int | float | str:
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


ClassLabel = Annotated[str, Field(min_length=1, max_length=128, pattern=NO_NUL)]
Actual = Annotated[
    StrictBool | StrictInt | StrictFloat | ClassLabel,
    AfterValidator(_finite_number),
    Field(
        description=(
            "The ground truth: 0/1 or false/true for a binary classifier, one of the class labels "
            "for a multiclass classifier, a finite number for a regressor."
        )
    ),
]


class FeedbackIn(BaseModel):
    """A late label for a served prediction."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"prediction_id": "3f0c1b9e-8a4f-4c2e-9a57-0d5f1f3b2c11", "actual": 1}]
        },
    )
    prediction_id: PredictionId
    actual: Actual
    model_name: ModelName | None = Field(
        None, description="The model; needed only where a sender's id is known under several."
    )


def feedback_batch_model(max_items: int) -> type[BaseModel]:
    class FeedbackBatchIn(BaseModel):
        """Labels for many predictions, stored all together or not at all."""

        model_config = ConfigDict(extra="forbid")
        items: list[FeedbackIn] = Field(
            min_length=1,
            max_length=max_items,
            description=(
                f"1 to {max_items} labels. Any item that is invalid, names an unknown prediction "
                "or contradicts a stored label rejects the batch; loc names it: "
                '["body", "items", <index>, <field>].'
            ),
        )

    return FeedbackBatchIn


class FeedbackOut(BaseModel):
    prediction_id: str
    model_name: str
    model_version: str
    actual: float | int | str = Field(description="A multiclass label as its class label.")
    prediction: float | int | str
    probability: float | None = None
    status: Literal["recorded", "duplicate", "queued"] = Field(
        description="`recorded`: stored now; `duplicate`: the same label was stored before "
        "(a retry is safe and counted once); `queued`: the database is unreachable, the label "
        "is kept in the local spill and stored when it returns."
    )


class FeedbackBatchOut(BaseModel):
    recorded: int
    duplicates: int
    queued: int = 0
    items: list[FeedbackOut]


class LabelOut(BaseModel):
    prediction_id: str
    model_name: str
    model_version: str
    actual: float | int | str = Field(description="A multiclass label as its class label.")
    prediction: float | int | str
    probability: float | None = None
    scores: list[float] | None = None
    predicted_at: datetime
    received_at: datetime


# ------------------------------------------------------------------------------------ performance


class RealizedOut(BaseModel):
    n_labels: int = Field(description="Labels the figures cover (the latest window_size).")
    first_predicted_at: datetime
    last_received_at: datetime
    metrics: dict[str, float]
    estimated_on_labelled: dict[str, float] = Field(
        description="The label-free estimate over the same predictions (classifiers)."
    )
    estimate_gap: dict[str, float] = Field(description="Estimated minus realized, per metric.")


class EstimatedOut(BaseModel):
    n_predictions: int = Field(description="Latest logged predictions the estimate covers.")
    metrics: dict[str, float]


class LabelsOut(BaseModel):
    total: int = Field(description="Labels consumed so far.")
    window_size: int
    min_labels: int
    in_open_window: int
    windows_evaluated: int


class ConceptDriftOut(BaseModel):
    detector: str
    statistic: float
    threshold: float
    labels_seen: int = Field(description="Labels since the detector last started.")
    alarms_in_open_windows: int


class PerformanceWindowOut(BaseModel):
    kind: Literal["labelled", "estimated", "backfill"]
    window_seq: int
    model_version: str
    created_at: datetime
    n_rows: int
    realized: dict[str, float] | None
    estimated: dict[str, float] | None
    concept: dict[str, Any] | None = None


class PerformanceRuleOut(BaseModel):
    metric: str
    bound: float
    direction: Literal["below", "above"] = Field(description="Alert when the metric goes ...")


class PerformanceOut(BaseModel):
    model_name: str
    model_version: str
    task: str
    holdout: dict[str, float] = Field(description="Figures on the training holdout.")
    realized: RealizedOut | None = Field(description="None below min_labels labels.")
    estimated: EstimatedOut | None = Field(
        description="Label-free estimate (classifiers only; None below min_labels predictions)."
    )
    labels: LabelsOut
    concept_drift: ConceptDriftOut | None
    alert_rule: PerformanceRuleOut | None
    history: list[PerformanceWindowOut] = Field(
        description="Completed label windows, newest first."
    )
    estimate_history: list[PerformanceWindowOut]
    backfill_history: list[PerformanceWindowOut] = Field(
        default_factory=list,
        description="Realized figures of backfilled periods (`mlobs ingest`), newest first; "
        "`concept` holds the period's `window_start` and `window_end` in event time.",
    )


# ------------------------------------------------------------------------------- web dashboard


class FeatureHistogramOut(BaseModel):
    """One feature's reference and current shares over its frozen bins, for drawing."""

    feature: str
    kind: Literal["numeric", "categorical"]
    bins: list[str] = Field(
        description="Bin ranges (numeric) or the categories and (unseen); the last is (missing)."
    )
    edges: list[float] | None = Field(description="The frozen bin edges (numeric only).")
    reference: list[float] = Field(description="Reference share of all rows per bin (sums to 1).")
    current: list[float] | None = Field(
        description="Current share of all rows per bin (sums to 1); null without a window."
    )
    count: int = Field(description="Non-missing values in the window.")
    missing: int = Field(description="Missing values in the window.")
    method: str | None = Field(description="psi, jensenshannon, ...; null without a window.")
    score: float | None = Field(description="Scored on the non-missing bins; null below minimum.")
    status: Literal["ok", "warning", "critical", "insufficient_data"]
    drifted: bool
    reason: str | None = None


class HistogramsOut(BaseModel):
    """A model's per-feature histograms: the reference profile against one live window."""

    model_name: str
    window: Literal["closed", "open"] | None = Field(
        description="The window `current` comes from: the last closed live window, or the open "
        "one (as of the last push of counts); null when there is none."
    )
    window_id: int | None
    n_rows: int = Field(description="Rows in that window.")
    evaluated_at: datetime | None = Field(description="When the closed window was evaluated.")
    features: list[FeatureHistogramOut]
    prediction: FeatureHistogramOut | None = Field(description="The model's output.")


class LatencyOut(BaseModel):
    count: int = Field(description="Single-row predictions timed (batches are timed apart).")
    mean_ms: float | None
    p50_ms: float | None = Field(description="Estimated from the histogram's buckets.")
    p95_ms: float | None
    p99_ms: float | None


class ModelTrafficOut(BaseModel):
    predictions: int = Field(description="Predictions served (batch rows included).")
    errors: int = Field(description="Predictions that failed.")
    latency: LatencyOut


class TrafficOut(BaseModel):
    """Per-model counters since the service started (all worker processes), read from the same
    Prometheus metrics `/metrics` exposes; a client derives rates from two readings."""

    models: dict[str, ModelTrafficOut]
