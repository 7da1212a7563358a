"""The demo catalogue: which algorithm, with which options, learns each generated data set.

Only the demo tools and the data generator know these names; once trained and saved, a demo model
is a catalogue entry like any user's (a manifest, an artifact, a reference profile).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from mlobs.data.generator import DATASETS
from mlobs.models import LightGBMModel, RandomForestModel, TabularModel, XGBoostModel

# name -> (algorithm, options): fraud's positives are rare, so its decision threshold is tuned for
# F1 on a validation slice; price is learned on log(price), so its errors are relative.
_RECIPES: Mapping[str, tuple[type[TabularModel], Mapping[str, Any]]] = MappingProxyType(
    {
        "fraud": (XGBoostModel, {"tune_threshold": True}),
        "price": (LightGBMModel, {"log_target": True}),
        "churn": (RandomForestModel, {}),
    }
)
# Churn is judged on accuracy (its classes are balanced enough for it to mean something), the
# others by their task's default (fraud: ROC AUC; price: MAE).
_RULES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {"churn": {"metric": "accuracy", "delta": 0.05}}
)
DEMO_NAMES: tuple[str, ...] = tuple(_RECIPES)


def demo_model(name: str, params: Mapping[str, Any] | None = None) -> TabularModel:
    """An untrained demo model over its generated data set's schema."""
    if name not in _RECIPES:
        raise KeyError(f"unknown demo model {name!r}; known: {list(DEMO_NAMES)}")
    cls, options = _RECIPES[name]
    model = cls(DATASETS[name], {**options, **(params or {})})
    model.performance_rule = _RULES.get(name)
    return model
