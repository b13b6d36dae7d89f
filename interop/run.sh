#!/usr/bin/env bash
# Real-peer interop run: the entry point for .ci/run and for running by hand (`bash interop/run.sh`).
# `bash interop/run.sh SCRIPT...` (e.g. `sasl2_tests fast_tests`) runs only those of step 4 after steps 1-3.
#
#  1. makes interop/.venv with the pinned slixmpp          (clients/setup_venv.sh; skipped when present)
#  2. starts Prosody 13 on 127.0.0.1                       (prosody/start.sh; installs it with apt if missing)
#  3. runs the reference logins against it                 (selftest.sh)
#  4. runs interop/client_tests.sh, interop/legacy_tests.sh, interop/server_tests.sh, interop/ccert_tests.sh (SASL
#     EXTERNAL with TLS client certificates: Prosody's mod_auth_ccert and the example server's --client-ca),
#     interop/web_tests.sh (RFC 7395
#     WebSocket and XEP-0206 BOSH: the client tools against Prosody, Strophe.js and xmpp.js in headless Chromium
#     against the example server; installs node/npm/chromium when missing), then interop/hostile.sh (the
#     hostile-peer suite, seconds), then interop/load_tests.sh (xmpp-load against xmpp-server-async and Prosody:
#     a few hundred logins, the RESULT lines checked), then interop/kerberos_tests.sh (an MIT KDC, a GSSAPI Prosody, curl's and
#     headless Chromium's Negotiate against the hosts crate's libgssapi contexts; installs krb5,
#     libkrb5-dev/libclang-dev and chromium when missing), then interop/sso_tests.sh (the sso-proxy tool between
#     headless Chromium with Strophe.js and a GSSAPI Prosody or the example server, and the login-time figure
#     against this Prosody's own BOSH), then interop/sm_tests.sh (XEP-0198 stream management:
#     the client tool hangs up and resumes against Prosody's smacks and the example server's --sm, in one process
#     and from a state file in a new one; slixmpp resumes against the example server; seconds), then
#     interop/sasl2_tests.sh (SASL2, Bind 2 and inline resumption: the client tool against Prosody's mod_sasl2*
#     and the example server's --sasl2; seconds), then
#     interop/fast_tests.sh (XEP-0484 FAST over SASL2 and Bind2: xmpp.js in Node gets a token with a password login
#     and logs in again with it, against Prosody, and against the example server once it has --sasl2; installs
#     node/npm and @xmpp/client when missing; seconds), each if it exists,
#     with peer.env's variables exported (plus PEER_ENV=<file>,
#     PYTHON=<venv python>, INTEROP_DIR=<this dir>)
#  5. stops Prosody (trap, also on failure or Ctrl-C) and prints "interop: N passed, N failed"
#
# Exit 0 only when every check passed. Every step has a time bound (env, seconds):
#   VENV_TIMEOUT (600), PROSODY_TIMEOUT (900, includes apt), SELFTEST_TIMEOUT (300), CLIENT_TESTS_TIMEOUT (600),
#   LEGACY_TESTS_TIMEOUT (600), SERVER_TESTS_TIMEOUT (600), CCERT_TESTS_TIMEOUT (600), WEB_TESTS_TIMEOUT (900, includes apt), HOSTILE_TIMEOUT (300), LOAD_TESTS_TIMEOUT (300),
#   KERBEROS_TESTS_TIMEOUT (900, includes apt and the libgssapi build), SSO_TESTS_TIMEOUT (600), SM_TESTS_TIMEOUT (300),
#   SASL2_TESTS_TIMEOUT (300),
#   FAST_TESTS_TIMEOUT (600, includes apt and npm)
# The work dir (config, logs, wire logs) is INTEROP_WORKDIR, default interop/.work/run-<time>; it is
# deleted after a fully green run unless KEEP_WORKDIR=1, and kept (path printed) otherwise.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T0=$SECONDS
PASSED=0 FAILED=0
step() { echo "== interop: $* (t=$((SECONDS - T0))s)"; }
summary() { # N passed, N failed from the last summary line of file $1 -> "P F", or nothing
  grep -Eo '^([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1 | sed -E 's/^.*: //; s/ passed, / /; s/ failed//' || true
}
finish() {
  echo "interop: $PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
}
# run_step OUTFILE SECONDS cmd... : runs `timeout SECONDS cmd...` with its output copied to OUTFILE and shown
# live, as a background job in its own process group, and waits for it. So INT/TERM are handled at once
# (bash defers traps while a foreground child runs) and on_signal can stop the whole step.
CHILD="" TAILPID=""
run_step() {
  local out="$1" secs="$2" rc=0
  shift 2
  : > "$out"
  set -m
  timeout "$secs" "$@" >"$out" 2>&1 </dev/null &
  CHILD=$!
  set +m
  tail -n +1 -s 0.2 -f --pid="$CHILD" "$out" &
  TAILPID=$!
  wait "$CHILD" || rc=$?
  CHILD=""
  wait "$TAILPID" 2>/dev/null || true
  TAILPID=""
  [ "$rc" = 124 ] && echo "(timed out after ${secs}s: $*)"
  return "$rc"
}
on_signal() {
  echo "interop: interrupted"
  if [ -n "$CHILD" ]; then kill -TERM -- "-$CHILD" 2>/dev/null || true; wait "$CHILD" 2>/dev/null || true; fi
  if [ -n "$TAILPID" ]; then wait "$TAILPID" 2>/dev/null || true; fi
  exit 130
}
trap on_signal INT TERM
# step 4's scripts, in order; the arguments pick some of them
ALL_TESTS="client_tests legacy_tests server_tests ccert_tests web_tests hostile load_tests kerberos_tests sso_tests sm_tests sasl2_tests fast_tests"
for t in "$@"; do
  [[ " $ALL_TESTS " == *" $t "* ]] || { echo "FAIL args: no step-4 script '$t' (one of: $ALL_TESTS)"; FAILED=1; finish; exit 1; }
done

# ---------- 1. python venv (slixmpp)
step "python venv"
TMPOUT="$(mktemp -t interop-run.XXXXXX)"
if ! run_step "$TMPOUT" "${VENV_TIMEOUT:-600}" bash "$HERE/clients/setup_venv.sh"; then
  rm -f "$TMPOUT"; echo "FAIL venv: clients/setup_venv.sh failed"; FAILED=1; finish; exit 1
fi
PY="$(tail -n 1 "$TMPOUT")"
rm -f "$TMPOUT"

# ---------- 2. Prosody
step "start Prosody"
WD="${INTEROP_WORKDIR:-$HERE/.work/run-$(date +%Y%m%d-%H%M%S)-$$}"
mkdir -p "$WD"
WD="$(cd "$WD" && pwd)"
stop_peer() {
  if [ -f "$WD/peer.env" ]; then bash "$HERE/prosody/stop.sh" "$WD" || true; fi
}
trap stop_peer EXIT
if ! run_step "$WD/start.out" "${PROSODY_TIMEOUT:-900}" env PROSODY_WORKDIR="$WD" bash "$HERE/prosody/start.sh"; then
  echo "FAIL prosody_start: prosody/start.sh failed (work dir $WD)"
  [ -f "$WD/prosody.log" ] && tail -n 20 "$WD/prosody.log"
  FAILED=1; finish; exit 1
fi
PEER_ENV="$(sed -n 's/^PEER_ENV=//p' "$WD/start.out")"
[ -f "$PEER_ENV" ] || { echo "FAIL prosody_start: no PEER_ENV line"; FAILED=1; finish; exit 1; }

# ---------- 3. reference logins
step "selftest logins"
rc=0
run_step "$WD/selftest.out" "${SELFTEST_TIMEOUT:-300}" env PEER_ENV="$PEER_ENV" PYTHON="$PY" bash "$HERE/selftest.sh" || rc=$?
read -r p f <<<"$(summary "$WD/selftest.out")" || true
PASSED=$((PASSED + ${p:-0})); FAILED=$((FAILED + ${f:-0}))
if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then echo "FAIL selftest: exit code $rc"; FAILED=$((FAILED + 1)); fi

# ---------- 4. the crate against the real peer, and real clients against the crate's server (written
# separately; each optional): client_tests.sh, legacy_tests.sh, then server_tests.sh and hostile.sh (which start
# their own servers)
for t in ${*:-$ALL_TESTS}; do
  if [ ! -f "$HERE/$t.sh" ]; then
    step "no interop/$t.sh yet; skipping"
    continue
  fi
  step "$t.sh"
  rc=0
  case "$t" in
    client_tests) limit="${CLIENT_TESTS_TIMEOUT:-600}" ;;
    legacy_tests) limit="${LEGACY_TESTS_TIMEOUT:-600}" ;;
    hostile) limit="${HOSTILE_TIMEOUT:-300}" ;;
    load_tests) limit="${LOAD_TESTS_TIMEOUT:-300}" ;;
    web_tests) limit="${WEB_TESTS_TIMEOUT:-900}" ;;
    kerberos_tests) limit="${KERBEROS_TESTS_TIMEOUT:-900}" ;;
    sso_tests) limit="${SSO_TESTS_TIMEOUT:-600}" ;;
    ccert_tests) limit="${CCERT_TESTS_TIMEOUT:-600}" ;;
    sm_tests) limit="${SM_TESTS_TIMEOUT:-300}" ;;
    sasl2_tests) limit="${SASL2_TESTS_TIMEOUT:-300}" ;;
    fast_tests) limit="${FAST_TESTS_TIMEOUT:-600}" ;;
    *) limit="${SERVER_TESTS_TIMEOUT:-600}" ;;
  esac
  # peer.env's variables exported, plus PEER_ENV, PYTHON (venv python with slixmpp), INTEROP_DIR; cwd = project root
  run_step "$WD/$t.out" "$limit" \
    env PEER_ENV="$PEER_ENV" PYTHON="$PY" INTEROP_DIR="$HERE" TESTS="$t" \
    bash -c 'set -a; . "$PEER_ENV"; set +a; cd "$INTEROP_DIR/.."; exec bash "$INTEROP_DIR/$TESTS.sh"' || rc=$?
  p="" f=""
  read -r p f <<<"$(summary "$WD/$t.out")" || true
  if [ -n "$p" ]; then
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then echo "FAIL $t: exit code $rc"; FAILED=$((FAILED + 1)); fi
  elif [ "$rc" = 0 ]; then
    PASSED=$((PASSED + 1))
  else
    echo "FAIL $t: exit code $rc$([ "$rc" = 124 ] && echo " (timed out)")"; FAILED=$((FAILED + 1))
  fi
done

# ---------- 5. stop, report
step "stop Prosody"
trap - EXIT
stop_peer
if [ "$FAILED" = 0 ] && [ "${KEEP_WORKDIR:-0}" != 1 ] && [ -z "${INTEROP_WORKDIR:-}" ]; then
  rm -rf -- "$WD"
  rmdir "$HERE/.work" 2>/dev/null || true
else
  echo "work dir kept: $WD (prosody.log, selftest/*.log wire logs)"
fi
echo "== interop: done in $((SECONDS - T0))s"
finish
