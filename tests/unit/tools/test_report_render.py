"""Rendering of drift reports: every value escaped, nothing external, JSON and HTML alike."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from mlobs.tools.report import (
    FEATURE_KEYS,
    MODEL_KEYS,
    REPORT_KEYS,
    ReportError,
    bar_chart,
    build_report,
    model_entry,
    render_html,
    render_json,
)

EVIL = '<script>alert("x")</script>'


def _feature(name: str, score: float | None, status: str, kind: str = "numeric") -> dict[str, Any]:
    return {
        "feature": name, "kind": kind, "method": "psi" if kind == "numeric" else "jensenshannon",
        "score": score, "status": status, "drifted": status in ("warning", "critical"),
        "bins": ["(-inf, 1]", "(1, inf]"] if kind == "numeric" else ["a", EVIL, "(unseen)"],
        "reference": [0.5, 0.5] if kind == "numeric" else [0.6, 0.4, 0.0],
        "current": [0.2, 0.8] if kind == "numeric" else [0.3, 0.5, 0.2],
        "count": 400, "missing_share": 0.01, "reason": None,
    }  # fmt: skip


def _result() -> dict[str, Any]:
    features = {
        "amount": _feature("amount", 0.41, "critical"),
        EVIL: _feature(EVIL, 0.12, "warning", "categorical"),
        "hour": _feature("hour", 0.01, "ok"),
        "empty": _feature("empty", None, "insufficient_data"),
    }
    return {
        "model_name": "fraud", "window_id": 7, "created_at": "2026-01-01T00:00:00+00:00",
        "n_rows": 400, "dataset_drift": True, "drift_share": 2 / 3, "drifted_features_count": 2,
        "report": {
            "status": "critical", "scored_features_count": 3, "features": features,
            "thresholds": {"psi_warning": 0.1, "psi_critical": 0.2},
            "prediction": _feature("__prediction__", 0.3, "critical"),
        },
        "quality": {"status": "ok"},
    }  # fmt: skip


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _report() -> dict[str, Any]:
    reference = {"model_version": "abc", "rows": 1000, "created_at": "2026-01-01"}
    return build_report([model_entry(_result(), reference)], "sqlite:///x.db", ["price"])


def test_entry_orders_features_by_score_and_keeps_the_stored_figures() -> None:
    entry = model_entry(_result(), None)
    assert tuple(entry) == MODEL_KEYS
    assert [f["feature"] for f in entry["features"]] == ["amount", EVIL, "hour", "empty"]
    assert all(tuple(f) == FEATURE_KEYS for f in entry["features"])
    assert entry["features"][0]["score"] == 0.41 and entry["drift_share"] == 2 / 3


def test_json_has_the_documented_keys() -> None:
    data = json.loads(render_json(_report()))
    assert tuple(data) == REPORT_KEYS
    assert data["models_without_result"] == ["price"]
    assert tuple(data["models"][0]) == MODEL_KEYS
    assert data["models"][0]["prediction"]["score"] == 0.3


def test_html_parses_escapes_everything_and_references_nothing_outside() -> None:
    page = render_html(_report())
    parser = _Collector()
    parser.feed(page)
    parser.close()
    assert "script" not in parser.tags  # the feature named <script> stayed text
    assert EVIL in "".join(parser.text)
    assert parser.tags.count("svg") == 5  # 4 features and the prediction
    assert not [v for k, v in parser.attrs if k in ("src", "href")]
    assert not re.search(r"https?://|url\(|@import", page)
    for needle in ("amount", "0.4100", "critical", "insufficient_data", "window evaluated"):
        assert needle in page


def test_a_bar_per_bin_and_series_scaled_to_the_peak() -> None:
    svg = bar_chart(["a", "b"], [0.25, 0.75], [0.5, 0.5])
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" fill="#\w+"><title>', svg)]
    assert len(heights) == 4
    assert max(heights) == pytest.approx(116.0)  # the peak (0.75) fills the plot
    assert heights[0] == pytest.approx(116.0 / 3, abs=0.1)


def test_nothing_to_report_is_an_error_naming_the_models() -> None:
    with pytest.raises(ReportError, match="fraud, churn"):
        build_report([], "sqlite:///x.db", ["fraud", "churn"])
