"""Schemathesis over the whole OpenAPI document: every operation, a bounded number of generated
requests each (valid and invalid ones, plus schemathesis's coverage cases: boundaries, missing
fields, wrong types, undeclared methods), against a running app (lifespan, models, migrations)
on SQLite and on PostgreSQL, open and with API keys, and once with the database away. No 5xx
(but the documented 503 while the database is away), and every status code, header and body
conforms to the document the app serves.

Runs are deterministic (a fixed seed): set ``MLOBS_FUZZ_SEED`` and ``MLOBS_FUZZ_EXAMPLES`` for a
different or longer run. A failure prints the request as a curl command.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.specs.openapi.schemas import OpenApiSchema

from mlobs.api.app import create_app
from mlobs.config import Settings
from mlobs.data.generator import DATASETS

ADMIN, LABELLER, PREDICTOR = "admin-key-123456", "labeller-key-1234", "predict-key-12345"
KEYS = f"{ADMIN}:admin,{LABELLER}:feedback,{PREDICTOR}:predict+feedback"
# What a request to the secured app carries: no key, an unknown one, or a key of each scope set.
KEY_CHOICES = (None, "unknown-key-00000", ADMIN, LABELLER, PREDICTOR)

SEED = int(os.environ.get("MLOBS_FUZZ_SEED", "20261127"))
# Generated requests per operation in the fuzzing phase (the examples and coverage phases add
# their own, bounded by the schema). PostgreSQL runs fewer: the same code, a slower database.
EXAMPLES = {"sqlite": 25, "postgresql": 10}
if "MLOBS_FUZZ_EXAMPLES" in os.environ:
    EXAMPLES = dict.fromkeys(EXAMPLES, int(os.environ["MLOBS_FUZZ_EXAMPLES"]))

pytestmark = pytest.mark.slow


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    """NDJSON bodies (``POST /models/{name}/predictions``): one JSON document a line."""
    rows = value if isinstance(value, list) else [value]
    return b"\n".join(json.dumps(row).encode() for row in rows)


def _lifespan_elsewhere(app: Any) -> Callable[..., Any]:
    """The app for schemathesis's ASGI transport, whose own lifespan it must not start: the
    TestClient of ``app_factory`` runs it (models loaded, migrations done). Refusing the lifespan
    scope before reading a message is how an ASGI app says it has none."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("the lifespan runs under the TestClient")
        await app(scope, receive, send)

    return asgi


# The statuses this API refuses a request with, and those a valid request may still get: an
# unknown id (404), a missing or weaker key (401, 403), a state conflict (409), a body above the
# byte limit (413, which no JSON Schema keyword can state). A 5xx fails not_a_server_error.
REFUSED = ["400", "401", "403", "404", "405", "409", "413", "422"]
VALID_BUT_REFUSED = ["2xx", "401", "403", "404", "409", "413"]


def _schema(
    request: pytest.FixtureRequest, client: TestClient, *, examples: int, also: tuple[str, ...] = ()
) -> OpenApiSchema:
    """The document of a ready app, loaded from the app itself, with the run's settings;
    ``also``: statuses that are right answers in this configuration."""
    # schemathesis 4.32's from_fixture reads and renames `request.node._nodeid`, which pytest 9.2
    # no longer has (the node id moved to `_id`); the attribute given back keeps its
    # per-operation reports working.
    request.node._nodeid = request.node.nodeid
    config = {
        "seed": SEED,
        "generation": {
            "max-examples": examples,
            # No example database: every run replays the same seed, in CI and locally.
            "database": "none",
            # The key is chosen by the test, so that each of KEY_CHOICES is exercised.
            "with-security-parameters": False,
        },
        "checks": {
            "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", *also]},
            "negative_data_rejection": {"expected-statuses": [*REFUSED, *also]},
            "positive_data_acceptance": {"expected-statuses": [*VALID_BUT_REFUSED, *also]},
        },
    }
    settings = schemathesis.Config.from_dict(config)
    return schemathesis.openapi.from_asgi(
        "/openapi.json", _lifespan_elsewhere(client.app), config=settings
    )


@pytest.fixture
def own_models(model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the session's models: the fuzz replaces reference profiles with random rows,
    which later tests must not see."""
    return Path(shutil.copytree(model_dir, tmp_path / "models"))


@pytest.fixture(params=["open", "secured"])
def api_schema(
    request: pytest.FixtureRequest,
    db_url: str,
    own_models: Path,
    app_factory: Callable[..., TestClient],
) -> OpenApiSchema:
    """Open: no keys. Secured: keys with scopes, predictions too, and a body limit (32 KiB)
    that the larger generated bodies exceed (413)."""
    secured = request.param == "secured"
    overrides: dict[str, Any] = (
        {"api_keys": KEYS, "predict_requires_key": True, "max_body_bytes": 32 * 1024}
        if secured
        else {}
    )
    client = app_factory(database_url=db_url, model_dir=own_models, **overrides)
    database = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    return _schema(request, client, examples=EXAMPLES[database])


@pytest.fixture
def away_schema(
    request: pytest.FixtureRequest, own_models: Path, app_factory: Callable[..., TestClient]
) -> OpenApiSchema:
    """An app whose database does not answer (nothing listens on port 1): every route that
    needs it must say 503, as documented, and the others go on serving."""
    client = app_factory(
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/nowhere", model_dir=own_models
    )
    # 503 is this configuration's right answer; any other 5xx still fails.
    return _schema(request, client, examples=EXAMPLES["postgresql"], also=("503",))


schema = schemathesis.pytest.from_fixture("api_schema")
away = schemathesis.pytest.from_fixture("away_schema")

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    # Invalid input is refused (4xx), valid input accepted (2xx, or 401/403/404/409: an unknown
    # id or key, a state conflict).
    schemathesis.checks.negative_data_rejection,
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.missing_required_header,
    # Undeclared methods get a 405 whose Allow header lists the path's methods.
    schemathesis.checks.unsupported_method,
    schemathesis.checks.allow_header_conformance,
    # A route documented as needing a key refuses requests without one, or with a wrong one.
    schemathesis.checks.ignored_auth,
]

# Checks that cannot judge an operation, each with the reason; nothing else is excluded.
EXCLUDED: dict[str, list[Any]] = {
    # A silence's rules across fields (exactly one of ends_at and duration_seconds, at least one
    # matcher, an end after its start) are in its description; JSON Schema cannot compare two
    # dates, so schema-valid silences can be (rightly) refused with a 422.
    "POST /monitoring/silences": [schemathesis.checks.positive_data_acceptance],
    # GET /feedback/batch is, by the document itself, GET /feedback/{prediction_id} with the
    # malformed id "batch": a documented 422, not an undeclared method, and `Allow: GET, POST`
    # is the truth about that path.
    "POST /feedback/batch": [
        schemathesis.checks.unsupported_method,
        schemathesis.checks.allow_header_conformance,
    ],
    # A model upload's files must be a real data file and a real model: no JSON Schema can say
    # so, and schema-valid random bytes are rightly refused (a 422 naming the file).
    "POST /models": [schemathesis.checks.positive_data_acceptance],
    # A reference needs some non-missing values in every feature (a column without any cannot be
    # binned), as its description says; JSON Schema cannot state it for 100+ rows.
    **{
        f"POST /monitoring/reference/{name}": [schemathesis.checks.positive_data_acceptance]
        for name in DATASETS
    },
}


def _key_for(case: Any) -> dict[str, str] | None:
    """A key chosen from the request's content, so that a replayed (or shrunk) case sends the
    same one; sent as explicit headers, so that ignored_auth knows the key is deliberate."""
    content = repr((case.path_parameters, case.query, case.body)).encode()
    key = KEY_CHOICES[zlib.crc32(content) % len(KEY_CHOICES)]
    return {"X-API-Key": key} if key is not None else None


@schema.parametrize()
def test_fuzz(case: Any, request: pytest.FixtureRequest) -> None:
    secured = request.node.callspec.params["api_schema"] == "secured"
    case.call_and_validate(
        headers=_key_for(case) if secured else None,
        checks=CHECKS,
        excluded_checks=EXCLUDED.get(case.operation.label, []),
    )


@away.parametrize()
def test_fuzz_database_away(case: Any) -> None:
    case.call_and_validate(checks=CHECKS, excluded_checks=EXCLUDED.get(case.operation.label, []))


def test_the_document_shows_the_guards_the_server_has(
    settings_factory: Callable[..., Settings],
) -> None:
    """Open, no route claims a key; with keys, exactly the guarded routes do, with 401 and 403;
    every route with a body documents its refusals (400, 413, 422)."""

    def operations(**overrides: Any) -> dict[str, dict[str, Any]]:
        doc = create_app(settings_factory(**overrides)).openapi()
        return {f"{m.upper()} {p}": op for p, ops in doc["paths"].items() for m, op in ops.items()}

    for label, op in operations().items():
        assert "security" not in op and not {"401", "403"} & set(op["responses"]), label
        if "requestBody" in op:
            assert {"400", "413", "422"} <= set(op["responses"]), label
    guarded = {
        label
        for label, op in operations(api_keys=KEYS).items()
        if op.get("security") and {"401", "403"} <= set(op["responses"])
    }
    assert guarded == {
        "POST /feedback", "POST /feedback/batch", "POST /models/{model_name}/feedback",
        "POST /monitoring/silences",
        "DELETE /monitoring/silences/{silence_id}",
        "POST /monitoring/alerts/{alert_id}/acknowledge",
        "POST /monitoring/alerts/{alert_id}/resolve",
        *(f"POST /monitoring/reference/{name}" for name in DATASETS),
        "POST /models", "DELETE /models/{name}",
    }  # fmt: skip
    with_predict = operations(api_keys=KEYS, predict_requires_key=True)
    for label in ("POST /predict/fraud", "POST /predict/batch", "POST /monitoring/drift/check",
                  "POST /v2/models/{name}/infer"):  # fmt: skip
        assert with_predict[label]["security"] and "401" in with_predict[label]["responses"]
