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
npx tsc -p web/tsconfig.json
node scripts/build-ui.mjs
node scripts/build-cli.mjs
npx eslint .

mkdir -p .tmp
tap=.tmp/test-results.tap

# Services started for the run add their stop command here; all run at exit, even on failure.
cleanups=()
run_cleanups() { for c in "${cleanups[@]}"; do eval "$c" || true; done; }
trap run_cleanups EXIT

# --- S3: one Ceph RGW for the whole run (tests make a bucket each, test/helpers/s3.ts),
# unless PIER_TEST_S3_ENDPOINT points at one already. Stopped at exit, even on failure.
if [ -z "${PIER_TEST_S3_ENDPOINT:-}" ]; then
  s3_dir=$(mktemp -d "${TMPDIR:-/tmp}/pier-test-s3.XXXXXX")
  cleanups+=("bash scripts/services/stop-s3.sh '$s3_dir' --purge")
  s3_start=$(date +%s)
  s3_env=$(bash scripts/services/start-s3.sh "$s3_dir") || { echo "starting Ceph RGW failed (logs in $s3_dir/log)" >&2; exit 1; }
  export PIER_TEST_S3_ENDPOINT=$(sed -n 's/^S3_ENDPOINT=//p' <<<"$s3_env")
  export PIER_TEST_S3_ACCESS_KEY=$(sed -n 's/^S3_ACCESS_KEY=//p' <<<"$s3_env")
  export PIER_TEST_S3_SECRET_KEY=$(sed -n 's/^S3_SECRET_KEY=//p' <<<"$s3_env")
  export PIER_TEST_S3_REGION=$(sed -n 's/^S3_REGION=//p' <<<"$s3_env")
  echo "Ceph RGW at $PIER_TEST_S3_ENDPOINT (started in $(( $(date +%s) - s3_start )) s)"
fi

# --- PostgreSQL: one server for the whole run (tests make a database each,
# test/helpers/postgres.ts), unless PIER_TEST_PG_URL names one already. Stopped at exit.
if [ -z "${PIER_TEST_PG_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/pier-test-pg.XXXXXX)
  chmod 755 "$pg_dir"
  cleanups+=("bash scripts/services/postgres.sh stop '$pg_dir/pg'; rm -rf '$pg_dir'")
  pg_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
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
