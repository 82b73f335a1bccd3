"""Every dependency of every route is a coroutine (or an async generator): FastAPI runs a plain `def` dependency,
a class included, in a worker thread, a thread hop per request and dependency. That hop cost the call center's status
lookup 47% more CPU per request in the complaints service (bench/status_query.py, before and after 9a3e26c)."""

from __future__ import annotations

import inspect

import pytest
from fastapi.routing import APIRoute

from fuzz_support import service_apps

APPS = service_apps()


def sync_dependencies(dependant, route: str, found: list[str]) -> list[str]:
    for dependency in dependant.dependencies:
        call = dependency.call
        if call is not None and not (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)):
            found.append(f"{route}: {getattr(call, '__qualname__', call)}")
        sync_dependencies(dependency, route, found)
    return found


def api_routes(routes) -> list[APIRoute]:
    """The routes of an app, those of its included routers too (FastAPI keeps an included router whole)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += api_routes(route.original_router.routes)
    return found


@pytest.mark.parametrize("service", sorted(APPS))
def test_every_route_dependency_is_async(service):
    routes = api_routes(APPS[service].routes)
    assert len(routes) > 10  # the walk reaches the routers' routes
    found: list[str] = []
    for route in routes:
        sync_dependencies(route.dependant, f"{','.join(sorted(route.methods))} {route.path}", found)
    assert found == []


def test_the_check_sees_a_plain_def_dependency():
    from fastapi import Depends, FastAPI

    def plain() -> int:
        return 1

    app = FastAPI()

    @app.get("/x")
    async def x(value: int = Depends(plain)) -> int:
        return value

    route = next(r for r in app.routes if isinstance(r, APIRoute))
    assert sync_dependencies(route.dependant, "x", []) == ["x: test_the_check_sees_a_plain_def_dependency.<locals>.plain"]
