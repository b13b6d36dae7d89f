#!/usr/bin/env bash
# The client tool (hosts/src/bin/client.rs: the sans-IO Client on the blocking driver + rustls) against a
# running Prosody. Reads only the peer's environment variables:
#   XMPP_HOST XMPP_PORT (STARTTLS) XMPP_TLS_PORT (XEP-0368 direct TLS) XMPP_DOMAIN XMPP_SHA256_DOMAIN
#   XMPP_ANON_DOMAIN XMPP_TLS12_DOMAIN XMPP_CA_CERT, optionally XMPP_MODULES / XMPP_SASL2_MODULES (to know
#   whether mod_sasl_ssdp, XEP-0474, runs on XMPP_DOMAIN) and WORKDIR (where the logs go).
#
#   interop/run.sh runs it with peer.env exported. By hand, against a running peer:
#     set -a; . /path/to/peer.env; set +a; bash interop/client_tests.sh
#
# Builds the tool once (cargo build -p xmpp-sansio-hosts --bin client), then runs each case with `timeout 30`
# (CASE_TIMEOUT) and --transcript; every output is kept in LOGDIR (default $WORKDIR/client_tests).
# Prints one PASS/FAIL line per case (and the output's last lines on a failure), then
# "client_tests: N passed, N failed[, N skipped]". Exit 0 only when nothing failed.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CASE_TIMEOUT="${CASE_TIMEOUT:-30}"
PASSED=0 FAILED=0 SKIPPED=0

finish() {
  local line="client_tests: $PASSED passed, $FAILED failed"
  [ "$SKIPPED" -gt 0 ] && line="$line, $SKIPPED skipped"
  echo "$line"
  [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
  exit $?
}

missing=""
for v in XMPP_HOST XMPP_PORT XMPP_TLS_PORT XMPP_DOMAIN XMPP_ANON_DOMAIN XMPP_TLS12_DOMAIN XMPP_CA_CERT; do
  [ -n "${!v:-}" ] || missing="$missing $v"
done
if [ -n "$missing" ]; then
  echo "FAIL setup: not set:$missing (export the peer's peer.env first)"
  FAILED=1; finish
fi

LOGDIR="${LOGDIR:-${WORKDIR:-$(mktemp -d -t client-tests.XXXXXX)}/client_tests}"
mkdir -p "$LOGDIR"

# ---------- build once
echo "== building the client tool (hosts/src/bin/client.rs)"
if ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin client) >"$LOGDIR/build.log" 2>&1; then
  echo "FAIL build: cargo build -p xmpp-sansio-hosts --bin client"; tail -n 30 "$LOGDIR/build.log" | sed 's/^/  | /'
  FAILED=1; finish
fi
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BIN="${TARGET_DIR:-$ROOT/target}/debug/client"
[ -x "$BIN" ] || { echo "FAIL build: no binary at $BIN"; FAILED=1; finish; }

# Is XEP-0474 (mod_sasl_ssdp) on XMPP_DOMAIN? yes / no / unknown (then h= is checked only if sent).
SSDP=unknown
MODS="${XMPP_MODULES:-}${XMPP_SASL2_MODULES:-}"
DROPPED=" ${XMPP_MODULES_DROPPED:-} ${XMPP_SASL2_MODULES_DROPPED:-} "
if [ -n "${XMPP_MODULES+x}${XMPP_SASL2_MODULES+x}" ]; then
  SSDP=no
  [[ " $MODS " == *" sasl_ssdp "* && "$DROPPED" != *" sasl_ssdp "* ]] && SSDP=yes
fi

pass() { PASSED=$((PASSED + 1)); echo "PASS $1: $2"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP $1: $2"; }
fail() {
  FAILED=$((FAILED + 1)); echo "FAIL $1: $2"
  echo "  ---- $LOGDIR/$1.out (notes and last lines)"
  { grep -E '^(-- |OK |ERROR )' "$LOGDIR/$1.out"; tail -n 6 "$LOGDIR/$1.out" | grep -Ev '^(-- |OK |ERROR )'; } \
    | cut -c1-300 | sed 's/^/  | /' || true
}

# wire_agrees NAME OUT: what the client reports of its SASL exchange (the Authenticated event's
# security, printed as "-- channel binding: ..." and "-- XEP-0474: ...") must match the wire in the
# transcript: the gs2 flag at the start of the <auth/> (or SASL2 <initial-response/>) it sent, the h= in
# the first <challenge/> it got.
b64_text() { sed -n "s/^$1: .*<$2\( [^>]*\)\{0,1\}>\([^<]*\)<\/$2>.*/\2/p" "$3" | head -n 1 | base64 -d 2>/dev/null | tr -d '\0' || true; }
wire_agrees() {
  local name="$1" out="$2" cb want first challenge
  cb="$(sed -n 's/^-- channel binding: //p' "$out" | head -n 1)"
  if [ -n "$cb" ]; then
    case "$cb" in
      "none (gs2 flag "?")") want="${cb:15:1}," ;;
      *) want="p=$cb," ;;
    esac
    first="$(b64_text SEND auth "$out")"
    # Over SASL2 (XEP-0388) the first message is <authenticate/>'s <initial-response/>.
    [ -n "$first" ] || first="$(b64_text SEND initial-response "$out")"
    if [[ "$first" != "$want"* ]]; then
      fail "$name" "the client reports channel binding '$cb', but its <auth/> starts with '${first:0:24}'"; return 1
    fi
  fi
  challenge="$(b64_text RECV challenge "$out")"
  if grep -q '^-- XEP-0474: h=.* matches' "$out" && [[ "$challenge" != *,h=* ]]; then
    fail "$name" "the client reports a checked h=, but the server-first message has none: '$challenge'"; return 1
  fi
  if grep -q '^-- XEP-0474: the server sent no h=' "$out" && [[ "$challenge" == *,h=* ]]; then
    fail "$name" "the client reports no h=, but the server-first message has one: '$challenge'"; return 1
  fi
  return 0
}

# case NAME EXPECT PATTERNS -- ARGS...
#   EXPECT: "ok" (exit 0, an "OK <jid>" line) or "error:REGEX" (non-zero exit, "ERROR ..." matching REGEX)
#   PATTERNS: '|'-separated extended regexes that must each match a line of the output ("" for none)
case_() {
  local name="$1" expect="$2" pats="$3"; shift 4
  local out="$LOGDIR/$name.out" rc=0 line pat
  timeout "$CASE_TIMEOUT" "$BIN" --host "$XMPP_HOST" --ca-file "$XMPP_CA_CERT" --transcript "$@" \
    >"$out" 2>&1 </dev/null || rc=$?
  line="$(grep -E '^(OK|ERROR) ' "$out" | tail -n 1)"
  if [ "$rc" = 124 ]; then fail "$name" "timed out after ${CASE_TIMEOUT}s"; return; fi
  if [ "$expect" = ok ]; then
    if [ "$rc" != 0 ] || [[ "$line" != OK\ * ]]; then
      fail "$name" "expected OK, got exit $rc and '${line:-no OK/ERROR line}'"; return
    fi
  else
    local want="${expect#error:}"
    if [ "$rc" = 0 ] || [[ "$line" != ERROR\ * ]] || ! grep -Eq -- "$want" <<<"$line"; then
      fail "$name" "expected a non-zero exit and ERROR /$want/, got exit $rc and '${line:-no OK/ERROR line}'"; return
    fi
  fi
  local IFS='|'
  for pat in $pats; do
    [ -z "$pat" ] && continue
    if ! grep -Eq -- "$pat" "$out"; then fail "$name" "$line, but no line matches /$pat/"; return; fi
  done
  wire_agrees "$name" "$out" || return
  local mech
  mech="$(sed -n 's/^-- authenticated with //p' "$out" | head -n 1)"
  pass "$name" "$line${mech:+ [$mech]}$(sed -n 's/^-- channel binding: \([a-z-]*\).*/ cb=\1/p' "$out" | head -n 1)"
}

D="$XMPP_DOMAIN" S="${XMPP_SHA256_DOMAIN:-}" A="$XMPP_ANON_DOMAIN" T12="$XMPP_TLS12_DOMAIN"
H474=""   # the XEP-0474 check for SCRAM on XMPP_DOMAIN
case "$SSDP" in
  yes) H474='^-- XEP-0474: h=.* matches' ;;
  no) H474='^-- XEP-0474: the server sent no h=' ;;
  *) H474='^-- XEP-0474: ' ;;
esac
TLS13='^-- TLS established.*TLSv1\.3'
TLS12='^-- TLS established.*TLSv1\.2'
SUCCESS='^RECV: .*<success '   # the transcript shows the decrypted SASL exchange
ECHO='^-- message to self received back'

for mode in starttls direct; do
  if [ "$mode" = starttls ]; then M=(--port "$XMPP_PORT" --tls starttls); else M=(--port "$XMPP_TLS_PORT" --tls direct); fi
  m="$mode"

  case_ "$m-scram-sha-1" ok "^-- authenticated with SCRAM-SHA-1\$|^-- channel binding: none|$H474|$SUCCESS|$ECHO" -- \
    "${M[@]}" --jid "alice@$D" --password secret --mechanism SCRAM-SHA-1
  case_ "$m-scram-sha-1-plus-exporter" ok "$TLS13|^-- authenticated with SCRAM-SHA-1-PLUS\$|^-- channel binding: tls-exporter\$|$H474|$ECHO" -- \
    "${M[@]}" --jid "alice@$D" --password secret --mechanism SCRAM-SHA-1-PLUS --channel-binding tls-exporter
  case_ "$m-scram-sha-1-plus-endpoint" ok "^-- authenticated with SCRAM-SHA-1-PLUS\$|^-- channel binding: tls-server-end-point\$|$H474|$ECHO" -- \
    "${M[@]}" --jid "alice@$D" --password secret --mechanism SCRAM-SHA-1-PLUS --channel-binding tls-server-end-point
  case_ "$m-default-strongest" ok "^-- authenticated with SCRAM-SHA-1-PLUS\$|^-- channel binding: tls-exporter\$|$ECHO" -- \
    "${M[@]}" --jid "alice@$D" --password secret
  if [ -n "$S" ]; then
    case_ "$m-scram-sha-256" ok "^-- authenticated with SCRAM-SHA-256\$|^-- channel binding: none|$ECHO" -- \
      "${M[@]}" --jid "alice@$S" --password secret --mechanism SCRAM-SHA-256
    case_ "$m-scram-sha-256-plus-exporter" ok "$TLS13|^-- authenticated with SCRAM-SHA-256-PLUS\$|^-- channel binding: tls-exporter\$|$ECHO" -- \
      "${M[@]}" --jid "alice@$S" --password secret --mechanism SCRAM-SHA-256-PLUS
    case_ "$m-scram-sha-256-plus-endpoint" ok "^-- authenticated with SCRAM-SHA-256-PLUS\$|^-- channel binding: tls-server-end-point\$|$ECHO" -- \
      "${M[@]}" --jid "alice@$S" --password secret --mechanism SCRAM-SHA-256-PLUS --channel-binding tls-server-end-point
  else
    skip "$m-scram-sha-256*" "XMPP_SHA256_DOMAIN not set (Prosody 0.12 has no SHA-256 host)"
  fi
  case_ "$m-plain" ok "^-- authenticated with PLAIN\$|$SUCCESS|$ECHO" -- \
    "${M[@]}" --jid "alice@$D" --password secret --mechanism PLAIN
  case_ "$m-anonymous" ok "^-- authenticated with ANONYMOUS\$|^OK [^ ]+@${A//./\\.}/|$ECHO" -- \
    "${M[@]}" --jid "$A"
  # Prosody's direct-TLS port does not apply the tls12 host's protocol cap (it answers TLS 1.3 there),
  # so the direct case asks rustls for TLS 1.2 itself.
  V12=(); [ "$mode" = direct ] && V12=(--tls-version 1.2)
  case_ "$m-tls12-endpoint" ok "$TLS12|^-- authenticated with SCRAM-SHA-1-PLUS\$|^-- channel binding: tls-server-end-point\$|$ECHO" -- \
    "${M[@]}" --jid "alice@$T12" --password secret --channel-binding tls-server-end-point "${V12[@]}"
  # tls-unique: computed by the blocking client from the recorded TLS 1.2 handshake (hosts/src/tls_unique.rs)
  case_ "$m-tls12-unique" ok "$TLS12|^-- authenticated with SCRAM-SHA-1-PLUS\$|^-- channel binding: tls-unique\$|$ECHO" -- \
    "${M[@]}" --jid "alice@$T12" --password secret --channel-binding tls-unique "${V12[@]}"
  case_ "$m-wrong-password" "error:^ERROR sasl not-authorized" "" -- \
    "${M[@]}" --jid "alice@$D" --password wrong-password
done

finish
