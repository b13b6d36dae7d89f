#!/usr/bin/env bash
# Stop the Prosody started by start.sh.
# Usage: interop/prosody/stop.sh WORKDIR|WORKDIR/peer.env      (CLEAN=1 also deletes WORKDIR)
# Kills only the PID recorded in peer.env (TERM, then KILL after 5 s) and waits for it to exit.
set -euo pipefail
arg="${1:-${PROSODY_WORKDIR:-}}"
[ -n "$arg" ] || { echo "usage: $0 WORKDIR|peer.env" >&2; exit 2; }
if [ -d "$arg" ]; then envf="$arg/peer.env"; else envf="$arg"; fi
[ -f "$envf" ] || { echo "[prosody/stop] no env file $envf" >&2; exit 2; }
PID="$(sed -n 's/^PID=//p' "$envf")"
WD="$(sed -n 's/^WORKDIR=//p' "$envf")"
alive() { # running, and not a zombie left for a parent that does not reap
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
if [ -n "$PID" ] && alive "$PID"; then
  kill "$PID" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$PID" || break; sleep 0.1; done
  if alive "$PID"; then
    echo "[prosody/stop] PID $PID ignored SIGTERM for 5 s; sending SIGKILL" >&2
    kill -9 "$PID" 2>/dev/null || true
    for _ in $(seq 1 20); do alive "$PID" || break; sleep 0.1; done
  fi
  if alive "$PID"; then echo "[prosody/stop] PID $PID still alive" >&2; exit 1; fi
  echo "[prosody/stop] stopped PID $PID" >&2
else
  echo "[prosody/stop] PID ${PID:-?} not running" >&2
fi
sed -i 's/^PID=.*/PID=/' "$envf"
if [ "${CLEAN:-0}" = 1 ] && [ -n "$WD" ] && [ -f "$WD/prosody.cfg.lua" ]; then
  rm -rf -- "$WD"
  echo "[prosody/stop] removed $WD" >&2
fi
exit 0
