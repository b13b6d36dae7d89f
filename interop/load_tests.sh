#!/usr/bin/env bash
# Short loads with xmpp-load (seconds, a few hundred logins), checked by their RESULT line:
#   - against xmpp-server-async (tokio, accounts in SQLite), which it starts on a free loopback port with a
#     fresh ECDSA P-256 certificate and database: the accounts registered in-band (--register), then
#     300 STARTTLS logins (every one must succeed and the server's database must hold the accounts);
#     300 direct-TLS (XEP-0368) logins; 300 sessions held at once (login-hold); a messages run;
#     a wrong password (every attempt a failure, counted under sasl not-authorized);
#   - against xmpp-server-async --workers 2 (two processes on one port, SO_REUSEPORT, one database):
#     the sessions of xmpp-load --processes 2 logged in and held, and a messages run whose messages
#     cross between the workers (delivered: each worker's router knows the other's sessions);
#   - against the Prosody of interop/prosody/start.sh when peer.env is given (PEER_ENV, as run.sh does):
#     accounts registered in-band there, then 200 STARTTLS logins.
# One PASS/FAIL line per case, then "load_tests: N passed, N failed". Each case is bounded by
# `timeout $CASE_TIMEOUT` (60 s); the server is stopped (by PID, trap) at the end.
#
#   bash interop/load_tests.sh          # by hand; interop/run.sh runs it too
# Env: PEER_ENV (Prosody's peer.env, optional), CASE_TIMEOUT, LOGDIR, KEEP_LOGS=1.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CASE_TIMEOUT="${CASE_TIMEOUT:-60}"
DOMAIN="load.test"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# shellcheck source=harness.sh
. "$HERE/harness.sh"
harness_logdir load_tests
finish() { harness_finish load_tests; }

echo "== building xmpp-load and xmpp-server-async"
if ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin xmpp-load --bin xmpp-server-async) >"$LOGDIR/build.log" 2>&1; then
  fail build "cargo build -p xmpp-sansio-hosts --bin xmpp-load --bin xmpp-server-async"
  tail -n 30 "$LOGDIR/build.log" | sed 's/^/  | /'; finish
fi
LOAD="$ROOT/target/debug/xmpp-load"
SERVER="$ROOT/target/debug/xmpp-server-async"

# check NAME WANT_LOGINS WANT_FAILURES -- xmpp-load args...: the run's last line must be a RESULT line with
# these counts (WANT_LOGINS "+N": at least N).
check() {
  local name="$1" want_l="$2" want_f="$3" rc=0 last logins failures; shift 4
  timeout "$CASE_TIMEOUT" "$LOAD" "$@" >"$LOGDIR/$name.out" 2>&1 </dev/null || rc=$?
  last="$(tail -n 1 "$LOGDIR/$name.out")"
  if [ "$rc" = 124 ]; then fail "$name" "timed out after ${CASE_TIMEOUT}s"; return 1; fi
  if ! [[ "$last" =~ ^RESULT\ logins=([0-9]+)\ failures=([0-9]+)\ rate=[0-9.]+/s\ p50=[0-9.]+\ p99=[0-9.]+$ ]]; then
    fail "$name" "the last line is not a RESULT line: '$last'"; return 1
  fi
  logins="${BASH_REMATCH[1]}" failures="${BASH_REMATCH[2]}"
  if [[ "$want_l" == +* ]]; then
    [ "$logins" -ge "${want_l#+}" ] || { fail "$name" "$last (wanted at least ${want_l#+} logins)"; return 1; }
  elif [ "$logins" != "$want_l" ]; then
    fail "$name" "$last (wanted $want_l logins)"; return 1
  fi
  [ "$failures" = "$want_f" ] || { fail "$name" "$last (wanted $want_f failures)"; return 1; }
  pass "$name" "$last"
}

# ---------- the async example server
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -keyout "$LOGDIR/key.pem" -out "$LOGDIR/cert.pem" -subj "/CN=$DOMAIN" \
  -addext "subjectAltName=DNS:$DOMAIN" 2>/dev/null || { fail cert "openssl could not make the certificate"; finish; }
start_server() { # start_server MODE [ARGS...]: xmpp-server-async with --tls MODE; sets PORT
  local mode="$1"; shift
  cleanup
  rm -f "$LOGDIR/server-$mode.log"
  "$SERVER" --listen 127.0.0.1:0 --domain "$DOMAIN" --db "$LOGDIR/accounts.db" --tls "$mode" \
    --cert "$LOGDIR/cert.pem" --key "$LOGDIR/key.pem" --allow-register "$@" >"$LOGDIR/server-$mode.log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 100); do
    PORT="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOGDIR/server-$mode.log" 2>/dev/null)"
    [ -n "$PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  fail "server_$mode" "xmpp-server-async did not start:"; tail -n 5 "$LOGDIR/server-$mode.log" | sed 's/^/  | /'
  return 1
}
COMMON=(--domain "$DOMAIN" --password load-secret --ca-file "$LOGDIR/cert.pem")
if start_server starttls; then
  check async_register_and_login 300 0 -- --target "127.0.0.1:$PORT" "${COMMON[@]}" --users 20 \
    --concurrency 20 --duration 30 --max-logins 300 --register \
    --json "$LOGDIR/login.json" --plot "$LOGDIR/login.svg"
  if grep -q '"registered": 20' "$LOGDIR/login.json" 2>/dev/null; then
    pass async_registered "20 accounts registered in-band (JSON report)"
  else
    fail async_registered "the JSON report does not say 20 registered"
  fi
  check async_login_hold 300 0 -- --target "127.0.0.1:$PORT" "${COMMON[@]}" --users 20 \
    --concurrency 300 --duration 6 --ramp 200 --scenario login-hold
  check async_messages 20 0 -- --target "127.0.0.1:$PORT" "${COMMON[@]}" --users 20 \
    --concurrency 20 --duration 3 --scenario messages --message-rate 10
  if grep -Eq 'messages +[1-9][0-9]* sent, [1-9][0-9]* received' "$LOGDIR/async_messages.out"; then
    pass async_messages_delivered "$(grep -Eo 'messages +[0-9]+ sent, [0-9]+ received, [0-9]+ errors' "$LOGDIR/async_messages.out")"
  else
    fail async_messages_delivered "no message sent and received"
  fi
  # A wrong password: every attempt fails, and says why.
  check async_wrong_password 0 40 -- --target "127.0.0.1:$PORT" --domain "$DOMAIN" --password wrong \
    --ca-file "$LOGDIR/cert.pem" --users 20 --concurrency 10 --duration 30 --max-logins 40
  if grep -Eq '^ +40  sasl not-authorized$' "$LOGDIR/async_wrong_password.out"; then
    pass async_failure_condition "40 failures counted under sasl not-authorized"
  else
    fail async_failure_condition "the summary does not count 40 sasl not-authorized"
  fi
fi
if start_server direct; then
  check async_direct_tls 300 0 -- --target "127.0.0.1:$PORT" "${COMMON[@]}" --users 20 \
    --concurrency 20 --duration 30 --max-logins 300 --tls direct
fi
# Two worker processes: sessions spread over both (and over two load processes), messages across.
if start_server starttls --workers 2 --stats 1; then
  check async_workers_hold 200 0 -- --target "127.0.0.1:$PORT" "${COMMON[@]}" --users 20 \
    --concurrency 200 --duration 5 --ramp 200 --scenario login-hold --processes 2
  # Each worker took some of the 200 (the kernel spreads them; the STATS lines count per worker).
  sleep 1.2
  if for w in 0 1; do grep "^STATS .* worker $w$" "$LOGDIR/server-starttls.log" | tail -n 1 | awk '$5 > 0 {ok=1} END {exit !ok}' || exit 1; done; then
    pass async_workers_spread "$(grep '^STATS' "$LOGDIR/server-starttls.log" | tail -n 2 | awk '{printf "worker %s: %s logins; ", $NF, $5}')"
  else
    fail async_workers_spread "a worker counted no login: $(grep '^STATS' "$LOGDIR/server-starttls.log" | tail -n 2 | tr '\n' ' ')"
  fi
  check async_workers_messages 40 0 -- --target "127.0.0.1:$PORT" "${COMMON[@]}" --users 20 \
    --concurrency 40 --duration 3 --scenario messages --message-rate 10
  # 40 sessions each sending to the next: with two workers about half the pairs are split between
  # them, so without routing across workers about half the messages would bounce. At least 90% arrive.
  if grep -Eo 'messages +[0-9]+ sent, [0-9]+ received' "$LOGDIR/async_workers_messages.out" \
    | awk '{sent = $2; got = $4} END {exit !(sent > 0 && got * 10 >= sent * 9)}'; then
    pass async_workers_delivered "$(grep -Eo 'messages +[0-9]+ sent, [0-9]+ received, [0-9]+ errors' "$LOGDIR/async_workers_messages.out")"
  else
    fail async_workers_delivered "no message sent and received across the workers"
  fi
fi
cleanup

# ---------- Prosody (interop/prosody/start.sh), when run.sh started it
if [ -n "${PEER_ENV:-}" ] && [ -f "$PEER_ENV" ]; then
  # shellcheck disable=SC1090
  . "$PEER_ENV"
  PCOMMON=(--target "$XMPP_HOST:$XMPP_PORT" --domain "$XMPP_DOMAIN" --password load-secret --ca-file "$XMPP_CA_CERT")
  check prosody_register_and_login 200 0 -- "${PCOMMON[@]}" --users 10 --concurrency 10 --duration 40 \
    --max-logins 200 --register
else
  echo "(no PEER_ENV: Prosody not started; its case is left out)"
fi
finish
