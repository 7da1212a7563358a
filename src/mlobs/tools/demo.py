"""The demo: a walk-through of the whole service in one process, with rich output.

It trains the models that are missing from ``MODEL_DIR`` (as ``mlobs train-models --only-missing``
does), starts the API in-process (``create_app`` driven by Starlette's TestClient) on a temporary
SQLite database with small windows, and then, step by step: serves predictions, injects drift,
shows the drift report, the alerts opening, one alert acknowledged and resolved, and late labels
from concept-drifted data moving the realized figures away from holdout while the label-free
estimate stays put. Nothing waits on a clock: the steps call the runtime's drift flush and label
processing themselves, so the demo ends in seconds (plus training, when models are missing).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table

from mlobs.api.app import create_app
from mlobs.data.demo_models import DEMO_NAMES as MODEL_NAMES
from mlobs.data.demo_models import demo_model
from mlobs.data.generator import DATASETS, DriftSpec, generate
from mlobs.data.store import DEFAULT_ROWS, dataset_path, read_dataset, write_dataset
from mlobs.models import is_saved, load_model, save_model
from mlobs.monitoring.profiles import PROFILE_FILE, profile_for_model, save_profile
from mlobs.tools.simulate import json_records

if TYPE_CHECKING:
    from mlobs.config import Settings

STATUS_STYLE = {"ok": "green", "warning": "yellow", "critical": "red", "insufficient_data": "dim"}


@dataclass(frozen=True)
class DemoOptions:
    interactive: bool = False
    seed: int = 42
    rows: int = 400  # rows per model per step: the drift window and the label window
    drift: float = 0.5  # covariate drift intensity (DriftSpec.preset)
    concept: float = 1.0  # concept drift of the labelled traffic


@dataclass
class DemoOutcome:
    trained: list[str]
    alerts: list[dict[str, Any]] = field(default_factory=list)  # every alert, at the end
    handled: dict[str, Any] | None = None  # the alert acknowledged then resolved
    drift: dict[str, dict[str, Any]] = field(default_factory=dict)  # the drifted window per model
    performance: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


def ensure_models(model_dir: Path, data_dir: Path, seed: int, console: Console) -> list[str]:
    """Train the models missing from ``model_dir`` (and build missing reference profiles), on
    the data in ``data_dir``, generated there first when absent: what ``mlobs train-models
    --only-missing`` and ``mlobs setup-reference --only-missing`` do. Returns what it trained."""
    done = []
    for name in MODEL_NAMES:
        has_model = is_saved(model_dir, name)
        if has_model and (Path(model_dir) / name / PROFILE_FILE).is_file():
            continue
        with console.status(f"training {name} (missing from {model_dir})"):
            if not dataset_path(data_dir, name).exists():
                write_dataset(generate(name, DEFAULT_ROWS[name], seed=seed), data_dir, name)
            data = read_dataset(data_dir, name)
            if has_model:
                model = load_model(model_dir, name)
                save_profile(profile_for_model(model, data), model_dir)
            else:
                model = demo_model(name)
                result = model.fit(data, seed=seed)
                save_model(model, model_dir)
                save_profile(profile_for_model(model, result.train), model_dir)
        console.print(f"  trained {name} -> {Path(model_dir) / name}")
        done.append(name)
    return done


def demo_settings(settings: Settings, workdir: Path, rows: int) -> Settings:
    """The user's settings with a throw-away database, small windows, no background timing
    and no notification channels (a demo must not page anyone)."""
    return settings.model_copy(
        update={
            "database_url": f"sqlite:///{workdir / 'demo.db'}",
            "log_level": "ERROR",  # the tables tell what the log lines would
            "log_flush_interval": 0.05,
            "drift_window_size": rows,
            "drift_window_seconds": 0.0,
            "drift_min_samples": rows // 2,
            "drift_flush_interval": 3600.0,  # the demo flushes itself
            "performance_window_size": rows,
            "performance_min_labels": min(100, rows // 2),
            "performance_estimate_window": rows,
            "performance_estimate_interval": 3600.0,
            "alert_rules_file": None,
            # In-process only (nothing listens on a port): no keys, whatever the user's are.
            "api_keys": "",
            "predict_requires_key": False,
            "environment": "development",
            "webhook_urls": "",
            "slack_webhook_url": None,
            "alertmanager_url": None,
        }
    )


# ------------------------------------------------------------------------------ HTTP helpers


def _ok(r: Any) -> Any:
    if r.status_code >= 400:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    return r.json()


def _wait_ready(client: TestClient, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/health/ready").status_code != 200:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the app is not ready after {timeout:g} s: {client.get('/health').text}"
            )
        time.sleep(0.05)


def _wait_logged(client: TestClient, prediction_id: str, timeout: float = 30.0) -> None:
    """Until the prediction log has written ``prediction_id`` (it writes in order)."""
    store = client.app.state.runtime.predictions  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while store.get(prediction_id) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the prediction log did not catch up")
        time.sleep(0.02)


def _batch(client: TestClient, model: str, df: Any) -> list[dict[str, Any]]:
    records = json_records(df, DATASETS[model].feature_names)
    out = _ok(client.post("/predict/batch", json={"model_name": model, "records": records}))
    preds: list[dict[str, Any]] = out["predictions"]
    _wait_logged(client, preds[-1]["prediction_id"])
    return preds


# ------------------------------------------------------------------------------ tables


def _status(s: str) -> str:
    return f"[{STATUS_STYLE.get(s, 'white')}]{s}[/]"


def _num(v: float | None, fmt: str = ".4f") -> str:
    return "-" if v is None else format(v, fmt)


def drift_table(report: Mapping[str, Any], title: str) -> Table:
    table = Table(title=title)
    for col in ("feature", "kind", "method", "score", "status"):
        table.add_column(col, justify="right" if col == "score" else "left")
    features = sorted(report["features"].values(), key=lambda f: -(f["score"] or 0.0))
    for f in features:
        table.add_row(f["feature"], f["kind"], f["method"], _num(f["score"]), _status(f["status"]))
    if report.get("prediction"):
        p = report["prediction"]
        table.add_row(
            "(prediction)", p["kind"], p["method"], _num(p["score"]), _status(p["status"])
        )
    return table


def windows_table(results: Mapping[str, Mapping[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("model", "window", "rows", "drift share", "dataset drift", "status"):
        table.add_column(col)
    for name, r in results.items():
        table.add_row(
            name,
            f"#{r['window_id']}",
            str(r["n_rows"]),
            f"{r['drift_share']:.2f}",
            "yes" if r["dataset_drift"] else "no",
            _status(r["status"]),
        )
    return table


def alerts_table(alerts: Sequence[Mapping[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("type", "model", "severity", "status", "message"):
        table.add_column(col, overflow="fold")
    for a in alerts:
        sev = "red" if a["severity"] == "critical" else "yellow"
        table.add_row(
            a["alert_type"],
            a["model_name"],
            f"[{sev}]{a['severity']}[/]",
            a["status"],
            a["message"],
        )
    return table


def performance_table(perf: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title="Performance: holdout, label-free estimate, realized from late labels")
    for col in ("model", "metric", "holdout", "estimated (no labels)", "realized", "gap", "bound"):
        table.add_column(col, justify="left" if col in ("model", "metric") else "right")
    for name, p in perf.items():
        rule = p["alert_rule"]
        metric = rule["metric"] if rule else "accuracy"
        realized = (p["realized"] or {}).get("metrics", {}).get(metric)
        estimated = (p["estimated"] or {}).get("metrics", {}).get(metric)
        gap = None if realized is None or estimated is None else estimated - realized
        fmt = ",.0f" if metric in ("mae", "rmse") else ".3f"
        sign = "<" if rule and rule["direction"] == "below" else ">"
        bound = f"{sign} {rule['bound']:{fmt}}" if rule else "-"
        table.add_row(
            name,
            metric,
            _num(p["holdout"].get(metric), fmt),
            _num(estimated, fmt),
            _num(realized, fmt),
            _num(gap, "+.3f"),
            bound,
        )
    return table


# ------------------------------------------------------------------------------ the walk-through


class _Demo:
    def __init__(
        self, client: TestClient, options: DemoOptions, console: Console, pause: Callable[[], Any]
    ) -> None:
        self.client, self.options, self.console, self._pause = client, options, console, pause
        self.runtime = client.app.state.runtime  # type: ignore[attr-defined]
        self.step_no = 0

    def step(self, title: str, text: str) -> None:
        if self.step_no and self.options.interactive:
            self._pause()
        self.step_no += 1
        self.console.rule(f"[bold]{self.step_no}. {title}")
        self.console.print(text)

    def latest_windows(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name in MODEL_NAMES:
            res = _ok(self.client.get(f"/monitoring/drift/history/{name}", params={"limit": 1}))
            out[name] = res["results"][0]
        return out

    def open_alerts(self) -> list[dict[str, Any]]:
        res = _ok(self.client.get("/monitoring/alerts", params={"status": "active", "limit": 100}))
        return list(res["alerts"])

    def traffic(self, drifted: bool, seed: int) -> None:
        for m in MODEL_NAMES:
            spec = DriftSpec.preset(m, self.options.drift) if drifted else None
            _batch(self.client, m, generate(m, self.options.rows, seed=seed, drift=spec))


def run_demo(
    settings: Settings,
    options: DemoOptions,
    console: Console,
    pause: Callable[[], Any] | None = None,
) -> DemoOutcome:
    """The walk-through. ``settings`` are the user's (their MODEL_DIR and DATA_DIR); the demo's
    database is temporary and removed at the end."""
    t0 = time.monotonic()
    pause = pause or (lambda: console.input("[dim]Press Enter for the next step...[/]"))
    opts = options
    console.rule("[bold]mlobs demo")
    trained = ensure_models(settings.model_dir, settings.data_dir, opts.seed, console)
    outcome = DemoOutcome(trained)
    with tempfile.TemporaryDirectory(prefix="mlobs-demo-") as tmp:
        app = create_app(demo_settings(settings, Path(tmp), opts.rows))
        with TestClient(app) as client:
            _wait_ready(client)
            _walk(_Demo(client, opts, console, pause), outcome)
    outcome.seconds = time.monotonic() - t0
    console.rule()
    console.print(
        f"Done in {outcome.seconds:.1f} s. The demo's database is gone; models "
        + (
            f"trained into {settings.model_dir}: {', '.join(trained)}."
            if trained
            else f"came from {settings.model_dir}."
        )
        + " Next: `make run`, then `python scripts/simulate_traffic.py --duration 120 --rate 5 "
        "--drift 0.3` and `mlobs report --model fraud --out report.html`."
    )
    return outcome


def _walk(d: _Demo, outcome: DemoOutcome) -> None:
    c, opts, con = d.client, d.options, d.console
    models = _ok(c.get("/predict/models"))["models"]
    table = Table(title="Models (holdout figures from training)")
    for col in ("model", "algorithm", "version", "holdout"):
        table.add_column(col)
    for m in models:
        h = m["holdout_metrics"]
        shown = {k: h[k] for k in ("roc_auc", "accuracy", "r2", "mae") if k in h}
        table.add_row(
            m["name"],
            m["algorithm"] or "-",
            m["version"] or "-",
            "  ".join(f"{k}={v:.4g}" for k, v in shown.items()),
        )
    con.print(table)

    d.step(
        "Serving predictions",
        f"One request per model, then {opts.rows} records per model like the training data. "
        f"A live window closes after {opts.rows} rows and is compared with the reference.",
    )
    singles = Table(title="Single predictions")
    for col in ("model", "prediction_id", "prediction", "probability"):
        singles.add_column(col)
    for i, name in enumerate(MODEL_NAMES):
        record = json_records(generate(name, 1, seed=opts.seed + i), DATASETS[name].feature_names)
        p = _ok(c.post(f"/predict/{name}", json=record[0]))
        value = f"{p['prediction']:,.0f}" if p["probability"] is None else str(p["prediction"])
        singles.add_row(name, p["prediction_id"], value, _num(p["probability"]))
    con.print(singles)
    d.traffic(False, opts.seed + 10)
    d.runtime.flush_drift()
    con.print(windows_table(d.latest_windows(), "Live windows of undrifted traffic"))

    d.step(
        "Injecting drift",
        f"{opts.rows} more records per model, drifted at intensity {opts.drift}: features "
        "shifted, category mixes changed, unseen categories, more missing values.",
    )
    d.traffic(True, opts.seed + 20)
    d.runtime.flush_drift()
    outcome.drift = d.latest_windows()
    con.print(drift_table(outcome.drift["fraud"]["report"], "Drift report: fraud"))
    con.print(windows_table(outcome.drift, "Live windows of drifted traffic"))
    opened = d.open_alerts()
    con.print(alerts_table(opened, "Alerts opened"))

    d.step(
        "Acknowledging and resolving an alert",
        "An operator takes the fraud drift alert: acknowledge (it stays open), then resolve.",
    )
    target = next((a for a in opened if a["model_name"] == "fraud"), opened[0] if opened else None)
    if target is not None:
        aid = target["id"]
        ack = _ok(
            c.post(
                f"/monitoring/alerts/{aid}/acknowledge",
                json={"by": "demo", "note": "new merchant mix; checking with the team"},
            )
        )
        con.print(
            f"acknowledged: [bold]{ack['alert_type']}[/] {ack['model_name']} -> {ack['status']}"
        )
        res = _ok(
            c.post(
                f"/monitoring/alerts/{aid}/resolve",
                json={"by": "demo", "note": "reference to be rebuilt after review"},
            )
        )
        con.print(f"resolved: [bold]{res['alert_type']}[/] {res['model_name']} -> {res['status']}")
        events = Table(title=f"History of alert {aid}")
        for col in ("event", "at", "by", "note"):
            events.add_column(col)
        for e in res["events"]:
            events.add_row(e["kind"], e["at"], e["by"] or "-", e["note"] or "-")
        con.print(events)
        outcome.handled = res

    d.step(
        "Late labels",
        f"{opts.rows} new predictions per model on data whose label relation changed (concept "
        f"drift {opts.concept}, features as in training), then their labels via /feedback/batch."
        " The label-free estimate only sees the features and stays near holdout; the realized "
        "figures from the labels fall.",
    )
    frames = {
        m: generate(m, opts.rows, seed=opts.seed + 30, drift=DriftSpec(concept=opts.concept))
        for m in MODEL_NAMES
    }
    target_col = {m: DATASETS[m].target for m in MODEL_NAMES}
    for name, df in frames.items():
        preds = _batch(c, name, df)
        items = [
            {"prediction_id": p["prediction_id"], "actual": float(y)}
            for p, y in zip(preds, df[target_col[name]].tolist(), strict=True)
        ]
        _ok(c.post("/feedback/batch", json={"items": items}))
    d.runtime.process_labels(full=True)
    outcome.performance = {m: _ok(c.get(f"/monitoring/performance/{m}")) for m in MODEL_NAMES}
    con.print(performance_table(outcome.performance))
    before = {a["id"] for a in opened}
    con.print(
        alerts_table(
            [a for a in d.open_alerts() if a["id"] not in before], "Alerts opened by the labels"
        )
    )

    d.step("Where things stand", "Every alert of the demo, newest first.")
    outcome.alerts = list(_ok(c.get("/monitoring/alerts", params={"limit": 100}))["alerts"])
    con.print(alerts_table(outcome.alerts, "All alerts"))
    summary = _ok(c.get("/monitoring/alerts/summary"))
    con.print(f"open alerts by type: {summary['by_type']}")
