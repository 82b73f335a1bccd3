"""Thin routers: the management reports, each as JSON and as a CSV download, filtered by `report_filters`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from crm_common.problems import Problem
from crm_common.runtime import runtime_of
from crm_scoring.reports import service
from crm_scoring.reports.filters import ReportFilters, report_filters

management_reports_router = APIRouter(prefix="/reports", tags=["management reports"])

Filters = Annotated[ReportFilters, Depends(report_filters)]
Matrix = Literal[tuple(service.MATRICES)]
CELLS = sorted({cell for _, cells in service.MATRICES.values() for cell in cells} | {service.UNRATED})
Cell = Literal[tuple(CELLS)]


def _csv(rows: list[dict], columns: list[str], name: str) -> Response:
    return Response(
        service.to_csv(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def _abc(request: Request, f: ReportFilters) -> dict[str, Any]:
    runtime = runtime_of(request)
    async with runtime.db.sessions() as session:
        return await service.abc_report(session, f, runtime.settings)


@management_reports_router.get("/abc")
async def abc_report(request: Request, f: Filters):
    return await _abc(request, f)


@management_reports_router.get("/abc.csv")
async def abc_csv(request: Request, f: Filters):
    report = await _abc(request, f)
    return _csv(
        service.abc_csv_rows(report), ["split", "class", "customers", "customer_share", "revenue", "revenue_share", "min_value"], "abc"
    )


async def _matrices(request: Request, f: ReportFilters) -> dict[str, Any]:
    async with runtime_of(request).db.sessions() as session:
        return await service.matrix_report(session, f)


@management_reports_router.get("/matrices")
async def matrix_report(request: Request, f: Filters):
    return await _matrices(request, f)


@management_reports_router.get("/matrices.csv")
async def matrix_csv(request: Request, f: Filters):
    return _csv(
        service.matrix_csv_rows(await _matrices(request, f)),
        ["matrix", "cell", "customers", "customer_share", "revenue", "revenue_share"],
        "matrices",
    )


def _known_cell(matrix: str, cell: str) -> None:
    if cell != service.UNRATED and cell not in service.MATRICES[matrix][1]:
        raise Problem(
            422,
            "Validation failed",
            f"{cell} is not a cell of {matrix} (its cells: {', '.join(service.MATRICES[matrix][1])}).",
            type_="urn:crm:problem:validation",
            errors=[{"loc": ["path", "cell"], "msg": "not a cell of this matrix", "type": "value_error"}],
        )


@management_reports_router.get("/matrices/{matrix}/{cell}/customers")
async def cell_customers(
    matrix: Matrix, cell: Cell, request: Request, f: Filters, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)
):
    _known_cell(matrix, cell)
    async with runtime_of(request).db.sessions() as session:
        return await service.cell_customers(session, f, matrix, cell, limit, offset)


@management_reports_router.get("/matrices/{matrix}/{cell}/customers.csv")
async def cell_customers_csv(matrix: Matrix, cell: Cell, request: Request, f: Filters):
    _known_cell(matrix, cell)
    async with runtime_of(request).db.sessions() as session:
        rows = (await session.execute(service.cell_customers_query(f, matrix, cell))).mappings().all()
    return _csv([dict(r) for r in rows], service.CELL_CUSTOMER_COLUMNS, f"{matrix}-{cell}")


async def _credit_churn(request: Request, f: ReportFilters) -> dict[str, Any]:
    runtime = runtime_of(request)
    async with runtime.db.sessions() as session:
        return await service.credit_churn_report(session, f, runtime.clock().date())


@management_reports_router.get("/credit-churn")
async def credit_churn_report(request: Request, f: Filters):
    return await _credit_churn(request, f)


@management_reports_router.get("/credit-churn.csv")
async def credit_churn_csv(request: Request, f: Filters):
    return _csv(service.credit_churn_csv_rows(await _credit_churn(request, f)), ["section", "from", "to", "customers"], "credit-churn")


@management_reports_router.get("/rfm")
async def rfm_report(request: Request, f: Filters):
    async with runtime_of(request).db.sessions() as session:
        return await service.rfm_report(session, f)


@management_reports_router.get("/rfm.csv")
async def rfm_csv(request: Request, f: Filters):
    async with runtime_of(request).db.sessions() as session:
        report = await service.rfm_report(session, f)
    return _csv(service.rfm_csv_rows(report), ["r", "f", "customers"], "rfm")


@management_reports_router.get("/tiers")
async def tier_report(request: Request, f: Filters):
    async with runtime_of(request).db.sessions() as session:
        return await service.tier_report(session, f)


@management_reports_router.get("/tiers.csv")
async def tier_csv(request: Request, f: Filters):
    async with runtime_of(request).db.sessions() as session:
        report = await service.tier_report(session, f)
    return _csv(service.tier_csv_rows(report), ["tier", "customers"], "tiers")
