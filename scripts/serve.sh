#!/usr/bin/env bash
# Quick start: virtualenv, dependencies, migrations, a first user (its API token is printed),
# then the server on $BIND (default 127.0.0.1:8000). SQLite in ./data and in-process jobs
# unless DATABASE_URL / REDIS_URL say otherwise. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput -v0

mkdir -p data
email="${ADMIN_EMAIL:-admin@example.com}"
if [ ! -s data/admin_password ]; then
  (umask 077; .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))' > data/admin_password)
fi
password="${ADMIN_PASSWORD:-$(cat data/admin_password)}"
token=$(.venv/bin/python manage.py createuser "$email" --password "$password" --superuser ${ADMIN_TOKEN:+--token "$ADMIN_TOKEN"} 2>/dev/null)

bind="${BIND:-127.0.0.1:8000}"
cat <<MSG

  Service:   http://$bind/api/   (docs: http://$bind/api/docs/, admin: http://$bind/admin/)
  User:      $email   password: $password
  API token: $token
  Try:       curl -H 'Authorization: Token $token' http://$bind/api/projects/

MSG
# gthread workers: a streaming proxy response holds a thread, not the whole process.
exec .venv/bin/gunicorn core.wsgi --bind "$bind" --workers "${WEB_WORKERS:-2}" --threads "${WEB_THREADS:-8}" \
  --worker-class gthread --timeout 120 --access-logfile -
