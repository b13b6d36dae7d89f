#!/usr/bin/env bash
# Stop the ejabberd of interop/ejabberd/start.sh: stop.sh WORKDIR (its peer.env names the processes).
set -uo pipefail
WD="${1:?usage: stop.sh WORKDIR}"
[ -f "$WD/peer.env" ] || exit 0
# shellcheck disable=SC1091
. "$WD/peer.env"
kill -TERM "$PID" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$PID" 2>/dev/null || true
kill -TERM -- "-$LEADER" 2>/dev/null || true
case "${RUNDIR:-}" in */ejabberd-run.*) rm -rf "$RUNDIR" ;; esac
