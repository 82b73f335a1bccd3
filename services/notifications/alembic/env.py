from alembic import context
from crm_common.idempotency import idempotency_metadata
from crm_common.migrations import run_env
from crm_notifications.db import metadata

run_env(context, [metadata, idempotency_metadata], url_env="NOTIFICATIONS_DATABASE_URL")
