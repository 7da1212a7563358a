"""The ``mlobs`` command line: generate data, train models, serve the API, and the operator
tools (traffic simulator, demo, drift report)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlobs.config import Settings, configure_logging

# Heavy modules (pandas, scikit-learn, XGBoost, ...) are imported inside the commands that need
# them, so `mlobs --help` answers at once. The demo catalogue's names, for the demo commands
# (generate-data, train-models, setup-reference, simulate, demo); every other command takes any
# model of the catalogue in MODEL_DIR.
DEMO_NAMES = ("fraud", "price", "churn")

app = typer.Typer(
    help="mlobs: serve models, log predictions, watch drift and data quality.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
log = logging.getLogger("mlobs.cli")

ModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="Demo model to act on (repeatable). Default: all three."),
]
CatalogModelsOpt = Annotated[
    list[str] | None,
    typer.Option("--model", "-m", help="Model to act on (repeatable). Default: every model."),
]


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level)
    return settings


def _names(models: list[str] | None) -> list[str]:
    """Demo model names (all three by default)."""
    names = models or list(DEMO_NAMES)
    unknown = [n for n in names if n not in DEMO_NAMES]
    if unknown:
        raise typer.BadParameter(
            f"unknown model(s) {unknown}; the demo models are {list(DEMO_NAMES)}"
        )
    return names


def _catalog_names(models: list[str] | None, model_dir: Path) -> list[str]:
    """Names of models in the catalogue at ``model_dir`` (all by default)."""
    from mlobs.models import model_names

    known = model_names(model_dir)
    names = models or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown model(s) {unknown}; the catalogue has {known}")
    return names


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command("generate-data")
def generate_data(
    models: ModelsOpt = None,
    rows: Annotated[int | None, typer.Option(min=100, help="Rows per data set.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = True,
) -> None:
    """Generate the training data sets as Parquet files in DATA_DIR."""
    from mlobs.data import generate
    from mlobs.data.store import DEFAULT_ROWS, dataset_path, write_dataset

    settings = _settings()
    with _progress() as progress:
        for name in _names(models):
            path = dataset_path(settings.data_dir, name)
            if path.exists() and not force:
                console.print(f"[dim]{name}: kept {path}[/]")
                continue
            task = progress.add_task(f"generating {name}", total=None)
            n = rows or DEFAULT_ROWS[name]
            df = generate(name, n, seed=seed)
            write_dataset(df, settings.data_dir, name)
            progress.update(task, description=f"{name}: {n:,} rows -> {path}", completed=1, total=1)


@app.command("train-models")
def train_models(
    models: ModelsOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed for splits and estimators.")] = 42,
    only_missing: Annotated[
        bool, typer.Option("--only-missing", help="Skip models already trained in MODEL_DIR.")
    ] = False,
) -> None:
    """Train the models on the data in DATA_DIR (generated first if absent) and save them."""
    from mlobs.data import generate
    from mlobs.data.demo_models import demo_model
    from mlobs.data.store import DEFAULT_ROWS, dataset_path, read_dataset, write_dataset
    from mlobs.models import is_saved, save_model
    from mlobs.monitoring.profiles import profile_for_model, save_profile

    settings = _settings()
    table = Table(title="Holdout metrics")
    for col in ("model", "version", "rows", "metrics"):
        table.add_column(col)
    trained = 0
    with _progress() as progress:
        for name in _names(models):
            if only_missing and is_saved(settings.model_dir, name):
                console.print(f"[dim]{name}: already trained in {settings.model_dir}[/]")
                continue
            task = progress.add_task(f"training {name}", total=None)
            if not dataset_path(settings.data_dir, name).exists():
                log.info("no data for %s in %s: generating it", name, settings.data_dir)
                write_dataset(
                    generate(name, DEFAULT_ROWS[name], seed=seed), settings.data_dir, name
                )
            model = demo_model(name)
            result = model.fit(read_dataset(settings.data_dir, name), seed=seed)
            meta = result.metadata
            folder = save_model(model, settings.model_dir)
            # The reference profile is frozen at training time, on the training split.
            save_profile(profile_for_model(model, result.train), settings.model_dir)
            progress.update(task, description=f"{name}: saved to {folder}", completed=1, total=1)
            shown = {k: v for k, v in meta.holdout_metrics.items() if k != "positive_rate"}
            table.add_row(
                name,
                meta.version,
                f"{meta.train_rows:,}",
                "  ".join(f"{k}={v:.4g}" for k, v in shown.items()),
            )
            trained += 1
    if trained:
        console.print(table)


@app.command("setup-reference")
def setup_reference(
    models: ModelsOpt = None,
    only_missing: Annotated[
        bool, typer.Option("--only-missing", help="Skip models that already have a profile.")
    ] = False,
) -> None:
    """Build each trained model's reference profile from its data in DATA_DIR."""
    from mlobs.data.store import dataset_path, read_dataset
    from mlobs.models import load_model
    from mlobs.monitoring.profiles import PROFILE_FILE, profile_for_model, save_profile

    settings = _settings()
    with _progress() as progress:
        for name in _names(models):
            if only_missing and (settings.model_dir / name / PROFILE_FILE).is_file():
                console.print(f"[dim]{name}: reference profile present[/]")
                continue
            try:
                model = load_model(settings.model_dir, name)
            except FileNotFoundError:
                console.print(f"[red]{name}: not trained; run `mlobs train-models` first[/]")
                raise typer.Exit(1) from None
            if not dataset_path(settings.data_dir, name).exists():
                console.print(
                    f"[red]{name}: no data in {settings.data_dir}; run "
                    "`mlobs generate-data` first[/]"
                )
                raise typer.Exit(1)
            task = progress.add_task(f"profiling {name}", total=None)
            profile = profile_for_model(model, read_dataset(settings.data_dir, name))
            path = save_profile(profile, settings.model_dir)
            progress.update(
                task, description=f"{name}: {profile.rows:,} rows -> {path}", completed=1, total=1
            )


TaskOpt = Annotated[
    str | None,
    typer.Option(help="binary_classification, multiclass_classification or regression "
                      "(default: inferred from --target)."),
]  # fmt: skip


@app.command()
def register(
    name: Annotated[
        str, typer.Argument(help="The model's name: lower-case letters, digits, _ and -.")
    ],
    reference: Annotated[
        Path,
        typer.Option(
            help="Reference rows: Parquet (file, folder or glob), CSV or JSON lines. "
            "Data the model was not trained on is best."
        ),
    ],
    target: Annotated[
        str | None, typer.Option(help="The label column, if the rows have one.")
    ] = None,
    artifact: Annotated[
        Path | None,
        typer.Option(
            help="The model file: XGBoost .ubj/.json, LightGBM .txt, scikit-learn "
            ".skops, ONNX .onnx. Without it the model is monitor-only."
        ),
    ] = None,
    task: TaskOpt = None,
    categorical: Annotated[
        str | None, typer.Option(help="Columns to treat as categories, comma-separated.")
    ] = None,
    holdout: Annotated[
        Path | None, typer.Option(help="Labelled rows for the holdout figures and calibration.")
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="A manifest (YAML or JSON) declaring the features.")
    ] = None,
    positive_class: Annotated[
        str | None, typer.Option(help="Binary: the label the probability is of (default 1).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(min=0, max=1, help="Binary: the decision threshold (0.5).")
    ] = None,
    prediction_col: Annotated[
        str | None,
        typer.Option(help="No artifact: the reference's column of the model's own predictions."),
    ] = None,
    probability_col: Annotated[
        str | None, typer.Option(help="No artifact, binary: the column of its probabilities.")
    ] = None,
    score_cols: Annotated[
        str | None,
        typer.Option(
            help="No artifact, multiclass: its score columns, comma-separated, in class order."
        ),  # fmt: skip
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Register through a running service instead of MODEL_DIR.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="MLOBS_API_KEY", help="Sent as X-API-Key (with --url).")
    ] = None,
) -> None:
    """Register your own model (or, without --artifact, a model served elsewhere) with a reference.

    Drafts the manifest from the reference, predicts every reference row, computes holdout
    figures and the probability calibration from labelled rows, freezes the reference profile,
    and writes the version atomically. Exit code 2 on bad input.
    """
    from mlobs.tools.register import CommandError, register_local, register_remote, summary_table

    settings = _settings()
    if task is not None and task not in ("binary_classification", "multiclass_classification",
                                         "regression"):  # fmt: skip
        raise typer.BadParameter(f"unknown task {task!r}", param_hint="--task")
    cats = [c.strip() for c in (categorical or "").split(",") if c.strip()]
    scores = [c.strip() for c in (score_cols or "").split(",") if c.strip()]
    try:
        if url:
            options = {"target": target, "task": task, "categorical": cats,
                       "positive_class": positive_class, "threshold": threshold,
                       "prediction_col": prediction_col, "probability_col": probability_col,
                       "score_cols": scores}  # fmt: skip
            out = register_remote(url, api_key, name, reference=reference, artifact=artifact,
                                  manifest=manifest, holdout=holdout, options=options)  # fmt: skip
            console.print(f"registered {out['name']} version {out.get('version')} at {url}")
            return
        reg = register_local(
            settings.model_dir, name, reference=reference, target=target, artifact=artifact,
            task=task, categorical=cats, holdout=holdout, manifest=manifest,  # type: ignore[arg-type]
            positive_class=positive_class, threshold=threshold,
            sample_rows=settings.reference_sample_rows, prediction_col=prediction_col,
            probability_col=probability_col, score_cols=scores,
        )  # fmt: skip
    except CommandError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    console.print(summary_table(reg))


@app.command("ingest")
def ingest_file(
    name: Annotated[str, typer.Argument(help="The model the predictions were made by.")],
    file: Annotated[
        Path, typer.Argument(help="Parquet (file, folder or glob), CSV or JSON lines.")
    ],
    timestamp_col: Annotated[
        str, typer.Option(help="The column of event times (a time without a zone is UTC).")
    ] = "timestamp",
    id_col: Annotated[
        str | None, typer.Option(help="The column of prediction ids (else made from the rows).")
    ] = None,
    prediction_col: Annotated[str | None, typer.Option(help="The model's predictions.")] = None,
    probability_col: Annotated[
        str | None, typer.Option(help="Binary: the positive class's probabilities.")
    ] = None,
    score_cols: Annotated[
        str | None, typer.Option(help="Multiclass: score columns, comma-separated, in class order.")
    ] = None,
    label_col: Annotated[str | None, typer.Option(help="The ground truth, when known.")] = None,
    period: Annotated[str, typer.Option(help="hour, day, or a number of rows per period.")] = "day",
) -> None:
    """Backfill a historical prediction log: log its rows with their event times and judge it
    period by period (drift, quality and, with labels, realized performance), into the history
    the service shows. No alert is opened and the live window is not touched; run twice, it
    stores everything once. Writes to the database of DATABASE_URL.
    """
    from rich.table import Table

    from mlobs.api.runtime import build_drift_config
    from mlobs.tools.ingest import backfill_local
    from mlobs.tools.register import CommandError

    settings = _settings()
    scores = [c.strip() for c in (score_cols or "").split(",") if c.strip()]
    try:
        with _progress() as progress:
            task = progress.add_task(f"backfill of {name}", total=None)
            out = backfill_local(
                settings.resolved_database_url, settings.model_dir, name, file,
                timestamp_col=timestamp_col, id_col=id_col, prediction_col=prediction_col,
                probability_col=probability_col, score_cols=scores, label_col=label_col,
                period=period, config=build_drift_config(settings),
                progress=lambda n: progress.advance(task, n),
            )  # fmt: skip
    except CommandError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    table = Table(title=f"backfill of {name}: {out.rows:,} rows, {out.new:,} new, "
                        f"{out.duplicate:,} logged before, {out.labels:,} labels")  # fmt: skip
    for column in ("period start", "period end", "rows", "new", "drift", "drift share",
                   "realized"):  # fmt: skip
        table.add_column(column)
    for p in out.periods:
        realized = "  ".join(f"{k}={v:.3g}" for k, v in list((p.realized or {}).items())[:3])
        table.add_row(
            p.start.isoformat(timespec="minutes"), p.end.isoformat(timespec="minutes"),
            f"{p.rows:,}", f"{p.new:,}", p.status,
            "" if p.drift_share is None else f"{p.drift_share:.2f}", realized,
        )  # fmt: skip
    console.print(table)


@app.command("ingest-labels")
def ingest_labels(
    name: Annotated[str, typer.Argument(help="The model the predictions were made by.")],
    file: Annotated[
        Path, typer.Argument(help="Parquet (file, folder or glob), CSV or JSON lines.")
    ],
    id_col: Annotated[str, typer.Option(help="The column of prediction ids.")] = "prediction_id",
    label_col: Annotated[str, typer.Option(help="The column of labels.")] = "actual",
    url: Annotated[
        str | None, typer.Option(help="Post through a running service instead of DATABASE_URL.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="MLOBS_API_KEY", help="Sent as X-API-Key (with --url).")
    ] = None,
) -> None:
    """Ground truth from a file: each row's label joined to the logged prediction with its id.

    Writes to the database of DATABASE_URL, or with --url posts to a running service. Unknown
    ids, labels of the wrong kind and labels contradicting stored ones are left out and counted.
    Exit code 2 on bad input or when no label was stored.
    """
    from rich.table import Table

    from mlobs.tools.ingest import ingest_labels_local, ingest_labels_remote
    from mlobs.tools.register import CommandError

    settings = _settings()
    try:
        with _progress() as progress:
            task = progress.add_task(f"labels for {name}", total=None)

            def advance(n: int) -> None:
                progress.advance(task, n)

            if url:
                out = ingest_labels_remote(url, api_key, name, file, id_col, label_col, advance)
            else:
                out = ingest_labels_local(settings.resolved_database_url, settings.model_dir,
                                          name, file, id_col, label_col, advance)  # fmt: skip
    except CommandError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    table = Table(title=f"labels for {name}", show_header=False)
    for label, value in (("rows", out.rows), ("recorded", out.recorded),
                         ("duplicate (stored before)", out.duplicate),
                         ("unknown id", out.unknown), ("invalid label", out.invalid),
                         ("conflicting (a different label stored)", out.conflicting)):  # fmt: skip
        table.add_row(label, f"{value:,}")
    for example in out.examples:
        table.add_row("[yellow]e.g.[/]", example)
    console.print(table)
    if out.rows and not out.recorded and not out.duplicate:
        raise typer.Exit(2)


models_app = typer.Typer(help="The model catalogue in MODEL_DIR.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Every model: version, task, artifact format, features, holdout figures."""
    from mlobs.tools.register import list_table

    console.print(list_table(_settings().model_dir))


@models_app.command("show")
def models_show(name: Annotated[str, typer.Argument(help="The model's name.")]) -> None:
    """A model's manifest and holdout figures."""
    from mlobs.tools.register import CommandError, show

    try:
        show(_settings().model_dir, name, console)
    except CommandError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None


@models_app.command("remove")
def models_remove(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    purge: Annotated[
        bool, typer.Option(help="Also delete its history (predictions, windows, labels, alerts).")
    ] = False,
) -> None:
    """Stop serving and monitoring a model and free its name; its open alerts are resolved.

    Its history stays in the database unless --purge.
    """
    from mlobs.storage.model_catalog import RegistrationError, remove
    from mlobs.tools.register import forget_history

    settings = _settings()
    try:
        version = remove(settings.model_dir, name)
    except RegistrationError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    resolved, purged = forget_history(settings.resolved_database_url, name, purge=purge)
    console.print(
        f"removed {name} (version {version}); {resolved} open alert(s) resolved"
        + (f"; {purged} history row(s) deleted" if purge else "; its history is kept")
    )


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 8000).")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes. Above 1, metrics are shared through PROMETHEUS_MULTIPROC_DIR "
            "(a temporary directory when unset).",
        ),
    ] = 1,
) -> None:
    """Serve the API with uvicorn.

    Several workers write their metrics to PROMETHEUS_MULTIPROC_DIR; /metrics adds them all up.

    Unset, it is a temporary directory made for this run; set, its *.db files are removed first.
    """
    import os
    import shutil
    import tempfile

    import uvicorn

    from mlobs.api.http import CoalescingHttpToolsProtocol

    settings = _settings()
    made = None
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        # Files left by an earlier run would be merged into this one's counters.
        Path(metrics_dir).mkdir(parents=True, exist_ok=True)
        for stale in Path(metrics_dir).glob("*.db"):
            stale.unlink()
    elif workers > 1 and not reload:
        # Set before uvicorn spawns the workers, which inherit it before importing prometheus-client.
        made = tempfile.mkdtemp(prefix="mlobs-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    try:
        uvicorn.run(
            "mlobs.api.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            reload=reload,
            reload_dirs=[str(Path(__file__).parent)] if reload else None,
            workers=workers,
            http=CoalescingHttpToolsProtocol,
            log_level=settings.log_level.lower(),
        )
    finally:
        if made is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(made, ignore_errors=True)


@app.command()
def simulate(
    url: Annotated[
        str, typer.Option(help="Base URL of the running API.")
    ] = "http://127.0.0.1:8000",
    duration: Annotated[float, typer.Option(min=1, max=86_400, help="Seconds of traffic.")] = 60.0,
    rate: Annotated[
        float, typer.Option(min=0.01, max=1_000, help="Requests per second, per model.")
    ] = 5.0,
    drift: Annotated[
        float, typer.Option(min=0, max=1, help="Intensity of injected drift: 0 none, 1 strong.")
    ] = 0.0,
    models: Annotated[
        list[str] | None,
        typer.Option("--models", "--model", "-m", help="Models, comma-separated or repeated."),
    ] = None,
    ramp: Annotated[
        float, typer.Option(min=0, help="Seconds to ramp up linearly from 0 to --rate.")
    ] = 0.0,
    drift_after: Annotated[
        float, typer.Option(min=0, help="Seconds of undrifted traffic before the drift starts.")
    ] = 0.0,
    feedback: Annotated[
        float, typer.Option(min=0, max=1, help="Share of predictions that get a late label.")
    ] = 0.0,
    feedback_delay: Annotated[
        float, typer.Option(min=0, help="Seconds between a prediction and its label.")
    ] = 5.0,
    concurrency: Annotated[
        int, typer.Option(min=1, max=1_000, help="Most requests in flight (more are dropped).")
    ] = 32,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per request.")] = 10.0,
    settle: Annotated[
        float, typer.Option(min=0, help="Seconds to let the server evaluate before the summary.")
    ] = 3.0,
    seed: Annotated[int, typer.Option(help="Random seed of the generated records.")] = 42,
    api_key: Annotated[
        str | None, typer.Option(envvar="MLOBS_API_KEY", help="Sent as X-API-Key.")
    ] = None,
) -> None:
    """Send generated traffic to a running API, optionally drifted, with late labels.

    A fixed rate per model (open loop, optional ramp), a progress bar, then a summary.

    The summary: traffic, errors, latency, the live windows' drift, and the alerts raised.

    Exit code 2 when the API cannot be reached.
    """
    from mlobs.tools.simulate import ApiUnreachable, SimulationConfig, print_summary
    from mlobs.tools.simulate import simulate as run

    settings = _settings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    names = [n.strip() for v in models or [] for n in v.split(",") if n.strip()] or list(DEMO_NAMES)
    try:
        config = SimulationConfig(
            url=url, models=tuple(names), duration=duration, rate=rate, drift=drift,
        drift_after=drift_after, ramp=ramp, feedback_share=feedback, feedback_delay=feedback_delay,
            concurrency=concurrency, timeout=timeout, settle=settle, seed=seed, api_key=api_key,
            model_dir=settings.model_dir,
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--models") from None
    try:
        result = run(config, console)
    except ApiUnreachable as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    print_summary(result, console)


@app.command()
def demo(
    interactive: Annotated[
        bool, typer.Option("--interactive", "-i", help="Pause for Enter between the steps.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """A walk-through of the service in one process, within a minute.

    Trains the models missing from MODEL_DIR, then runs on a temporary database.

    Predictions, drift, the drift report, alerts opened, acknowledged, resolved; late labels.
    """
    from mlobs.tools.demo import DemoOptions, run_demo

    settings = _settings()
    run_demo(settings, DemoOptions(interactive=interactive, seed=seed), console)


@app.command()
def report(
    models: CatalogModelsOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write (default: stdout).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="html or json.")] = "html",
    url: Annotated[
        str | None,
        typer.Option(help="Read from a running API instead of the local database."),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="MLOBS_API_KEY", help="Sent as X-API-Key (with --url).")
    ] = None,
) -> None:
    """Write a drift report (self-contained HTML, or JSON) of the latest closed live windows.

    Per feature: score, status, and a chart of reference vs current proportions per bin.

    Read from the local database (DATABASE_URL or DATA_DIR) or, with --url, from an API.
    """
    import sys

    from mlobs.tools.report import ReportError, from_api, from_database, render_html, render_json

    if fmt not in ("html", "json"):
        raise typer.BadParameter(f"--format must be html or json, got {fmt!r}")
    settings = _settings()
    names = (models or []) if url else _catalog_names(models, settings.model_dir)
    try:
        if url:
            content = from_api(url, names, api_key)
        else:
            content = from_database(settings.resolved_database_url, settings.model_dir, names)
    except ReportError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    text = render_html(content) if fmt == "html" else render_json(content)
    if out is None:
        sys.stdout.write(text)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    shown = ", ".join(f"{m['model_name']} ({m['status']})" for m in content["models"])
    console.print(f"wrote {out}: {shown}", soft_wrap=True)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
