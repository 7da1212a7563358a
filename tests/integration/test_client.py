"""``mlobs.client.Monitor`` against a live service (predictions and labels arrive, a record the
service refuses is counted) and against a dead one (``log`` returns, never raises, what cannot
be sent is counted as dropped); it imports nothing of the server's dependencies."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from helpers import eventually, free_port, sample_records, served
from mlobs.api.app import create_app
from mlobs.client import Monitor
from mlobs.config import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings_factory: Callable[..., Settings], db_url: str) -> Iterator[str]:
    with served(
        create_app(settings_factory(database_url=db_url), registry=CollectorRegistry())
    ) as url:
        yield url


def test_predictions_and_labels_reach_the_service(
    live: str, caplog: pytest.LogCaptureFixture
) -> None:
    rows = sample_records("churn", 30, seed=11)
    with Monitor(live, flush_interval=0.05) as monitor:
        ids = [monitor.log("churn", row, prediction=i % 2, probability=0.4 + i / 100)
               for i, row in enumerate(rows)]  # fmt: skip
        own = monitor.log("churn", rows[0], prediction=1, prediction_id="order-1")
        assert own == "order-1"
        broken = dict(rows[1])
        del broken["tenure_months"]
        with caplog.at_level(logging.WARNING, logger="mlobs.client"):
            monitor.log("churn", broken, prediction=0)  # refused by the service
            # Not JSON at all: refused at once, and the records after it still go.
            monitor.log("churn", {**rows[2], "tenure_months": float("inf")}, prediction=0)
            assert monitor.flush(timeout=60)
        for pid, y in zip(ids[:10], [0, 1] * 5, strict=True):
            monitor.label("churn", pid, y)
        monitor.label("churn", "never-logged", 1)
        assert monitor.flush(timeout=60)
        stats = monitor.stats
    assert (stats.queued, stats.sent, stats.refused, stats.dropped) == (31 + 1 + 11, 31 + 10, 3, 0)
    assert any("tenure_months" in r.getMessage() for r in caplog.records)
    logged = httpx.get(f"{live}/predictions/{ids[5]}", timeout=30).json()
    assert logged["features"] == {k: v for k, v in rows[5].items()}
    assert logged["probability"] == pytest.approx(0.45)
    assert httpx.get(f"{live}/feedback/{ids[3]}", timeout=30).json()["actual"] == 1
    assert httpx.get(f"{live}/predictions/order-1", timeout=30).status_code == 200


def test_a_dead_service_costs_the_caller_nothing_but_the_records() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens
    monitor = Monitor(url, flush_interval=0.01, max_queue=20, max_backoff=0.05)
    rows = sample_records("churn", 50, seed=12)
    for row in rows:  # never raises, never waits for the network
        monitor.log("churn", row, prediction=1)
    monitor.label("churn", "x", 1)
    eventually(lambda: monitor.stats.retries >= 2, message="no retries against a dead service")
    assert monitor.flush(timeout=0.2) is False  # nothing can be sent
    monitor.close(timeout=0.2)
    stats = monitor.stats
    assert stats.sent == 0 and stats.queued + stats.dropped >= 51
    assert stats.dropped == 51 - stats.sent  # full queue, then what was pending at close


def test_the_client_needs_only_httpx_and_the_standard_library(live: str, tmp_path: Path) -> None:
    """In a process where the server's dependencies cannot be imported, the client still sends."""
    script = tmp_path / "send.py"
    script.write_text(
        "import importlib.abc, json, sys\n"
        "BLOCKED = {'numpy', 'pandas', 'scipy', 'sklearn', 'xgboost', 'lightgbm', 'onnxruntime',\n"
        "           'sqlalchemy', 'fastapi', 'starlette', 'pydantic', 'prometheus_client', 'typer',\n"
        "           'rich', 'orjson', 'yaml', 'uvicorn', 'pyarrow', 'skops', 'treelite', 'alembic',\n"
        "           'psycopg'}\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from mlobs.client import Monitor\n"
        "rows = json.loads(sys.argv[2])\n"
        "with Monitor(sys.argv[1], flush_interval=0.05) as m:\n"
        "    for i, row in enumerate(rows):\n"
        "        m.log('churn', row, prediction=0, prediction_id=f'slim-{i}')\n"
        "    m.flush(60)\n"
        "    print(json.dumps(vars(m.stats)))\n"
    )
    rows = sample_records("churn", 5, seed=13)
    out = subprocess.run([sys.executable, str(script), live, json.dumps(rows)], capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["sent"] == 5
    assert httpx.get(f"{live}/predictions/slim-4", timeout=30).status_code == 200


def test_the_base_install_is_the_client_and_the_cli_says_what_is_missing(tmp_path: Path) -> None:
    from importlib.metadata import requires

    base = [r for r in requires("mlobs") or [] if "extra ==" not in r]
    assert [r.split(">")[0].split("[")[0].strip() for r in base] == ["httpx"]
    script = tmp_path / "cli.py"
    script.write_text(
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'typer':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from mlobs.__main__ import main\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert out.returncode == 2
    assert "pip install 'mlobs[server]'" in out.stderr and "Traceback" not in out.stderr
