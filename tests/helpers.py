"""Helpers shared by tests (importable as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
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


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM a process started with ``start_new_session=True``; after ``timeout`` seconds,
    SIGKILL its whole group (workers included)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers, if the parent left any
    proc.wait(10)
