"""Bulk-load complaints straight into a migrated complaints database (asyncpg COPY), for the query benchmarks
and the index tests. Rows look like what the intake writes: a complaint, its tracking number and order id,
two timeline entries and two SLA clocks.

    seed(dsn, 100_000) -> {"tracking": [...sample...], "phones": [...], "customers": [...]}
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid

CATEGORIES = ("delay", "damage", "loss", "wrong_delivery", "missed_delivery", "billing", "staff_attitude", "pickup", "information", "other")
STATUSES = ("new", "assigned", "in_progress", "waiting_on_customer", "resolved", "closed")


def tracking_number(i: int) -> str:
    return f"SF{i:010d}"


def phone(i: int) -> str:
    return f"+86137{i % 10_000_000:08d}"


def customer(i: int, customers: int) -> str:
    return f"cust-{i % customers:06d}"


async def seed(dsn: str, count: int, *, customers: int | None = None, seed_value: int = 5, chunk: int = 20_000) -> dict:
    import asyncpg

    customers = customers or max(1, count // 10)
    rng = random.Random(seed_value)
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    connection = await asyncpg.connect(dsn)
    try:
        for start in range(0, count, chunk):
            complaints, references, timeline, clocks = [], [], [], []
            for i in range(start, min(count, start + chunk)):
                cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                filed = base + dt.timedelta(minutes=i * 3)
                status = STATUSES[i % len(STATUSES)]
                complaints.append(
                    (
                        cid,
                        f"C{i:09d}",
                        customer(i, customers),
                        None,
                        CATEGORIES[i % len(CATEGORIES)],
                        f"P{1 + i % 4}",
                        "call_center",
                        status,
                        None,
                        None,
                        "East China",
                        "express",
                        f"Parcel {tracking_number(i)} arrived late and damaged.",
                        None,
                        None,
                        "[]",
                        f"Reporter {i}",
                        phone(i),
                        None,
                        "zh-CN",
                        "ordinary",
                        None,
                        None,
                        None,
                        filed,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        None,
                        0,
                        None,
                        None,
                        None,
                        None,
                        filed,
                        1,
                    )
                )
                references.append((cid, "tracking", tracking_number(i)))
                references.append((cid, "order", f"ORD{i:09d}"))
                timeline.append((cid, filed, "filed", "customer", None, "Complaint filed", "{}"))
                timeline.append(
                    (cid, filed + dt.timedelta(minutes=5), "assigned", "internal", "agent-1", None, json.dumps({"team": "hotline"}))
                )
                clocks.append((cid, "first_response", 240, 0, filed, False, None, filed + dt.timedelta(hours=4), None, 0, None))
                clocks.append((cid, "resolution", 2880, 0, filed, False, None, filed + dt.timedelta(hours=48), None, 0, None))
            await connection.copy_records_to_table(
                "complaints",
                records=complaints,
                columns=[
                    "id",
                    "number",
                    "customer_id",
                    "contact_id",
                    "category",
                    "priority",
                    "channel",
                    "status",
                    "team_id",
                    "agent_id",
                    "region",
                    "service_type",
                    "description",
                    "desired_outcome",
                    "claimed_amount",
                    "attachments",
                    "reporter_name",
                    "reporter_phone",
                    "reporter_email",
                    "language",
                    "tier_at_filing",
                    "duplicate_of",
                    "merged_into",
                    "source_event_id",
                    "filed_at",
                    "first_response_at",
                    "resolved_at",
                    "closed_at",
                    "outcome",
                    "compensation_amount",
                    "resolved_by",
                    "resolution_within_sla",
                    "first_response_within_sla",
                    "reopen_count",
                    "survey_token",
                    "survey_score",
                    "survey_comment",
                    "survey_answered_at",
                    "updated_at",
                    "version",
                ],
            )
            await connection.copy_records_to_table("complaint_references", records=references, columns=["complaint_id", "kind", "value"])
            await connection.copy_records_to_table(
                "timeline_entries", records=timeline, columns=["complaint_id", "at", "kind", "visibility", "actor_id", "body", "data"]
            )
            await connection.copy_records_to_table(
                "sla_clocks",
                records=clocks,
                columns=[
                    "complaint_id",
                    "kind",
                    "target_minutes",
                    "consumed_us",
                    "running_since",
                    "paused",
                    "stopped_at",
                    "deadline_at",
                    "next_escalation_at",
                    "escalation_level",
                    "breached_at",
                ],
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    sample = random.Random(seed_value + 1)
    picks = [sample.randrange(count) for _ in range(min(count, 5000))]
    return {
        "tracking": [tracking_number(i) for i in picks],
        "phones": [phone(i) for i in picks],
        "customers": sorted({customer(i, customers) for i in picks}),
    }
