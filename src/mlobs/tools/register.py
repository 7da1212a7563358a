"""`mlobs register` and `mlobs models`: a user's model into the catalogue, and the catalogue shown.

Without ``--url`` these write to ``MODEL_DIR`` directly (a running service picks the change up);
with it they go through the service's ``/models`` routes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from mlobs.models.artifacts import METADATA_FILE, model_names, read_manifest
from mlobs.models.manifest import Manifest, ManifestError
from mlobs.models.schema import Task
from mlobs.storage.datafiles import DataFileError, read_table
from mlobs.storage.model_catalog import (
    Registered,
    Registration,
    RegistrationError,
    parse_label,
    purge_history,
    register,
)


class CommandError(Exception):
    """A command that cannot go on; the message says why (exit code 2: bad input)."""


def register_local(
    model_dir: Path,
    name: str,
    *,
    reference: Path,
    target: str | None = None,
    artifact: Path | None = None,
    task: Task | None = None,
    categorical: Sequence[str] = (),
    holdout: Path | None = None,
    manifest: Path | None = None,
    positive_class: str | None = None,
    threshold: float | None = None,
    sample_rows: int = 10_000,
    prediction_col: str | None = None,
    probability_col: str | None = None,
    score_cols: Sequence[str] = (),
) -> Registered:
    """Read the files and register the model into ``model_dir``."""
    try:
        reg = Registration(
            name=name,
            reference=read_table(reference),
            target=target,
            artifact=artifact,
            task=task,
            categorical=tuple(categorical),
            holdout=read_table(holdout) if holdout is not None else None,
            manifest=Manifest.read(manifest) if manifest is not None else None,
            positive_class=parse_label(positive_class),
            decision_threshold=threshold,
            sample_rows=sample_rows,
            prediction_col=prediction_col,
            probability_col=probability_col,
            score_cols=tuple(score_cols),
        )
        if artifact is not None and not Path(artifact).is_file():
            raise CommandError(f"{artifact}: no such file")
        return register(model_dir, reg)
    except (DataFileError, ManifestError, RegistrationError) as exc:
        raise CommandError(str(exc)) from None


def register_remote(
    url: str,
    api_key: str | None,
    name: str,
    *,
    reference: Path,
    artifact: Path | None = None,
    manifest: Path | None = None,
    holdout: Path | None = None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Register through a running service's ``POST /models``; its answer (the model summary)."""
    files: dict[str, Any] = {}
    handles = []
    try:
        for field, path in (("reference", reference), ("artifact", artifact),
                            ("manifest", manifest), ("holdout", holdout)):  # fmt: skip
            if path is not None:
                handle = open(path, "rb")
                handles.append(handle)
                files[field] = (Path(path).name, handle)
        data = {
            "name": name,
            **{k: _form(v) for k, v in options.items() if v not in (None, "", [])},
        }
        headers = {"X-API-Key": api_key} if api_key else {}
        try:
            r = httpx.post(f"{url.rstrip('/')}/models", data=data, files=files, headers=headers,
                           timeout=600)  # fmt: skip
        except httpx.TransportError as exc:
            raise CommandError(f"cannot reach {url}: {exc}") from None
    finally:
        for handle in handles:
            handle.close()
    if r.status_code >= 400:
        raise CommandError(f"{r.status_code} from {url}/models: {_detail(r)}")
    body: dict[str, Any] = r.json()
    return body


def _form(v: Any) -> str:
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def _detail(r: httpx.Response) -> str:
    try:
        detail = r.json()["detail"]
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    except (ValueError, KeyError, TypeError, AttributeError):
        return r.text[:500]


# ---------------------------------------------------------------------------------- showing


def summary_table(reg: Registered) -> Table:
    m, meta = reg.manifest, reg.metadata
    title = f"Registered {m.name} version {m.version}"
    if reg.replaced:
        title += f" (replaces {reg.replaced})"
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("task", m.task)
    table.add_row(
        "artifact",
        f"{m.artifact.format} ({m.artifact.file})" if m.artifact else "none: monitor-only",
    )
    table.add_row("target", m.target or "none")
    if m.task == "binary_classification":
        table.add_row("positive class", repr(m.positive_class))
        table.add_row("decision threshold", f"{m.threshold:g}")
    kinds = {
        k: [f.name for f in m.features if f.kind == k]
        for k in ("numeric", "categorical", "boolean")
    }
    for kind, names in kinds.items():
        if names:
            table.add_row(
                f"{kind} features",
                f"{len(names)}: {', '.join(names[:12])}" + (" ..." if len(names) > 12 else ""),
            )
    table.add_row("reference rows", f"{reg.reference_rows:,}")
    if meta.holdout_metrics:
        shown = "  ".join(
            f"{k}={v:.4g}" for k, v in meta.holdout_metrics.items() if k != "positive_rate"
        )
        table.add_row(f"holdout ({reg.labelled_rows:,} rows)", shown)
        if m.task == "binary_classification":
            kept = "isotonic, kept" if meta.calibration else "none (raw probabilities are as good)"
            table.add_row("calibration", kept)
    elif m.artifact is not None:
        table.add_row("holdout", "none: no labels (give --target, or --holdout FILE)")
    table.add_row("folder", str(reg.folder))
    for hint in reg.hints:
        table.add_row("[yellow]note[/]", hint)
    return table


def list_table(model_dir: Path) -> Table:
    table = Table(title=f"Models in {model_dir}")
    for col in ("model", "version", "task", "artifact", "features", "holdout"):
        table.add_column(col)
    for name in model_names(model_dir):
        try:
            m = read_manifest(Path(model_dir) / name)
        except Exception as exc:
            table.add_row(name, "", "", f"[red]unreadable: {exc}[/]", "", "")
            continue
        meta = _metadata(Path(model_dir) / name)
        holdout = meta.get("holdout_metrics") or {}
        keys = [k for k in ("roc_auc", "accuracy", "mae", "r2") if k in holdout][:2]
        shown = "  ".join(f"{k}={holdout[k]:.3g}" for k in keys)
        table.add_row(name, m.version or "", m.task, m.artifact.format if m.artifact else "monitor-only",
                      str(len(m.features)), shown)  # fmt: skip
    return table


def show(model_dir: Path, name: str, console: Console) -> None:
    folder = Path(model_dir) / name
    if name not in model_names(model_dir):
        raise CommandError(f"no model {name!r} in {model_dir}; `mlobs models list` shows them")
    try:
        m = read_manifest(folder)
    except Exception as exc:
        raise CommandError(f"{name}: unreadable manifest: {exc}") from None
    console.rule(f"{name} {m.version or ''}")
    console.print(m.to_yaml(), markup=False, highlight=False)
    meta = _metadata(folder)
    if meta.get("holdout_metrics"):
        console.print("holdout: " + json.dumps(meta["holdout_metrics"]), soft_wrap=True)


def _metadata(folder: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / METADATA_FILE).read_text())
        return data
    except (OSError, ValueError):
        return {}


def forget_history(database_url: str, name: str, *, purge: bool) -> tuple[int, int]:
    """After a model's removal: resolve its open alerts (by "mlobs", noting the removal) and, with
    ``purge``, delete its rows from every table. Returns (alerts resolved, rows deleted)."""
    from datetime import datetime, timezone

    from mlobs.monitoring.alerts import AlertFilter
    from mlobs.storage.alert_repository import AlertRepository
    from mlobs.storage.db import make_engine, migrate

    engine = make_engine(database_url)
    try:
        migrate(engine)
        repo = AlertRepository(engine)
        now = datetime.now(timezone.utc)
        resolved = 0
        for state in ("active", "acknowledged"):
            found, _ = repo.list(AlertFilter(state=state, model_name=name, limit=100_000))
            for alert in found:
                repo.transition(
                    alert.id, "resolved", now, "mlobs", "model removed from the catalogue"
                )
                resolved += 1
        deleted = purge_history(engine, name) if purge else 0
        return resolved, deleted
    finally:
        engine.dispose()
