"""Request body size limit for every service: 413 with a problem+json body, before any parsing.

Pure ASGI. A declared Content-Length over the limit is refused at once; a body without one (chunked)
is read up to the limit and refused as soon as it goes over, so nothing larger is ever buffered.
The body read is replayed to the application unchanged.

The limit: the settings' `max_request_body_bytes` when a service defines it, else the environment
variable CRM_MAX_REQUEST_BODY_BYTES, else 1 MiB; never below a service's own larger documented
limit (the gateway's `ingest_max_body_bytes` for event batches).
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm_common.problems import PROBLEM_JSON

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def max_request_body_bytes(settings: Any) -> int:
    explicit = getattr(settings, "max_request_body_bytes", None) or os.environ.get("CRM_MAX_REQUEST_BODY_BYTES")
    limit = int(explicit) if explicit else DEFAULT_MAX_BODY_BYTES
    return max(limit, int(getattr(settings, "ingest_max_body_bytes", 0) or 0))


class RequestBodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = json.dumps(
            {
                "type": "urn:crm:problem:payload-too-large",
                "title": "Payload Too Large",
                "status": 413,
                "detail": f"The request body is larger than {self.max_bytes} bytes.",
                "instance": scope.get("path", ""),
                "max_bytes": self.max_bytes,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    return await self._refuse(scope, send)
                break
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                first = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._refuse(scope, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        return await self.app(scope, replay, send)
