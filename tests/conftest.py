"""Shared fixtures: trained models (once per session) and factories."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from helpers import skip_or_fail, wait_ready
from mlobs.api.app import create_app
from mlobs.config import Settings
from mlobs.data import generate
from mlobs.data.demo_models import demo_model
from mlobs.models import save_model
from mlobs.monitoring.profiles import profile_for_model, save_profile


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All three models trained on small generated data sets, saved once per test session."""
    path = tmp_path_factory.mktemp("models")
    for name, rows in (("fraud", 20_000), ("price", 5_000), ("churn", 5_000)):
        model = demo_model(name)
        result = model.fit(generate(name, rows, seed=7), seed=7)
        save_model(model, path)
        save_profile(profile_for_model(model, result.train), path)
    return path


# --------------------------------------------------------------------------------- databases

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL server's maintenance database; skips (fails in CI) when unreachable."""
    from sqlalchemy import create_engine, text

    url = os.environ.get("MLOBS_TEST_POSTGRES_URL", DEFAULT_PG_URL)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        skip_or_fail(f"PostgreSQL at {url} unreachable: {type(exc).__name__}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mlobs_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlobs.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


# --------------------------------------------------------------------------------- the app


@pytest.fixture
def settings_factory(tmp_path: Path, model_dir: Path) -> Callable[..., Settings]:
    copied: list[Path] = []

    def own_models() -> Path:
        # A copy per test: a test may replace a reference profile (POST /monitoring/reference),
        # and must not change what the tests after it see.
        if not copied:
            copied.append(Path(shutil.copytree(model_dir, tmp_path / "models")))
        return copied[0]

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_dir": overrides.pop("model_dir", None) or own_models(),
            "data_dir": tmp_path / "data",
            "log_flush_interval": 0.05,
            "log_level": "WARNING",
            # A child process per app would add seconds to each of hundreds of apps: the log's
            # inserts and the live windows run in threads here; tests that start `mlobs serve`
            # (tests/integration/stack), test_insert_process.py, test_window_process.py and the
            # API tests parametrized over it run them in child processes, the default.
            "log_writer_process": False,
            "drift_process": False,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def app_factory(
    settings_factory: Callable[..., Settings],
) -> Iterator[Callable[..., TestClient]]:
    """Start apps (lifespan included) with fresh metrics registries; all are stopped at the end."""
    started: list[TestClient] = []

    def start(wait: bool = True, **overrides: Any) -> TestClient:
        app = create_app(settings_factory(**overrides), registry=CollectorRegistry())
        client = TestClient(app)
        client.__enter__()
        started.append(client)
        if wait:
            wait_ready(client)
        return client

    yield start
    for client in reversed(started):
        client.__exit__(None, None, None)


@pytest.fixture
def client(db_url: str, app_factory: Callable[..., TestClient]) -> TestClient:
    # db_url comes first so that it is torn down last: apps flush to their database on exit.
    """A ready app on SQLite and on PostgreSQL."""
    return app_factory(database_url=db_url)
