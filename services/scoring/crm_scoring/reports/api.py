"""Thin routers: the management reports, each as JSON and as a CSV download, filtered by `report_filters`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from crm_common.deps import RuntimeDep, SessionDep
from crm_common.problems import Problem
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


async def _abc(session: SessionDep, runtime: RuntimeDep, f: Filters) -> dict[str, Any]:
    return await service.abc_report(session, f, runtime.settings)


ABC = Annotated[dict[str, Any], Depends(_abc)]


@management_reports_router.get("/abc")
async def abc_report(report: ABC):
    return report


@management_reports_router.get("/abc.csv")
async def abc_csv(report: ABC):
    return _csv(
        service.abc_csv_rows(report), ["split", "class", "customers", "customer_share", "revenue", "revenue_share", "min_value"], "abc"
    )


async def _matrices(session: SessionDep, f: Filters) -> dict[str, Any]:
    return await service.matrix_report(session, f)


Matrices = Annotated[dict[str, Any], Depends(_matrices)]


@management_reports_router.get("/matrices")
async def matrix_report(report: Matrices):
    return report


@management_reports_router.get("/matrices.csv")
async def matrix_csv(report: Matrices):
    return _csv(
        service.matrix_csv_rows(report),
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
    matrix: Matrix, cell: Cell, session: SessionDep, f: Filters, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)
):
    _known_cell(matrix, cell)
    return await service.cell_customers(session, f, matrix, cell, limit, offset)


@management_reports_router.get("/matrices/{matrix}/{cell}/customers.csv")
async def cell_customers_csv(matrix: Matrix, cell: Cell, session: SessionDep, f: Filters):
    _known_cell(matrix, cell)
    rows = (await session.execute(service.cell_customers_query(f, matrix, cell))).mappings().all()
    return _csv([dict(r) for r in rows], service.CELL_CUSTOMER_COLUMNS, f"{matrix}-{cell}")


async def _credit_churn(session: SessionDep, runtime: RuntimeDep, f: Filters) -> dict[str, Any]:
    return await service.credit_churn_report(session, f, runtime.clock().date())


CreditChurn = Annotated[dict[str, Any], Depends(_credit_churn)]


@management_reports_router.get("/credit-churn")
async def credit_churn_report(report: CreditChurn):
    return report


@management_reports_router.get("/credit-churn.csv")
async def credit_churn_csv(report: CreditChurn):
    return _csv(service.credit_churn_csv_rows(report), ["section", "from", "to", "customers"], "credit-churn")


@management_reports_router.get("/rfm")
async def rfm_report(session: SessionDep, f: Filters):
    return await service.rfm_report(session, f)


@management_reports_router.get("/rfm.csv")
async def rfm_csv(session: SessionDep, f: Filters):
    report = await service.rfm_report(session, f)
    return _csv(service.rfm_csv_rows(report), ["r", "f", "customers"], "rfm")


@management_reports_router.get("/tiers")
async def tier_report(session: SessionDep, f: Filters):
    return await service.tier_report(session, f)


@management_reports_router.get("/tiers.csv")
async def tier_csv(session: SessionDep, f: Filters):
    report = await service.tier_report(session, f)
    return _csv(service.tier_csv_rows(report), ["tier", "customers"], "tiers")
