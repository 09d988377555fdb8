#!/usr/bin/env bash
# Runs every test of Tensor Scalpel on a fresh machine: installs what the tests need
# (scripts/setup.sh: Debian packages + npm ci), then `npm test` = build, type-check, the unit and
# integration suites (node's test runner over test/**/*.test.ts), and the end-to-end suite in a real
# VS Code (code-server 4.100.3, installed by scripts/setup-e2e.sh into a cache folder) driven through
# Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
