from alembic import context

from crm_common.migrations import run_env
from crm_scoring.db import metadata
from crm_scoring.service_levels import models  # noqa: F401  (its table joins the metadata)

run_env(context, metadata, url_env="SCORING_DATABASE_URL")
