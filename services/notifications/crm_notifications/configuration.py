"""Rules and templates cached per process, invalidated through a change counter.

Every write to rules or templates bumps `nf_config_changes.counter` in the writer's transaction
(`mark_changed`). The process that wrote drops its cache when that transaction commits, so an edit through
the API is seen at once here; other replicas compare the counter at most every `refresh_s` seconds
(NOTIFICATIONS_CONFIG_REFRESH_S), so they see it within that bound. Between checks, an event costs no
statement for its rules and a message none for its template.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Integer, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_notifications.db import Base

_PENDING = "nf_config_changed"  # session.info key: this transaction changed rules/templates and has not committed yet


class ConfigChanges(Base):
    """One row (id 1): a counter bumped by every change to rules or templates."""

    __tablename__ = "nf_config_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(BigInteger, default=0)


@dataclass(frozen=True)
class RuleSnapshot:
    """What the pipeline needs of a rule (the attribute names of `Rule`, so `Spec.of` takes either)."""

    id: str
    name: str
    event_type: str
    conditions: list
    template_key: str
    audience: str
    channel: str
    category: str
    urgency: str
    digest_window_s: int | None
    digest_key: str | None


@dataclass(frozen=True)
class TemplateSnapshot:
    key: str
    language: str
    version: int
    subject: str
    body: str
    variables: list


@dataclass(frozen=True)
class Config:
    rules_by_event: dict[str, list[RuleSnapshot]] = field(default_factory=dict)  # enabled rules, by name
    templates_by_key: dict[str, list[TemplateSnapshot]] = field(default_factory=dict)  # live versions, newest first

    def rules_for(self, event_type: str) -> list[RuleSnapshot]:
        return self.rules_by_event.get(event_type, [])

    def template(self, key: str, language: str | None) -> TemplateSnapshot | None:
        """As `templates.service.current`: the newest live version in the language, else zh-CN, en, any."""
        rows = self.templates_by_key.get(key, [])
        for preferred in (language, "zh-CN", "en"):
            for row in rows:
                if row.language == preferred:
                    return row
        return rows[0] if rows else None


async def load(session: AsyncSession) -> Config:
    from crm_notifications.rules.models import Rule
    from crm_notifications.templates.models import TemplateVersion

    rules: dict[str, list[RuleSnapshot]] = {}
    for rule in (await session.scalars(select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.event_type, Rule.name))).all():
        rules.setdefault(rule.event_type, []).append(
            RuleSnapshot(
                rule.id,
                rule.name,
                rule.event_type,
                list(rule.conditions or []),
                rule.template_key,
                rule.audience,
                rule.channel,
                rule.category,
                rule.urgency,
                rule.digest_window_s,
                rule.digest_key,
            )
        )
    templates: dict[str, list[TemplateSnapshot]] = {}
    query = select(TemplateVersion).where(TemplateVersion.deleted.is_(False)).order_by(TemplateVersion.key, TemplateVersion.version.desc())
    for row in (await session.scalars(query)).all():
        templates.setdefault(row.key, []).append(
            TemplateSnapshot(row.key, row.language, row.version, row.subject, row.body, list(row.variables or []))
        )
    return Config(rules, templates)


class ConfigCache:
    def __init__(self, refresh_s: float = 2.0):
        self.refresh_s = refresh_s
        self._config: Config | None = None
        self._counter: int | None = None
        self._checked_at = 0.0
        self._generation = 0  # bumped by invalidate(): a load that started before it is not kept

    def invalidate(self) -> None:
        self._config = None
        self._generation += 1

    async def get(self, session: AsyncSession) -> Config:
        if session.info.get(_PENDING):
            return await load(session)  # this transaction's own uncommitted changes must be seen, and not cached
        if self._config is not None and time.monotonic() - self._checked_at < self.refresh_s:
            return self._config
        generation = self._generation
        counter = await session.scalar(select(ConfigChanges.counter).where(ConfigChanges.id == 1))  # first: never older than the data
        config = self._config if counter == self._counter else None
        if config is None:
            config = await load(session)
        if generation == self._generation:
            self._config, self._counter, self._checked_at = config, counter, time.monotonic()
        return config


_caches: weakref.WeakKeyDictionary[Any, ConfigCache] = weakref.WeakKeyDictionary()


def cache_for(bind: Any) -> ConfigCache:
    """One cache per engine (a process may hold several runtimes, e.g. two replicas in a test)."""
    engine = getattr(bind, "sync_engine", bind)
    if engine not in _caches:
        _caches[engine] = ConfigCache()
    return _caches[engine]


async def current(session: AsyncSession) -> Config:
    return await cache_for(session.bind).get(session)


async def mark_changed(session: AsyncSession) -> None:
    """Call in every transaction that changes rules or templates."""
    bumped = await session.execute(
        update(ConfigChanges)
        .where(ConfigChanges.id == 1)
        .values(counter=ConfigChanges.counter + 1)
        .execution_options(synchronize_session=False)
    )
    if not bumped.rowcount:  # the row went missing (restored by hand?): start it again
        session.add(ConfigChanges(id=1, counter=1))
        await session.flush()
    if not session.info.get(_PENDING):
        session.info[_PENDING] = True
        cache = cache_for(session.bind)

        def committed(sync_session) -> None:
            sync_session.info.pop(_PENDING, None)
            cache.invalidate()

        def rolled_back(sync_session) -> None:
            sync_session.info.pop(_PENDING, None)

        event.listen(session.sync_session, "after_commit", committed, once=True)
        event.listen(session.sync_session, "after_soft_rollback", rolled_back, once=True)
