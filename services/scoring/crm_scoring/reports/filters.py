"""The management reports' filters and the SQL that applies them.

Region, industry and account manager are the profile's (scoring keeps them from CustomerRegistered/CustomerUpdated);
tier is the stored score's; a service type keeps the customers with an order of that type (in the period when one
is given). The period is two inclusive UTC dates: revenue-based figures count the orders created in it, movements
compare each customer's state at its start and its end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query
from sqlalchemy import ColumnElement, Select, and_, func, select

from crm_common.events.logistics import ServiceType
from crm_common.problems import Problem
from crm_scoring.scoring.ingest import day_number
from crm_scoring.scoring.models import customer_scores, customers, orders

Tier = Literal["key_account", "ordinary", "small", "at_risk"]
EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2100, 12, 31)
FilterText = Annotated[str | None, Query(min_length=1, max_length=100)]
PeriodDate = Annotated[dt.date | None, Query(ge=EARLIEST, le=LATEST, description="Inclusive UTC date (YYYY-MM-DD).")]


@dataclass(frozen=True)
class ReportFilters:
    region: str | None = None
    industry: str | None = None
    account_manager: str | None = None
    service_type: str | None = None
    tier: str | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None

    @property
    def has_period(self) -> bool:
        return self.period_start is not None

    def period_days(self) -> tuple[int, int]:
        """First and last day number of the period (its dates are inclusive)."""
        assert self.period_start is not None and self.period_end is not None
        return day_number(self.period_start), day_number(self.period_end)

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in self.__dict__.items() if v is not None}


def _invalid_period(detail: str, field: str) -> Problem:
    return Problem(
        422,
        "Validation failed",
        detail,
        type_="urn:crm:problem:validation",
        errors=[{"loc": ["query", field], "msg": detail, "type": "value_error"}],
    )


async def report_filters(
    region: FilterText = None,
    industry: FilterText = None,
    account_manager: FilterText = None,
    service_type: ServiceType | None = None,
    tier: Tier | None = None,
    period_start: PeriodDate = None,
    period_end: PeriodDate = None,
) -> ReportFilters:
    """The query's filters (a FastAPI dependency): a period needs both dates, its start not after its end."""
    if (period_start is None) != (period_end is None):
        missing = "period_end" if period_end is None else "period_start"
        raise _invalid_period("A period needs both period_start and period_end.", missing)
    if period_start is not None and period_end is not None and period_start > period_end:
        raise _invalid_period("period_start is after period_end.", "period_end")
    return ReportFilters(region, industry, account_manager, service_type, tier, period_start, period_end)


def counted_orders(f: ReportFilters) -> list[ColumnElement[bool]]:
    """The orders a revenue figure counts: not cancelled, in the period and of the service type when given."""
    where: list[ColumnElement[bool]] = [orders.c.cancelled_at.is_(None)]
    if f.has_period:
        first, last = f.period_days()
        where.append(orders.c.order_day.between(first, last))
    if f.service_type is not None:
        where.append(orders.c.service_type == f.service_type)
    return where


def customer_conditions(customer_id: ColumnElement, f: ReportFilters, *, tier: ColumnElement | None = None) -> list[ColumnElement[bool]]:
    """The conditions that keep the filtered customers, on any table's `customer_id` column (`tier`: the stored tier's
    column when the statement already selects from customer_scores)."""
    where: list[ColumnElement[bool]] = []
    profile = [customers.c[name] == getattr(f, name) for name in ("region", "industry", "account_manager") if getattr(f, name) is not None]
    if profile:
        where.append(customer_id.in_(select(customers.c.customer_id).where(and_(*profile))))
    if f.tier is not None:
        if tier is not None:
            where.append(tier == f.tier)
        else:
            where.append(customer_id.in_(select(customer_scores.c.customer_id).where(customer_scores.c.tier == f.tier)))
    if f.service_type is not None:
        where.append(customer_id.in_(select(orders.c.customer_id).where(*counted_orders(f))))
    return where


def scoped(stmt: Select, f: ReportFilters) -> Select:
    """`stmt` (which selects from customer_scores) restricted to the filtered customers."""
    conditions = customer_conditions(customer_scores.c.customer_id, f, tier=customer_scores.c.tier)
    return stmt.where(*conditions) if conditions else stmt


def period_revenue(f: ReportFilters):
    """Per customer, the revenue of the counted orders (a subquery: customer_id, revenue)."""
    return (
        select(orders.c.customer_id, func.sum(orders.c.amount).label("revenue"))
        .where(*counted_orders(f))
        .group_by(orders.c.customer_id)
        .subquery()
    )
