"""`mlobs ingest`: a generated month of churn predictions (drift injected in its third week) is
backfilled with daily periods; the drift history shows the drift in that week's periods only,
each period's figures equal `POST /monitoring/drift/check` over the same rows, labels give each
period's realized figures, no alert is opened, the live window is untouched, and a second run
stores nothing twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mlobs.cli import app as cli
from mlobs.config import Settings
from mlobs.data import DATASETS, DriftSpec, generate
from mlobs.models.registry import ModelRegistry

pytestmark = pytest.mark.slow
SPEC = DATASETS["churn"]
DAYS, PER_DAY = 28, 400
START = datetime(2026, 11, 2, tzinfo=timezone.utc)


def _month(model_dir: Path, path: Path) -> pd.DataFrame:
    model = ModelRegistry.load(model_dir, ["churn"]).get("churn")
    days = []
    for d in range(DAYS):
        drift = DriftSpec.preset("churn", 0.9) if 14 <= d < 21 else None
        day = generate("churn", PER_DAY, seed=100 + d, drift=drift)
        day["ts"] = [START + timedelta(days=d, seconds=int(s))
                     for s in np.linspace(0, 86_000, PER_DAY)]  # fmt: skip
        days.append(day)
    month = pd.concat(days, ignore_index=True)
    out = model.predict_frame(month[SPEC.feature_names])
    month["proba"], month["pred"] = out.probabilities, out.values.astype(int)
    month["id"] = [f"row-{i}" for i in range(len(month))]
    month.to_parquet(path)
    return month


def _ingest(settings: Settings, path: Path) -> Any:
    return CliRunner().invoke(
        cli,
        ["ingest", "churn", str(path), "--timestamp-col", "ts", "--id-col", "id",
         "--prediction-col", "pred", "--probability-col", "proba", "--label-col", SPEC.target,
         "--period", "day"],
        env={"DATABASE_URL": settings.resolved_database_url, "MODEL_DIR": str(settings.model_dir),
             "COLUMNS": "200", "LOG_LEVEL": "WARNING"},
    )  # fmt: skip


def test_a_month_backfilled_by_day_shows_the_drifted_week_only(
    settings_factory: Callable[..., Settings],
    app_factory: Callable[..., TestClient],
    db_url: str,
    tmp_path: Path,
) -> None:
    settings = settings_factory(database_url=db_url)
    month = _month(Path(settings.model_dir), tmp_path / "month.parquet")
    first = _ingest(settings, tmp_path / "month.parquet")
    assert first.exit_code == 0, first.output
    assert f"{DAYS * PER_DAY:,} new" in first.output

    client = app_factory(database_url=db_url, model_dir=settings.model_dir)
    history = client.get("/monitoring/drift/history/churn", params={"limit": 100}).json()["results"]
    periods = sorted((r for r in history if r["dataset_name"] == "backfill"),
                     key=lambda r: r["window_start"])  # fmt: skip
    assert len(periods) == DAYS
    drifted = [datetime.fromisoformat(r["window_start"]).date() for r in periods
               if r["dataset_drift"]]  # fmt: skip
    assert drifted == [(START + timedelta(days=d)).date() for d in range(14, 21)]
    assert all(r["n_rows"] == PER_DAY for r in periods)

    # A period's figures are those of a posted check over the same rows.
    day = 16
    rows = month.iloc[day * PER_DAY : (day + 1) * PER_DAY][SPEC.feature_names]
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()}
               for r in rows.to_dict("records")]  # fmt: skip
    assert client.get("/monitoring/alerts", params={"model": "churn"}).json()["alerts"] == []
    check = client.post("/monitoring/drift/check", json={"model_name": "churn", "records": records})
    assert check.status_code == 200, check.text
    mine = periods[day]["report"]
    assert mine["drift_share"] == pytest.approx(check.json()["drift"]["drift_share"])
    for name, feature in check.json()["drift"]["features"].items():
        assert mine["features"][name]["score"] == pytest.approx(feature["score"]), name

    perf = client.get("/monitoring/performance/churn").json()
    backfill = perf["backfill_history"]
    assert len(backfill) == min(DAYS, 20)  # the default history length
    assert all(0 < p["realized"]["accuracy"] <= 1 for p in backfill)
    assert client.app.state.runtime.drift.store.open_window("churn") is None  # type: ignore[attr-defined]

    # The report shows the history, periods in event time.
    report = CliRunner().invoke(
        cli, ["report", "--model", "churn", "--format", "json", "--out", str(tmp_path / "r.json")],
        env={"DATABASE_URL": settings.resolved_database_url, "MODEL_DIR": str(settings.model_dir),
             "COLUMNS": "200", "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    assert report.exit_code == 0, report.output
    shown = json.loads((tmp_path / "r.json").read_text())["models"][0]["history"]
    assert sum(h["dataset_name"] == "backfill" and h["window_start"] is not None
               for h in shown) == DAYS  # fmt: skip

    again = _ingest(settings, tmp_path / "month.parquet")
    assert again.exit_code == 0 and "0 new" in again.output, again.output
    history = client.get("/monitoring/drift/history/churn", params={"limit": 100}).json()["results"]
    assert sum(r["dataset_name"] == "backfill" for r in history) == DAYS


def test_bad_files_are_named(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory()
    frame = generate("churn", 5, seed=1)
    frame["ts"] = ["2026-11-01T00:00:00Z", "yesterday", "2026-11-01", "2026-11-02", "2026-11-03"]
    frame["pred"] = 1
    frame.to_csv(tmp_path / "bad.csv", index=False)
    out = CliRunner().invoke(
        cli, ["ingest", "churn", str(tmp_path / "bad.csv"), "--timestamp-col", "ts",
              "--prediction-col", "pred"],
        env={"DATABASE_URL": settings.resolved_database_url, "MODEL_DIR": str(settings.model_dir),
             "COLUMNS": "200"},
    )  # fmt: skip
    assert out.exit_code == 2 and "'yesterday' is not a time" in out.output, out.output
    out = CliRunner().invoke(
        cli, ["ingest", "churn", str(tmp_path / "bad.csv"), "--timestamp-col", "when",
              "--prediction-col", "pred"],
        env={"DATABASE_URL": settings.resolved_database_url, "MODEL_DIR": str(settings.model_dir),
             "COLUMNS": "200"},
    )  # fmt: skip
    assert out.exit_code == 2 and "no columns ['when']" in out.output, out.output
