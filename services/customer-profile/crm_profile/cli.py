"""`crm-profile migrate | api | worker | seed`: the service's operational commands."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crm-profile", description="Customer-profile service commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the Alembic history to PROFILE_DATABASE_URL")
    api = commands.add_parser("api", help="serve HTTP (uvicorn)")
    api.add_argument("--host", default="0.0.0.0")
    api.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8001")))
    commands.add_parser("worker", help="outbox relay without HTTP")
    seed = commands.add_parser("seed", help="create the demo customers through the API")
    seed.add_argument("--base-url", default="http://127.0.0.1:8001")
    args = parser.parse_args(argv)

    if args.command == "migrate":
        from crm_common.migrations import upgrade
        from crm_profile import ALEMBIC_INI
        from crm_profile.settings import ProfileSettings

        upgrade(ALEMBIC_INI, ProfileSettings().connection_url())
    elif args.command == "api":
        import uvicorn

        uvicorn.run("crm_profile.main:app", host=args.host, port=args.port)
    elif args.command == "worker":
        from crm_profile.worker import main as worker_main

        worker_main()
    elif args.command == "seed":
        from crm_profile.demo import main as demo_main

        return demo_main(["--base-url", args.base_url])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
