"""Every Prometheus object mlobs exports, owned by one class with the registry injected.

Label values are bounded: model names, statuses and the features of the model schemas; nothing
per request.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# From 0.25 ms to 10 s: single-row inference sits well under a millisecond, batches take seconds.
LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# One histogram serves both kinds of output: probabilities in [0, 1] for the classifiers, and
# prices (tens of thousands to millions) for the regressor. The bucket sets do not overlap.
VALUE_BUCKETS = (
    0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0,
    5e4, 1e5, 2e5, 3e5, 4e5, 5e5, 7.5e5, 1e6, 2e6, 5e6,
)  # fmt: skip


class Metrics:
    """The service's metrics. Tests read them back with ``registry.get_sample_value``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.predictions = Counter(
            "mlobs_predictions", "Predictions served, by outcome.",
            ["model_name", "status"], registry=registry,
        )  # fmt: skip
        self.latency = Histogram(
            "mlobs_prediction_latency_seconds",
            "Time from a validated record to the model's output (preprocessing included).",
            ["model_name"], buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.value = Histogram(
            "mlobs_prediction_value",
            "Model outputs: positive-class probability for classifiers, the price for price.",
            ["model_name"], buckets=VALUE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.batch_latency = Histogram(
            "mlobs_batch_latency_seconds",
            "Time of one /predict/batch estimator call (kept apart from single-row latency).",
            ["model_name"], buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.batch_size = Histogram(
            "mlobs_batch_records", "Records per /predict/batch request.", ["model_name"],
            buckets=(1, 10, 100, 1_000, 5_000, 10_000, 50_000), registry=registry,
        )  # fmt: skip
        self.model_loaded = Gauge(
            "mlobs_model_loaded", "1 when the model is loaded and serving, else 0.",
            ["model_name", "model_version"], registry=registry,
        )  # fmt: skip
        # The prediction log.
        self.log_written = Counter(
            "mlobs_prediction_log_written", "Predictions written to the database.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.log_dropped = Counter(
            "mlobs_prediction_log_dropped",
            "Predictions served but not logged because the log queue was full.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.log_write_errors = Counter(
            "mlobs_prediction_log_write_errors",
            "Failed log inserts (each is retried, its batch kept).", registry=registry,
        )  # fmt: skip
        self.log_queue_depth = Gauge(
            "mlobs_prediction_log_queue_depth", "Predictions waiting to be written.",
            registry=registry,
        )  # fmt: skip
        self.log_write_seconds = Histogram(
            "mlobs_prediction_log_write_seconds", "Time of one batched log insert.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip

        # Drift and data quality. Drift scores come from closed live windows; a posted check
        # (dataset_name="request") sets only the dataset-level and quality gauges.
        self.drift_score = Gauge(
            "mlobs_drift_score",
            "Drift score of a feature in the last closed live window (PSI or JS distance).",
            ["model_name", "feature"], registry=registry,
        )  # fmt: skip
        self.dataset_drift = Gauge(
            "mlobs_dataset_drift_detected", "1 when the last evaluated data set drifted.",
            ["model_name", "dataset_name"], registry=registry,
        )  # fmt: skip
        self.drift_share = Gauge(
            "mlobs_drift_share", "Share of drifted features in the last closed live window.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.drifted_features = Gauge(
            "mlobs_drifted_features_count", "Drifted features in the last closed live window.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.prediction_drift = Gauge(
            "mlobs_prediction_drift_score", "PSI of the model's output in the last live window.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.missing_share = Gauge(
            "mlobs_missing_values_share", "Share of missing feature values in the last data set.",
            ["model_name", "dataset_name"], registry=registry,
        )  # fmt: skip
        self.duplicate_rows = Gauge(
            "mlobs_duplicate_rows_count", "Rows repeating an earlier row in the last data set.",
            ["model_name", "dataset_name"], registry=registry,
        )  # fmt: skip
        self.window_rows = Gauge(
            "mlobs_drift_window_rows", "Rows this process counted into the open live window.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.windows_evaluated = Counter(
            "mlobs_drift_windows_evaluated", "Live windows closed and evaluated.",
            ["model_name", "status"], registry=registry,
        )  # fmt: skip
        # Alerts.
        self.alerts_total = Counter(
            "mlobs_alerts", "Alerts opened or escalated (repeats are not counted).",
            ["model_name", "alert_type", "severity"], registry=registry,
        )  # fmt: skip
        self.active_alerts = Gauge(
            "mlobs_active_alerts", "Open alerts (active or acknowledged), from the database.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.notifications = Counter(
            "mlobs_notifications", "Alert notifications by channel and outcome.",
            ["channel", "outcome"], registry=registry,
        )  # fmt: skip
        self.notification_queue_depth = Gauge(
            "mlobs_notification_queue_depth", "Notifications waiting to be delivered.",
            registry=registry,
        )  # fmt: skip
        # Ground truth and performance. Realized figures come from labelled predictions in the
        # last performance window; estimated ones from predicted probabilities alone (CBPE).
        self.labeled_predictions = Counter(
            "mlobs_labeled_predictions", "Predictions that received a ground-truth label.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.model_performance = Gauge(
            "mlobs_model_performance",
            "Realized performance over the last window of labelled predictions.",
            ["model_name", "metric"], registry=registry,
        )  # fmt: skip
        self.estimated_performance = Gauge(
            "mlobs_estimated_performance",
            "Label-free performance estimate (confidence-based) over the last window of predictions.",
            ["model_name", "metric"], registry=registry,
        )  # fmt: skip
        self.performance_estimate_gap = Gauge(
            "mlobs_performance_estimate_gap",
            "Estimated minus realized performance over the same labelled predictions.",
            ["model_name", "metric"], registry=registry,
        )  # fmt: skip
        self.concept_drift_statistic = Gauge(
            "mlobs_concept_drift_statistic",
            "The concept-drift detector's statistic over the error stream (alarm at its threshold).",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.concept_drift_detected = Gauge(
            "mlobs_concept_drift_detected", "1 while the concept-drift detector is in alarm.",
            ["model_name"], registry=registry,
        )  # fmt: skip
