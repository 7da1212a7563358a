"""`mlobs report`: the latest closed live window, from the local database or a running API, as
HTML and JSON with the figures the service stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mlobs.cli import app
from mlobs.data import DriftSpec, generate
from mlobs.tools.report import MODEL_KEYS, REPORT_KEYS, from_api, from_database
from mlobs.tools.simulate import json_records


def _drifted_window(client: TestClient, rows: int = 200) -> dict[str, Any]:
    """One closed live window of drifted fraud traffic; the API's stored result for it."""
    df = generate("fraud", rows, seed=3, drift=DriftSpec.preset("fraud", 0.5))
    records = json_records(df, [c for c in df.columns if c != "is_fraud"])
    r = client.post("/predict/batch", json={"model_name": "fraud", "records": records})
    assert r.status_code == 200, r.text
    client.app.state.runtime.flush_drift()  # type: ignore[attr-defined]
    results = client.get("/monitoring/drift/history/fraud", params={"limit": 1}).json()["results"]
    assert results and results[0]["n_rows"] == rows
    result: dict[str, Any] = results[0]
    return result


def _app(app_factory: Callable[..., TestClient], db: str) -> TestClient:
    return app_factory(
        database_url=db, drift_window_size=200, drift_min_samples=100, drift_flush_interval=3600
    )


def test_database_and_api_give_the_stored_result(
    app_factory: Callable[..., TestClient], tmp_path: Path, model_dir: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'mlobs.db'}"
    client = _app(app_factory, db)
    stored = _drifted_window(client)

    local = from_database(db, model_dir, ["fraud", "price"])
    assert tuple(local) == REPORT_KEYS
    assert local["models_without_result"] == ["price"]
    (entry,) = local["models"]
    assert tuple(entry) == MODEL_KEYS
    assert entry["window_id"] == stored["window_id"] and entry["n_rows"] == 200
    assert entry["status"] == stored["status"] == "critical" and entry["dataset_drift"]
    assert entry["drift_share"] == stored["drift_share"]
    api_features = stored["report"]["features"]
    assert {f["feature"] for f in entry["features"]} == set(api_features)
    for f in entry["features"]:
        assert f["score"] == api_features[f["feature"]]["score"]
        assert f["status"] == api_features[f["feature"]]["status"]
        assert f["current"] == api_features[f["feature"]]["current"]
    assert entry["reference"]["rows"] > 0

    remote = from_api("http://testserver", ["fraud", "price"], client=client)
    assert remote["models"] == local["models"]


def test_cli_writes_html_and_json(
    app_factory: Callable[..., TestClient], tmp_path: Path, model_dir: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'mlobs.db'}"
    stored = _drifted_window(_app(app_factory, db))
    env = {"DATABASE_URL": db, "MODEL_DIR": str(model_dir), "LOG_LEVEL": "WARNING"}
    runner = CliRunner()

    html_out = tmp_path / "out" / "report.html"
    res = runner.invoke(app, ["report", "--model", "fraud", "--out", str(html_out)], env=env)
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "fraud (critical)" in res.output
    page = html_out.read_text()
    srcs: list[str | None] = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            srcs.extend(v for k, v in attrs if k in ("src", "href"))

    Parser().feed(page)
    assert srcs == [] and "http://" not in page and "https://" not in page
    for name, f in stored["report"]["features"].items():
        assert f">{name}<" in page
        assert f"{f['score']:.4f}" in page
    assert page.count('class="badge critical"') >= stored["drifted_features_count"]

    res = runner.invoke(app, ["report", "-m", "fraud", "--format", "json"], env=env)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert tuple(data) == REPORT_KEYS
    assert data["models"][0]["drift_share"] == stored["drift_share"]
    assert {f["feature"]: f["score"] for f in data["models"][0]["features"]} == {
        n: f["score"] for n, f in stored["report"]["features"].items()
    }


def test_cli_without_a_database_or_a_result_says_so(tmp_path: Path, model_dir: Path) -> None:
    runner = CliRunner()
    env = {"DATA_DIR": str(tmp_path / "nothing"), "MODEL_DIR": str(model_dir)}
    res = runner.invoke(app, ["report", "--model", "fraud"], env={**env, "DATABASE_URL": ""})
    assert res.exit_code == 1
    assert "no database at" in res.output
    bad = runner.invoke(app, ["report", "--format", "pdf"], env=env)
    assert bad.exit_code == 2
