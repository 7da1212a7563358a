"""API keys with scopes (``X-API-Key``), as contracts.md defines them.

``API_KEYS="key1:admin,key2:predict+feedback"``: each key with its scopes (``predict``,
``feedback``, ``admin``); a key with no scopes listed has all. Without keys the API is open.
Open in any case: health, metrics, the docs, the web page and read-only GETs. ``admin``:
acknowledge, resolve, silences, reference updates; ``feedback``: labels; ``predict``:
predictions and posted checks, only when ``PREDICT_REQUIRES_KEY=true``.

Keys are compared in constant time (``hmac.compare_digest`` against every configured key, so the
time does not tell which key nearly matched), and never logged: a refused request is logged
with its path and the reason, not the header.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from mlobs.errors import MlobsError

log = logging.getLogger(__name__)

Scope = Literal["predict", "feedback", "admin"]
SCOPES: frozenset[str] = frozenset({"predict", "feedback", "admin"})
HEADER = "X-API-Key"

# Declared once so OpenAPI documents the scheme (Swagger UI's "Authorize" button); auto_error
# off: a missing key is judged by ``require`` (open routes, the configured policy).
api_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="An API key.")


class Unauthorized(MlobsError):
    """No key, or an unknown one (401)."""


class Forbidden(MlobsError):
    """A valid key without the scope the route needs (403)."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"this API key lacks the {scope!r} scope")
        self.scope = scope


def parse_keys(spec: str) -> dict[str, frozenset[str]]:
    """``"k1:admin,k2:predict+feedback,k3"`` -> {key: scopes}; ValueError names a bad entry
    (never the key itself)."""
    keys: dict[str, frozenset[str]] = {}
    for i, entry in enumerate(e.strip() for e in spec.split(",")):
        if not entry:
            continue
        key, _, scopes = entry.partition(":")
        key = key.strip()
        if len(key) < 8:
            raise ValueError(f"API_KEYS entry {i + 1}: a key needs at least 8 characters")
        wanted = {s.strip() for s in scopes.split("+") if s.strip()} if scopes else set(SCOPES)
        unknown = wanted - SCOPES
        if unknown:
            raise ValueError(
                f"API_KEYS entry {i + 1}: unknown scopes {sorted(unknown)}; "
                f"choose from {sorted(SCOPES)}"
            )
        keys[key] = frozenset(wanted)
    return keys


@dataclass(frozen=True)
class KeyPolicy:
    keys: Mapping[str, frozenset[str]] = field(default_factory=dict)
    predict_requires_key: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def enforces(self, scope: Scope) -> bool:
        """Whether a request needs a key with ``scope`` (predict only with PREDICT_REQUIRES_KEY)."""
        return self.enabled and (scope != "predict" or self.predict_requires_key)

    def scopes_of(self, presented: str | None) -> frozenset[str] | None:
        """The scopes of a presented key; None when it matches no key (constant time)."""
        if presented is None:
            return None
        given = presented.encode()
        found: frozenset[str] | None = None
        for key, scopes in self.keys.items():
            if hmac.compare_digest(given, key.encode()):
                found = scopes
        return found

    def check(self, scope: Scope, presented: str | None) -> None:
        if not self.enforces(scope):
            return
        scopes = self.scopes_of(presented)
        if scopes is None:
            raise Unauthorized(
                f"a valid API key is required (header {HEADER})"
                if presented is None
                else "unknown API key"
            )
        if scope not in scopes:
            raise Forbidden(scope)


def require(scope: Scope) -> Callable[..., Coroutine[Any, Any, None]]:
    """A dependency that lets the request through when the policy allows ``scope``."""

    async def dependency(request: Request, key: str | None = Depends(api_key_header)) -> None:
        policy: KeyPolicy = request.app.state.key_policy
        try:
            policy.check(scope, key)
        except (Unauthorized, Forbidden) as exc:
            log.info("refused %s %s: %s", request.method, request.url.path, exc)
            raise

    dependency.__name__ = f"require_{scope}"
    return dependency


@dataclass(frozen=True)
class Guard:
    """What a route needs to enforce one scope under a policy: the dependency, and the statuses
    (401, 403) that OpenAPI then documents. Empty where the policy leaves the route open, so the
    document of an open server claims neither a security requirement nor a 401."""

    dependencies: tuple[Any, ...] = ()
    statuses: tuple[int, ...] = ()

    @classmethod
    def of(cls, policy: KeyPolicy, scope: Scope) -> Guard:
        if not policy.enforces(scope):
            return cls()
        return cls((Depends(require(scope)),), (401, 403))
