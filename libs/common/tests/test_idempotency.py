"""crm_common.idempotency on a tiny app of its own, on both databases: replay, 422 on another body, one record and
one row per key under concurrency (the loser waits and answers the winner's result), nothing kept when the work
fails half-way, keys scoped by caller and route, expiry and purge."""

import asyncio
import datetime as dt
import uuid

import httpx
import pytest_asyncio
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Column, MetaData, String, Table, func, insert, select, update

from crm_common.db import utcnow
from crm_common.idempotency import Answer, Idempotent, idempotency_metadata, idempotency_table, keep_idempotency_records, purge_expired
from crm_common.runtime import ServiceRuntime, create_service_app
from crm_common.settings import KafkaSettings, ServiceSettings
from crm_devbroker.testing import edge_auth, wait_until

things_metadata = MetaData()
things = Table("things", things_metadata, Column("id", String(36), primary_key=True), Column("name", String(100)))


class ThingIn(BaseModel):
    name: str
    colour: str = "red"


class Gate:
    """Holds the work of the requests named `name` until opened; counts how often the work ran."""

    def __init__(self):
        self.runs = 0
        self.entered = asyncio.Event()
        self.opened = asyncio.Event()
        self.held: str | None = None
        self.fail_after_insert = False


def thing_router(gate: Gate) -> APIRouter:
    router = APIRouter()

    @router.post("/things", status_code=201)
    async def create_thing(data: ThingIn, once: Idempotent):
        async def create(session) -> Answer:
            gate.runs += 1
            thing_id = str(uuid.uuid4())
            await session.execute(insert(things).values(id=thing_id, name=data.name))
            if gate.held == data.name:
                gate.entered.set()
                await asyncio.wait_for(gate.opened.wait(), 30)
            if gate.fail_after_insert:
                raise RuntimeError("crash between the creation and the record")
            return Answer({"id": thing_id, "name": data.name}, 201, {"Location": f"/things/{thing_id}", "X-Other": "x"})

        return await once(data, create)

    @router.post("/things/{thing_id}/copies", status_code=201)
    async def copy_thing(thing_id: str, data: ThingIn, once: Idempotent):
        async def create(session) -> Answer:
            copy_id = str(uuid.uuid4())
            await session.execute(insert(things).values(id=copy_id, name=f"{thing_id}:{data.name}"))
            return Answer({"id": copy_id}, 201)

        return await once(data, create)

    return router


@pytest_asyncio.fixture
async def app_env(database_factory, db_kind):
    url = await database_factory.create(db_kind, "idem")
    settings = ServiceSettings(database_url=url, kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"))
    runtime = ServiceRuntime(settings)
    async with runtime.db.engine.begin() as connection:
        await connection.run_sync(idempotency_metadata.create_all)
        await connection.run_sync(things_metadata.create_all)
    gate = Gate()
    app = create_service_app(runtime, title="things", routers=[thing_router(gate)], start_background=False)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://things", auth=edge_auth(app)
    )
    try:
        yield client, runtime, gate
    finally:
        await client.aclose()
        await runtime.stop()


async def count(runtime, table=things) -> int:
    async with runtime.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(table))


def key() -> dict:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_same_key_and_body_answers_the_first_result_and_creates_once(app_env):
    client, runtime, _ = app_env
    headers = key()
    first = await client.post("/things", json={"name": "a", "colour": "red"}, headers=headers)
    again = await client.post("/things", json={"colour": "red", "name": "a"}, headers=headers)  # same request, spelled otherwise
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert "x-other" not in again.headers and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count(runtime) == 1
    without_key = await client.post("/things", json={"name": "a"})
    assert without_key.status_code == 201 and without_key.json()["id"] != first.json()["id"]
    assert await count(runtime) == 2


async def test_same_key_with_another_body_is_422_and_creates_nothing(app_env):
    client, runtime, _ = app_env
    headers = key()
    assert (await client.post("/things", json={"name": "a"}, headers=headers)).status_code == 201
    other = await client.post("/things", json={"name": "b"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"] == "urn:crm:problem:idempotency-key-reused"
    assert await count(runtime) == 1


async def test_keys_are_scoped_by_caller_and_route(app_env):
    client, runtime, _ = app_env
    headers = key()
    agent = {"X-Actor-Id": "agent-1", "X-Actor-Subject": "agent-1", "X-Actor-Role": "agent"}
    admin = {"X-Actor-Id": "admin-1", "X-Actor-Subject": "admin-1", "X-Actor-Role": "admin"}
    by_agent = await client.post("/things", json={"name": "a"}, headers=headers | agent)
    by_admin = await client.post("/things", json={"name": "a"}, headers=headers | admin)
    assert by_agent.json()["id"] != by_admin.json()["id"]
    copy_1 = await client.post("/things/t1/copies", json={"name": "a"}, headers=headers | agent)
    copy_2 = await client.post("/things/t2/copies", json={"name": "a"}, headers=headers | agent)
    assert copy_1.status_code == copy_2.status_code == 201 and copy_1.json() != copy_2.json()
    assert (await client.post("/things/t1/copies", json={"name": "a"}, headers=headers | agent)).json() == copy_1.json()
    assert await count(runtime) == 4
    assert await count(runtime, idempotency_table) == 4


async def test_a_concurrent_retry_waits_for_the_first_and_answers_its_result(app_env):
    client, runtime, gate = app_env
    headers = key()
    gate.held = "slow"
    first = asyncio.create_task(client.post("/things", json={"name": "slow"}, headers=headers))
    await asyncio.wait_for(gate.entered.wait(), 30)  # the first holds its claim, uncommitted
    second = asyncio.create_task(client.post("/things", json={"name": "slow"}, headers=headers))
    await asyncio.sleep(0.3)
    assert not second.done()
    gate.opened.set()
    first, second = await first, await second
    assert first.status_code == second.status_code == 201
    assert second.content == first.content and second.headers["idempotent-replayed"] == "true"
    assert gate.runs == 1  # the loser never ran the work
    assert await count(runtime) == 1


async def test_many_concurrent_retries_create_once(app_env):
    client, runtime, gate = app_env
    headers = key()
    answers = await asyncio.gather(*[client.post("/things", json={"name": "c"}, headers=headers) for _ in range(6)])
    assert {a.status_code for a in answers} == {201}
    assert len({a.content for a in answers}) == 1
    assert await count(runtime) == 1 and await count(runtime, idempotency_table) == 1


async def test_a_failure_after_the_creation_keeps_neither_the_row_nor_the_key(app_env):
    client, runtime, gate = app_env
    headers = key()
    gate.fail_after_insert = True
    failed = await client.post("/things", json={"name": "d"}, headers=headers)
    assert failed.status_code == 500
    assert await count(runtime) == 0 and await count(runtime, idempotency_table) == 0
    gate.fail_after_insert = False
    retried = await client.post("/things", json={"name": "d"}, headers=headers)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert await count(runtime) == 1


async def test_bad_keys_are_refused_with_a_problem(app_env):
    client, runtime, _ = app_env
    for bad in ("x" * 256, "", "tab\there"):
        answer = await client.post("/things", json={"name": "e"}, headers={"Idempotency-Key": bad})
        assert answer.status_code == 422, bad
        assert answer.json()["type"] == "urn:crm:problem:validation"
    assert await count(runtime) == 0


async def test_expired_keys_count_as_new_and_are_purged(app_env):
    client, runtime, _ = app_env
    headers = key()
    first = await client.post("/things", json={"name": "f"}, headers=headers)
    async with runtime.db.transaction() as session:
        stored = (await session.execute(select(idempotency_table.c.created_at, idempotency_table.c.expires_at))).one()
        assert stored.expires_at - stored.created_at == dt.timedelta(hours=24)
        await session.execute(update(idempotency_table).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    after_expiry = await client.post("/things", json={"name": "other body is fine now"}, headers=headers)
    assert after_expiry.status_code == 201 and after_expiry.json()["id"] != first.json()["id"]
    other_key = key()
    other = await client.post("/things", json={"name": "g"}, headers=other_key)
    async with runtime.db.transaction() as session:
        await session.execute(
            update(idempotency_table)
            .where(idempotency_table.c.key == headers["Idempotency-Key"])
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
    assert await purge_expired(runtime.db) == 1
    assert await count(runtime, idempotency_table) == 1
    assert (await client.post("/things", json={"name": "g"}, headers=other_key)).content == other.content


async def test_the_service_purge_loop_deletes_expired_keys(app_env):
    client, runtime, _ = app_env
    expired, live = key(), key()
    await client.post("/things", json={"name": "h"}, headers=expired)
    await client.post("/things", json={"name": "i"}, headers=live)
    async with runtime.db.transaction() as session:
        await session.execute(
            update(idempotency_table)
            .where(idempotency_table.c.key == expired["Idempotency-Key"])
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
    keep_idempotency_records(runtime)
    await runtime.start(relay=False, consumers=False)

    async def only_the_live_key_left():
        async with runtime.db.sessions() as session:
            return (await session.scalars(select(idempotency_table.c.key))).all() == [live["Idempotency-Key"]]

    await wait_until(only_the_live_key_left)
