"""The operator's web page at ``/`` (plain HTML, one script, one style sheet, all served from the
package: nothing from a CDN), and the two read-only JSON endpoints it needs beyond the others:
per-feature histograms against the reference, and per-model traffic and latency."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from prometheus_client import CollectorRegistry

from mlobs.api.deps import RuntimeDep
from mlobs.api.errors import responses
from mlobs.api.schemas import (
    FeatureHistogramOut,
    HistogramsOut,
    LatencyOut,
    ModelTrafficOut,
    TrafficOut,
)
from mlobs.errors import NotFound
from mlobs.monitoring.drift_monitor import WindowView
from mlobs.monitoring.metrics import scrape_registry
from mlobs.monitoring.profiles import OUTPUT, FeatureProfile, NumericProfile

router = APIRouter()

STATIC = Path(__file__).resolve().parent.parent / "static"
# Only these files are served: no path from the URL ever reaches the file system.
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
# The page loads its own script and style only, talks only to this origin, and may not be framed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**HEADERS, "Content-Security-Policy": CSP},
    )


@router.get("/static/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no asset {name!r}")
    return FileResponse(STATIC / name, media_type=f"{media_type}; charset=utf-8", headers=HEADERS)


# ------------------------------------------------------------------------------------ histograms


def _histogram(
    p: FeatureProfile, view: WindowView | None, verdict: dict[str, object] | None
) -> FeatureHistogramOut:
    """Shares of all rows over the feature's bins plus a final (missing) bucket."""
    present = 1.0 - p.missing_share
    reference = [share * present for share in p.proportions] + [p.missing_share]
    current, count, missing = None, 0, 0
    if view is not None:
        counts = view.counts.counts[p.name].tolist()
        missing = view.counts.missing.get(p.name, 0) if p.name != OUTPUT else 0
        count = sum(counts)
        total = count + missing
        current = [c / total if total else 0.0 for c in [*counts, missing]]
    v = verdict or {}
    return FeatureHistogramOut.model_validate(
        {
            "feature": p.name,
            "kind": p.kind,
            "bins": [*p.bin_labels(), "(missing)"],
            "edges": list(p.edges) if isinstance(p, NumericProfile) else None,
            "reference": reference,
            "current": current,
            "count": count,
            "missing": missing,
            "method": v.get("method"),
            "score": v.get("score"),
            "status": v.get("status", "insufficient_data"),
            "drifted": bool(v.get("drifted", False)),
            "reason": v.get("reason") if view is not None else "no live window yet",
        }
    )


@router.get(
    "/monitoring/drift/histograms/{model}",
    response_model=HistogramsOut,
    tags=["monitoring"],
    responses=responses(404, 422, 503),
)
def drift_histograms(
    model: str,
    rt: RuntimeDep,
    window: Annotated[
        Literal["auto", "closed", "open"],
        Query(description="`closed`: the last closed live window; `open`: the open one; "
                          "`auto`: the last closed, else the open."),
    ] = "auto",
) -> HistogramsOut:  # fmt: skip
    """Per feature (and the output), the reference shares and a live window's shares over the
    frozen bins, with the feature's drift score and status."""
    if model not in rt.models:
        raise NotFound("model", model)
    profile = rt.drift.profile(model)
    view = rt.drift.window_view(model, window)
    report = view.report if view is not None else {}
    verdicts = report.get("features") or {}
    return HistogramsOut(
        model_name=model,
        window=view.kind if view is not None else None,
        window_id=view.window_id if view is not None else None,
        n_rows=view.n_rows if view is not None else 0,
        evaluated_at=view.evaluated_at if view is not None else None,
        features=[_histogram(p, view, verdicts.get(n)) for n, p in profile.features.items()],
        prediction=(
            _histogram(profile.output, view, report.get("prediction"))
            if profile.output is not None
            else None
        ),
    )


# --------------------------------------------------------------------------------------- traffic


def quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of a cumulative histogram (upper bounds, counts), interpolated linearly
    within its bucket as Prometheus's ``histogram_quantile`` does; the highest finite bound
    when it falls in the +Inf bucket, None when the histogram is empty.

    >>> quantile([(1.0, 2), (2.0, 4), (float("inf"), 4)], 0.75)
    1.5
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def _traffic(registry: CollectorRegistry, names: Iterable[str]) -> TrafficOut:
    ok: dict[str, float] = {}
    errors: dict[str, float] = {}
    count: dict[str, float] = {}
    total: dict[str, float] = {}
    buckets: dict[str, dict[float, float]] = {}
    for family in registry.collect():
        for s in family.samples:
            model = s.labels.get("model_name", "")
            if s.name == "mlobs_predictions_total":
                target = ok if s.labels.get("status") == "success" else errors
                target[model] = target.get(model, 0.0) + s.value
            elif s.name == "mlobs_prediction_latency_seconds_bucket":
                per = buckets.setdefault(model, {})
                le = float(s.labels["le"])
                per[le] = per.get(le, 0.0) + s.value
            elif s.name == "mlobs_prediction_latency_seconds_count":
                count[model] = count.get(model, 0.0) + s.value
            elif s.name == "mlobs_prediction_latency_seconds_sum":
                total[model] = total.get(model, 0.0) + s.value
    out = {}
    for name in names:
        hist = sorted(buckets.get(name, {}).items())
        n = count.get(name, 0.0)

        def ms(q: float, hist: list[tuple[float, float]] = hist) -> float | None:
            v = quantile(hist, q)
            return None if v is None else v * 1e3

        out[name] = ModelTrafficOut(
            predictions=int(ok.get(name, 0.0) + errors.get(name, 0.0)),
            errors=int(errors.get(name, 0.0)),
            latency=LatencyOut(
                count=int(n),
                mean_ms=total.get(name, 0.0) / n * 1e3 if n else None,
                p50_ms=ms(0.5),
                p95_ms=ms(0.95),
                p99_ms=ms(0.99),
            ),
        )
    return TrafficOut(models=out)


@router.get("/monitoring/traffic", response_model=TrafficOut, tags=["monitoring"])
def traffic(rt: RuntimeDep) -> TrafficOut:
    """Per model: predictions served and failed, and single-row latency (mean, p50, p95, p99)
    since the service started, over all worker processes (the same counters as `/metrics`)."""
    return _traffic(scrape_registry(rt.registry), rt.models.names)
