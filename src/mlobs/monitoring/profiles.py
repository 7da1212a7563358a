"""Reference profiles: what a model's inputs and output looked like at training time, frozen.

A profile keeps, per feature, the bin edges (numeric) or categories (categorical), the reference
proportions over them, the missing share, range and quantiles; the same for the model's output.
Its size depends on features x bins, never on rows, so a 10M-row reference costs what a 10k-row
one does. Every later window is counted against the same frozen bins, which makes the scores of
two windows comparable and lets windows merge by adding counts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from mlobs.stats import bin_counts, category_counts, quantile_edges

if TYPE_CHECKING:  # only annotations: the window child process loads no model libraries
    from mlobs.models.base import TabularModel

PROFILE_FILE = "reference.json"
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
OUTPUT = "__prediction__"


@dataclass(frozen=True)
class NumericProfile:
    """A numeric column: frozen quantile edges and the reference proportions over their bins."""

    name: str
    edges: tuple[float, ...]
    proportions: tuple[float, ...]
    count: int
    missing_share: float
    minimum: float
    maximum: float
    mean: float
    std: float
    quantiles: Mapping[str, float]
    kind: Literal["numeric"] = "numeric"

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    def bin_labels(self) -> list[str]:
        """Human-readable bin ranges, e.g. ``(-inf, 3.5]``, ``(3.5, 7]``, ``(7, inf)``."""
        bounds = [-np.inf, *self.edges, np.inf]
        return [f"({bounds[i]:.4g}, {bounds[i + 1]:.4g}]" for i in range(len(bounds) - 1)]

    def centers(self) -> np.ndarray:
        """A representative value per bin (for Wasserstein): interior midpoints, and the outer
        bins' midpoints to the reference minimum and maximum."""
        lo, hi = self.minimum, self.maximum
        bounds = np.array([lo, *self.edges, hi], dtype=np.float64)
        return (bounds[:-1] + bounds[1:]) / 2


@dataclass(frozen=True)
class CategoricalProfile:
    """A categorical column: the reference categories plus an "unseen" bucket (always 0 here)."""

    name: str
    categories: tuple[str, ...]
    proportions: tuple[float, ...]
    count: int
    missing_share: float
    kind: Literal["categorical"] = "categorical"

    @property
    def n_bins(self) -> int:
        return len(self.categories) + 1

    def bin_labels(self) -> list[str]:
        return [*self.categories, "(unseen)"]


FeatureProfile = NumericProfile | CategoricalProfile


def _numeric(name: str, values: np.ndarray, n_bins: int) -> NumericProfile:
    x = np.asarray(values, dtype=np.float64)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        raise ValueError(f"reference column {name!r} has no finite values")
    edges = quantile_edges(finite, n_bins)
    counts = bin_counts(finite, edges)
    qs = np.quantile(finite, QUANTILES)
    return NumericProfile(
        name=name,
        edges=tuple(float(e) for e in edges),
        proportions=tuple(float(p) for p in counts / counts.sum()),
        count=int(finite.size),
        missing_share=float(1 - finite.size / max(len(x), 1)),
        minimum=float(finite.min()),
        maximum=float(finite.max()),
        mean=float(finite.mean()),
        std=float(finite.std()),
        quantiles={f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, qs, strict=True)},
    )


def _categorical(name: str, values: np.ndarray, max_categories: int) -> CategoricalProfile:
    col = pd.Series(values, dtype=object)
    present = col.dropna()
    if present.empty:
        raise ValueError(f"reference column {name!r} has no values")
    # Most frequent first; a long tail beyond max_categories counts as unseen later on.
    cats = tuple(str(c) for c in present.astype(str).value_counts().index[:max_categories])
    counts = category_counts(present.astype(str).to_numpy(dtype=object), cats)
    return CategoricalProfile(
        name=name,
        categories=cats,
        proportions=tuple(float(p) for p in counts / counts.sum()),
        count=int(len(present)),
        missing_share=float(1 - len(present) / max(len(col), 1)),
    )


@dataclass(frozen=True)
class ReferenceProfile:
    """A model's frozen reference: one profile per feature, and one for its output."""

    model_name: str
    model_version: str
    rows: int
    n_bins: int
    features: Mapping[str, FeatureProfile]
    output: NumericProfile | None = None
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="microseconds")
    )

    @classmethod
    def build(
        cls,
        reference: pd.DataFrame,
        *,
        categorical_features: Iterable[str] | None = None,
        features: Sequence[str] | None = None,
        output: np.ndarray | None = None,
        model_name: str = "",
        model_version: str = "",
        n_bins: int = 10,
        max_categories: int = 50,
    ) -> ReferenceProfile:
        """Profile ``reference`` (one row per record). Categorical columns are those named, or,
        when none are named, the columns of object, string, category or bool dtype."""
        names = list(features) if features is not None else list(reference.columns)
        if categorical_features is None:
            cat = {
                c
                for c in names
                if not pd.api.types.is_numeric_dtype(reference[c])
                or pd.api.types.is_bool_dtype(reference[c])
            }
        else:
            cat = set(categorical_features)
            unknown = cat - set(names)
            if unknown:
                raise ValueError(f"categorical features not in the data: {sorted(unknown)}")
        profiles: dict[str, FeatureProfile] = {}
        for name in names:
            values = reference[name].to_numpy()
            if name in cat:
                profiles[name] = _categorical(name, values, max_categories)
            else:
                profiles[name] = _numeric(name, values, n_bins)
        out = _numeric(OUTPUT, output, n_bins) if output is not None else None
        return cls(model_name, model_version, len(reference), n_bins, profiles, out)

    # ------------------------------------------------------------------ (de)serialisation

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "rows": self.rows,
            "n_bins": self.n_bins,
            "created_at": self.created_at,
            "features": {k: asdict(v) for k, v in self.features.items()},
            "output": asdict(self.output) if self.output else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        return cls(
            model_name=d["model_name"],
            model_version=d["model_version"],
            rows=int(d["rows"]),
            n_bins=int(d["n_bins"]),
            features={k: _feature_from_dict(v) for k, v in d["features"].items()},
            output=_numeric_from_dict(d["output"]) if d.get("output") else None,
            created_at=d["created_at"],
        )


def _numeric_from_dict(d: Mapping[str, Any]) -> NumericProfile:
    return NumericProfile(
        name=d["name"],
        edges=tuple(d["edges"]),
        proportions=tuple(d["proportions"]),
        count=int(d["count"]),
        missing_share=float(d["missing_share"]),
        minimum=float(d["minimum"]),
        maximum=float(d["maximum"]),
        mean=float(d["mean"]),
        std=float(d["std"]),
        quantiles=dict(d["quantiles"]),
    )


def _feature_from_dict(d: Mapping[str, Any]) -> FeatureProfile:
    if d["kind"] == "categorical":
        return CategoricalProfile(
            name=d["name"],
            categories=tuple(d["categories"]),
            proportions=tuple(d["proportions"]),
            count=int(d["count"]),
            missing_share=float(d["missing_share"]),
        )
    return _numeric_from_dict(d)


def save_profile(profile: ReferenceProfile, model_dir: Path) -> Path:
    """Write the profile beside its model: ``<model_dir>/<model>/reference.json``."""
    folder = Path(model_dir) / profile.model_name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PROFILE_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(profile.to_dict(), indent=1))
    tmp.replace(path)
    return path


def load_profile(model_dir: Path, model_name: str) -> ReferenceProfile | None:
    """The saved profile, or None when there is none."""
    path = Path(model_dir) / model_name / PROFILE_FILE
    if not path.is_file():
        return None
    return ReferenceProfile.from_dict(json.loads(path.read_text()))


def profile_for_model(model: TabularModel, reference: pd.DataFrame) -> ReferenceProfile:
    """The reference profile of a trained model: its features on ``reference`` (its training
    data) and its output there (probability for classifiers, the value for regressors)."""
    output = model.predict_frame(reference).monitored
    return ReferenceProfile.build(
        reference,
        features=model.spec.feature_names,
        categorical_features=model.spec.categorical,
        output=output,
        model_name=model.name,
        model_version=model.version,
    )
