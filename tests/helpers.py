"""Helpers shared by tests (importable as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
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


@contextlib.contextmanager
def serve_process(
    workdir: Path, env: dict[str, str], *, args: tuple[str, ...] = (), timeout: float = 120.0
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`mlobs serve` as its own process on a free loopback port, with ``env`` over os.environ;
    yields (base URL, process) once /health/ready answers 200, and stops its process group.
    Its output goes to ``workdir / "server.log"``, quoted when it does not become ready."""
    import httpx

    port = free_port()
    log = workdir / "server.log"
    cmd = [sys.executable, "-m", "mlobs", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, *args], cwd=workdir, env={**os.environ, **env}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout  # imports are slow on a small machine
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"not ready in {timeout} s: {log.read_text()[-3000:]}"
            )
            try:
                if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield url, proc
    finally:
        stop_process_group(proc)
