"""Complaint figures: counts by category/channel/team/period, SLA compliance, time percentiles, reopen rate, CSAT.

Scope: complaints filed in [from, to] (UTC dates, both inclusive), merged duplicates excluded.
Times are business minutes counted by the SLA clocks (pauses excluded) of stopped clocks.
Percentiles use the nearest-rank method. CSAT is the mean survey score (1-5) by team, by the agent
who resolved the complaint and by the customer's account manager (from the directory), with the
share of scores >= 4.
"""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_complaints.complaints.models import Complaint, DirectoryCustomer, SlaClockRow

PERCENTILES = (50, 90, 95)


def nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def period_key(when: dt.datetime, period: str) -> str:
    if period == "day":
        return when.date().isoformat()
    if period == "week":
        year, week, _ = when.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{when.year}-{when.month:02d}"


def _rate(good: int, total: int) -> float | None:
    return round(good / total, 4) if total else None


async def complaint_report(
    session: AsyncSession, *, date_from: dt.date | None = None, date_to: dt.date | None = None, period: str = "month"
) -> dict:
    conditions = [Complaint.merged_into.is_(None)]
    if date_from is not None:
        conditions.append(Complaint.filed_at >= dt.datetime.combine(date_from, dt.time(), tzinfo=dt.UTC))
    if date_to is not None:
        conditions.append(Complaint.filed_at < dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))
    scope = and_(*conditions)

    async def grouped(column) -> dict[str, int]:
        rows = (await session.execute(select(column, func.count()).where(scope).group_by(column).order_by(column))).all()
        return {str(key) if key is not None else "unassigned": int(n) for key, n in rows}

    total = int(await session.scalar(select(func.count()).select_from(Complaint).where(scope)) or 0)
    by_period: dict[str, int] = {}
    for (filed_at,) in (await session.execute(select(Complaint.filed_at).where(scope))).all():
        key = period_key(filed_at, period)
        by_period[key] = by_period.get(key, 0) + 1

    async def compliance(column) -> dict:
        rows = (await session.execute(select(column, func.count()).where(scope, column.is_not(None)).group_by(column))).all()
        counts = {bool(k): int(n) for k, n in rows}
        met, missed = counts.get(True, 0), counts.get(False, 0)
        return {"met": met, "missed": missed, "rate": _rate(met, met + missed)}

    async def minutes(kind: str) -> list[float]:
        rows = (
            await session.execute(
                select(SlaClockRow.consumed_us)
                .join(Complaint, Complaint.id == SlaClockRow.complaint_id)
                .where(
                    scope,
                    SlaClockRow.kind == kind,
                    SlaClockRow.stopped_at.is_not(None),
                    Complaint.resolved_at.is_not(None) if kind == "resolution" else Complaint.first_response_at.is_not(None),
                )
            )
        ).all()
        return [int(us) / 60_000_000 for (us,) in rows]

    first_minutes = await minutes("first_response")
    resolution_minutes = await minutes("resolution")
    resolved = int(await session.scalar(select(func.count()).select_from(Complaint).where(scope, Complaint.resolved_at.is_not(None))) or 0)
    reopened = int(await session.scalar(select(func.count()).select_from(Complaint).where(scope, Complaint.reopen_count > 0)) or 0)

    async def csat(column) -> dict[str, dict]:
        query = select(
            column,
            func.count(),
            func.avg(Complaint.survey_score),
            func.sum(func.cast(Complaint.survey_score >= 4, type_=Complaint.survey_score.type)),
        )
        if column.class_ is DirectoryCustomer:
            query = query.select_from(Complaint).outerjoin(DirectoryCustomer, DirectoryCustomer.id == Complaint.customer_id)
        rows = (await session.execute(query.where(scope, Complaint.survey_score.is_not(None)).group_by(column).order_by(column))).all()
        return {
            str(key) if key is not None else "unassigned": {
                "responses": int(n),
                "mean_score": round(float(avg), 4),
                "satisfied_rate": _rate(int(good or 0), int(n)),
            }
            for key, n, avg, good in rows
        }

    return {
        "scope": {"from": date_from.isoformat() if date_from else None, "to": date_to.isoformat() if date_to else None, "period": period},
        "total": total,
        "by_category": await grouped(Complaint.category),
        "by_channel": await grouped(Complaint.channel),
        "by_team": await grouped(Complaint.team_id),
        "by_period": dict(sorted(by_period.items())),
        "sla": {
            "first_response": await compliance(Complaint.first_response_within_sla),
            "resolution": await compliance(Complaint.resolution_within_sla),
        },
        "first_response_minutes": {f"p{p}": _round(nearest_rank(first_minutes, p)) for p in PERCENTILES} | {"count": len(first_minutes)},
        "resolution_minutes": {f"p{p}": _round(nearest_rank(resolution_minutes, p)) for p in PERCENTILES}
        | {"count": len(resolution_minutes)},
        "reopen": {"resolved": resolved, "reopened": reopened, "rate": _rate(reopened, resolved)},
        "csat": {
            "by_team": await csat(Complaint.team_id),
            "by_agent": await csat(Complaint.resolved_by),
            "by_account_manager": await csat(DirectoryCustomer.account_manager),
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
