from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_common.db import UTCDateTime, utcnow
from crm_notifications.db import Base


class SegmentSend(Base):
    __tablename__ = "nf_segment_sends"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    segment: Mapped[dict] = mapped_column(JSON)
    template_key: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(50))
    recipients: Mapped[int] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
