"""Alert endpoints, and alerts raised by live drift and by a checked batch, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from helpers import eventually, sample_records
from mlobs.data import DATASETS, DriftSpec, generate


def _drifted(name: str, n: int, intensity: float) -> list[dict[str, Any]]:
    df = generate(name, n, seed=11, drift=DriftSpec.preset(name, intensity))
    df = df[DATASETS[name].feature_names]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def _wait_alerts(client: TestClient, **params: str) -> list[dict[str, Any]]:
    def alerts() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = client.get("/monitoring/alerts", params=params).json()[
            "alerts"
        ]
        return found

    return eventually(alerts, interval=0.1, message=f"no alert for {params}")


@pytest.mark.parametrize("drift_process", [False, True], ids=["thread", "process"])
def test_live_drift_raises_one_alert_that_escalates_and_is_handled(
    db_url: str, app_factory: Callable[..., TestClient], drift_process: bool
) -> None:
    """The live window is evaluated, and its alert judged, in the flush thread or in the child
    process; either way the alert, its metrics and its lifecycle are the same here."""
    client = app_factory(database_url=db_url, drift_window_size=500, drift_flush_interval=0.1,
                         drift_process=drift_process)  # fmt: skip
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert (runtime.window_process is not None) == drift_process
    r = client.post(
        "/predict/batch", json={"model_name": "fraud", "records": _drifted("fraud", 520, 0.8)}
    )
    assert r.status_code == 200
    alerts = _wait_alerts(client, model="fraud")
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["alert_type"] == "drift_critical" and alert["severity"] == "critical"
    assert alert["status"] == "active" and alert["scope"] == "live"
    assert alert["value"] > 0.3 and "drifted:" in alert["message"]
    metric = client.app.state.runtime.registry.get_sample_value  # type: ignore[attr-defined]
    # The metrics follow the stored alert on the monitor's thread: wait for them.
    eventually(
        lambda: metric("mlobs_active_alerts", {"model_name": "fraud"}) == 1,
        message="mlobs_active_alerts never reached 1",
    )
    assert metric("mlobs_alerts_total", {"model_name": "fraud", "alert_type": "drift_critical",
                                         "severity": "critical"}) == 1  # fmt: skip

    aid = alert["id"]
    detail = client.get(f"/monitoring/alerts/{aid}").json()
    assert [e["kind"] for e in detail["events"]] == ["opened"]
    ack = client.post(
        f"/monitoring/alerts/{aid}/acknowledge", json={"by": "ann", "note": "looking"}
    )
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    assert ack.json()["acknowledged_by"] == "ann"
    again = client.post(f"/monitoring/alerts/{aid}/acknowledge")
    assert again.status_code == 409 and again.json()["current"] == "acknowledged"
    done = client.post(f"/monitoring/alerts/{aid}/resolve")  # an empty body is fine
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    assert done.json()["resolved_by"] == "anonymous"
    assert [e["kind"] for e in done.json()["events"]] == ["opened", "acknowledged", "resolved"]
    assert client.post(f"/monitoring/alerts/{aid}/resolve").status_code == 409
    assert metric("mlobs_active_alerts", {"model_name": "fraud"}) == 0
    summary = client.get("/monitoring/alerts/summary").json()
    assert summary["by_status"] == {"resolved": 1} and summary["by_model"] == {}


def test_a_checked_batch_with_missing_values_raises_a_quality_alert(client: TestClient) -> None:
    records = sample_records("churn", 200, seed=2)
    for r in records[:50]:
        r["tenure_months"] = None
    assert client.post("/monitoring/quality/check",
                       json={"model_name": "churn", "records": records}).status_code == 200  # fmt: skip
    alerts = client.get("/monitoring/alerts", params={"type": "data_quality_issue"}).json()
    assert alerts["total"] == 1
    a = alerts["alerts"][0]
    assert a["scope"] == "request" and "tenure_months" in a["message"]
    assert a["value"] > 0.1


def test_filters_paging_and_errors(client: TestClient) -> None:
    body = client.get("/monitoring/alerts", params={"status": "active", "limit": 5}).json()
    assert body == {"total": 0, "limit": 5, "offset": 0, "alerts": []}
    assert client.get("/monitoring/alerts", params={"status": "sleeping"}).status_code == 422
    assert client.get("/monitoring/alerts", params={"limit": 0}).status_code == 422
    r = client.get("/monitoring/alerts/nope")
    assert r.status_code == 404 and r.json()["detail"][0]["type"] == "not_found"
    assert client.post("/monitoring/alerts/nope/acknowledge").status_code == 404
    r = client.post("/monitoring/alerts/nope/resolve", json={"by": "x", "colour": "red"})
    assert r.status_code == 422
