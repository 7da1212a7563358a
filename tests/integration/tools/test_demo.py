"""The demo, unattended and interactive: missing models trained, drift and alerts shown, an alert
acknowledged and resolved, late labels pulling realized performance below holdout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from mlobs.config import Settings
from mlobs.tools.demo import DemoOptions, run_demo

pytestmark = pytest.mark.slow


def test_demo_walks_through_drift_alerts_and_labels(model_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(model_dir, models)
    shutil.rmtree(models / "price")  # the demo trains what is missing
    settings = Settings(_env_file=None, model_dir=models, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    console = Console(record=True, width=160)
    pauses: list[int] = []

    out = run_demo(settings, DemoOptions(interactive=True), console, pause=lambda: pauses.append(1))

    assert out.trained == ["price"]
    assert (models / "price" / "reference.json").is_file()
    assert len(pauses) == 4  # between the five steps
    text = console.export_text()
    for heading in ("Serving predictions", "Drift report: fraud", "Late labels", "All alerts"):
        assert heading in text

    assert all(w["dataset_drift"] for w in out.drift.values())
    assert out.handled is not None and out.handled["status"] == "resolved"
    assert [e["kind"] for e in out.handled["events"]] == ["opened", "acknowledged", "resolved"]
    assert {e["by"] for e in out.handled["events"][1:]} == {"demo"}

    churn = out.performance["churn"]
    holdout = churn["holdout"]["accuracy"]
    assert churn["realized"]["metrics"]["accuracy"] < holdout - 0.05
    assert abs(churn["estimated"]["metrics"]["accuracy"] - holdout) < 0.05
    fraud = out.performance["fraud"]
    assert fraud["realized"]["metrics"]["roc_auc"] < fraud["alert_rule"]["bound"]

    kinds = {(a["model_name"], a["alert_type"], a["status"]) for a in out.alerts}
    for model in ("price", "churn"):
        assert (model, "drift_critical", "active") in kinds
    assert ("fraud", "drift_critical", "resolved") in kinds
    assert ("churn", "performance_degradation", "active") in kinds
    assert ("churn", "concept_drift", "active") in kinds
    assert ("price", "performance_degradation", "active") in kinds
    assert not list(tmp_path.glob("**/demo.db"))  # the demo's database is gone
