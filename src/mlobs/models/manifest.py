"""A model version's manifest: its name, task, features, target and artifact, in YAML (or JSON).

The manifest is the one description of a model that every part reads: the API builds request
bodies from its features, monitoring profiles by them, the loaders find the artifact through it.
Validated with pydantic: an unknown key or a wrong type is an error that names it.

Example (``MODEL_DIR/diamonds/manifest.yaml``)::

    name: diamonds
    version: 2f6c1a9e0b7d            # a content hash when not given
    task: regression                 # binary_classification | multiclass_classification | regression
    description: Diamond prices from their cut, colour and size.
    target: price
    features:
      - {name: carat, kind: numeric, minimum: 0}
      - {name: cut, kind: categorical, categories: [Fair, Good, Very Good, Premium, Ideal]}
      - {name: depth, kind: numeric, nullable: false}
    artifact: {format: lightgbm, file: model.txt, sha256: 9c1e...}

A binary classifier adds ``positive_class`` (the label the probability is of) and
``decision_threshold``; a multiclass one ``class_labels`` in the order of its score columns.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from mlobs.models.schema import FeatureKind, FeatureSpec, ModelSchema, Task

MANIFEST_FILE = "manifest.yaml"
MANIFEST_JSON = "manifest.json"
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
RESERVED_NAMES = frozenset({"batch", "models", "v2"})
# Feature names are the columns as given ("mean radius", "od280/od315_of_diluted_wines"): any
# printable characters, no control characters.
FeatureName = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
]
ArtifactFormat = Literal["xgboost", "lightgbm", "skops", "onnx"]
# Artifacts mlobs accepts, by file suffix; pickles are refused by name (see ``check_not_pickle``).
FORMAT_SUFFIXES: dict[str, ArtifactFormat] = {
    ".ubj": "xgboost", ".json": "xgboost", ".txt": "lightgbm", ".skops": "skops", ".onnx": "onnx",
}  # fmt: skip
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pck", ".cloudpickle", ".sav", ".dill")


class ManifestError(ValueError):
    """A manifest that does not validate; the message names the field and the reason."""


def check_name(name: str) -> str:
    """``name`` when it is a valid model name, else ValueError saying why."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(
            f"model name {name!r} is invalid: 1-64 characters of lower-case letters, digits, "
            "'_' and '-', starting with a letter"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"model name {name!r} is reserved ({', '.join(sorted(RESERVED_NAMES))})")
    return name


class FeatureEntry(BaseModel):
    """One input feature."""

    model_config = ConfigDict(extra="forbid")

    name: FeatureName
    kind: FeatureKind
    nullable: bool = Field(True, description="null (missing) is accepted")
    description: str = ""
    integer: bool = Field(False, description="numeric values must be whole numbers")
    minimum: float | None = Field(
        None, description="physical lower bound (declared, never inferred)"
    )
    maximum: float | None = Field(
        None, description="physical upper bound (declared, never inferred)"
    )
    categories: list[str] = Field(
        default_factory=list,
        description="categorical: the categories seen, in the order of the artifact's codes",
    )
    example: str | bool | int | float | None = Field(None, description="shown in OpenAPI")

    @model_validator(mode="after")
    def _consistent(self) -> FeatureEntry:
        if self.kind != "numeric" and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"{self.name}: bounds apply to numeric features only")
        if self.kind != "categorical" and self.categories:
            raise ValueError(f"{self.name}: categories apply to categorical features only")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"{self.name}: minimum {self.minimum} > maximum {self.maximum}")
        return self

    def spec(self) -> FeatureSpec:
        return FeatureSpec(
            self.name, self.kind, self.description or self.name, integer=self.integer,
            minimum=self.minimum, maximum=self.maximum, categories=tuple(self.categories),
            example=self.example, nullable=self.nullable,
        )  # fmt: skip

    @classmethod
    def of(cls, f: FeatureSpec) -> FeatureEntry:
        return cls(
            name=f.name, kind=f.kind, nullable=f.nullable, description=f.description,
            integer=f.integer, minimum=f.minimum, maximum=f.maximum,
            categories=list(f.categories), example=f.example,
        )  # fmt: skip


class ArtifactEntry(BaseModel):
    """The model file, in a format that is never a pickle."""

    model_config = ConfigDict(extra="forbid")

    format: ArtifactFormat
    file: str = Field(pattern=r"^[^/\\]+$", description="a file name in the model's folder")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    algorithm: str | None = Field(
        None,
        description="set by mlobs for the estimators it trains (xgboost, lightgbm, random_forest)",
    )


class PerformanceRule(BaseModel):
    """When ``performance_degradation`` fires: ``metric`` against an absolute ``threshold``, or
    the holdout figure minus ``delta`` (plus, for an error metric), or times ``factor``."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, max_length=64)
    threshold: float | None = None
    delta: float | None = Field(None, ge=0)
    factor: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_bound(self) -> PerformanceRule:
        given = [k for k in ("threshold", "delta", "factor") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of threshold, delta, factor (got {given or 'none'})"
            )
        return self


class Manifest(BaseModel):
    """One model version."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._+-]+$")
    task: Task
    description: str = ""
    target: FeatureName | None = None
    features: list[FeatureEntry] = Field(min_length=1)
    positive_class: str | int | bool | None = Field(
        None, description="binary: the label whose probability the model outputs (default 1)"
    )
    decision_threshold: float | None = Field(None, ge=0.0, le=1.0)
    class_labels: list[str | int] | None = Field(None, description="multiclass: in score order")
    artifact: ArtifactEntry | None = None
    performance_rule: PerformanceRule | None = None
    inference_service: str | None = Field(
        None,
        max_length=253,
        description="A KServe InferenceService whose payload logger feeds this model (default: "
        "the service of the model's own name).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        check_name(self.name)
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {dupes}")
        if self.target is not None and self.target in names:
            raise ValueError(f"the target {self.target!r} is also a feature")
        if self.task != "binary_classification" and (
            self.decision_threshold is not None or self.positive_class is not None
        ):
            raise ValueError("positive_class and decision_threshold apply to binary classifiers")
        if self.task == "multiclass_classification":
            if not self.class_labels or len(self.class_labels) < 3:
                raise ValueError("a multiclass classifier needs class_labels (at least 3)")
        elif self.class_labels is not None:
            raise ValueError("class_labels apply to multiclass classifiers")
        return self

    # ------------------------------------------------------------------ views

    def model_schema(self) -> ModelSchema:
        return ModelSchema(
            name=self.name,
            task=self.task,
            target=self.target or "",
            description=self.description,
            features=tuple(f.spec() for f in self.features),
            classes=tuple(self.class_labels or ()),
        )

    @property
    def threshold(self) -> float:
        return 0.5 if self.decision_threshold is None else self.decision_threshold

    def content_version(self, artifact_sha256: str | None) -> str:
        """A version from the content: the manifest without its version, and the artifact's hash."""
        body = self.model_dump(mode="json", exclude={"version"})
        digest = hashlib.sha256(json.dumps([body, artifact_sha256], sort_keys=True).encode())
        return digest.hexdigest()[:12]

    @classmethod
    def of(cls, schema: ModelSchema, **extra: Any) -> Manifest:
        return cls(
            name=schema.name, task=schema.task, description=schema.description,
            target=schema.target or None, features=[FeatureEntry.of(f) for f in schema.features],
            **({"class_labels": list(schema.classes)} if schema.classes else {}), **extra,
        )  # fmt: skip

    # ------------------------------------------------------------------ files

    @classmethod
    def parse(cls, data: Any, source: str = "manifest") -> Manifest:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
            )
            raise ManifestError(f"{source}: {problems}") from None

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """A manifest file, YAML or JSON (JSON is YAML too)."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: not YAML or JSON text: {exc}") from None
        return cls.parse(data, str(path))

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def manifest_path(folder: Path) -> Path | None:
    """The manifest of a model folder (YAML first), or None."""
    for name in (MANIFEST_FILE, MANIFEST_JSON):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def check_not_pickle(path: Path) -> ArtifactFormat:
    """The artifact format of a file by its suffix; ValueError for a pickle or an unknown suffix,
    naming the accepted formats and how to convert."""
    suffix = Path(path).suffix.lower()
    if suffix in PICKLE_SUFFIXES or _looks_pickled(path):
        raise ValueError(
            f"{Path(path).name} is a pickle: mlobs never loads pickles (loading one runs arbitrary "
            "code). Save the model in a safe format: XGBoost `booster.save_model('model.ubj')`, "
            "LightGBM `booster.save_model('model.txt')`, scikit-learn `skops.io.dump(model, "
            "'model.skops')`, or ONNX (skl2onnx / onnxmltools) as `model.onnx`"
        )
    if suffix not in FORMAT_SUFFIXES:
        raise ValueError(
            f"{Path(path).name}: unknown artifact format {suffix or '(no suffix)'!r}; accepted: "
            ".ubj/.json (XGBoost), .txt (LightGBM), .skops (scikit-learn), .onnx (ONNX)"
        )
    return FORMAT_SUFFIXES[suffix]


def _looks_pickled(path: Path) -> bool:
    """A pickle's first byte is the PROTO opcode 0x80 (protocols 2-5)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
