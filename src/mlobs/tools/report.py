"""Drift reports: the latest closed live window of each model, as one self-contained HTML page
(inline CSS and SVG, no scripts, no external assets) or as JSON with the same content.

Two sources, the same content: the local database (what ``DATABASE_URL`` / ``DATA_DIR`` name,
with the reference profile read from ``MODEL_DIR``), or a running server's API (``--url``:
``GET /monitoring/drift/status/{model}``). A closed window's stored result already carries, per
feature, the frozen bins and the reference and current proportions over them, so the charts are
exactly what the verdict was computed on.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from mlobs.monitoring.live_windows import result_to_dict
from mlobs.monitoring.profiles import load_profile
from mlobs.storage.db import make_engine
from mlobs.storage.drift_repository import DriftRepository

REPORT_KEYS = ("generated_at", "source", "models", "models_without_result")
MODEL_KEYS = (
    "model_name", "window_id", "evaluated_at", "n_rows", "status", "dataset_drift", "drift_share",
    "drifted_features_count", "scored_features_count", "thresholds", "reference", "features",
    "prediction", "quality", "history",
)  # fmt: skip
FEATURE_KEYS = (
    "feature", "kind", "method", "score", "status", "drifted", "bins", "reference", "current",
    "count", "missing_share",
)  # fmt: skip


class ReportError(Exception):
    """Nothing to report, or the source cannot be read: the CLI prints this and exits with 1."""


# ------------------------------------------------------------------------------ the content


def _feature(f: Mapping[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in FEATURE_KEYS}


# Closed windows and backfilled periods shown per model, newest first.
HISTORY = 60


def _history_row(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "dataset_name": r["dataset_name"], "window_start": r.get("window_start"),
        "window_end": r.get("window_end"), "evaluated_at": r["created_at"],
        "n_rows": r["n_rows"], "dataset_drift": r["dataset_drift"],
        "drift_share": r["drift_share"],
    }  # fmt: skip


def model_entry(
    result: Mapping[str, Any],
    reference: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One model's section from a stored live-window result (the API's ``DriftResultOut``
    shape); features ordered by score, highest first (unscored last); ``history``: the model's
    closed windows and backfilled periods (newest first), a row each."""
    report = result["report"]
    features = sorted(
        (_feature(f) for f in report["features"].values()),
        key=lambda f: (f["score"] is None, -(f["score"] or 0.0), f["feature"]),
    )
    return {
        "model_name": result["model_name"],
        "window_id": result["window_id"],
        "evaluated_at": result["created_at"],
        "n_rows": result["n_rows"],
        "status": report["status"],
        "dataset_drift": result["dataset_drift"],
        "drift_share": result["drift_share"],
        "drifted_features_count": result["drifted_features_count"],
        "scored_features_count": report["scored_features_count"],
        "thresholds": dict(report["thresholds"]),
        "reference": dict(reference) if reference else None,
        "features": features,
        "prediction": _feature(report["prediction"]) if report.get("prediction") else None,
        "quality": result.get("quality"),
        "history": [_history_row(r) for r in history],
    }


def build_report(
    entries: Sequence[dict[str, Any]], source: str, missing: Sequence[str] = ()
) -> dict[str, Any]:
    if not entries:
        raise ReportError(
            f"no closed live window for {', '.join(missing)} in {source} yet: send traffic "
            "(e.g. `mlobs simulate`) until a window closes"
        )
    return {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "models": list(entries),
        "models_without_result": list(missing),
    }


def from_database(database_url: str, model_dir: Path, models: Sequence[str]) -> dict[str, Any]:
    """The report from the local database and reference profiles."""
    url = make_url(database_url)
    source = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(str(url.database)).is_file():
            raise ReportError(
                f"no database at {url.database}: run the service (`make run`) and send traffic "
                "first, or set DATA_DIR / DATABASE_URL"
            )
    engine = make_engine(database_url)
    entries, missing = [], []
    try:
        repo = DriftRepository(engine)
        for name in models:
            last = repo.history(name, ("live", "backfill"), HISTORY)
            if not last:
                missing.append(name)
                continue
            r = last[0]
            profile = load_profile(model_dir, name)
            reference = (
                {
                    "model_version": profile.model_version,
                    "rows": profile.rows,
                    "created_at": profile.created_at,
                }  # fmt: skip
                if profile is not None
                else None
            )
            result = {
                "model_name": r.model_name, "window_id": r.window_id,
                "created_at": r.created_at.isoformat(), "n_rows": r.n_rows,
                "dataset_drift": r.dataset_drift, "drift_share": r.drift_share,
                "drifted_features_count": r.drifted_features_count, "report": r.report,
                "quality": r.quality,
            }  # fmt: skip
            entries.append(model_entry(result, reference, [result_to_dict(x) for x in last]))
    except SQLAlchemyError as exc:
        raise ReportError(
            f"cannot read drift results from {source}: {type(exc).__name__} (has the service "
            "run on this database?)"
        ) from None
    finally:
        engine.dispose()
    return build_report(entries, source, missing)


def from_api(
    url: str,
    models: Sequence[str],
    api_key: str | None = None,
    *,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """The report from a running server's ``/monitoring/drift/status/{model}`` (through
    ``client`` when one is given, e.g. a test client); no ``models``: every model it has."""
    base = url.rstrip("/")
    headers = {"X-API-Key": api_key} if api_key else {}
    entries, missing = [], []
    try:
        with contextlib.ExitStack() as stack:
            if client is None:
                client = stack.enter_context(
                    httpx.Client(base_url=base, timeout=30.0, headers=headers)
                )
            if not models:
                listed = client.get("/predict/models")
                listed.raise_for_status()
                models = [m["name"] for m in listed.json()["models"]]
            for name in models:
                r = client.get(f"/monitoring/drift/status/{name}")
                if r.status_code == 404:
                    missing.append(name)
                    continue
                r.raise_for_status()
                status = r.json()
                if status["last_result"] is None:
                    missing.append(name)
                    continue
                ref = status["reference"]
                reference = {k: ref[k] for k in ("model_version", "rows", "created_at")}
                past = client.get(f"/monitoring/drift/history/{name}", params={"limit": HISTORY})
                past.raise_for_status()
                entries.append(model_entry(status["last_result"], reference,
                                           past.json()["results"]))  # fmt: skip
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ReportError(f"cannot read drift results from {base}: {exc}") from None
    return build_report(entries, base, missing)


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, allow_nan=False) + "\n"


# ------------------------------------------------------------------------------ HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1180px;
color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #dde;
padding-bottom:4px}.meta{color:#667;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{border:1px solid #dde;border-radius:6px;padding:6px 12px;min-width:110px}
.card b{display:block;font-size:17px}.card span{color:#667;font-size:12px}
table{border-collapse:collapse;margin:8px 0;width:100%}th,td{border-bottom:1px solid #eef;
padding:4px 8px;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{border-radius:10px;padding:1px 8px;font-size:12px;color:#fff;white-space:nowrap}
.ok{background:#2e7d32}.warning{background:#ef8f00}.critical{background:#c62828}
.insufficient_data{background:#78808a}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:14px}
figure{margin:0;border:1px solid #eef;border-radius:6px;padding:6px}
figcaption{font-size:13px;margin-bottom:2px}svg text{font:10px sans-serif;fill:#445}
"""
_REF, _CUR = "#8da9c4", "#d1495b"


def _badge(status: str) -> str:
    cls = status if status in ("ok", "warning", "critical") else "insufficient_data"
    return f'<span class="badge {cls}">{escape(status)}</span>'


def _num(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def bar_chart(bins: Sequence[str], reference: Sequence[float], current: Sequence[float]) -> str:
    """Inline SVG: reference and current proportion per bin, side by side."""
    n = max(len(bins), 1)
    width, height, left, top, bottom = 380, 190, 38, 18, 56
    plot_w, plot_h = width - left - 8, height - top - bottom
    peak = max([*reference, *current, 0.01])
    group = plot_w / n
    bar = group * 0.38
    out = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#99a"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{peak:.0%}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0%</text>',
        f'<rect x="{width - 150}" y="2" width="10" height="10" fill="{_REF}"/>'
        f'<text x="{width - 136}" y="11">reference</text>'
        f'<rect x="{width - 80}" y="2" width="10" height="10" fill="{_CUR}"/>'
        f'<text x="{width - 66}" y="11">current</text>',
    ]
    for i, label in enumerate(bins):
        x0 = left + i * group + group * 0.12
        for j, (values, color, what) in enumerate(
            ((reference, _REF, "reference"), (current, _CUR, "current"))
        ):
            v = values[i] if i < len(values) else 0.0
            h = plot_h * v / peak
            x = x0 + j * bar
            out.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(label)}: {what} {v:.1%}</title></rect>'
            )
        short = label if len(label) <= 14 else label[:13] + "\u2026"
        cx, cy = left + (i + 0.5) * group, top + plot_h + 10
        out.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" '
            f'transform="rotate(-40 {cx:.1f} {cy:.1f})">{escape(short)}'
            f"<title>{escape(label)}</title></text>"
        )
    out.append("</svg>")
    return "".join(out)


def _chart_figure(f: Mapping[str, Any], label: str) -> str:
    caption = (
        f"<b>{escape(label)}</b> {_badge(str(f['status']))} "
        f"{escape(str(f['method']))} {_num(f['score'])}"
    )
    return (
        f"<figure><figcaption>{caption}</figcaption>"
        f"{bar_chart(f['bins'] or [], f['reference'] or [], f['current'] or [])}</figure>"
    )


def _model_section(m: Mapping[str, Any]) -> str:
    name = escape(str(m["model_name"]))
    ref = m["reference"]
    ref_line = (
        f"reference: model version {escape(str(ref['model_version']))}, {ref['rows']:,} rows, "
        f"built {escape(str(ref['created_at']))}"
        if ref
        else "reference profile not found"
    )
    cards = [
        ("status", _badge(str(m["status"]))),
        ("dataset drift", "yes" if m["dataset_drift"] else "no"),
        ("drift share", f"{m['drift_share']:.2f}"),
        ("drifted features", f"{m['drifted_features_count']} / {m['scored_features_count']}"),
        ("rows", f"{m['n_rows']:,}"),
        ("window", f"#{escape(str(m['window_id']))}"),
    ]
    rows = []
    features = [(str(f["feature"]), f) for f in m["features"]]
    if m["prediction"]:
        features.append(("prediction (output)", m["prediction"]))
    for label, f in features:
        rows.append(
            f"<tr><td>{escape(label)}</td><td>{escape(str(f['kind']))}</td>"
            f"<td>{escape(str(f['method']))}</td><td class=num>{_num(f['score'])}</td>"
            f"<td>{_badge(str(f['status']))}</td><td class=num>{f['count']:,}</td>"
            f"<td class=num>{f['missing_share']:.1%}</td></tr>"
        )
    thresholds = ", ".join(f"{escape(k)} {v:g}" for k, v in m["thresholds"].items())
    past = "".join(
        f"<tr><td>{escape(str(h['dataset_name']))}</td>"
        f"<td>{escape(str(h['window_start'] or ''))}</td><td>{escape(str(h['window_end'] or ''))}</td>"
        f"<td>{escape(str(h['evaluated_at']))}</td><td class=num>{h['n_rows']:,}</td>"
        f"<td>{'yes' if h['dataset_drift'] else 'no'}</td><td class=num>{h['drift_share']:.2f}</td></tr>"
        for h in m.get("history", [])
    )
    history = (
        "<h3>History</h3><table><thead><tr><th>source</th><th>period start</th>"
        "<th>period end</th><th>evaluated</th><th>rows</th><th>dataset drift</th>"
        f"<th>drift share</th></tr></thead><tbody>{past}</tbody></table>"
        if past
        else ""
    )
    return (
        f'<section id="model-{name}"><h2>{name}</h2>'
        f'<div class="meta">window evaluated {escape(str(m["evaluated_at"]))}; {ref_line}; '
        f"thresholds: {thresholds}</div>"
        '<div class="cards">'
        + "".join(f"<div class=card><b>{v}</b><span>{k}</span></div>" for k, v in cards)
        + "</div><table><thead><tr><th>feature</th><th>kind</th><th>method</th><th>score</th>"
        "<th>status</th><th>count</th><th>missing</th></tr></thead><tbody>"
        + "".join(rows)
        + '</tbody></table><div class="charts">'
        + "".join(_chart_figure(f, label) for label, f in features)
        + "</div>"
        + history
        + "</section>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The whole report as one HTML document (everything inline, every value escaped)."""
    names = ", ".join(str(m["model_name"]) for m in report["models"])
    missing = report["models_without_result"]
    note = (
        f"<p class=meta>No closed live window yet for: {escape(', '.join(missing))}.</p>"
        if missing
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mlobs drift report: {escape(names)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Drift report</h1><div class=meta>generated {escape(str(report['generated_at']))} "
        f"from {escape(str(report['source']))}; the latest closed live window per model</div>"
        + note
        + "".join(_model_section(m) for m in report["models"])
        + "</body></html>\n"
    )
