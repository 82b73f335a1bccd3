"""Demo data: customers, 18 months of orders, payments, complaint teams and agents, complaints.

`make run` adds it to an installation without customers; `make demo` (this script's main) adds it to the
running installation on purpose. Only the demo customers get demo events, never a customer someone created.
Customers go through the customer-profile API (an existing demo customer is read back, not created again);
logistics events go straight onto Kafka as a TMS that speaks Kafka would publish them, each with an event id
derived from what it reports, so seeding again re-sends the same events and the consumers' inboxes drop them;
complaints go through the complaints API with an idempotency key per customer. The services' APIs are
called directly, with the seeder's own edge token (crm_common.edge, the key from CRM_EDGE_TOKEN_KEY).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import json
import os
import random
import sys
import uuid
import zlib
from decimal import Decimal
from pathlib import Path

import httpx
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from crm_common.bus import KafkaPublisher
from crm_common.edge import caller_auth
from crm_common.events import encode_envelope, make_event, topic_for
from crm_common.events.logistics import OrderCreated, OrderDelivered, PaymentOverdue, PaymentReceived, ShipmentDelayed
from crm_common.settings import KafkaSettings

SERVICE_TYPES = ["warehousing", "trunk", "distribution", "express", "cold_chain"]
DEMO_EVENT_NAMESPACE = uuid.UUID("5d1c0a4e-3b7f-4c52-9a0e-6f2d8e1b7c30")


async def installation_is_empty(urls: dict[str, str]) -> bool:
    """No customer in customer-profile: nothing anyone entered that demo data could mix with."""
    base = urls.get("customer-profile")
    if base is None:
        return False
    async with httpx.AsyncClient(base_url=base, timeout=10, auth=caller_auth("customer-profile", caller="demo-seed")) as client:
        response = await client.get("/customers", params={"limit": 1})
        response.raise_for_status()
        body = response.json()
    return not (body.get("items", body) if isinstance(body, dict) else body)


async def _customers(urls: dict[str, str]) -> list[dict]:
    """The demo customers only (created, or read back when they exist already)."""
    base = urls.get("customer-profile")
    if base is None:
        return []
    if importlib.util.find_spec("crm_profile.demo") is not None:
        from crm_profile.demo import seed

        return await seed(base)
    return []


def _order_events(customers: list[dict], rng: random.Random, now: dt.datetime):
    """Heavy-tailed sizes: a few customers order big and often, most order little."""
    for rank, customer in enumerate(customers):
        cid = customer["id"]
        size = 1.0 / (rank + 1) ** 0.9
        monthly_orders = max(1, int(40 * size))
        stops_ordering = rank % 7 == 3  # some customers drift away: churn signals for the demo
        for month in range(18):
            if stops_ordering and month > 12:
                break
            for n in range(rng.randint(max(0, monthly_orders - 2), monthly_orders + 2)):
                day = now - dt.timedelta(days=30 * (18 - month) - rng.randint(0, 29))
                order_id = f"D-{cid[:8]}-{month}-{n}"
                amount = Decimal(str(round(rng.lognormvariate(7 + 2 * size, 0.6), 2)))
                service = SERVICE_TYPES[(rank + n) % (1 + rank % 5)]
                yield (
                    cid,
                    OrderCreated(
                        order_id=order_id,
                        customer_id=cid,
                        order_date=day,
                        amount=amount,
                        margin=(amount * Decimal("0.18")).quantize(Decimal("0.01")),
                        service_type=service,
                        tracking_number=f"SF{zlib.crc32(order_id.encode()):010d}",
                        lane="SHA-PEK",
                    ),
                )
                promised = day + dt.timedelta(days=2)
                late = rng.random() < 0.08
                yield (
                    cid,
                    OrderDelivered(
                        order_id=order_id,
                        customer_id=cid,
                        delivered_at=promised + dt.timedelta(hours=30 if late else -3),
                        promised_at=promised,
                    ),
                )
                if late and month == 17:
                    yield cid, ShipmentDelayed(order_id=order_id, customer_id=cid, delay_minutes=1800, reported_at=promised)
            due = (now - dt.timedelta(days=30 * (17 - month))).date()
            if rank % 9 == 4 and month > 14:
                overdue_since = due - dt.timedelta(days=20)  # the last three invoices: 80, 50 and 20 days overdue today
                yield (
                    cid,
                    PaymentOverdue(
                        invoice_id=f"INV-{cid[:8]}-{month}",
                        customer_id=cid,
                        amount=Decimal("5000"),
                        due_date=overdue_since,
                        days_overdue=(now.date() - overdue_since).days,
                        reported_at=now,
                    ),
                )
            else:
                yield (
                    cid,
                    PaymentReceived(
                        invoice_id=f"INV-{cid[:8]}-{month}",
                        customer_id=cid,
                        amount=Decimal("5000"),
                        due_date=due,
                        paid_at=dt.datetime.combine(due, dt.time(10), tzinfo=dt.UTC),
                    ),
                )


def demo_event_id(payload) -> uuid.UUID:
    """The same reported fact gets the same id every time the demo is seeded."""
    subject = getattr(payload, "order_id", None) or payload.invoice_id
    return uuid.uuid5(DEMO_EVENT_NAMESPACE, f"{payload.event_type}:{subject}")


async def _publish(bootstrap: str, events) -> int:
    publisher = KafkaPublisher(KafkaSettings(bootstrap_servers=bootstrap), client_id="demo-tms")
    futures = []
    try:
        for key, payload in events:
            envelope = make_event(payload, key=key, producer="demo-tms", event_id=demo_event_id(payload))
            futures.append(await publisher.send(topic_for(envelope.type), key, encode_envelope(envelope)))
        for future in futures:
            await future
    finally:
        await publisher.stop()
    return len(futures)


# Teams the built-in routing sends complaints to, with a Mainland office calendar; demo agents are on shift around
# the clock so that a newcomer can assign at any hour (business hours still drive the SLA clocks).
OFFICE_HOURS = {"timezone": "Asia/Shanghai", "weekdays": [0, 1, 2, 3, 4], "periods": [["09:00", "12:00"], ["13:00", "18:00"]]}
DEMO_TEAMS = {
    "transport": "运输组 Transport",
    "claims": "理赔组 Claims",
    "warehouse": "仓储组 Warehouse",
    "billing": "账务组 Billing",
    "customer_service": "客服组 Customer service",
}
# li-na is the console's demo agent (crm_gateway.settings.DEMO_USERS)
DEMO_AGENTS = [
    ("li-na", "transport", "李娜 Li Na"),
    ("zhou-tao", "transport", "周涛 Zhou Tao"),
    ("zhao-lei", "claims", "赵磊 Zhao Lei"),
    ("sun-mei", "warehouse", "孙梅 Sun Mei"),
    ("qian-hao", "billing", "钱浩 Qian Hao"),
    ("he-jing", "customer_service", "何静 He Jing"),
]
AROUND_THE_CLOCK = [{"weekday": day, "start": "00:00", "end": "24:00"} for day in range(7)]
SEEDER = {"X-Actor-Id": "demo-seed", "X-Actor-Role": "admin"}


def _transient(exc: BaseException) -> bool:
    """A conflict with a concurrent writer or a service still warming up: the same PUT succeeds a moment later."""
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (409, 503)


async def _put(client: httpx.AsyncClient, path: str, body: dict) -> None:
    """PUT creates or replaces, so repeating it is harmless."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception(_transient), stop=stop_after_attempt(5), wait=wait_exponential(multiplier=0.2, max=3), reraise=True
    ):
        with attempt:
            (await client.put(path, headers=SEEDER, json=body)).raise_for_status()


async def _with_mainland_holidays(client: httpx.AsyncClient, calendar: dict) -> dict:
    """The calendar with this year's and next year's mainland holidays and make-up working days, those the complaints
    service knows (chinesecalendar): a year not published yet is left out."""
    holidays, workdays = [], []
    this_year = dt.date.today().year
    for year in (this_year, this_year + 1):
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_transient), stop=stop_after_attempt(5), wait=wait_exponential(multiplier=0.2, max=3), reraise=True
        ):
            with attempt:
                response = await client.get(f"/calendars/mainland-china/{year}", headers=SEEDER)
                if response.status_code != 404:
                    response.raise_for_status()
        if response.status_code == 404:
            continue
        holidays += response.json()["holidays"]
        workdays += response.json()["workdays"]
    return {**calendar, "holidays": holidays, "workdays": workdays}


async def _teams_and_agents(urls: dict[str, str]) -> int:
    """Teams and agents go in before the complaints, so that filed complaints are assigned at once."""
    base = urls.get("complaints")
    if base is None:
        return 0
    async with httpx.AsyncClient(base_url=base, timeout=10, auth=caller_auth("complaints", caller="demo-seed")) as client:
        calendar = await _with_mainland_holidays(client, OFFICE_HOURS)
        for team_id, name in DEMO_TEAMS.items():
            await _put(client, f"/teams/{team_id}", {"name": name, "calendar": calendar})
        for agent_id, team_id, name in DEMO_AGENTS:
            await _put(client, f"/agents/{agent_id}", {"team_id": team_id, "name": name, "shifts": AROUND_THE_CLOCK})
    return len(DEMO_AGENTS)


async def _complaints(urls: dict[str, str], customers: list[dict], rng: random.Random) -> int:
    base = urls.get("complaints")
    if base is None or not customers:
        return 0
    filed = 0
    categories = ["delay", "damage", "billing", "staff_attitude", "pickup", "information"]
    async with httpx.AsyncClient(base_url=base, timeout=10, auth=caller_auth("complaints", caller="demo-seed")) as client:
        for i, customer in enumerate(customers[:12]):
            response = await client.post(
                "/complaints",
                headers={"Idempotency-Key": f"demo-{customer['id']}"},
                json={
                    "customer_id": customer["id"],
                    "category": categories[i % len(categories)],
                    "channel": ["web", "mobile", "call_center", "email"][i % 4],
                    "description": "货物延误两天，客户要求说明原因" if i % 2 else "Pallet arrived with crushed corners",
                    "tracking_numbers": [f"SF{1000000000 + i}"],
                },
            )
            filed += response.status_code in (200, 201)
    return filed


async def _recompute_when_consumed(base: str, first_customer: str, timeout_s: float = 90) -> None:
    """The population model (ABC, RFM quintiles, BG/NBD) is batch work: run it once the stream is in."""
    import asyncio

    async with httpx.AsyncClient(base_url=base, timeout=120, auth=caller_auth("scoring", caller="demo-seed")) as client:
        deadline = asyncio.get_running_loop().time() + timeout_s
        previous = None
        while asyncio.get_running_loop().time() < deadline:
            response = await client.get(f"/scores/{first_customer}")
            current = response.text if response.status_code == 200 else None
            if current is not None and current == previous:  # the first customer's aggregates stopped moving
                break
            previous = current
            await asyncio.sleep(3)
        try:
            await client.post("/admin/recompute")
        except httpx.HTTPError:
            pass


async def seed(urls: dict[str, str], bootstrap: str) -> dict:
    rng = random.Random(42)
    customers = await _customers(urls)
    now = dt.datetime.now(dt.UTC)
    published = await _publish(bootstrap, _order_events(customers, rng, now)) if customers else 0
    agents = await _teams_and_agents(urls)
    complaints = await _complaints(urls, customers, rng)
    if "scoring" in urls and customers:
        await _recompute_when_consumed(urls["scoring"], customers[0]["id"])
    return {
        "text": f"{len(customers)} customers, {published} logistics events, {len(DEMO_TEAMS)} teams, {agents} agents, {complaints} "
        "complaints",
        "login": "choose agent, manager (account manager), customer or admin on the login page; development mode, no password",
    }


def main() -> int:
    """`make demo`: add the demo data to the installation `make run` is running (its state file names the URLs)."""
    var = Path(os.environ.get("CRM_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    try:
        state = json.loads((var / "devrun.json").read_text())
    except FileNotFoundError:
        print(f"no running installation found ({var / 'devrun.json'}); start `make run` first", file=sys.stderr)
        return 2
    summary = asyncio.run(seed(state["urls"], state["bootstrap"]))
    print(f"demo data: {summary['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
