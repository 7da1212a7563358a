"""Every Prometheus object mlobs exports, owned by one class with the registry injected.

Label values are bounded: model names, statuses and the features of the model schemas; nothing
per request.

Several worker processes (``mlobs serve --workers N``) use prometheus-client's multiprocess mode,
switched on by ``PROMETHEUS_MULTIPROC_DIR``: each process writes its values to files there and a
scrape merges them (``scrape_registry``). Counters and histograms add up across processes. Every
gauge states how its per-process values combine (``multiprocess_mode``, ignored in a single
process): ``livesum`` for what each process holds (queue depths), ``livemax`` for the models
loaded, and ``mostrecent`` for values that describe shared state (a closed window, the database's
open alerts) and are written by whichever process computed them last. ``mostrecent`` gauges may
only be ``set``. The ``live`` modes forget a process once it has exited.
"""

from __future__ import annotations

import glob
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

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
        # Every worker loads every model: 1 while some live worker serves it.
        self.model_loaded = Gauge(
            "mlobs_model_loaded", "1 when the model is loaded and serving, else 0.",
            ["model_name", "model_version"], multiprocess_mode="livemax", registry=registry,
        )  # fmt: skip
        self.ingested = Counter(
            "mlobs_ingested_predictions",
            "Predictions made elsewhere and posted to /models/{name}/predictions, by outcome: "
            "accepted (logged and counted), duplicate (sent before), rejected (invalid).",
            ["model_name", "outcome"], registry=registry,
        )  # fmt: skip
        self.kserve_unpaired = Counter(
            "mlobs_kserve_unpaired_events",
            "KServe payload-logger events whose other half (request or response) never came "
            "within KSERVE_PAIR_SECONDS: dropped.",
            registry=registry,
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
        # Each process buffers its own predictions: the total is the sum over live processes.
        self.log_queue_depth = Gauge(
            "mlobs_prediction_log_queue_depth",
            "Predictions waiting to be written (as the log writer last found them; summed over "
            "worker processes).",
            multiprocess_mode="livesum", registry=registry,
        )  # fmt: skip
        self.spilled = Counter(
            "mlobs_spilled_records",
            "Records written to the local spill while the database was unreachable.",
            ["kind", "model_name"], registry=registry,
        )  # fmt: skip
        self.spill_replayed = Counter(
            "mlobs_spill_replayed_records", "Spilled records replayed into the database.",
            ["kind"], registry=registry,
        )  # fmt: skip
        self.spill_failures = Counter(
            "mlobs_spill_failures", "Appends to the spill that failed (the records were held).",
            registry=registry,
        )  # fmt: skip
        self.log_write_seconds = Histogram(
            "mlobs_prediction_log_write_seconds", "Time of one batched log insert.",
            buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip

        # Drift and data quality. Drift scores come from closed live windows; a posted check
        # (dataset_name="request") sets only the dataset-level and quality gauges. Windows are
        # shared by the worker processes and each is evaluated by one of them, and a check by
        # the worker that received it: these gauges keep the most recently set value.
        self.drift_score = Gauge(
            "mlobs_drift_score",
            "Drift score of a feature in the last closed live window (PSI or JS distance).",
            ["model_name", "feature"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.dataset_drift = Gauge(
            "mlobs_dataset_drift_detected", "1 when the last evaluated data set drifted.",
            ["model_name", "dataset_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.drift_share = Gauge(
            "mlobs_drift_share", "Share of drifted features in the last closed live window.",
            ["model_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.drifted_features = Gauge(
            "mlobs_drifted_features_count", "Drifted features in the last closed live window.",
            ["model_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.prediction_drift = Gauge(
            "mlobs_prediction_drift_score", "PSI of the model's output in the last live window.",
            ["model_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.missing_share = Gauge(
            "mlobs_missing_values_share", "Share of missing feature values in the last data set.",
            ["model_name", "dataset_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.duplicate_rows = Gauge(
            "mlobs_duplicate_rows_count", "Rows repeating an earlier row in the last data set.",
            ["model_name", "dataset_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        # Each process pushes its counts into the shared window and reads back its total.
        self.window_rows = Gauge(
            "mlobs_drift_window_rows",
            "Rows counted into the open live window by all processes, as of the last push.",
            ["model_name"], multiprocess_mode="mostrecent", registry=registry,
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
        # Read from the database after each change: the most recent reading is the freshest.
        self.active_alerts = Gauge(
            "mlobs_active_alerts", "Open alerts (active or acknowledged), from the database.",
            ["model_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.notifications = Counter(
            "mlobs_notifications", "Alert notifications by channel and outcome.",
            ["channel", "outcome"], registry=registry,
        )  # fmt: skip
        # Each process delivers the notifications of the alerts it raised.
        self.notification_queue_depth = Gauge(
            "mlobs_notification_queue_depth",
            "Notifications waiting to be delivered (summed over worker processes).",
            multiprocess_mode="livesum", registry=registry,
        )  # fmt: skip
        # Ground truth and performance. Realized figures come from labelled predictions in the
        # last performance window; estimated ones from predicted probabilities alone (CBPE).
        # The label tracker and its concept-drift detector live in the database, advanced by
        # whichever process reads new labels: these gauges keep the most recently set value.
        self.labeled_predictions = Counter(
            "mlobs_labeled_predictions", "Predictions that received a ground-truth label.",
            ["model_name"], registry=registry,
        )  # fmt: skip
        self.model_performance = Gauge(
            "mlobs_model_performance",
            "Realized performance over the last window of labelled predictions.",
            ["model_name", "metric"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.estimated_performance = Gauge(
            "mlobs_estimated_performance",
            "Label-free performance estimate (confidence-based) over the last window of predictions.",
            ["model_name", "metric"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.performance_estimate_gap = Gauge(
            "mlobs_performance_estimate_gap",
            "Estimated minus realized performance over the same labelled predictions.",
            ["model_name", "metric"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.performance_alert_bound = Gauge(
            "mlobs_performance_alert_bound",
            "The performance_degradation bound of each model: alert when the realized metric goes "
            "below (direction=below) or above (direction=above) it. Set when the models load.",
            ["model_name", "metric", "direction"], multiprocess_mode="mostrecent",
            registry=registry,
        )  # fmt: skip
        self.concept_drift_statistic = Gauge(
            "mlobs_concept_drift_statistic",
            "The concept-drift detector's statistic over the error stream (alarm at its threshold).",
            ["model_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip
        self.concept_drift_detected = Gauge(
            "mlobs_concept_drift_detected", "1 while the concept-drift detector is in alarm.",
            ["model_name"], multiprocess_mode="mostrecent", registry=registry,
        )  # fmt: skip


def scrape_registry(registry: CollectorRegistry) -> CollectorRegistry:
    """The registry a scrape exposes: ``registry`` itself in a single process; in multiprocess
    mode (``PROMETHEUS_MULTIPROC_DIR`` set) a fresh one that merges every process's files, so
    whichever worker answers reports them all.

    The merge covers every metric of every process, whatever registry it was created with, so
    ``registry`` itself is not exposed then (it would only repeat this process's share).
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return registry
    forget_exited_processes(path)
    merged = CollectorRegistry()
    _MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]
    return merged


def metric_files(path: str) -> list[str]:
    """The multiprocess directory's value files that hold a header, i.e. all but empty ones.

    prometheus-client creates a process's file and only then sizes it, so a scrape can meet it
    at 0 bytes (a worker recording its first value, or one killed in that instant, whose file
    then stays empty for good), and its merge fails on the missing header, taking every other
    process's values with it (prometheus/client_python#1199). An empty file has nothing
    recorded, so leaving it out loses nothing; once sized, a file never shrinks. A file removed
    meanwhile (an exited process's live gauges) is left out too.
    """
    return [f for f in glob.glob(os.path.join(path, "*.db")) if _size(f) > 0]


def _size(file: str) -> int:
    try:
        return os.path.getsize(file)
    except FileNotFoundError:
        return 0


class _MultiProcessCollector(multiprocess.MultiProcessCollector):
    """prometheus-client's merge of every process's files, over ``metric_files`` only."""

    def collect(self):  # type: ignore[no-untyped-def]
        return self.merge(metric_files(self._path), accumulate=True)  # type: ignore[no-untyped-call]


def forget_exited_processes(path: str) -> list[int]:
    """Drop the ``live*`` gauge files of processes that have exited; returns their pids.

    Uvicorn restarts or stops its workers without a hook like gunicorn's ``child_exit``, so this
    runs at each scrape: a file whose pid is no longer running is the process's last word.
    """
    gone: list[int] = []
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        tail = os.path.basename(file).rsplit("_", 1)[1].removesuffix(".db")
        if not tail.isdigit():
            continue
        pid = int(tail)
        if pid not in gone and not _running(pid):
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
            gone.append(pid)
    return gone


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
