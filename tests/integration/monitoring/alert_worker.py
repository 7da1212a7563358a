"""A worker process for the concurrent-alert test: fires one fingerprint N times.

python alert_worker.py DB_URL N
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry

from mlobs.monitoring.alerts import AlertManager, AlertRules, Signal
from mlobs.monitoring.metrics import Metrics
from mlobs.storage.alert_repository import AlertRepository
from mlobs.storage.db import make_engine


def main() -> None:
    url, n = sys.argv[1], int(sys.argv[2])
    engine = make_engine(url)
    mgr = AlertManager(AlertRepository(engine), Metrics(CollectorRegistry()), AlertRules(),
                       clock=lambda: datetime.now(timezone.utc))  # fmt: skip
    ids = set()
    for _ in range(n):
        alert = mgr.apply(Signal("churn", "drift", "live", True, "drift_detected", "warning", 0.25))
        assert alert is not None
        ids.add(alert.id)
    print(json.dumps(sorted(ids)))
    engine.dispose()


if __name__ == "__main__":
    main()
