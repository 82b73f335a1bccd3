"""Templates: versioned per (key, language); saving validates variables; the newest version is used."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_common.db import utcnow
from crm_notifications import configuration
from crm_notifications.templates.models import TemplateVersion
from crm_notifications.templates.rendering import RenderError, TemplateInvalid, render, validate_template


class InvalidInput(ValueError):
    """Fields a template, rule, preference or segment send cannot have: `errors` as [{loc, msg, type}]."""

    def __init__(self, errors: list[dict[str, Any]], detail: str):
        super().__init__(detail)
        self.errors = errors


class TemplateNotFound(LookupError):
    pass


def invalid(errors: list[dict[str, Any]], detail: str) -> InvalidInput:
    return InvalidInput(errors, detail)


def check(subject: str, body: str, variables: list[str]) -> None:
    try:
        validate_template(subject, body, variables)
    except TemplateInvalid as exc:
        raise invalid([e.as_dict() for e in exc.errors], str(exc)) from None


async def save_version(
    session: AsyncSession, *, key: str, language: str, subject: str, body: str, variables: list[str], description: str | None = None
) -> TemplateVersion:
    """Validate and store a new version (1 for a new template)."""
    check(subject, body, variables)
    latest = await session.scalar(
        select(func.max(TemplateVersion.version)).where(TemplateVersion.key == key, TemplateVersion.language == language)
    )
    row = TemplateVersion(
        id=str(uuid.uuid4()),
        key=key,
        language=language,
        version=(latest or 0) + 1,
        subject=subject,
        body=body,
        variables=sorted(set(variables)),
        description=description,
        deleted=False,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    await configuration.mark_changed(session)
    return row


async def current(session: AsyncSession, key: str, language: str | None = None, *, fallback: bool = True) -> TemplateVersion | None:
    """The newest live version in the language; another language's when that one does not exist."""
    query = select(TemplateVersion).where(TemplateVersion.key == key, TemplateVersion.deleted.is_(False))
    rows = (await session.scalars(query.order_by(TemplateVersion.version.desc()))).all()
    if language is not None:
        for row in rows:
            if row.language == language:
                return row
        if not fallback:
            return None
    for preferred in ("zh-CN", "en"):
        for row in rows:
            if row.language == preferred:
                return row
    return rows[0] if rows else None


async def current_cached(session: AsyncSession, key: str, language: str | None = None) -> configuration.TemplateSnapshot | None:
    """`current` from the process's cache (see `configuration`): what the dispatcher renders with."""
    return (await configuration.current(session)).template(key, language)


async def get_current_or_404(session: AsyncSession, key: str, language: str) -> TemplateVersion:
    row = await current(session, key, language, fallback=False)
    if row is None:
        raise TemplateNotFound(f"No template {key!r} in {language}.")
    return row


async def list_current(session: AsyncSession) -> list[TemplateVersion]:
    rows = (
        await session.scalars(
            select(TemplateVersion)
            .where(TemplateVersion.deleted.is_(False))
            .order_by(TemplateVersion.key, TemplateVersion.language, TemplateVersion.version.desc())
        )
    ).all()
    seen: set[tuple[str, str]] = set()
    result = []
    for row in rows:
        if (row.key, row.language) not in seen:
            seen.add((row.key, row.language))
            result.append(row)
    return result


async def versions(session: AsyncSession, key: str) -> list[TemplateVersion]:
    rows = (
        await session.scalars(
            select(TemplateVersion).where(TemplateVersion.key == key).order_by(TemplateVersion.language, TemplateVersion.version)
        )
    ).all()
    if not rows:
        raise TemplateNotFound(f"No template {key!r}.")
    return list(rows)


async def exists(session: AsyncSession, key: str) -> bool:
    return await current(session, key) is not None


async def declared_variables(session: AsyncSession, key: str) -> set[str]:
    """Variables declared by the current version in any language."""
    names: set[str] = set()
    for row in await list_current(session):
        if row.key == key:
            names |= set(row.variables)
    return names


async def delete(session: AsyncSession, key: str, language: str | None = None) -> int:
    query = update(TemplateVersion).where(TemplateVersion.key == key, TemplateVersion.deleted.is_(False))
    if language:
        query = query.where(TemplateVersion.language == language)
    result = await session.execute(query.values(deleted=True))
    if not result.rowcount:
        raise TemplateNotFound(f"No template {key!r}.")
    await configuration.mark_changed(session)
    return result.rowcount


def render_version(template: TemplateVersion | Any, context: dict[str, Any]) -> tuple[str, str]:
    return render(template.subject, context).strip(), render(template.body, context)


def preview(template: Any, data: dict[str, Any]) -> tuple[str, str]:
    """Render with sample data; every declared variable not given gets a visible placeholder."""
    context = {name: f"<{name}>" for name in template.variables}
    if "items" in template.variables and "items" not in data:
        context["items"] = []
    context.update(data)
    try:
        return render_version(template, context)
    except RenderError as exc:
        raise invalid([{"loc": ["body", "data"], "msg": str(exc), "type": "render_error"}], str(exc)) from None
