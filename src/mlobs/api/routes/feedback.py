"""Ground truth in, performance out: ``/feedback``, ``/feedback/batch``, ``/feedback/{id}`` and
``/monitoring/performance/{model}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc

from mlobs.api.auth import Guard, KeyPolicy
from mlobs.api.deps import ModelOfId, PredictionIdPath, RuntimeDep
from mlobs.api.errors import BODY, responses
from mlobs.api.runtime import Runtime
from mlobs.api.schemas import (
    FeedbackBatchOut,
    FeedbackIn,
    FeedbackOut,
    LabelOut,
    PerformanceOut,
    PerformanceRuleOut,
    PerformanceWindowOut,
    feedback_batch_model,
)
from mlobs.errors import AmbiguousId, Conflict, InvalidInput, NotFound, Unavailable
from mlobs.monitoring.alerts import LOWER_IS_BETTER
from mlobs.monitoring.performance import LabelConflict, label_number
from mlobs.monitoring.records import PredictionRecord


def _actual(
    rt: Runtime, rec: PredictionRecord, value: bool | float | str, loc: tuple[Any, ...]
) -> float:
    """The label as a float (a multiclass label as its class's index), or a 422 when it is of
    the wrong kind for the prediction's model."""
    try:
        return label_number(rt.models.observed.get(rec.model_name), rec, value)
    except ValueError as exc:
        raise InvalidInput((*loc, "actual"), str(exc), "label_kind") from None


def _store(
    rt: Runtime, items: list[FeedbackIn], prefix: tuple[Any, ...], model_name: str | None = None
) -> list[FeedbackOut]:
    """Check and store labels; ``model_name``: the model of every item (the per-model route)."""
    pairs: list[tuple[PredictionRecord, float]] = []
    ids = [i.prediction_id for i in items]
    database_down = False
    try:
        known = rt.service.sink.get_many(ids, features=False)
    except Unavailable:
        # The database is away: labels for predictions this process still holds (queued or
        # spilled) are accepted into the spill; others cannot be checked, so nothing is taken.
        known = {i: [r] for i, r in rt.prediction_log.get_local(ids).items()}
        database_down = True
    for i, item in enumerate(items):
        loc = (*prefix, i) if prefix[-1] == "items" else prefix
        model = model_name or item.model_name
        found = [r for r in known.get(item.prediction_id, ()) if model in (None, r.model_name)]
        if not found:
            if database_down:
                raise Unavailable("database", "the prediction cannot be looked up right now")
            kind = f"prediction of model {model!r}" if model else "prediction"
            raise NotFound(kind, item.prediction_id, loc=(*loc, "prediction_id"))
        if len(found) > 1:
            exc = AmbiguousId(item.prediction_id, [r.model_name for r in found])
            raise Conflict(str(exc), current=exc.current, loc=(*loc, "model_name"))
        rec = found[0]
        pairs.append((rec, _actual(rt, rec, item.actual, loc)))
    outcomes: list[str]
    try:
        if database_down:
            raise Unavailable("database", "unreachable")
        outcomes = rt.performance.record(pairs)
    except LabelConflict as exc:
        loc = (*prefix, exc.index) if prefix[-1] == "items" else prefix
        raise Conflict(str(exc), current=exc.current, loc=(*loc, "actual")) from None
    except (Unavailable, sa_exc.OperationalError, sa_exc.InterfaceError):
        try:
            rt.spill_labels(pairs)
        except OSError as exc:
            raise Unavailable("database", f"unreachable, and the spill failed: {exc}") from None
        outcomes = ["queued"] * len(pairs)
    return [
        FeedbackOut(
            prediction_id=rec.id,
            model_name=rec.model_name,
            model_version=rec.model_version,
            actual=_shown(rt, rec.model_name, actual),
            prediction=_shown(rt, rec.model_name, rec.prediction),
            probability=rec.probability,
            status=outcome,
        )
        for (rec, actual), outcome in zip(pairs, outcomes, strict=True)
    ]


def _shown(rt: Runtime, model_name: str, value: float) -> float | int | str:
    """A stored class index as its multiclass label; any other value as it is."""
    model = rt.models.observed.get(model_name)
    if model is not None and model.is_multiclass and 0 <= value < len(model.classes):
        label: int | str = model.classes[int(value)]
        return label
    return value


def build_router(policy: KeyPolicy, max_items: int) -> APIRouter:
    """The feedback routes; posting labels needs the ``feedback`` scope where the policy
    enforces it, and a batch carries at most ``max_items`` labels."""
    router = APIRouter(tags=["feedback"])
    guard = Guard.of(policy, "feedback")

    @router.post(
        "/feedback",
        response_model=FeedbackOut,
        responses=responses(*BODY, 404, 409, 503, *guard.statuses),
        dependencies=list(guard.dependencies),
    )
    def feedback(body: FeedbackIn, rt: RuntimeDep) -> FeedbackOut:
        """Record the ground truth of one served prediction (also one still in the log queue).

        A label is kept once per prediction: sending the same label again is safe (status
        `duplicate`, counted once); a different label for a labelled prediction is a 409 that
        names the stored one (labels are not overwritten)."""
        return _store(rt, [body], ("body",))[0]

    @router.post(
        "/models/{model_name}/feedback",
        response_model=FeedbackOut,
        responses=responses(*BODY, 404, 409, 503, *guard.statuses),
        dependencies=list(guard.dependencies),
    )
    def model_feedback(model_name: str, body: FeedbackIn, rt: RuntimeDep) -> FeedbackOut:
        """Record the ground truth of one prediction of this model: the same as `/feedback`,
        with the model named in the path (a sender's id needs no `model_name` here)."""
        if model_name not in rt.models:
            raise NotFound("model", model_name, loc=("path", "model_name"))
        if body.model_name not in (None, model_name):
            raise InvalidInput(
                ("body", "model_name"), f"names {body.model_name!r}, the path {model_name!r}"
            )
        return _store(rt, [body], ("body",), model_name)[0]

    def feedback_batch(body: BaseModel, rt: RuntimeDep) -> FeedbackBatchOut:
        """Record many labels in one transaction: all are stored, or none (the error names the
        first item that stopped the batch)."""
        out = _store(rt, list(body.items), ("body", "items"))  # type: ignore[attr-defined]
        recorded = sum(1 for o in out if o.status == "recorded")
        duplicates = sum(1 for o in out if o.status == "duplicate")
        return FeedbackBatchOut(
            recorded=recorded,
            duplicates=duplicates,
            queued=len(out) - recorded - duplicates,
            items=out,
        )

    feedback_batch.__annotations__["body"] = feedback_batch_model(max_items)
    router.add_api_route(
        "/feedback/batch",
        feedback_batch,
        methods=["POST"],
        response_model=FeedbackBatchOut,
        responses=responses(*BODY, 404, 409, 503, *guard.statuses),
        dependencies=list(guard.dependencies),
    )

    @router.get(
        "/feedback/{prediction_id}",
        response_model=LabelOut,
        responses=responses(404, 409, 422, 503),
    )
    def get_feedback(
        prediction_id: PredictionIdPath, rt: RuntimeDep, model: ModelOfId = None
    ) -> LabelOut:
        """The label stored for a prediction, with the prediction it answers."""
        label = rt.performance.store.get(prediction_id, model)
        if label is None:
            raise NotFound("label", str(prediction_id))
        shown = {
            "actual": _shown(rt, label.model_name, label.actual),
            "prediction": _shown(rt, label.model_name, label.prediction),
            "scores": list(label.scores) if label.scores is not None else None,
        }
        return LabelOut(**{**vars(label), **shown})

    @router.get(
        "/monitoring/performance/{model_name}",
        response_model=PerformanceOut,
        tags=["monitoring"],
        responses=responses(404, 422, 503),
    )
    def performance(
        model_name: str,
        rt: RuntimeDep,
        history: Annotated[int, Query(ge=0, le=500, description="History entries.")] = 20,
    ) -> PerformanceOut:
        """Realized figures over the latest labels, the label-free estimate over the latest
        predictions (classifiers), the holdout figures from training, the concept-drift
        detector, and the history of completed label windows and of estimates."""
        model = rt.models.watch(model_name)
        s = rt.performance.summary(model, history)
        bound = rt.alerts.rules_for(model_name).performance_bound(model_name, s["holdout"])
        rule = None
        if bound is not None:
            direction = "above" if bound[0] in LOWER_IS_BETTER else "below"
            rule = PerformanceRuleOut(metric=bound[0], bound=bound[1], direction=direction)
        s["alert_rule"] = rule
        s["history"] = [PerformanceWindowOut(**vars(r)) for r in s["history"]]
        s["estimate_history"] = [PerformanceWindowOut(**vars(r)) for r in s["estimate_history"]]
        s["backfill_history"] = [PerformanceWindowOut(**vars(r)) for r in s["backfill_history"]]
        return PerformanceOut(**s)

    return router
