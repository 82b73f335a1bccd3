"""Business rules of the customer master. Plain async functions over a session; the caller owns the
transaction (`async with runtime.transaction() as session`), so state and outbox rows commit together.
A refusal is one of the domain exceptions below; the API maps them to problem details (customers.api.PROBLEMS)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable

import orjson
from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.contacts import try_normalize_phone
from crm_common.db import utcnow
from crm_common.events.service_levels import MEASURES
from crm_common.outbox import emit
from crm_profile import SERVICE_NAME
from crm_profile.accounts import winback
from crm_profile.customers import publish
from crm_profile.customers.models import MERGED, Address, Contact, Customer, CustomerTag, Interaction
from crm_profile.customers.normalize import escape_like, has_control_characters, is_id, normalize_tax_id
from crm_profile.customers.schemas import (
    AddressIn,
    AddressPatch,
    ContactIn,
    ContactPatch,
    CustomerCreate,
    CustomerPatch,
    InteractionIn,
)

DEFAULT_PAGE = 50
MAX_PAGE = 200

# customer fields a PATCH may change (tags are handled apart: they live in their own table)
CUSTOMER_SCALARS = (
    "name", "short_name", "customer_type", "industry", "size_band", "region", "registered_address", "tax_id",
    "status", "account_manager", "source_channel", "first_order_date", "contract_number", "contract_start",
    "contract_end", "service_types", "credit_limit", "payment_days", "share_of_wallet", "potential_volume", "relationship_level",
)  # fmt: skip
CONTACT_FIELDS = (
    "name", "role", "phone", "email", "preferred_channel", "language", "timezone", "quiet_hours_start",
    "quiet_hours_end", "marketing_consent", "marketing_consent_at", "marketing_consent_source",
)  # fmt: skip
ADDRESS_FIELDS = (
    "kind", "label", "line1", "line2", "district", "city", "province", "postal_code", "country", "latitude", "longitude",
)  # fmt: skip


def new_id() -> str:
    return str(uuid.uuid4())


async def _emit(session: AsyncSession, payload, key: str) -> None:
    await emit(session, payload, key=key, producer=SERVICE_NAME)


class CustomerRefused(Exception):
    """A request the customer master refuses; each subclass is one answer (customers.api.PROBLEMS)."""


class InvalidField(CustomerRefused, ValueError):
    def __init__(self, loc: list[str], msg: str, type_: str = "value_error"):
        super().__init__(msg)
        self.loc, self.msg, self.type = loc, msg, type_


def field_error(loc: list[str], msg: str, type_: str = "value_error") -> InvalidField:
    return InvalidField(loc, msg, type_)


class NotFound(CustomerRefused, LookupError):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind  # Customer, Contact, Address


class PreconditionRequired(CustomerRefused):
    pass


class PreconditionFailed(CustomerRefused):
    def __init__(self, detail: str, current_version: int):
        super().__init__(detail)
        self.current_version = current_version


class DuplicateCustomer(CustomerRefused):
    def __init__(self, existing_id: str, field: str):
        super().__init__(f"A customer with this {field.replace('_', ' ')} already exists: {existing_id}.")
        self.existing_id, self.field = existing_id, field


class DuplicateContact(CustomerRefused):
    def __init__(self, contact: Contact, customer_id: str, field: str):
        super().__init__(f"This customer already has a contact with this {field}.")
        self.contact_id, self.customer_id, self.field = contact.id, customer_id, field


class ContactErased(CustomerRefused):
    pass


class CustomerMerged(CustomerRefused):
    def __init__(self, customer_id: str, merged_into: str):
        super().__init__(f"Customer {customer_id} was merged into {merged_into}; change the survivor instead.")
        self.merged_into = merged_into


class AlreadyMerged(CustomerRefused):
    def __init__(self, merged_id: str, merged_into: str):
        super().__init__(f"Customer {merged_id} was already merged into {merged_into}.")
        self.merged_into = merged_into


# --- optimistic concurrency -------------------------------------------------------------------


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int, *, what: str = "customer") -> None:
    """428 without If-Match, 412 when none of the given ETags is the current version (`*` matches any)."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired(f"Send If-Match with the ETag of your last read of the {what}.")
    if if_match.strip() == "*":
        return
    for tag in if_match.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tag = tag.strip('"')
        if tag.isdigit() and int(tag) == current_version:
            return
    raise PreconditionFailed(
        f"The {what} has changed since you read it (current ETag {etag(current_version)}); read it again.", current_version
    )


# --- duplicates -------------------------------------------------------------------------------


async def find_duplicate(
    session: AsyncSession,
    *,
    tax_id: str | None = None,
    phones: Iterable[str] = (),
    emails: Iterable[str] = (),
    exclude_customer_id: str | None = None,
) -> tuple[str, str, str] | None:
    """(existing customer id, field, value) of a live customer holding this tax id, phone or email."""
    live = Customer.merged_into.is_(None)
    if tax_id:
        query = select(Customer.id).where(Customer.tax_id == tax_id, live)
        if exclude_customer_id:
            query = query.where(Customer.id != exclude_customer_id)
        found = await session.scalar(query.limit(1))
        if found:
            return found, "tax_id", tax_id
    for field, values in (("phone", [p for p in phones if p]), ("email", [e for e in emails if e])):
        if not values:
            continue
        column = Contact.phone if field == "phone" else Contact.email
        query = (
            select(Contact.customer_id, column)
            .join(Customer, Customer.id == Contact.customer_id)
            .where(column.in_(values), Contact.erased_at.is_(None), live)
        )
        if exclude_customer_id:
            query = query.where(Contact.customer_id != exclude_customer_id)
        row = (await session.execute(query.limit(1))).first()
        if row:
            return row[0], field, row[1]
    return None


async def claim_identities(
    session: AsyncSession, *, tax_id: str | None = None, phones: Iterable[str | None] = (), emails: Iterable[str | None] = ()
) -> None:
    """Serialise writers that claim the same tax id, phone or email until this transaction ends, so two
    concurrent creates cannot both pass the duplicate check. PostgreSQL: transaction-scoped advisory locks
    per identity; SQLite: take the database write lock now instead of at the first insert."""
    keys = {f"phone:{p}" for p in phones if p} | {f"email:{e}" for e in emails if e}
    if tax_id:
        keys.add(f"tax:{tax_id}")
    keys = sorted(keys)
    if not keys:
        return
    if session.bind.dialect.name == "postgresql":
        for key in keys:
            lock_id = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
            await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
    else:
        await session.execute(text("UPDATE customers SET version = version WHERE 1 = 0"))


def duplicate_problem(existing_id: str, field: str, value: str) -> DuplicateCustomer:
    return DuplicateCustomer(existing_id, field)


def _contact_from(data: ContactIn, now: dt.datetime) -> Contact:
    contact = Contact(id=new_id(), created_at=now, updated_at=now, language="zh-CN", timezone="Asia/Shanghai")
    _apply_contact(contact, data.model_dump(exclude_unset=True), now)
    return contact


def _apply_contact(contact: Contact, values: dict, now: dt.datetime) -> list[str]:
    changed = []
    consent_before = bool(contact.marketing_consent)
    for name, value in values.items():
        if getattr(contact, name) != value:
            setattr(contact, name, value)
            changed.append(name)
    if contact.marketing_consent is None:
        contact.marketing_consent = False
    if bool(contact.marketing_consent) != consent_before or (contact.marketing_consent and "marketing_consent" in values):
        if contact.marketing_consent:
            contact.marketing_consent_at = values.get("marketing_consent_at") or contact.marketing_consent_at or now
            contact.marketing_consent_source = values.get("marketing_consent_source") or contact.marketing_consent_source or "api"
        else:  # withdrawn: record when, keep the source of the withdrawal
            contact.marketing_consent_at = values.get("marketing_consent_at") or now
            contact.marketing_consent_source = values.get("marketing_consent_source") or "withdrawn via api"
    if (contact.quiet_hours_start is None) != (contact.quiet_hours_end is None):
        raise field_error(["body", "quiet_hours_end"], "quiet_hours_start and quiet_hours_end go together")
    return changed


# --- customers --------------------------------------------------------------------------------


async def create_customer(session: AsyncSession, data: CustomerCreate) -> Customer:
    contacts_in = data.all_contacts()
    await claim_identities(session, tax_id=data.tax_id, phones=[c.phone for c in contacts_in], emails=[c.email for c in contacts_in])
    duplicate = await find_duplicate(
        session, tax_id=data.tax_id, phones=[c.phone for c in contacts_in], emails=[c.email for c in contacts_in]
    )
    if duplicate:
        raise duplicate_problem(*duplicate)
    now = utcnow()
    values = data.model_dump(include=set(CUSTOMER_SCALARS))
    values["service_types"] = values.get("service_types") or []
    customer = Customer(id=new_id(), created_at=now, updated_at=now, **values)
    customer.contacts = [_contact_from(c, now) for c in contacts_in]
    customer.addresses = [Address(id=new_id(), created_at=now, updated_at=now, **a.model_dump()) for a in data.addresses]
    customer.tag_rows = []
    customer.set_tags(data.tags or [])
    session.add(customer)
    await session.flush()
    await _emit(session, publish.registered(customer), customer.id)
    return customer


async def get_customer(session: AsyncSession, customer_id: str, *, fresh: bool = False) -> Customer:
    if not is_id(customer_id):
        raise NotFound("Customer", f"No customer with id {customer_id!r}.")
    query = select(Customer).where(Customer.id == customer_id)
    if fresh:
        query = query.execution_options(populate_existing=True)
    customer = await session.scalar(query)
    if customer is None:
        raise NotFound("Customer", f"No customer with id {customer_id}.")
    return customer


def _ensure_live(customer: Customer) -> None:
    if customer.merged_into:
        raise CustomerMerged(customer.id, customer.merged_into)


def _touch(customer: Customer, now: dt.datetime | None = None) -> None:
    """Any change to the aggregate (contacts included) gives the customer a new version and ETag."""
    customer.updated_at = now or utcnow()


async def update_customer(session: AsyncSession, customer_id: str, patch: CustomerPatch, if_match: str | None) -> Customer:
    customer = await get_customer(session, customer_id)
    check_if_match(if_match, customer.version)
    _ensure_live(customer)
    values = patch.model_dump(exclude_unset=True)
    if "tax_id" in values and values["tax_id"] and values["tax_id"] != customer.tax_id:
        await claim_identities(session, tax_id=values["tax_id"])
        duplicate = await find_duplicate(session, tax_id=values["tax_id"], exclude_customer_id=customer.id)
        if duplicate:
            raise duplicate_problem(*duplicate)
    start = values.get("contract_start", customer.contract_start)
    end = values.get("contract_end", customer.contract_end)
    if start and end and end < start:
        raise field_error(["body", "contract_end"], "contract_end is before contract_start")
    changed = []
    old_status = customer.status
    for name in CUSTOMER_SCALARS:
        if name in values:
            value = values[name]
            if name == "service_types":
                value = value or []
            if getattr(customer, name) != value:
                setattr(customer, name, value)
                changed.append(name)
    if "tags" in values:
        tags = list(dict.fromkeys(values["tags"] or []))
        if tags != customer.tags:
            customer.set_tags(tags)
            changed.append("tags")
    if not changed:
        return customer  # nothing new: no version bump, no event
    _touch(customer)
    await session.flush()
    await _emit(session, publish.updated(customer, changed), customer.id)
    if "status" in changed:
        await winback.status_changed(session, customer, old_status)
    return customer


async def set_service_level_agreement(session: AsyncSession, customer_id: str, targets: dict[str, float], if_match: str | None) -> Customer:
    """Replace the customer's agreed targets (validated by the schema: known measures, in range); announced with
    CustomerUpdated (version 3) when they change, so scoring judges the last closed month against them."""
    customer = await get_customer(session, customer_id)
    check_if_match(if_match, customer.version)
    _ensure_live(customer)
    agreed = {measure: float(targets[measure]) for measure in MEASURES if measure in targets}  # one order: equal agreements compare equal
    if (customer.service_level_agreement or {}) == agreed:
        return customer  # nothing new: no version bump, no event
    customer.service_level_agreement = agreed
    _touch(customer)
    await session.flush()
    await _emit(session, publish.updated(customer, ["service_level_agreement"]), customer.id)
    return customer


# --- cursor pagination ------------------------------------------------------------------------


def encode_cursor(at: dt.datetime, row_id: str) -> str:
    raw = orjson.dumps({"t": at.astimezone(dt.UTC).isoformat(), "i": row_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        at = dt.datetime.fromisoformat(data["t"])
        if at.tzinfo is None or not isinstance(data["i"], str) or not is_id(data["i"]):
            raise ValueError
        return at, data["i"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise field_error(["query", "cursor"], "invalid cursor: pass next_cursor from the previous page unchanged") from None


def check_text_params(**params: str | None) -> None:
    for name, value in params.items():
        if value is not None and has_control_characters(value):
            raise field_error(["query", name], "control characters are not allowed")


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise field_error(["query", "limit"], f"limit must be between 1 and {MAX_PAGE}")
    return limit


async def _customer_page(session: AsyncSession, conditions: list, limit: int, cursor: str | None):
    """Keyset pagination on (created_at, id): rows inserted meanwhile never shift or repeat a page."""
    _check_limit(limit)
    query = select(Customer).where(*conditions)
    if cursor:
        at, last_id = decode_cursor(cursor)
        query = query.where(or_(Customer.created_at > at, and_(Customer.created_at == at, Customer.id > last_id)))
    rows = list((await session.scalars(query.order_by(Customer.created_at, Customer.id).limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


async def list_customers(
    session: AsyncSession,
    *,
    status: str | None = None,
    industry: str | None = None,
    region: str | None = None,
    account_manager: str | None = None,
    tag: str | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
):
    check_text_params(industry=industry, region=region, account_manager=account_manager, tag=tag)
    conditions: list = [Customer.status == status] if status else [Customer.status != MERGED]
    if industry:
        conditions.append(Customer.industry == industry)
    if region:
        conditions.append(Customer.region == region)
    if account_manager:
        conditions.append(Customer.account_manager == account_manager)
    if tag:
        conditions.append(exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag))
    return await _customer_page(session, conditions, limit, cursor)


def _contact_match(condition) -> object:
    return exists().where(Contact.customer_id == Customer.id, Contact.erased_at.is_(None), condition)


def _name_match(text: str):
    pattern = f"%{escape_like(text.strip().lower())}%"
    return or_(
        func.lower(Customer.name).like(pattern, escape="\\"),
        func.lower(Customer.short_name).like(pattern, escape="\\"),
    )


async def search_customers(
    session: AsyncSession,
    *,
    q: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    tax_id: str | None = None,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
):
    """`q` matches any of name (substring), phone (normalised), email, tax id; the named
    parameters must all match. Same keyset pagination as the list."""
    check_text_params(q=q, name=name, phone=phone, email=email, tax_id=tax_id)
    if not any(v and v.strip() for v in (q, name, phone, email, tax_id)):
        raise field_error(["query", "q"], "give q or at least one of name, phone, email, tax_id")
    conditions: list = [Customer.status != MERGED]
    if name and name.strip():
        conditions.append(_name_match(name))
    if phone and phone.strip():
        normalised = try_normalize_phone(phone)
        if normalised is None:
            raise field_error(["query", "phone"], "not a valid phone number")
        conditions.append(_contact_match(Contact.phone == normalised))
    if email and email.strip():
        conditions.append(_contact_match(Contact.email == email.strip().lower()))
    if tax_id and tax_id.strip():
        try:
            conditions.append(Customer.tax_id == normalize_tax_id(tax_id))
        except ValueError as exc:
            raise field_error(["query", "tax_id"], str(exc)) from None
    if q and q.strip():
        text = q.strip()
        alternatives = [_name_match(text)]
        normalised = try_normalize_phone(text) if any(ch.isdigit() for ch in text) else None
        if normalised:
            alternatives.append(_contact_match(Contact.phone == normalised))
        if "@" in text:
            alternatives.append(_contact_match(Contact.email == text.lower()))
        try:
            alternatives.append(Customer.tax_id == normalize_tax_id(text))
        except ValueError:
            pass
        conditions.append(or_(*alternatives))
    return await _customer_page(session, conditions, limit, cursor)


# --- contacts ---------------------------------------------------------------------------------


async def get_contact(session: AsyncSession, contact_id: str, customer_id: str | None = None) -> Contact:
    contact = await session.get(Contact, contact_id) if is_id(contact_id) else None
    if contact is None or (customer_id is not None and contact.customer_id != customer_id):
        raise NotFound("Contact", f"No contact with id {contact_id}" + (f" on customer {customer_id}." if customer_id else "."))
    return contact


async def _check_contact_duplicates(
    session: AsyncSession, customer: Customer, phone: str | None, email: str | None, skip: str | None = None
) -> None:
    await claim_identities(session, phones=[phone], emails=[email])
    for contact in customer.live_contacts:  # the same person twice on one customer
        if contact.id == skip:
            continue
        if phone and contact.phone == phone:
            raise DuplicateContact(contact, customer.id, "phone")
        if email and contact.email == email:
            raise DuplicateContact(contact, customer.id, "email")
    duplicate = await find_duplicate(
        session, phones=[phone] if phone else [], emails=[email] if email else [], exclude_customer_id=customer.id
    )
    if duplicate:
        raise duplicate_problem(*duplicate)


async def add_contact(session: AsyncSession, customer_id: str, data: ContactIn) -> Contact:
    customer = await get_customer(session, customer_id)
    _ensure_live(customer)
    await _check_contact_duplicates(session, customer, data.phone, data.email)
    now = utcnow()
    contact = _contact_from(data, now)
    customer.contacts.append(contact)
    _touch(customer, now)
    await session.flush()
    await _emit(session, publish.updated(customer, ["contacts"]), customer.id)
    return contact


async def update_contact(session: AsyncSession, customer_id: str, contact_id: str, patch: ContactPatch, if_match: str | None) -> Contact:
    customer = await get_customer(session, customer_id)
    contact = await get_contact(session, contact_id, customer_id)
    check_if_match(if_match, contact.version, what="contact")
    if contact.erased:
        raise ContactErased("An erased contact cannot be changed.")
    values = patch.model_dump(exclude_unset=True)
    if not values:
        raise field_error(["body"], "nothing to change")
    await _check_contact_duplicates(session, customer, values.get("phone"), values.get("email"), skip=contact.id)
    now = utcnow()
    changed = _apply_contact(contact, values, now)
    if changed:
        contact.updated_at = now
        _touch(customer, now)
        await session.flush()
        await _emit(session, publish.updated(customer, ["contacts"]), customer.id)
    return contact


async def delete_contact(session: AsyncSession, customer_id: str, contact_id: str, if_match: str | None) -> None:
    customer = await get_customer(session, customer_id)
    contact = await get_contact(session, contact_id, customer_id)
    check_if_match(if_match, contact.version, what="contact")
    await session.execute(update(Interaction).where(Interaction.contact_id == contact.id).values(contact_id=None))
    customer.contacts.remove(contact)
    await session.delete(contact)
    _touch(customer)
    await session.flush()
    await _emit(session, publish.updated(customer, ["contacts"]), customer.id)


# --- addresses --------------------------------------------------------------------------------


async def get_address(session: AsyncSession, customer_id: str, address_id: str) -> Address:
    address = await session.get(Address, address_id) if is_id(address_id) else None
    if address is None or address.customer_id != customer_id:
        raise NotFound("Address", f"No address with id {address_id} on customer {customer_id}.")
    return address


async def add_address(session: AsyncSession, customer_id: str, data: AddressIn) -> Address:
    customer = await get_customer(session, customer_id)
    _ensure_live(customer)
    now = utcnow()
    address = Address(id=new_id(), created_at=now, updated_at=now, **data.model_dump())
    customer.addresses.append(address)
    await session.flush()
    return address


async def update_address(session: AsyncSession, customer_id: str, address_id: str, patch: AddressPatch, if_match: str | None) -> Address:
    await get_customer(session, customer_id)
    address = await get_address(session, customer_id, address_id)
    check_if_match(if_match, address.version, what="address")
    values = patch.model_dump(exclude_unset=True)
    if not values:
        raise field_error(["body"], "nothing to change")
    merged = {"latitude": address.latitude, "longitude": address.longitude} | {
        k: v for k, v in values.items() if k in ("latitude", "longitude")
    }
    if (merged["latitude"] is None) != (merged["longitude"] is None):
        raise field_error(["body", "longitude"], "latitude and longitude go together")
    changed = False
    for name, value in values.items():
        if getattr(address, name) != value:
            setattr(address, name, value)
            changed = True
    if changed:
        address.updated_at = utcnow()
        await session.flush()
    return address


async def delete_address(session: AsyncSession, customer_id: str, address_id: str, if_match: str | None) -> None:
    customer = await get_customer(session, customer_id)
    address = await get_address(session, customer_id, address_id)
    check_if_match(if_match, address.version, what="address")
    customer.addresses.remove(address)
    await session.delete(address)
    await session.flush()


# --- interactions -----------------------------------------------------------------------------


async def add_interaction(session: AsyncSession, customer_id: str, data: InteractionIn) -> Interaction:
    customer = await get_customer(session, customer_id)
    _ensure_live(customer)
    if data.contact_id is not None and not any(c.id == data.contact_id for c in customer.contacts):
        raise field_error(["body", "contact_id"], "not a contact of this customer")
    now = utcnow()
    interaction = Interaction(
        id=new_id(),
        customer_id=customer.id,
        created_at=now,
        **data.model_dump(exclude={"occurred_at"}),
        occurred_at=data.occurred_at or now,
    )
    session.add(interaction)
    await session.flush()
    return interaction


async def list_interactions(session: AsyncSession, customer_id: str, *, limit: int = DEFAULT_PAGE, cursor: str | None = None):
    """Newest first, keyset on (occurred_at, id) descending."""
    await get_customer(session, customer_id)
    _check_limit(limit)
    query = select(Interaction).where(Interaction.customer_id == customer_id)
    if cursor:
        at, last_id = decode_cursor(cursor)
        query = query.where(or_(Interaction.occurred_at < at, and_(Interaction.occurred_at == at, Interaction.id < last_id)))
    rows = list((await session.scalars(query.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].occurred_at, rows[-1].id)
    return rows, next_cursor


# --- merge ------------------------------------------------------------------------------------

FILLABLE = (
    "short_name", "industry", "size_band", "region", "registered_address", "tax_id", "account_manager", "source_channel",
    "contract_number", "contract_start", "contract_end", "credit_limit", "payment_days", "share_of_wallet", "potential_volume",
    "relationship_level",
)  # fmt: skip


async def merge_customers(session: AsyncSession, survivor_id: str, merged_id: str, if_match: str | None = None) -> dict:
    """Fold `merged_id` into `survivor_id`: contacts, addresses and interactions move, empty fields of the
    survivor are filled, tags and service types are united; the merged record keeps only a pointer."""
    if survivor_id == merged_id:
        raise field_error(["body", "merged_id"], "a customer cannot be merged into itself")
    survivor = await get_customer(session, survivor_id)
    merged = await get_customer(session, merged_id)
    if if_match is not None:
        check_if_match(if_match, survivor.version)
    _ensure_live(survivor)
    if merged.merged_into:
        raise AlreadyMerged(merged_id, merged.merged_into)
    now = utcnow()
    moved = {}
    for name, model in (("contacts", Contact), ("addresses", Address), ("interactions", Interaction)):
        result = await session.execute(
            update(model).where(model.customer_id == merged.id).values(customer_id=survivor.id).execution_options(synchronize_session=False)
        )
        moved[name] = result.rowcount or 0
    # customers merged earlier into the one that disappears now follow it to the survivor
    await session.execute(
        update(Customer)
        .where(Customer.merged_into == merged.id)
        .values(merged_into=survivor.id)
        .execution_options(synchronize_session=False)
    )
    fills = {name: getattr(merged, name) for name in FILLABLE if getattr(survivor, name) is None and getattr(merged, name) is not None}
    tags = list(dict.fromkeys(survivor.tags + merged.tags))
    service_types = list(dict.fromkeys(list(survivor.service_types or []) + list(merged.service_types or [])))
    first_orders = [d for d in (survivor.first_order_date, merged.first_order_date) if d]

    merged.status = MERGED
    merged.merged_into = survivor.id
    merged.merged_at = now
    merged.updated_at = now
    await session.flush()  # the merged row leaves the live tax-id index before the survivor may take its tax id

    survivor = await get_customer(session, survivor_id, fresh=True)
    changed = ["contacts"] if moved["contacts"] else []
    for name, value in fills.items():
        setattr(survivor, name, value)
        changed.append(name)
    if tags != survivor.tags:
        survivor.set_tags(tags)
        changed.append("tags")
    if service_types != list(survivor.service_types or []):
        survivor.service_types = service_types
        changed.append("service_types")
    if first_orders and min(first_orders) != survivor.first_order_date:
        survivor.first_order_date = min(first_orders)
        changed.append("first_order_date")
    _touch(survivor, now)
    await session.flush()
    await get_customer(session, merged_id, fresh=True)  # its collections are now empty
    await _emit(session, publish.merged(survivor.id, merged_id, now), merged_id)
    await _emit(session, publish.updated(survivor, changed + ["merged_from"]), survivor.id)
    return {
        "survivor": survivor,
        "merged_id": merged_id,
        "moved_contacts": moved["contacts"],
        "moved_addresses": moved["addresses"],
        "moved_interactions": moved["interactions"],
    }
