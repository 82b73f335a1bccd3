#!/bin/sh
# Commands of every CRM image (see deploy/docker/Dockerfile). Anything else is executed as given.
set -eu
PACKAGE="${CRM_PACKAGE:-$(cat /opt/venv/crm-package)}"  # CRM_PACKAGE: tests run the script outside the image
case "${1:-api}" in
  api)
    shift || true
    # --no-proxy-headers: the server never takes the client address from X-Forwarded-For; the gateway
    # does, only from the peers in GATEWAY_TRUSTED_PROXIES (docs/gateway.md, "Client address")
    exec uvicorn "${PACKAGE}.main:app" --host 0.0.0.0 --port "${PORT:-8000}" \
      --loop uvloop --http httptools --no-proxy-headers \
      --no-server-header --timeout-graceful-shutdown 20 "$@" ;;
  worker)
    exec python -m "${PACKAGE}.worker" ;;
  migrate)
    exec alembic -c "/app/services/${CRM_SERVICE}/alembic.ini" upgrade head ;;
  topics)
    shift
    exec python /app/deploy/scripts/create_topics.py "$@" ;;
  *)
    exec "$@" ;;
esac
