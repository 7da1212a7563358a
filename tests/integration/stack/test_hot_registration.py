"""A model registered into a running `mlobs serve --workers 2` is served by both workers, without
a restart; a new version replaces it in both, and a removal stops it in both."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import cancer_booster, eventually, serve_process
from mlobs.tools.register import register_local

pytestmark = pytest.mark.slow


Health = dict[str, Any]


def _health(url: str) -> Health:
    # A new connection per request, so the kernel spreads them over the workers.
    body: Health = httpx.get(f"{url}/health", timeout=30).json()
    return body


def _every_worker(url: str, workers: set[int], check: Callable[[Health], bool], what: str) -> None:
    """Wait until each worker in ``workers`` has answered a /health that passes ``check``."""
    satisfied: set[int] = set()

    def done() -> bool:
        body = _health(url)
        if check(body):
            satisfied.add(int(body["worker"]))
        return satisfied >= workers

    eventually(
        done, interval=0.05, message=lambda: f"{what}: only workers {satisfied} of {workers}"
    )


def test_both_workers_serve_a_model_registered_while_running(
    tmp_path: Path, model_dir: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(model_dir / "fraud", models / "fraud")
    _, _, data = cancer_booster(tmp_path)
    cols = [c for c in data.columns if c != "target"]
    env = {"MODEL_DIR": str(models), "DATA_DIR": str(tmp_path / "data"), "LOG_LEVEL": "WARNING",
           "CATALOG_POLL_SECONDS": "0.5"}  # fmt: skip
    with serve_process(tmp_path, env, args=("--workers", "2")) as (url, _):
        workers: set[int] = set()

        def both_answered() -> bool:
            workers.add(int(_health(url)["worker"]))
            return len(workers) == 2

        eventually(both_answered, interval=0.05, message="the two workers never both answered")
        assert httpx.post(f"{url}/predict/cancer", json={}).status_code == 404

        first = register_local(models, "cancer", reference=tmp_path / "reference.parquet",
                               target="target", artifact=tmp_path / "model.ubj")  # fmt: skip
        version = first.manifest.version

        def serves(v: str | None) -> Callable[[Health], bool]:
            return lambda b: bool(b["models"].get("cancer", {}).get("version") == v)

        _every_worker(url, workers, serves(version), "the registration")
        row = {k: float(v) for k, v in data[cols].iloc[0].items()}
        for _ in range(10):  # new connections: both workers answer
            assert httpx.post(f"{url}/predict/cancer", json=row, timeout=30).status_code == 200

        second = register_local(models, "cancer", reference=tmp_path / "reference.parquet",
                                target="target", artifact=tmp_path / "model.ubj", threshold=0.3)  # fmt: skip
        assert second.manifest.version != version and second.replaced == version
        _every_worker(url, workers, serves(second.manifest.version), "the new version")

        shutil.rmtree(models / "cancer")
        _every_worker(url, workers, lambda b: "cancer" not in b["models"], "the removal")
        assert httpx.post(f"{url}/predict/cancer", json=row, timeout=30).status_code == 404
