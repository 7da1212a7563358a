"""Monitoring: drift, data quality, alerts and the Prometheus metrics."""

from mlobs.monitoring.drift_detector import DriftDetector, DriftReport, FeatureDrift
from mlobs.monitoring.profiles import ReferenceProfile

__all__ = ["DriftDetector", "DriftReport", "FeatureDrift", "ReferenceProfile"]
