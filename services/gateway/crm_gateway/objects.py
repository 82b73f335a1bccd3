"""Object-level checks for restricted roles: a customer sees only its own company, an account
manager only the customers it manages (claim `customers`, else the profile's `account_manager_id`).

Refusals never reveal whether another customer's object exists: ids give 404, bodies give 403,
lists are filtered item by item, and a list whose shape the gateway does not understand gives 403.
"""

from __future__ import annotations

import time
from typing import Any

from crm_common.problems import Problem
from crm_gateway.auth import Principal
from crm_gateway.authz import RESTRICTED_ROLES
from crm_gateway.upstream import Upstreams

NOT_FOUND = "urn:crm:problem:not-found"
# who the gateway is when it looks at an object to decide whether a restricted caller may see it
GATEWAY_IDENTITY = {"X-Actor-Id": "gateway", "X-Actor-Role": "admin"}


def not_found(what: str = "Resource") -> Problem:
    return Problem(404, "Not Found", f"{what} not found.", type_=NOT_FOUND)


def restricted(principal: Principal) -> bool:
    return principal.role in RESTRICTED_ROLES


class Ownership:
    def __init__(self, upstreams: Upstreams, ttl_s: float = 30.0):
        self.upstreams = upstreams
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}

    async def owns(self, principal: Principal, customer_id: str | None) -> bool:
        if not restricted(principal):
            return True
        if not customer_id:
            return False
        customer_id = str(customer_id)
        if principal.role == "customer":
            return customer_id == principal.customer_id
        if principal.customers is not None:
            return customer_id in principal.customers
        return await self._managed_by(principal, customer_id)

    async def _managed_by(self, principal: Principal, customer_id: str) -> bool:
        key = (principal.subject, customer_id)
        cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        response = await self.upstreams["profile"].request("GET", f"/customers/{customer_id}", headers=GATEWAY_IDENTITY)
        if response.status_code == 404:
            owned = False
        elif response.status_code >= 400:
            raise Problem(503, "Ownership check unavailable", "Cannot check who manages this customer now.", headers={"Retry-After": "2"})
        else:
            body = response.json()
            manager = body.get("account_manager_id") or body.get("account_manager")
            owned = manager == principal.subject
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self.ttl_s, owned)
        return owned

    async def check_customer(self, principal: Principal, customer_id: str | None, what: str = "Customer") -> None:
        if not await self.owns(principal, customer_id):
            raise not_found(what)

    async def filter_items(self, principal: Principal, body: Any, id_field: str = "customer_id", lookup=None) -> Any:
        """Keep only the items this principal may see; unknown shapes are refused.

        Items that do not carry `id_field` (e.g. the complaints service's customer view) are
        checked through `lookup()`: an async callable giving {item id: customer id} from a staff view
        of the same list. Items that cannot be checked are dropped.
        """
        if not restricted(principal):
            return body
        if isinstance(body, list):
            kept, known = [], None
            for item in body:
                if not isinstance(item, dict):
                    continue
                owner = item_owner(item, id_field)
                if owner is None and lookup is not None and item_id(item) is not None:
                    if known is None:
                        known = await lookup()
                    owner = known.get(item_id(item))
                if await self.owns(principal, owner):
                    kept.append(item)
            return kept
        if isinstance(body, dict):
            for list_key in ("items", "results", "data", "complaints", "customers"):
                if isinstance(body.get(list_key), list):
                    kept = await self.filter_items(principal, body[list_key], id_field, lookup)
                    out = dict(body)
                    out[list_key] = kept
                    if "total" in out and len(kept) != len(body[list_key]):
                        out["total"] = len(kept)
                    return out
            if id_field in body:
                if await self.owns(principal, body.get(id_field)):
                    return body
                raise not_found()
        raise Problem(403, "Forbidden", "This answer cannot be checked for your customer scope.")


def _inner(item: dict) -> dict:
    """Lookup results wrap the object: {"complaint": {...}, "timeline": [...]}."""
    inner = item.get("complaint")
    return inner if isinstance(inner, dict) else item


def item_owner(item: dict, id_field: str = "customer_id") -> Any:
    return item.get(id_field) if id_field in item else _inner(item).get(id_field)


def item_id(item: dict) -> str | None:
    value = item.get("id") if "id" in item else _inner(item).get("id")
    return None if value is None else str(value)


def items_of(body: Any) -> list:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for list_key in ("items", "results", "data", "complaints", "customers"):
            if isinstance(body.get(list_key), list):
                return body[list_key]
    return []
