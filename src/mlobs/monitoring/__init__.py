"""Monitoring: drift, data quality, alerts and the Prometheus metrics.

The names below load on first use (PEP 562): importing a light submodule such as
``mlobs.monitoring.records`` (the prediction log's writer process does) must not pull in numpy,
pandas, scipy and scikit-learn through the drift detector.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlobs.monitoring.drift_detector import DriftDetector, DriftReport, FeatureDrift
    from mlobs.monitoring.profiles import ReferenceProfile

__all__ = ["DriftDetector", "DriftReport", "FeatureDrift", "ReferenceProfile"]

_WHERE = {
    "DriftDetector": "mlobs.monitoring.drift_detector",
    "DriftReport": "mlobs.monitoring.drift_detector",
    "FeatureDrift": "mlobs.monitoring.drift_detector",
    "ReferenceProfile": "mlobs.monitoring.profiles",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
