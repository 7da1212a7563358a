"""Settings, read once from the environment (and an optional ``.env``) by the API and the CLI.

Lower layers never import this module: they receive plain values (paths, URLs, numbers).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Every knob of mlobs. Environment variables use the field name in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", protected_namespaces=()
    )

    log_level: LogLevel = Field("INFO", description="Logging level of the service and the CLI.")
    model_dir: Path = Field(Path("models"), description="Where trained models are stored.")
    data_dir: Path = Field(Path("data"), description="Where generated data and SQLite live.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the prediction log. Default: SQLite file in DATA_DIR.",
    )

    reference_sample_rows: int = Field(
        10_000, ge=100, description="Rows of the reference kept with a registered model (Parquet)."
    )
    max_upload_bytes: int = Field(
        512 * 1024 * 1024,
        ge=1024,
        description="Largest upload `POST /models` accepts (the artifact and the data files).",
    )
    catalog_poll_seconds: float = Field(
        5.0, gt=0, description="How often each worker looks for a changed model catalogue."
    )
    kserve_pair_seconds: float = Field(
        300.0,
        gt=0,
        description="How long half of a KServe payload-logger event (a request or a response) "
        "waits for its other half before it is dropped and counted.",
    )

    host: str = Field("127.0.0.1", description="Address `mlobs serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `mlobs serve` listens on.")

    environment: Literal["development", "production"] = Field(
        "development",
        description="production: the service refuses to start without API_KEYS unless "
        "ALLOW_OPEN=true.",
    )
    api_keys: str = Field(
        "",
        repr=False,
        description='API keys with scopes: "key1:admin,key2:predict+feedback" (no scopes: all). '
        "Unset: the API is open.",
    )
    allow_open: bool = Field(False, description="In production, run without API keys on purpose.")
    predict_requires_key: bool = Field(
        False, description="With API_KEYS set, predictions need a key with the predict scope."
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest request body accepted (else 413)."
    )
    max_batch_records: int = Field(
        10_000, ge=1, description="Most records one /predict/batch request may carry."
    )
    log_queue_size: int = Field(
        100_000, ge=1, description="Predictions that may wait for the database before drops."
    )
    log_batch_size: int = Field(500, ge=1, description="Most rows one log insert writes.")
    log_flush_interval: float = Field(
        0.2, gt=0, description="Seconds the log writer waits to fill a batch before writing."
    )

    log_writer_process: bool = Field(
        True,
        description=(
            "Run the prediction log's inserts in a child process, off the serving process's "
            "GIL (false: in a thread of the serving process)."
        ),
    )
    drift_process: bool = Field(
        True,
        description=(
            "Push, close and evaluate the live drift windows (and judge their verdicts' alert "
            "rules) in a child process, off the serving process's GIL (false: in its flush "
            "thread)."
        ),
    )

    drift_window_size: int = Field(
        500, ge=1, description="Rows after which a model's live drift window closes."
    )
    drift_window_seconds: float = Field(
        300.0, ge=0, description="Seconds after which a live window closes anyway (0: never)."
    )
    drift_min_samples: int = Field(
        500, ge=1, description="Rows a live window needs for a drift verdict."
    )
    drift_check_min_samples: int = Field(
        100, ge=1, description="Rows a posted drift check needs per feature for a verdict."
    )
    drift_flush_interval: float = Field(
        1.0, gt=0, description="Seconds between pushes of live counts to the shared window."
    )
    psi_threshold_warning: float = Field(0.1, gt=0, description="PSI warning threshold.")
    psi_threshold_critical: float = Field(0.2, gt=0, description="PSI critical threshold.")
    js_threshold_warning: float = Field(0.1, gt=0, le=1, description="JS distance warning.")
    js_threshold_critical: float = Field(0.2, gt=0, le=1, description="JS distance critical.")
    drift_share_threshold: float = Field(
        0.3, gt=0, le=1, description="Share of drifted features that makes the data set drift."
    )

    drift_numeric_method: Literal["psi", "ks", "wasserstein"] = Field(
        "psi", description="Drift method for numeric features."
    )
    drift_categorical_method: Literal["jensenshannon", "chi2"] = Field(
        "jensenshannon", description="Drift method for categorical features."
    )
    performance_window_size: int = Field(
        1_000, ge=10, description="Labels per performance window (realized figures, alerts)."
    )
    performance_min_labels: int = Field(
        100, ge=1, description="Labels (or predictions, for the estimate) before figures are given."
    )
    performance_estimate_window: int = Field(
        1_000, ge=10, description="Latest predictions the label-free performance estimate covers."
    )
    performance_estimate_interval: float = Field(
        15.0, gt=0, description="Seconds between label-free estimates."
    )
    alert_drift_warning_share: float = Field(
        0.2, gt=0, le=1, description="Drift share above which drift_detected (warning) opens."
    )
    alert_drift_critical_share: float = Field(
        0.3, gt=0, le=1, description="Drift share above which it escalates to drift_critical."
    )
    alert_missing_share: float = Field(
        0.10, gt=0, le=1, description="Missing share above which data_quality_issue fires."
    )
    alert_latency_p99_seconds: float = Field(
        0.5, gt=0, description="p99 prediction latency above which high_latency fires."
    )
    alert_latency_window: int = Field(
        1_000, ge=10, description="Recent predictions per model the latency p99 is taken over."
    )
    alert_rules_file: Path | None = Field(
        None, description="YAML file of per-model alert thresholds and severities."
    )
    webhook_urls: str = Field(
        "", description="Comma-separated URLs that receive every alert as generic JSON."
    )
    slack_webhook_url: str | None = Field(None, description="Slack incoming-webhook URL.")
    alertmanager_url: str | None = Field(
        None, description="Base URL of a Prometheus Alertmanager (alerts go to /api/v2/alerts)."
    )
    notification_timeout: float = Field(
        5.0, gt=0, le=120, description="Seconds each notification call may take."
    )
    alert_resolve_after: int = Field(
        3, ge=1, description="Consecutive clear evaluations after which an alert resolves."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v

    @property
    def resolved_database_url(self) -> str:
        """DATABASE_URL, or a SQLite file in DATA_DIR when it is unset."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'mlobs.db').resolve()}"


def configure_logging(level: str) -> None:
    """Configure the root logger once, at the edge (CLI start or app creation)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger("mlobs").setLevel(level)
    # Libraries' progress lines (a line per migration step, per HTTP request) are noise at INFO.
    for noisy in ("alembic", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
