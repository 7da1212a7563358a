"""The Prometheus configuration and alerting rules under ``prometheus/``.

Validated and unit-tested with Debian's ``promtool`` (package ``prometheus``); skips when it is
missing (fails where services are required). The structural checks of the rules, and that they
only use metrics mlobs exports, are pure Python.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import skip_or_fail

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
METRICS_SOURCE = ROOT / "src" / "mlobs" / "monitoring" / "metrics.py"
PROMTOOL = Path("/usr/bin/promtool")

EXPECTED_ALERTS = {
    "MlobsDriftDetected",
    "MlobsDriftCritical",
    "MlobsPerformanceDegradation",
    "MlobsDataQualityIssue",
    "MlobsHighLatency",
    "MlobsDown",
    "MlobsPredictionLogDropping",
}
# Metrics the rules may use before src/mlobs/monitoring/metrics.py defines them. Each entry is a
# metric that is planned but not exported yet; remove it once the metric exists.
PENDING_METRICS: set[str] = set()
# prometheus_client exposes a Counter `x` as `x_total`, a Histogram as `x_bucket/_count/_sum`.
SUFFIXES = {
    "Counter": ("_total",),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum"),
}
METRIC_DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram)\(\s*\"(mlobs_[a-z_]+)\"")
METRIC_USE = re.compile(r"mlobs_[a-z_]+")


def exported_metrics() -> set[str]:
    """Series names mlobs exposes, read from the metric definitions in metrics.py."""
    names: set[str] = set()
    for kind, name in METRIC_DEFINITION.findall(METRICS_SOURCE.read_text()):
        names.update(name + suffix for suffix in SUFFIXES[kind])
    return names


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    groups = document["groups"]
    assert [group["name"] for group in groups] == ["mlobs"]
    rules: list[dict[str, Any]] = groups[0]["rules"]
    return rules


@pytest.fixture(scope="module")
def promtool() -> Path:
    if not PROMTOOL.is_file():
        skip_or_fail("promtool not installed: apt-get install -y prometheus")
    return PROMTOOL


@pytest.mark.parametrize(
    "args",
    [
        ["check", "config", "prometheus/prometheus.yml"],  # also checks the rule files it names
        ["check", "rules", "prometheus/alerts.yml"],
        ["test", "rules", "prometheus/alerts_test.yml"],
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool(promtool: Path, args: list[str]) -> None:
    result = subprocess.run(
        [str(promtool), *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"promtool {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )


def test_rules_have_for_severity_and_annotations() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    for rule in rules:
        name = rule["alert"]
        assert "for" in rule, f"{name}: no `for:` duration"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["labels"]["source"] == "prometheus", name
        annotations = rule["annotations"]
        assert annotations.get("summary"), f"{name}: no summary annotation"
        assert annotations.get("description"), f"{name}: no description annotation"


def test_rules_use_only_exported_metrics() -> None:
    exported = exported_metrics()
    # The regex must keep finding the definitions, or every name below would look unknown.
    assert {"mlobs_drift_share", "mlobs_predictions_total"} <= exported
    assert "mlobs_prediction_latency_seconds_bucket" in exported
    for rule in alert_rules():
        used = set(METRIC_USE.findall(rule["expr"]))
        unknown = used - exported - PENDING_METRICS
        assert not unknown, f"{rule['alert']} uses metrics mlobs does not export: {sorted(unknown)}"


def test_every_rule_has_a_unit_test() -> None:
    document = yaml.safe_load(ALERTS_TEST.read_text())
    assert document["rule_files"] == ["alerts.yml"]
    tested = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")  # at least one case where the alert fires
    }
    assert tested == {rule["alert"] for rule in alert_rules()}
