#!/usr/bin/env bash
# The headless tour on the bundled sample model (stories260K, a real llama.cpp GGUF): set up, build,
# then `tensor-scalpel tour` — its summary and spectra, MPO compression at chi 8, the compressed model
# evaluated against the original, the virus-and-scalpel demonstration — and a self-contained HTML
# report. Usage: bash scripts/tour.sh [OUT_DIR] [extra tour flags, e.g. --chi 16]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-tensor-scalpel-tour}"
shift || true
bash scripts/setup.sh >/dev/null
npm run --silent build >/dev/null
if ! node out/cli.js help | grep -q '^  tour '; then
  echo "tour.sh: this build has no 'tour' command (src/cli/main.ts does not register it yet)" >&2
  exit 1
fi
node out/cli.js tour --out "$OUT" "$@"
REPORT="$(cd "$OUT" && pwd)/index.html"
echo
echo "The report is at $REPORT"
echo "Open it in a browser: file://$REPORT"
