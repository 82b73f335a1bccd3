"""THE authorization table: gateway route pattern x method -> allowed roles, upstream and object scope.

Everything under /api/v1 must match a rule here, or the gateway answers 404. The middleware
(crm_gateway.middleware) and the authorization-matrix test both read this table; nothing else
decides which role may call what.

Roles that see only some customers ("restricted": customer, account_manager) are allowed only on
rules whose `scope` says how the customer behind the request is found, so the object-level check
(crm_gateway.objects) can refuse or filter. A rule whose scope is NONE is for unrestricted roles
(agent, admin, tms) only; `validate_table()` enforces this at import time.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from crm_gateway.auth import ROLES

PUBLIC = frozenset({"*"})  # no authentication at all
ALL_ROLES = frozenset(ROLES)
RESTRICTED_ROLES = frozenset({"customer", "account_manager"})

ADMIN = frozenset({"admin"})
STAFF = frozenset({"agent", "admin"})
STAFF_AM = frozenset({"agent", "admin", "account_manager"})
PEOPLE = frozenset({"agent", "admin", "account_manager", "customer"})
AM_ADMIN = frozenset({"admin", "account_manager"})
INGEST = frozenset({"tms", "admin"})

READ = frozenset({"GET", "HEAD"})
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALL_METHODS = READ | WRITE


class Scope(enum.Enum):
    NONE = "none"  # not customer-specific, or creation; restricted roles are not allowed
    PATH_CUSTOMER = "path_customer"  # the path names the customer: {customer_id}
    COMPLAINT = "complaint"  # the path names a complaint: {complaint_id}; its customer_id is checked
    LIST = "list"  # a list/search: customer tokens get customer_id forced; items are filtered
    BODY_CUSTOMER = "body_customer"  # a create: the JSON body's customer_id must be owned
    PUBLIC = "public"


@dataclass(frozen=True)
class Rule:
    pattern: str  # gateway path after /api/v1, e.g. "/complaints/{complaint_id}/{rest:path}"
    methods: frozenset[str]
    roles: frozenset[str]
    upstream: str | None  # "profile", "scoring", "complaints", "notifications"; None: the gateway answers
    scope: Scope = Scope.NONE
    item_id_field: str = "customer_id"  # which field of a list item names its customer
    regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "regex", compile_pattern(self.pattern))

    def allows(self, role: str | None) -> bool:
        return self.roles == PUBLIC or (role is not None and role in self.roles)


def compile_pattern(pattern: str) -> re.Pattern:
    out, pos = [], 0
    for match in re.finditer(r"\{(\w+)(:path)?\}", pattern):
        out.append(re.escape(pattern[pos : match.start()]))
        out.append(f"(?P<{match.group(1)}>.*)" if match.group(2) else f"(?P<{match.group(1)}>[^/]+)")
        pos = match.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(out) + "$")


R = Rule
RULES: tuple[Rule, ...] = (
    # --- the gateway itself
    R("/auth/demo-login", frozenset({"POST"}), PUBLIC, None, Scope.PUBLIC),
    R("/auth/demo-users", READ, PUBLIC, None, Scope.PUBLIC),
    R("/auth/me", READ, ALL_ROLES, None, Scope.PUBLIC),
    R("/openapi.json", READ, PUBLIC, None, Scope.PUBLIC),
    R("/events", frozenset({"POST"}), INGEST, None),
    R("/dashboard", READ, ADMIN, None),
    R("/dev/sent", READ, STAFF, None),  # make run's message sink
    R("/audit", READ, ADMIN, None),  # the services' audit trails merged (crm_gateway.audit.api)
    R("/audit.csv", READ, ADMIN, None),
    R("/search", READ, STAFF_AM, None, Scope.LIST),
    R("/customers/{customer_id}/360", READ, PEOPLE, None, Scope.PATH_CUSTOMER),
    # --- every consumer's dead letters (crm_common.dlq), before scoring's /admin catch-all
    R("/admin/dead-letters/gateway{rest:path}", ALL_METHODS, ADMIN, None),
    R("/admin/dead-letters/scoring{rest:path}", ALL_METHODS, ADMIN, "scoring"),
    R("/admin/dead-letters/complaints{rest:path}", ALL_METHODS, ADMIN, "complaints"),
    R("/admin/dead-letters/notifications{rest:path}", ALL_METHODS, ADMIN, "notifications"),
    # --- customer-profile
    R("/customers", READ, STAFF_AM, "profile", Scope.LIST, item_id_field="id"),
    R("/customers", frozenset({"POST"}), ADMIN, "profile"),
    R("/customers/search", READ, STAFF_AM, "profile", Scope.LIST, item_id_field="id"),
    R("/customers/merge{rest:path}", ALL_METHODS, ADMIN, "profile"),
    R("/contacts{rest:path}", ALL_METHODS, ADMIN, "profile"),
    R("/customers/{customer_id}/merge{rest:path}", ALL_METHODS, ADMIN, "profile"),
    R("/customers/{customer_id}/privacy{rest:path}", ALL_METHODS, ADMIN, "profile"),
    R("/customers/{customer_id}", READ, PEOPLE, "profile", Scope.PATH_CUSTOMER),
    R("/customers/{customer_id}", frozenset({"PUT", "PATCH"}), AM_ADMIN, "profile", Scope.PATH_CUSTOMER),
    R("/customers/{customer_id}", frozenset({"DELETE"}), ADMIN, "profile"),
    R("/customers/{customer_id}/interactions{rest:path}", READ | frozenset({"POST"}), STAFF_AM, "profile", Scope.PATH_CUSTOMER),
    # the customer's own choice to receive its key-account reports: the customer sets it itself (only its own: the path's
    # customer is checked), as do its account manager and staff
    R("/customers/{customer_id}/key-account-report-subscription", frozenset({"PUT"}), PEOPLE, "profile", Scope.PATH_CUSTOMER),
    R("/customers/{customer_id}/{rest:path}", READ, PEOPLE, "profile", Scope.PATH_CUSTOMER),
    R("/customers/{customer_id}/{rest:path}", WRITE, AM_ADMIN, "profile", Scope.PATH_CUSTOMER),
    # --- customer-profile: the account manager's workspace (the service scopes an account manager to their own
    # portfolio; the LIST scope also filters the items by the token's `customers` claim)
    R("/account-manager/portfolio", READ, STAFF_AM, "profile", Scope.LIST),
    R("/account-manager/worklist", READ, STAFF_AM, "profile", Scope.LIST),
    R("/account-manager/visit-quotas", READ, STAFF_AM, "profile", Scope.PUBLIC),  # not about a customer: no object check
    R("/account-manager/visit-quotas", frozenset({"PUT"}), ADMIN, "profile"),
    # win-back: the service scopes an account manager to the cases of their customers (another's case is a 404);
    # lists and a case are also filtered by the token's customers; the report and the reasons name no customer
    R("/account-manager/win-back-cases", READ, STAFF_AM, "profile", Scope.LIST),
    R("/account-manager/win-back-cases/{case_id}", READ, STAFF_AM, "profile", Scope.LIST),
    R("/account-manager/win-back-cases/{case_id}/survey", frozenset({"POST"}), STAFF_AM, "profile", Scope.PUBLIC),
    R("/account-manager/win-back-cases/{case_id}/outcome", frozenset({"POST"}), STAFF_AM, "profile", Scope.PUBLIC),
    # an offer is the case's account manager's (the service refuses another manager's case and an agent)
    R("/account-manager/win-back-cases/{case_id}/offers{rest:path}", frozenset({"POST"}), STAFF_AM, "profile", Scope.PUBLIC),
    # the pool of neutral agents who make the survey calls: data an admin sets
    R("/account-manager/win-back-call-agents", READ, STAFF_AM, "profile", Scope.PUBLIC),
    R("/account-manager/win-back-call-agents", frozenset({"PUT"}), ADMIN, "profile"),
    R("/account-manager/win-back-report{rest:path}", READ, STAFF_AM, "profile", Scope.PUBLIC),
    R("/account-manager/win-back-reasons", READ, STAFF_AM, "profile", Scope.PUBLIC),
    # KPIs per account manager (docs/account-management.md): staff see every manager ranked, an account manager only
    # their own row (the service decides; rows name managers, not customers)
    R("/account-manager/kpis", READ, STAFF_AM, "profile", Scope.PUBLIC),
    # key-account monthly service reports: a month's reports of a portfolio (the service narrows an account manager to
    # their own; items are also filtered by the token's customers); running a month by hand is an operator's. A
    # customer's own reports are under /customers/{customer_id}/key-account-reports (the customer only once opted in)
    R("/account-manager/key-account-reports", READ, STAFF_AM, "profile", Scope.LIST),
    R("/account-manager/key-account-reports/runs", READ | frozenset({"POST"}), ADMIN, "profile"),
    # satisfaction survey campaigns: an admin sends one to a segment; staff and account managers read the counts (no
    # customer named). The page behind each contact's link: no sign-in, the signed single-use token is the key
    R("/account-manager/survey-campaigns", READ, STAFF_AM, "profile", Scope.PUBLIC),
    R("/account-manager/survey-campaigns", frozenset({"POST"}), ADMIN, "profile"),
    R("/account-manager/survey-campaigns/{campaign_id}", READ, STAFF_AM, "profile", Scope.PUBLIC),
    R("/satisfaction-survey-links/{invitation_id}", READ | frozenset({"POST"}), PUBLIC, "profile", Scope.PUBLIC),
    # --- scoring
    R("/scores", READ, frozenset({"admin", "agent", "account_manager"}), "scoring", Scope.LIST),
    R("/scores/{customer_id}", READ, PEOPLE, "scoring", Scope.PATH_CUSTOMER),
    R("/scores/{customer_id}/{rest:path}", READ, PEOPLE, "scoring", Scope.PATH_CUSTOMER),
    R("/service-levels/{customer_id}", READ, PEOPLE, "scoring", Scope.PATH_CUSTOMER),
    R("/reports/pareto{rest:path}", READ, ADMIN, "scoring"),
    # management reports over the whole base (crm_scoring.reports): counts per class, cell, grade and tier for account
    # managers and admins; the customers of a matrix cell (they name customers across portfolios) for admins only
    R("/reports/matrices/{matrix}/{cell}/customers{rest:path}", READ, ADMIN, "scoring"),
    R("/reports/abc{rest:path}", READ, AM_ADMIN, "scoring", Scope.PUBLIC),
    R("/reports/matrices{rest:path}", READ, AM_ADMIN, "scoring", Scope.PUBLIC),
    R("/reports/credit-churn{rest:path}", READ, AM_ADMIN, "scoring", Scope.PUBLIC),
    R("/reports/rfm{rest:path}", READ, AM_ADMIN, "scoring", Scope.PUBLIC),
    R("/reports/tier-movements{rest:path}", READ, ADMIN, "scoring"),
    R("/reports/tiers{rest:path}", READ, AM_ADMIN, "scoring", Scope.PUBLIC),
    R("/reports/service-levels{rest:path}", READ, ADMIN, "scoring"),
    R("/reports/model{rest:path}", READ, ADMIN, "scoring"),
    R("/reports/scoring{rest:path}", READ, ADMIN, "scoring"),
    R("/admin/{rest:path}", ALL_METHODS, ADMIN, "scoring"),
    # --- complaints
    R("/complaints", READ, STAFF_AM, "complaints", Scope.LIST),
    R("/complaints", frozenset({"POST"}), PEOPLE, "complaints", Scope.BODY_CUSTOMER),
    R("/complaints/lookup", READ, PEOPLE, "complaints", Scope.LIST),
    R("/complaints/{complaint_id}", READ, PEOPLE, "complaints", Scope.COMPLAINT),
    R("/complaints/{complaint_id}/timeline", READ, PEOPLE, "complaints", Scope.COMPLAINT),
    R("/complaints/{complaint_id}/survey", frozenset({"POST"}), PEOPLE, "complaints", Scope.COMPLAINT),
    # docs/complaints.md: the customer may add information and reopen their own complaint
    R("/complaints/{complaint_id}/customer-messages", frozenset({"POST"}), PEOPLE, "complaints", Scope.COMPLAINT),
    R("/complaints/{complaint_id}/reopen", frozenset({"POST"}), PEOPLE, "complaints", Scope.COMPLAINT),
    R("/complaints/{complaint_id}", frozenset({"PUT", "PATCH"}), STAFF_AM, "complaints", Scope.COMPLAINT),
    R("/complaints/{complaint_id}/{rest:path}", READ, STAFF_AM, "complaints", Scope.COMPLAINT),
    R("/complaints/{complaint_id}/{rest:path}", frozenset({"POST", "PUT", "PATCH"}), STAFF_AM, "complaints", Scope.COMPLAINT),
    R("/reports/complaints{rest:path}", READ, STAFF, "complaints"),
    # the customer's survey page: no sign-in, the signed single-use token in the link is the key
    R("/survey/{complaint_id}", READ | frozenset({"POST"}), PUBLIC, "complaints", Scope.PUBLIC),
    # setup: agents read teams and agents to assign; only admins change them
    R("/teams{rest:path}", READ, STAFF, "complaints"),
    R("/teams{rest:path}", frozenset({"PUT"}), ADMIN, "complaints"),
    R("/agents{rest:path}", READ, STAFF, "complaints"),
    R("/agents{rest:path}", frozenset({"PUT"}), ADMIN, "complaints"),
    R("/routing-rules", READ, STAFF, "complaints"),
    R("/routing-rules", frozenset({"PUT"}), ADMIN, "complaints"),
    R("/calendars/{rest:path}", READ, STAFF, "complaints"),  # public holidays to prefill a team's calendar
    # --- notifications
    # preferences are kept per contact; the link in each message unsubscribes with its own signed token
    R("/preferences/unsubscribe", READ | frozenset({"POST"}), PUBLIC, "notifications", Scope.PUBLIC),
    R("/preferences/contacts/{contact_id}", READ, STAFF, "notifications"),
    R("/preferences/contacts/{contact_id}", frozenset({"PUT"}), STAFF, "notifications"),
    R("/deliveries", READ, PEOPLE, "notifications", Scope.LIST),
    R("/deliveries/{rest:path}", READ, STAFF, "notifications"),
    # an account manager reads and closes only their own inbox (the service forces the assignee to the caller); the
    # tasks are also filtered by the customers the manager may see
    R("/inbox", READ, STAFF_AM, "notifications", Scope.LIST),
    R("/inbox/{task_id}/done", frozenset({"POST"}), STAFF_AM, "notifications", Scope.PUBLIC),
    R("/templates{rest:path}", ALL_METHODS, ADMIN, "notifications"),
    R("/rules{rest:path}", ALL_METHODS, ADMIN, "notifications"),
    R("/segment-sends{rest:path}", ALL_METHODS, ADMIN, "notifications"),
    R("/reports/notifications{rest:path}", READ, ADMIN, "notifications"),
)
del R


@dataclass(frozen=True)
class Match:
    rule: Rule
    params: dict[str, str]


class NoRoute(Exception):
    pass


class MethodNotAllowed(Exception):
    def __init__(self, allowed: frozenset[str]):
        self.allowed = allowed


def match(path: str, method: str, rules: tuple[Rule, ...] = RULES) -> Match:
    """First rule whose pattern and method match; NoRoute / MethodNotAllowed otherwise."""
    allowed: set[str] = set()
    method = method.upper()
    for rule in rules:
        found = rule.regex.match(path)
        if not found:
            continue
        if method in rule.methods:
            return Match(rule, found.groupdict())
        allowed |= rule.methods
    if allowed:
        raise MethodNotAllowed(frozenset(allowed))
    raise NoRoute(path)


def validate_table(rules: tuple[Rule, ...] = RULES) -> None:
    for rule in rules:
        if rule.roles != PUBLIC and not rule.roles <= ALL_ROLES:
            raise ValueError(f"{rule.pattern}: unknown roles {rule.roles - ALL_ROLES}")
        if rule.scope is Scope.NONE and rule.roles & RESTRICTED_ROLES:
            raise ValueError(f"{rule.pattern} {sorted(rule.methods)}: restricted roles need an object scope")
        if rule.scope is Scope.PATH_CUSTOMER and "{customer_id}" not in rule.pattern:
            raise ValueError(f"{rule.pattern}: PATH_CUSTOMER needs {{customer_id}}")
        if rule.scope is Scope.COMPLAINT and "{complaint_id}" not in rule.pattern:
            raise ValueError(f"{rule.pattern}: COMPLAINT needs {{complaint_id}}")


validate_table()
