"""`mlobs simulate` against a real server process: drifted traffic at a fixed rate ends with drift
detected and an alert open; an unreachable API is one clear line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import cancer_booster, eventually, free_port, serve_process

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


def _run(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "simulate_traffic.py"), *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path, model_dir: Path) -> Iterator[str]:
    """`mlobs serve` with small live windows: 250 rows, judged from 200."""
    env = {
        "MODEL_DIR": str(model_dir),
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'mlobs.db'}",
        "LOG_LEVEL": "WARNING",
        "DRIFT_WINDOW_SIZE": "250",
        "DRIFT_MIN_SAMPLES": "200",
        "PERFORMANCE_MIN_LABELS": "20",
    }
    with serve_process(tmp_path, env) as (url, _):
        yield url


def test_drifted_traffic_ends_with_drift_detected_and_an_alert_open(
    server: str, tmp_path: Path
) -> None:
    # 15/s per model for 20 s after a 2 s ramp: 285 rows per model, so each model's window of
    # 250 rows closes (at ~17.7 s) during the run.
    out = _run(
        "--url", server, "--duration", "20", "--rate", "15", "--drift", "0.3", "--ramp", "2",
        "--feedback", "0.2", "--feedback-delay", "1", "--settle", "3",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert "Drift detected" in out.stdout
    assert "Alerts raised during the run" in out.stdout
    assert "285" in out.stdout  # planned per model

    for model in ("fraud", "price", "churn"):
        history = httpx.get(f"{server}/monitoring/drift/history/{model}", timeout=10).json()
        assert history["results"] and history["results"][0]["dataset_drift"], history
        alerts = httpx.get(
            f"{server}/monitoring/alerts",
            params={"status": "active", "model": model},
            timeout=10,
        ).json()["alerts"]
        assert {a["alert_type"] for a in alerts} & {"drift_detected", "drift_critical"}, alerts
        assert f"{model}" in out.stdout

    # Late labels reached the service (~20% of 285 per model).
    def labelled() -> dict[str, Any] | None:
        perf: dict[str, Any] = httpx.get(
            f"{server}/monitoring/performance/churn", timeout=10
        ).json()
        return perf if perf["labels"]["total"] >= 30 else None

    perf = eventually(labelled, interval=0.5, message="fewer than 30 labels for churn")
    assert 30 <= perf["labels"]["total"] <= 285


def test_an_unreachable_api_is_one_clear_line_and_exit_code_2(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    out = _run("--url", url, "--duration", "5", cwd=tmp_path, timeout=120)
    assert out.returncode == 2
    text = out.stdout + out.stderr
    assert f"cannot reach the mlobs API at {url}" in text
    assert "Traceback" not in text


def test_a_registered_model_gets_traffic_drawn_from_its_reference_sample(
    tmp_path: Path, model_dir: Path
) -> None:
    """A user's model (not the generator's): rows come from its reference sample, drifted in
    ways any schema can take, labelled with the sample's own labels."""
    import shutil

    from mlobs.tools.register import register_local

    models = tmp_path / "models"
    shutil.copytree(model_dir / "fraud", models / "fraud")
    cancer_booster(tmp_path)
    register_local(models, "cancer", reference=tmp_path / "reference.parquet", target="target",
                   artifact=tmp_path / "model.ubj")  # fmt: skip
    env = {"MODEL_DIR": str(models), "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING",
           "DRIFT_WINDOW_SIZE": "200", "DRIFT_MIN_SAMPLES": "200"}  # fmt: skip
    with serve_process(tmp_path, env) as (url, _):
        out = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "simulate_traffic.py"), "--url", url,
             "--models", "cancer", "--duration", "15", "--rate", "15", "--drift", "0.6",
             "--feedback", "0.5", "--feedback-delay", "1", "--settle", "3"],
            cwd=tmp_path, env={**os.environ, **env, "COLUMNS": "200"}, capture_output=True,
            text=True, timeout=240, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Drift detected" in out.stdout
        history = httpx.get(f"{url}/monitoring/drift/history/cancer", timeout=10).json()
        assert history["results"] and history["results"][0]["dataset_drift"], history

        def labelled() -> dict[str, Any] | None:
            perf: dict[str, Any] = httpx.get(
                f"{url}/monitoring/performance/cancer", timeout=10
            ).json()
            return perf if perf["labels"]["total"] >= 30 else None

        perf = eventually(labelled, interval=0.5, message="the sample's labels never arrived")
        assert perf["labels"]["total"] <= 225
    # Without MODEL_DIR holding its sample, a catalogue model cannot be simulated: a clear error.
    bad = _run("--url", "http://127.0.0.1:1", "--models", "weather", cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "no reference sample" in bad.stdout + bad.stderr
