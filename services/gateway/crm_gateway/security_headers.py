"""Standard security headers. The console and the survey page get a Content-Security-Policy that allows only this
origin's scripts, styles and requests (no inline script: the bearer token sits in sessionStorage, so injected
script must not run) and may not be framed; every answer says nosniff and sends no referrer (survey and
unsubscribe links carry their token in the URL). /docs (Swagger UI from a CDN) keeps working: no CSP there."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
EVERY_ANSWER = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PAGES = {"Content-Security-Policy": PAGE_POLICY, "X-Frame-Options": "DENY"}
PAGE_PREFIXES = ("/console", "/survey/", "/satisfaction-survey/")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = EVERY_ANSWER | (PAGES if scope["path"].startswith(PAGE_PREFIXES) else {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
