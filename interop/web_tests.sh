#!/usr/bin/env bash
# XMPP over WebSocket (RFC 7395) and BOSH (XEP-0206) with real peers, both roles. Run by interop/run.sh (so by .ci/run) with
# peer.env exported; by hand against a running Prosody:
#     set -a; . /path/to/peer.env; set +a; bash interop/web_tests.sh
#
#  1. client role: the client tools (hosts/src/bin/client.rs, tokio_client.rs) against Prosody 13's
#     mod_websocket (XMPP_WS_URL) and mod_bosh (XMPP_BOSH_URL), plain HTTP on loopback, treated as secure:
#     SCRAM-SHA-1, PLAIN, a wrong password (sasl not-authorized), each OK login with a message to itself.
#  2. server role: the example server (hosts/src/bin/server.rs --tls none --websocket 127.0.0.1:0 --bosh
#     127.0.0.1:0) with real browser clients in headless Chromium (Debian's chromium): Strophe.js
#     (interop/web/strophe.html; over WebSocket and over BOSH) and xmpp.js (its browser bundle,
#     interop/web/xmppjs.html; WebSocket) log in, send presence and a message to
#     their own full JID, get it back, disconnect; a wrong password fails. The pages come from another
#     origin (interop/web/wire_proxy.py http, which also takes each page's verdict on POST /result).
#     xmpp.js's browser bundle has no SCRAM (PLAIN only), so its SCRAM-SHA-1 runs in node
#     (interop/web/xmppjs_ws.mjs) against the same server.
#     Installs node, npm, chromium and the npm packages when missing (interop/web/setup.sh).
#  3. the same server with TLS (a self-signed certificate for localhost, openssl; Chromium told to
#     ignore certificate errors): Strophe.js over https:// BOSH and over wss://.
#
# Needs XMPP_WS_URL, XMPP_BOSH_URL and XMPP_DOMAIN (peer.env; without them part 1 is one FAIL). Every case is bounded
# (CASE_TIMEOUT, default 30 s; SETUP_TIMEOUT for the installs, default 600 s). Logs in LOGDIR (default
# $WORKDIR/web_tests). Prints PASS/FAIL per case, then "web_tests: N passed, N failed"; exit 0 only when
# nothing failed.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
WEB="$HERE/web"
CASE_TIMEOUT="${CASE_TIMEOUT:-30}"
PASSED=0 FAILED=0
LOGDIR="${LOGDIR:-${WORKDIR:-$(mktemp -d -t web-tests.XXXXXX)}/web_tests}"
mkdir -p "$LOGDIR"
SERVER_PID="" TLS_SERVER_PID="" PAGE_PID="" CHROME_PID=""
cleanup() {
  [ -z "$CHROME_PID" ] || kill -- "-$CHROME_PID" 2>/dev/null || true
  [ -z "$PAGE_PID" ] || kill "$PAGE_PID" 2>/dev/null || true
  [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true
  [ -z "$TLS_SERVER_PID" ] || kill "$TLS_SERVER_PID" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
finish() {
  echo "web_tests: $PASSED passed, $FAILED failed"
  [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
  exit $?
}
pass() { PASSED=$((PASSED + 1)); echo "PASS $1: $2"; }
fail() {
  FAILED=$((FAILED + 1)); echo "FAIL $1: $2"
  [ -z "${3:-}" ] || [ ! -f "$3" ] || tail -n 8 "$3" | cut -c1-300 | sed 's/^/  | /'
}
# verdict NAME EXPECT(ok|error:REGEX) LINE [LOG]
verdict() {
  local name="$1" expect="$2" line="$3"
  if [ "$expect" = ok ]; then
    [[ "$line" == OK\ * ]] && { pass "$name" "$line"; return 0; }
  elif [[ "$line" == ERROR\ * ]] && grep -Eq -- "${expect#error:}" <<<"$line"; then
    pass "$name" "$line"; return 0
  fi
  fail "$name" "expected $expect, got '${line:-nothing}'" "${4:-}"; return 1
}

# ---------- build
echo "== building client, tokio_client, server"
if ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin client --bin tokio_client --bin server) \
  >"$LOGDIR/build.log" 2>&1; then
  fail build "cargo build -p xmpp-sansio-hosts" "$LOGDIR/build.log"; finish
fi
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BIN="${TARGET_DIR:-$ROOT/target}/debug"

# ---------- 1. client role against Prosody over WebSocket and BOSH
client_case() { # NAME EXPECT TRANSPORT(websocket|bosh) TOOL ARGS...
  local name="$1" expect="$2" transport="$3" tool="$4" out="$LOGDIR/$1.out" line url="$XMPP_WS_URL"
  local first="^SEND: <open xmlns='urn:ietf:params:xml:ns:xmpp-framing'"
  shift 4
  if [ "$transport" = bosh ]; then url="$XMPP_BOSH_URL" first="^SEND: <body rid='[0-9]*' to="; fi
  timeout "$CASE_TIMEOUT" "$BIN/$tool" --transport "$transport" --url "$url" --transcript "$@" \
    >"$out" 2>&1 </dev/null
  line="$(grep -E '^(OK|ERROR) ' "$out" | tail -n 1)"
  verdict "$name" "$expect" "$line" "$out" || return 0
  # The wire is RFC 7395 (<open/> first) or XEP-0206 (a session creation <body/> first): no stream
  # header, no STARTTLS.
  if ! grep -q "$first" "$out" || grep -q 'stream:stream\|starttls' "$out"; then
    PASSED=$((PASSED - 1)); fail "$name" "not $transport framing on the wire" "$out"
  fi
}
if [ -z "${XMPP_WS_URL:-}" ] || [ -z "${XMPP_BOSH_URL:-}" ] || [ -z "${XMPP_DOMAIN:-}" ]; then
  fail prosody_web "XMPP_WS_URL / XMPP_BOSH_URL / XMPP_DOMAIN not set (export Prosody's peer.env)"
else
  echo "== client role: the client tools against Prosody at $XMPP_WS_URL and $XMPP_BOSH_URL"
  J="alice@$XMPP_DOMAIN"
  for t in websocket bosh; do
    p="${t/websocket/ws}"
    client_case "${p}_client_scram_sha1" ok "$t" client --jid "$J" --password secret --mechanism SCRAM-SHA-1
    client_case "${p}_client_plain" ok "$t" client --jid "$J" --password secret --mechanism PLAIN
    client_case "${p}_client_wrong_password" "error:^ERROR sasl not-authorized" "$t" client --jid "$J" --password wrong
    client_case "${p}_tokio_client_scram" ok "$t" tokio_client --jid "$J" --password secret
  done
fi

# ---------- 2. server role with browsers
echo "== server role: Strophe.js and xmpp.js in headless Chromium against the example server"
if ! timeout "${SETUP_TIMEOUT:-600}" bash "$WEB/setup.sh" >"$LOGDIR/setup.log" 2>&1; then
  fail web_setup "interop/web/setup.sh (node, npm, chromium, npm packages)" "$LOGDIR/setup.log"; finish
fi
: >"$LOGDIR/server.out"
"$BIN/server" --listen 127.0.0.1:0 --websocket 127.0.0.1:0 --bosh 127.0.0.1:0 --domain localhost --tls none \
  --user alice:secret >"$LOGDIR/server.out" 2>&1 </dev/null &
SERVER_PID=$!
: >"$LOGDIR/page.out"
python3 "$WEB/wire_proxy.py" http --upstream http://127.0.0.1:9 --transcript "$LOGDIR/page.txt" --static "$WEB" \
  >"$LOGDIR/page.out" 2>"$LOGDIR/page.err" </dev/null &
PAGE_PID=$!
WS_PORT="" BOSH_PORT="" PAGE_PORT=""
for _ in $(seq 1 100); do
  WS_PORT="$(sed -n 's/^LISTENING-WS 127.0.0.1:\([0-9]*\) ws$/\1/p' "$LOGDIR/server.out")"
  BOSH_PORT="$(sed -n 's/^LISTENING-BOSH 127.0.0.1:\([0-9]*\) http$/\1/p' "$LOGDIR/server.out")"
  PAGE_PORT="$(sed -n 's/^LISTENING //p' "$LOGDIR/page.out")"
  [ -z "$WS_PORT" ] || [ -z "$BOSH_PORT" ] || [ -z "$PAGE_PORT" ] || break
  sleep 0.1
done
[ -n "$WS_PORT" ] && [ -n "$BOSH_PORT" ] || { fail server_start "no LISTENING-WS or LISTENING-BOSH line" "$LOGDIR/server.out"; finish; }
[ -n "$PAGE_PORT" ] || { fail page_server "wire_proxy.py http did not start" "$LOGDIR/page.err"; finish; }
SERVICE="ws://127.0.0.1:$WS_PORT/xmpp-websocket"
N=0
# The server whose log the cases read, the service the pages use, extra Chromium flags: set per case.
SERVER_LOG="$LOGDIR/server.out" CHROME_FLAGS=""
# shellcheck source=web/chromium.sh
. "$WEB/chromium.sh"
# server_saw FROM REGEX: a line of the server's log after its line FROM matches
server_saw() { tail -n +"$(($1 + 1))" "$SERVER_LOG" | grep -Eq -- "$2"; }
browser_case() { # NAME EXPECT PAGE QUERY SERVER_LINE_REGEX
  local name="$1" expect="$2" page="$3" query="$4" want="$5" res="" from
  N=$((N + 1))
  from="$(wc -l <"$SERVER_LOG")"
  # shellcheck disable=SC2086 # CHROME_FLAGS: words
  chromium_verdict "$LOGDIR/page.out" "$LOGDIR/$name.chromium.log" -- \
    chromium --headless=new --no-sandbox --disable-gpu --no-first-run $CHROME_FLAGS \
    --no-default-browser-check --user-data-dir="$LOGDIR/chromium-$N" \
    "http://127.0.0.1:$PAGE_PORT/$page?service=$SERVICE&$query"
  res="$VERDICT"
  rm -rf "$LOGDIR/chromium-$N"
  verdict "$name" "$expect" "$res" "$LOGDIR/page.err" || return 0
  # The server saw it too (LOGIN ... websocket, or AUTHFAIL).
  sleep 0.3
  if ! server_saw "$from" "$want"; then
    PASSED=$((PASSED - 1)); fail "$name" "the page says '$res' but no server line matches /$want/" "$SERVER_LOG"
  fi
}
# Strophe.js over WebSocket and over BOSH (XEP-0206; its requests are cross-origin POSTs, CORS preflight
# included).
WS_SERVICE="$SERVICE"
for t in ws bosh; do
  mark=websocket SERVICE="$WS_SERVICE"
  [ "$t" = ws ] || mark=bosh SERVICE="http://127.0.0.1:$BOSH_PORT/http-bind"
  for mech in SCRAM-SHA-1 PLAIN; do
    short="${mech%%-*}" && short="${short,,}" && r="strophe-$t-$short"
    browser_case "strophe_${t}_$short" ok strophe.html "jid=alice@localhost/$r&password=secret&mech=$mech" \
      "^LOGIN alice@localhost/$r via $mech .*$mark\)\$"
  done
  browser_case "strophe_${t}_wrong_password" "error:auth-failed" strophe.html \
    "jid=alice@localhost/strophe-wrong&password=wrong&mech=SCRAM-SHA-1" '^AUTHFAIL alice via SCRAM-SHA-1: not-authorized'
done
SERVICE="$WS_SERVICE"
# xmpp.js 0.14's browser bundle leaves SCRAM out ("browser": {"@xmpp/sasl-scram-sha-1": false} in its
# package.json): in the browser it has PLAIN (and ANONYMOUS) only. Its SCRAM-SHA-1 runs in node below.
browser_case xmppjs_ws_plain ok xmppjs.html "domain=localhost&username=alice&password=secret&mech=PLAIN" \
  '^LOGIN alice@localhost/web via PLAIN .*websocket\)$'
browser_case xmppjs_ws_wrong_password "error:not-authorized" xmppjs.html \
  "domain=localhost&username=alice&password=wrong&mech=PLAIN" '^AUTHFAIL alice via PLAIN: not-authorized'
# xmpp.js in node (interop/web/xmppjs_ws.mjs): SCRAM-SHA-1, which its browser bundle lacks.
node_case() { # NAME EXPECT SERVER_LINE_REGEX ARGS...
  local name="$1" expect="$2" want="$3" out="$LOGDIR/$1.out" flag=() major line from
  shift 3
  from="$(wc -l <"$LOGDIR/server.out")"
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -lt 20 ] || [ "$major" -ge 22 ] || flag=(--experimental-websocket)
  (cd "$WEB" && timeout "$CASE_TIMEOUT" node "${flag[@]}" xmppjs_ws.mjs --service "$SERVICE" --domain localhost \
    --username alice "$@") >"$out" 2>&1 </dev/null
  line="$(grep -E '^(OK|ERROR)' "$out" | tail -n 1)"
  verdict "$name" "$expect" "$line" "$out" || return 0
  sleep 0.3
  if ! server_saw "$from" "$want"; then
    PASSED=$((PASSED - 1)); fail "$name" "xmpp.js says '$line' but no server line matches /$want/" "$LOGDIR/server.out"
  fi
}
node_case xmppjs_node_ws_scram ok '^LOGIN alice@localhost/web via SCRAM-SHA-1 .*websocket\)$' \
  --password secret --mech SCRAM-SHA-1 --resource web
node_case xmppjs_node_ws_wrong_password "error:not-authorized" '^AUTHFAIL alice via SCRAM-SHA-1: not-authorized' \
  --password wrong --mech SCRAM-SHA-1

# ---------- 3. https:// and wss:// (the server's certificate: self-signed for localhost)
echo "== server role over TLS: Strophe.js over https:// BOSH and wss://"
CERT="$LOGDIR/cert.pem" KEY="$LOGDIR/key.pem" SERVER_LOG="$LOGDIR/tls-server.out"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 2 \
  -keyout "$KEY" -out "$CERT" -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
  >"$LOGDIR/openssl.log" 2>&1; then
  fail tls_setup "openssl req" "$LOGDIR/openssl.log"; finish
fi
: >"$SERVER_LOG"
"$BIN/server" --listen 127.0.0.1:0 --websocket 127.0.0.1:0 --bosh 127.0.0.1:0 --domain localhost \
  --cert "$CERT" --key "$KEY" --user alice:secret >"$SERVER_LOG" 2>&1 </dev/null &
TLS_SERVER_PID=$!
WSS_PORT="" HTTPS_PORT=""
for _ in $(seq 1 100); do
  WSS_PORT="$(sed -n 's/^LISTENING-WS 127.0.0.1:\([0-9]*\) wss$/\1/p' "$SERVER_LOG")"
  HTTPS_PORT="$(sed -n 's/^LISTENING-BOSH 127.0.0.1:\([0-9]*\) https$/\1/p' "$SERVER_LOG")"
  [ -z "$WSS_PORT" ] || [ -z "$HTTPS_PORT" ] || break
  sleep 0.1
done
[ -n "$WSS_PORT" ] && [ -n "$HTTPS_PORT" ] || { fail tls_server_start "no LISTENING-WS wss or LISTENING-BOSH https line" "$SERVER_LOG"; finish; }
CHROME_FLAGS="--ignore-certificate-errors"
SERVICE="https://localhost:$HTTPS_PORT/http-bind"
browser_case strophe_https_bosh_scram ok strophe.html "jid=alice@localhost/strophe-https&password=secret&mech=SCRAM-SHA-1" \
  '^LOGIN alice@localhost/strophe-https via SCRAM-SHA-1 .*TLSv1\.[23].*bosh\)$'
SERVICE="wss://localhost:$WSS_PORT/xmpp-websocket"
browser_case strophe_wss_scram ok strophe.html "jid=alice@localhost/strophe-wss&password=secret&mech=SCRAM-SHA-1" \
  '^LOGIN alice@localhost/strophe-wss via SCRAM-SHA-1 .*TLSv1\.[23].*websocket\)$'
finish
