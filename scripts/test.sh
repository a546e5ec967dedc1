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
npx eslint .

mkdir -p .tmp
tap=.tmp/test-results.tap
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
