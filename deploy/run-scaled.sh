#!/usr/bin/env bash
# `make run-scaled`: the scaled topology on this host against PostgreSQL and Redis.
# Creates the database if it is missing, runs the migrations, then starts the Procfile under
# honcho: WEB daphne processes on PORT, PORT+1, ..., SCORERS scoring workers, one Celery
# worker and Celery beat. Ctrl-C (SIGINT) or SIGTERM stops them all. docs/operations.md.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
export VENV
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/${EYESCREAM_DB:-eyescream}}"
export EYESCREAM_DATA_DIR="${EYESCREAM_DATA_DIR:-$PWD/var/scaled}"
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$EYESCREAM_DATA_DIR/prometheus}"
export PYTHONUNBUFFERED=1
mkdir -p "$EYESCREAM_DATA_DIR" "$PROMETHEUS_MULTIPROC_DIR"
# The scaled mode needs its two secrets: made once into the data folder unless given.
for name in DJANGO_SECRET_KEY EYESCREAM_DEVICE_TOKEN_KEY; do
  if [ -z "${!name:-}" ]; then
    file="$EYESCREAM_DATA_DIR/$(echo "$name" | tr '[:upper:]' '[:lower:]')"
    [ -s "$file" ] || (umask 077 && "$VENV/bin/python" -c "import secrets; print(secrets.token_urlsafe(50))" > "$file")
    export "$name=$(cat "$file")"
  fi
done
# Served on the loopback without a TLS proxy: plain HTTP cookies, unless asked otherwise.
case "${HOST:-127.0.0.1}" in
  127.0.0.1|localhost|::1) export EYESCREAM_HTTPS="${EYESCREAM_HTTPS:-0}" ;;
esac
# Counters start from zero with the processes (their files would be added to the new ones').
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete

"$VENV/bin/python" - <<'PY'
import os

import dj_database_url
import psycopg
from psycopg import sql

db = dj_database_url.parse(os.environ["DATABASE_URL"])
server = dict(host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None,
              password=db["PASSWORD"] or None, dbname="postgres", connect_timeout=5)
with psycopg.connect(**{k: v for k, v in server.items() if v}, autocommit=True) as admin:
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        print(f"database {db['NAME']} created")
PY
"$VENV/bin/python" manage.py migrate --noinput
"$VENV/bin/python" manage.py collectstatic --noinput -v 0

exec "$VENV/bin/honcho" start -f Procfile -p "${PORT:-8001}" \
  -c "web=${WEB:-2},score=${SCORERS:-2},tasks=1,beat=1"
