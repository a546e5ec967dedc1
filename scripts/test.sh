#!/usr/bin/env bash
# The test command (npm test): installs what the tests need, builds,
# typechecks, lints, and runs every test with node's test runner.
# Closes with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
rm -rf dist
npx tsc -p tsconfig.json
npx eslint .

mkdir -p .tmp
tap=.tmp/test-results.tap

# One PostgreSQL per run for the tests that need it (each makes its own
# database), unless PIER_TEST_PG_URL already names one. Stopped on exit,
# whatever happens.
if [ -z "${PIER_TEST_PG_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/pier-test-pg.XXXXXX)
  chmod 755 "$pg_dir"
  pg_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  trap 'bash scripts/services/postgres.sh stop "$pg_dir/pg" || true; rm -rf "$pg_dir"' EXIT
  PIER_TEST_PG_URL=$(bash scripts/services/postgres.sh start "$pg_dir/pg" "$pg_port")
  export PIER_TEST_PG_URL
fi
files=$(find dist/test -name '*.test.js' | sort)
if [ -n "${PIER_TEST_FILTER:-}" ]; then files=$(echo "$files" | grep -E "$PIER_TEST_FILTER" || true); fi
status=0
# shellcheck disable=SC2086
node --test --test-concurrency="${PIER_TEST_CONCURRENCY:-2}" --test-timeout=900000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  $files || status=$?

pass=$(grep -E '^# pass ' "$tap" | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail ' "$tap" | tail -1 | awk '{print $3}')
skip=$(grep -E '^# skipped ' "$tap" | tail -1 | awk '{print $3}')
echo "${pass:-0} passed, ${fail:-0} failed, ${skip:-0} skipped"
exit $status
