"""A worker process for the shared-window test: counts records into live windows and flushes.

python window_worker.py DB_URL PROFILE_JSON SEED N_RECORDS
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry

from helpers import sample_records
from mlobs.monitoring.drift_monitor import DriftConfig, DriftMonitor
from mlobs.monitoring.metrics import Metrics
from mlobs.monitoring.profiles import ReferenceProfile
from mlobs.storage.db import make_engine
from mlobs.storage.drift_repository import DriftRepository


def main() -> None:
    url, profile_path, seed, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    profile = ReferenceProfile.from_dict(json.loads(open(profile_path).read()))
    engine = make_engine(url)
    monitor = DriftMonitor(
        DriftRepository(engine),
        Metrics(CollectorRegistry()),
        DriftConfig(window_size=1_000, min_samples=500),
        clock=lambda: datetime.now(timezone.utc),
    )
    monitor.set_profile(profile)
    evaluated = 0
    records = sample_records("churn", n, seed=seed)
    for i in range(0, n, 50):
        for rec in records[i : i + 50]:
            monitor.observe("churn", rec, 0.5)
        evaluated += len(monitor.flush())
    evaluated += len(monitor.flush())
    print(json.dumps({"evaluated": evaluated}))
    engine.dispose()


if __name__ == "__main__":
    main()
