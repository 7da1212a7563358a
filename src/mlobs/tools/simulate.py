"""The traffic simulator: records sent to a running API at a fixed rate per model
(open loop, optional linear ramp), optionally drifted, with late labels for a share of them; a
progress bar while it runs and a summary at the end (traffic, drift, alerts the run raised).

Bounded: the schedule fixes the number of requests (``rate x duration``, less the ramp's
triangle), at most ``concurrency`` are in flight (a request due while the limit is reached is not
sent and is counted as ``dropped``, as k6 counts dropped iterations), and every request has a
timeout. Whatever the server does, the run ends within ``duration + timeout + settle`` seconds.

Records: a demo model's come from its generator (drift presets, concept drift and labels that
follow the features); any other model's are drawn from its reference sample in ``MODEL_DIR`` and
drifted in ways any schema can take (``drift_rows``): numeric shifts in standard deviations,
re-weighted categories, missing values; their labels are the sample's own.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from mlobs.data.generator import DATASETS, DriftSpec, generate
from mlobs.models.artifacts import read_manifest
from mlobs.models.base import label_key
from mlobs.models.manifest import Manifest
from mlobs.storage.model_catalog import REFERENCE_SAMPLE_FILE as SAMPLE_FILE
from mlobs.tools.schedule import Tally, merge, schedule, total

POOL_ROWS = 20_000  # generated rows per model and phase; longer runs cycle through them
LABEL_BATCH = 500


class ApiUnreachable(Exception):
    """The API did not answer (or is not an mlobs API): the CLI prints this and exits with 2."""


@dataclass(frozen=True)
class SimulationConfig:
    url: str = "http://127.0.0.1:8000"
    models: tuple[str, ...] = ("fraud", "price", "churn")
    duration: float = 60.0
    rate: float = 5.0  # requests per second per model
    drift: float = 0.0  # 0..1, DriftSpec.preset intensity
    drift_after: float = 0.0  # seconds of clean traffic before the drift starts
    ramp: float = 0.0  # seconds to climb from 0 to ``rate``
    feedback_share: float = 0.0  # share of predictions that later get their label
    feedback_delay: float = 5.0  # seconds between a prediction and its label
    concurrency: int = 32
    timeout: float = 10.0
    settle: float = 3.0  # seconds to let the server evaluate its windows before the summary
    seed: int = 42
    api_key: str | None = None
    ready_timeout: float = 60.0
    model_dir: Path | None = None  # where the reference samples of catalogue models are

    def __post_init__(self) -> None:
        if not 0.0 <= self.drift <= 1.0:
            raise ValueError(f"drift must be in [0, 1], got {self.drift}")
        if not 0.0 <= self.feedback_share <= 1.0:
            raise ValueError(f"feedback share must be in [0, 1], got {self.feedback_share}")
        if not self.models:
            raise ValueError("no model to send traffic to")
        for m in self.models:
            if m in DATASETS:
                continue
            if self.model_dir is None or not (Path(self.model_dir) / m / SAMPLE_FILE).is_file():
                raise ValueError(
                    f"model {m!r}: no reference sample {Path(self.model_dir or '.') / m / SAMPLE_FILE}; "
                    f"the demo models are {list(DATASETS)}, others need MODEL_DIR"
                )

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}


@dataclass
class DriftOutcome:
    """What the server says about one model's drift after the run."""

    closed: list[dict[str, Any]] = field(default_factory=list)  # windows closed during the run
    window: dict[str, Any] = field(default_factory=dict)  # the open window's fill and limits
    so_far: dict[str, Any] | None = None  # verdict on the open window so far (not stored)

    @property
    def detected(self) -> bool:
        return any(r["dataset_drift"] for r in self.closed)


@dataclass
class SimulationResult:
    config: SimulationConfig
    tallies: dict[str, Tally]
    elapsed: float
    drift: dict[str, DriftOutcome]
    alerts: list[dict[str, Any]]  # alerts opened during the run
    problems: list[str] = field(default_factory=list)  # what could not be read after the run

    @property
    def drift_detected(self) -> bool:
        return any(d.detected for d in self.drift.values())


# ------------------------------------------------------------------------------ the records


def json_records(df: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows as JSON-ready request bodies (NaN becomes null)."""
    records = df[list(columns)].to_dict("records")
    return [{str(k): (None if _missing(v) else v) for k, v in r.items()} for r in records]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


@dataclass(frozen=True)
class _Pool:
    records: list[dict[str, Any]]
    labels: list[Any]  # what /feedback takes: 0/1, a number or a class label

    @classmethod
    def make(cls, name: str, n: int, seed: int, drift: DriftSpec | None) -> _Pool:
        spec = DATASETS[name]
        df = generate(name, max(1, min(n, POOL_ROWS)), seed=seed, drift=drift)
        return cls(json_records(df, spec.feature_names), df[spec.target].tolist())

    @classmethod
    def sampled(cls, folder: Path, n: int, seed: int, intensity: float) -> _Pool:
        """Rows drawn from a catalogue model's reference sample, drifted by ``intensity``."""
        manifest = read_manifest(folder)
        sample = pd.read_parquet(folder / SAMPLE_FILE)
        rng = np.random.default_rng(seed)
        df = sample.iloc[rng.integers(0, len(sample), size=max(1, min(n, POOL_ROWS)))]
        df = drift_rows(df.reset_index(drop=True), manifest, intensity, rng)
        target = manifest.target
        labels: list[Any] = [math.nan] * len(df)
        if target and target in df.columns:
            if manifest.task == "regression":
                labels = df[target].tolist()
            elif manifest.task == "binary_classification":  # /feedback takes 1 for the positive
                positive = label_key(
                    manifest.positive_class if manifest.positive_class is not None else 1
                )
                labels = [math.nan if _missing(v) else float(label_key(v) == positive)
                          for v in df[target]]  # fmt: skip
            else:  # multiclass: /feedback takes the class label itself
                labels = [math.nan if _missing(v) else label_key(v) for v in df[target]]
        return cls(json_records(df, [f.name for f in manifest.features]), labels)

    def row(self, i: int) -> tuple[dict[str, Any], Any]:
        j = i % len(self.records)
        label = self.labels[j]
        return self.records[j], None if _missing(label) else label


def drift_rows(
    df: pd.DataFrame, manifest: Manifest, intensity: float, rng: np.random.Generator
) -> pd.DataFrame:
    """Drift any schema can take, at ``intensity`` in [0, 1]: the first half of the numeric
    features move by ``2 x intensity`` standard deviations (clipped to declared bounds); the first
    half of the categorical ones give ``intensity / 2`` of their rows to their rarest category;
    booleans flip with probability ``intensity / 4``; nullable features lose ``intensity / 10``
    of their values. The labels are left as they were (covariate shift)."""
    if intensity <= 0:
        return df
    out = df.copy()
    numeric = [f for f in manifest.features if f.kind == "numeric"]
    categorical = [f for f in manifest.features if f.kind == "categorical"]
    for f in numeric[: max(1, len(numeric) // 2)] if numeric else []:
        x = pd.to_numeric(out[f.name], errors="coerce").astype(float)
        sd = float(np.nanstd(x)) or 1.0
        moved = x + 2.0 * intensity * sd
        if f.integer:
            moved = moved.round()
        out[f.name] = moved.clip(lower=f.minimum, upper=f.maximum)
    for f in categorical[: max(1, len(categorical) // 2)] if categorical else []:
        counts = out[f.name].dropna().astype(str).value_counts()
        if len(counts) < 2:
            continue
        take = rng.random(len(out)) < intensity / 2
        out.loc[take, f.name] = counts.index[-1]
    for f in manifest.features:
        if f.kind == "boolean":
            flip = rng.random(len(out)) < intensity / 4
            out.loc[flip, f.name] = ~out.loc[flip, f.name].astype(bool)
        if f.nullable:
            if out[f.name].dtype == bool:
                out[f.name] = out[f.name].astype(object)
            out.loc[rng.random(len(out)) < intensity / 10, f.name] = None
    return out


# ------------------------------------------------------------------------------ before and after


def probe(config: SimulationConfig) -> list[str]:
    """Check the API answers and is ready; the requested models it serves. ApiUnreachable else."""
    url = config.url.rstrip("/")
    deadline = time.monotonic() + config.ready_timeout
    while True:
        try:
            r = httpx.get(f"{url}/health/ready", timeout=5.0, headers=config.headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            reason = type(exc).__name__ if not str(exc) else str(exc)
            raise ApiUnreachable(
                f"cannot reach the mlobs API at {url} ({reason}); start it with `make run` "
                "or point --url at it"
            ) from None
        if r.status_code == 200:
            break
        if r.status_code != 503:
            raise ApiUnreachable(
                f"{url} does not look like the mlobs API: GET /health/ready answered "
                f"{r.status_code}"
            )
        if time.monotonic() > deadline:
            raise ApiUnreachable(f"the API at {url} is not ready after {config.ready_timeout:g} s")
        time.sleep(0.5)
    try:
        r = httpx.get(f"{url}/predict/models", timeout=10.0, headers=config.headers)
        r.raise_for_status()
        loaded = {m["name"] for m in r.json()["models"] if m["loaded"]}
    except httpx.HTTPError as exc:
        raise ApiUnreachable(f"the API at {url} did not list its models: {exc}") from None
    serving = [m for m in config.models if m in loaded]
    if not serving:
        raise ApiUnreachable(f"the API at {url} serves none of {list(config.models)}")
    return serving


def _alert_ids(client: httpx.Client) -> set[str]:
    r = client.get("/monitoring/alerts", params={"limit": 500})
    r.raise_for_status()
    return {a["id"] for a in r.json()["alerts"]}


def _last_window(client: httpx.Client, model: str) -> int:
    r = client.get(f"/monitoring/drift/history/{model}", params={"limit": 1})
    if r.status_code != 200:
        return 0
    results = r.json()["results"]
    return int(results[0]["window_id"] or 0) if results else 0


def _drift_after_run(client: httpx.Client, model: str, before: int) -> DriftOutcome:
    out = DriftOutcome()
    r = client.get(f"/monitoring/drift/history/{model}", params={"limit": 100})
    if r.status_code == 200:
        out.closed = [x for x in r.json()["results"] if int(x["window_id"] or 0) > before]
    r = client.get(f"/monitoring/drift/status/{model}")
    if r.status_code == 200:
        out.window = r.json()["window"]
    r = client.post("/monitoring/drift/check", json={"model_name": model})
    if r.status_code == 200:
        out.so_far = r.json()["drift"]
    return out


# ------------------------------------------------------------------------------ the run


@dataclass
class _Label:
    due: float
    model: str
    prediction_id: str
    actual: float


@dataclass
class _Run:
    config: SimulationConfig
    tallies: dict[str, Tally]
    progress: Progress
    task: TaskID
    pending: list[_Label] = field(default_factory=list)
    label_refusal: str | None = None

    async def one(
        self, client: httpx.AsyncClient, model: str, record: dict[str, Any], label: float | None
    ) -> None:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        status: int | None = None
        pid: str | None = None
        try:
            r = await client.post(f"/predict/{model}", json=record)
            status = r.status_code
            if status == 200 and label is not None:
                pid = str(r.json()["prediction_id"])
        except httpx.TransportError:
            pass
        self.tallies[model].record(status, time.perf_counter() - t0)
        if pid is not None and label is not None:
            self.pending.append(_Label(loop.time() + self.config.feedback_delay, model, pid, label))
        self.progress.advance(self.task)

    async def labels(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        """Every half second: post the labels that are due, and refresh the progress line.
        Once ``stop`` is set, the labels still waiting are posted and the loop ends."""
        loop = asyncio.get_running_loop()
        while True:
            stopping = stop.is_set()
            now = loop.time()
            due = [x for x in self.pending if stopping or x.due <= now]
            self.pending = [x for x in self.pending if not (stopping or x.due <= now)]
            for i in range(0, len(due), LABEL_BATCH):
                await self._post_labels(client, due[i : i + LABEL_BATCH])
            self.progress.update(self.task, stats=_stats_line(self.tallies.values()))
            if stopping:
                return
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass

    async def _post_labels(self, client: httpx.AsyncClient, batch: list[_Label]) -> None:
        items = [{"prediction_id": x.prediction_id, "actual": x.actual} for x in batch]
        try:
            r = await client.post("/feedback/batch", json={"items": items})
            ok = r.status_code == 200
            if r.status_code in (401, 403):
                self.label_refusal = f"the API refused the labels ({r.status_code}): pass --api-key"
        except httpx.TransportError:
            ok = False
        for x in batch:
            tally = self.tallies[x.model]
            if ok:
                tally.labels_sent += 1
            else:
                tally.label_errors += 1


def _stats_line(tallies: Any) -> str:
    t = total(tallies)
    p50 = t.p50()
    return f"ok {t.ok}  errors {t.failed}  dropped {t.dropped}" + (
        f"  p50 {p50 * 1e3:.1f} ms" if p50 is not None else ""
    )


def _pools(config: SimulationConfig, model: str, n: int) -> dict[bool, _Pool]:
    """The clean and the drifted records of one model."""
    if model in DATASETS:
        preset = DriftSpec.preset(model, config.drift)
        return {False: _Pool.make(model, n, config.seed, None),
                True: _Pool.make(model, n, config.seed + 1, preset)}  # fmt: skip
    folder = Path(config.model_dir or ".") / model
    return {False: _Pool.sampled(folder, n, config.seed, 0.0),
            True: _Pool.sampled(folder, n, config.seed + 1, config.drift)}  # fmt: skip


async def _drive(
    run: _Run, plan: list[tuple[float, str, int]], pools: Mapping[str, Mapping[bool, _Pool]]
) -> None:
    cfg = run.config
    rng = np.random.default_rng(cfg.seed)
    wants_label = rng.random(len(plan)) < cfg.feedback_share
    limits = httpx.Limits(
        max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency
    )
    async with httpx.AsyncClient(
        base_url=cfg.url.rstrip("/"), timeout=cfg.timeout, limits=limits, headers=cfg.headers
    ) as client:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        labeller = asyncio.create_task(run.labels(client, stop))
        in_flight: set[asyncio.Task[None]] = set()
        start = loop.time()
        for n, (offset, model, i) in enumerate(plan):
            wait = start + offset - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if len(in_flight) >= cfg.concurrency:
                run.tallies[model].dropped += 1
                run.progress.advance(run.task)
                continue
            drifted = cfg.drift > 0 and offset >= cfg.drift_after
            record, label = pools[model][drifted].row(i)
            t = asyncio.create_task(
                run.one(client, model, record, label if wants_label[n] else None)
            )
            in_flight.add(t)
            t.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.wait(in_flight, timeout=cfg.timeout + 1)
        stop.set()
        await labeller


def simulate(config: SimulationConfig, console: Console) -> SimulationResult:
    """Run the simulation against ``config.url``; ApiUnreachable when the API does not answer."""
    models = probe(config)
    skipped = [m for m in config.models if m not in models]
    if skipped:
        console.print(f"[yellow]not served by the API, skipped: {', '.join(skipped)}[/]")
    url = config.url.rstrip("/")
    try:
        with httpx.Client(base_url=url, timeout=30.0, headers=config.headers) as client:
            known_alerts = _alert_ids(client)
            last_windows = {m: _last_window(client, m) for m in models}
    except httpx.HTTPError as exc:
        raise ApiUnreachable(f"the API at {url} failed before the run: {exc}") from None

    times = {m: schedule(config.rate, config.duration, config.ramp) for m in models}
    plan = merge(times)
    pools = {m: _pools(config, m, len(times[m])) for m in models}
    tallies = {m: Tally(planned=len(times[m])) for m in models}
    console.print(
        f"Sending {len(plan):,} requests to {url} over {config.duration:g} s: "
        f"{config.rate:g}/s per model for {', '.join(models)}"
        + (f", ramp {config.ramp:g} s" if config.ramp else "")
        + (
            f", drift {config.drift:g}"
            + (f" from {config.drift_after:g} s" if config.drift_after else "")
            if config.drift
            else ""
        )
        + (f", labels for {config.feedback_share:.0%}" if config.feedback_share else "")
    )
    t0 = time.monotonic()
    with Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console,
    ) as progress:
        task = progress.add_task("traffic", total=len(plan), stats="")
        run = _Run(config, tallies, progress, task)
        asyncio.run(_drive(run, plan, pools))
    elapsed = time.monotonic() - t0
    if run.label_refusal:
        console.print(f"[yellow]{run.label_refusal}[/]")

    with console.status(f"letting the server evaluate its windows ({config.settle:g} s)"):
        time.sleep(config.settle)
    result = SimulationResult(config, tallies, elapsed, {}, [])
    try:
        with httpx.Client(base_url=url, timeout=30.0, headers=config.headers) as client:
            result.drift = {m: _drift_after_run(client, m, last_windows[m]) for m in models}
            r = client.get("/monitoring/alerts", params={"limit": 500})
            r.raise_for_status()
            result.alerts = [a for a in r.json()["alerts"] if a["id"] not in known_alerts]
    except httpx.HTTPError as exc:
        result.problems.append(f"could not read drift and alerts from {url} after the run: {exc}")
    return result


# ------------------------------------------------------------------------------ the summary


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.1f}"


def _errors(t: Tally) -> str:
    return f"{t.failed}" + (
        " (" + ", ".join(f"{k} {v}" for k, v in t.errors.items() if v) + ")" if t.failed else ""
    )


def _verdict(report: Mapping[str, Any]) -> str:
    if report["status"] == "insufficient_data":
        return f"no verdict ({report['n_rows']} rows)"
    drift = "DRIFT" if report["dataset_drift"] else "no drift"
    return f"{drift}, share {report['drift_share']:.2f}, {report['status']}"


def summary_tables(result: SimulationResult) -> list[Table]:
    """The traffic, drift and alert tables printed at the end."""
    traffic = Table(title=f"Traffic ({result.elapsed:.1f} s)")
    for col in ("model", "planned", "sent", "ok", "errors", "dropped", "p50 ms", "p99 ms"):
        traffic.add_column(col, justify="left" if col in ("model", "errors") else "right")
    if result.config.feedback_share:
        traffic.add_column("labels", justify="right")
    rows = [*result.tallies.items(), ("total", total(result.tallies.values()))]
    for name, t in rows:
        cells = [name, f"{t.planned:,}", f"{t.sent:,}", f"{t.ok:,}", _errors(t), f"{t.dropped:,}",
                 _ms(t.p50()), _ms(t.p99())]  # fmt: skip
        if result.config.feedback_share:
            cells.append(
                f"{t.labels_sent:,}" + (f" ({t.label_errors} failed)" if t.label_errors else "")
            )
        traffic.add_row(*cells, style="bold" if name == "total" else None)

    drift = Table(title="Drift (live windows)")
    for col in ("model", "windows closed", "latest closed window", "open window", "open so far"):
        drift.add_column(col)
    for name, d in result.drift.items():
        latest = d.closed[0] if d.closed else None
        w = d.window
        fill = f"{w.get('rows', 0):,}/{w.get('size', 0):,} rows" if w else "-"
        if w.get("seconds"):
            fill += f" (or {w['seconds']:g} s)"
        drift.add_row(
            name,
            str(len(d.closed)),
            f"#{latest['window_id']}: {_verdict(latest['report'])}" if latest else "none yet",
            fill,
            _verdict(d.so_far) if d.so_far else "-",
            style="red" if d.detected else None,
        )

    if not result.alerts:
        return [traffic, drift] if result.drift else [traffic]
    alerts = Table(title=f"Alerts raised during the run ({len(result.alerts)})")
    for col in ("type", "model", "severity", "status", "message"):
        alerts.add_column(col, overflow="fold")
    for a in result.alerts:
        alerts.add_row(a["alert_type"], a["model_name"], a["severity"], a["status"], a["message"])
    return [traffic, drift, alerts]


def print_summary(result: SimulationResult, console: Console) -> None:
    for table in summary_tables(result):
        console.print(table)
    for problem in result.problems:
        console.print(f"[yellow]{problem}[/]")
    if not result.drift:
        return
    if result.drift_detected:
        console.print("[bold red]Drift detected[/] in a live window closed during the run.")
    elif not any(d.closed for d in result.drift.values()):
        w = next(iter(result.drift.values())).window
        limits = f"{w.get('size', '?')} rows" + (
            f" or {w['seconds']:g} s" if w.get("seconds") else ""
        )
        console.print(
            f"No live window closed during the run: the server closes one after {limits} "
            f"(DRIFT_WINDOW_SIZE, DRIFT_WINDOW_SECONDS) and judges it from "
            f"{w.get('min_samples', '?')} rows; the open window's verdict so far is shown above."
        )
    if not result.alerts:
        console.print("No alert opened during the run.")
