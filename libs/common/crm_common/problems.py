"""One JSON error shape for every 4xx/5xx: RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from business code; becomes a problem+json response with any extra members."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        *,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.type = type_ or f"urn:crm:problem:{self.title.lower().replace(' ', '-')}"
        self.headers = headers
        self.extra = extra
        if isinstance(extra.get("errors"), list):
            extra["errors"] = [_with_text_location(error) for error in extra["errors"]]
        super().__init__(detail or self.title)

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(request.url.path if request else None),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


ProblemMapping = Mapping[type[Exception], Callable[[Any], Problem]]
"""A service's one mapping from its domain exceptions (raised by its service layers, which know nothing of HTTP) to
the problem details its API answers: `{CustomerNotFound: lambda exc: Problem(404, "Customer not found", str(exc))}`."""


def install_domain_problems(app: FastAPI, mapping: ProblemMapping) -> None:
    """Answer each mapped exception (and its subclasses, the most specific mapping first) with its problem."""
    for exc_type, to_problem in mapping.items():
        app.add_exception_handler(exc_type, _domain_handler(to_problem))


def _domain_handler(to_problem: Callable[[Any], Problem]) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def answer(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(to_problem(exc), request)

    return answer


def _with_text_location(error: Any) -> Any:
    """A field error's `loc` as strings (["body", "agents", "2"]), as ValidationProblem documents it and as FastAPI's own
    errors are answered (`_field_errors`), whoever built it."""
    if isinstance(error, dict) and isinstance(error.get("loc"), (list, tuple)):
        return {**error, "loc": [str(part) for part in error["loc"]]}
    return error


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        errors.append({"loc": [str(p) for p in error.get("loc", ())], "msg": error.get("msg"), "type": error.get("type")})
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        given: Any = exc.detail  # typed str by Starlette; FastAPI's HTTPException takes any JSON value
        detail = given if isinstance(given, str) else None
        extra: dict[str, Any] = {} if isinstance(given, str) or given is None else {"errors": given}
        return problem_response(Problem(exc.status_code, detail=detail, headers=getattr(exc, "headers", None), **extra), request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            Problem(
                422, "Validation failed", "The request has invalid fields.", type_="urn:crm:problem:validation", errors=_field_errors(exc)
            ),
            request,
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(OSError)
    # the same conditions met straight through asyncpg (crm_common.db.Database.read)
    @app.exception_handler(asyncpg.PostgresConnectionError)
    @app.exception_handler(asyncpg.exceptions.CannotConnectNowError)
    @app.exception_handler(asyncpg.exceptions.AdminShutdownError)
    @app.exception_handler(asyncpg.exceptions.CrashShutdownError)
    @app.exception_handler(asyncpg.exceptions.TooManyConnectionsError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, IntegrityError):
            log.warning("integrity conflict: %s", exc.orig)
            return problem_response(Problem(409, "Conflict", "The change conflicts with existing data."), request)
        log.error("database unavailable: %s", exc)
        return problem_response(
            Problem(
                503,
                "Database unavailable",
                "Try again shortly.",
                type_="urn:crm:problem:database-unavailable",
                headers={"Retry-After": "2"},
            ),
            request,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(Problem(500, detail="An unexpected error occurred."), request)
