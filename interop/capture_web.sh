#!/usr/bin/env bash
# Record real web-client exchanges with Prosody over RFC 7395 WebSocket and XEP-0124/0206 BOSH as
# fixtures (tests/fixtures/prosody/prosody13_ws_*.txt, prosody13_bosh_*.txt). Run by hand, not by CI.
#
# Usage: bash interop/capture_web.sh [OUTDIR]          (default OUTDIR: tests/fixtures/prosody)
#
# Clients: xmpp.js (@xmpp/client, in node) over WebSocket; Strophe.js in headless Chromium over BOSH
# (and once over WebSocket). interop/web/wire_proxy.py sits between client and Prosody and writes the
# wire: one WebSocket message or one HTTP body per line. Installs what is missing: apt nodejs, npm,
# chromium; npm packages (interop/web/package.json) into interop/web/node_modules; a venv with the
# websockets package in interop/web/.venv. Starts its own Prosody (interop/prosody/start.sh with
# PROSODY_SASL2=0, so localhost offers RFC 6120 SASL + bind only, which both clients use) and stops it.
# Prints PASS/UNEXPECTED per capture and "capture_web: N passed, N failed".
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
WEB="$HERE/web"
OUT="${1:-$ROOT/tests/fixtures/prosody}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
log() { echo "[capture_web] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- tools
# node, npm, chromium, python3-venv and the npm packages: interop/web/setup.sh (shared with web_tests.sh)
NODE_MAJOR="$(bash "$WEB/setup.sh" | sed -n 's/^NODE_MAJOR=//p')"
[ -n "$NODE_MAJOR" ] || die "interop/web/setup.sh failed"
PY="$WEB/.venv/bin/python"
if ! "$PY" -c 'import websockets; assert websockets.__version__ == "15.0.1"' 2>/dev/null; then
  python3 -m venv "$WEB/.venv"
  "$WEB/.venv/bin/pip" install -q "websockets==15.0.1" >&2
fi
ver() { node -p "require('$WEB/node_modules/$1/package.json').version"; }
XMPPJS="@xmpp/client $(ver @xmpp/client)"
STROPHE="strophe.js $(ver strophe.js)"
CHROMIUM="$(chromium --version 2>/dev/null | head -n1)"
NODE="node $(node --version)"
WSPY="websockets $("$PY" -c 'import websockets; print(websockets.__version__)')"

# ---------------------------------------------------------------- Prosody (its own, stopped on exit)
WD="$WEB/.work/prosody"
PROXY_PID="" CHROME_PID="" PE=""
cleanup() {
  [ -z "$PROXY_PID" ] || kill "$PROXY_PID" 2>/dev/null || true
  [ -z "$CHROME_PID" ] || kill -- "-$CHROME_PID" 2>/dev/null || true
  [ -z "$PE" ] || bash "$HERE/prosody/stop.sh" "$PE" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
rm -rf "$WD"
PE="$(PROSODY_WORKDIR="$WD" PROSODY_SASL2=0 bash "$HERE/prosody/start.sh" | sed -n 's/^PEER_ENV=//p')"
[ -n "$PE" ] || die "prosody/start.sh failed"
set -a
# shellcheck source=/dev/null
. "$PE"
set +a
HDR_SERVER="# server: Prosody $SERVER_VERSION (Debian 12 package, bookworm-backports), mod_websocket + mod_bosh on plain HTTP 127.0.0.1 (consider_websocket_secure, consider_bosh_secure), internal_hashed (SCRAM-SHA-1 storage), $XMPP_DOMAIN modules: ${XMPP_MODULES:-none} (PROSODY_SASL2=0); captured $(date -u +%Y-%m-%dT%H:%M:%SZ)"
HDR_ACCOUNT="# account: alice@$XMPP_DOMAIN, password secret (test account made by interop/prosody/start.sh)"

# ---------------------------------------------------------------- one capture
PASSED=0 FAILED=0 NPROXY=0
start_proxy() { # mode upstream transcript header-lines...
  local mode="$1" up="$2" tr="$3" i
  shift 3
  local hargs=()
  for h in "$@"; do hargs+=(--header "$h"); done
  NPROXY=$((NPROXY + 1))
  PROXY_OUT="$WEB/.work/proxy$NPROXY.out"
  : > "$PROXY_OUT"   # exists before the background redirection opens it
  "$PY" "$WEB/wire_proxy.py" "$mode" --upstream "$up" --transcript "$tr" --static "$WEB" "${hargs[@]}" \
    > "$PROXY_OUT" 2> "$WEB/.work/proxy$NPROXY.err" &
  PROXY_PID=$!
  for i in $(seq 1 50); do
    PROXY_PORT="$(sed -n 's/^LISTENING //p' "$PROXY_OUT" 2>/dev/null || true)"
    [ -z "$PROXY_PORT" ] || return 0
    sleep 0.1
  done
  die "wire_proxy.py did not start: $(cat "$WEB/.work/proxy$NPROXY.err")"
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; PROXY_PID=""; }
verdict() { # name expect(ok|fail) result-line
  local name="$1" expect="$2" res="$3"
  if { [ "$expect" = ok ] && [[ "$res" == OK* ]]; } || { [ "$expect" = fail ] && [[ "$res" == ERROR* ]]; }; then
    PASSED=$((PASSED + 1)); echo "PASS $name: $res"
  else
    FAILED=$((FAILED + 1)); echo "UNEXPECTED $name: ${res:-no result}"
  fi
}
WS_LINE="# C: = client->server WebSocket text message, S: = server->client, one message per line (RFC 7395 framing, subprotocol xmpp); -- lines are the proxy's notes"
BOSH_LINE="# C: = body of an HTTP POST to /http-bind (client->server), S: = body of its HTTP answer, one body per line; '-- #n' lines pair a request with its answer (Prosody's answer to the proxy, which the client may have given up on); '-- result:' is the page's verdict"

xmppjs() { # name expect description client-args...     (TRIES=n: retry until the expected end, for races)
  local name="prosody13_ws_$1" expect="$2" desc="$3" res try flag=()
  shift 3
  [ "$NODE_MAJOR" -lt 20 ] || [ "$NODE_MAJOR" -ge 22 ] || flag=(--experimental-websocket)
  for try in $(seq 1 "${TRIES:-1}"); do
    start_proxy ws "$XMPP_WS_URL" "$OUT/$name.txt" \
      "# source: interop/capture_web.sh: $XMPPJS ($NODE) over RFC 7395 WebSocket to Prosody, wire recorded by interop/web/wire_proxy.py ($WSPY): $desc" \
      "$HDR_SERVER" "$HDR_ACCOUNT; node interop/web/xmppjs_ws.mjs $*" "$WS_LINE"
    res="$(cd "$WEB" && timeout 40 node "${flag[@]}" xmppjs_ws.mjs --service "ws://127.0.0.1:$PROXY_PORT/xmpp-websocket" \
      --domain "$XMPP_DOMAIN" --username alice "$@" 2>>"$WEB/.work/client.err" | tail -n1)" || true
    sleep 0.5   # let the last close frames through the proxy
    stop_proxy
    if [ "$expect" = ok ] && [[ "$res" == OK* ]]; then break; fi
    if [ "$expect" = fail ] && [[ "$res" == ERROR* ]]; then break; fi
    log "$name: try $try ended with '${res:-nothing}'"
  done
  verdict "$name" "$expect" "$res"
}
strophe() { # name transport(bosh|ws) expect description mech password [extra query, e.g. &wait=2&idle=5]
  local name="prosody13_$2_$1" transport="$2" expect="$3" desc="$4" mech="$5" pw="$6" extra="${7:-}" res="" service mode up line
  if [ "$transport" = bosh ]; then
    mode=http up="http://127.0.0.1:$XMPP_HTTP_PORT" line="$BOSH_LINE" what="XEP-0124/0206 BOSH"
  else
    mode=ws up="$XMPP_WS_URL" line="$WS_LINE" what="RFC 7395 WebSocket"
  fi
  start_proxy "$mode" "$up" "$OUT/$name.txt" \
    "# source: interop/capture_web.sh: $STROPHE in headless $CHROMIUM (page interop/web/strophe.html) over $what to Prosody, wire recorded by interop/web/wire_proxy.py: $desc" \
    "$HDR_SERVER" "$HDR_ACCOUNT; mechanism $mech, password ${pw}${extra:+; page query $extra}" "$line"
  local page_port="$PROXY_PORT" ws_pid=""
  if [ "$transport" = bosh ]; then
    service="/http-bind"
  else # the page still comes from an HTTP proxy (with no transcript of its own)
    ws_pid="$PROXY_PID" ws_port="$PROXY_PORT"
    start_proxy http "http://127.0.0.1:$XMPP_HTTP_PORT" "$WEB/.work/page.txt"
    page_port="$PROXY_PORT"
    service="ws://127.0.0.1:$ws_port/xmpp-websocket"
  fi
  local url="http://127.0.0.1:$page_port/strophe.html?service=$service&jid=alice@$XMPP_DOMAIN/web&password=$pw&mech=$mech$extra"
  setsid chromium --headless=new --no-sandbox --disable-gpu --no-first-run --no-default-browser-check \
    --user-data-dir="$WEB/.work/chromium-$NPROXY" "$url" > "$WEB/.work/chromium-$NPROXY.log" 2>&1 &
  CHROME_PID=$!
  for _ in $(seq 1 600); do
    res="$(sed -n 's/^RESULT //p' "$PROXY_OUT" 2>/dev/null || true)"
    [ -z "$res" ] || break
    sleep 0.1
  done
  kill -- "-$CHROME_PID" 2>/dev/null || true
  wait "$CHROME_PID" 2>/dev/null || true
  CHROME_PID=""
  sleep 0.5
  stop_proxy
  if [ -n "$ws_pid" ]; then
    PROXY_PID="$ws_pid"; stop_proxy
    echo "-- result: ${res:-none}" >> "$OUT/$name.txt"
  fi
  verdict "$name" "$expect" "$res"
}

rm -rf "$WEB/.work/chromium"* "$WEB/.work/proxy"*
mkdir -p "$WEB/.work"
: > "$WEB/.work/client.err"
xmppjs scram ok "SCRAM-SHA-1 login, bind (XEP-0198 enabled by xmpp.js), a message to its own full JID, close" --password secret --mech SCRAM-SHA-1
xmppjs plain ok "PLAIN login, bind, a message to its own full JID, close" --password secret --mech PLAIN
xmppjs wrong_password fail "SCRAM-SHA-1 with a wrong password: <failure><not-authorized/>, close" --password wrong --mech SCRAM-SHA-1
xmppjs sm_bad_ack_stream_error fail "SCRAM-SHA-1, bind, XEP-0198 enabled, a message to itself, then a hand-made <a h='5'/> acking more than Prosody sent: Prosody ends the stream with undefined-condition (its <stream:error> over WebSocket). xmpp.js 0.14 sends such an ack by itself now and then, when the echo of an initial presence races its <enable/>" --password secret --mech SCRAM-SHA-1 --bad-ack
strophe scram bosh ok "session creation, SCRAM-SHA-1, restart after SASL, bind, session, presence and a message to its own full JID, terminate" SCRAM-SHA-1 secret
strophe plain bosh ok "session creation, PLAIN, restart, bind, session, presence and a message to its own full JID, terminate" PLAIN secret
strophe wrong_password bosh fail "session creation, SCRAM-SHA-1 with a wrong password: <failure><not-authorized/>; Strophe.js sends no terminate after it (the session is left to the inactivity timeout)" SCRAM-SHA-1 wrong
strophe scram_idle_wait bosh ok "session creation with wait=2, SCRAM-SHA-1, restart, bind, session, presence and a message to itself, then 5 s idle: Prosody holds each empty request and answers it empty at wait; Strophe.js gives up on a request after floor(1.1 x wait) = 2 s, as Prosody answers it, and now and then resends the same rid (XEP-0124 retransmission), which Prosody answers too; terminate while a request is held" SCRAM-SHA-1 secret "&wait=2&idle=5"
strophe strophe_scram ws ok "SCRAM-SHA-1 login, bind, session, presence and a message to its own full JID, close" SCRAM-SHA-1 secret
echo "capture_web: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
