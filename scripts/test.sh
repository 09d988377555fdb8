#!/usr/bin/env bash
# Runs every test of Tensor Scalpel on a fresh machine: setup, build, type-check, the unit and
# integration suites (node's test runner), then the end-to-end suite in a real VS Code (code-server)
# driven through Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent build
npm run --silent typecheck
echo "== unit and integration tests"
node scripts/run-unit-tests.mjs
if [ -f scripts/setup-e2e.sh ] && grep -q '"test:e2e"' package.json; then
  echo "== end-to-end tests (code-server + Chromium)"
  bash scripts/setup-e2e.sh
  npm run --silent test:e2e
fi
