"""Who acts on complaints, and what their role lets them do."""

from __future__ import annotations

from dataclasses import dataclass

from crm_complaints.complaints.errors import ActorRequired, NotAllowed, NotYourTeam
from crm_complaints.complaints.models import Complaint

STAFF_ROLES = frozenset({"agent", "team_lead", "supervisor", "manager", "admin", "system", "account_manager"})
# account managers follow their customers' complaints: they read, add notes and record what the customer said,
# but the handling team moves the complaint.
ACCOUNT_MANAGER_ACTIONS = frozenset({"note", "customer_message"})
CROSS_TEAM_ROLES = frozenset({"supervisor", "manager", "admin", "system"})


@dataclass(frozen=True)
class Actor:
    """Who acts, from the gateway's X-Actor-Id / X-Actor-Role / X-Actor-Team headers."""

    id: str
    role: str
    team: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


SYSTEM = Actor(id="system", role="system")


def authorize(actor: Actor | None, complaint: Complaint, action: str = "handle") -> Actor:
    """The actor, when its role lets it `action` this complaint: staff of the complaint's team, or a cross-team role."""
    if actor is None:
        raise ActorRequired()
    if not actor.is_staff:
        raise NotAllowed(f"Role {actor.role!r} cannot act on complaints.")
    if actor.role in CROSS_TEAM_ROLES:
        return actor
    if actor.role == "account_manager":
        if action in ACCOUNT_MANAGER_ACTIONS:
            return actor
        raise NotAllowed("Account managers can add notes and customer messages; the handling team changes the complaint.")
    if complaint.team_id is not None and actor.team != complaint.team_id:
        raise NotYourTeam(
            f"This complaint belongs to team {complaint.team_id!r}; acting on it needs the supervisor role.",
            complaint_team=complaint.team_id,
            actor_team=actor.team,
        )
    return actor


def require_staff(actor: Actor | None, what: str) -> Actor:
    """Staff only (`what` names the resource in the refusal, e.g. "Listing complaints")."""
    if actor is None or not actor.is_staff:
        raise NotAllowed(f"{what} is for staff.")
    return actor
