"""Engines and migrations. Only the API and the CLI create an engine, from a URL they are given."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ARRAY, Engine, String, any_, bindparam, create_engine, event, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:  # Alembic loads only where migrations run, not in the log's writer process
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def utc(dt: datetime) -> datetime:
    """A datetime read back from the database, as UTC (SQLite returns naive datetimes; every
    time mlobs stores is UTC)."""
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def among(column: Any, values: Sequence[str], dialect: str) -> Any:
    """``column IN values``; on PostgreSQL as one array parameter (``= ANY``): psycopg prepares
    a statement run five times, and a prepared IN list of hundreds of parameters gets a generic
    plan that scans the table (a million-row backfill slowed to a crawl as the log grew)."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String(256))))
    return column.in_(values)


def utc_or_none(dt: datetime | None) -> datetime | None:
    return None if dt is None else utc(dt)


def _json_dumps(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``. SQLite gets WAL mode and a busy timeout so that the log writer and
    request threads (and several worker processes) share one file without "database is locked".
    JSON columns are written with orjson: the log writer's largest cost after the insert itself."""
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    # Every call to the database is bounded: connecting (an unreachable host fails in 5 s
    # instead of the OS's minutes), waiting for a pooled connection, and each statement.
    kwargs.setdefault("pool_timeout", 10)
    if u.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": 5, "options": "-c statement_timeout=30000"}
        connect_args.update(kwargs.pop("connect_args", {}))
        kwargs["connect_args"] = connect_args
    return create_engine(url, **kwargs)


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations of one database across processes (several workers start at once)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(724011)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(724011)"))
                conn.commit()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        lock_path = Path(str(engine.url.database) + ".migrate.lock")
        with open(lock_path, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        yield


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent, safe from several processes)."""
    from alembic import command

    cfg = alembic_config(engine)
    with _migration_lock(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    log.info("database schema up to date (%s)", engine.url.render_as_string(hide_password=True))


def ping(engine: Engine) -> str | None:
    """None when the database answers, otherwise the reason it does not."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any driver error means "unreachable" to a health check
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
