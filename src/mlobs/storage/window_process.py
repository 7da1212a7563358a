"""The live drift windows, pushed, closed and evaluated in a child process of the serving process.

Once a second the serving process's drift monitor hands its counts to the shared windows; a push
is an upsert of a few hundred counters, and a window that closes is read back, scored (PSI, JS),
stored, and judged by the alert rules: 10-15 ms, much of it holding the GIL, which in the
serving process showed up as a tail on every request queued behind it. Here that work runs in a
child (``WindowKeeper`` over its own engine, with its own alert manager), and the serving
process only counts, sends and waits with the GIL released; it exports the results it gets back
as metrics and replays the alert changes into its own alert manager (counters, active-alert
gauge, notifications).

The transport and the child's lifecycle are ``child_process``'s. The set-up frame is the
configuration (database URL, drift and alert settings); each request is ``{"pushes": [...]}``
(model, profile version, counts, and the reference profile itself when this child has not been
sent it), answered with ``{"outcomes": [PushOutcome], "alerts": [[alert, kind]],
"open_counts": {...} | null}``. A push that never reached the child, or that the child
could not apply (its transaction rolled back), keeps its counts for the next push. A push whose
answer is lost (the child died or timed out after reading it) may have been applied or not: its
counts are dropped, with a warning, rather than risk counting them twice.

    python -m mlobs.storage.window_process     # the child; started by WindowProcess only
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from mlobs.monitoring.alerts import Alert, AlertManager, AlertRules, EventKind, alert_from_dict
from mlobs.monitoring.drift_monitor import DriftConfig
from mlobs.monitoring.live_windows import (
    Push,
    PushAnswerLost,
    PushOutcome,
    counts_from_dict,
    counts_to_dict,
    describe,
)
from mlobs.monitoring.quality import Bounds, QualityThresholds
from mlobs.storage.child_process import AnswerLost, ChildProcess, child_main

log = logging.getLogger(__name__)

# A push for a profile this child was not sent (it restarted, or dropped an older version).
UNKNOWN_PROFILE = "unknown_profile: the reference profile was not sent to this process"

AlertSink = Callable[[Sequence[tuple[Alert, EventKind | None]], Mapping[str, int] | None], None]


def _config_to_dict(config: DriftConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _config_from_dict(d: Mapping[str, Any]) -> DriftConfig:
    quality = QualityThresholds(**{k: Bounds(**v) for k, v in d["quality"].items()})
    return DriftConfig(**{**d, "quality": quality})


class WindowProcess(ChildProcess):
    """``LiveWindows`` in a child process. Alert changes made there reach ``on_alerts`` (the
    serving process's ``AlertManager.replay``)."""

    def __init__(
        self,
        database_url: str,
        config: DriftConfig,
        rules: AlertRules,
        per_model: Mapping[str, AlertRules],
        on_alerts: AlertSink,
        *,
        timeout: float = 60.0,
    ) -> None:
        # The standard library's json, not orjson: a threshold may be infinite (orjson would
        # write null).
        setup = json.dumps(
            {
                "database_url": database_url,
                "config": _config_to_dict(config),
                "rules": dataclasses.asdict(rules),
                "per_model": {k: dataclasses.asdict(v) for k, v in per_model.items()},
            }
        ).encode()
        super().__init__("mlobs.storage.window_process", setup, timeout=timeout)
        self.on_alerts = on_alerts
        # Which (model, profile version) the child of generation ``_sent_generation`` has been
        # sent the profile of; the profile dicts, the latest version per model.
        self._sent: set[tuple[str, str]] = set()
        self._sent_generation = 0
        self._profiles: dict[str, tuple[str, dict[str, Any]]] = {}
        self._push_lock = threading.Lock()

    def _profile_dict(self, p: Push) -> dict[str, Any]:
        cached = self._profiles.get(p.model_name)
        if cached is None or cached[0] != p.version:
            cached = self._profiles[p.model_name] = (p.version, p.profile.to_dict())
        return cached[1]

    def push(self, pushes: Sequence[Push]) -> list[PushOutcome]:
        with self._push_lock:  # the profile bookkeeping assumes one push at a time
            return self._push(pushes)

    def _push(self, pushes: Sequence[Push]) -> list[PushOutcome]:
        used: list[int] = []

        def build(generation: int) -> bytes:
            used.append(generation)
            if generation != self._sent_generation:  # a new child knows no profile
                self._sent, self._sent_generation = set(), generation
            items = []
            for p in pushes:
                item: dict[str, Any] = {
                    "model_name": p.model_name,
                    "version": p.version,
                    "counts": counts_to_dict(p.delta),
                }
                if (p.model_name, p.version) not in self._sent:
                    item["profile"] = self._profile_dict(p)
                items.append(item)
            return orjson.dumps({"pushes": items}, option=orjson.OPT_SERIALIZE_NUMPY)

        try:
            answer = self.call(build)
        except AnswerLost as exc:
            raise PushAnswerLost(str(exc)) from exc
        try:
            if "outcomes" not in answer:  # the request itself was refused: nothing was done
                raise ValueError(f"window process: {answer.get('message', answer)}")
            outcomes = [PushOutcome.from_dict(o) for o in answer["outcomes"]]
            changes = [(alert_from_dict(a), kind) for a, kind in answer.get("alerts", ())]
        except (KeyError, TypeError, ValueError) as exc:
            if "outcomes" not in answer:
                raise
            raise PushAnswerLost(f"unreadable answer: {type(exc).__name__}: {exc}") from exc
        if len(outcomes) != len(pushes):
            raise PushAnswerLost(f"{len(outcomes)} outcomes for {len(pushes)} pushes")
        for p, out in zip(pushes, outcomes, strict=True):
            key = (p.model_name, p.version)
            if out.error == UNKNOWN_PROFILE:
                self._sent.discard(key)  # sent again with the next push
            elif used and used[-1] == self._sent_generation:
                self._sent.add(key)
        if changes or answer.get("open_counts") is not None:
            try:
                self.on_alerts(changes, answer.get("open_counts"))
            except Exception:  # the outcomes stand; a failing notifier must not lose them
                log.exception("replaying alert changes failed")
        return outcomes


# -------------------------------------------------------------------- the child


def _setup(first: bytes) -> tuple[Callable[[bytes], dict[str, Any]], Callable[[], None]]:
    from datetime import datetime, timezone

    from prometheus_client import CollectorRegistry

    from mlobs.monitoring.live_windows import WindowKeeper
    from mlobs.monitoring.metrics import Metrics
    from mlobs.monitoring.notifications import alert_to_dict
    from mlobs.monitoring.profiles import ReferenceProfile
    from mlobs.storage.alert_repository import AlertRepository
    from mlobs.storage.db import make_engine
    from mlobs.storage.drift_repository import DriftRepository

    # The serving process logs the alert changes it replays; here they would be said twice.
    logging.getLogger("mlobs.monitoring.alerts").setLevel(logging.ERROR)
    setup = json.loads(first)
    engine = make_engine(setup["database_url"])
    config = _config_from_dict(setup["config"])
    rules = AlertRules(**setup["rules"])
    per_model = {k: AlertRules(**v) for k, v in setup["per_model"].items()}

    def clock() -> datetime:
        return datetime.now(timezone.utc)

    # Its metrics stay here: the serving process exports what the answers carry.
    alerts = AlertManager(
        AlertRepository(engine), Metrics(CollectorRegistry()), rules, clock=clock,
        per_model=per_model,
    )  # fmt: skip
    changes: list[tuple[Alert, EventKind | None]] = []
    alerts.listeners.append(lambda alert, kind: changes.append((alert, kind)))
    keeper = WindowKeeper(DriftRepository(engine), config, clock=clock, listeners=[alerts])
    profiles: dict[tuple[str, str], ReferenceProfile] = {}

    def handle(payload: bytes) -> dict[str, Any]:
        try:
            items = orjson.loads(payload)["pushes"]
        except Exception as exc:  # the parent's counts stay with it
            return {"error": "invalid", "message": f"{type(exc).__name__}: {exc}"}
        changes.clear()
        outcomes = []
        for item in items:
            try:
                key = (item["model_name"], item["version"])
                if "profile" in item:
                    # The latest profile per model is all a push refers to.
                    for old in [k for k in profiles if k[0] == key[0]]:
                        del profiles[old]
                    profiles[key] = ReferenceProfile.from_dict(item["profile"])
                profile = profiles.get(key)
                if profile is None:
                    outcomes.append(PushOutcome(key[0], added=False, error=UNKNOWN_PROFILE))
                    continue
                push = Push(key[0], key[1], profile, counts_from_dict(item["counts"]))
            except Exception as exc:  # this push only; its counts stay with the parent
                name = item.get("model_name", "?") if isinstance(item, dict) else "?"
                outcomes.append(PushOutcome(str(name), added=False, error=describe(exc)))
                continue
            outcomes.append(keeper.push_one(push))
        open_counts: dict[str, int] | None = None
        if any(o.results for o in outcomes):  # verdicts went through the alert rules
            try:
                open_counts = alerts.store.open_counts()
            except Exception as exc:
                log.warning("could not count open alerts: %s: %s", type(exc).__name__, exc)
        return {
            "outcomes": [o.to_dict() for o in outcomes],
            "alerts": [[alert_to_dict(a), kind] for a, kind in changes],
            "open_counts": open_counts,
        }

    return handle, engine.dispose


def main() -> None:
    child_main(_setup)


if __name__ == "__main__":
    main()
