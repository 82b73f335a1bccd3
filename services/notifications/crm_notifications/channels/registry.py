from __future__ import annotations

from crm_common.db import Database
from crm_common.production import revealed
from crm_notifications.channels.base import Channel
from crm_notifications.channels.email import EmailChannel
from crm_notifications.channels.http_provider import HttpProviderChannel
from crm_notifications.channels.inbox import InboxChannel
from crm_notifications.channels.webhook import WebhookChannel
from crm_notifications.settings import NotificationsSettings


def build_channels(settings: NotificationsSettings, db: Database) -> dict[str, Channel]:
    return {
        "email": EmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=revealed(settings.smtp_password),
            use_tls=settings.smtp_use_tls,
            timeout_s=settings.smtp_timeout_s,
        ),
        "sms": HttpProviderChannel(
            "sms", settings.sms_provider_url, token=revealed(settings.provider_token), timeout_s=settings.provider_timeout_s
        ),
        "push": HttpProviderChannel(
            "push", settings.push_provider_url, token=revealed(settings.provider_token), timeout_s=settings.provider_timeout_s
        ),
        "webhook": WebhookChannel(settings.webhook_secret.get_secret_value(), timeout_s=settings.webhook_timeout_s),
        "inbox": InboxChannel(db),
    }
