"""Several worker processes (`mlobs serve --workers 2`): counters and histograms add up across
processes, gauges combine as each one states, and every prediction is logged once."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from helpers import eventually, free_port, sample_records, stop_process_group
from mlobs.monitoring.metrics import (
    Metrics,
    forget_exited_processes,
    metric_files,
    scrape_registry,
)
from mlobs.storage.tables import predictions

pytestmark = pytest.mark.slow

MODELS = ("fraud", "price", "churn")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    metrics_dir: Path
    database_url: str
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _per_process(metrics_dir: Path) -> dict[int, Samples]:
    """Each process's own values, read from its files in the multiprocess directory."""
    files: dict[int, list[str]] = defaultdict(list)
    for f in metric_files(str(metrics_dir)):
        files[int(Path(f).stem.rsplit("_", 1)[1])].append(f)
    out: dict[int, Samples] = {}
    for pid, paths in files.items():
        out[pid] = {
            (s.name, frozenset((k, v) for k, v in s.labels.items() if k != "pid")): s.value
            for metric in MultiProcessCollector.merge(paths)
            for s in metric.samples
        }
    return out


def _serving(metrics_dir: Path) -> list[int]:
    """Pids of the workers that have loaded all three models."""
    return [
        pid
        for pid, samples in _per_process(metrics_dir).items()
        if sum(v for (n, _), v in samples.items() if n == "mlobs_model_loaded") == len(MODELS)
    ]


def _served(samples: Samples) -> float:
    return sum(v for (n, _), v in samples.items() if n == "mlobs_predictions_total")


def _write_predictions_counter(path: Path, model: str, value: float) -> None:
    """A process's value file holding mlobs_predictions_total{model_name=model,status=success}."""
    values = MmapedDict(str(path))
    values.write_value(
        mmap_key("mlobs_predictions", "mlobs_predictions_total", ["model_name", "status"],
                 [model, "success"], "Predictions served, by outcome."),
        value, 0.0,
    )  # fmt: skip
    values.close()


@pytest.fixture
def server(tmp_path: Path, model_dir: Path) -> Iterator[Server]:
    """`mlobs serve --workers 2` on a free port, a SQLite log and its own metrics directory."""
    port = free_port()
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    # A counter left by an earlier run: the server must remove it, or it would be added in.
    _write_predictions_counter(metrics_dir / "counter_999999.db", "fraud", 1000.0)
    database_url = f"sqlite:///{tmp_path / 'mlobs.db'}"
    env = {
        **os.environ,
        "MODEL_DIR": str(model_dir),
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "WARNING",
        "LOG_FLUSH_INTERVAL": "0.1",
        "DRIFT_FLUSH_INTERVAL": "0.2",
        "DRIFT_WINDOW_SIZE": "100",
        "DRIFT_MIN_SAMPLES": "100",
    }
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlobs", "serve", "--workers", "2", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    srv = Server(f"http://127.0.0.1:{port}", proc, metrics_dir, database_url, log)

    def both_serving() -> bool:
        assert proc.poll() is None, f"server exited: {srv.log_tail()}"
        return len(_serving(metrics_dir)) >= 2

    try:
        eventually(  # imports take ~10 s per process on a small machine
            both_serving, interval=0.25, message=lambda: f"workers not ready: {srv.log_tail()}"
        )
        # Both workers have metrics files before both have loaded their models.
        eventually(lambda: httpx.get(f"{srv.url}/health/ready", timeout=10).status_code == 200,
                   message=lambda: f"not ready: {srv.log_tail()}")  # fmt: skip
        yield srv
    finally:
        stop_process_group(proc)


def _predict(url: str, name: str, record: dict[str, Any]) -> int:
    # A new connection per request (no client reuse), so the kernel spreads them over workers.
    return httpx.post(f"{url}/predict/{name}", json=record, timeout=30).status_code


def _scrape(url: str) -> Samples:
    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200
    return _samples(r.text)


def test_two_workers_count_every_prediction_once(server: Server) -> None:
    assert not (server.metrics_dir / "counter_999999.db").exists()  # stale files were removed
    sent: dict[str, int] = defaultdict(int)
    work = [(name, rec) for name in MODELS for rec in sample_records(name, 70, seed=3)]
    # Concurrent requests, so that a worker busy predicting leaves the next to the other; if one
    # worker still took everything, more rounds follow (bounded).
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            codes = list(pool.map(lambda w: _predict(server.url, *w), work))
            assert codes == [200] * len(work)
            for name, _ in work:
                sent[name] += 1
            per_process = _per_process(server.metrics_dir)
            if sum(_served(s) > 0 for s in per_process.values()) >= 2:
                break
    n = sum(sent.values())
    per_process = _per_process(server.metrics_dir)
    served = {pid: _served(s) for pid, s in per_process.items() if _served(s)}
    assert len(served) == 2, f"one worker served everything: {served}"
    assert sum(served.values()) == n

    # Whichever worker answers /metrics reports both: counters and histograms add up.
    samples = _scrape(server.url)
    for name in MODELS:
        success = _value(samples, "mlobs_predictions_total", model_name=name, status="success")
        error = _value(samples, "mlobs_predictions_total", model_name=name, status="error")
        assert (success, error or 0) == (sent[name], 0)
        for histogram in ("mlobs_prediction_latency_seconds", "mlobs_prediction_value"):
            assert _value(samples, f"{histogram}_count", model_name=name) == sent[name]
            assert _value(samples, f"{histogram}_bucket", model_name=name, le="+Inf") == sent[name]
        # Gauges keep their stated aggregation: one series, no per-process label.
        loaded = [v for (m, lab), v in samples.items()
                  if m == "mlobs_model_loaded" and ("model_name", name) in lab]  # fmt: skip
        assert loaded == [1.0]
    assert not any(key == "pid" for (_, lab) in samples for key, _ in lab)

    # Every prediction is logged once: the written counters, then the database itself.
    def logged() -> tuple[dict[str, float], float | None] | None:
        samples = _scrape(server.url)
        written = {m: _value(samples, "mlobs_prediction_log_written_total", model_name=m) or 0
                   for m in MODELS}  # fmt: skip
        # The depth is sampled when each writer wakes: 0 one flush interval after the last row.
        depth = _value(samples, "mlobs_prediction_log_queue_depth")  # summed over both workers
        return (written, depth) if written == sent and depth == 0 else None

    written, depth = eventually(
        logged, interval=0.2, message=f"written counters never reached {dict(sent)} at depth 0"
    )
    assert written == sent
    assert depth == 0
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(predictions.c.model_name, func.count()).group_by(predictions.c.model_name)
            ).all()
    finally:
        engine.dispose()
    assert {model: count for model, count in rows} == sent

    # A worker that dies takes its live gauges with it; its counts stay.
    victim = min(served)
    os.kill(victim, signal.SIGKILL)

    def dropped() -> bool:
        if not glob.glob(str(server.metrics_dir / f"gauge_live*_{victim}.db")):
            return True
        _scrape(server.url)  # answered by the survivor, which drops the files
        return False

    eventually(dropped, interval=0.2, message="a dead worker's live gauges were not dropped")
    samples = _scrape(server.url)
    assert sum(
        _value(samples, "mlobs_predictions_total", model_name=m, status="success") or 0
        for m in MODELS
    ) == n  # fmt: skip


def test_an_alert_judged_in_a_window_process_is_counted_once(server: Server) -> None:
    """Each worker's live windows are evaluated in a child process of its own, whose alert
    changes the worker replays into its metrics. The children keep no metrics files in the
    shared directory: /metrics counts the alert once, not once per process that saw it."""
    from mlobs.data import DATASETS, DriftSpec, generate

    frame = generate("fraud", 300, seed=12, drift=DriftSpec.preset("fraud", 0.9))
    records = [
        {k: (None if v != v else v) for k, v in r.items()}  # NaN -> null
        for r in frame[DATASETS["fraud"].feature_names].to_dict("records")
    ]
    r = httpx.post(f"{server.url}/predict/batch", json={"model_name": "fraud", "records": records},
                   timeout=60)  # fmt: skip
    assert r.status_code == 200
    labels = {"model_name": "fraud", "alert_type": "drift_critical", "severity": "critical"}
    eventually(
        lambda: (_value(_scrape(server.url), "mlobs_alerts_total", **labels) or 0) >= 1,
        interval=0.3,
        message=lambda: f"no drift alert counted: {server.log_tail()}",
    )
    # A window for what must not happen (a second count): a slow machine can only make it
    # pass unseen, never fail the test.
    time.sleep(1.0)
    samples = _scrape(server.url)
    assert _value(samples, "mlobs_alerts_total", **labels) == 1
    assert _value(samples, "mlobs_active_alerts", model_name="fraud") == 1
    alerts = httpx.get(f"{server.url}/monitoring/alerts", params={"model": "fraud"}).json()
    assert alerts["total"] == 1
    # Every metrics file belongs to a worker: none to a log writer or window process.
    for pid in _per_process(server.metrics_dir):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        assert b"mlobs.storage" not in cmdline, cmdline


def test_live_gauge_files_of_exited_processes_are_dropped(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f"gauge_livesum_{dead.pid}.db", f"gauge_livemax_{dead.pid}.db",
                 f"gauge_mostrecent_{dead.pid}.db", f"counter_{dead.pid}.db",
                 f"gauge_livesum_{os.getpid()}.db"):  # fmt: skip
        (tmp_path / name).write_bytes(b"")
    assert forget_exited_processes(str(tmp_path)) == [dead.pid]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(
        [f"counter_{dead.pid}.db", f"gauge_livesum_{os.getpid()}.db",
         f"gauge_mostrecent_{dead.pid}.db"]
    )  # fmt: skip


def test_a_scrape_leaves_out_a_file_created_but_not_yet_sized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prometheus-client creates a value file before sizing it; a scrape in between must still
    report every other process (prometheus/client_python#1199)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    _write_predictions_counter(tmp_path / "counter_4242.db", "churn", 7.0)
    (tmp_path / "counter_4343.db").write_bytes(b"")  # a worker in MmapedDict.__init__
    text = generate_latest(scrape_registry(CollectorRegistry())).decode()
    samples = _samples(text)
    assert _value(samples, "mlobs_predictions_total", model_name="churn", status="success") == 7.0
    assert metric_files(str(tmp_path)) == [str(tmp_path / "counter_4242.db")]


def test_every_gauge_states_how_processes_combine() -> None:
    metrics = Metrics(CollectorRegistry())
    modes = {g._name: g._multiprocess_mode for g in vars(metrics).values() if isinstance(g, Gauge)}
    assert modes and "all" not in modes.values()  # 'all' (the default) would add a pid label
    assert modes["mlobs_prediction_log_queue_depth"] == "livesum"
    assert modes["mlobs_drift_share"] == "mostrecent"


def test_serve_makes_a_metrics_directory_for_several_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    from mlobs.cli import app

    seen: list[str | None] = []

    def run(*_: Any, **kwargs: Any) -> None:
        path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        seen.append(path)
        assert path is None or os.path.isdir(path)

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(uvicorn, "run", run)
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert seen[0] and not os.path.exists(seen[0])  # removed after the run
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    # One worker needs no directory.
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert seen[1] is None


def test_a_batch_retried_across_workers_is_counted_once(server: Server) -> None:
    """An at-least-once sender retries the same batch, the retries landing on either worker:
    every record is logged and counted once, the rest reported as duplicates."""
    records = [{"prediction_id": f"ext-{i}", "features": f, "prediction": 0, "probability": 0.2}
               for i, f in enumerate(sample_records("churn", 50, seed=8))]  # fmt: skip

    def send(_: int) -> dict[str, Any]:
        r = httpx.post(f"{server.url}/models/churn/predictions", json={"records": records},
                       timeout=30)  # fmt: skip
        assert r.status_code == 202, r.text
        return dict(r.json())

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, range(8)))
    assert sum(a["accepted"] for a in answers) == 50
    assert sum(a["duplicate"] for a in answers) == 7 * 50
    samples = _scrape(server.url)  # both workers' counters, added
    accepted = _value(samples, "mlobs_ingested_predictions_total", model_name="churn",
                      outcome="accepted")  # fmt: skip
    assert accepted == 50
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            n = conn.execute(
                select(func.count()).select_from(predictions)
                .where(predictions.c.model_name == "churn")
            ).scalar_one()  # fmt: skip
    finally:
        engine.dispose()
    assert n == 50
