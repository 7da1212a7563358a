"""A limit on request body size, as a pure ASGI middleware.

A declared ``Content-Length`` above the limit is refused before any byte is read; a body without
one (chunked) is counted as it arrives and refused once it passes the limit. Either way the
client gets a 413 in the uniform error shape, and the route never runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _detail(limit: int) -> list[dict[str, Any]]:
    return [
        {
            "loc": ["body"],
            "msg": f"request body larger than the limit of {limit} bytes",
            "type": "body_too_large",
        }
    ]


class _TooLarge(HTTPException):
    """Raised while reading a body past the limit. An HTTPException, so that FastAPI's body
    parsing passes it on (any other error there becomes a 400) to the app's handler: a 413."""

    def __init__(self, limit: int) -> None:
        # A list detail, which the app's handler passes through as the error body.
        super().__init__(413, detail=_detail(limit))  # type: ignore[arg-type]


class BodySizeLimit:
    """``max_bytes`` for every request, or the limit ``overrides`` gives its (method, path)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, overrides: Mapping[tuple[str, str], int] | None = None
    ) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.overrides = dict(overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.overrides.get((scope["method"], scope["path"]), self.max_bytes)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await self._refuse(send, limit)
                    return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps({"detail": _detail(limit)}).encode()
        headers: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
