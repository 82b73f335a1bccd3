"""make run's message sink (scripts/dev_sink.py) keeps what notifications would send, and GET /api/v1/dev/sent lists it."""

from __future__ import annotations

import asyncio
import importlib.util
import smtplib
from email.message import EmailMessage
from pathlib import Path

import httpx

from crm_devbroker.broker import free_port
from crm_devbroker.testing import wait_until
from gateway_support import role_headers

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "dev_sink.py"
spec = importlib.util.spec_from_file_location("dev_sink", SCRIPT)
dev_sink = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dev_sink)


def send_email(port: int) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "crm@example.com", "chen.wei@example.cn", "您的投诉已处理完毕"
    message["Content-Language"] = "zh-CN"
    message.set_content("请为我们的服务打分: http://127.0.0.1:8000/survey/K1?token=abc")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


async def test_sink_keeps_email_and_sms_and_the_gateway_lists_them_newest_first(tmp_path, make_gateway):
    store = tmp_path / "sent.jsonl"
    smtp_port, provider_port = free_port(), free_port()
    task = asyncio.create_task(dev_sink.serve(dev_sink.SentStore(store), smtp_port, provider_port))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{provider_port}") as provider:

            async def up() -> bool:
                try:
                    return (await provider.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(up, timeout_s=30)
            await asyncio.to_thread(send_email, smtp_port)
            answer = await provider.post(
                "/v1/messages",
                json={"channel": "sms", "to": "+8613800138001", "text": "投诉已受理", "language": "zh-CN", "reference": "m-1"},
            )
            assert answer.status_code == 200 and answer.json()["status"] == "sent"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with store.open("a") as out:
        out.write("{cut short by a crash\n")

    client, settings, _ = await make_gateway(dev_sent_store=str(store))
    staff = role_headers(settings, "agent")
    items = (await client.get("/api/v1/dev/sent", headers=staff)).json()["items"]
    assert [i["channel"] for i in items] == ["sms", "email"]
    assert items[1]["subject"] == "您的投诉已处理完毕" and "token=abc" in items[1]["body"] and items[1]["to"] == ["chen.wei@example.cn"]
    assert items[0]["to"] == ["+8613800138001"] and items[0]["body"] == "投诉已受理"
    only_email = (await client.get("/api/v1/dev/sent", headers=staff, params={"channel": "email"})).json()["items"]
    assert [i["channel"] for i in only_email] == ["email"]
    assert (await client.get("/api/v1/dev/sent", headers=staff, params={"limit": 0})).status_code == 422
    assert (await client.get("/api/v1/dev/sent", headers=role_headers(settings, "customer"))).status_code == 403


async def test_no_sink_is_404(gw):
    client, settings = gw
    assert (await client.get("/api/v1/dev/sent", headers=role_headers(settings, "admin"))).status_code == 404
