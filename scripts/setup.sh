#!/usr/bin/env bash
# Sets up a fresh machine for Tensor Scalpel: Debian packages the tests and benchmarks use, then the
# npm dependencies (offline-safe: onnxruntime-node's CUDA download is skipped through .npmrc).
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-numpy/scipy/onnx/torch: independent peers for tests (reference decoders, onnx.checker) and
# the benchmarks' peer (scipy). libopenblas0-pthread: the native LAPACK backend. chromium, ripgrep,
# libkrb5-dev: the end-to-end suite (code-server + Chromium), set up by scripts/setup-e2e.sh.
PKGS=(python3-numpy python3-scipy python3-onnx python3-torch libopenblas0-pthread liblapack3 chromium libkrb5-dev ripgrep unzip)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: done"
