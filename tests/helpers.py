"""Helpers shared by tests (importable as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import time
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlobs.data import DATASETS, generate

REQUIRE_SERVICES = os.environ.get("MLOBS_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing, or fail it where services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def wait_ready(client: TestClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/health/ready").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout}s: {client.get('/health').json()}")


def sample_records(name: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Generated rows as JSON-ready request bodies (NaN becomes null)."""
    df = generate(name, n, seed=seed)[DATASETS[name].feature_names]
    return [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.to_dict("records")]
