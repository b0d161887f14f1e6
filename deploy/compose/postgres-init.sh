#!/usr/bin/env bash
# Run once by the postgres image on a new, empty volume (/docker-entrypoint-initdb.d), as the
# image's superuser: one login role per service, owning only its schema in $POSTGRES_DB,
# passwords from the environment (docker-compose.yml passes them from .env). The same layout
# as deploy/local/databases.py gives the local stack; a volume made before this script existed
# keeps its old single role: remove it (docker compose down -v) to get the new layout.
set -euo pipefail

for service in intake routing deadline notifier; do
  variable="POSTGRES_${service^^}_PASSWORD"
  [[ -n "${!variable:-}" ]] || { echo "postgres-init: $variable is not set" >&2; exit 1; }
done

# Passwords go in as psql variables (:'name' quotes them), never into the SQL text.
psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$POSTGRES_DB" \
  -v intake_password="$POSTGRES_INTAKE_PASSWORD" \
  -v routing_password="$POSTGRES_ROUTING_PASSWORD" \
  -v deadline_password="$POSTGRES_DEADLINE_PASSWORD" \
  -v notifier_password="$POSTGRES_NOTIFIER_PASSWORD" <<'SQL'
CREATE ROLE onestop_intake LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'intake_password';
CREATE ROLE onestop_routing LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'routing_password';
CREATE ROLE onestop_deadline LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'deadline_password';
CREATE ROLE onestop_notifier LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'notifier_password';

REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"db" TO onestop_intake, onestop_routing, onestop_deadline, onestop_notifier;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA intake AUTHORIZATION onestop_intake;
CREATE SCHEMA routing AUTHORIZATION onestop_routing;
CREATE SCHEMA deadline AUTHORIZATION onestop_deadline;
CREATE SCHEMA notifier AUTHORIZATION onestop_notifier;
SQL
echo "postgres-init: roles onestop_intake, onestop_routing, onestop_deadline, onestop_notifier and their schemas in $POSTGRES_DB"
