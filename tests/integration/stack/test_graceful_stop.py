"""A graceful stop (SIGTERM) of a real server process drains the log queue: every prediction it
served is in the database, also those still queued when the signal came."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from helpers import WAIT_SECONDS, sample_records, serve_process
from mlobs.storage.tables import predictions

pytestmark = pytest.mark.slow


def test_sigterm_drains_the_log_queue(tmp_path: Path, model_dir: Path) -> None:
    db = tmp_path / "mlobs.db"
    env = {
        "MODEL_DIR": str(model_dir), "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{db}", "LOG_LEVEL": "WARNING",
        # The writer would wait a minute before writing: only the shutdown drain can store them.
        "LOG_FLUSH_INTERVAL": "60",
    }  # fmt: skip
    with serve_process(tmp_path, env) as (base, proc):
        served = 0
        with httpx.Client(base_url=base, timeout=10) as client:
            for record in sample_records("fraud", 150, seed=12):
                served += client.post("/predict/fraud", json=record).status_code == 200
            queued = client.get("/health").json()["log_queue_depth"]
        assert served == 150
        assert queued > 0  # still waiting for the writer when the signal comes
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught (so the process
        # ends "by SIGTERM", as a supervisor expects); 0 would do as well.
        assert proc.wait(WAIT_SECONDS) in (0, -signal.SIGTERM)
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        logged = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
    engine.dispose()
    assert logged == served
