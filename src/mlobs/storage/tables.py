"""Table definitions. Portable types only, so one set of migrations serves SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")

predictions = Table(
    "predictions",
    metadata,
    # A prediction id is unique per model: mlobs makes UUIDs, senders bring their own.
    Column("model_name", String(64), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("model_version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("features", JsonType, nullable=False),
    Column("prediction", Float, nullable=False),
    Column("probability", Float, nullable=True),
    Column("latency_ms", Float, nullable=False),
    # Multiclass classifiers: every class's probability (manifest order) and the predicted label.
    Column("scores", JsonType, nullable=True),
    Column("label", JsonType, nullable=True),
    Index("ix_predictions_model_created", "model_name", "created_at"),
    Index("ix_predictions_id", "id"),
)

# Live drift windows, shared by every worker process: one open window per model at a time.
drift_windows = Table(
    "drift_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("profile_version", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # open | closed | discarded
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("n_rows", BigInteger, nullable=False, default=0),
    UniqueConstraint("model_name", "seq", name="uq_drift_windows_model_seq"),
)

# Counts of a window, added to by every process: (feature, bin) -> count. Bin -1 holds the
# feature's missing values, -2 its values outside the reference range.
drift_window_counts = Table(
    "drift_window_counts",
    metadata,
    Column(
        "window_id", Integer, ForeignKey("drift_windows.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("feature", String(64), primary_key=True),
    Column("bin", Integer, primary_key=True),
    Column("count", BigInteger, nullable=False),
)

drift_results = Table(
    "drift_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(64), nullable=False),
    Column("dataset_name", String(16), nullable=False),  # live | request
    Column("window_id", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("status", String(24), nullable=False),
    Column("dataset_drift", Boolean, nullable=False),
    Column("drift_share", Float, nullable=False),
    Column("drifted_features_count", Integer, nullable=False),
    Column("report", JsonType, nullable=False),
    Column("quality", JsonType, nullable=True),
    # A backfill period in event time (live windows and requests leave them empty).
    Column("window_start", DateTime(timezone=True), nullable=True),
    Column("window_end", DateTime(timezone=True), nullable=True),
    Index("ix_drift_results_model_created", "model_name", "created_at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("fingerprint", String(160), nullable=False),
    # The fingerprint while the alert is open, NULL once resolved: the unique constraint lets
    # exactly one open alert exist per fingerprint, across processes, on SQLite and PostgreSQL.
    Column("open_key", String(160), nullable=True, unique=True),
    Column("model_name", String(64), nullable=False),
    Column("family", String(32), nullable=False),
    Column("alert_type", String(48), nullable=False),
    Column("scope", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("value", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("message", String(1000), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("occurrences", Integer, nullable=False),
    Column("clear_count", Integer, nullable=False),
    Column("acknowledged_by", String(200), nullable=True),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("resolved_by", String(200), nullable=True),
    Column("resolved_at", DateTime(timezone=True), nullable=True),
    Column("note", String(2000), nullable=True),
    Index("ix_alerts_state_opened", "state", "opened_at"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(36), ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("severity", String(16), nullable=True),
    Column("value", Float, nullable=True),
    Column("by", String(200), nullable=True),
    Column("note", String(2000), nullable=True),
    Index("ix_alert_events_alert", "alert_id"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("model_name", String(64), nullable=True),
    Column("alert_type", String(48), nullable=True),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("comment", String(2000), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # When the open alerts it covered were notified after it ended (set by the one process that
    # claimed that; null until then, also for a silence ended early by an operator).
    Column("end_notified_at", DateTime(timezone=True), nullable=True),
    Index("ix_silences_ends", "ends_at"),
)

# Ground truth. A label carries a copy of the prediction it answers (version, output, time): it
# may arrive while that prediction still waits in the log queue, and the performance windows then
# read one table. ``processed`` marks labels the model's label tracker has consumed (concept-drift
# detector and performance windows), ``window_seq`` the performance window each was counted in.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prediction_id", String(128), nullable=False),
    Column("model_name", String(64), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("predicted_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("actual", Float, nullable=False),
    Column("prediction", Float, nullable=False),
    Column("probability", Float, nullable=True),
    Column("scores", JsonType, nullable=True),
    Column("processed", Boolean, nullable=False, default=False),
    Column("window_seq", Integer, nullable=True),
    UniqueConstraint("model_name", "prediction_id", name="uq_feedback_prediction"),
    Index("ix_feedback_prediction_id", "prediction_id"),
    Index("ix_feedback_model_processed", "model_name", "processed", "id"),
    Index("ix_feedback_model_window", "model_name", "window_seq"),
)

# KServe's payload logger sends a request and its response as two CloudEvents with one id, in
# either order and perhaps to different workers: the first half waits here for the other.
kserve_halves = Table(
    "kserve_halves",
    metadata,
    Column("event_id", String(256), primary_key=True),
    Column("kind", String(16), primary_key=True),  # request | response
    Column("model_name", String(64), nullable=False),
    Column("body", JsonType, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_kserve_halves_received", "received_at"),
)

# One row per model: where its stream of labels stands. Updated only under its ``revision``
# (optimistic concurrency), so each label feeds the detector and a window exactly once across
# every worker process, and a restart resumes from the stored detector state.
label_trackers = Table(
    "label_trackers",
    metadata,
    Column("model_name", String(64), primary_key=True),
    Column("model_version", String(64), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("detector", JsonType, nullable=False),
    Column("window_seq", Integer, nullable=False),
    Column("window_count", Integer, nullable=False),
    Column("evaluated_through", Integer, nullable=False),
    Column("labels_total", BigInteger, nullable=False),
    Column("alarms", JsonType, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Performance history: ``labelled`` rows are completed windows of labels (realized figures and
# the estimate over the same predictions); ``estimated`` rows the label-free estimate over the
# latest predictions, recorded once per window of predictions.
performance_results = Table(
    "performance_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(64), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("window_seq", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("realized", JsonType, nullable=True),
    Column("estimated", JsonType, nullable=True),
    Column("concept", JsonType, nullable=True),
    UniqueConstraint(
        "model_name", "kind", "window_seq", name="uq_performance_results_model_kind_seq"
    ),
    Index("ix_performance_results_model_created", "model_name", "created_at"),
)
