"""Domain errors to HTTP statuses, in one place. Every error body has FastAPI's validation shape,
``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``, so clients parse one format."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from mlobs.api.auth import Forbidden, Unauthorized
from mlobs.api.schemas import ConflictOut, ErrorOut
from mlobs.errors import Conflict, InvalidInput, ModelNotLoaded, NotFound, Unavailable

log = logging.getLogger(__name__)


def error_body(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


# What each error status means on this API; every one has the ErrorOut body (409: ConflictOut).
_MEANING = {
    400: "Malformed body: it cannot be read as JSON text (e.g. it is not UTF-8).",
    401: "A valid API key is required (header X-API-Key).",
    403: "The API key lacks the scope this route needs.",
    404: "Unknown model or id.",
    409: "Conflicts with the current state.",
    413: "Request body larger than the server's limit (MAX_BODY_BYTES).",
    422: "Invalid input, or JSON that does not parse (`json_invalid`): `loc` names the field "
    "(and the record, in a batch).",
    503: "Not ready: a model is not loaded, or the database cannot answer (reason given).",
}

# Every route that reads a body can refuse it before the route runs: unreadable (400), too large
# (413, the BodySizeLimit middleware) or invalid (422).
BODY = (400, 413, 422)

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again (sent when the database is away).",
        "schema": {"type": "integer"},
    }
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can return."""
    out: dict[int | str, dict[str, Any]] = {}
    for c in sorted(set(codes)):
        out[c] = {"model": ConflictOut if c == 409 else ErrorOut, "description": _MEANING[c]}
        if c == 503:
            out[c]["headers"] = _RETRY_AFTER
    return out


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. Starlette's 405 names only the
    methods of the first route whose path matched (``Allow: GET`` where POST works too)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(
            error_body(list(exc.loc) or [exc.kind], str(exc), "not_found"), status_code=404
        )

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        return JSONResponse(
            error_body(["header", "X-API-Key"], str(exc), "unauthorized"), status_code=401
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse(
            error_body(["header", "X-API-Key"], str(exc), "forbidden"), status_code=403
        )

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        body = error_body(list(exc.loc), str(exc), "conflict")
        if exc.current is not None:
            body["current"] = exc.current
        return JSONResponse(body, status_code=409)

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return JSONResponse(error_body(list(exc.loc), exc.message, exc.kind), status_code=422)

    @app.exception_handler(ModelNotLoaded)
    async def _not_loaded(_: Request, exc: ModelNotLoaded) -> JSONResponse:
        return JSONResponse(
            error_body(["model", exc.model_name], str(exc), "model_not_loaded"), status_code=503
        )

    @app.exception_handler(Unavailable)
    async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse(
            error_body([exc.what], str(exc), "unavailable"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            error_body(["database"], f"database unavailable: {type(exc).__name__}", "unavailable"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, list):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        # FastAPI answers 400 only when it cannot read the body (e.g. bytes that are not UTF-8).
        loc: list[str | int] = ["body"] if exc.status_code == 400 else []
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return JSONResponse(
            error_body(loc, str(exc.detail), "http_error"),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Drop the echoed input and pydantic's doc URL: an error must not copy a large body back.
        items = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": items}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body([], "internal error; it has been logged", "internal_error"),
            status_code=500,
        )
