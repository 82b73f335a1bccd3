"""`python -m crm_gateway [--host H] [--port P]`: run the gateway and print the console URL and demo login."""

from __future__ import annotations

import argparse

import uvicorn

from crm_common.production import exit_if_refused
from crm_gateway.main import create_app
from crm_gateway.settings import GatewaySettings


def banner(settings: GatewaySettings, host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    lines = [f"Console: http://{shown}:{port}/console", f"API:     http://{shown}:{port}/api/v1/openapi.json"]
    if settings.demo_login_enabled:
        users = ", ".join(f"{u['username']} ({u['role']})" for u in settings.demo_users)
        lines.append(f"Demo login (development only): choose one of {users} on the login form")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m crm_gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    app = exit_if_refused(lambda: create_app(settings))
    print(banner(settings, args.host, args.port), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower())


if __name__ == "__main__":
    main()
