"""The one way a service runs tasks of its own (ServiceRuntime.add_background_loop) and the dependencies routes take
(crm_common.deps), with the domain-exception mapping of create_service_app."""

import asyncio

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import text

from crm_common.deps import ActorDep, RuntimeDep, SessionDep
from crm_common.problems import Problem
from crm_common.runtime import ServiceRuntime, create_service_app
from crm_common.settings import ServiceSettings
from crm_devbroker.testing import edge_auth, wait_until


def quiet_runtime(url: str, **overrides) -> ServiceRuntime:
    settings = ServiceSettings(
        service_name="loops-test", database_url=url, run_outbox_relay=False, run_consumers=False, metrics_refresh_s=3600, **overrides
    )
    return ServiceRuntime(settings)


class Ticker:
    def __init__(self):
        self.passes = 0
        self.cancelled = False
        self.stopping = False
        self.finished_pass = False

    async def run_until_cancelled(self):
        try:
            while True:
                self.passes += 1
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def run_until_stopped(self):
        while not self.stopping:
            self.passes += 1
            await asyncio.sleep(0.01)
        self.finished_pass = True

    def stop(self):
        self.stopping = True


async def test_loops_start_with_the_runtime_and_end_with_it(tmp_path):
    runtime = quiet_runtime(f"sqlite:///{tmp_path}/loops.db")
    cancelled, stopped, skipped, follows_consumers = Ticker(), Ticker(), Ticker(), Ticker()
    runtime.add_background_loop("cancelled", cancelled.run_until_cancelled)
    runtime.add_background_loop("stopped", stopped.run_until_stopped, stop=stopped.stop)
    runtime.add_background_loop("skipped", skipped.run_until_cancelled)
    runtime.add_background_loop("with-consumers", follows_consumers.run_until_cancelled, with_consumers=True)
    prepared = []

    async def prepare():
        prepared.append(len(runtime._tasks))

    runtime.add_startup_hook(prepare)
    await runtime.start(skip_loops={"skipped"})

    async def both_ran():
        return cancelled.passes > 1 and stopped.passes > 1

    await wait_until(both_ran, timeout_s=5)
    await runtime.stop()
    assert prepared == [0]  # before anything ran
    assert cancelled.cancelled and not stopped.cancelled and stopped.finished_pass
    assert skipped.passes == 0
    assert follows_consumers.passes == 0  # this process runs no consumers


def test_a_loop_name_is_registered_once(tmp_path):
    runtime = quiet_runtime(f"sqlite:///{tmp_path}/names.db")
    runtime.add_background_loop("once", Ticker().run_until_cancelled)
    with pytest.raises(ValueError):
        runtime.add_background_loop("once", Ticker().run_until_cancelled)


class WidgetMissing(LookupError):
    pass


async def test_routes_take_runtime_session_and_actor_and_domain_errors_become_problems(tmp_path):
    runtime = quiet_runtime(f"sqlite:///{tmp_path}/deps.db")
    router = APIRouter()

    @router.get("/widgets/{widget_id}")
    async def get_widget(widget_id: str, session: SessionDep, actor: ActorDep, rt: RuntimeDep):
        assert rt is runtime
        if widget_id == "missing":
            raise WidgetMissing(f"No widget {widget_id}.")
        return {"one": await session.scalar(text("SELECT 1")), "actor": actor.name, "role": actor.role, "known": actor.known}

    app = create_service_app(
        runtime,
        title="deps",
        routers=[router],
        start_background=False,
        problems={WidgetMissing: lambda exc: Problem(404, "Widget not found", str(exc))},
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://deps", auth=edge_auth(app)) as client:
        found = await client.get("/widgets/w1", headers={"X-Actor-Id": "u1", "X-Actor-Subject": "alice", "X-Actor-Role": "agent"})
        assert found.json() == {"one": 1, "actor": "alice", "role": "agent", "known": True}
        anonymous = await client.get("/widgets/w1")
        assert anonymous.json() == {"one": 1, "actor": None, "role": None, "known": False}
        missing = await client.get("/widgets/missing")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["title"] == "Widget not found" and missing.json()["detail"] == "No widget missing."
    paths = app.openapi()["paths"]["/widgets/{widget_id}"]["get"]
    assert [p["name"] for p in paths["parameters"]] == ["widget_id"]  # the dependencies add no parameter
    await runtime.stop()
