"""Schemathesis against every service's OpenAPI document and the gateway's merged one: no 5xx and no
response that violates its documented schema (checks `not_a_server_error`, `response_schema_conformance`).

One test per operation, so that a failure names its route. Every app runs in-process on a migrated
SQLite database with relay and consumers off (fuzz_support). The services are called directly with
the identity headers the gateway would add (an admin: the deepest code paths are reachable); the
gateway is called with an admin JWT and has the four real services behind it (httpx ASGITransport).
Each service gets a few real objects first, and every operation whose path ids are known gets a
second pass aimed at them; operations with a JSON body get a third pass with schema-violating bodies
(schemathesis' negative mode: a 4xx, never a 5xx). Bounded: max_examples per operation, no deadline; the bigger run on
PostgreSQL is marked slow.
"""

from __future__ import annotations

import pytest

from fuzz_support import BUILDERS, SEEDERS, STAFF, LoopThread, build_gateway, fuzz_schema, gateway_spec, operations_of, service_specs

SPECS = service_specs()
SPECS["gateway"] = gateway_spec({name: SPECS[name] for name in BUILDERS})

# /readyz asks the broker (none here: 2 s per call) and has no input to fuzz
SKIP = {("GET", "/readyz")}
# operations with a bug reported to their owner and not fixed yet: {(target, method, path): reason}
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}


def _params(targets):
    out = []
    for target in targets:
        for method, path in operations_of(SPECS[target]):
            if (method, path) in SKIP:
                continue
            marks = []
            if (target, method, path) in KNOWN_BUGS:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[(target, method, path)]))
            out.append(pytest.param(target, method, path, id=f"{target}:{method} {path}", marks=marks))
    return out


class Running:
    """One target app (and for the gateway, its four upstreams) on one loop for a whole module."""

    def __init__(self, database_factory, target: str, kind: str):
        self.loop = LoopThread()
        self.others = []
        if target == "gateway":
            self.others = [self.loop.run(BUILDERS[name](database_factory, kind)) for name in BUILDERS]
            for upstream in self.others:
                self.loop.run(SEEDERS[upstream.name](upstream))
            self.app = self.loop.run(build_gateway(database_factory, {u.name: u for u in self.others}, kind))
            self.headers, self.known = {}, {}
        else:
            self.app = self.loop.run(BUILDERS[target](database_factory, kind))
            self.headers, self.known = STAFF, self.loop.run(SEEDERS[target](self.app))

    def fuzz(self, spec, method: str, path: str, max_examples: int, negative_examples: int = 0):
        report = fuzz_schema(
            self.loop,
            self.app,
            spec,
            max_examples=max_examples,
            extra_headers=self.headers,
            known_ids=self.known,
            only=(method, path),
            negative_examples=negative_examples,
        )
        print(report.summary())
        assert report.operations == 1 and report.cases > 0, report.summary()
        assert not report.failures, "\n\n".join(report.failures)

    def close(self) -> None:
        for app in (self.app, *self.others):
            self.loop.run(app.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def running(database_factory):
    """running(target, kind): built once per target and database kind for the whole module."""
    cache: dict[tuple[str, str], Running] = {}

    def get(target: str, kind: str) -> Running:
        if (target, kind) not in cache:
            for key in list(cache):  # one target at a time: the tests are ordered by target
                cache.pop(key).close()
            cache[(target, kind)] = Running(database_factory, target, kind)
        return cache[(target, kind)]

    yield get
    for item in cache.values():
        item.close()


@pytest.mark.parametrize("target,method,path", _params([*sorted(BUILDERS), "gateway"]))
def test_fuzz_operation_no_5xx_no_schema_violation(running, target, method, path):
    running(target, "sqlite").fuzz(
        SPECS[target], method, path, max_examples=20 if target != "gateway" else 12, negative_examples=10 if target != "gateway" else 0
    )


@pytest.mark.slow
@pytest.mark.parametrize("target,method,path", _params([*sorted(BUILDERS), "gateway"]))
def test_fuzz_operation_on_postgres_bigger_run(running, target, method, path):
    running(target, "postgres").fuzz(SPECS[target], method, path, max_examples=50 if target != "gateway" else 30, negative_examples=25)


def test_every_documented_operation_is_fuzzed():
    """The parametrisation above covers each document whole (a route added later is fuzzed too)."""
    for target in [*BUILDERS, "gateway"]:
        assert len(operations_of(SPECS[target])) >= 5, target
    gateway_paths = {path for _, path in operations_of(SPECS["gateway"])}
    assert "/api/v1/events" in gateway_paths and "/api/v1/customers/{customer_id}" in gateway_paths
    assert "x-unavailable" not in SPECS["gateway"]
