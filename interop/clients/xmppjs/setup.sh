#!/usr/bin/env bash
# Installs what interop/fast_tests.sh needs for xmpp.js in Node, only what is missing: apt nodejs and npm, then
# npm install of package.json (the pinned @xmpp/client) into interop/clients/xmppjs/node_modules.
# Everything goes to stderr except the last line: "NODE_MAJOR=<n>". Exit non-zero when something is missing.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[xmppjs/setup] $*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
APT=()
command -v node >/dev/null 2>&1 || APT+=(nodejs)
command -v npm >/dev/null 2>&1 || APT+=(npm)
if [ "${#APT[@]}" -gt 0 ]; then
  log "apt-get install ${APT[*]}"
  $SUDO apt-get update -q >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${APT[@]}" >&2
fi
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
# xmpp.js 0.14 wants Node 18+ (WebCrypto's crypto.subtle for HT-SHA-256-NONE, crypto.randomUUID)
[ "$NODE_MAJOR" -ge 18 ] || { log "node $(node --version) is too old (xmpp.js 0.14 wants 18+)"; exit 1; }
pinned=$(node -p "require('$DIR/package.json').dependencies['@xmpp/client']")
have=$(node -p "try { require('$DIR/node_modules/@xmpp/client/package.json').version } catch { '' }")
if [ "$have" != "$pinned" ]; then
  log "npm install (@xmpp/client $pinned)"
  (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error >&2)
fi
echo "NODE_MAJOR=$NODE_MAJOR"
