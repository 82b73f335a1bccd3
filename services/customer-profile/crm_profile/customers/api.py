"""HTTP resources: thin wrappers over `service` and `privacy`. Reads carry an ETag (the version);
PATCH and DELETE need If-Match (missing -> 428, stale -> 412)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy.orm.exc import StaleDataError

from crm_common import audit
from crm_common.deps import ActorDep, RuntimeDep, SessionDep
from crm_common.idempotency import Answer, Idempotent
from crm_common.problems import Problem, ProblemMapping
from crm_profile.customers import privacy, service
from crm_profile.customers.schemas import (
    AddressIn,
    AddressOut,
    AddressPatch,
    ContactIn,
    ContactOut,
    ContactPatch,
    CustomerCreate,
    CustomerOut,
    CustomerPage,
    CustomerPatch,
    EraseOut,
    InteractionIn,
    InteractionOut,
    InteractionPage,
    ListedStatus,
    MergeIn,
    MergeOut,
    ServiceLevelAgreementIn,
    ServiceLevelAgreementOut,
)

router = APIRouter(prefix="/customers", tags=["customers"])
contacts_router = APIRouter(prefix="/contacts", tags=["privacy"])

IfMatch = Annotated[str | None, Header(alias="If-Match", description="ETag from your last read.")]
Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE)]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]
Text = Annotated[str | None, Query(max_length=200)]


class Trail:
    """The audit trail of this request's caller (crm_common.audit): reads queued, so the answer does not wait for the
    audit write; changes appended in their own transaction (the last statement before the commit)."""

    def __init__(self, runtime: RuntimeDep, actor: ActorDep):
        self.runtime, self.actor = runtime, actor

    async def read(
        self, resource: str, model, *, customer_id: str | None, contact_id: str | None = None, action: str = "read", fields=None
    ) -> None:
        await self.runtime.audit.read(
            audit.entry_for(
                self.actor,
                action,
                resource,
                customer_id=customer_id,
                contact_id=contact_id,
                fields=model.model_fields if fields is None else fields,
            )
        )

    async def read_page(self, resource: str, page: CustomerPage) -> None:
        """A list or search: one row per customer on the page (same request id), so the trail of one customer
        (`GET /audit?customer_id=`, indexed) shows who saw its contacts in a list too."""
        for customer in page.items:
            await self.read(resource, CustomerOut, customer_id=customer.id)

    async def changed(self, session, action: str, resource: str, fields, *, customer_id: str | None, contact_id: str | None = None) -> None:
        await audit.append(
            session, [audit.entry_for(self.actor, action, resource, customer_id=customer_id, contact_id=contact_id, fields=fields)]
        )


async def request_trail(runtime: RuntimeDep, actor: ActorDep) -> Trail:
    return Trail(runtime, actor)


AuditTrail = Annotated[Trail, Depends(request_trail)]


def _with_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = service.etag(version)


def _created(body: CustomerOut | ContactOut | AddressOut, customer_id: str, *, location: str | None = None) -> Answer:
    """201 with the new record's ETag (and Location when it has a path of its own); the record belongs to customer_id."""
    headers = {"ETag": service.etag(body.version)} | ({"Location": location} if location else {})
    return Answer(body, 201, headers, subject=customer_id)


# --- customers --------------------------------------------------------------------------------


@router.post("", status_code=201, response_model=CustomerOut)
async def create_customer(data: CustomerCreate, once: Idempotent, trail: AuditTrail):
    async def create(session) -> Answer:
        body = CustomerOut.model_validate(await service.create_customer(session, data))
        await trail.changed(session, "create", "customer", data.model_fields_set, customer_id=body.id)
        return _created(body, body.id, location=f"/customers/{body.id}")

    return await once(data, create)


@router.get("", response_model=CustomerPage)
async def list_customers(
    session: SessionDep,
    trail: AuditTrail,
    status: Annotated[ListedStatus | None, Query()] = None,
    industry: Text = None,
    region: Text = None,
    account_manager: Text = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    limit: Limit = service.DEFAULT_PAGE,
    cursor: Cursor = None,
):
    rows, next_cursor = await service.list_customers(
        session, status=status, industry=industry, region=region, account_manager=account_manager, tag=tag, limit=limit, cursor=cursor
    )
    page = CustomerPage(items=[CustomerOut.model_validate(r) for r in rows], next_cursor=next_cursor)
    await trail.read_page("customer-list", page)
    return page


@router.get("/search", response_model=CustomerPage)
async def search_customers(
    session: SessionDep,
    trail: AuditTrail,
    q: Text = None,
    name: Text = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    tax_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Limit = service.DEFAULT_PAGE,
    cursor: Cursor = None,
):
    rows, next_cursor = await service.search_customers(
        session, q=q, name=name, phone=phone, email=email, tax_id=tax_id, limit=limit, cursor=cursor
    )
    page = CustomerPage(items=[CustomerOut.model_validate(r) for r in rows], next_cursor=next_cursor)
    await trail.read_page("customer-search", page)
    return page


@router.get("/{customer_id}", response_model=CustomerOut)
async def get_customer(customer_id: str, session: SessionDep, trail: AuditTrail, response: Response):
    body = CustomerOut.model_validate(await service.get_customer(session, customer_id))
    await trail.read("customer", CustomerOut, customer_id=customer_id)
    _with_etag(response, body.version)
    return body


@router.patch("/{customer_id}", response_model=CustomerOut)
async def patch_customer(
    customer_id: str, patch: CustomerPatch, runtime: RuntimeDep, trail: AuditTrail, response: Response, if_match: IfMatch = None
):
    async with runtime.transaction() as session:
        body = CustomerOut.model_validate(await service.update_customer(session, customer_id, patch, if_match))
        await trail.changed(session, "update", "customer", patch.model_fields_set, customer_id=customer_id)
    _with_etag(response, body.version)
    return body


def _agreement(customer) -> ServiceLevelAgreementOut:
    return ServiceLevelAgreementOut(
        customer_id=customer.id, targets=customer.service_level_agreement or {}, version=customer.version, updated_at=customer.updated_at
    )


@router.get("/{customer_id}/service-level-agreement", response_model=ServiceLevelAgreementOut)
async def get_service_level_agreement(customer_id: str, session: SessionDep, response: Response):
    """The service-level targets agreed with this customer where they differ from its tier's defaults."""
    body = _agreement(await service.get_customer(session, customer_id))
    _with_etag(response, body.version)
    return body


@router.put("/{customer_id}/service-level-agreement", response_model=ServiceLevelAgreementOut)
async def put_service_level_agreement(
    customer_id: str, data: ServiceLevelAgreementIn, runtime: RuntimeDep, trail: AuditTrail, response: Response, if_match: IfMatch = None
):
    """Replace the agreed targets (If-Match: the customer's ETag). Scoring judges the last closed month against them."""
    async with runtime.transaction() as session:
        body = _agreement(await service.set_service_level_agreement(session, customer_id, data.targets, if_match))
        await trail.changed(session, "update", "customer", ["service_level_agreement"], customer_id=customer_id)
    _with_etag(response, body.version)
    return body


@router.post("/{survivor_id}/merge", response_model=MergeOut)
async def merge_customers(survivor_id: str, data: MergeIn, once: Idempotent, trail: AuditTrail, if_match: IfMatch = None):
    """Fold `merged_id` into this customer. If-Match (the survivor's ETag) is checked when sent."""

    async def merge(session) -> Answer:
        result = await service.merge_customers(session, survivor_id, data.merged_id, if_match)
        await trail.changed(session, "update", "customer-merge", ["contacts", "addresses", "interactions"], customer_id=survivor_id)
        await trail.changed(session, "delete", "customer-merge", ["merged_into"], customer_id=data.merged_id)
        body = MergeOut(**(result | {"survivor": CustomerOut.model_validate(result["survivor"])}))
        return Answer(body, 200, {"ETag": service.etag(body.survivor.version)}, subject=survivor_id)

    return await once(data, merge)


# --- contacts ---------------------------------------------------------------------------------


@router.get("/{customer_id}/contacts", response_model=list[ContactOut])
async def list_contacts(customer_id: str, session: SessionDep, trail: AuditTrail):
    customer = await service.get_customer(session, customer_id)
    contacts = [ContactOut.model_validate(c) for c in customer.contacts]
    await trail.read("contacts", ContactOut, customer_id=customer_id)
    return contacts


@router.post("/{customer_id}/contacts", status_code=201, response_model=ContactOut)
async def add_contact(customer_id: str, data: ContactIn, once: Idempotent, trail: AuditTrail):
    async def create(session) -> Answer:
        body = ContactOut.model_validate(await service.add_contact(session, customer_id, data))
        await trail.changed(session, "create", "contact", data.model_fields_set, customer_id=customer_id, contact_id=body.id)
        return _created(body, customer_id, location=f"/customers/{customer_id}/contacts/{body.id}")

    return await once(data, create)


@router.get("/{customer_id}/contacts/{contact_id}", response_model=ContactOut)
async def get_contact(customer_id: str, contact_id: str, session: SessionDep, trail: AuditTrail, response: Response):
    await service.get_customer(session, customer_id)
    body = ContactOut.model_validate(await service.get_contact(session, contact_id, customer_id))
    await trail.read("contact", ContactOut, customer_id=customer_id, contact_id=contact_id)
    _with_etag(response, body.version)
    return body


@router.patch("/{customer_id}/contacts/{contact_id}", response_model=ContactOut)
async def patch_contact(
    customer_id: str,
    contact_id: str,
    patch: ContactPatch,
    runtime: RuntimeDep,
    trail: AuditTrail,
    response: Response,
    if_match: IfMatch = None,
):
    async with runtime.transaction() as session:
        body = ContactOut.model_validate(await service.update_contact(session, customer_id, contact_id, patch, if_match))
        await trail.changed(session, "update", "contact", patch.model_fields_set, customer_id=customer_id, contact_id=contact_id)
    _with_etag(response, body.version)
    return body


@router.delete("/{customer_id}/contacts/{contact_id}", status_code=204)
async def delete_contact(customer_id: str, contact_id: str, runtime: RuntimeDep, trail: AuditTrail, if_match: IfMatch = None):
    async with runtime.transaction() as session:
        await service.delete_contact(session, customer_id, contact_id, if_match)
        await trail.changed(session, "delete", "contact", [], customer_id=customer_id, contact_id=contact_id)
    return Response(status_code=204)


# --- addresses --------------------------------------------------------------------------------


@router.get("/{customer_id}/addresses", response_model=list[AddressOut])
async def list_addresses(customer_id: str, session: SessionDep, trail: AuditTrail):
    customer = await service.get_customer(session, customer_id)
    addresses = [AddressOut.model_validate(a) for a in customer.addresses]
    await trail.read("addresses", AddressOut, customer_id=customer_id)
    return addresses


@router.post("/{customer_id}/addresses", status_code=201, response_model=AddressOut)
async def add_address(customer_id: str, data: AddressIn, once: Idempotent, trail: AuditTrail):
    async def create(session) -> Answer:
        body = AddressOut.model_validate(await service.add_address(session, customer_id, data))
        await trail.changed(session, "create", "address", data.model_fields_set, customer_id=customer_id)
        return _created(body, customer_id, location=f"/customers/{customer_id}/addresses/{body.id}")

    return await once(data, create)


@router.get("/{customer_id}/addresses/{address_id}", response_model=AddressOut)
async def get_address(customer_id: str, address_id: str, session: SessionDep, trail: AuditTrail, response: Response):
    body = AddressOut.model_validate(await service.get_address(session, customer_id, address_id))
    await trail.read("address", AddressOut, customer_id=customer_id)
    _with_etag(response, body.version)
    return body


@router.patch("/{customer_id}/addresses/{address_id}", response_model=AddressOut)
async def patch_address(
    customer_id: str,
    address_id: str,
    patch: AddressPatch,
    runtime: RuntimeDep,
    trail: AuditTrail,
    response: Response,
    if_match: IfMatch = None,
):
    async with runtime.transaction() as session:
        body = AddressOut.model_validate(await service.update_address(session, customer_id, address_id, patch, if_match))
        await trail.changed(session, "update", "address", patch.model_fields_set, customer_id=customer_id)
    _with_etag(response, body.version)
    return body


@router.delete("/{customer_id}/addresses/{address_id}", status_code=204)
async def delete_address(customer_id: str, address_id: str, runtime: RuntimeDep, trail: AuditTrail, if_match: IfMatch = None):
    async with runtime.transaction() as session:
        await service.delete_address(session, customer_id, address_id, if_match)
        await trail.changed(session, "delete", "address", [], customer_id=customer_id)
    return Response(status_code=204)


# --- interactions -----------------------------------------------------------------------------


@router.get("/{customer_id}/interactions", response_model=InteractionPage)
async def list_interactions(
    customer_id: str, session: SessionDep, trail: AuditTrail, limit: Limit = service.DEFAULT_PAGE, cursor: Cursor = None
):
    rows, next_cursor = await service.list_interactions(session, customer_id, limit=limit, cursor=cursor)
    page = InteractionPage(items=[InteractionOut.model_validate(r) for r in rows], next_cursor=next_cursor)
    await trail.read("interactions", InteractionOut, customer_id=customer_id)
    return page


@router.post("/{customer_id}/interactions", status_code=201, response_model=InteractionOut)
async def add_interaction(customer_id: str, data: InteractionIn, once: Idempotent, trail: AuditTrail):
    async def create(session) -> Answer:
        body = InteractionOut.model_validate(await service.add_interaction(session, customer_id, data))
        await trail.changed(session, "create", "interaction", data.model_fields_set, customer_id=customer_id)
        return Answer(body, 201, subject=customer_id)

    return await once(data, create)


# --- privacy ----------------------------------------------------------------------------------


@contacts_router.get("/{contact_id}/export")
async def export_contact(contact_id: str, session: SessionDep, trail: AuditTrail):
    """Everything held on this person, as JSON."""
    data = await privacy.export_contact(session, contact_id)
    await trail.read(
        "contact-export",
        None,
        action="export",
        customer_id=data["customer"]["id"],
        contact_id=contact_id,
        fields=[name for name in data if name != "exported_at"],
    )
    return data


@contacts_router.post("/{contact_id}/erase", response_model=EraseOut)
async def erase_contact(contact_id: str, runtime: RuntimeDep, trail: AuditTrail, if_match: IfMatch = None):
    """Replace the person's data by a tombstone everywhere in this service and emit CustomerErased.
    If-Match (the contact's ETag) is checked when sent."""
    async with runtime.transaction() as session:
        erased = EraseOut(**await privacy.erase_contact(session, contact_id, if_match))
        await trail.changed(session, "erase", "contact", ContactOut.model_fields, customer_id=erased.customer_id, contact_id=contact_id)
        await audit.pseudonymise_contact(session, contact_id)  # the person's rows stay, without the contact id
    return erased


def _validation(exc: service.InvalidField) -> Problem:
    return Problem(
        422, "Validation failed", exc.msg, type_="urn:crm:problem:validation", errors=[{"loc": exc.loc, "msg": exc.msg, "type": exc.type}]
    )


def _stale(exc: service.PreconditionFailed) -> Problem:
    return Problem(
        412, "Precondition failed", str(exc), headers={"ETag": service.etag(exc.current_version)}, current_version=exc.current_version
    )


PROBLEMS: ProblemMapping = {
    service.InvalidField: _validation,
    service.NotFound: lambda exc: Problem(404, f"{exc.kind} not found", str(exc)),
    service.PreconditionRequired: lambda exc: Problem(428, "Precondition required", str(exc)),
    service.PreconditionFailed: _stale,
    # a concurrent writer won between our read and write
    StaleDataError: lambda exc: Problem(412, "Precondition failed", "The record changed while your update was applied; read it again."),
    service.DuplicateCustomer: lambda exc: Problem(
        409,
        "Duplicate customer",
        str(exc),
        type_="urn:crm:problem:duplicate-customer",
        existing_customer_id=exc.existing_id,
        matched_on=exc.field,
    ),
    service.DuplicateContact: lambda exc: Problem(
        409, "Duplicate contact", str(exc), existing_contact_id=exc.contact_id, existing_customer_id=exc.customer_id, matched_on=exc.field
    ),
    service.ContactErased: lambda exc: Problem(409, "Contact erased", str(exc)),
    service.CustomerMerged: lambda exc: Problem(
        409, "Customer merged", str(exc), type_="urn:crm:problem:customer-merged", merged_into=exc.merged_into
    ),
    service.AlreadyMerged: lambda exc: Problem(409, "Already merged", str(exc), merged_into=exc.merged_into),
}
"""What the customer master's refusals answer (installed by create_service_app)."""
