"""Scoring use cases: rescore touched customers, recompute the population, announce what changed."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import JSON, ColumnElement, Select, Text, and_, bindparam, case, cast, delete, false, func, insert, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common import tracing
from crm_common.context import current_correlation_id
from crm_common.db import utcnow
from crm_common.events.envelope import make_event
from crm_common.events.scoring import ChurnRiskRaised, CreditGradeChanged, CustomerScoredV2, CustomerTierChanged
from crm_common.outbox import add_to_outbox
from crm_scoring.model import engine
from crm_scoring.model.features import CUSTOMER_COLUMNS, Facts, compute_features, with_service_levels
from crm_scoring.model.scores import RISK_ORDER
from crm_scoring.scoring.ingest import EPOCH, day_number, id_filters
from crm_scoring.scoring.models import (
    SCORE_COLUMNS,
    complaints,
    customer_scores,
    customers,
    invoices,
    orders,
    population_model,
    rescore_queue,
    score_history,
    surveys,
)
from crm_scoring.scoring.upsert import upsert
from crm_scoring.service_levels import judgement
from crm_scoring.service_levels.models import service_level_breaches
from crm_scoring.settings import ScoringSettings

log = logging.getLogger(__name__)

PRODUCER = "scoring"
RESCORE_LOCK_KEY = 0x5C0E2
CATEGORICAL = ("abc_class", "rfm_segment", "credit_grade", "tier", "churn_risk")


class ScoresNotFound(LookupError):
    """No scores for this customer (never seen, or not scored yet)."""


class InvalidCursor(ValueError):
    """A page cursor this service did not issue."""


# ---------------------------------------------------------------- reading scores


def encode_cursor(customer_id: str) -> str:
    return base64.urlsafe_b64encode(customer_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except Exception:
        raise InvalidCursor("The cursor is not one this service issued.") from None


async def score_page(
    session: AsyncSession, columns: Sequence[str], *, filters: dict[str, str | None], cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """`columns` of the customers' scores matching `filters` (column: value, None for any), by customer id from after
    `cursor`; and the next page's cursor."""
    stmt = select(*(customer_scores.c[name] for name in columns)).order_by(customer_scores.c.customer_id).limit(limit + 1)
    for name, value in filters.items():
        if value is not None:
            stmt = stmt.where(customer_scores.c[name] == value)
    if cursor:
        stmt = stmt.where(customer_scores.c.customer_id > decode_cursor(cursor))
    rows = [dict(r) for r in (await session.execute(stmt)).mappings().all()]
    items = rows[:limit]
    return items, encode_cursor(items[-1]["customer_id"]) if len(rows) > limit else None


async def customer_score_detail(session: AsyncSession, customer_id: str, history_limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The customer's current scores row and its latest `history_limit` history entries, newest first."""
    row = (await session.execute(select(customer_scores).where(customer_scores.c.customer_id == customer_id))).mappings().first()
    if row is None:
        raise ScoresNotFound(f"No scores for customer {customer_id}.")
    history = (
        (
            await session.execute(
                select(score_history.c.scored_at, score_history.c.scores)
                .where(score_history.c.customer_id == customer_id)
                .order_by(score_history.c.id.desc())
                .limit(history_limit)
            )
        )
        .mappings()
        .all()
    )
    return dict(row), [dict(h) for h in history]


# ---------------------------------------------------------------- loading facts

TEXT, FLOAT, INT, FLAG, DAY = "text", "float", "int", "flag", "day"  # how a result column becomes an array


async def _columns(
    session: AsyncSession,
    stmt: Select[Any],
    kinds: Sequence[str],
    key: Sequence[ColumnElement[Any]],
    id_column: ColumnElement[Any],
    ids: list[str] | None,
    page_rows: int,
) -> list[np.ndarray]:
    """The columns of `stmt`'s rows, ordered by `key` (a unique key of its table), one array each as `kinds` says.

    Everyone's rows (ids None) are read in keyset pages of `page_rows` (`key > the page's last key ... LIMIT`): one
    statement over a whole fact table runs past the database's per-request command timeout at millions of rows
    (crm_common.db), and a page keeps the driver's row objects to one page at a time. The pages come in key order,
    so the arrays are the rows of the single ordered statement. The rows of given ids: one statement per id batch."""
    ordered = stmt.order_by(*key)
    parts: list[list[np.ndarray]] = [[] for _ in kinds]
    texts: list[dict[Any, Any]] = [{} for _ in kinds]  # per text column, each distinct value once (ids repeat per row)

    def add(rows: Sequence[Any]) -> None:
        for index, (kind, values) in enumerate(zip(kinds, zip(*rows), strict=False)):
            parts[index].append(_array(kind, values, texts[index]))

    if ids is not None:
        for where in id_filters(session, id_column, ids):
            add((await session.execute(ordered.where(where))).all())
    else:
        # the key again, labelled, after the wanted columns: the next page starts after the last row's key
        paged = ordered.add_columns(*(column.label(f"page_key_{i}") for i, column in enumerate(key))).limit(page_rows)
        marks = [bindparam(f"after_{i}") for i in range(len(key))]
        after = tuple_(*key) > tuple_(*marks) if len(key) > 1 else key[0] > marks[0]
        last: Sequence[Any] | None = None
        while True:
            if last is None:
                rows = (await session.execute(paged)).all()
            else:
                rows = (await session.execute(paged.where(after), {f"after_{i}": v for i, v in enumerate(last)})).all()
            add(rows)
            if len(rows) < page_rows:
                break
            last = tuple(rows[-1])[-len(key) :]
    return [_concat(kind, column) for kind, column in zip(kinds, parts, strict=True)]


def _array(kind: str, values: Sequence[Any], seen: dict[Any, Any]) -> np.ndarray:
    if kind == TEXT:  # equal strings become one object: 5M order rows hold 100k customer ids, not 5M copies
        return np.array(list(map(seen.setdefault, values, values)), dtype=object)
    if kind == DAY:
        return _days(values)
    return np.array(values, dtype={FLOAT: float, INT: np.int64, FLAG: bool}[kind])  # FLOAT: None -> NaN


def _concat(kind: str, parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype={TEXT: object, FLOAT: float, DAY: float, INT: np.int64, FLAG: bool}[kind])
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _days(values) -> np.ndarray:
    """Aware datetimes (or None) -> fractional days since 1970."""
    return np.array([np.nan if v is None else (v - EPOCH).total_seconds() / 86400 for v in values], dtype=float)


async def load_facts(session: AsyncSession, settings: ScoringSettings, customer_ids: Iterable[str] | None = None) -> Facts:
    """Facts of the given customers (all customers when None) as the DataFrames the feature code reads, built column
    by column (no row tuples kept)."""
    ids = None if customer_ids is None else sorted(set(customer_ids))
    page = settings.recompute_page_rows

    async def frame(stmt: Select[Any], columns: dict[str, str], key: Sequence[ColumnElement[Any]], id_column) -> pd.DataFrame:
        arrays = await _columns(session, stmt, list(columns.values()), key, id_column, ids, page)
        return pd.DataFrame(dict(zip(columns, arrays, strict=True)))

    promised = func.coalesce(orders.c.promised_at, orders.c.promised_delivery_at)
    order_stmt = select(
        orders.c.customer_id,
        orders.c.order_day,
        orders.c.amount,
        func.coalesce(orders.c.margin, orders.c.amount - orders.c.cost, orders.c.amount * settings.default_margin_rate).label("margin"),
        orders.c.service_type,
        case((orders.c.cancelled_at.is_not(None), 1), else_=0).label("cancelled"),
        case((or_shipped(), 1), else_=0).label("shipped"),
        case(
            (
                and_(orders.c.delivered_at.is_not(None), promised.is_not(None)),
                case((orders.c.delivered_at <= promised, 1.0), else_=0.0),
            ),
            else_=None,
        ).label("on_time"),
        func.coalesce(orders.c.damaged, 0).label("damaged"),
        func.coalesce(orders.c.lost, 0).label("lost"),
        (func.coalesce(orders.c.damage_loss, 0.0) + func.coalesce(orders.c.lost_value, 0.0)).label("loss"),
    ).where(orders.c.order_day.is_not(None))
    order_kinds = {
        "customer_id": TEXT,
        "order_day": INT,
        "amount": FLOAT,
        "margin": FLOAT,
        "service_type": TEXT,
        "cancelled": FLAG,
        "shipped": FLAG,
        "on_time": FLOAT,
        "damaged": FLAG,
        "lost": FLAG,
        "loss": FLOAT,
    }
    order_df = await frame(order_stmt, order_kinds, [orders.c.order_id], orders.c.customer_id)

    c = complaints.c
    complaint_df = await frame(
        select(c.customer_id, c.filed_at, c.resolved_at, c.within_sla, c.priority, c.compensation),
        {"customer_id": TEXT, "filed_day": DAY, "resolved_day": DAY, "within_sla": FLOAT, "priority": TEXT, "compensation": FLOAT},
        [c.complaint_id],
        c.customer_id,
    )
    sla_days = {k: v / 24 for k, v in settings.complaint_sla_hours.items()}
    priorities = complaint_df["priority"].to_numpy(dtype=object)
    complaint_df["sla_days"] = np.array([sla_days.get(p if isinstance(p, str) else "", 3.0) for p in priorities], dtype=float)
    survey_df = await frame(
        select(surveys.c.customer_id, surveys.c.score, surveys.c.answered_at),
        {"customer_id": TEXT, "score": INT, "answered_day": DAY},
        [surveys.c.complaint_id],
        surveys.c.customer_id,
    )
    i = invoices.c
    invoice_df = await frame(
        select(i.customer_id, i.amount, i.due_day, i.paid_day, i.days_overdue),
        {"customer_id": TEXT, "amount": FLOAT, "due_day": FLOAT, "paid_day": FLOAT, "days_overdue": FLOAT},
        [i.invoice_id],
        i.customer_id,
    )
    customer_kinds = {"customer_id": TEXT, "credit_limit": FLOAT, "share_of_wallet": FLOAT, "potential_volume": FLOAT, "size_band": TEXT}
    assert list(customer_kinds) == CUSTOMER_COLUMNS
    customer_df = await frame(
        select(*(customers.c[name] for name in CUSTOMER_COLUMNS)), customer_kinds, [customers.c.customer_id], customers.c.customer_id
    )
    b = service_level_breaches.c
    months = await frame(
        select(b.customer_id, b.month, b.verdict).where(b.verdict != "not_measured"),
        {"customer_id": TEXT, "month": TEXT, "verdict": TEXT},
        [b.customer_id, b.month],
        b.customer_id,
    )
    return Facts(
        orders=order_df,
        complaints=complaint_df,
        surveys=survey_df,
        invoices=invoice_df,
        customers=customer_df,
        service_levels=_service_level_months(months),
    )


def _service_level_months(rows: pd.DataFrame) -> pd.DataFrame:
    """Each judged month that was measured (judgement.py: met or missed; a month never judged, or judged "not
    measured", is left out) as (customer_id, month, end_day: the day after the month, breached: missed a target); the
    satisfaction score and the churn signals read them."""
    months = pd.PeriodIndex(rows["month"].tolist(), freq="M")
    end_day = ((months + 1).to_timestamp() - pd.Timestamp(0)).days.to_numpy() if len(rows) else np.zeros(0, dtype=np.int64)
    return pd.DataFrame(
        {
            "customer_id": rows["customer_id"].tolist(),
            "month": rows["month"].tolist(),
            "end_day": end_day,
            "breached": (rows["verdict"].to_numpy(dtype=object) == "missed").tolist(),
        }
    )


def or_shipped():
    return (orders.c.shipped_at.is_not(None)) | (orders.c.delivered_at.is_not(None))


# ---------------------------------------------------------------- population model


async def load_model(session: AsyncSession) -> engine.PopulationModel | None:
    params = await session.scalar(select(population_model.c.params).where(population_model.c.id == 1))
    return None if params is None else engine.PopulationModel.from_dict(params)


async def save_model(session: AsyncSession, model: engine.PopulationModel) -> None:
    row = {"id": 1, "computed_at": utcnow(), "as_of_day": model.as_of_day, "params": _jsonable(model.as_dict())}
    await upsert(session, population_model, [row], "id", {"computed_at": "replace", "as_of_day": "replace", "params": "replace"})


def _jsonable(value):
    """Plain JSON values (numpy numbers -> Python, NaN -> None) via orjson's C round trip."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))


# ---------------------------------------------------------------- scoring and announcing


async def rescore(
    session: AsyncSession,
    customer_ids: Iterable[str],
    settings: ScoringSettings,
    as_of: dt.datetime,
    *,
    model: engine.PopulationModel | None = None,
    emit: bool = True,
    keep=None,
    traces: Mapping[str, str | None] | None = None,
) -> list[dict]:
    """Recompute the scores of these customers from their facts, store them, announce changes.
    `keep(session, ids)`, when given, returns the customers whose scores may still be written; `traces`, the trace
    each customer's announcements carry (`add_to_outbox`)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    model = model if model is not None else await load_model(session)
    facts = await load_facts(session, settings, ids)
    pending = await judgement.load(session, ids, as_of)
    as_of_day = day_number(as_of)

    def compute():  # the touched customers are one batch: every formula runs once over all of them
        features = compute_features(facts, as_of_day, settings.window_days, settings.default_days)
        features, verdicts = judged_features(features, facts, pending, model, settings, as_of_day)
        return engine.score_batch(features, model, settings, as_of_day).records(), verdicts

    records, verdicts = await _cpu(compute, size=len(ids))
    if keep is not None:
        kept = await keep(session, ids)
        records = [r for r in records if r["customer_id"] in kept]
        verdicts = {cid: verdict for cid, verdict in verdicts.items() if cid in kept}
    await judgement.store(session, pending.month, verdicts, pending.before, as_of, settings, announce=emit)
    await store_scores(session, records, settings, as_of, emit=emit, traces=traces)
    return records


def judged_features(
    features: pd.DataFrame,
    facts: Facts,
    pending: judgement.Pending,
    model: engine.PopulationModel | None,
    settings: ScoringSettings,
    as_of_day: int,
) -> tuple[pd.DataFrame, dict[str, judgement.Verdict]]:
    """Pure: judge the last closed month against each customer's agreed tier (computed from these features and
    model), then the features' service-level columns again with those verdicts, so satisfaction and churn risk read
    the judgement made now and not the one stored earlier (under another tier, or with fewer facts)."""
    agreed = dict(zip(features.index.tolist(), engine.agreed_tiers(features, model, settings).tolist()))
    verdicts = judgement.judge(pending, agreed, settings)
    if not verdicts:
        return features, verdicts
    months = judgement.with_verdicts(facts.service_levels, pending.month, verdicts)
    return with_service_levels(features, months, as_of_day, settings.window_days), verdicts


async def rescore_dirty(
    unit_of_work,
    settings: ScoringSettings,
    as_of: dt.datetime | Callable[[], dt.datetime],
    *,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> int:
    """Rescore the customers the consumer marked dirty, `batch_size` of them per transaction, until none are left.

    `unit_of_work` is anything with `transaction()` (a Database or the ServiceRuntime, which also wakes the relay).
    Each transaction reads a batch of marks (customer id, seq), rescores those customers from their facts with the
    stored population model, stages the announcements in the outbox and deletes the marks whose seq is unchanged:
    a customer whose events were committed meanwhile stays marked and is rescored again. On PostgreSQL an
    advisory lock lets one replica rescore at a time (the others return 0). Returns the customers rescored.
    """
    size = batch_size or settings.rescore_batch_size
    traced = tracing.enabled(settings.service_name)  # off: the marks' traceparent column is neither read nor written
    mark_columns = [rescore_queue.c.customer_id, rescore_queue.c.seq, *([rescore_queue.c.traceparent] if traced else [])]
    done = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        async with unit_of_work.transaction() as session:
            take = select(*mark_columns).order_by(rescore_queue.c.customer_id).limit(size)
            if session.get_bind().dialect.name == "postgresql":
                if not await session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RESCORE_LOCK_KEY}):
                    return done
            else:
                # SQLite: take the write lock now, so nothing commits between reading the facts and writing the scores
                await session.execute(delete(rescore_queue).where(false()))
            marks = (await session.execute(take)).all()
            if not marks:
                return done
            with _in_the_marks_traces(settings, marks) if traced else nullcontext({}) as traces:
                moment = as_of() if callable(as_of) else as_of
                await rescore(session, [m.customer_id for m in marks], settings, moment, keep=_still_marked, traces=traces)
            await session.execute(
                delete(rescore_queue).where(rescore_queue.c.customer_id == bindparam("cid"), rescore_queue.c.seq == bindparam("s")),
                [{"cid": m.customer_id, "s": m.seq} for m in marks],
            )
        done += len(marks)
        batches += 1
        if len(marks) < size:
            return done
    return done


@contextmanager
def _in_the_marks_traces(settings: ScoringSettings, marks: Sequence[Any]) -> Iterator[dict[str, str | None]]:
    """A rescoring pass's span, in the trace of each mark's event (tracing.batch_span); yields the traceparent each
    customer's announcements carry, so its CustomerScored continues the trace of the order that marked it."""
    attributes = {"crm.customers": len(marks)}
    with tracing.batch_span(settings.service_name, "scoring rescore", [m.traceparent for m in marks], attributes=attributes) as continued:
        yield {m.customer_id: continued.get(m.traceparent) for m in marks if m.traceparent}


async def _still_marked(session: AsyncSession, ids: list[str]) -> set[str]:
    """Lock the marks of these customers before their scores are written; a mark that is gone was deleted by a
    merge or an erasure meanwhile (both delete the mark first), and that customer's scores must not come back.
    A merge or erasure that comes later waits for this transaction and then deletes the scores written here."""
    if session.get_bind().dialect.name != "postgresql":
        return set(ids)  # SQLite: the pass holds the write lock from its start, nothing committed meanwhile
    present: set[str] = set()
    for where in id_filters(session, rescore_queue.c.customer_id, ids):
        present.update(
            (
                await session.execute(
                    select(rescore_queue.c.customer_id).where(where).order_by(rescore_queue.c.customer_id).with_for_update()
                )
            ).scalars()
        )
    return present


async def pending_rescores(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(rescore_queue)))


async def recompute_population(
    session: AsyncSession, settings: ScoringSettings, as_of: dt.datetime, *, emit: bool = True
) -> dict[str, Any]:
    """Refit quintiles, ABC cut-offs, BG/NBD and Gamma-Gamma on everyone, then rescore everyone."""
    if session.get_bind().dialect.name == "postgresql":
        # each statement planned with its values, for this transaction only: the generic plan of a prepared
        # `customer_id = ANY($1)` (the previous scores of each slice of 5,000) compares every row with the whole
        # array one by one, and the scores table this transaction fills looks empty to the planner: at 100,000
        # customers each slice's read took 15-24 s (bench/service_levels_bench.py). With the values, PostgreSQL
        # hashes the array.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    as_of_day = day_number(as_of)
    facts = await load_facts(session, settings)
    pending = await judgement.load(session, None, as_of)

    def compute(facts):  # CPU-bound and pure: off the event loop, so HTTP and consumers keep answering
        features = compute_features(facts, as_of_day, settings.window_days, settings.default_days)
        model = engine.fit_population(features, settings, as_of_day)
        features, verdicts = judged_features(features, facts, pending, model, settings, as_of_day)
        return model, engine.score_batch(features, model, settings, as_of_day), verdicts

    model, scored, verdicts = await asyncio.to_thread(compute, facts)
    del facts
    await save_model(session, model)
    await judgement.store(session, pending.month, verdicts, pending.before, as_of, settings, announce=emit)
    changes = dict.fromkeys(ANNOUNCEMENTS, 0)
    # the scores are held as arrays; records (with their explanation text) exist for one slice at a time
    for start in range(0, len(scored), RECOMPUTE_SLICE):
        records = await asyncio.to_thread(scored.records, start, start + RECOMPUTE_SLICE)
        for kind, count in (await store_scores(session, records, settings, as_of, emit=emit)).items():
            changes[kind] += count
    return {"customers": len(scored), "model": _jsonable(model.as_dict()), "events": changes}


ANNOUNCEMENTS = ("CustomerScored", "CustomerTierChanged", "ChurnRiskRaised", "CreditGradeChanged")
GRADE_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}
RECOMPUTE_SLICE = 5000  # customers rendered, planned and written at a time by the population recompute


async def _previous(session: AsyncSession, ids: list[str]) -> dict[str, dict]:
    previous: dict[str, dict] = {}
    cols = [
        customer_scores.c.customer_id,
        customer_scores.c.tier,
        customer_scores.c.churn_risk,
        customer_scores.c.credit_grade,
        customer_scores.c.emitted,
    ]
    for where in id_filters(session, customer_scores.c.customer_id, ids):
        for row in (await session.execute(select(*cols).where(where))).all():
            previous[row.customer_id] = {
                "tier": row.tier,
                "churn_risk": row.churn_risk,
                "credit_grade": row.credit_grade,
                "emitted": row.emitted,
            }
    return previous


def announced_state(record: dict) -> dict:
    return {"scores": engine.numeric_scores(record), **{k: record.get(k) for k in CATEGORICAL}}


def moved_past_step(before: dict | None, after: dict, step: float) -> bool:
    if before is None:
        return True
    if any(before.get(k) != after.get(k) for k in CATEGORICAL):
        return True
    old, new = before.get("scores", {}), after["scores"]
    for key in set(old) | set(new):
        if (key in old) != (key in new):
            return True
        if key in old and abs(float(new[key]) - float(old[key])) >= step:
            return True
    return False


OFFLOAD_MIN = 100  # from this many customers the CPU work runs in a worker thread, so consumers and HTTP keep answering


async def _cpu(fn, *args, size: int):
    return await asyncio.to_thread(fn, *args) if size >= OFFLOAD_MIN else fn(*args)


def _json_text(value) -> str:
    """JSON text (numpy numbers as Python numbers, NaN as null), serialised once with orjson."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


def plan_scores(
    records: Sequence[dict],
    previous: dict[str, dict],
    settings: ScoringSettings,
    as_of: dt.datetime,
    emit: bool,
    now: dt.datetime,
    correlation,
) -> tuple[list, list, list, dict]:
    """Pure: score rows (JSON columns as text), history rows, announcement envelopes and their counts."""
    as_of_day = day_number(as_of)
    envelopes = []
    history = []
    counts = dict.fromkeys(ANNOUNCEMENTS, 0)
    rows = []
    for record in records:
        cid = record["customer_id"]
        before = previous.get(cid)
        state = _jsonable(announced_state(record))
        emitted = before["emitted"] if before else None
        row = {c: record.get(c) for c in SCORE_COLUMNS if c in record}
        row.update(customer_id=cid, computed_at=now, as_of_day=as_of_day, detail=record["detail_json"])
        if emit and moved_past_step(emitted, state, settings.score_step):
            emitted = state
            envelopes.append(
                make_event(
                    CustomerScoredV2(
                        customer_id=cid,
                        scores=state["scores"],
                        abc_class=record["abc_class"],
                        rfm_segment=record["rfm_segment"],
                        credit_grade=record["credit_grade"],
                        tier=record["tier"],
                        churn_risk=record["churn_risk"],
                        scored_at=now,
                    ),
                    key=cid,
                    producer=PRODUCER,
                    correlation_id=correlation,
                )
            )
            history.append(
                {
                    "customer_id": cid,
                    "scored_at": now,
                    "scores": state,
                    "credit_grade": state["credit_grade"],
                    "churn_risk": state["churn_risk"],
                }
            )
            counts["CustomerScored"] += 1
        row["emitted"] = _json_text(emitted)
        old_tier = before["tier"] if before else None
        if emit and record["tier"] != old_tier and not (old_tier is None and record["tier"] in ("small", "ordinary")):
            envelopes.append(
                make_event(
                    CustomerTierChanged(
                        customer_id=cid, old_tier=old_tier, new_tier=record["tier"], reason=record["tier_reason"], changed_at=now
                    ),
                    key=cid,
                    producer=PRODUCER,
                    correlation_id=correlation,
                )
            )
            counts["CustomerTierChanged"] += 1
        old_risk = before["churn_risk"] if before else "low"
        if emit and RISK_ORDER[record["churn_risk"]] > RISK_ORDER.get(old_risk, 0):
            envelopes.append(
                make_event(
                    ChurnRiskRaised(
                        customer_id=cid,
                        p_alive=record["p_alive"],
                        risk_level=record["churn_risk"],
                        signals=record["signals"],
                        raised_at=now,
                    ),
                    key=cid,
                    producer=PRODUCER,
                    correlation_id=correlation,
                )
            )
            counts["ChurnRiskRaised"] += 1
        grade_change = credit_grade_change(record, before["credit_grade"] if before else None, settings, now) if emit else None
        if grade_change is not None:
            envelopes.append(make_event(grade_change, key=cid, producer=PRODUCER, correlation_id=correlation))
            counts["CreditGradeChanged"] += 1
        rows.append(row)
    return rows, history, envelopes, counts


def credit_grade_change(record: dict, old_grade: str | None, settings: ScoringSettings, now: dt.datetime) -> CreditGradeChanged | None:
    """The announcement of a moved credit grade with the new grade's policy; a first grade is news only when its
    policy calls for something."""
    new_grade = record["credit_grade"]
    if new_grade is None or new_grade == old_grade:
        return None
    policy = settings.credit_policy[new_grade]
    if old_grade is None and not policy.actions:
        return None
    falling = old_grade is not None and GRADE_ORDER[new_grade] > GRADE_ORDER[old_grade]
    reason = (orjson.loads(record["detail_json"]).get("credit_grade") or {}).get("explanation") or f"Credit grade {new_grade}."
    return CreditGradeChanged(
        customer_id=record["customer_id"],
        old_grade=old_grade,
        new_grade=new_grade,
        falling=falling,
        actions=policy.actions,
        review_every_days=policy.review_every_days,
        reason=reason,
        changed_at=now,
    )


JSON_COLUMNS = ("detail", "emitted")


async def _upsert_score_rows(session: AsyncSession, rows: list[dict]) -> None:
    """INSERT ... ON CONFLICT replace, the JSON columns bound as ready-made JSON text (cast to json on PostgreSQL)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    columns = list(rows[0])
    ins = (postgresql.insert if postgres else sqlite.insert)(customer_scores)
    values = {}
    for c in columns:
        if c in JSON_COLUMNS:
            param = bindparam("p_" + c, type_=Text())
            values[c] = cast(param, JSON) if postgres else param
        else:
            values[c] = bindparam("p_" + c, type_=customer_scores.c[c].type)
    stmt = ins.values(values)
    stmt = stmt.on_conflict_do_update(index_elements=["customer_id"], set_={c: stmt.excluded[c] for c in columns if c != "customer_id"})
    params = [{"p_" + k: v for k, v in row.items()} for row in rows]
    for start in range(0, len(params), 2000):
        await session.execute(stmt, params[start : start + 2000])


async def store_scores(
    session: AsyncSession,
    records: Sequence[dict],
    settings: ScoringSettings,
    as_of: dt.datetime,
    *,
    emit: bool = True,
    traces: Mapping[str, str | None] | None = None,
) -> dict[str, int]:
    """Upsert score rows; stage CustomerScored / CustomerTierChanged / ChurnRiskRaised / CreditGradeChanged in the outbox."""
    if not records:
        return dict.fromkeys(ANNOUNCEMENTS, 0)
    ids = [r["customer_id"] for r in records]
    previous = await _previous(session, ids)
    rows, history, envelopes, counts = await _cpu(
        plan_scores, records, previous, settings, as_of, emit, utcnow(), current_correlation_id(), size=len(records)
    )
    await _upsert_score_rows(session, rows)
    if history:
        for start in range(0, len(history), 2000):
            await session.execute(insert(score_history), history[start : start + 2000])
    for start in range(0, len(envelopes), 2000):
        await add_to_outbox(session, envelopes[start : start + 2000], traces=traces)
    return counts
