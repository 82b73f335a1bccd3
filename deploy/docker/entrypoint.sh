#!/bin/sh
# Commands of every CRM image (see deploy/docker/Dockerfile). Anything else is executed as given.
set -eu
PACKAGE="$(cat /opt/venv/crm-package)"
case "${1:-api}" in
  api)
    shift || true
    exec uvicorn "${PACKAGE}.main:app" --host 0.0.0.0 --port "${PORT:-8000}" \
      --loop uvloop --http httptools --proxy-headers --forwarded-allow-ips '*' \
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
