"""What `make run`'s message sink (scripts/dev_sink.py) accepted: one JSON line per email, SMS or push message."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path


class NoSink(LookupError):
    """This installation has no development sink (GATEWAY_DEV_SENT_STORE is unset, as in production)."""


def recent_messages(store: str | None, *, limit: int, channel: str | None = None, to: str | None = None) -> list[dict]:
    """The newest `limit` messages first, optionally of one channel or to one address."""
    if not store:
        raise NoSink()
    path = Path(store)
    if not path.exists():
        return []
    kept: deque[dict] = deque(maxlen=limit)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by a crash of the sink
                continue
            if channel and record.get("channel") != channel:
                continue
            if to and to not in record.get("to", []):
                continue
            kept.append(record)
    return list(reversed(kept))
