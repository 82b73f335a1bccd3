"""/api/v1/auth: who am I, and (development only) a demo login for the console."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from crm_common.problems import Problem
from crm_gateway.auth import mint_token
from crm_gateway.objects import GATEWAY_IDENTITY
from crm_gateway.settings import GatewaySettings
from crm_gateway.state import GatewayDep, PrincipalDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class DemoLogin(BaseModel):
    username: str = Field(min_length=1, max_length=100)


def demo_users(settings: GatewaySettings) -> list[dict[str, Any]]:
    users = [dict(u) for u in settings.demo_users]
    if settings.demo_customer_id:  # GATEWAY_DEMO_CUSTOMER_ID names the customer the demo customer signs in as
        for user in users:
            if user["role"] == "customer":
                user["customer_id"] = settings.demo_customer_id
        if not any(u["role"] == "customer" for u in users):
            users.append({"username": "customer", "role": "customer", "name": "Customer portal", "customer_id": settings.demo_customer_id})
    return users


@router.get("/demo-users", summary="Demo users (development only)")
async def list_demo_users(gateway: GatewayDep) -> dict[str, Any]:
    settings = gateway.settings
    if not settings.demo_login_enabled:
        raise Problem(404, "Not Found", "Demo login is disabled.")
    return {"users": [{"username": u["username"], "role": u["role"], "name": u.get("name")} for u in demo_users(settings)]}


@router.post("/demo-login", summary="Mint a token for a demo user (development only)")
async def demo_login(body: DemoLogin, gateway: GatewayDep) -> dict[str, Any]:
    settings = gateway.settings
    if not settings.demo_login_enabled or gateway.signing_key is None:
        raise Problem(404, "Not Found", "Demo login is disabled.")
    user = next((u for u in demo_users(settings) if u["username"] == body.username), None)
    if user is None:
        raise Problem(401, "Unauthorized", "Unknown demo user.")
    customer_id = user.get("customer_id") or await _demo_customer_by_phone(gateway, user.get("customer_phone"))
    if user["role"] == "customer" and not customer_id:
        raise Problem(409, "Demo customer missing", "The demo customer does not exist here (run `make demo`).")
    token = mint_token(
        gateway.signing_key,
        subject=user.get("subject") or f"demo-{user['username']}",
        role=user["role"],
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=dt.timedelta(seconds=settings.token_ttl_s),
        customer_id=customer_id,
        customers=user.get("customers"),
        team=user.get("team"),
        name=user.get("name"),
    )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": settings.token_ttl_s,
        "role": user["role"],
        "name": user.get("name"),
    }


async def _demo_customer_by_phone(gateway, phone: str | None) -> str | None:
    """The demo customer's id is made by customer-profile when the demo is seeded: find it by its contact phone."""
    if not phone:
        return None
    response = await gateway.upstreams["profile"].request(
        "GET", "/customers/search", params={"phone": phone, "limit": 1}, headers=GATEWAY_IDENTITY
    )
    if response.status_code != 200:
        return None
    body = response.json()
    items = body.get("items", []) if isinstance(body, dict) else body
    return items[0]["id"] if items else None


@router.get("/me", summary="The caller as the gateway sees it")
async def me(p: PrincipalDep) -> dict[str, Any]:
    return {"subject": p.subject, "role": p.role, "team": p.team, "customer_id": p.customer_id, "name": p.name, "method": p.method}
