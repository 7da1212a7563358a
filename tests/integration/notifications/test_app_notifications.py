"""The service notifies through its configured webhook, and a silence holds notifications back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from helpers import eventually
from integration.notifications.receiver import Receiver
from mlobs.data import DATASETS, DriftSpec, generate


def _drifted(name: str, n: int) -> list[dict[str, Any]]:
    df = generate(name, n, seed=21, drift=DriftSpec.preset(name, 0.8))[DATASETS[name].feature_names]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]


def _wait_alert(client: TestClient, model: str) -> dict[str, Any]:
    def first() -> dict[str, Any] | None:
        alerts = client.get("/monitoring/alerts", params={"model": model}).json()["alerts"]
        return alerts[0] if alerts else None  # type: ignore[no-any-return]

    return eventually(first, interval=0.1, message=f"no alert for {model}")


def test_drift_alert_reaches_the_webhook_and_silences_hold_it_back(
    app_factory: Callable[..., TestClient],
) -> None:
    with Receiver() as hook:
        client = app_factory(webhook_urls=hook.url, drift_window_size=500, drift_flush_interval=0.1)
        silence = client.post("/monitoring/silences", json={
            "model_name": "price", "duration_seconds": 3600, "created_by": "ann",
            "comment": "price is being retrained",
        })  # fmt: skip
        assert silence.status_code == 201
        for name in ("fraud", "price"):
            r = client.post(
                "/predict/batch", json={"model_name": name, "records": _drifted(name, 520)}
            )
            assert r.status_code == 200
        fraud, price = _wait_alert(client, "fraud"), _wait_alert(client, "price")
        got = hook.wait_for(1)
        assert got[0].body["event"] == "opened"
        assert got[0].body["alert"]["id"] == fraud["id"]
        # The price alert is recorded and counted, but silenced: never sent.
        assert price["status"] == "active"
        metric = client.app.state.runtime.registry.get_sample_value  # type: ignore[attr-defined]
        eventually(
            lambda: metric(
                "mlobs_notifications_total", {"channel": "webhook", "outcome": "silenced"}
            ),
            message="the silenced notification was never counted",
        )
        assert [r.body["alert"]["model_name"] for r in hook.requests] == ["fraud"]
        # Resolving by hand sends the resolve.
        client.post(f"/monitoring/alerts/{fraud['id']}/resolve", json={"by": "ann"})
        assert hook.wait_for(2)[1].body["event"] == "resolved"
