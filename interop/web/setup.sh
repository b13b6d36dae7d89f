#!/usr/bin/env bash
# Installs what the web-client interop needs, only what is missing, and says where it is:
#   apt: nodejs, npm, chromium (Debian's), python3-venv; npm: interop/web/package.json (@xmpp/client with its
#   browser bundle dist/xmpp.min.js, strophe.js, ws) into interop/web/node_modules.
# Used by interop/web_tests.sh (CI, through run.sh) and interop/capture_web.sh (by hand).
# Everything goes to stderr except the last line: "NODE_MAJOR=<n>". Exit non-zero when something is missing.
set -euo pipefail
WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[web/setup] $*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
APT=()
command -v node >/dev/null 2>&1 || APT+=(nodejs)
command -v npm >/dev/null 2>&1 || APT+=(npm)
command -v chromium >/dev/null 2>&1 || APT+=(chromium)
python3 -m venv --help >/dev/null 2>&1 || APT+=(python3-venv)
if [ "${#APT[@]}" -gt 0 ]; then
  log "apt-get install ${APT[*]}"
  $SUDO apt-get update -q >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${APT[@]}" >&2
fi
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$NODE_MAJOR" -lt 18 ]; then
  log "node $(node --version) is too old (xmpp.js 0.14 wants 18+)"; exit 1
fi
want_ok() { # every pinned package present at its version
  local name ver
  while read -r name ver; do
    [ -f "$WEB/node_modules/$name/package.json" ] || return 1
    [ "$(node -p "require('$WEB/node_modules/$name/package.json').version")" = "$ver" ] || return 1
  done < <(node -p "Object.entries(require('$WEB/package.json').dependencies).map(([n, v]) => n + ' ' + v).join('\n')")
}
if ! want_ok; then
  log "npm install (interop/web/package.json)"
  (cd "$WEB" && npm install --no-audit --no-fund --loglevel=error >&2)
fi
echo "NODE_MAJOR=$NODE_MAJOR"
