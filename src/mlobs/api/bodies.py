"""Request bodies per catalogue model, built from the manifests in one place: the feature object
of ``/predict/<model>``, and the validation of posted records (batch, checks, reference) with a
``loc`` that names the record and the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    create_model,
)

from mlobs.api.schemas import NO_NUL
from mlobs.errors import NotFound
from mlobs.models.manifest import Manifest
from mlobs.models.schema import FeatureSpec, ModelSchema

FLOAT32_MAX = float(np.finfo(np.float32).max)
MAX_CATEGORY_LENGTH = 200


def _whole(v: float | None) -> float | None:
    if v is not None and not float(v).is_integer():
        raise ValueError("must be a whole number")
    return v


def _field(f: FeatureSpec) -> Any:
    missing = " null = missing." if f.nullable else ""
    if f.kind == "boolean":
        return Annotated[
            (StrictBool | None) if f.nullable else StrictBool,
            Field(description=f"{f.description}.{missing}", examples=[f.example]),
        ]
    if f.kind == "categorical":
        known = f" Known: {', '.join(f.categories)};" if f.categories else ""
        text = Annotated[str, Field(strict=True, max_length=MAX_CATEGORY_LENGTH, pattern=NO_NUL)]
        return Annotated[
            (text | None) if f.nullable else text,
            Field(
                description=(
                    f"{f.description}.{known} any other string is accepted and treated as "
                    f"unseen.{missing}"
                ),
                examples=[f.example],
            ),
        ]
    # Constraints sit on the number itself so OpenAPI shows them inside anyOf[number, null].
    # Tree models compute in 32-bit floats: a larger magnitude would reach them as infinity,
    # so the physical domain is also cut to that range.
    number = Annotated[
        float,
        Field(
            strict=True,
            allow_inf_nan=False,
            ge=max(f.minimum, -FLOAT32_MAX) if f.minimum is not None else -FLOAT32_MAX,
            le=min(f.maximum, FLOAT32_MAX) if f.maximum is not None else FLOAT32_MAX,
            json_schema_extra={"multipleOf": 1} if f.integer else None,
        ),
    ]
    parts: list[Any] = [
        Field(
            description=f"{f.description}{' (whole number)' if f.integer else ''}.{missing}",
            examples=[f.example],
        )
    ]
    if f.integer:
        parts.append(AfterValidator(_whole))
    return Annotated[((number | None) if f.nullable else number, *parts)]


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Features"


def features_model(spec: ModelSchema) -> type[BaseModel]:
    """A pydantic model of one prediction request: every feature key required, null allowed where
    the feature is nullable. Feature names are JSON keys as given ("mean radius" included)."""
    fields: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    for i, f in enumerate(spec.features):
        # Python identifiers for pydantic, the feature's own name as the JSON key.
        key = f"f{i}"
        aliases[key] = f.name
        fields[key] = (_field(f), Field(..., alias=f.name))
    title = _title(spec.name)
    model: type[BaseModel] = create_model(
        title,
        __config__=ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [spec.example()]},
            title=title,
            populate_by_name=False,
            serialize_by_alias=True,
        ),
        __doc__=f"{spec.description or spec.name} Every key is required; null means missing.",
        **fields,
    )
    return model


def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


class ModelBodies:
    """The feature body of every catalogue model, and list validators built once per model."""

    def __init__(self, manifests: Mapping[str, Manifest]) -> None:
        self.schemas: dict[str, ModelSchema] = {n: m.model_schema() for n, m in manifests.items()}
        self.features: dict[str, type[BaseModel]] = {
            n: features_model(s) for n, s in self.schemas.items()
        }
        # One adapter per model validates a whole list in one call; errors carry the record index.
        self._lists: dict[str, TypeAdapter[list[BaseModel]]] = {
            n: _list_adapter(m) for n, m in self.features.items()
        }

    def schema(self, model_name: str) -> ModelSchema:
        if model_name not in self.schemas:
            raise NotFound("model", model_name, loc=("body", "model_name"))
        return self.schemas[model_name]

    def validate(
        self, model_name: str, records: list[dict[str, Any]], loc: str = "records"
    ) -> list[dict[str, Any]]:
        """The records as validated dicts keyed by feature name, or a 422 whose ``loc`` names the
        record and the field: ``["body", "records", 3, "amount"]``; a 404 for an unknown model."""
        if model_name not in self._lists:
            raise NotFound("model", model_name, loc=("body", "model_name"))
        try:
            rows = self._lists[model_name].validate_python(records)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", loc, *e["loc"])} for e in exc.errors()]
            ) from None
        return [r.model_dump(by_alias=True) for r in rows]

    def check(
        self, model_name: str, records: Mapping[int, Any]
    ) -> tuple[dict[int, dict[str, Any]], dict[int, list[Any]]]:
        """Validate records keyed by their position: the valid ones as dicts keyed by feature
        name, and each invalid one's errors (``loc`` within the record). A 404 for an unknown
        model."""
        if model_name not in self._lists:
            raise NotFound("model", model_name, loc=("path", "model_name"))
        adapter, order = self._lists[model_name], list(records)
        bad: dict[int, list[Any]] = {}
        try:
            rows = adapter.validate_python([records[i] for i in order])
        except ValidationError as exc:
            for e in exc.errors():
                pos = e["loc"][0] if e["loc"] and isinstance(e["loc"][0], int) else 0
                bad.setdefault(order[pos], []).append({**e, "loc": e["loc"][1:]})
            order = [i for i in order if i not in bad]
            rows = adapter.validate_python([records[i] for i in order]) if order else []
        dumped = adapter.dump_python(rows, by_alias=True)  # one call for the whole list
        return dict(zip(order, dumped, strict=True)), bad
