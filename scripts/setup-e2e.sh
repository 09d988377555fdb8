#!/usr/bin/env bash
# Installs what the end-to-end tests need: Debian's Chromium, ripgrep, libkrb5-dev (to build
# code-server's kerberos module) and code-server 4.100.3 (VS Code 1.100.3, the last line that runs on
# Node 20) into a cache folder outside the clone. Idempotent: a finished install is detected by a
# stamp file and the script exits at once. Run as root (apt-get); no questions asked.
#
#   TS_E2E_CACHE   cache folder (default $HOME/.cache/tensor-scalpel-e2e)
#
# Layout afterwards: $TS_E2E_CACHE/code-server-4.100.3/package/out/node/entry.js
set -euo pipefail

CODE_SERVER_VERSION=4.100.3
CACHE="${TS_E2E_CACHE:-$HOME/.cache/tensor-scalpel-e2e}"
DEST="$CACHE/code-server-$CODE_SERVER_VERSION"
STAMP="$DEST/.installed"

log() { printf '[setup-e2e %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# --- Debian packages ----------------------------------------------------------------------------
need_apt=()
for pkg in chromium libkrb5-dev ripgrep; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    need_apt+=("$pkg")
  fi
done
if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup-e2e: need root to apt-get install ${need_apt[*]}" >&2
    exit 1
  fi
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${need_apt[@]}"
else
  log "Debian packages present: chromium libkrb5-dev ripgrep"
fi

# --- code-server --------------------------------------------------------------------------------
if [[ -f "$STAMP" ]]; then
  log "code-server $CODE_SERVER_VERSION already installed in $DEST"
  exit 0
fi

# Work in a scratch folder beside the destination and move it into place at the end, so an
# interrupted run never leaves a half-installed tree that looks finished.
WORK="$CACHE/.work-$$"
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

log "npm pack code-server@$CODE_SERVER_VERSION"
npm pack --silent "code-server@$CODE_SERVER_VERSION" >/dev/null
tar xzf "code-server-$CODE_SERVER_VERSION.tgz"
cd package

log "npm install (code-server)"
npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

log "npm install (lib/vscode)"
cd lib/vscode
npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# VS Code's search needs ripgrep; its npm package downloads a binary from GitHub, which fails
# offline, so point it at Debian's.
mkdir -p node_modules/@vscode/ripgrep/bin
ln -sf /usr/bin/rg node_modules/@vscode/ripgrep/bin/rg

# node-pty, kerberos, argon2 etc. build from source. npm 11 skips install scripts of packages that
# were not approved; npm_config_yes answers its prompts.
log "npm rebuild (native modules of lib/vscode)"
npm_config_yes=true npm rebuild --loglevel=error

log "npm install (built-in extensions)"
(cd extensions && npm install --omit=dev --no-audit --no-fund --loglevel=error)

cd ../..   # back in package/
# Only argon2 here: a plain `npm rebuild` would also rerun code-server's own postinstall.sh, which
# refuses to run as root. argon2 is only used for password auth (the tests use --auth none).
log "npm rebuild argon2 (code-server)"
npm_config_yes=true npm rebuild argon2 --loglevel=error || log "warning: argon2 did not build (only password auth needs it)"

# Smoke test: the server must at least print its version. Its config goes to a scratch folder, not $HOME.
XDG_CONFIG_HOME="$WORK/xdg-config" XDG_DATA_HOME="$WORK/xdg-data" node out/node/entry.js --version

mkdir -p "$CACHE"
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$WORK/package" "$DEST/package"
date -u +%FT%TZ > "$STAMP"
log "installed code-server $CODE_SERVER_VERSION in $DEST"
