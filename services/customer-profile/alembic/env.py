from alembic import context

from crm_common.migrations import run_env
from crm_profile.db import metadata

run_env(context, metadata, url_env="PROFILE_DATABASE_URL")
