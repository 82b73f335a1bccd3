from alembic import context
from crm_common.migrations import run_env
from crm_gateway.db import all_tables

run_env(context, all_tables(), url_env="GATEWAY_DATABASE_URL")
