"""The Alembic migrations build exactly the tables the code declares, on SQLite and PostgreSQL,
and downgrade cleanly."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from mlobs.storage.db import alembic_config, make_engine, migrate
from mlobs.storage.tables import metadata


def test_migrations_match_the_table_definitions(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        cfg = alembic_config(engine)
        command.downgrade(cfg, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        command.upgrade(cfg, "head")
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_silences_ended_before_0006_count_as_notified(db_url: str) -> None:
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import DateTime, String, column, insert, select, table

    from mlobs.storage.tables import silences

    # The silences table as revision 0005 has it (no end_notified_at).
    before = table(
        "silences", *(column(c, String) for c in ("id", "model_name", "created_by", "comment")),
        *(column(c, DateTime(timezone=True)) for c in ("starts_at", "ends_at", "created_at")),
    )  # fmt: skip
    engine = make_engine(db_url)
    try:
        cfg = alembic_config(engine)
        command.upgrade(cfg, "0005")
        now = datetime.now(timezone.utc)
        with engine.begin() as conn:
            for sid, ends in (("old", now - timedelta(days=1)), ("new", now + timedelta(days=1))):
                conn.execute(insert(before).values(
                    id=sid, model_name="fraud", created_by="ann", comment="",
                    starts_at=now - timedelta(days=2), ends_at=ends,
                    created_at=now - timedelta(days=3),
                ))  # fmt: skip
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            got = dict(conn.execute(select(silences.c.id, silences.c.end_notified_at)).all())
        assert got["old"] is not None and got["new"] is None
    finally:
        engine.dispose()
