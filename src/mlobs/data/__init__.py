"""The demo catalogue: seeded synthetic data for the fraud, price and churn models, drift injection
on demand, and the recipe that trains each model."""

from mlobs.data.generator import (
    DATASETS,
    DriftSpec,
    generate,
    inject_drift,
)

__all__ = ["DATASETS", "DriftSpec", "generate", "inject_drift"]
