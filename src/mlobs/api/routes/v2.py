"""The Open Inference Protocol (V2, "KServe v2"), the REST routes that KServe, Seldon and Triton
clients already call.

An inference request carries N rows as one named input per feature column (shape [N] or [N, 1];
a string column as BYTES), or one [N, n_features] tensor in the manifest's feature order. The rows
are validated like a ``/predict/batch`` body (a 422 names the input and the row), predicted,
logged and monitored. Outputs: ``prediction`` [N], and for a binary classifier ``probability``
[N] (of the positive class, FP64); for a multiclass classifier ``prediction`` holds the class
labels (INT64 or BYTES) and ``scores`` [N, K] every class's probability in the manifest's class
order. The prediction ids are in the response's ``parameters``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from mlobs.api.auth import Guard, KeyPolicy
from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import BODY, responses
from mlobs.errors import InvalidInput, NotFound

_DATATYPES = {"numeric": "FP64", "categorical": "BYTES", "boolean": "BOOL"}


class TensorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=256)
    shape: list[int] = Field(min_length=1, max_length=2)
    datatype: str = Field(max_length=16)
    data: list[Any]
    parameters: dict[str, Any] | None = None


class InferIn(BaseModel):
    """An inference request: one input per feature column."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=256)
    parameters: dict[str, Any] | None = None
    inputs: list[TensorIn] = Field(min_length=1)
    outputs: list[dict[str, Any]] | None = None


class TensorOut(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any]


class InferOut(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    outputs: list[TensorOut]


class TensorMeta(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetaOut(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMeta]
    outputs: list[TensorMeta]


class LiveOut(BaseModel):
    live: bool


class ReadyOut(BaseModel):
    ready: bool


class ModelReadyOut(BaseModel):
    name: str
    ready: bool


def _flat(tensor: TensorIn) -> list[Any]:
    data = tensor.data
    if data and isinstance(data[0], list):
        data = [v for row in data for v in (row if isinstance(row, list) else [row])]
    return data


def _records(inputs: list[TensorIn], features: list[str]) -> list[dict[str, Any]]:
    by_name = {t.name: t for t in inputs}
    if len(inputs) == 1 and inputs[0].name not in features:
        t = inputs[0]
        if len(t.shape) != 2 or t.shape[1] != len(features):
            raise InvalidInput(
                ("body", "inputs", 0, "shape"),
                f"one input for all features must have shape [N, {len(features)}]",
            )
        flat, width = _flat(t), len(features)
        if len(flat) != t.shape[0] * width:
            raise InvalidInput(("body", "inputs", 0, "data"), "data does not fill the shape")
        return [dict(zip(features, flat[i * width : (i + 1) * width], strict=True))
                for i in range(t.shape[0])]  # fmt: skip
    unknown = [t.name for t in inputs if t.name not in features]
    if unknown:
        raise InvalidInput(("body", "inputs", unknown[0]), "not a feature of this model")
    missing = [f for f in features if f not in by_name]
    if missing:
        raise InvalidInput(("body", "inputs", missing[0]), "missing: one input per feature")
    columns = {f: _flat(by_name[f]) for f in features}
    n = by_name[features[0]].shape[0]
    for f, values in columns.items():
        if by_name[f].shape[0] != n or len(values) != n:
            raise InvalidInput(
                ("body", "inputs", f, "shape"),
                f"every input needs {n} rows, this one has {len(values)}",
            )
    return [{f: columns[f][i] for f in features} for i in range(n)]


def _label_type(labels: list[Any] | None) -> str:
    """A ``prediction`` tensor's type: FP64 for numbers, INT64 for whole class labels, BYTES
    for text labels."""
    if not labels:
        return "FP64"
    return "INT64" if all(isinstance(v, int) for v in labels) else "BYTES"


def build_router(policy: KeyPolicy, max_records: int) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["open inference protocol"])
    predict = Guard.of(policy, "predict")

    @router.get("/health/live", response_model=LiveOut)
    def live() -> LiveOut:
        """Liveness, as the protocol has it."""
        return LiveOut(live=True)

    @router.get("/health/ready", response_model=ReadyOut)
    def ready(rt: RuntimeDep) -> ReadyOut:
        """Ready when the models are loaded and at least one serves."""
        return ReadyOut(ready=rt.models_ready.is_set() and bool(rt.models.models))

    @router.get("/models/{name}", response_model=ModelMetaOut, responses=responses(404))
    def metadata(name: str, rt: RuntimeDep) -> ModelMetaOut:
        """The model's inputs (one per feature) and outputs."""
        manifest = rt.models.manifests.get(name)
        if manifest is None:
            raise NotFound("model", name)
        inputs = [TensorMeta(name=f.name, datatype=_DATATYPES[f.kind], shape=[-1])
                  for f in manifest.features]  # fmt: skip
        outputs = [TensorMeta(name="prediction", datatype=_label_type(manifest.class_labels),
                              shape=[-1])]  # fmt: skip
        if manifest.task == "binary_classification":
            outputs.append(TensorMeta(name="probability", datatype="FP64", shape=[-1]))
        if manifest.class_labels:
            k = len(manifest.class_labels)
            outputs.append(TensorMeta(name="scores", datatype="FP64", shape=[-1, k]))
        fmt = manifest.artifact.format if manifest.artifact else "none"
        return ModelMetaOut(name=name, versions=[manifest.version or ""], platform=f"mlobs-{fmt}",
                            inputs=inputs, outputs=outputs)  # fmt: skip

    @router.get("/models/{name}/ready", response_model=ModelReadyOut, responses=responses(404))
    def model_ready(name: str, rt: RuntimeDep) -> ModelReadyOut:
        """Whether the model is loaded and serves."""
        if name not in rt.models:
            raise NotFound("model", name)
        return ModelReadyOut(name=name, ready=name in rt.models.models)

    @router.post(
        "/models/{name}/infer",
        response_model=InferOut,
        responses=responses(*BODY, 404, 503, *predict.statuses),
        dependencies=list(predict.dependencies),
    )
    def infer(name: str, body: InferIn, rt: RuntimeDep) -> InferOut:
        """Predict N rows given as one input per feature column; each row is logged and
        monitored like a prediction from ``/predict``."""
        schema = rt.bodies.schema(name)
        records = _records(body.inputs, schema.feature_names)
        if not 1 <= len(records) <= max_records:
            raise InvalidInput(("body", "inputs"), f"1 to {max_records} rows per request")
        try:
            valid = rt.bodies.validate(name, records)
        except RequestValidationError as exc:
            moved = []
            for e in exc.errors():
                loc = list(e["loc"])  # ["body", "records", row, feature, ...]
                if len(loc) >= 4:
                    loc = ["body", "inputs", loc[3], "data", loc[2], *loc[4:]]
                moved.append({**e, "loc": tuple(loc)})
            raise RequestValidationError(moved) from None
        out = rt.service.predict_batch(name, valid)
        n = len(out)
        if out and out[0].scores is not None:  # multiclass: labels, and [N, K] scores
            k = len(out[0].scores)
            labels = [r.label for r in out]
            outputs = [
                TensorOut(name="prediction", shape=[n], datatype=_label_type(labels), data=labels),
                TensorOut(name="scores", shape=[n, k], datatype="FP64",
                          data=[s for r in out for s in r.scores or ()]),
            ]  # fmt: skip
        else:
            outputs = [TensorOut(name="prediction", shape=[n], datatype="FP64",
                                 data=[r.prediction for r in out])]  # fmt: skip
        if out and out[0].probability is not None and out[0].scores is None:
            outputs.append(TensorOut(name="probability", shape=[n], datatype="FP64",
                                     data=[r.probability for r in out]))  # fmt: skip
        return InferOut(
            model_name=name, model_version=out[0].model_version if out else "", id=body.id,
            parameters={"prediction_ids": [r.id for r in out]}, outputs=outputs,
        )  # fmt: skip

    return router
