#!/usr/bin/env bash
# Make interop/.venv with the pinned slixmpp (clients/requirements.txt). Idempotent: does nothing when the
# venv already has exactly the pinned versions. Prints the venv's python path on stdout (logs go to stderr).
# Env: PYTHON (default python3), PIP_TIMEOUT (seconds for pip install, default 300).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$(cd "$HERE/.." && pwd)/.venv"
REQ="$HERE/requirements.txt"
PY="${PYTHON:-python3}"
log() { echo "[clients/setup_venv] $*" >&2; }
# "slixmpp==1.17.0" lines of requirements.txt, checked against what the venv has
pinned_ok() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - "$REQ" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        if want and version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
}
if pinned_ok; then
  log "$VENV already has $(grep -v '^#' "$REQ" | xargs); skipping"
  echo "$VENV/bin/python"; exit 0
fi
command -v "$PY" >/dev/null 2>&1 || { log "ERROR: $PY not found"; exit 1; }
t0=$SECONDS
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$VENV"
  if ! "$PY" -m venv "$VENV" >&2; then
    # Debian's own python3 ships venv/ensurepip separately
    rm -rf "$VENV"
    log "python venv module unusable; installing python3-venv with apt"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
    export DEBIAN_FRONTEND=noninteractive
    if ! $SUDO apt-get install -y -q python3-venv >&2; then
      timeout 300 $SUDO apt-get update -q >&2
      timeout 600 $SUDO apt-get install -y -q python3-venv >&2
    fi
    "$PY" -m venv "$VENV" >&2
  fi
fi
log "installing $(grep -v '^#' "$REQ" | xargs) into $VENV"
timeout "${PIP_TIMEOUT:-300}" "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" >&2
pinned_ok || { log "ERROR: $VENV does not have the pinned versions after pip install"; exit 1; }
log "venv ready in $((SECONDS - t0))s"
echo "$VENV/bin/python"
