"""Email over SMTP with aiosmtplib."""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

import aiosmtplib

from crm_notifications.channels.base import ChannelError, ChannelResult, OutgoingMessage


class EmailChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        timeout_s: float = 10.0,
    ):
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.use_tls = use_tls
        self.timeout_s = timeout_s

    def build(self, message: OutgoingMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.address
        mail["Subject"] = message.subject
        mail["Message-ID"] = f"<{message.message_id}@crm-notifications>"
        mail["Date"] = email.utils.formatdate(localtime=False)
        mail["Content-Language"] = message.language
        if message.metadata.get("unsubscribe_url"):
            mail["List-Unsubscribe"] = f"<{message.metadata['unsubscribe_url']}>"
        mail.set_content(message.body, charset="utf-8")
        return mail

    async def send(self, message: OutgoingMessage) -> ChannelResult:
        try:
            await aiosmtplib.send(
                self.build(message),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.use_tls,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(f"recipient refused: {exc}", transient=False) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise ChannelError(f"SMTP {exc.code}: {exc.message}", transient=exc.code >= 400 and exc.code < 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ChannelError(f"SMTP unavailable: {type(exc).__name__}: {exc}", transient=True) from exc
        return ChannelResult("sent", provider_id=message.message_id)
