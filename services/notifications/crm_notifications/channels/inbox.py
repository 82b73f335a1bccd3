"""The in-app inbox for account managers: a task row in our own database."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from crm_common.db import Database, utcnow
from crm_notifications.channels.base import ChannelResult, OutgoingMessage
from crm_notifications.delivery.models import InboxTask


class InboxChannel:
    name = "inbox"

    def __init__(self, db: Database):
        self.db = db

    async def send(self, message: OutgoingMessage) -> ChannelResult:
        async with self.db.transaction() as session:
            existing = await session.scalar(select(InboxTask).where(InboxTask.message_id == message.message_id))
            if existing is None:  # a retried send after a crash must not create a second task
                session.add(
                    InboxTask(
                        id=str(uuid.uuid4()),
                        message_id=message.message_id,
                        assignee=message.address,
                        customer_id=message.customer_id,
                        title=message.subject,
                        body=message.body,
                        created_at=utcnow(),
                    )
                )
        return ChannelResult("delivered", provider_id=message.message_id)
