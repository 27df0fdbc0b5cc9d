#!/usr/bin/env bash
# Fuzz the HTTP API with schemathesis against a live server on PostgreSQL.
#
# A fresh database gets the demo data and two keys of the `acme` organization: a personal
# key of its admin (every scope) and a machine key (every scope a machine may hold). Each
# key runs every operation of /api/schema/ with a bounded number of examples. The run fails
# on any server error (5xx), any answer that does not match the schema (status code, content
# type, headers, body), an ignored key, or a deleted object still served. Traffic goes to
# 127.0.0.1 only.
#
# Environment: DATABASE_HOST_URL (PostgreSQL server, default postgres://postgres@127.0.0.1:5432),
# SCHEMATHESIS_DB (database name, dropped and recreated), SCHEMATHESIS_PORT,
# SCHEMATHESIS_MAX_EXAMPLES, SCHEMATHESIS_CHECKS, SCHEMATHESIS_EXCLUDE_CHECKS, SCHEMATHESIS_SEED,
# SCHEMATHESIS_OUT (directory for the server log and the reports).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PY:-.venv/bin/python}"
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute, the venv's link kept
BIN="$(dirname "$PY")"
PG_SERVER="${DATABASE_HOST_URL:-postgres://postgres@127.0.0.1:5432}"
DB_NAME="${SCHEMATHESIS_DB:-llmops_schemathesis}"
PORT="${SCHEMATHESIS_PORT:-8765}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-8}"
# Every check but the two that judge how strict input validation is against the request
# schemas (documented loosely on purpose: services name the field of a bad input in a 400).
CHECKS="${SCHEMATHESIS_CHECKS:-all}"
EXCLUDE_CHECKS="${SCHEMATHESIS_EXCLUDE_CHECKS-negative_data_rejection,positive_data_acceptance}"
OUT="${SCHEMATHESIS_OUT:-test-results/schemathesis}"
BASE="http://127.0.0.1:${PORT}"

mkdir -p "$OUT"
OUT="$(realpath "$OUT")"
rm -f "$OUT/server.log"  # gunicorn appends: count this run's errors only
export DATABASE_URL="${PG_SERVER}/${DB_NAME}"
# A production-like server (DEBUG off) without TLS in front of it; mail stays in memory and
# the API limits are raised so that the fuzzer's bursts are not all answered 429.
export DEBUG=0 LLMOPS_TESTING=0 SECURE_SSL_REDIRECT=0 ALLOWED_HOSTS=127.0.0.1,localhost
export SECRET_KEY="${SECRET_KEY:-$("$PY" -c 'import secrets; print(secrets.token_urlsafe(50))')}"
export EMAIL_BACKEND=django.core.mail.backends.locmem.EmailBackend
export API_LIMITS_SCALE="${API_LIMITS_SCALE:-1000}"
export LOG_LEVEL=WARNING
unset CELERY_BROKER_URL

psql "${PG_SERVER}/postgres" -qc "DROP DATABASE IF EXISTS \"${DB_NAME}\" WITH (FORCE)" >/dev/null
psql "${PG_SERVER}/postgres" -qc "CREATE DATABASE \"${DB_NAME}\"" >/dev/null
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py demo --force >/dev/null
ADMIN_SCOPES="ingest,prompts:read,prompts:write,prompts:approve,prompts:deploy,evals:write,models:read,models:write,models:approve,reviews:write,reviews:manage,incidents:write,audit:read"
MACHINE_SCOPES="ingest,prompts:read,prompts:write,prompts:deploy,evals:write,models:read,models:write,reviews:manage,incidents:write,audit:read"
# Scopes added later (e.g. runbooks:write) join when the policy knows them.
EXTRA_SCOPES="$("$PY" -c 'import django, os; os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmops.settings"); django.setup(); from llmops.tenancy.policy import SCOPES; print(",".join(s for s in ("runbooks:write",) if s in SCOPES))')"
if [ -n "$EXTRA_SCOPES" ]; then
  ADMIN_SCOPES="${ADMIN_SCOPES},${EXTRA_SCOPES}"
  MACHINE_SCOPES="${MACHINE_SCOPES},${EXTRA_SCOPES}"
fi
ADMIN_KEY="$("$PY" manage.py create_api_key --org acme --name fuzz-admin --user acme-admin --scopes "$ADMIN_SCOPES" 2>/dev/null)"
MACHINE_KEY="$("$PY" manage.py create_api_key --org acme --name fuzz-machine --scopes "$MACHINE_SCOPES" 2>/dev/null)"

# Path parameters: mostly the demo's real objects, so the fuzzer gets past the 404s.
"$PY" manage.py shell --no-imports < .ci/schemathesis_config.py > "$OUT/schemathesis.toml"

"$BIN/gunicorn" llmops.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --timeout 60 \
  --error-logfile "$OUT/server.log" --capture-output >/dev/null 2>&1 &
SERVER_PID=$!
stop_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
trap stop_server EXIT
for _ in $(seq 1 60); do
  "$PY" -c "import urllib.request as u; u.urlopen('${BASE}/api/schema/', timeout=5)" 2>/dev/null && break
  sleep 1
done

status=0
run_key() {
  local name="$1" key="$2"
  echo "--- schemathesis with the ${name} key (max ${MAX_EXAMPLES} examples per operation)"
  # From the report directory: schemathesis keeps its example database in the working one.
  (cd "$OUT" && "$BIN/schemathesis" --config-file "$OUT/schemathesis.toml" run "${BASE}/api/schema/" \
    --header "Authorization: Bearer ${key}" \
    --checks "$CHECKS" ${EXCLUDE_CHECKS:+--exclude-checks "$EXCLUDE_CHECKS"} \
    --max-examples "$MAX_EXAMPLES" \
    --seed "${SCHEMATHESIS_SEED:-1}" --workers 1 --no-shrink --request-timeout 30 \
    --suppress-health-check all --output-sanitize true --continue-on-failure \
    --report junit --report-junit-path "$OUT/${name}.xml") \
    || status=1
}
run_key admin "$ADMIN_KEY"
run_key machine "$MACHINE_KEY"
server_errors=$(grep -c '"status": 5[0-9][0-9]' "$OUT/server.log" || true)
echo "server errors answered: ${server_errors:-0} (server log: $OUT/server.log)"
{ grep -o '"method": "[A-Z]*", "path": "[^"]*", "status": 5[0-9][0-9]' "$OUT/server.log" || true; } \
  | sed -E 's/"method": "([A-Z]+)", "path": "([^"]*)", "status": ([0-9]+)/\3 \1 \2/' | sort | uniq -c
exit "$status"
