"""The judgement of the last closed month against each customer's agreed targets, part of every rescoring.

A customer is held to the targets of its commercial tier (key_account, ordinary, small: `scores.commercial_tiers`, the
tier without its churn branch), with the targets of its own agreement (the profile's `service_level_agreement`,
CustomerUpdated v3) in their place; never to at_risk's: a breach feeds churn risk, so targets chosen by churn risk made two
stable states and the one stored depended on the order events arrived in. The rescoring judges the customers it
scores (and the population recompute everyone) with the tier it computes from the same facts, before their
satisfaction and churn risk are computed, so the breach and the scores are a function of the facts, whatever the
arrival order, and a late event that changes the class corrects the breach in the same transaction.

Only the last closed month (the one before the month of the scoring clock) is judged: a task about a month long gone
is noise (a replayed history would raise one per month); older judgements stay as they were. The stored row is the
current judgement (the agreed tier, every missed target with its actual value); ServiceLevelBreached is announced
when the set of missed measures is new or changed, and a month that no longer misses anything forgets its breach
without an event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.events import make_event
from crm_common.events.scoring import ServiceLevelBreached
from crm_common.outbox import add_to_outbox
from crm_scoring.scoring.ingest import id_filters
from crm_scoring.scoring.models import customers
from crm_scoring.service_levels.measures import month_of
from crm_scoring.service_levels.models import service_level_breaches, service_level_months
from crm_scoring.service_levels.targets import agreed_targets, missed_targets, summary
from crm_scoring.settings import ScoringSettings


def last_closed_month(now: dt.datetime) -> str:
    first = dt.datetime.strptime(month_of(now), "%Y-%m").date()
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


@dataclass(frozen=True)
class Verdict:
    tier: str
    missed: list[dict]
    measured: bool = True  # at least one of the customer's targets had a value in the month

    @property
    def kind(self) -> str:
        """missed, met, or not_measured (no target could be judged: neither met nor missed)."""
        return "missed" if self.missed else "met" if self.measured else "not_measured"


@dataclass
class Pending:
    """What a judgement reads: the month, its stored records, the judgements stored before and the customers'
    agreements (the profile's targets in place of the tier's defaults), per customer."""

    month: str
    records: dict[str, dict]
    before: dict[str, Verdict]
    agreements: dict[str, dict[str, float]]


async def load(session: AsyncSession, customer_ids: list[str] | None, now: dt.datetime) -> Pending:
    """The last closed month's records and stored judgements of these customers (everyone's when None)."""
    month = last_closed_month(now)
    m, b = service_level_months.c, service_level_breaches.c
    records: dict[str, dict] = {}
    before: dict[str, Verdict] = {}
    record_stmt = select(service_level_months).where(m.month == month)
    breach_stmt = select(b.customer_id, b.tier, b.missed, b.verdict).where(b.month == month)
    agreements: dict[str, dict[str, float]] = {}
    agreement_stmt = select(customers.c.customer_id, customers.c.service_level_agreement).where(
        customers.c.service_level_agreement.is_not(None)
    )
    for where_m, where_b, where_c in _filters(session, customer_ids):
        records.update((r["customer_id"], dict(r)) for r in (await session.execute(record_stmt.where(where_m))).mappings())
        before.update(
            (c, Verdict(t, missed, verdict != "not_measured"))
            for c, t, missed, verdict in (await session.execute(breach_stmt.where(where_b))).all()
        )
        agreements.update((c, a) for c, a in (await session.execute(agreement_stmt.where(where_c))).all() if a)
    return Pending(month, records, before, agreements)


def _filters(session: AsyncSession, customer_ids: list[str] | None) -> Iterable[tuple]:
    if customer_ids is None:
        return [(true(), true(), true())]
    return zip(
        id_filters(session, service_level_months.c.customer_id, customer_ids),
        id_filters(session, service_level_breaches.c.customer_id, customer_ids),
        id_filters(session, customers.c.customer_id, customer_ids),
    )


def judge(pending: Pending, agreed: dict[str, str], settings: ScoringSettings) -> dict[str, Verdict]:
    """Pure: each customer's verdict on the month, against its agreed targets (its tier's defaults, its agreement's
    targets in their place: `targets.agreed_targets`). A month where none of its targets had a value (no promise to
    judge...), or a customer with a stored judgement but no record any more (its orders cancelled or merged away), is
    not measured: neither met nor missed."""
    verdicts = {}
    for customer_id in sorted(set(pending.records) | set(pending.before)):
        tier = agreed.get(customer_id)
        if tier is None:
            continue  # not among the customers scored now
        record = pending.records.get(customer_id, {})
        targets = agreed_targets(settings.service_level_targets, tier, pending.agreements.get(customer_id))
        measured = any(record.get(measure) is not None for measure in targets)
        verdicts[customer_id] = Verdict(tier, missed_targets(record, targets), measured)
    return verdicts


def with_verdicts(months: pd.DataFrame, month: str, verdicts: dict[str, Verdict]) -> pd.DataFrame:
    """The judged months (customer_id, month, end_day, breached) with the verdicts on `month` in place of the stored
    ones; a month not measured is left out (it counts neither as met nor as missed)."""
    if not verdicts:
        return months
    stale = (months["month"] == month) & months["customer_id"].isin(list(verdicts)) if len(months) else np.zeros(0, dtype=bool)
    judged = [(customer_id, v.kind == "missed") for customer_id, v in sorted(verdicts.items()) if v.kind != "not_measured"]
    end_day = ((pd.Period(month, freq="M") + 1).to_timestamp() - pd.Timestamp(0)).days
    fresh = pd.DataFrame(
        {"customer_id": [c for c, _ in judged], "month": month, "end_day": end_day, "breached": [b for _, b in judged]},
        columns=["customer_id", "month", "end_day", "breached"],
    )
    return pd.concat([months[~stale], fresh], ignore_index=True) if len(months) else fresh


async def store(
    session: AsyncSession,
    month: str,
    verdicts: dict[str, Verdict],
    before: dict[str, Verdict],
    now: dt.datetime,
    settings: ScoringSettings,
    *,
    announce: bool = True,
) -> int:
    """Write the verdicts that differ from the stored judgements; stage ServiceLevelBreached for a new or changed set
    of missed measures (unless `announce` is false: the scoring's own `emit=False`, an import that announces nothing).
    Returns the events staged."""
    b = service_level_breaches.c
    envelopes, inserts, updates = [], [], []
    for customer_id, verdict in sorted(verdicts.items()):
        old = before.get(customer_id)
        if old == verdict:
            continue
        news = bool(verdict.missed) and (old is None or _measures(old.missed) != _measures(verdict.missed))
        row = {"tier": verdict.tier, "missed": verdict.missed, "verdict": verdict.kind}
        if old is None:
            inserts.append({"customer_id": customer_id, "month": month, **row, "announced_at": now})
        else:  # the same measures missed with other figures, another tier, met or not measured now: no new task
            updates.append((customer_id, row | ({"announced_at": now} if news else {})))
        if news:
            payload = ServiceLevelBreached(
                customer_id=customer_id,
                month=month,
                tier=verdict.tier,
                missed=verdict.missed,
                summary=summary(verdict.missed),
                detected_at=now,
            )
            envelopes.append(make_event(payload, key=customer_id, producer=settings.service_name, occurred_at=now))
    for customer_id, values in updates:
        await session.execute(update(service_level_breaches).where(b.customer_id == customer_id, b.month == month).values(**values))
    if inserts:
        await session.execute(insert(service_level_breaches), inserts)
    if envelopes and announce:
        await add_to_outbox(session, envelopes)
        return len(envelopes)
    return 0


def _measures(missed: list[dict]) -> list[str]:
    return [m["measure"] for m in missed]
