"""Seeded synthetic data for the three models, with drift injection on demand."""

from mlobs.data.generator import (
    DATASETS,
    DriftSpec,
    generate,
    inject_drift,
)
from mlobs.data.schema import DatasetSpec, FeatureSpec

__all__ = ["DATASETS", "DatasetSpec", "DriftSpec", "FeatureSpec", "generate", "inject_drift"]
