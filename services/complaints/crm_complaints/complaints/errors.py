"""What the complaint use cases refuse, as domain exceptions. `crm_complaints.problems` is the one place that turns
them into problem details (the HTTP status comes from the family: see PROBLEM_STATUS there).

Each exception has a `title` (the problem's title, and through it its type) and a `detail` (its message); `facts`
are machine-readable members of the answer (`current_status`, `allowed`, `errors`...).
"""

from __future__ import annotations

from typing import Any


class ComplaintsError(Exception):
    title = "Complaint request refused"

    def __init__(self, detail: str | None = None, *, title: str | None = None, **facts: Any):
        super().__init__(detail or title or self.title)
        self.detail = detail
        if title is not None:
            self.title = title
        self.facts = facts


# ---- who acts ------------------------------------------------------------------------------------


class ActorRequired(ComplaintsError):
    """No identity reached the service (the gateway sets X-Actor-Id and X-Actor-Role)."""

    title = "Actor required"

    def __init__(self) -> None:
        super().__init__("X-Actor-Id and X-Actor-Role headers are required (set by the gateway).")


class NotAllowed(ComplaintsError):
    """The actor's role may not do this."""

    title = "Forbidden"


class NotYourTeam(NotAllowed):
    """The complaint belongs to another team; acting on it needs a cross-team role."""

    title = "Another team's complaint"


# ---- which complaint ---------------------------------------------------------------------------------


class ComplaintNotFound(ComplaintsError):
    """No such complaint, or (for a customer) not one of theirs."""

    title = "Complaint not found"

    def __init__(self, complaint_id: str | None = None):
        super().__init__(f"No complaint with id {complaint_id}." if complaint_id is not None else "No such complaint.")
        self.complaint_id = complaint_id


# ---- the complaint's state does not allow it -----------------------------------------------------------


class StateConflict(ComplaintsError):
    """The request is sound but the complaint's current state refuses it."""


class TransitionNotAllowed(StateConflict):
    title = "Invalid transition"


class ReopenWindowPassed(StateConflict):
    title = "Reopen window passed"


class ComplaintClosed(StateConflict):
    title = "Complaint closed"


class ComplaintNotOpen(StateConflict):
    title = "Complaint not open"


class UseActionEndpoint(StateConflict):
    """Statuses with their own action (assign, resolve, close, reopen) are not set through the plain status change."""

    title = "Use the action endpoint"


class DifferentCustomers(StateConflict):
    title = "Different customers"


class NotResolved(StateConflict):
    title = "Not resolved"


class SurveyAlreadyAnswered(StateConflict):
    title = "Survey already answered"


# ---- the request itself is wrong -----------------------------------------------------------------------


class InvalidComplaintInput(ComplaintsError):
    """Bad input that only the service can judge (an unknown category, customer or agent...): `title` says which,
    `errors` lists the fields as validation errors do."""

    title = "Invalid input"


def field_error(*loc: str, msg: str, type_: str) -> dict[str, Any]:
    """One entry of `errors`, shaped like the validation errors of request bodies."""
    return {"loc": list(loc), "msg": msg, "type": type_}
