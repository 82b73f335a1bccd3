"""HTTP resources of complaints. Routes stay thin: the actor, sessions and settings come from crm_complaints.deps, the
work from the use-case modules (intake, lifecycle, clocks, lookup), and their domain exceptions become problem
details in crm_complaints.problems."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select

from crm_common import audit
from crm_common.db import RowReader
from crm_common.idempotency import Answer, Idempotent, IdempotentRequest
from crm_complaints.complaints import intake, lifecycle, reports
from crm_complaints.complaints import lookup as finding
from crm_complaints.complaints.access import Actor, require_staff
from crm_complaints.complaints.clocks import clocks_of, clocks_of_many
from crm_complaints.complaints.errors import ComplaintNotFound
from crm_complaints.complaints.models import Complaint
from crm_complaints.complaints.schemas import (
    AssignIn,
    ClockOut,
    ComplaintCreate,
    ComplaintOut,
    CustomerComplaintOut,
    CustomerTimelineEntryOut,
    MergeIn,
    MessageIn,
    ReasonIn,
    Reporter,
    ResolveIn,
    StatusIn,
    SurveyIn,
    TimelineEntryOut,
)
from crm_complaints.complaints.states import CUSTOMER_STATUS, OPEN_STATES, customer_status
from crm_complaints.complaints.timeline import timeline as timeline_of
from crm_complaints.deps import ActorDep, AuditDep, DatabaseDep, SessionDep, SettingsDep, no_nul

router = APIRouter(tags=["complaints"])
View = Literal["agent", "customer"]


async def complaint_out(
    session, complaint: Complaint, *, refs: tuple[list[str], list[str]] | None = None, clocks: list | None = None
) -> ComplaintOut:
    """refs and clocks may be preloaded for a whole page (lookup.references_of / clocks_of_many): no query per complaint."""
    orders, tracking = refs if refs is not None else await finding.references(session, complaint.id)
    if clocks is None:
        clocks = await clocks_of(session, complaint.id)
    return ComplaintOut(
        id=complaint.id,
        number=complaint.number,
        customer_id=complaint.customer_id,
        category=complaint.category,
        priority=complaint.priority,
        channel=complaint.channel,
        status=complaint.status,
        status_text=dict(CUSTOMER_STATUS[complaint.status]),
        team_id=complaint.team_id,
        agent_id=complaint.agent_id,
        description=complaint.description,
        description_key=complaint.description_key,
        description_params=complaint.description_params,
        desired_outcome=complaint.desired_outcome,
        claimed_amount=complaint.claimed_amount,
        attachments=complaint.attachments or [],
        reporter=Reporter(name=complaint.reporter_name, phone=complaint.reporter_phone, email=complaint.reporter_email),
        language=complaint.language,
        order_ids=orders,
        tracking_numbers=tracking,
        duplicate_of=complaint.duplicate_of,
        merged_into=complaint.merged_into,
        filed_at=complaint.filed_at,
        first_response_at=complaint.first_response_at,
        resolved_at=complaint.resolved_at,
        closed_at=complaint.closed_at,
        outcome=complaint.outcome,
        compensation_amount=complaint.compensation_amount,
        reopen_count=complaint.reopen_count,
        survey_score=complaint.survey_score,
        clocks=[
            ClockOut(
                kind=c.kind,
                target_minutes=c.target_minutes,
                deadline_at=c.deadline_at,
                stopped_at=c.stopped_at,
                paused=c.paused,
                escalation_level=c.escalation_level,
                breached_at=c.breached_at,
            )
            for c in clocks
        ],
    )


async def customer_out(
    session, complaint: Complaint, language: str | None = None, *, refs: tuple[list[str], list[str]] | None = None
) -> CustomerComplaintOut:
    orders, tracking = refs if refs is not None else await finding.references(session, complaint.id)
    return CustomerComplaintOut(
        id=complaint.id,
        number=complaint.number,
        category=complaint.category,
        status=complaint.status,
        status_text=customer_status(complaint.status, language or complaint.language),
        filed_at=complaint.filed_at,
        resolved_at=complaint.resolved_at,
        outcome=complaint.outcome,
        compensation_amount=complaint.compensation_amount,
        order_ids=orders,
        tracking_numbers=tracking,
    )


def _customer_view(actor: Actor | None, view: str) -> bool:
    return view == "customer" or (actor is not None and actor.role == "customer")


def _check_owner(actor: Actor | None, complaint: Complaint) -> None:
    _check_owner_of(actor, complaint.id, complaint.customer_id)


def _check_owner_of(actor: Actor | None, complaint_id: str, customer_id: str) -> None:
    """A customer sees only its own complaints: another's is 'not found', not 'forbidden'."""
    if actor is not None and actor.role == "customer" and actor.id != customer_id:
        raise ComplaintNotFound(complaint_id)


async def _audited_read(request: Request, trail, complaints: list[tuple[str, str | None]]) -> None:
    """Queue a read record per (customer, reporter contact) shown with reporter details; the answer does not wait."""
    for customer_id, contact_id in dict.fromkeys(complaints):
        await trail.read(
            audit.entry_for(
                request.headers, "read", "complaint", customer_id=customer_id, contact_id=contact_id, fields=ComplaintOut.model_fields
            )
        )


async def _audited_change(session, request: Request, action: str, data: BaseModel, complaint: Complaint) -> None:
    """A change to a complaint, audited in its transaction (crm_common.audit)."""
    await audit.append(
        session,
        [
            audit.entry_for(
                request.headers,
                action,
                "complaint",
                customer_id=complaint.customer_id,
                contact_id=complaint.contact_id,
                fields=data.model_fields_set,
            )
        ],
    )


@router.post("/complaints", status_code=201, response_model=ComplaintOut)
async def file_complaint(data: ComplaintCreate, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    async def file(session) -> Answer:
        filed = await intake.file(session, data, settings=settings, actor=actor)
        complaint = filed.complaint
        await _audited_change(session, request, "create", data, complaint)
        # shown from what the filing wrote: reading its references and clocks back cost two statements per filing
        if _view_for(actor) is customer_out:
            shown: BaseModel = await customer_out(session, complaint, refs=filed.references)
        else:
            shown = await complaint_out(session, complaint, refs=filed.references, clocks=filed.clocks)
        return Answer(shown, 201, {"Location": f"/complaints/{complaint.id}"}, subject=complaint.customer_id)

    return await once(data, file)


@router.get("/complaints", response_model=list[ComplaintOut])
async def list_complaints(
    actor: ActorDep,
    session: SessionDep,
    status: str | None = None,
    team_id: str | None = None,
    agent_id: str | None = None,
    open_only: bool = False,
    limit: int = Query(default=50, ge=1, le=500),
):
    require_staff(actor, "Listing complaints")
    no_nul(status=status, team_id=team_id, agent_id=agent_id)
    query = select(Complaint)
    if status:
        query = query.where(Complaint.status == status)
    if open_only:
        query = query.where(Complaint.status.in_(OPEN_STATES))
    if team_id:
        query = query.where(Complaint.team_id == team_id)
    if agent_id:
        query = query.where(Complaint.agent_id == agent_id)
    rows = (await session.scalars(query.order_by(Complaint.priority, Complaint.filed_at).limit(limit))).all()
    ids = [c.id for c in rows]
    refs = await finding.references_of(session, ids)
    page_clocks = await clocks_of_many(session, ids)
    return [await complaint_out(session, c, refs=refs[c.id], clocks=page_clocks[c.id]) for c in rows]


class LookupResult(BaseModel):
    complaint: dict
    timeline: list[TimelineEntryOut | CustomerTimelineEntryOut]


# ---- the status lookup (call-center hot path) -----------------------------------------------------
# Rows are turned straight into the JSON the response models describe (ComplaintOut, CustomerComplaintOut,
# TimelineEntryOut, CustomerTimelineEntryOut; test_lookup_page.py holds them equal) and encoded once with orjson:
# our own rows need no validation, and the page is not validated a second time against LookupResult.
LOOKUP_JSON = orjson.OPT_UTC_Z  # datetimes as pydantic writes them: ...Z


def _decimal_as_text(value):
    if isinstance(value, Decimal):  # pydantic's JSON form of a Decimal: its str()
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def complaint_json(row: Mapping, refs: tuple[list[str], list[str]], clocks: list) -> dict:
    """ComplaintOut(...).model_dump(mode="json") of a lookup row, without building the model."""
    orders, tracking = refs
    return {
        "id": row["id"],
        "number": row["number"],
        "customer_id": row["customer_id"],
        "category": row["category"],
        "priority": row["priority"],
        "channel": row["channel"],
        "status": row["status"],
        "status_text": dict(CUSTOMER_STATUS[row["status"]]),
        "team_id": row["team_id"],
        "agent_id": row["agent_id"],
        "description": row["description"],
        "description_key": row["description_key"],
        "description_params": row["description_params"],
        "desired_outcome": row["desired_outcome"],
        "claimed_amount": row["claimed_amount"],
        "attachments": row["attachments"] or [],
        "reporter": {"name": row["reporter_name"], "phone": row["reporter_phone"], "email": row["reporter_email"]},
        "language": row["language"],
        "order_ids": orders,
        "tracking_numbers": tracking,
        "duplicate_of": row["duplicate_of"],
        "merged_into": row["merged_into"],
        "filed_at": row["filed_at"],
        "first_response_at": row["first_response_at"],
        "resolved_at": row["resolved_at"],
        "closed_at": row["closed_at"],
        "outcome": row["outcome"],
        "compensation_amount": row["compensation_amount"],
        "reopen_count": row["reopen_count"],
        "survey_score": row["survey_score"],
        "clocks": [
            {
                "kind": c.kind,
                "target_minutes": c.target_minutes,
                "deadline_at": c.deadline_at,
                "stopped_at": c.stopped_at,
                "paused": c.paused,
                "escalation_level": c.escalation_level,
                "breached_at": c.breached_at,
            }
            for c in clocks
        ],
    }


def customer_complaint_json(row: Mapping, refs: tuple[list[str], list[str]]) -> dict:
    """CustomerComplaintOut(...).model_dump(mode="json") of a lookup row (status text in the complaint's language)."""
    orders, tracking = refs
    return {
        "id": row["id"],
        "number": row["number"],
        "category": row["category"],
        "status": row["status"],
        "status_text": customer_status(row["status"], row["language"]),
        "filed_at": row["filed_at"],
        "resolved_at": row["resolved_at"],
        "outcome": row["outcome"],
        "compensation_amount": row["compensation_amount"],
        "order_ids": orders,
        "tracking_numbers": tracking,
    }


def timeline_json(entry, customer_view: bool) -> dict:
    """_entry(entry, customer_view) without building the model."""
    message = {"message_key": entry.message_key, "message_params": entry.message_params}
    if customer_view:
        return {"at": entry.at, "kind": entry.kind, "body": entry.body, **message}
    return {
        "at": entry.at,
        "kind": entry.kind,
        "visibility": entry.visibility,
        "actor_id": entry.actor_id,
        "body": entry.body,
        "data": entry.data or {},
        **message,
    }


async def lookup_page(
    reader: RowReader,
    actor: Actor | None,
    *,
    number: str | None = None,
    customer_id: str | None = None,
    phone: str | None = None,
    tracking_number: str | None = None,
    view: str = "agent",
    limit: int = 20,
    shown: list | None = None,
) -> list[dict]:
    """The lookup's answer: each complaint found (the customer view for customers) with its timeline. A customer
    finds only its own complaints (the key is replaced by its id, and every row is checked). `shown` receives the
    (customer id, reporter contact id) of each complaint found (the audit trail's subjects)."""
    no_nul(number=number, customer_id=customer_id, phone=phone, tracking_number=tracking_number)
    customer_view = _customer_view(actor, view)
    if actor is not None and actor.role == "customer":
        customer_id = actor.id
    found = await finding.lookup(reader, number=number, customer_id=customer_id, phone=phone, tracking_number=tracking_number, limit=limit)
    for row in found:
        _check_owner_of(actor, row["id"], row["customer_id"])
    if shown is not None:
        shown.extend((row["customer_id"], row["contact_id"]) for row in found)
    # references, clocks and timeline of the whole page in one statement, not per complaint
    refs, page_clocks, entries = await finding.page_details(
        reader, [c["id"] for c in found], customer_view=customer_view, with_clocks=not customer_view
    )
    return [
        {
            "complaint": customer_complaint_json(c, refs[c["id"]])
            if customer_view
            else complaint_json(c, refs[c["id"]], page_clocks[c["id"]]),
            "timeline": [timeline_json(e, customer_view) for e in entries[c["id"]]],
        }
        for c in found
    ]


def json_response(content) -> Response:
    return Response(orjson.dumps(content, default=_decimal_as_text, option=LOOKUP_JSON), media_type="application/json")


@router.get("/complaints/lookup", response_model=list[LookupResult])
async def lookup(
    request: Request,
    actor: ActorDep,
    db: DatabaseDep,
    trail: AuditDep,
    number: str | None = None,
    customer_id: str | None = None,
    phone: str | None = None,
    tracking_number: str | None = None,
    view: View = "agent",
    limit: int = Query(default=20, ge=1, le=200),
):
    """Call-center status query by complaint number, customer, phone or tracking number, each with its timeline."""
    shown: list[tuple[str, str | None]] = []
    page = await db.read(
        lambda reader: lookup_page(
            reader,
            actor,
            number=number,
            customer_id=customer_id,
            phone=phone,
            tracking_number=tracking_number,
            view=view,
            limit=limit,
            shown=shown,
        )
    )
    if not _customer_view(actor, view):
        await _audited_read(request, trail, shown)
    return json_response(page)


def _entry(entry, customer_view: bool) -> dict:
    message = {"message_key": entry.message_key, "message_params": entry.message_params}
    if customer_view:
        return CustomerTimelineEntryOut(at=entry.at, kind=entry.kind, body=entry.body, **message).model_dump(mode="json")
    return TimelineEntryOut(
        at=entry.at,
        kind=entry.kind,
        visibility=entry.visibility,
        actor_id=entry.actor_id,
        body=entry.body,
        data=entry.data or {},
        **message,
    ).model_dump(mode="json")


@router.get("/complaints/{complaint_id}")
async def get_complaint(
    complaint_id: str,
    request: Request,
    actor: ActorDep,
    session: SessionDep,
    trail: AuditDep,
    view: View = "agent",
    lang: str | None = None,
):
    complaint = await finding.get_complaint(session, complaint_id)
    _check_owner(actor, complaint)
    if _customer_view(actor, view):
        return (await customer_out(session, complaint, lang)).model_dump(mode="json")
    shown = (await complaint_out(session, complaint)).model_dump(mode="json")
    await _audited_read(request, trail, [(complaint.customer_id, complaint.contact_id)])
    return shown


# the schema is documented, not re-validated: _entry builds each entry through its model already
@router.get("/complaints/{complaint_id}/timeline", responses={200: {"model": list[TimelineEntryOut | CustomerTimelineEntryOut]}})
async def get_timeline(complaint_id: str, actor: ActorDep, session: SessionDep, view: View = "agent"):
    customer_view = _customer_view(actor, view)
    complaint = await finding.get_complaint(session, complaint_id)
    _check_owner(actor, complaint)
    return [_entry(e, customer_view) for e in await timeline_of(session, complaint_id, customer_view=customer_view)]


def _view_for(actor: Actor | None):
    """A customer acting on their complaint is answered in the customer view (no team, agent or clocks)."""
    return customer_out if actor is not None and actor.role == "customer" else complaint_out


async def _act(request: Request, once: IdempotentRequest, data: BaseModel, action, *, view=complaint_out) -> Response:
    """`action(session)` on a complaint in one transaction; the answer is the complaint as `view` shows it."""

    async def act(session) -> Answer:
        complaint = await action(session)
        await _audited_change(session, request, "update", data, complaint)
        return Answer(await view(session, complaint), subject=complaint.customer_id)

    return await once(data, act)


@router.post("/complaints/{complaint_id}/assign")
async def assign(complaint_id: str, data: AssignIn, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    return await _act(
        request,
        once,
        data,
        lambda s: lifecycle.assign(
            s, complaint_id, team_id=data.team_id, agent_id=data.agent_id, reason=data.reason, actor=actor, settings=settings
        ),
    )


@router.post("/complaints/{complaint_id}/replies")
async def reply(complaint_id: str, data: MessageIn, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    return await _act(request, once, data, lambda s: lifecycle.reply(s, complaint_id, data.body, actor=actor, settings=settings))


@router.post("/complaints/{complaint_id}/customer-messages")
async def customer_message(complaint_id: str, data: MessageIn, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    """Information from the customer (role customer, or staff recording a call); resumes a complaint waiting on the customer."""
    return await _act(
        request,
        once,
        data,
        lambda s: lifecycle.customer_message(s, complaint_id, data.body, actor=actor, settings=settings),
        view=_view_for(actor),
    )


@router.post("/complaints/{complaint_id}/notes")
async def note(complaint_id: str, data: MessageIn, request: Request, once: Idempotent, actor: ActorDep):
    return await _act(request, once, data, lambda s: lifecycle.note(s, complaint_id, data.body, actor=actor))


@router.post("/complaints/{complaint_id}/status")
async def change_status(complaint_id: str, data: StatusIn, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    return await _act(
        request,
        once,
        data,
        lambda s: lifecycle.change_status(s, complaint_id, data.status, reason=data.reason, actor=actor, settings=settings),
    )


@router.post("/complaints/{complaint_id}/resolve")
async def resolve(complaint_id: str, data: ResolveIn, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    return await _act(
        request,
        once,
        data,
        lambda s: lifecycle.resolve(
            s,
            complaint_id,
            outcome=data.outcome,
            compensation_amount=data.compensation_amount,
            message=data.message,
            actor=actor,
            settings=settings,
        ),
    )


@router.post("/complaints/{complaint_id}/reopen")
async def reopen(complaint_id: str, data: ReasonIn, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    customer_id = actor.id if actor is not None and actor.role == "customer" else None
    return await _act(
        request,
        once,
        data,
        lambda s: lifecycle.reopen(s, complaint_id, reason=data.reason, actor=actor, settings=settings, customer_id=customer_id),
        view=_view_for(actor),
    )


@router.post("/complaints/{complaint_id}/close")
async def close(complaint_id: str, data: ReasonIn, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    return await _act(request, once, data, lambda s: lifecycle.close(s, complaint_id, actor=actor, settings=settings, reason=data.reason))


@router.post("/complaints/{complaint_id}/merge")
async def merge(complaint_id: str, data: MergeIn, request: Request, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    """Merge this complaint (a duplicate) into `into`; returns the surviving complaint."""
    return await _act(
        request, once, data, lambda s: lifecycle.merge(s, complaint_id, data.into, reason=data.reason, actor=actor, settings=settings)
    )


@router.post("/complaints/{complaint_id}/survey")
async def survey(complaint_id: str, data: SurveyIn, once: Idempotent, actor: ActorDep, settings: SettingsDep):
    async def answer(session) -> Answer:
        complaint = await lifecycle.answer_survey(
            session, complaint_id, score=data.score, comment=data.comment, token=data.token, actor=actor, settings=settings
        )
        return Answer(
            {"complaint_id": complaint.id, "score": complaint.survey_score, "answered_at": complaint.survey_answered_at.isoformat()},
            subject=complaint.customer_id,
        )

    return await once(data, answer)


@router.get("/reports/complaints")
async def complaint_report(
    actor: ActorDep,
    session: SessionDep,
    date_from: dt.date | None = Query(default=None, alias="from"),
    date_to: dt.date | None = Query(default=None, alias="to"),
    period: Literal["day", "week", "month"] = "month",
):
    require_staff(actor, "Reports")
    return await reports.complaint_report(session, date_from=date_from, date_to=date_to, period=period)
