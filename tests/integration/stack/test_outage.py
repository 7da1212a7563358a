"""Outages lose nothing: with its (private) PostgreSQL stopped, the service keeps serving, says
`degraded` with the reason, spills predictions and labels, and replays them exactly once when the
database returns.

The test starts its own PostgreSQL cluster (``initdb`` and ``pg_ctl``, as the ``postgres`` user
when run as root) on a free port and stops it; the machine's shared server is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from helpers import eventually, free_port, sample_records, skip_or_fail
from mlobs.storage.tables import feedback, predictions

pytestmark = pytest.mark.slow


def _pg_bin() -> Path | None:
    for root in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (root / "initdb").exists() and (root / "pg_ctl").exists():
            return root
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class Cluster:
    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        self.bindir, self.datadir, self.port = bindir, datadir, port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/mlobs"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-o", opts, "-l", str(self.datadir / "log"),
            "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    bindir = _pg_bin()
    if bindir is None:
        skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) not installed")
        raise AssertionError("unreachable")
    base = Path(tempfile.mkdtemp(prefix="mlobs-pg-"))
    datadir = base / "data"
    datadir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(datadir, "postgres")
    c = Cluster(bindir, datadir, free_port())
    try:
        c.init()
        c.start()
        admin = create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{c.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE mlobs"))
        admin.dispose()
        yield c
    finally:
        if c.running():
            c.stop()
        shutil.rmtree(base, ignore_errors=True)


def _wait(cond: Callable[[], bool], what: str) -> None:
    eventually(cond, interval=0.1, message=f"never happened: {what}")


def _counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
            distinct = conn.execute(select(func.count(predictions.c.id.distinct()))).scalar_one()
            labels = conn.execute(select(func.count()).select_from(feedback)).scalar_one()
    finally:
        engine.dispose()
    return int(n), int(distinct), int(labels)


def test_database_outage_spills_and_replays_exactly_once(
    cluster: Cluster, app_factory: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = app_factory(
        database_url=cluster.url,
        data_dir=tmp_path / "data",
        log_flush_interval=0.05,
        drift_flush_interval=3600.0,
        performance_estimate_interval=3600.0,
    )
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    plog = runtime.prediction_log
    records = sample_records("churn", 160, seed=4)

    before = [client.post("/predict/churn", json=r).json() for r in records[:40]]
    _wait(lambda: plog.depth == 0 and not plog._pending, "the first predictions to be written")

    cluster.stop()
    during = []
    for r in records[40:]:
        resp = client.post("/predict/churn", json=r)
        assert resp.status_code == 200, resp.text  # served while the database is down
        during.append(resp.json())
    _wait(lambda: plog.spilling and plog.depth == 0, "the log to spill")

    health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert any("spilling" in reason for reason in health["reasons"]), health
    assert any("database unreachable" in reason for reason in health["reasons"]), health
    assert client.get("/health/ready").status_code == 200
    # A spilled prediction is still readable, and takes a label (into the spill).
    assert client.get(f"/predictions/{during[0]['prediction_id']}").status_code == 200
    items = [{"prediction_id": p["prediction_id"], "actual": 1} for p in during[:10]]
    resp = client.post("/feedback/batch", json={"items": items})
    assert resp.status_code == 200, resp.text
    assert resp.json()["queued"] == 10
    # A label for a prediction only the database knows cannot be checked: not accepted (503).
    resp = client.post("/feedback", json={"prediction_id": before[0]["prediction_id"], "actual": 0})
    assert resp.status_code == 503
    # Predictions made elsewhere cannot be checked for duplicates: none is accepted (503).
    made_elsewhere = {"records": [{"prediction_id": "ext-1", "features": records[0],
                                   "prediction": 1}]}  # fmt: skip
    resp = client.post("/models/churn/predictions", json=made_elsewhere)
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["retry-after"]) > 0
    spill_dir = tmp_path / "data" / "spill"
    assert sum(len(p.read_bytes().splitlines()) for p in spill_dir.iterdir()) == 120 + 10

    cluster.start()
    _wait(lambda: not plog.spilling and not any(spill_dir.iterdir()), "the spill to be replayed")
    n, distinct, labels = _counts(cluster.url)
    assert (n, distinct) == (160, 160)  # every served prediction, exactly once
    assert labels == 10
    resp = client.post("/models/churn/predictions", json=made_elsewhere)
    assert resp.status_code == 202 and resp.json()["accepted"] == 1, resp.text
    registry = runtime.registry
    assert (
        registry.get_sample_value("mlobs_prediction_log_dropped_total", {"model_name": "churn"})
        or 0
    ) == 0
    assert registry.get_sample_value(
        "mlobs_spill_replayed_records_total", {"kind": "prediction"}
    ) == pytest.approx(120)
    _wait(lambda: client.get("/health").json()["status"] == "healthy", "health to recover")
    # Labels replayed from the spill are real labels: the performance figures see them.
    runtime.process_labels(full=True)
    perf = client.get("/monitoring/performance/churn").json()
    assert perf["labels"]["total"] == 10
