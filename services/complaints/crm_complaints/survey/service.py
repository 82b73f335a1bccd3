"""The survey link a customer gets with the resolution: signed, expiring, single-use, and no sign-in needed.

The link's token is crm_common.links' (`<expiry, unix seconds>.<HMAC-SHA256 of complaint id, the resolution's nonce
and the expiry>`) keyed with COMPLAINTS_SURVEY_SECRET. Nobody can forge one or move its expiry; the nonce (`survey_token` column) is
new at every resolution, so a reopen and a new resolution void the old link; the survey is answered once per
resolution (crm_complaints.complaints.lifecycle.answer_survey). Domain exceptions here; crm_complaints.problems maps them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from crm_common import links
from crm_complaints.complaints.models import Complaint
from crm_complaints.settings import ComplaintsSettings

# The link's exceptions are the shared mechanism's (crm_common.links); these names are what this service maps.
InvalidSurveyLink = links.InvalidLink  # the token is not one this service signed for this complaint's current resolution
SurveyLinkExpired = links.LinkExpired  # the token was signed here but its validity ended


def link_token(complaint: Complaint, settings: ComplaintsSettings) -> str:
    """Valid for `survey_valid_days` after the resolution."""
    resolved_at = complaint.resolved_at or dt.datetime.now(dt.UTC)
    expires_at = resolved_at + dt.timedelta(days=settings.survey_valid_days)
    return links.sign(settings.survey_secret.get_secret_value(), complaint.id, complaint.survey_token or "", expires_at=expires_at)


def check_link_token(complaint: Complaint, token: str | None, settings: ComplaintsSettings, now: dt.datetime) -> None:
    links.check(settings.survey_secret.get_secret_value(), token, complaint.id, complaint.survey_token or "", now=now)


@dataclass(frozen=True)
class SurveyPage:
    """What the public page shows: no customer, team, agent or text of the complaint."""

    complaint_number: str
    language: str
    outcome: str | None
    resolved_at: dt.datetime | None
    answered: bool


def survey_page(complaint: Complaint) -> SurveyPage:
    answered = (
        complaint.survey_answered_at is not None
        and complaint.resolved_at is not None
        and complaint.survey_answered_at >= complaint.resolved_at
    )
    return SurveyPage(
        complaint_number=complaint.number,
        language=complaint.language or "zh-CN",
        outcome=complaint.outcome,
        resolved_at=complaint.resolved_at,
        answered=answered,
    )
