from alembic import context

from crm_common.migrations import run_env
from crm_gateway.db import metadata

run_env(context, metadata, url_env="GATEWAY_DATABASE_URL")
