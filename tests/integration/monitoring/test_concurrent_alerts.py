"""Two processes firing one fingerprint at once open one alert (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlobs.monitoring.alerts import AlertFilter
from mlobs.storage.alert_repository import AlertRepository
from mlobs.storage.db import make_engine, migrate

HERE = Path(__file__).parent


def test_two_processes_open_one_alert(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "alert_worker.py"), db_url, "25"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for _ in range(2)
    ]
    ids: set[str] = set()
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        ids |= set(json.loads(out.strip().splitlines()[-1]))
    alerts, total = AlertRepository(engine).list(AlertFilter(model_name="churn"))
    engine.dispose()
    assert len(ids) == 1 and total == 1
    assert alerts[0].occurrences == 50
