"""`make run`'s stand-in for the outside world's message carriers: an SMTP sink and a fake SMS/push provider.

What the notifications service sends is accepted and kept, one JSON line per message, in `--store`
(var/sent.jsonl); the gateway's `GET /api/v1/dev/sent` reads it for the console, as Mailpit would. The SMTP
side is aiosmtpd; the provider side answers the contract of crm_notifications.channels.http_provider
(`POST /v1/messages` -> {"id", "status": "sent"}). Development only: nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email
import email.policy
import itertools
import json
import uuid
from pathlib import Path

import uvicorn
from aiosmtpd.smtp import SMTP
from fastapi import FastAPI, Request


class SentStore:
    """Append-only JSON lines: one record per accepted message."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, record: dict) -> dict:
        record = {"id": uuid.uuid4().hex, "received_at": dt.datetime.now(dt.UTC).isoformat(), **record}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return record


def email_record(envelope_from: str, recipients: list[str], raw: bytes) -> dict:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain", "html"))
    return {
        "channel": "email",
        "from": envelope_from,
        "to": recipients,
        "subject": str(message.get("subject") or ""),
        "language": str(message.get("content-language") or "") or None,
        "body": text.get_content() if text else "",
    }


class SmtpHandler:
    def __init__(self, store: SentStore):
        self.store = store

    async def handle_DATA(self, server, session, envelope) -> str:
        self.store.add(email_record(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


def provider_app(store: SentStore) -> FastAPI:
    app = FastAPI(title="dev SMS/push provider")
    ids = itertools.count(1)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.post("/v1/messages")
    async def messages(request: Request) -> dict:
        body = await request.json()
        store.add(
            {
                "channel": body.get("channel") or "sms",
                "to": [str(body.get("to") or "")],
                "subject": body.get("title"),
                "body": body.get("text") or "",
                "language": body.get("language"),
                "reference": body.get("reference"),
            }
        )
        return {"id": next(ids), "status": "sent"}

    return app


async def serve(store: SentStore, smtp_port: int, provider_port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = SmtpHandler(store)
    smtp = await loop.create_server(lambda: SMTP(handler, hostname="crm-dev-sink"), "127.0.0.1", smtp_port)
    server = uvicorn.Server(uvicorn.Config(provider_app(store), host="127.0.0.1", port=provider_port, log_level="warning"))
    try:
        await server.serve()
    finally:
        smtp.close()
        await smtp.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--provider-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(SentStore(args.store), args.smtp_port, args.provider_port))


if __name__ == "__main__":
    main()
