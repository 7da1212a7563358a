"""The Alertmanager channel against a real Prometheus Alertmanager (Debian's package).

Skips when ``/usr/bin/prometheus-alertmanager`` is missing (fails where services are required).
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from helpers import WAIT_SECONDS, eventually, skip_or_fail
from mlobs.monitoring.alerts import Alert
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.notifications import AlertmanagerChannel, Notifier

BINARY = "/usr/bin/prometheus-alertmanager"
CONFIG = """\
global:
  resolve_timeout: 5m
route:
  receiver: "null"
receivers:
  - name: "null"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A running Alertmanager on a free loopback port; yields its base URL."""
    if not Path(BINARY).exists() and shutil.which("prometheus-alertmanager") is None:
        skip_or_fail(f"{BINARY} not installed (apt-get install prometheus-alertmanager)")
    binary = BINARY if Path(BINARY).exists() else str(shutil.which("prometheus-alertmanager"))
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG)
    storage = tmp_path / "data"
    storage.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "alertmanager.log", "wb") as log:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={storage}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            with httpx.Client(timeout=2.0) as client:

                def ready() -> bool:
                    if proc.poll() is not None:
                        output = (tmp_path / "alertmanager.log").read_text(errors="replace")
                        raise AssertionError(f"alertmanager exited {proc.returncode}: {output}")
                    try:
                        return client.get(f"{url}/-/ready").status_code == 200
                    except httpx.HTTPError:
                        return False

                eventually(ready, interval=0.1, message="alertmanager not ready")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(10)  # a grace period, then a kill
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(WAIT_SECONDS)


def ours(client: httpx.Client, url: str, alert_id: str, *, active_only: bool) -> list[Any]:
    params = {"active": "true"} if active_only else {}
    response = client.get(f"{url}/api/v2/alerts", params=params)
    response.raise_for_status()
    return [
        a for a in response.json()
        if a["labels"].get("source") == "mlobs" and a["annotations"].get("alert_id") == alert_id
    ]  # fmt: skip


def test_alert_fires_and_resolves_in_a_real_alertmanager(alertmanager: str) -> None:
    metrics = Metrics(CollectorRegistry())
    now = datetime.now(timezone.utc).replace(microsecond=0)
    alert = Alert(
        id="am-1", fingerprint="fraud/drift/live", model_name="fraud", family="drift",
        alert_type="drift_critical", scope="live", severity="critical", state="active",
        value=0.42, threshold=0.3, message="drift share 0.42 over 500 rows",
        opened_at=now - timedelta(seconds=5), updated_at=now, last_seen_at=now,
    )  # fmt: skip
    notifier = Notifier([AlertmanagerChannel(alertmanager)], metrics, backoff=0.1, timeout=5.0)
    notifier.start()
    try:
        with httpx.Client(timeout=5.0) as client:
            notifier(alert, "opened")

            def firing() -> list[Any]:
                found = ours(client, alertmanager, alert.id, active_only=False)
                return [a for a in found if a["status"]["state"] == "active"]

            [seen] = eventually(firing, interval=0.1, message="alert not active in alertmanager")
            assert seen["labels"] == {
                "alertname": "drift_critical", "model_name": "fraud", "severity": "critical",
                "dataset_name": "live", "source": "mlobs",
            }  # fmt: skip
            assert seen["annotations"]["description"] == alert.message
            assert seen["annotations"]["value"] == "0.42"
            assert datetime.fromisoformat(seen["startsAt"]) == alert.opened_at
            # Without endsAt, Alertmanager keeps it firing for resolve_timeout (5m).
            assert datetime.fromisoformat(seen["endsAt"]) > now + timedelta(minutes=4)
            assert notifier.resend_open([alert]) == 1  # a re-send keeps it firing

            resolved_at = datetime.now(timezone.utc)
            done = dataclasses.replace(
                alert, state="resolved", resolved_at=resolved_at, updated_at=resolved_at
            )
            notifier(done, "resolved")

            def gone() -> bool:
                if ours(client, alertmanager, alert.id, active_only=True):
                    return False
                return all(
                    datetime.fromisoformat(a["endsAt"]) <= datetime.now(timezone.utc)
                    for a in ours(client, alertmanager, alert.id, active_only=False)
                )

            eventually(gone, interval=0.1, message="alert not resolved in alertmanager")
    finally:
        notifier.stop()
    sent = metrics.registry.get_sample_value(
        "mlobs_notifications_total", {"channel": "alertmanager", "outcome": "sent"}
    )
    assert sent == 3


def test_escalation_replaces_the_warning_in_a_real_alertmanager(alertmanager: str) -> None:
    metrics = Metrics(CollectorRegistry())
    now = datetime.now(timezone.utc).replace(microsecond=0)
    warning = Alert(
        id="am-2", fingerprint="price/drift/live", model_name="price", family="drift",
        alert_type="drift_detected", scope="live", severity="warning", state="active",
        value=0.25, threshold=0.2, message="drift share 0.25", opened_at=now,
        updated_at=now, last_seen_at=now,
    )  # fmt: skip
    notifier = Notifier([AlertmanagerChannel(alertmanager)], metrics, backoff=0.1)
    notifier.start()
    try:
        with httpx.Client(timeout=5.0) as client:
            notifier(warning, "opened")
            eventually(
                lambda: ours(client, alertmanager, "am-2", active_only=True),
                interval=0.1,
                message="warning not active",
            )
            escalated_at = datetime.now(timezone.utc)
            critical = dataclasses.replace(
                warning, alert_type="drift_critical", severity="critical", threshold=0.3,
                value=0.4, updated_at=escalated_at,
            )  # fmt: skip
            notifier(critical, "escalated")

            def only_critical() -> bool:
                active = ours(client, alertmanager, "am-2", active_only=True)
                return [a["labels"]["severity"] for a in active] == ["critical"]

            eventually(only_critical, interval=0.1, message="not only the critical alert active")
    finally:
        notifier.stop()
