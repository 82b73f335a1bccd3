from alembic import context
from crm_common.audit import audit_metadata
from crm_common.idempotency import idempotency_metadata
from crm_common.migrations import run_env
from crm_complaints.db import metadata

run_env(context, [metadata, idempotency_metadata, audit_metadata], url_env="COMPLAINTS_DATABASE_URL")
