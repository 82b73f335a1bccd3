"""What a route takes from FastAPI instead of reaching into the request: the service's runtime, a read session, the
caller (the identity the gateway signed, crm_common.edge). Routes stay thin:

    @router.get("/things/{thing_id}")
    async def get_thing(thing_id: str, session: SessionDep, actor: ActorDep): ...

    @router.put("/things/{thing_id}")
    async def put_thing(thing_id: str, data: ThingIn, runtime: RuntimeDep):
        async with runtime.transaction() as session:  # the unit of work commits before the answer is sent
            ...

None of them adds a parameter to the OpenAPI document: they read the app's state and the request's headers.
Every dependency of a route is an `async def`: FastAPI runs a plain `def` dependency in a worker thread, a thread
hop per request and dependency (it cost the status lookup 47% more CPU per request; bench/status_query.py).
tests/contract/test_async_dependencies.py holds every service to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.runtime import ServiceRuntime


@dataclass(frozen=True)
class Actor:
    """Who calls, as the gateway says (X-Actor-Id, X-Actor-Subject, X-Actor-Role, X-Actor-Team, X-Customer-Id; the
    services check the gateway's signature over them). A field the gateway did not send is None."""

    id: str | None = None
    subject: str | None = None
    role: str | None = None
    team: str | None = None
    customer_id: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Actor:
        return cls(
            id=headers.get("x-actor-id") or None,
            subject=headers.get("x-actor-subject") or None,
            role=headers.get("x-actor-role") or None,
            team=headers.get("x-actor-team") or None,
            customer_id=headers.get("x-customer-id") or None,
        )

    @property
    def known(self) -> bool:
        """The gateway named the caller and its role."""
        return bool(self.id and self.role)

    @property
    def name(self) -> str | None:
        """The caller as a trail records it: the subject (a user, a client) where there is one, else the id."""
        return self.subject or self.id


def current_runtime(request: Request) -> ServiceRuntime:
    """The service's runtime, for code that holds the request (a dependency, a middleware)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def runtime_dependency(request: Request) -> ServiceRuntime:
    return current_runtime(request)


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for reads, closed after the route. Writes use `runtime.transaction()` in the route, so the answer never
    reports an uncommitted change."""
    async with current_runtime(request).db.sessions() as session:
        yield session


async def current_actor(request: Request) -> Actor:
    return Actor.from_headers(request.headers)


RuntimeDep = Annotated[ServiceRuntime, Depends(runtime_dependency)]
SessionDep = Annotated[AsyncSession, Depends(read_session)]
ActorDep = Annotated[Actor, Depends(current_actor)]
