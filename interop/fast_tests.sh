#!/usr/bin/env bash
# FAST (XEP-0484) over SASL2 (XEP-0388) and Bind2 (XEP-0386) with a real client: xmpp.js (@xmpp/client, pinned
# in interop/clients/xmppjs/package.json) in Node over TCP and STARTTLS, interop/clients/xmppjs/fast_login.mjs:
#   <peer>-fast:      a password login over SASL2 with Bind2 that asks for a FAST token and gets one, a second
#                     connection (same user-agent id) with the token and no password that logs in with the
#                     FAST mechanism, a message to its own full JID there;
#   <peer>-bad-token: the same with the token altered before the second login: the FAST login is refused.
# Peers: Prosody 13 with mod_sasl2, mod_sasl2_bind2, mod_sasl2_fast (interop/prosody/start.sh; its
# XMPP_HOST XMPP_PORT XMPP_DOMAIN XMPP_CA_CERT from peer.env, as interop/run.sh exports them), and the example
# server once it offers SASL2 and FAST (`server --sasl2`; skipped while its --help names no FAST).
# Installs node/npm (apt) and the npm package when missing (clients/xmppjs/setup.sh). One PASS/FAIL/SKIP line
# per case (each bounded by CASE_TIMEOUT, 40 s), then "fast_tests: N passed, N failed". Exit 0 only when
# nothing failed.   set -a; . /path/to/peer.env; set +a; bash interop/fast_tests.sh
# Env: BUILD=0 (use the server already built), LOGDIR (default $WORKDIR/fast_tests, or a temp dir).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
JS="$HERE/clients/xmppjs"
CASE_TIMEOUT="${CASE_TIMEOUT:-40}"
PIDS=()
stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

# shellcheck source=harness.sh
. "$HERE/harness.sh"
harness_logdir fast_tests
cleanup() { stop_all; }
finish() { harness_finish fast_tests; }

echo "== node and xmpp.js"
if ! timeout "${SETUP_TIMEOUT:-600}" bash "$JS/setup.sh" >"$LOGDIR/setup.log" 2>&1; then
  fail xmppjs_setup "interop/clients/xmppjs/setup.sh (node, npm, @xmpp/client)"; tail -n 5 "$LOGDIR/setup.log" | sed 's/^/  | /'
  finish
fi

# fast_cases PREFIX SERVERLOG CA SERVICE DOMAIN: both cases against one server.
fast_cases() {
  local p="$1" slog="$2" ca="$3" service="$4" domain="$5"
  local js=(env NODE_EXTRA_CA_CERTS="$ca" node "$JS/fast_login.mjs" --service "$service" --domain "$domain"
    --username alice --password secret)
  OUTPAT='^-- FAST HT-[A-Z0-9-]+ login as ' case_ "$p-fast" ok "$slog" "" -- "${js[@]}" --resource "fast-$p"
  OUTPAT='^-- FAST token received for HT-' case_ "$p-bad-token" "error:FAST HT-[A-Z0-9-]+ refused: (not-authorized|credentials-expired)" \
    "$slog" "" -- "${js[@]}" --resource "fast-$p-bad" --bad-token
}

# ---------- Prosody 13 (mod_sasl2, mod_sasl2_bind2, mod_sasl2_fast)
missing=""
for v in XMPP_HOST XMPP_PORT XMPP_DOMAIN XMPP_CA_CERT; do [ -n "${!v:-}" ] || missing="$missing $v"; done
if [ -n "$missing" ]; then
  skip "prosody-*" "not set:$missing (export the peer's peer.env first)"
elif [[ " ${XMPP_MODULES:-sasl2_fast} " != *" sasl2_fast "* ]]; then
  skip "prosody-*" "Prosody runs without mod_sasl2_fast (XMPP_MODULES=$XMPP_MODULES)"
else
  : >"$LOGDIR/prosody-none.log"
  fast_cases prosody "$LOGDIR/prosody-none.log" "$XMPP_CA_CERT" "xmpp://$XMPP_HOST:$XMPP_PORT" "$XMPP_DOMAIN"
fi

# ---------- the example server, once it offers SASL2 and FAST (--sasl2)
if [ "${BUILD:-1}" = 1 ] && ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin server) >"$LOGDIR/build.log" 2>&1; then
  fail build "cargo build -p xmpp-sansio-hosts --bin server"; tail -n 20 "$LOGDIR/build.log" | sed 's/^/  | /'
  finish
fi
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BIN="${TARGET_DIR:-$ROOT/target}/debug/server"
if ! "$BIN" --help 2>&1 | grep -q -- '--sasl2' || ! "$BIN" --help 2>&1 | grep -q 'FAST'; then
  skip "server-*" "the example server offers no FAST yet (its --help names no FAST: issue 16)"
elif ! command -v openssl >/dev/null 2>&1; then
  skip "server-*" "no openssl for the throw-away certificate"
else
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 2 \
    -keyout "$LOGDIR/key.pem" -out "$LOGDIR/cert.pem" -subj "/CN=sansio.test" \
    -addext "subjectAltName=DNS:sansio.test" >"$LOGDIR/openssl.log" 2>&1
  slog="$LOGDIR/server.log"
  "$BIN" --listen 127.0.0.1:0 --domain sansio.test --tls starttls --cert "$LOGDIR/cert.pem" --key "$LOGDIR/key.pem" \
    --user alice:secret --sasl2 >"$slog" 2>&1 &
  PIDS+=($!)
  PORT="$(harness_port "$slog")"
  if [ -z "$PORT" ]; then
    fail "server-start" "no LISTENING line"; tail -n 5 "$slog" | sed 's/^/  | /'
  else
    fast_cases server "$slog" "$LOGDIR/cert.pem" "xmpp://127.0.0.1:$PORT" sansio.test
  fi
fi
finish
