"""A service's API answers only the gateway (or another holder of the edge key), proven per request
(crm_common.edge): a direct call without a valid proof is 401 problem+json and changes nothing, whatever identity
headers it sends; through the gateway the same request works."""

from __future__ import annotations

import time

import httpx
import pytest
from pydantic import SecretStr

from crm_common.edge import EdgeTokenSigner
from crm_common.settings import EdgeTokenSettings
from fuzz_support import BUILDERS, STAFF

CUSTOMER = {"name": "Direct Call Logistics Co., Ltd.", "customer_type": "enterprise", "industry": "retail", "region": "East China"}
COMPLAINT = {
    "customer_id": "C-direct",
    "tracking_numbers": ["SF900100201"],
    "category": "delay",
    "description": "Parcel late",
    "channel": "web",
}
# a write and a listing of what it would have created, per service
WRITES = {
    "profile": ("/customers", CUSTOMER, "/customers"),
    "complaints": ("/complaints", COMPLAINT, "/complaints"),
    "notifications": ("/templates", {"key": "direct", "channel": "email", "language": "en", "subject": "s", "body": "b"}, "/templates"),
    "scoring": ("/admin/recompute", {}, None),
}


def proofs(settings, identity: dict[str, str]) -> dict[str, dict[str, str]]:
    """The ways a direct caller may try: no proof, an expired one, one for another service, a forged signature."""
    audience = settings.service_name
    forger = EdgeTokenSettings(edge_token_key=SecretStr("an-attacker-chosen-key-of-enough-length-42"))
    other = "scoring" if audience != "scoring" else "complaints"
    return {
        "none": {},
        "expired": EdgeTokenSigner(settings.edge, issuer="gateway", clock=lambda: time.time() - 300).headers(audience, identity),
        "another service": EdgeTokenSigner(settings.edge, issuer="gateway").headers(other, identity),
        "forged signature": EdgeTokenSigner(forger, issuer="gateway").headers(audience, identity),
    }


@pytest.mark.parametrize("service", sorted(WRITES))
async def test_a_direct_call_without_a_valid_proof_is_401_and_changes_nothing(database_factory, service):
    target = await BUILDERS[service](database_factory)
    path, body, listing = WRITES[service]
    settings = target.app.state.runtime.settings
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=target.app), base_url="http://direct") as direct:
            before = (await target.client.get(listing, headers=STAFF)).json() if listing else None
            for identity in ({}, {k.lower(): v for k, v in STAFF.items()}):
                for case, proof in proofs(settings, identity).items():
                    response = await direct.post(path, json=body, headers={**STAFF, **proof} if identity else proof)
                    assert response.status_code == 401, (case, identity, response.text)
                    assert response.headers["content-type"].startswith("application/problem+json")
                    assert response.json()["status"] == 401
            if listing:
                assert (await target.client.get(listing, headers=STAFF)).json() == before
            for open_path in ("/healthz", "/metrics"):
                assert (await direct.get(open_path)).status_code == 200, open_path
    finally:
        for close in target.closers:
            await close()


async def test_with_the_gateways_proof_the_same_direct_call_is_applied(database_factory):
    """The refusals above are about the proof: the profile answers 201 to the same body with a valid one."""
    target = await BUILDERS["profile"](database_factory)
    try:
        response = await target.client.post("/customers", json=CUSTOMER, headers=STAFF)  # the test client signs like the gateway
        assert response.status_code == 201, response.text
    finally:
        for close in target.closers:
            await close()
