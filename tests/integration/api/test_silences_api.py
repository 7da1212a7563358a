"""Silences through the API, and the silencer's view of them (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient

from mlobs.monitoring.alerts import Alert


def _alert(model: str, kind: str) -> Alert:
    t = datetime.now(timezone.utc)
    return Alert("a1", f"{model}/x/live", model, "x", kind, "live", "warning", "active", 0.3,
                 0.2, "m", t, t, t)  # fmt: skip


def test_create_list_get_and_expire(client: TestClient) -> None:
    r = client.post("/monitoring/silences", json={
        "model_name": "fraud", "alert_type": "drift_detected", "duration_seconds": 3600,
        "created_by": "ann", "comment": "retraining",
    })  # fmt: skip
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["status"] == "active" and s["created_by"] == "ann"
    silencer = client.app.state.runtime.silences  # type: ignore[attr-defined]
    assert silencer.is_silenced(_alert("fraud", "drift_detected"))
    assert not silencer.is_silenced(_alert("fraud", "drift_critical"))
    assert not silencer.is_silenced(_alert("price", "drift_detected"))

    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    pending = client.post("/monitoring/silences", json={
        "alert_type": "high_latency", "starts_at": later,
        "ends_at": (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat(),
        "created_by": "bob", "comment": "maintenance",
    })  # fmt: skip
    assert pending.status_code == 201 and pending.json()["status"] == "pending"
    assert not silencer.is_silenced(_alert("churn", "high_latency"))

    listed = client.get("/monitoring/silences").json()["silences"]
    assert {x["id"] for x in listed} == {s["id"], pending.json()["id"]}
    active = client.get("/monitoring/silences", params={"status": "active"}).json()["silences"]
    assert [x["id"] for x in active] == [s["id"]]
    assert client.get(f"/monitoring/silences/{s['id']}").json()["comment"] == "retraining"

    gone = client.delete(f"/monitoring/silences/{s['id']}")
    assert gone.status_code == 200 and gone.json()["status"] == "expired"
    assert not silencer.is_silenced(_alert("fraud", "drift_detected"))
    again = client.delete(f"/monitoring/silences/{s['id']}")
    assert again.status_code == 409 and again.json()["current"] == "expired"


def test_bad_silences(client: TestClient) -> None:
    base = {"created_by": "ann", "comment": "c", "duration_seconds": 60}
    cases = [
        (base, ["body", "model_name"]),  # no matcher
        (base | {"model_name": "weather"}, ["body", "model_name"]),
        (base | {"model_name": "fraud", "ends_at": "2030-01-01T00:00:00Z"}, ["body", "ends_at"]),
        ({"model_name": "fraud", "created_by": "a", "comment": "c"}, ["body", "ends_at"]),
        (
            {
                "model_name": "fraud",
                "created_by": "a",
                "comment": "c",
                "starts_at": "2030-01-02T00:00:00Z",
                "ends_at": "2030-01-01T00:00:00Z",
            },
            ["body", "ends_at"],
        ),  # fmt: skip
        (base | {"model_name": "fraud", "ends_at": "2030-01-01T00:00:00"}, ["body", "ends_at"]),
        (base | {"model_name": "fraud", "duration_seconds": -1}, ["body", "duration_seconds"]),
        (base | {"model_name": "fraud", "colour": "red"}, ["body", "colour"]),
    ]
    for body, loc in cases:
        r = client.post("/monitoring/silences", json=body)
        assert r.status_code == 422, (body, r.text)
        assert loc in [e["loc"] for e in r.json()["detail"]], (body, r.json())
    assert client.get("/monitoring/silences/nope").status_code == 404
    assert client.delete("/monitoring/silences/nope").status_code == 404


def test_offsets_are_stored_as_utc_and_far_ends_are_refused(client: TestClient) -> None:
    r = client.post("/monitoring/silences", json={
        "model_name": "churn", "starts_at": "2030-01-01T05:00:00+05:00",
        "ends_at": "2030-01-01T07:00:00+05:00", "created_by": "a", "comment": "c",
    })  # fmt: skip
    assert r.status_code == 201
    got = client.get(f"/monitoring/silences/{r.json()['id']}").json()
    assert got["starts_at"].startswith("2030-01-01T00:00:00")
    assert got["ends_at"].startswith("2030-01-01T02:00:00")
    far = client.post("/monitoring/silences", json={
        "model_name": "churn", "starts_at": "9999-12-31T23:00:00Z", "duration_seconds": 86400,
        "created_by": "a", "comment": "c",
    })  # fmt: skip
    assert far.status_code == 422 and far.json()["detail"][0]["loc"] == ["body", "duration_seconds"]
    nul = client.post("/monitoring/silences", json={
        "model_name": "churn", "duration_seconds": 60, "created_by": "a\x00", "comment": "c",
    })  # fmt: skip
    assert nul.status_code == 422
    assert client.get("/monitoring/alerts", params={"offset": 10**20}).status_code == 422
