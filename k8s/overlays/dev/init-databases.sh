#!/bin/sh
# One database and one role per service: no service can read another's tables (docs/architecture.md).
# Runs once, when the PostgreSQL volume is created (docker compose and the dev overlay share it);
# the password comes from TARIFA_DB_PASSWORD.
set -eu
for service in collector rater voip_summit invoicer notifier; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=role="$service" --set=password="$TARIFA_DB_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
SQL
done
