from __future__ import annotations

import httpx
import pytest
import pytest_asyncio

from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings
from gateway_support import FakeUpstreams, migrate


@pytest.fixture
def fakes() -> FakeUpstreams:
    return FakeUpstreams()


@pytest_asyncio.fixture
async def gateway_db(database_factory) -> str:
    url = await database_factory.create("sqlite", "gateway")
    await migrate(url)
    return url


@pytest_asyncio.fixture
async def make_gateway(fakes, gateway_db):
    """make_gateway(transports=None, **settings) -> (httpx client on the gateway app, settings, app)."""
    opened = []

    async def make(transports=None, **overrides):
        settings = GatewaySettings(database_url=gateway_db, **overrides)
        app = create_app(settings, start_background=False, transports=transports or fakes.transports())
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        opened.append((client, app))
        return client, settings, app

    yield make
    for client, app in opened:
        await client.aclose()
        await app.state.gateway.aclose()
        await app.state.runtime.db.dispose()


@pytest_asyncio.fixture
async def gw(make_gateway):
    client, settings, _ = await make_gateway()
    return client, settings
