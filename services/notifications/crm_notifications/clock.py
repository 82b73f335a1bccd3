"""Time as a dependency: the pipeline and the dispatcher never call datetime.now() themselves,
so tests can move through quiet hours, digest windows and retry backoff without sleeping."""

from __future__ import annotations

import datetime as dt

from crm_common.db import utcnow


class Clock:
    def now(self) -> dt.datetime:
        return utcnow()


class ManualClock(Clock):
    def __init__(self, start: dt.datetime):
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def set(self, value: dt.datetime) -> None:
        self._now = value

    def advance(self, **delta) -> dt.datetime:
        self._now = self._now + dt.timedelta(**delta)
        return self._now
