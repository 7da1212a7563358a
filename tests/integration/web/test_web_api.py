"""The web page's own endpoints: the page and its assets, per-feature histograms against the
reference (on SQLite and PostgreSQL), and per-model traffic and latency."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from helpers import eventually, sample_records
from mlobs.api.routes.web import quantile
from mlobs.data import DATASETS, DriftSpec, generate


def _drifted(name: str, n: int, intensity: float, seed: int = 21) -> list[dict[str, Any]]:
    df = generate(name, n, seed=seed, drift=DriftSpec.preset(name, intensity))
    df = df[DATASETS[name].feature_names]
    return [
        {str(k): (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")
    ]


def _histograms(client: TestClient, model: str, **params: str) -> dict[str, Any]:
    r = client.get(f"/monitoring/drift/histograms/{model}", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _wait(client: TestClient, model: str, cond: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    def there() -> dict[str, Any] | None:
        body = _histograms(client, model)
        return body if cond(body) else None

    return eventually(
        there,
        interval=0.1,
        message=lambda: f"histograms never got there: {_histograms(client, model)['window']}",
    )


def test_the_page_and_its_assets_come_from_the_app_and_stay_out_of_openapi(
    client: TestClient,
) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert '<script src="/static/dashboard.js"' in page.text
    assert 'href="/static/dashboard.css"' in page.text
    js = client.get("/static/dashboard.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    css = client.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    # Nothing from elsewhere: the only absolute URL is the SVG namespace, which is not fetched.
    for body in (page.text, js.text, css.text):
        assert set(re.findall(r"https?://[^\s\"'`)]+", body)) <= {"http://www.w3.org/2000/svg"}
        assert "@import" not in body
        # Data reaches the DOM as text only: no markup parsing anywhere.
        assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", body)
    for name in ("index.html", "..%2Fapp.py", "nothing.js"):
        assert client.get(f"/static/{name}").status_code == 404, name
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)
    hist = paths["/monitoring/drift/histograms/{model}"]["get"]
    assert {"200", "404", "422"} <= set(hist["responses"]) and hist["tags"] == ["monitoring"]
    assert paths["/monitoring/traffic"]["get"]["tags"] == ["monitoring"]


def test_histograms_before_any_traffic_show_the_reference_alone(client: TestClient) -> None:
    body = _histograms(client, "churn")
    assert body["window"] is None and body["window_id"] is None and body["n_rows"] == 0
    assert [f["feature"] for f in body["features"]] == DATASETS["churn"].feature_names
    for f in body["features"]:
        assert f["current"] is None and f["status"] == "insufficient_data"
        assert f["bins"][-1] == "(missing)" and len(f["bins"]) == len(f["reference"])
        assert sum(f["reference"]) == pytest.approx(1.0)
        if f["kind"] == "categorical":
            assert f["bins"][-2] == "(unseen)" and f["edges"] is None
        else:
            assert len(f["edges"]) == len(f["bins"]) - 2  # n edges make n+1 bins, + (missing)
    assert body["prediction"]["kind"] == "numeric"
    missing = client.get("/monitoring/drift/histograms/weather")
    assert missing.status_code == 404 and missing.json()["detail"][0]["type"] == "not_found"
    bad = client.get("/monitoring/drift/histograms/churn", params={"window": "yesterday"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "window"]


def test_histograms_follow_the_open_window_then_the_closed_one(
    db_url: str, app_factory: Callable[..., TestClient]
) -> None:
    client = app_factory(database_url=db_url, drift_window_size=300, drift_min_samples=100,
                         drift_flush_interval=0.1)  # fmt: skip
    first = _drifted("fraud", 120, 0.8)
    for rec in first[:30]:
        rec["amount"] = None
    r = client.post("/predict/batch", json={"model_name": "fraud", "records": first})
    assert r.status_code == 200

    body = _wait(client, "fraud", lambda b: b["window"] == "open" and b["n_rows"] == 120)
    assert body["evaluated_at"] is None
    amount = next(f for f in body["features"] if f["feature"] == "amount")
    assert amount["missing"] >= 30 and amount["count"] + amount["missing"] == 120
    assert amount["current"][-1] == pytest.approx(amount["missing"] / 120)
    for f in body["features"]:
        assert sum(f["current"]) == pytest.approx(1.0), f["feature"]
    # 90 non-missing values are below the minimum of 100; the others are scored, drifted ones too.
    assert amount["status"] == "insufficient_data" and amount["score"] is None
    scored = [f for f in body["features"] if f["score"] is not None]
    assert scored and any(f["drifted"] for f in scored)
    assert sum(body["prediction"]["current"]) == pytest.approx(1.0)

    more = _drifted("fraud", 200, 0.8, seed=22)
    assert (
        client.post("/predict/batch", json={"model_name": "fraud", "records": more}).status_code
        == 200
    )
    body = _wait(client, "fraud", lambda b: b["window"] == "closed")
    result = client.get("/monitoring/drift/history/fraud").json()["results"][0]
    assert body["window_id"] == result["window_id"] and body["n_rows"] == result["n_rows"] == 320
    assert body["evaluated_at"] is not None
    stored = result["report"]["features"]
    for f in body["features"]:
        verdict = stored[f["feature"]]
        assert (f["status"], f["score"], f["method"]) == (
            verdict["status"], verdict["score"], verdict["method"],
        )  # fmt: skip
        if verdict["current"]:  # the stored proportions are over non-missing values
            present = 1 - f["current"][-1]
            assert [c / present for c in f["current"][:-1]] == pytest.approx(verdict["current"])
    # No traffic since: there is no open window to show.
    assert _histograms(client, "fraud", window="open")["window"] is None
    assert _histograms(client, "fraud", window="closed")["window_id"] == result["window_id"]


def test_a_closed_window_on_a_replaced_reference_is_not_drawn_on_the_new_bins(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory(drift_window_size=150, drift_min_samples=100, drift_flush_interval=0.1)
    records = sample_records("churn", 160, seed=4)
    assert (
        client.post("/predict/batch", json={"model_name": "churn", "records": records}).status_code
        == 200
    )
    _wait(client, "churn", lambda b: b["window"] == "closed")
    shifted = _drifted("churn", 300, 0.6)
    assert client.post("/monitoring/reference/churn", json={"records": shifted}).status_code == 200
    body = _histograms(client, "churn")
    assert body["window"] is None and all(f["current"] is None for f in body["features"])


def test_traffic_counts_predictions_and_estimates_latency_per_model(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory()
    for rec in sample_records("fraud", 5, seed=1):
        assert client.post("/predict/fraud", json=rec).status_code == 200
    batch = sample_records("price", 10, seed=1)
    assert (
        client.post("/predict/batch", json={"model_name": "price", "records": batch}).status_code
        == 200
    )
    r = client.get("/monitoring/traffic")
    assert r.status_code == 200
    models = r.json()["models"]
    assert set(models) == {"fraud", "price", "churn"}
    fraud = models["fraud"]
    assert fraud["predictions"] == 5 and fraud["errors"] == 0
    lat = fraud["latency"]
    assert lat["count"] == 5 and lat["mean_ms"] > 0
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"]
    assert models["price"]["predictions"] == 10
    assert models["price"]["latency"]["count"] == 0  # batches are timed apart
    assert models["churn"] == {
        "predictions": 0, "errors": 0,
        "latency": {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None},
    }  # fmt: skip


def test_quantile_interpolates_within_buckets_like_prometheus() -> None:
    inf = float("inf")
    assert quantile([], 0.5) is None
    assert quantile([(1.0, 0), (inf, 0)], 0.5) is None
    assert quantile([(1.0, 10), (2.0, 10), (inf, 10)], 0.5) == pytest.approx(0.5)
    assert quantile([(1.0, 0), (2.0, 10), (inf, 10)], 0.9) == pytest.approx(1.9)
    assert quantile([(1.0, 5), (2.0, 5), (inf, 10)], 0.99) == 2.0  # in +Inf: the last bound


def test_the_page_and_its_reads_stay_open_when_the_server_has_api_keys(
    app_factory: Callable[..., TestClient],
) -> None:
    client = app_factory(api_keys="web-admin-key-1:admin")
    for path in ("/", "/static/dashboard.js", "/static/dashboard.css",
                 "/monitoring/drift/histograms/fraud", "/monitoring/traffic"):  # fmt: skip
        assert client.get(path).status_code == 200, path
