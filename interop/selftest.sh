#!/usr/bin/env bash
# Self-test of the interop peer: log in to Prosody with the reference clients (xmpp_raw.py, slixmpp).
#
#   bash interop/selftest.sh                          starts its own Prosody, runs the logins, stops it
#   PEER_ENV=WORKDIR/peer.env bash interop/selftest.sh  runs the logins against an already running one
#
# Prints one PASS/FAIL line per check and ends with "selftest: N passed, N failed".
# Exit 0 only when nothing failed. Each client call is bounded by CLIENT_TIMEOUT seconds (default 30).
# On a failure the client's wire log (C:/S: lines) is printed; LOGDIR keeps every log (default: WORKDIR/selftest).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CL="$HERE/clients"
CLIENT_TIMEOUT="${CLIENT_TIMEOUT:-30}"

OWN=0
if [ -z "${PEER_ENV:-}" ]; then
  OWN=1
  PY="$(bash "$CL/setup_venv.sh")"
  WD="$(mktemp -d -t prosody-selftest.XXXXXX)"
  out="$(PROSODY_WORKDIR="$WD" bash "$HERE/prosody/start.sh")" || { echo "FAIL: prosody/start.sh"; echo "selftest: 0 passed, 1 failed"; exit 1; }
  PEER_ENV="$(sed -n 's/^PEER_ENV=//p' <<<"$out")"
  cleanup() { bash "$HERE/prosody/stop.sh" "$WD" || true; }
  trap cleanup EXIT
else
  PY="${PYTHON:-$HERE/.venv/bin/python}"
  [ -x "$PY" ] || PY="$(bash "$CL/setup_venv.sh")"
fi
[ -f "$PEER_ENV" ] || { echo "FAIL: no peer env file '$PEER_ENV'"; echo "selftest: 0 passed, 1 failed"; exit 1; }
set -a
# shellcheck source=/dev/null
. "$PEER_ENV"
set +a
LOGDIR="${LOGDIR:-$WORKDIR/selftest}"
mkdir -p "$LOGDIR"

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $1: $2"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }
# run NAME cmd... : sets RES (last stdout line) and RC; wire log in $LOGDIR/NAME.log
run() {
  local name="$1"; shift
  RC=0
  RES="$(timeout "$CLIENT_TIMEOUT" "$@" 2>"$LOGDIR/$name.log" | tail -n 1)" || RC=$?
  [ "$RC" = 124 ] && RES="timed out after ${CLIENT_TIMEOUT}s"
  return 0
}
show_log() { echo "  ---- $LOGDIR/$1.log (last 15 lines)"; { tail -n 15 "$LOGDIR/$1.log" | cut -c1-400 | sed 's/^/  | /'; } || true; }
# ok NAME [LOG_PATTERN] -- cmd... : must exit 0 printing "OK ..." (and the wire log must match LOG_PATTERN)
ok() {
  local name="$1" pat=""; shift
  [ "$1" != -- ] && { pat="$1"; shift; }
  shift
  run "$name" "$@"
  if [ "$RC" = 0 ] && [[ "$RES" == OK* ]]; then
    if [ -n "$pat" ] && ! grep -Eq -- "$pat" "$LOGDIR/$name.log"; then
      fail "$name" "$RES, but the wire log lacks /$pat/"; show_log "$name"
    else
      pass "$name" "$RES"
    fi
  else
    fail "$name" "rc=$RC: $RES"; show_log "$name"
  fi
}
# fails NAME SUBSTRING -- cmd... : must exit non-zero with an "ERROR ..." line containing SUBSTRING
fails() {
  local name="$1" want="$2"; shift 3
  run "$name" "$@"
  if [ "$RC" != 0 ] && [ "$RC" != 124 ] && [[ "$RES" == ERROR* ]] && [[ "$RES" == *"$want"* ]]; then
    pass "$name" "rejected as expected ($RES)"
  else
    fail "$name" "expected an error containing '$want', got rc=$RC: $RES"; show_log "$name"
  fi
}

RAW=("$PY" "$CL/xmpp_raw.py" --host "$XMPP_HOST")
SLIX=("$PY" "$CL/slixmpp_login.py" --host "$XMPP_HOST")
P="--port=$XMPP_PORT"
D="$XMPP_DOMAIN"

echo "== selftest against $SERVER $SERVER_VERSION at $XMPP_HOST:$XMPP_PORT (direct TLS $XMPP_TLS_PORT); logs in $LOGDIR"
# --- server set-up
if [ -z "${XMPP_MODULES_DROPPED:-}" ]; then pass modules_loaded "${XMPP_MODULES:-none}"
else fail modules_loaded "modules dropped because they failed to load: $XMPP_MODULES_DROPPED"; fi
ok  raw_features_starttls_required 'features: starttls\(required\)' -- "${RAW[@]}" "$P" --jid "$D" --features-only
fails raw_auth_without_tls_refused encryption-required -- "${RAW[@]}" "$P" --jid "alice@$D" --password secret --mech PLAIN --no-tls --force-mech
# --- RFC 6120 SASL + bind, via xmpp_raw.py (exact bytes in the logs)
ok  raw_scram_sha1_starttls 'XEP-0474 SSDP h=.* matches' -- "${RAW[@]}" "$P" --jid "alice@$D" --password secret --mech SCRAM-SHA-1 --require-ssdp --message-to self
ok  raw_plain -- "${RAW[@]}" "$P" --jid "bob@$D" --password secret --mech PLAIN
ok  raw_anonymous -- "${RAW[@]}" "$P" --jid "$XMPP_ANON_DOMAIN" --mech ANONYMOUS
ok  raw_scram_sha256 'SASL SCRAM-SHA-256 succeeded' -- "${RAW[@]}" "$P" --jid "alice@$XMPP_SHA256_DOMAIN" --password secret --mech SCRAM-SHA-256 --cafile "$XMPP_CA_CERT"
fails raw_wrong_password not-authorized -- "${RAW[@]}" "$P" --jid "alice@$D" --password wrong --mech SCRAM-SHA-1
fails raw_sha256_host_no_scram_sha1 "not offered" -- "${RAW[@]}" "$P" --jid "alice@$XMPP_SHA256_DOMAIN" --password secret --mech SCRAM-SHA-1
ok  raw_scram_sha1_plus_tls_server_end_point 'channel binding tls-server-end-point' -- "${RAW[@]}" "$P" --jid "alice@$D" --password secret --mech SCRAM-SHA-1-PLUS --cb-type tls-server-end-point
ok  raw_tls12_scram_sha1_plus_tls_unique 'TLSv1\.2 .*cert verify: yes' -- "${RAW[@]}" "$P" --jid "alice@$XMPP_TLS12_DOMAIN" --password secret --mech SCRAM-SHA-1-PLUS --cb-type tls-unique --cafile "$XMPP_CA_CERT"
ok  raw_direct_tls_scram_sha1 -- "${RAW[@]}" --port="$XMPP_TLS_PORT" --direct-tls --jid "alice@$D" --password secret --mech SCRAM-SHA-1 --cafile "$XMPP_CA_CERT"
# Prosody's mod_legacyauth offers <password/> only: plaintext logs in, digest is refused by the client.
ok  raw_legacy_auth_plain 'legacy auth plain succeeded' -- "${RAW[@]}" "$P" --jid "alice@$D" --password secret --legacy plain --message-to self
fails raw_legacy_auth_digest_not_offered "not offered" -- "${RAW[@]}" "$P" --jid "alice@$D" --password secret --legacy digest
ok  raw_ibr_register_then_scram 'registered ' -- "${RAW[@]}" "$P" --jid "ibr$RANDOM$RANDOM@$D" --password pw --register --mech SCRAM-SHA-1
if [[ " ${XMPP_MODULES:-} " == *" sasl2_bind2 "* ]]; then
  ok raw_sasl2_bind2_also_offered 'SASL2 SCRAM-SHA-1 succeeded' -- "${RAW[@]}" "$P" --jid "alice@$D" --password secret --mech SCRAM-SHA-1 --sasl2
fi
# --- slixmpp, a real third-party client
ok  slixmpp_scram_sha1_message_to_self -- "${SLIX[@]}" "$P" --jid "alice@$D" --password secret --mech SCRAM-SHA-1 --to self --cafile "$XMPP_CA_CERT"
ok  slixmpp_plain_message_to_alice -- "${SLIX[@]}" "$P" --jid "bob@$D" --password secret --mech PLAIN --to "alice@$D"
ok  slixmpp_anonymous -- "${SLIX[@]}" "$P" --jid "$XMPP_ANON_DOMAIN" --mech ANONYMOUS
ok  slixmpp_direct_tls -- "${SLIX[@]}" --port="$XMPP_TLS_PORT" --direct-tls --jid "alice@$D" --password secret
fails slixmpp_wrong_password "auth" -- "${SLIX[@]}" "$P" --jid "alice@$D" --password wrong --mech SCRAM-SHA-1

if [ "$OWN" = 1 ]; then
  trap - EXIT
  bash "$HERE/prosody/stop.sh" "$WD" || fail prosody_stop "stop.sh failed"
  if kill -0 "$PID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$PID/stat" 2>/dev/null)" != Z ]; then
    fail prosody_stop "PID $PID still alive"
  fi
  [ "$FAILED" = 0 ] && CLEAN=1 bash "$HERE/prosody/stop.sh" "$WD" 2>/dev/null
fi
echo "selftest: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
