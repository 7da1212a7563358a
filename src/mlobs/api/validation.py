"""Validation of posted records against a model's feature schema, shared by the batch,
drift, quality and reference routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

from mlobs.api.schemas import FEATURE_MODELS


def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


# One adapter per model validates a whole list in one call; errors carry the record index.
RECORD_LISTS: Mapping[str, TypeAdapter[list[BaseModel]]] = {
    n: _list_adapter(m) for n, m in FEATURE_MODELS.items()
}


def validate_records(
    model_name: str, records: list[dict[str, Any]], loc: str = "records"
) -> list[dict[str, Any]]:
    """The records as validated dicts, or a 422 whose ``loc`` names the record and the field:
    ``["body", "records", 3, "amount"]``."""
    try:
        rows = RECORD_LISTS[model_name].validate_python(records)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", loc, *e["loc"])} for e in exc.errors()]
        ) from None
    return [r.model_dump() for r in rows]
