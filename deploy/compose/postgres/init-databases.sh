#!/bin/sh
# Runs once, on an empty data directory (docker-entrypoint-initdb.d): one role and one database
# per service, each role owning only its own database. Passwords come from env/postgres.env
# (CRM_DB_PASSWORD_<SERVICE>); the same values appear in each service's <PREFIX>DATABASE_URL.
set -eu

create() {
  name="$1"; password="$2"
  if [ -z "$password" ]; then
    echo "init-databases: no password for $name (set it in env/postgres.env)" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       -v name="$name" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$name" \
       -c "ALTER SCHEMA public OWNER TO \"$name\";"
}

create crm_profile       "${CRM_DB_PASSWORD_PROFILE:-}"
create crm_scoring       "${CRM_DB_PASSWORD_SCORING:-}"
create crm_complaints    "${CRM_DB_PASSWORD_COMPLAINTS:-}"
create crm_notifications "${CRM_DB_PASSWORD_NOTIFICATIONS:-}"
create crm_gateway       "${CRM_DB_PASSWORD_GATEWAY:-}"
