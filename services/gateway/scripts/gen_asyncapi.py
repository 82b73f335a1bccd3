"""Regenerate docs/asyncapi.yaml (same as `python -m crm_gateway.asyncapi`)."""

from crm_gateway.asyncapi import main

raise SystemExit(main())
