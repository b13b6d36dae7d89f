#!/usr/bin/env bash
# Stops what interop/kerberos/ started in one work dir: every PID recorded in <workdir>/pids/, the KDC last,
# each only while /proc/PID/comm still matches. CLEAN=1 also deletes the work dir.
# Usage: interop/kerberos/stop.sh <workdir | workdir/krb.env>   (or KRB_WORKDIR in the environment)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/lib.sh"
arg="${1:-${KRB_WORKDIR:-}}"
[ -n "$arg" ] || { echo "usage: $0 WORKDIR|WORKDIR/krb.env" >&2; exit 2; }
[ -f "$arg" ] && arg="$(dirname "$arg")"
[ -d "$arg/pids" ] || { echo "no $arg/pids: not a kerberos harness work dir" >&2; exit 2; }
WD="$(cd "$arg" && pwd)"
for f in "$WD"/pids/*.pid; do
  [ -e "$f" ] || continue
  [ "$(basename "$f")" = kdc.pid ] && continue
  stop_pidfile "$f"
done
[ -e "$WD/pids/kdc.pid" ] && stop_pidfile "$WD/pids/kdc.pid"
if [ "${CLEAN:-0}" = 1 ]; then rm -rf -- "$WD"; echo "removed $WD"; fi
exit 0
