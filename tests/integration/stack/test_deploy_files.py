"""Static checks of the deployment files: Dockerfile, docker-compose.yml, Alertmanager, Grafana.

Nothing here builds or runs a container: the files are parsed and cross-checked against the
repository (paths that exist, settings the service knows, metrics it exports).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from mlobs.config import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
METRICS_PY = ROOT / "src" / "mlobs" / "monitoring" / "metrics.py"
PROMETHEUS_YML = ROOT / "prometheus" / "prometheus.yml"
ALERTMANAGER_YML = ROOT / "alertmanager" / "alertmanager.yml"
GRAFANA_DATASOURCE = ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_PROVIDERS = ROOT / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
DASHBOARD = ROOT / "grafana" / "dashboards" / "ml-observability.json"

EXPECTED_PORTS = {"api": 8000, "prometheus": 9090, "grafana": 3000, "alertmanager": 9093}

# Metrics the dashboard may chart before the service exports them (none at present).
PENDING_METRICS: frozenset[str] = frozenset()

# Every label a dashboard query may name. All are bounded; nothing per request.
KNOWN_LABELS = frozenset(
    {
        "model_name",
        "status",
        "feature",
        "dataset_name",
        "alert_type",
        "severity",
        "le",
        "metric",
        "channel",
        "outcome",
        "model_version",
        "job",
        "instance",
    }
)

# The matcher every query on a metric with a model_name label carries (the `model` variable).
MODEL_FILTER = 'model_name=~"$model"'


# ------------------------------------------------------------------------------------ helpers


def _yaml(path: Path) -> Any:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = _yaml(COMPOSE)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    assert DASHBOARD.is_file(), f"{DASHBOARD.relative_to(ROOT)} is missing"
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, in either of compose's two syntaxes."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    out: list[tuple[str, str]] = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((str(vol.get("source", "")), str(vol["target"])))
        else:
            parts = str(vol).split(":")
            assert len(parts) >= 2, f"anonymous volume {vol!r}: give it a name"
            out.append((parts[0], parts[1]))
    return out


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _host_path(compose: dict[str, Any], service: str, target: str) -> Path:
    """The repository path bind-mounted at ``target`` (or at a folder above it)."""
    for source, mounted in _mounts(compose["services"][service]):
        if not _is_bind(source):
            continue
        if target == mounted or target.startswith(mounted.rstrip("/") + "/"):
            return ROOT / source / target[len(mounted) :].lstrip("/")
    raise AssertionError(f"{service}: nothing of the repository is mounted at {target}")


def _ports(service: dict[str, Any]) -> list[tuple[int, int]]:
    """(published, container) port pairs."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append((int(port["published"]), int(port["target"])))
        else:
            *host, container = str(port).split(":")
            out.append((int(host[-1]) if host else int(container), int(container.split("/")[0])))
    return out


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    assert DOCKERFILE.is_file(), "Dockerfile is missing"
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return instructions


def _args(args: str) -> list[str]:
    """An instruction's arguments, exec (JSON) or shell form."""
    if args.startswith("["):
        parsed = json.loads(args)
        assert isinstance(parsed, list)
        return [str(a) for a in parsed]
    return shlex.split(args)


def _dockerignore() -> list[str]:
    if not DOCKERIGNORE.is_file():
        return []
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


# ------------------------------------------------------------------------------ metric catalog

_METRIC_CALL = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"(.*?)registry=",
    re.DOTALL,
)


def exported_metrics() -> dict[str, frozenset[str]]:
    """Every series name metrics.py exports, with its labels (``le`` for histogram buckets)."""
    source = METRICS_PY.read_text(encoding="utf-8")
    out: dict[str, frozenset[str]] = {}
    for kind, name, rest in _METRIC_CALL.findall(source):
        label_list = re.search(r"\[([^\]]*)\]", rest)
        found = (
            re.findall(r"\"([a-zA-Z_][a-zA-Z0-9_]*)\"", label_list.group(1)) if label_list else []
        )
        labels = frozenset(found)
        if kind == "Counter":
            out[name.removesuffix("_total") + "_total"] = labels
        elif kind == "Gauge":
            out[name] = labels
        else:  # Histogram, Summary
            out[f"{name}_count"] = labels
            out[f"{name}_sum"] = labels
            if kind == "Histogram":
                out[f"{name}_bucket"] = labels | {"le"}
    return out


def test_metric_catalog_is_read() -> None:
    metrics = exported_metrics()
    assert metrics["mlobs_predictions_total"] == {"model_name", "status"}
    assert metrics["mlobs_prediction_latency_seconds_bucket"] == {"model_name", "le"}
    assert metrics["mlobs_drift_share"] == {"model_name"}
    assert metrics["mlobs_prediction_log_queue_depth"] == frozenset()
    assert not PENDING_METRICS & set(metrics), (
        "a pending metric is exported now: drop it from PENDING_METRICS"
    )


# --------------------------------------------------------------------------- docker-compose.yml


def test_compose_services(compose: dict[str, Any]) -> None:
    assert set(EXPECTED_PORTS) | {"postgres"} <= set(compose["services"])


def test_compose_paths_exist(compose: dict[str, Any]) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
            assert (ROOT / context).is_dir(), f"{name}: build context {context} is missing"
            assert (ROOT / context / (dockerfile or "Dockerfile")).is_file()
        for source, target in _mounts(service):
            assert target.startswith("/"), f"{name}: mount target {target} is not absolute"
            if _is_bind(source):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in named, f"{name}: volume {source} is not declared"


def test_compose_ports(compose: dict[str, Any]) -> None:
    published = {}
    for name, service in compose["services"].items():
        for host, container in _ports(service):
            published[host] = (name, container)
    assert set(published) == set(EXPECTED_PORTS.values())
    for name, port in EXPECTED_PORTS.items():
        assert published[port] == (name, port)


def test_compose_grafana_admin(compose: dict[str, Any]) -> None:
    env = _env(compose["services"]["grafana"])
    assert env["GF_SECURITY_ADMIN_USER"] == "admin"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "admin"


def test_compose_api_environment(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    env = _env(api)
    known = {field.upper() for field in Settings.model_fields}
    assert set(env) <= known, f"unknown settings: {sorted(set(env) - known)}"

    services = set(compose["services"])
    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme == "postgresql+psycopg"
    assert db.hostname == "postgres" and db.hostname in services
    pg_env = _env(compose["services"]["postgres"])
    assert (db.username, db.password, db.path.lstrip("/")) == (
        pg_env["POSTGRES_USER"],
        pg_env["POSTGRES_PASSWORD"],
        pg_env["POSTGRES_DB"],
    )
    am = urlsplit(env["ALERTMANAGER_URL"])
    assert (am.hostname, am.port) == ("alertmanager", EXPECTED_PORTS["alertmanager"])

    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    test = compose["services"]["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))


def test_compose_prometheus_and_alertmanager(compose: dict[str, Any]) -> None:
    services = compose["services"]
    command = services["prometheus"]["command"]
    args = command if isinstance(command, list) else shlex.split(command)
    config = next(a.split("=", 1)[1] for a in args if a.startswith("--config.file="))
    assert config == "/etc/prometheus/prometheus.yml"
    assert _host_path(compose, "prometheus", config) == PROMETHEUS_YML
    am_config = "/etc/alertmanager/alertmanager.yml"
    assert _host_path(compose, "alertmanager", am_config) == ALERTMANAGER_YML


def test_prometheus_targets_are_compose_services(compose: dict[str, Any]) -> None:
    config = _yaml(PROMETHEUS_YML)
    services = compose["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["mlobs"]["static_configs"] for t in sc["targets"]]
    assert targets == [f"api:{EXPECTED_PORTS['api']}"]
    am_targets = [
        t
        for am in config["alerting"]["alertmanagers"]
        for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert am_targets == [f"alertmanager:{EXPECTED_PORTS['alertmanager']}"]
    for target in targets + am_targets:
        assert target.split(":")[0] in services
    # Rule files are read relative to the config file inside the container.
    for rule_file in config.get("rule_files") or []:
        container = rule_file if rule_file.startswith("/") else f"/etc/prometheus/{rule_file}"
        assert _host_path(compose, "prometheus", container).is_file(), rule_file


def test_alertmanager_config() -> None:
    config = _yaml(ALERTMANAGER_YML)
    route = config["route"]
    assert {"alertname", "model_name"} <= set(route["group_by"])
    receivers = {r["name"] for r in config["receivers"]}
    assert route["receiver"] in receivers
    for child in route.get("routes") or []:
        assert child["receiver"] in receivers


# ----------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_is_multi_stage() -> None:
    froms = [args for keyword, args in _dockerfile() if keyword == "FROM"]
    assert len(froms) >= 2
    stages = [_args(f)[-1] for f in froms if " as " in f.lower()]
    assert "builder" in stages


def test_dockerfile_runtime_user_is_not_root() -> None:
    instructions = _dockerfile()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    users = [args for keyword, args in instructions[last_from:] if keyword == "USER"]
    assert users, "the final stage runs as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_healthcheck() -> None:
    checks = [args for keyword, args in _dockerfile() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/health/live" in checks[0]
    assert "curl" not in checks[0], "python:*-slim has no curl"


def test_dockerfile_copy_sources_exist_and_are_not_ignored() -> None:
    ignored = _dockerignore()
    sources: list[str] = []
    for keyword, args in _dockerfile():
        if keyword not in {"COPY", "ADD"}:
            continue
        tokens = _args(args)
        flags = [t for t in tokens if t.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        paths = [t for t in tokens if not t.startswith("--")]
        assert len(paths) >= 2, f"{keyword} {args}"
        sources.extend(paths[:-1])
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY source {source} does not exist"
        top = Path(source).parts[0]
        hits = [p for p in ignored if not p.startswith("!") and fnmatch.fnmatch(top, p)]
        assert not hits, f"COPY source {source} is excluded by .dockerignore {hits}"


def test_dockerfile_serves_the_api() -> None:
    instructions = _dockerfile()
    cmds = [args for keyword, args in instructions if keyword == "CMD"]
    cmd = _args(cmds[-1])
    assert cmd[:2] == ["mlobs", "serve"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    port = int(cmd[cmd.index("--port") + 1])
    exposed = {int(p.split("/")[0]) for k, a in instructions if k == "EXPOSE" for p in a.split()}
    assert port == EXPECTED_PORTS["api"] and port in exposed
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert "MODEL_DIR=/app/models" in env and "DATA_DIR=/app/data" in env


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set(_dockerignore())
    assert {".git", ".venv", "data", "models", "tests"} <= ignored


# -------------------------------------------------------------------------------------- Grafana


def test_grafana_dashboard_provider_matches_compose_mount(compose: dict[str, Any]) -> None:
    providers = _yaml(GRAFANA_PROVIDERS)["providers"]
    assert providers
    for provider in providers:
        assert provider["type"] == "file"
        path = provider["options"]["path"]
        assert _host_path(compose, "grafana", path) == DASHBOARD.parent
    # The provisioning files themselves are where Grafana looks for them.
    assert (
        _host_path(compose, "grafana", "/etc/grafana/provisioning/dashboards/dashboards.yml")
        == GRAFANA_PROVIDERS
    )
    assert (
        _host_path(compose, "grafana", "/etc/grafana/provisioning/datasources/prometheus.yml")
        == GRAFANA_DATASOURCE
    )


def test_grafana_datasource(compose: dict[str, Any], dashboard: dict[str, Any]) -> None:
    sources = _yaml(GRAFANA_DATASOURCE)["datasources"]
    prometheus = [s for s in sources if s["type"] == "prometheus"]
    assert len(prometheus) == 1 and prometheus[0]["isDefault"] is True
    url = urlsplit(prometheus[0]["url"])
    assert (url.hostname, url.port) == ("prometheus", EXPECTED_PORTS["prometheus"])
    assert url.hostname in compose["services"]

    uid = prometheus[0]["uid"]
    used = [p["datasource"] for p in dashboard["panels"]]
    used += [
        t["datasource"] for p in dashboard["panels"] for t in p["targets"] if "datasource" in t
    ]
    used += [v["datasource"] for v in dashboard["templating"]["list"] if "datasource" in v]
    assert used
    for ds in used:
        assert ds == {"type": "prometheus", "uid": uid}


# A JSON-like shape: a dict maps keys to shapes (extra keys allowed), a type is matched with
# isinstance (bool never counts as int), a one-element list means "a list of that shape".
Shape = Any

TARGET_SHAPE: Shape = {"refId": str, "expr": str}
PANEL_SHAPE: Shape = {
    "id": int,
    "type": str,
    "title": str,
    "gridPos": {"x": int, "y": int, "w": int, "h": int},
    "datasource": {"type": str, "uid": str},
    "targets": [TARGET_SHAPE],
}
VARIABLE_SHAPE: Shape = {"name": str, "type": str}
DASHBOARD_SHAPE: Shape = {
    "uid": str,
    "title": str,
    "schemaVersion": int,
    "panels": [PANEL_SHAPE],
    "templating": {"list": [VARIABLE_SHAPE]},
}


def shape_errors(value: Any, shape: Shape, where: str = "$") -> list[str]:
    """Where ``value`` departs from ``shape``, as readable paths."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        errors = []
        for key, sub in shape.items():
            if key not in value:
                errors.append(f"{where}.{key}: missing")
            else:
                errors.extend(shape_errors(value[key], sub, f"{where}.{key}"))
        return errors
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        if not value:
            return [f"{where}: empty"]
        return [
            e for i, item in enumerate(value) for e in shape_errors(item, shape[0], f"{where}[{i}]")
        ]
    if isinstance(value, bool) and shape is not bool:
        return [f"{where}: expected {shape.__name__}, got bool"]
    if not isinstance(value, shape):
        return [f"{where}: expected {shape.__name__}, got {type(value).__name__}"]
    if shape is str and not value.strip():
        return [f"{where}: empty string"]
    return []


def test_shape_errors_reports_departures() -> None:
    assert shape_errors({"a": 1, "b": [{"c": "x"}]}, {"a": int, "b": [{"c": str}]}) == []
    assert shape_errors({"a": True}, {"a": int}) == ["$.a: expected int, got bool"]
    assert shape_errors({"b": []}, {"a": int, "b": [str]}) == ["$.a: missing", "$.b: empty"]


def test_dashboard_shape(dashboard: dict[str, Any]) -> None:
    assert shape_errors(dashboard, DASHBOARD_SHAPE) == []
    assert dashboard["title"] == "ML Observability Platform"
    assert dashboard["uid"] == "mlobs-main"
    assert dashboard["schemaVersion"] == 39


def test_dashboard_panels_are_unique_and_fit_the_grid(dashboard: dict[str, Any]) -> None:
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells: dict[tuple[int, int], int] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0
        assert grid["x"] + grid["w"] <= 24, f"panel {panel['id']} is wider than the grid"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {panel['id']} overlap"
                cells[(x, y)] = panel["id"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"panel {panel['id']}: duplicate refIds"


def test_dashboard_model_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    model = variables["model"]
    assert model["type"] == "query"
    assert model["multi"] is True and model["includeAll"] is True
    query = model["query"]
    text = query["query"] if isinstance(query, dict) else query
    assert re.fullmatch(r"label_values\(\s*mlobs_predictions_total\s*,\s*model_name\s*\)", text)


_METRIC_NAME = re.compile(r"\bmlobs_[a-zA-Z0-9_:]+")
_SELECTOR = re.compile(r"\{([^{}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


def expr_labels(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    labels = {m for sel in _SELECTOR.findall(expr) for m in _MATCHER.findall(sel)}
    for group in _GROUPING.findall(expr):
        labels |= {name.strip() for name in group.split(",") if name.strip()}
    return labels


def test_expr_labels() -> None:
    expr = 'sum by (le, model_name) (rate(x_bucket{model_name=~"$model", status!="ok"}[5m]))'
    assert expr_labels(expr) == {"le", "model_name", "status"}


def _targets(dashboard: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(p["id"], t) for p in dashboard["panels"] for t in p["targets"]]


def test_dashboard_queries_use_exported_metrics(dashboard: dict[str, Any]) -> None:
    known = set(exported_metrics()) | PENDING_METRICS
    charted: set[str] = set()
    for panel_id, target in _targets(dashboard):
        names = set(_METRIC_NAME.findall(target["expr"]))
        assert names, f"panel {panel_id}: {target['expr']} charts no mlobs metric"
        assert names <= known, f"panel {panel_id}: unknown metrics {sorted(names - known)}"
        charted |= names
    for required in (
        "mlobs_model_loaded",
        "mlobs_predictions_total",
        "mlobs_prediction_latency_seconds_bucket",
        "mlobs_dataset_drift_detected",
        "mlobs_drift_score",
        "mlobs_drift_share",
        "mlobs_prediction_drift_score",
        "mlobs_missing_values_share",
        "mlobs_duplicate_rows_count",
        "mlobs_active_alerts",
        "mlobs_alerts_total",
        "mlobs_model_performance",
        "mlobs_estimated_performance",
        "mlobs_labeled_predictions_total",
        "mlobs_concept_drift_statistic",
        *PENDING_METRICS,
    ):
        assert required in charted, f"no panel charts {required}"


def test_dashboard_queries_use_known_labels(dashboard: dict[str, Any]) -> None:
    exported = exported_metrics()
    for panel_id, target in _targets(dashboard):
        expr = target["expr"]
        labels = expr_labels(expr)
        assert labels <= KNOWN_LABELS, f"panel {panel_id}: labels {sorted(labels - KNOWN_LABELS)}"
        legend = set(_LEGEND_LABEL.findall(target.get("legendFormat", "")))
        assert legend <= KNOWN_LABELS, f"panel {panel_id}: legend {sorted(legend - KNOWN_LABELS)}"
        # Every metric with a model_name label follows the $model selection.
        names = set(_METRIC_NAME.findall(expr))
        by_model = {n for n in names if n in PENDING_METRICS or "model_name" in exported.get(n, ())}
        for name in by_model:
            selectors = re.findall(re.escape(name) + r"\{([^{}]*)\}", expr)
            assert selectors and all(MODEL_FILTER in s for s in selectors), (
                f"panel {panel_id}: {name} is not filtered by {MODEL_FILTER}"
            )


def test_dashboard_latency_percentiles(dashboard: dict[str, Any]) -> None:
    quantiles = set()
    for _, target in _targets(dashboard):
        match = re.match(r"histogram_quantile\(\s*([0-9.]+)\s*,", target["expr"])
        if match and "mlobs_prediction_latency_seconds_bucket" in target["expr"]:
            assert "le" in expr_labels(target["expr"])
            quantiles.add(float(match.group(1)))
    assert quantiles == {0.5, 0.95, 0.99}


def test_dashboard_drift_share_thresholds(dashboard: dict[str, Any]) -> None:
    panels = [
        p
        for p in dashboard["panels"]
        if any("mlobs_drift_share" in t["expr"] for t in p["targets"])
    ]
    assert panels
    steps = panels[0]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps if s["value"] is not None] == [0.2, 0.3]
