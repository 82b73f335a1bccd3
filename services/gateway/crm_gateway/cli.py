"""`crm-token`: mint a development token (or an API key) with the gateway's configured signing key."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from crm_common.edge import EdgeTokenSigner, identity_of
from crm_gateway.auth import ROLES, Principal, generate_api_key, mint_token, record_as_config
from crm_gateway.settings import UPSTREAM_AUDIENCES, GatewaySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crm-token", description="Mint a development JWT (or an API key) for the gateway.")
    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--sub", help="subject (user id); default <role>-dev")
    parser.add_argument("--customer-id", help="required for role customer")
    parser.add_argument("--customers", help="comma-separated customer ids an account manager owns")
    parser.add_argument("--team")
    parser.add_argument("--name")
    parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    parser.add_argument("--api-key", action="store_true", help="make an API key instead: prints the key and the GATEWAY_API_KEYS entry")
    parser.add_argument(
        "--edge",
        metavar="SERVICE",
        choices=sorted(UPSTREAM_AUDIENCES.values()),
        help="make the edge token (X-Edge-Token, CRM_EDGE_TOKEN_KEY, 60 s) the gateway would send SERVICE for this caller",
    )
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    if args.edge:
        principal = Principal(subject=args.sub or f"{args.role}-dev", role=args.role, team=args.team, customer_id=args.customer_id)
        print(EdgeTokenSigner(settings.edge, issuer="crm-token").token(args.edge, identity_of(principal.identity_headers())))
        return 0
    if args.api_key:
        plaintext, record = generate_api_key(
            args.name or args.sub or f"{args.role}-client", args.role, customer_id=args.customer_id, team=args.team
        )
        print(plaintext)
        print(record_as_config(record), file=sys.stderr)
        return 0
    key = settings.signing_key()
    if key is None:
        print("no signing key configured (GATEWAY_JWT_SIGNING_KEY)", file=sys.stderr)
        return 2
    try:
        token = mint_token(
            key,
            subject=args.sub or f"{args.role}-dev",
            role=args.role,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=dt.timedelta(seconds=args.ttl),
            customer_id=args.customer_id,
            customers=args.customers.split(",") if args.customers else None,
            team=args.team,
            name=args.name,
        )
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
