"""The model catalogue over REST: list, show, register (multipart upload) and remove models.

Registration and removal need the ``admin`` scope where keys are enforced. A registration here is
the same as ``mlobs register`` into ``MODEL_DIR``: this worker serves it at once, the others when
they next look at the catalogue (``CATALOG_POLL_SECONDS``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.formparsers import MultiPartException

from mlobs.api.auth import Guard, KeyPolicy
from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import BODY, responses
from mlobs.api.runtime import Runtime
from mlobs.api.schemas import FeatureOut, ModelOut, ModelRemovedOut, ModelsOut
from mlobs.errors import InvalidInput, NotFound
from mlobs.models.manifest import NAME_PATTERN, Manifest, ManifestError
from mlobs.models.schema import Task
from mlobs.monitoring.alerts import AlertFilter
from mlobs.storage.datafiles import SUFFIXES, DataFileError, read_table
from mlobs.storage.model_catalog import (
    Registration,
    RegistrationError,
    parse_label,
    purge_history,
    register,
    remove,
)


def model_out(rt: Runtime, name: str) -> ModelOut:
    """A catalogue model as the API shows it: loaded or why not, version, holdout, features."""
    manifest = rt.models.manifests.get(name)
    model = rt.models.models.get(name)
    if model is None or model.schema is None or model.metadata is None:
        error = rt.models.errors.get(name) or "loading"
        return ModelOut(
            name=name, loaded=False, task=manifest.task if manifest else None, error=error,
            version=manifest.version if manifest else None,
            artifact_format=manifest.artifact.format if manifest and manifest.artifact else None,
        )  # fmt: skip
    schema, meta = model.schema, model.metadata
    features = [
        FeatureOut(
            **{k: v for k, v in f.to_dict().items() if k not in ("categories", "example")},
            categories=list(schema.categories.get(f.name, ())),
            training_range=schema.ranges.get(f.name),
        )
        for f in schema.spec.features
    ]
    return ModelOut(
        name=name,
        loaded=True,
        task=model.task,
        algorithm=meta.algorithm,
        artifact_format=manifest.artifact.format if manifest and manifest.artifact else None,
        version=meta.version,
        trained_at=meta.trained_at,
        train_rows=meta.train_rows,
        holdout_metrics=dict(meta.holdout_metrics),
        decision_threshold=meta.decision_threshold
        if model.task == "binary_classification"
        else None,
        class_labels=list(model.classes) if model.is_multiclass else None,
        features=features,
    )


def build_router(policy: KeyPolicy) -> APIRouter:
    router = APIRouter(tags=["models"])
    admin = Guard.of(policy, "admin")

    @router.get("/models", response_model=ModelsOut)
    def list_models(rt: RuntimeDep) -> ModelsOut:
        """Every model of the catalogue, loaded or with the reason it is not."""
        return ModelsOut(models=[model_out(rt, n) for n in rt.models.names])

    @router.get("/models/{name}", response_model=ModelOut, responses=responses(404))
    def get_model(name: str, rt: RuntimeDep) -> ModelOut:
        """One model: version, task, holdout figures and features."""
        if name not in rt.models:
            raise NotFound("model", name)
        return model_out(rt, name)

    @router.post(
        "/models",
        response_model=ModelOut,
        status_code=201,
        responses=responses(*BODY, 503, *admin.statuses),
        dependencies=list(admin.dependencies),
        openapi_extra={"requestBody": UPLOAD_BODY},
    )
    async def register_model(request: Request, rt: RuntimeDep) -> ModelOut:
        """Register a model version from uploaded files, as `mlobs register` does: the body is
        bounded by MAX_UPLOAD_BYTES (not MAX_BODY_BYTES); a failed registration leaves nothing."""
        try:
            form = await request.form(max_files=len(FILES), max_fields=len(FIELDS) + len(FILES))
        except MultiPartException as exc:
            raise InvalidInput(("body",), f"not a multipart form: {exc}") from None
        try:
            with tempfile.TemporaryDirectory(prefix="mlobs-upload-") as tmp:
                paths = {}
                for field in FILES:
                    value = form.get(field)
                    if value is None:
                        continue
                    if not isinstance(value, StarletteUpload):
                        raise InvalidInput(("body", field), "must be a file")
                    paths[field] = await _save(value, Path(tmp), field)
                values = {f: v for f in FIELDS if isinstance(v := form.get(f), str) and v != ""}
                reg = _registration(rt, values, paths)
                try:
                    await run_in_threadpool(register, Path(rt.settings.model_dir), reg)
                except RegistrationError as exc:
                    raise InvalidInput(("body", exc.field), str(exc)) from None
                except ManifestError as exc:
                    raise InvalidInput(("body", "manifest"), str(exc)) from None
        finally:
            await form.close()
        await run_in_threadpool(rt.check_catalog)
        return model_out(rt, reg.name)

    @router.delete(
        "/models/{name}",
        response_model=ModelRemovedOut,
        responses=responses(404, 503, *admin.statuses),
        dependencies=list(admin.dependencies),
    )
    def remove_model(
        name: str,
        rt: RuntimeDep,
        purge: Annotated[
            bool, Query(description="Also delete its predictions, windows, labels and alerts.")
        ] = False,
    ) -> ModelRemovedOut:
        """Stop serving and monitoring a model and free its name; its open alerts are resolved,
        its history kept (unless ``purge``)."""
        if name not in rt.models:
            raise NotFound("model", name)
        try:
            version = remove(Path(rt.settings.model_dir), name)
        except RegistrationError:
            raise NotFound("model", name) from None
        rt.check_catalog()
        resolved = 0
        for state in ("active", "acknowledged"):
            found, _ = rt.alerts.store.list(
                AlertFilter(state=state, model_name=name, limit=100_000)
            )
            for alert in found:
                rt.alerts.resolve(alert.id, "mlobs", "model removed from the catalogue")
                resolved += 1
        deleted = purge_history(rt.engine, name) if purge else 0
        return ModelRemovedOut(
            name=name, version=version, alerts_resolved=resolved, rows_deleted=deleted
        )

    return router


FILES = ("reference", "artifact", "manifest", "holdout")
FIELDS = (
    "name", "target", "task", "categorical", "positive_class", "threshold", "prediction_col",
    "probability_col", "score_cols",
)  # fmt: skip
_FILE = {"type": "string", "format": "binary"}
UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["name", "reference"],
                "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN,
                             "description": "The model's name."},
                    "reference": {**_FILE, "description": "Reference rows: .parquet, .csv, .jsonl."},
                    "artifact": {**_FILE, "description": ".ubj/.json, .txt, .skops or .onnx."},
                    "manifest": {**_FILE, "description": "A manifest, YAML or JSON."},
                    "holdout": {**_FILE, "description": "Labelled rows."},
                    "target": {"type": "string", "description": "The label column."},
                    "task": {"type": "string", "enum": list(get_args(Task))},
                    "categorical": {"type": "string", "description": "Columns, comma-separated."},
                    "positive_class": {"type": "string", "description": "Binary: the positive label."},
                    "threshold": {"type": "string", "pattern": r"^(0(\.\d+)?|1(\.0+)?)$",
                                  "description": "Binary: the decision threshold, 0 to 1."},
                    "prediction_col": {"type": "string", "description":
                                       "No artifact: the reference's column of the model's predictions."},
                    "probability_col": {"type": "string", "description":
                                        "No artifact, binary: the column of its probabilities."},
                    "score_cols": {"type": "string", "description":
                                   "No artifact, multiclass: score columns in class order."},
                },
            }
        }
    },
}  # fmt: skip


def _names(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _registration(rt: Runtime, values: dict[str, str], paths: dict[str, Path]) -> Registration:
    """The registration a form asks for; 422 naming the field that is missing or wrong."""
    if "name" not in values:
        raise InvalidInput(("body", "name"), "required")
    if "reference" not in paths:
        raise InvalidInput(("body", "reference"), "required: a file of reference rows")
    task = values.get("task")
    if task is not None and task not in get_args(Task):
        raise InvalidInput(("body", "task"), f"must be one of {', '.join(get_args(Task))}")
    threshold = None
    if "threshold" in values:
        try:
            threshold = float(values["threshold"])
        except ValueError:
            threshold = -1.0
        if not 0 <= threshold <= 1:
            raise InvalidInput(("body", "threshold"), "must be a number from 0 to 1")
    try:
        return Registration(
            name=values["name"],
            reference=_table(paths["reference"], "reference"),
            target=values.get("target"),
            artifact=paths.get("artifact"),
            task=task,  # type: ignore[arg-type]
            categorical=_names(values.get("categorical", "")),
            holdout=_table(paths["holdout"], "holdout") if "holdout" in paths else None,
            manifest=Manifest.read(paths["manifest"]) if "manifest" in paths else None,
            positive_class=parse_label(values.get("positive_class")),
            decision_threshold=threshold,
            sample_rows=rt.settings.reference_sample_rows,
            prediction_col=values.get("prediction_col") or None,
            probability_col=values.get("probability_col") or None,
            score_cols=_names(values.get("score_cols", "")),
        )
    except ManifestError as exc:
        raise InvalidInput(("body", "manifest"), str(exc)) from None


async def _save(upload: StarletteUpload, folder: Path, field: str) -> Path:
    """The upload in a file of its own, keeping only its suffix (the format); a pickle keeps its
    suffix too, so that it is refused by name."""
    suffix = Path(upload.filename or "").suffix.lower()[:16]
    if field in ("reference", "holdout") and suffix not in SUFFIXES:
        raise InvalidInput(
            ("body", field),
            f"unknown data format {suffix or '(no suffix)'!r}; accepted: .parquet, .csv, .jsonl",
        )
    path = folder / f"{field}{suffix}"
    with open(path, "wb") as out:
        while chunk := await upload.read(1 << 20):
            out.write(chunk)
    return path


def _table(path: Path, field: str) -> Any:
    try:
        return read_table(path)
    except DataFileError as exc:
        raise InvalidInput(("body", field), str(exc).replace(str(path), field)) from None
