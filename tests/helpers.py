"""Helpers shared by tests (importable as `helpers`: pytest puts tests/ on the path)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mlobs.data import DATASETS, generate

REQUIRE_SERVICES = os.environ.get("MLOBS_REQUIRE_SERVICES") == "1"
# How long a test waits for something it expects to happen: a bound for hangs, not a speed check.
# A slow, shared machine must never fail a test for being slow; only what never happens fails.
WAIT_SECONDS = float(os.environ.get("MLOBS_TEST_WAIT_SECONDS", "300"))

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None],
    *,
    timeout: float | None = None,
    interval: float = 0.05,
    message: str | Callable[[], str] = "",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """``check()``'s first truthy result, calling it every ``interval`` seconds until there is
    one. Once ``timeout`` seconds (``WAIT_SECONDS`` unless given) have passed without one, raises
    AssertionError with ``message`` (a callable is called then, e.g. for a log's tail at that
    moment) and the last value, or the last exception of a type in ``ignore``. Any other
    exception raised by ``check`` propagates at once.

    This is the one way a test waits for an event: the bound is there to end a hang, so keep it
    generous; a test must never depend on how fast something happens."""
    limit = WAIT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + limit
    while True:
        last: object
        try:
            value = check()
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            text = (message() if callable(message) else message) or "condition never met"
            cause = last if isinstance(last, BaseException) else None
            raise AssertionError(
                f"{text} (waited {limit:g} s; last: {repr(last)[:2000]})"
            ) from cause
        time.sleep(interval)


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service is missing, or fail it where services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def wait_ready(client: TestClient, timeout: float | None = None) -> None:
    eventually(
        lambda: client.get("/health/ready").status_code == 200,
        timeout=timeout,
        message=lambda: f"not ready: {client.get('/health').json()}",
    )


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
    proc.wait(WAIT_SECONDS)


@contextlib.contextmanager
def serve_process(
    workdir: Path,
    env: dict[str, str],
    *,
    args: tuple[str, ...] = (),
    timeout: float | None = None,
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

    def ready() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{url}/health/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        eventually(  # imports are slow on a small machine
            ready,
            timeout=timeout,
            interval=0.3,
            message=lambda: f"not ready: {log.read_text()[-3000:]}",
        )
        yield url, proc
    finally:
        stop_process_group(proc)


def cancer_booster(folder: Path, rounds: int = 10) -> tuple[Path, Path, pd.DataFrame]:
    """A user's own model: an XGBoost booster on scikit-learn's breast cancer data (saved as
    ``folder/model.ubj``) and that data as its reference (``folder/reference.parquet``)."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    data: pd.DataFrame = load_breast_cancer(as_frame=True).frame
    cols = [c for c in data.columns if c != "target"]
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(data[cols], label=data["target"]), num_boost_round=rounds)  # fmt: skip
    booster.save_model(folder / "model.ubj")
    data.to_parquet(folder / "reference.parquet")
    return folder / "model.ubj", folder / "reference.parquet", data


@contextlib.contextmanager
def served(app: Any) -> Iterator[str]:
    """An ASGI app behind a real uvicorn server on a free loopback port (lifespan included),
    stopped on exit; yields its base URL once it is ready."""
    import threading

    import httpx
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(
            lambda: httpx.get(f"{url}/health/ready", timeout=5).status_code == 200,
            ignore=(httpx.TransportError,),
            message="the server did not start",
        )
        yield url
    finally:
        server.should_exit = True
        thread.join(WAIT_SECONDS)
