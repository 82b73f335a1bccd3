"""The survey link a customer gets with the resolution: signed, expiring, single-use, and no sign-in needed.

The link's token is `<expiry, unix seconds>.<HMAC-SHA256 of complaint id, the resolution's nonce and the expiry>`
keyed with COMPLAINTS_SURVEY_SECRET. Nobody can forge one or move its expiry; the nonce (`survey_token` column) is
new at every resolution, so a reopen and a new resolution void the old link; the survey is answered once per
resolution (crm_complaints.complaints.lifecycle.answer_survey). Domain exceptions here; crm_complaints.problems maps them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

from crm_complaints.complaints.models import Complaint
from crm_complaints.settings import ComplaintsSettings


class InvalidSurveyLink(Exception):
    """The token is not one this service signed for this complaint's current resolution."""


class SurveyLinkExpired(Exception):
    """The token was signed here but its validity ended."""


def _signature(complaint_id: str, nonce: str, expires: int, settings: ComplaintsSettings) -> str:
    message = f"{complaint_id}:{nonce}:{expires}".encode()
    return hmac.new(settings.survey_secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def link_token(complaint: Complaint, settings: ComplaintsSettings) -> str:
    """Valid for `survey_valid_days` after the resolution."""
    resolved_at = complaint.resolved_at or dt.datetime.now(dt.UTC)
    expires = int((resolved_at + dt.timedelta(days=settings.survey_valid_days)).timestamp())
    return f"{expires}.{_signature(complaint.id, complaint.survey_token or '', expires, settings)}"


def check_link_token(complaint: Complaint, token: str | None, settings: ComplaintsSettings, now: dt.datetime) -> None:
    expires_text, _, signature = (token or "").partition(".")
    if not complaint.survey_token or not expires_text.isdigit() or not signature:
        raise InvalidSurveyLink()
    expected = _signature(complaint.id, complaint.survey_token, int(expires_text), settings)
    if not hmac.compare_digest(expected, signature):
        raise InvalidSurveyLink()
    if now.timestamp() >= int(expires_text):
        raise SurveyLinkExpired()


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
