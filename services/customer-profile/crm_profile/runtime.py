"""The customer-profile runtime: the database, the outbox and its relay, the consumers of scoring's announcements and
of the orders and complaints (the account manager's workspace, KPIs, win-back) and the purge of expired idempotency
records and the key-account monthly reports (background loops)."""

from __future__ import annotations

from crm_common.idempotency import keep_idempotency_records
from crm_common.runtime import ServiceRuntime
from crm_profile.accounts.handlers import AccountComplaintsHandler, AccountOrdersHandler, AccountScoresHandler
from crm_profile.accounts.reports import schedule_loop as key_account_report_loop
from crm_profile.settings import ProfileSettings


def build_runtime(settings: ProfileSettings | None = None) -> ServiceRuntime:
    settings = settings or ProfileSettings()
    runtime = ServiceRuntime(settings, handlers=[AccountScoresHandler(settings), AccountOrdersHandler(), AccountComplaintsHandler()])
    keep_idempotency_records(runtime)
    if settings.key_account_reports_scheduler:  # the 1st's key-account reports (accounts/reports.py)
        runtime.add_background_loop(
            "key-account-reports", lambda: key_account_report_loop(runtime, settings.key_account_reports_check_s), with_consumers=True
        )
    return runtime
