"""KServe's payload logger: ``POST /ingest/kserve`` takes the CloudEvents an InferenceService
with ``logger: {mode: all, url: ...}`` sends (binary content mode), and logs each request and
response pair as predictions of the mlobs model the InferenceService maps to.

A request and its response share ``ce-id`` and may come in either order, to any worker: the first
half waits in the database for the other (``KServeHalves``); a half whose other never comes
within ``KSERVE_PAIR_SECONDS`` is dropped and counted (``mlobs_kserve_unpaired_events_total``).
Both protocols are read: V1 (``instances`` / ``predictions``) and V2 (``inputs`` / ``outputs``).
Positional rows map to the manifest's features in declared order, named inputs by name; a row of
K numbers in the response is read as class scores, a scalar as the prediction. The rows are then
logged exactly as ``POST /models/{name}/predictions`` logs them, with ids ``<ce-id>`` (one row)
or ``<ce-id>:<row>``, so a redelivered pair is counted once.

KServe's logger cannot send headers of its own: where keys are enforced, this route (and only
this one) also takes the key as ``?key=`` in the logger URL; access logs show it redacted.
"""

from __future__ import annotations

import logging
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.concurrency import run_in_threadpool

from mlobs.api.auth import KeyPolicy, api_key_header
from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import BODY, responses
from mlobs.api.routes.ingest import IngestOut, ingest
from mlobs.api.runtime import Runtime
from mlobs.errors import InvalidInput, NotFound, Unavailable
from mlobs.models.manifest import Manifest

log = logging.getLogger(__name__)

KINDS = {"inference.request": "request", "inference.response": "response"}


class KServeOut(BaseModel):
    status: str = Field(
        description="`waiting` for the other half; `logged` when the pair was; `rejected` when "
        "the pair could not be read as the model's rows (`error` says why; counted)."
    )
    model_name: str
    event_id: str
    logged: IngestOut | None = None
    error: str | None = None


def _model_for(rt: Runtime, service: str) -> Manifest:
    manifests = rt.models.manifests
    for manifest in manifests.values():
        if manifest.inference_service == service:
            return manifest
    if service in manifests and manifests[service].inference_service in (None, service):
        return manifests[service]
    raise NotFound("model for InferenceService", service, loc=("header", "ce-inferenceservicename"))


def _matrix(data: Any, shape: Any) -> list[list[Any]]:
    """Row-major ``data`` of ``shape`` [N, K] as N rows (nested data is taken as it is); the
    shape must hold exactly the data given."""
    if not isinstance(data, list):
        raise ValueError("a tensor's data is a list")
    if data and isinstance(data[0], list):
        return [list(row) for row in data]
    dims = list(shape) if isinstance(shape, list) else []
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ValueError(f"a tensor's shape is positive whole numbers, not {shape!r}")
    n, k = dims[0], math.prod(dims[1:]) if len(dims) > 1 else 1
    if n * k != len(data):
        raise ValueError(f"shape {dims} needs {n * k} values, the data has {len(data)}")
    return [data[i * k : (i + 1) * k] for i in range(n)]


def _flat(data: list[Any]) -> list[Any]:
    """A column given as [N] or [N, 1] (nested) data, as N values."""
    return [v for row in data for v in (row if isinstance(row, list) else [row])]


def request_rows(body: Any, features: list[str]) -> list[dict[str, Any]]:
    """The feature rows of a V1 or V2 inference request; ValueError saying what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("the request body is not a JSON object")
    if "instances" in body:
        rows = []
        for i, inst in enumerate(body["instances"]):
            if isinstance(inst, dict):
                rows.append(inst)
            elif isinstance(inst, list):
                if len(inst) != len(features):
                    raise ValueError(f"instance {i} has {len(inst)} values, the model "
                                     f"{len(features)} features")  # fmt: skip
                rows.append(dict(zip(features, inst, strict=True)))
            else:
                raise ValueError(f"instance {i} is neither a list nor an object")
        return rows
    if "inputs" in body:
        inputs = body["inputs"]
        named = {i.get("name"): i for i in inputs if isinstance(i, dict)}
        if len(inputs) == 1 and inputs[0].get("name") not in features:
            tensor = inputs[0]
            matrix = _matrix(tensor.get("data", []), list(tensor.get("shape", [])))
            return [dict(zip(features, row, strict=False)) for row in matrix]
        missing = [f for f in features if f not in named]
        if missing:
            raise ValueError(f"the V2 request lacks the inputs {missing[:10]}")
        columns = {f: _flat(named[f].get("data", [])) for f in features}
        n = len(columns[features[0]])
        return [{f: columns[f][i] for f in features} for i in range(n)]
    raise ValueError("the request has neither `instances` (V1) nor `inputs` (V2)")


def response_outputs(body: Any) -> list[Any]:
    """Each row's output of a V1 or V2 inference response: a number or a label (a prediction)
    or a list of numbers (class scores)."""
    if not isinstance(body, dict):
        raise ValueError("the response body is not a JSON object")
    if "predictions" in body:
        return list(body["predictions"])
    if "outputs" in body and body["outputs"]:
        outputs = [o for o in body["outputs"] if isinstance(o, dict)]
        probs = [o for o in outputs if "prob" in str(o.get("name", "")).lower()]
        chosen = (probs or outputs)[0]
        shape = list(chosen.get("shape", []))
        data = chosen.get("data", [])
        if len(shape) >= 2 and shape[1] > 1:
            return _matrix(data, shape)
        return _flat(data)
    raise ValueError("the response has neither `predictions` (V1) nor `outputs` (V2)")


def _record(output: Any, manifest: Manifest) -> dict[str, Any]:
    """A row's output as an ingested record's fields, by the model's task."""
    if isinstance(output, list):
        if not output:
            raise ValueError("an output row is empty")
        if manifest.task == "multiclass_classification":
            return {"scores": output}
        if manifest.task == "binary_classification":
            return {"probability": output[-1]}  # [P(0), P(1)], or [P(1)]
        return {"prediction": output[0] if len(output) == 1 else output}
    classes = list(manifest.class_labels or ())
    if (manifest.task == "multiclass_classification" and isinstance(output, int)
            and output not in classes and 0 <= output < len(classes)):  # fmt: skip
        return {"prediction": classes[output]}  # a class index
    return {"prediction": output}


def _event_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(("header", "ce-time"), "not an RFC 3339 time") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _handle(
    rt: Runtime,
    event_id: str,
    kind: str,
    manifest: Manifest,
    body: Any,
    event_time: datetime | None,
) -> KServeOut:
    name = manifest.name
    now = datetime.now(timezone.utc)
    halves = rt.kserve_halves
    try:
        expired = halves.expire(now - timedelta(seconds=rt.settings.kserve_pair_seconds))
        if expired:
            rt.metrics.kserve_unpaired.inc(expired)
            log.warning("%d KServe event half(s) dropped: the other half never came", expired)
        pair = halves.meet(event_id, kind, name, body, event_time, now)
    except sa_exc.DataError as exc:  # a value the database cannot store (a NUL character)
        raise InvalidInput(("body",), f"cannot be stored: {type(exc).__name__}") from None
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise Unavailable("database", f"unreachable: {type(exc).__name__}") from None
    if pair is None:
        return KServeOut(status="waiting", model_name=name, event_id=event_id)
    features = [f.name for f in manifest.features]
    # Each half was a valid event; a pair that does not read as the model's rows is the
    # sender's problem, reported in the answer and counted, not refused (the logger would only
    # send it again).
    try:
        rows = request_rows(pair.request, features)
        outputs = response_outputs(pair.response)
        if len(rows) != len(outputs):
            raise ValueError(f"{len(rows)} rows in the request, {len(outputs)} in the response")
        if not 1 <= len(rows) <= rt.settings.max_batch_records:
            raise ValueError(f"{len(rows)} rows: 1 to {rt.settings.max_batch_records} a pair")
        stamp = (pair.event_time or now).isoformat()
        raw = [
            {"prediction_id": event_id if len(rows) == 1 else f"{event_id}:{i}",
             "timestamp": stamp, "features": row, **_record(out, manifest)}
            for i, (row, out) in enumerate(zip(rows, outputs, strict=True))
        ]  # fmt: skip
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        log.warning("KServe event %s of %s not read: %s", event_id, name, exc)
        rt.metrics.ingested.labels(name, "rejected").inc()
        return KServeOut(status="rejected", model_name=name, event_id=event_id, error=str(exc))
    try:
        logged = ingest(rt, name, raw, True, None)
    except Exception:  # not logged: both halves wait again for a redelivery
        _put_back(halves, event_id, pair, now)
        raise
    return KServeOut(status="logged", model_name=name, event_id=event_id, logged=logged)


def _put_back(halves: Any, event_id: str, pair: Any, now: datetime) -> None:
    """The pair could not be logged (the database went away): both halves wait again, best
    effort, so that a redelivery of either pairs them."""
    try:
        halves.restore(event_id, pair, now)
    except Exception as exc:
        log.warning("KServe event %s lost: the database is away (%s)", event_id, exc)


def build_router(policy: KeyPolicy) -> APIRouter:
    router = APIRouter(tags=["ingest"])

    @router.post(
        "/ingest/kserve",
        response_model=KServeOut,
        status_code=202,
        responses=responses(*BODY, 404, 503, *((401, 403) if policy.enforces("predict") else ())),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": "A V1 or V2 inference request or "
                            "response, as the InferenceService received or sent it.",
                        },
                    }
                },
            }
        },  # fmt: skip
    )
    async def kserve_event(
        request: Request,
        rt: RuntimeDep,
        ce_id: Annotated[
            str,
            Header(
                min_length=1, max_length=120, description="The event id (rows' ids build on it)."
            ),
        ],
        ce_type: Annotated[
            str,
            Header(
                pattern=r"inference\.(request|response)$",
                description="`...inference.request` or `...inference.response`.",
            ),
        ],
        ce_inferenceservicename: Annotated[
            str, Header(min_length=1, max_length=253, description="The InferenceService.")
        ],
        ce_time: Annotated[str | None, Header(description="When the event happened.")] = None,
        key: Annotated[
            str | None,
            Query(
                description="The API key, where keys are enforced (the logger sends no headers)."
            ),
        ] = None,
    ) -> KServeOut:
        """One CloudEvent of KServe's payload logger (binary content mode): a request or a
        response. Answered 202: `waiting` for its other half, or `logged` with the pair's rows."""
        if policy.enforces("predict"):
            header = await api_key_header(request)
            policy.check("predict", header or key)
        kind = next((v for k, v in KINDS.items() if ce_type.endswith(k)), None)
        if kind is None:
            raise InvalidInput(("header", "ce-type"),
                               "must end with inference.request or inference.response")  # fmt: skip
        manifest = _model_for(rt, ce_inferenceservicename)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(("body",), f"not JSON: {exc}", "json_invalid") from None
        if not isinstance(body, dict):
            raise InvalidInput(("body",), "a V1 or V2 inference request or response object")
        event_time = _event_time(ce_time)
        return await run_in_threadpool(_handle, rt, ce_id, kind, manifest, body, event_time)

    return router


class RedactKeys(logging.Filter):
    """Access-log lines show ``key=...`` query values as ``key=<redacted>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "key=" in a for a in args):
            record.args = tuple(
                re.sub(r"(?<=[?&]key=)[^&\s]*", "<redacted>", a) if isinstance(a, str) else a
                for a in args
            )
        return True
