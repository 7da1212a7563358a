"""What a model takes and predicts: its features, their kinds and physical domains, its target and task.

A model's manifest is read into a ``ModelSchema``; the API builds request bodies from it, the
monitoring profiles its features by it, and the demo generator declares its data sets with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

FeatureKind = Literal["numeric", "categorical", "boolean"]
Task = Literal["binary_classification", "multiclass_classification", "regression"]
TASKS: tuple[Task, ...] = ("binary_classification", "multiclass_classification", "regression")


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature.

    Attributes:
        name: column name and JSON key.
        kind: ``numeric``, ``categorical`` or ``boolean``.
        description: one line for OpenAPI and reports.
        integer: numeric values must be whole numbers (an hour, a count).
        minimum, maximum: the physical domain (inclusive); a value outside it is invalid input.
        categories: for categorical features, the values the generator produces. Any other string is
            accepted at serving time and treated as unseen.
        example: a typical value, used in OpenAPI examples.
        nullable: null (missing) is accepted.
    """

    name: str
    kind: FeatureKind
    description: str
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    example: Any = None
    nullable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "integer": self.integer,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "categories": list(self.categories),
            "example": self.example,
            "nullable": self.nullable,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(
            name=d["name"],
            kind=d["kind"],
            description=d.get("description", ""),
            integer=bool(d.get("integer", False)),
            minimum=d.get("minimum"),
            maximum=d.get("maximum"),
            categories=tuple(d.get("categories", ())),
            example=d.get("example"),
            nullable=bool(d.get("nullable", True)),
        )

    def check(self, value: Any) -> str | None:
        """Why ``value`` is invalid for this feature, or None when it is valid (None itself is valid)."""
        if value is None:
            return None if self.nullable else "must not be null"
        if self.kind == "boolean":
            return None if isinstance(value, bool) else "must be true, false or null"
        if self.kind == "categorical":
            return None if isinstance(value, str) else "must be a string or null"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number or null"
        x = float(value)
        if not math.isfinite(x):
            return "must be a finite number"
        if self.integer and not x.is_integer():
            return "must be a whole number"
        if self.minimum is not None and x < self.minimum:
            return f"must be >= {self.minimum:g}"
        if self.maximum is not None and x > self.maximum:
            return f"must be <= {self.maximum:g}"
        return None


@dataclass(frozen=True)
class ModelSchema:
    """A data set: its features in model order, the target column and the learning task; a
    multiclass classifier's ``classes`` are its labels in the order of its score columns."""

    name: str
    task: Task
    target: str
    description: str
    features: tuple[FeatureSpec, ...] = field(default_factory=tuple)
    classes: tuple[Any, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    def feature(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def example(self) -> dict[str, Any]:
        return {f.name: f.example for f in self.features}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "target": self.target,
            "description": self.description,
            "features": [f.to_dict() for f in self.features],
            **({"classes": list(self.classes)} if self.classes else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSchema:
        return cls(
            name=d["name"],
            task=d["task"],
            target=d["target"],
            description=d.get("description", ""),
            features=tuple(FeatureSpec.from_dict(f) for f in d["features"]),
            classes=tuple(d.get("classes", ())),
        )
