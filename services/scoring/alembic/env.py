from alembic import context
from crm_common.migrations import run_env
from crm_scoring.db import all_tables

run_env(context, all_tables(), url_env="SCORING_DATABASE_URL")
