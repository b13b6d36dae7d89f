#!/usr/bin/env bash
# sso-proxy end to end (issue 14): an MIT KDC, Prosody 13 with GSSAPI (interop/kerberos/), the sso-proxy tool
# (hosts crate, feature gssapi) and headless Chromium loading interop/web/sso.html (Strophe.js) from the proxy
# itself (--static-dir), which connects over BOSH and, separately, over WebSocket with the user's JID and no password:
#   - alice with a forwardable ticket: HTTP Negotiate with delegation, EXTERNAL offered alone, GSSAPI upstream with
#     her delegated ticket, logged in, a message to herself comes back; the proxy logs
#     "SSO alice@EXAMPLE.TEST as alice@xmpp.example.test via GSSAPI";
#   - no ticket: the 401 reaches the page, no login; with ?sso=0 (a session without single sign-on) the page sees
#     the server's own mechanisms (GSSAPI), no EXTERNAL, and cannot log in without a password;
#   - a principal the server refuses (carol/admin, no valid local part, EXTERNAL without an authorization
#     identity): the browser gets not-authorized from the server's refusal;
#   - alice's ticket asking for bob's JID: invalid-authzid; a ticket that is not forwardable: not-authorized;
#   - a missing keytab and a keytab without the HTTP key: a clear error when the proxy starts; --help lists every flag;
#   - the HTTP rules with curl: a preflight from an allowed origin answered without authentication (that origin,
#     credentials, Vary: Origin), the 401 with the same headers, another origin refused; a BOSH session created by
#     alice's Negotiate token refuses carol/admin's (403) and a request without one (401), then takes alice's;
#   - --cert/--key: the page over https;
#   - the same chain with the example server (server --gssapi-keytab) upstream instead of Prosody;
#   - the figure: the time from the page's first request to its logged-in session through the proxy (BOSH), beside
#     the same Chromium logging in to Prosody's own BOSH with a password (peer.env's Prosody, when run by run.sh).
# Each proxy session's wire transcript goes to $LOGDIR/transcripts (SSO_PROXY_TRANSCRIPT); refresh the replay
# fixtures from there (hosts/tests/fixtures/sso/README.md).
#
#   bash interop/sso_tests.sh      # root, Debian bookworm; interop/run.sh runs it too
# Env: CASE_TIMEOUT (25 s), LOGDIR (default $WORKDIR/sso_tests, else a temp dir), KEEP_LOGS=1, FIGURE_RUNS (5).
# Writes /etc/hosts entries and a Chromium policy file (removed at the end): not to be run twice at once.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
KRB="$HERE/kerberos"
WEB="$HERE/web"
CASE_TIMEOUT="${CASE_TIMEOUT:-25}"
FIGURE_RUNS="${FIGURE_RUNS:-5}"
T0=$SECONDS

# shellcheck source=harness.sh
. "$HERE/harness.sh"
# shellcheck source=web/chromium.sh
. "$WEB/chromium.sh"
harness_logdir sso_tests
KWD="$LOGDIR/krb"
mkdir -p "$KWD" "$LOGDIR/transcripts"
PIDS=()
CHROME_PID=""
CHROMIUM_POLICY=/etc/chromium/policies/managed/interop-sso-tests-$$.json
stop_all() {
  local p
  [ -z "$CHROME_PID" ] || kill -- "-$CHROME_PID" 2>/dev/null || true
  [ -f "$CHROMIUM_POLICY" ] && { $SUDO rm -f "$CHROMIUM_POLICY" || true; }
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
  [ -d "$KWD/pids" ] && bash "$KRB/stop.sh" "$KWD" >"$LOGDIR/stop.log" 2>&1 || true
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM
cleanup() { stop_all; echo "(sso_tests: $((SECONDS - T0))s)"; }
finish() { harness_finish sso_tests; }

# ---------- 1. packages, the web client, KDC, Prosody
. "$KRB/lib.sh"
if ! krb_apt_install libkrb5-dev libclang-dev pkg-config >"$LOGDIR/apt.log" 2>&1; then
  tail -n 20 "$LOGDIR/apt.log"; echo "FAIL setup: apt-get install libkrb5-dev libclang-dev pkg-config"
  FAILED=1; finish
fi
if ! timeout "${SETUP_TIMEOUT:-600}" bash "$WEB/setup.sh" >"$LOGDIR/web_setup.log" 2>&1; then
  fail web_setup "interop/web/setup.sh (node, npm, chromium, strophe.js)"; finish
fi
if KRB_WORKDIR="$KWD" bash "$KRB/start-kdc.sh" >"$LOGDIR/kdc_start.out" 2>&1; then
  pass kdc_start "MIT KDC for EXAMPLE.TEST on loopback"
else
  fail kdc_start "interop/kerberos/start-kdc.sh"; finish
fi
# shellcheck disable=SC1091
. "$KWD/krb.env"
if bash "$KRB/start-prosody.sh" "$KWD" >"$LOGDIR/prosody_start.out" 2>&1; then
  # shellcheck disable=SC1091
  . "$KWD/prosody/xmpp.env"
  pass prosody_start "Prosody $KRB_PROSODY_VERSION, GSSAPI only, c2s 127.0.0.1:$KRB_PROSODY_PORT"
else
  fail prosody_start "interop/kerberos/start-prosody.sh"; finish
fi

# ---------- 2. build sso-proxy and the server tool (feature gssapi)
t0=$SECONDS
if ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --features gssapi --bin sso-proxy --bin server) \
     >"$LOGDIR/build.log" 2>&1; then
  echo "FAIL build: cargo build -p xmpp-sansio-hosts --features gssapi --bin sso-proxy --bin server"
  tail -n 30 "$LOGDIR/build.log" | sed 's/^/  | /'
  FAILED=$((FAILED + 1)); finish
fi
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
PROXY="${TARGET_DIR:-$ROOT/target}/debug/sso-proxy"
SERVER="${TARGET_DIR:-$ROOT/target}/debug/server"
echo "(built sso-proxy and server in $((SECONDS - t0))s)"

# ---------- 3. tickets: alice forwardable, alice not forwardable, carol/admin forwardable, none
CC="$KWD/cc"
mkdir -p "$CC"
kinit -f -k -t "$KRB_ALICE_KEYTAB" -c "FILE:$CC/alice" alice >"$LOGDIR/kinit.log" 2>&1 \
  && kinit -F -k -t "$KRB_ALICE_KEYTAB" -c "FILE:$CC/alice-nofwd" alice >>"$LOGDIR/kinit.log" 2>&1 \
  && kinit -f -k -t "$KRB_REFUSED_KEYTAB" -c "FILE:$CC/carol" "$KRB_REFUSED_PRINCIPAL" >>"$LOGDIR/kinit.log" 2>&1 \
  || { cat "$LOGDIR/kinit.log"; echo "FAIL kinit"; FAILED=$((FAILED + 1)); finish; }

# ---------- 4. the proxy refuses to start without its key
P="$KWD/prosody"   # its certificate names xmpp.example.test; cert.pem is also the CA file
PROXY_ARGS=(--domain xmpp.example.test --service "HTTP@$KRB_PROXY_HOST" --ca-file "$KRB_PROSODY_CA"
  --realm-map EXAMPLE.TEST=xmpp.example.test --static-dir "$WEB" --allow-origin http://app.example.test)
expect_start_error() { # NAME REGEX DESCRIPTION KEYTAB
  local name="$1" re="$2" what="$3" rc=0
  timeout 10 "$PROXY" --listen 127.0.0.1:0 --upstream "127.0.0.1:$KRB_PROSODY_PORT" "${PROXY_ARGS[@]}" \
    --keytab "$4" >"$LOGDIR/$name.out" 2>&1 </dev/null || rc=$?
  if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -Eq -- "$re" "$LOGDIR/$name.out" \
     && ! grep -q '^LISTENING' "$LOGDIR/$name.out"; then
    pass "$name" "$what: $(head -n 1 "$LOGDIR/$name.out" | cut -c1-150)"
  else
    fail "$name" "$what: exit $rc, no /$re/ before LISTENING"
  fi
}
expect_start_error proxy_missing_keytab '^sso-proxy: --keytab: keytab .*No such file' \
  "a missing keytab: a clear error at start" "$KWD/missing.keytab"
expect_start_error proxy_wrong_keytab '^sso-proxy: --keytab: .*No key table entry found matching HTTP/proxy.example.test' \
  "a keytab without the HTTP key (the xmpp one): a clear error at start" "$KRB_XMPP_KEYTAB"
timeout 10 "$PROXY" --help >"$LOGDIR/proxy_help.out" 2>&1 </dev/null
missing=""
for f in --listen --upstream --domain --keytab --service --ca-file --realm-map --static-dir --allow-origin --cert --key; do
  grep -q -- "$f" "$LOGDIR/proxy_help.out" || missing="$missing $f"
done
[ -z "$missing" ] && pass proxy_help "--help lists every flag" || fail proxy_help "--help does not list:$missing"

# start_proxy NAME UPSTREAM_PORT [SCHEME]: PROXY_PORT and PROXY_LOG set once it says LISTENING ... SCHEME (http)
start_proxy() {
  local name="$1" up="$2" scheme="${3:-http}"
  PROXY_LOG="$LOGDIR/$name.log"
  SSO_PROXY_TRANSCRIPT="$LOGDIR/transcripts" "$PROXY" --listen 127.0.0.1:0 --upstream "127.0.0.1:$up" \
    "${PROXY_ARGS[@]}" --keytab "$KRB_HTTP_KEYTAB" >"$PROXY_LOG" 2>&1 </dev/null &
  PIDS+=("$!")
  PROXY_PORT=""
  for _ in $(seq 1 100); do
    PROXY_PORT="$(sed -n "s/^LISTENING 127\\.0\\.0\\.1:\\([0-9]*\\) $scheme\$/\\1/p" "$PROXY_LOG")"
    [ -n "$PROXY_PORT" ] && break
    sleep 0.1
  done
  [ -n "$PROXY_PORT" ]
}

# ---------- 5. the verdict collector (the page POSTs its verdict there, no-cors) and Chromium's policy
python3 "$WEB/wire_proxy.py" http --upstream http://127.0.0.1:9 --transcript "$LOGDIR/verdicts.txt" --static "$WEB" \
  >"$LOGDIR/verdicts.out" 2>"$LOGDIR/verdicts.err" </dev/null &
PIDS+=("$!")
RESULT_PORT=""
for _ in $(seq 1 100); do
  RESULT_PORT="$(sed -n 's/^LISTENING //p' "$LOGDIR/verdicts.out")"; [ -n "$RESULT_PORT" ] && break; sleep 0.1
done
[ -n "$RESULT_PORT" ] || { fail collector "wire_proxy.py http did not start"; finish; }
# From the verified recipe (interop/kerberos_tests.sh, ../shared/interop/kerberos/README.md): delegation is the
# AuthNegotiateDelegateAllowlist policy; each profile is pre-seeded so that its first Negotiate challenge works.
if ! { $SUDO mkdir -p "${CHROMIUM_POLICY%/*}" \
       && echo "{ \"AuthServerAllowlist\": \"$KRB_PROXY_HOST\", \"AuthNegotiateDelegateAllowlist\": \"$KRB_PROXY_HOST\" }" \
          | $SUDO tee "$CHROMIUM_POLICY" >/dev/null; }; then
  fail chromium_policy "could not write $CHROMIUM_POLICY"; finish
fi

N=0
LAST=""
# browse CCACHE URL: runs Chromium on URL with that ticket cache until the page's verdict; LAST is the verdict
browse() {
  local cc="$1" url="$2" profile
  N=$((N + 1))
  profile="$LOGDIR/chromium-$N"
  rm -rf "$profile"; mkdir -p "$profile"
  echo '{"net": {"received_http_auth_negotiate_headers": true}}' >"$profile/Local State"
  chromium_verdict "$LOGDIR/verdicts.out" "$LOGDIR/chromium-$N.log" -- \
    env KRB5CCNAME="$cc" KRB5_CONFIG="$KRB5_CONFIG" \
    chromium --headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check \
      --user-data-dir="$profile" --auth-server-allowlist="$KRB_PROXY_HOST" "$url"
  LAST="$VERDICT"
  rm -rf "$profile"
}
# browser_case NAME EXPECT(ok|error:REGEX) CCACHE QUERY PROXY_LOG_REGEX [UPSTREAM_LOG UPSTREAM_REGEX]
#   the page at the proxy with QUERY; EXPECT against its verdict; a line the proxy logged during the case must match
#   PROXY_LOG_REGEX ("" for none; "!REGEX": no line may match)
browser_case() {
  local name="$1" expect="$2" cc="$3" query="$4" want="$5" ulog="${6:-}" uwant="${7:-}" from ufrom=0 i
  from="$(wc -l <"$PROXY_LOG")"
  [ -n "$ulog" ] && ufrom="$(wc -l <"$ulog")"
  browse "$cc" "http://$KRB_PROXY_HOST:$PROXY_PORT/sso.html?result=http://127.0.0.1:$RESULT_PORT/result&$query"
  echo "$LAST" >"$LOGDIR/$name.out"
  if [ "$expect" = ok ]; then
    [[ "$LAST" == OK\ * ]] || { fail "$name" "expected OK, got '${LAST:-no verdict}'"; tail -n 5 "$PROXY_LOG" | sed 's/^/  | /'; return; }
  elif ! [[ "$LAST" == ERROR\ * ]] || ! grep -Eq -- "${expect#error:}" <<<"$LAST"; then
    fail "$name" "expected ERROR /${expect#error:}/, got '${LAST:-no verdict}'"; tail -n 5 "$PROXY_LOG" | sed 's/^/  | /'; return
  fi
  for i in $(seq 20); do tail -n +"$((from + 1))" "$PROXY_LOG" | grep -Eq -- "${want#!}" && break; sleep 0.1; done
  if [ -n "$want" ] && [[ "$want" == !* ]]; then
    if tail -n +"$((from + 1))" "$PROXY_LOG" | grep -Eq -- "${want#!}"; then
      fail "$name" "'$LAST', but the proxy logged a line matching /${want#!}/"; return
    fi
  elif [ -n "$want" ] && ! tail -n +"$((from + 1))" "$PROXY_LOG" | grep -Eq -- "$want"; then
    fail "$name" "'$LAST', but the proxy logged no line matching /$want/"; tail -n 5 "$PROXY_LOG" | sed 's/^/  | /'; return
  fi
  if [ -n "$ulog" ] && ! tail -n +"$((ufrom + 1))" "$ulog" | grep -Eq -- "$uwant"; then
    fail "$name" "'$LAST', but the upstream logged no line matching /$uwant/"; return
  fi
  pass "$name" "$LAST$([ -n "$want" ] && [[ "$want" != !* ]] && echo " [proxy: $(tail -n +"$((from + 1))" "$PROXY_LOG" | grep -E -- "$want" | head -n 1 | cut -c1-110)]")"
}

# ---------- 6. Prosody upstream
if ! start_proxy proxy_prosody "$KRB_PROSODY_PORT"; then
  fail proxy_start "sso-proxy did not print LISTENING"; cat "$PROXY_LOG"; finish
fi
pass proxy_start "sso-proxy on 127.0.0.1:$PROXY_PORT, upstream Prosody 127.0.0.1:$KRB_PROSODY_PORT (STARTTLS, $KRB_PROSODY_CA)"
ALICE="FILE:$CC/alice" EMPTY="FILE:$KWD/empty.ccache"

# ---------- 6a. the HTTP rules, with curl: CORS with credentials, the 401, a session bound to its principal
# http_check NAME REGEX DESCRIPTION curl-args... : the response head and body (curl -i) must match REGEX (grep -Pz)
http_check() {
  local name="$1" re="$2" what="$3"
  shift 3
  timeout "$CASE_TIMEOUT" curl -s -i "$@" >"$LOGDIR/$name.out" 2>&1
  if tr -d '\r' <"$LOGDIR/$name.out" | grep -Pzq -- "$re"; then pass "$name" "$what"; else fail "$name" "$what: no /$re/"; fi
}
U="http://$KRB_PROXY_HOST:$PROXY_PORT"
CREATE="<body rid='1000' to='xmpp.example.test' wait='5' hold='1' ver='1.6' xml:lang='en' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>"
http_check cors_preflight '(?s)^HTTP/1.1 204.*Access-Control-Allow-Origin: http://app.example.test\n.*Access-Control-Allow-Credentials: true\n.*Vary: Origin\n.*Access-Control-Allow-Methods: [^\n]*POST' \
  "preflight OPTIONS from an allowed origin: 204, that origin, credentials, Vary: Origin, no authentication" \
  -X OPTIONS -H 'Origin: http://app.example.test' -H 'Access-Control-Request-Method: POST' "$U/http-bind"
http_check cors_challenge '(?s)^HTTP/1.1 401.*Access-Control-Allow-Origin: http://app.example.test\n.*Access-Control-Allow-Credentials: true\n.*WWW-Authenticate: Negotiate\n' \
  "a POST without a token from an allowed origin: 401 Negotiate with the same CORS headers" \
  -H 'Origin: http://app.example.test' -H 'Content-Type: text/xml' --data "$CREATE" "$U/http-bind"
http_check cors_other_origin '^HTTP/1.1 403' "a POST from an origin not allowed: 403" \
  -H 'Origin: http://evil.example.test' -H 'Content-Type: text/xml' --data "$CREATE" "$U/http-bind"
KRB5CCNAME="$ALICE" http_check negotiate_creation "(?s)^HTTP/1.1 200.*<mechanism>EXTERNAL</mechanism></mechanisms>" \
  "curl --negotiate as alice: the session creation answered, EXTERNAL offered" \
  --negotiate -u : -H 'Content-Type: text/xml' --data "$CREATE" "$U/http-bind"
SID="$(sed -n "s/.*sid='\([0-9a-f]*\)'.*/\1/p" "$LOGDIR/negotiate_creation.out" | head -n 1)"
POLL="<body rid='1001' sid='$SID' xmlns='http://jabber.org/protocol/httpbind'/>"
KRB5CCNAME="FILE:$CC/carol" http_check session_other_principal '^HTTP/1.1 403' "alice's session, a request with carol/admin's token: 403" \
  --negotiate -u : -H 'Content-Type: text/xml' --data "$POLL" "$U/http-bind"
KRB5CCNAME="$EMPTY" http_check session_no_token '^HTTP/1.1 401' "alice's session, a request without a token: 401 (its rid not consumed)" \
  -H 'Content-Type: text/xml' --data "$POLL" "$U/http-bind"
KRB5CCNAME="$ALICE" http_check session_same_principal '^HTTP/1.1 200' "alice's session, the same rid with alice's token: answered" \
  --negotiate -u : -H 'Content-Type: text/xml' --data "$POLL" "$U/http-bind"
WS="ws://$KRB_PROXY_HOST:$PROXY_PORT/xmpp-websocket"
SSO_LINE='^SSO alice@EXAMPLE.TEST as alice@xmpp.example.test via GSSAPI$'
browser_case sso_bosh_alice ok "$ALICE" "service=/http-bind&jid=alice@xmpp.example.test" "$SSO_LINE"
browser_case sso_ws_alice ok "$ALICE" "service=$WS&jid=alice@xmpp.example.test" "$SSO_LINE"
grep -q 'mechs=EXTERNAL$' "$LOGDIR/sso_bosh_alice.out" && grep -q 'mechs=EXTERNAL$' "$LOGDIR/sso_ws_alice.out" \
  && pass sso_external_alone "the browser was offered EXTERNAL alone (Prosody offers GSSAPI), over BOSH and WebSocket" \
  || fail sso_external_alone "the offered mechanisms were not EXTERNAL alone: $(cat "$LOGDIR/sso_bosh_alice.out")"
browser_case sso_bosh_no_ticket "error:(conn-failed|disconnected)" "$EMPTY" "service=/http-bind&jid=alice@xmpp.example.test" '!^SSO '
browser_case sso_bosh_no_ticket_without_sso "error:.* mechs=GSSAPI$" "$EMPTY" \
  "service=/http-bind%3Fsso%3D0&jid=alice@xmpp.example.test&timeout=6" '!^SSO '
browser_case sso_ws_no_ticket "error:(conn-failed|disconnected)" "$EMPTY" "service=$WS&jid=alice@xmpp.example.test" '!^SSO '
browser_case sso_ws_no_ticket_without_sso "error:.* mechs=GSSAPI$" "$EMPTY" \
  "service=$WS%3Fsso%3D0&jid=alice@xmpp.example.test" '!^SSO '
browser_case sso_bosh_refused_principal "error:auth-failed.* sasl=not-authorized" "FILE:$CC/carol" \
  "service=/http-bind&jid=carol@xmpp.example.test&authzid=none" \
  "^REFUSED $KRB_REFUSED_PRINCIPAL@EXAMPLE.TEST: not-authorized: the server said not-authorized"
browser_case sso_bosh_other_authzid "error:auth-failed.* sasl=invalid-authzid" "$ALICE" \
  "service=/http-bind&jid=bob@xmpp.example.test" '^REFUSED alice@EXAMPLE.TEST: invalid-authzid'
browser_case sso_bosh_not_forwardable "error:auth-failed.* sasl=not-authorized" "FILE:$CC/alice-nofwd" \
  "service=/http-bind&jid=alice@xmpp.example.test" '^REFUSED alice@EXAMPLE.TEST: not-authorized: no delegated credential'

# ---------- 7. the figure: first request to logged in, through the proxy vs. Prosody's own BOSH with a password
FIG_SSO=() FIG_PW=()
for i in $(seq "$FIGURE_RUNS"); do
  browse "$ALICE" "http://$KRB_PROXY_HOST:$PROXY_PORT/sso.html?result=http://127.0.0.1:$RESULT_PORT/result&service=/http-bind&jid=alice@xmpp.example.test"
  [[ "$LAST" =~ ms=([0-9]+) ]] && FIG_SSO+=("${BASH_REMATCH[1]}")
  if [ -n "${XMPP_BOSH_URL:-}" ] && [ -n "${XMPP_DOMAIN:-}" ]; then
    browse "$EMPTY" "http://$KRB_PROXY_HOST:$PROXY_PORT/sso.html?result=http://127.0.0.1:$RESULT_PORT/result&service=$XMPP_BOSH_URL&jid=alice@$XMPP_DOMAIN&password=secret"
    [[ "$LAST" =~ ms=([0-9]+) ]] && FIG_PW+=("${BASH_REMATCH[1]}")
  fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
if [ "${#FIG_SSO[@]}" -gt 0 ]; then
  line="FIGURE first request to logged in, Chromium + Strophe.js over BOSH: through sso-proxy (Negotiate, EXTERNAL, GSSAPI upstream) median $(median "${FIG_SSO[@]}") ms [${FIG_SSO[*]}]"
  if [ "${#FIG_PW[@]}" -gt 0 ]; then
    line="$line; Prosody's own BOSH with a password (SCRAM) median $(median "${FIG_PW[@]}") ms [${FIG_PW[*]}]"
  else
    line="$line; no password baseline (needs peer.env's Prosody: XMPP_BOSH_URL, as interop/run.sh exports)"
  fi
  echo "$line" | tee "$LOGDIR/figure.txt"
  pass figure "$line"
else
  fail figure "no timed SSO login"
fi

# ---------- 8. the example server upstream instead of Prosody
"$SERVER" --listen 127.0.0.1:0 --domain xmpp.example.test --cert "$P/cert.pem" --key "$P/key.pem" \
  --gssapi-keytab "$KRB_XMPP_KEYTAB" >"$LOGDIR/server.log" 2>&1 </dev/null &
PIDS+=("$!")
SPORT=""
for _ in $(seq 1 50); do
  SPORT="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$LOGDIR/server.log")"; [ -n "$SPORT" ] && break; sleep 0.1
done
if [ -n "$SPORT" ] && start_proxy proxy_server "$SPORT"; then
  pass proxy_server_start "sso-proxy on 127.0.0.1:$PROXY_PORT, upstream the example server 127.0.0.1:$SPORT (--gssapi-keytab)"
  WS="ws://$KRB_PROXY_HOST:$PROXY_PORT/xmpp-websocket"
  browser_case server_bosh_alice ok "$ALICE" "service=/http-bind&jid=alice@xmpp.example.test" "$SSO_LINE" \
    "$LOGDIR/server.log" '^LOGIN alice@xmpp.example.test/.* via GSSAPI'
  browser_case server_ws_alice ok "$ALICE" "service=$WS&jid=alice@xmpp.example.test" "$SSO_LINE" \
    "$LOGDIR/server.log" '^LOGIN alice@xmpp.example.test/.* via GSSAPI'
  browser_case server_bosh_refused_principal "error:auth-failed.* sasl=not-authorized" "FILE:$CC/carol" \
    "service=/http-bind&jid=carol@xmpp.example.test&authzid=none" "^REFUSED $KRB_REFUSED_PRINCIPAL@EXAMPLE.TEST: not-authorized" \
    "$LOGDIR/server.log" "^AUTHFAIL $KRB_REFUSED_PRINCIPAL@EXAMPLE.TEST via GSSAPI: not-authorized"
  # The example server offers its password mechanisms too: an SSO browser still sees EXTERNAL alone.
  grep -q 'mechs=EXTERNAL$' "$LOGDIR/server_bosh_alice.out" \
    && pass server_external_alone "the example server offers more; the SSO browser saw EXTERNAL alone" \
    || fail server_external_alone "offered: $(cat "$LOGDIR/server_bosh_alice.out")"
else
  fail proxy_server_start "the example server or the proxy in front of it did not start"
fi

# ---------- 9. https (--cert/--key): the page over TLS
PROXY_ARGS+=(--cert "$P/cert.pem" --key "$P/key.pem")
if start_proxy proxy_https "$KRB_PROSODY_PORT" https; then
  http_check https_static '(?s)^HTTP/1.1 200.*<title>sso-proxy check</title>' \
    "--cert/--key: the static page over https (curl -k: the certificate names xmpp.example.test)" \
    -k "https://$KRB_PROXY_HOST:$PROXY_PORT/sso.html"
else
  fail proxy_https "sso-proxy with --cert/--key did not print LISTENING ... https"
fi

finish
