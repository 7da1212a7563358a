"""Labels from a file (`mlobs ingest-labels`), into the database of DATABASE_URL and through a
running service (`--url`): joined to ingested predictions by the sender's ids; unknown ids,
labels of the wrong kind and labels contradicting stored ones left out and counted."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from helpers import sample_records, served
from mlobs.api.app import create_app
from mlobs.cli import app as cli
from mlobs.config import Settings

pytestmark = pytest.mark.slow


@dataclass
class Live:
    url: str
    settings: Settings


@pytest.fixture
def live(settings_factory: Callable[..., Settings], db_url: str) -> Iterator[Live]:
    settings = settings_factory(database_url=db_url)
    with served(create_app(settings, registry=CollectorRegistry())) as url:
        yield Live(url, settings)


def test_labels_from_a_file_locally_and_through_the_service(live: Live, tmp_path: Path) -> None:
    records = [{"prediction_id": f"sub-{i}", "features": f, "probability": 0.6}
               for i, f in enumerate(sample_records("churn", 40, seed=2))]  # fmt: skip
    r = httpx.post(f"{live.url}/models/churn/predictions", json={"records": records}, timeout=30)
    assert r.status_code == 202 and r.json()["accepted"] == 40, r.text
    # A label stored before, which the file contradicts.
    r = httpx.post(f"{live.url}/feedback", json={"prediction_id": "sub-0", "actual": 1}, timeout=30)
    assert r.status_code == 200, r.text

    def frame(ids: range) -> pd.DataFrame:
        rows = [{"order": f"sub-{i}", "churned": i % 2} for i in ids]
        rows += [{"order": "sub-999", "churned": 1}, {"order": f"sub-{ids[1]}", "churned": 2}]
        return pd.DataFrame(rows)

    local_file, remote_file = tmp_path / "labels.csv", tmp_path / "labels.parquet"
    frame(range(0, 20)).to_csv(local_file, index=False)  # sub-0 labelled 0: contradicts the 1
    frame(range(20, 40)).to_parquet(remote_file)
    env = {"DATABASE_URL": live.settings.resolved_database_url,
           "MODEL_DIR": str(live.settings.model_dir), "COLUMNS": "200", "LOG_LEVEL": "WARNING"}  # fmt: skip
    common = ["--id-col", "order", "--label-col", "churned"]
    local = CliRunner().invoke(cli, ["ingest-labels", "churn", str(local_file), *common], env=env)
    assert local.exit_code == 0, local.output
    remote = CliRunner().invoke(
        cli, ["ingest-labels", "churn", str(remote_file), *common, "--url", live.url], env=env
    )
    assert remote.exit_code == 0, remote.output
    for out, recorded in ((local.output, 19), (remote.output, 20)):
        lines = {ln.split("│")[1].strip(): ln.split("│")[2].strip()
                 for ln in out.splitlines() if ln.count("│") >= 3}  # fmt: skip
        assert lines["recorded"] == str(recorded), out
        assert lines["unknown id"] == "1" and lines["invalid label"] == "1", out
    assert "conflicting (a different label stored)" in local.output
    assert "│ 1" in local.output.split("conflicting")[1].splitlines()[0]

    # sub-1 came twice: labelled 1, and 2 (left out); sub-0 keeps the label stored first.
    for pid, actual in (("sub-0", 1.0), ("sub-1", 1.0), ("sub-2", 0.0), ("sub-25", 1.0)):
        stored = httpx.get(f"{live.url}/feedback/{pid}", timeout=30)
        assert stored.status_code == 200 and stored.json()["actual"] == actual, stored.text

    again = CliRunner().invoke(cli, ["ingest-labels", "churn", str(local_file), *common], env=env)
    assert again.exit_code == 0 and "duplicate" in again.output
    nothing = CliRunner().invoke(cli, ["ingest-labels", "churn", str(local_file), "--id-col", "x"],
                                 env=env)  # fmt: skip
    assert nothing.exit_code == 2 and "no columns ['x'" in nothing.output
