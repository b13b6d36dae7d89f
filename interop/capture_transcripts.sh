#!/usr/bin/env bash
# Record raw wire transcripts (xmpp_raw.py C:/S: lines) against a running Prosody from prosody/start.sh,
# named like the crate's fixtures (tests/fixtures/prosody/prosody13_*.txt). Not run by run.sh.
#
# Usage: interop/capture_transcripts.sh WORKDIR|peer.env OUTDIR      (PREFIX=prosody13_ by default)
# Prints PASS/UNEXPECTED per capture and "capture: N passed, N failed"; exit 0 when every capture
# ended as expected (login ok, or refused where a refusal is the point).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
arg="${1:?usage: $0 WORKDIR|peer.env OUTDIR}"
OUT="${2:?usage: $0 WORKDIR|peer.env OUTDIR}"
if [ -d "$arg" ]; then envf="$arg/peer.env"; else envf="$arg"; fi
set -a
# shellcheck source=/dev/null
. "$envf"
set +a
PY="${PYTHON:-$HERE/.venv/bin/python}"; [ -x "$PY" ] || PY="$(bash "$HERE/clients/setup_venv.sh")"
mkdir -p "$OUT"
PFX="${PREFIX:-prosody13_}"
HDR="# server: Prosody $SERVER_VERSION (Debian 12 package, bookworm-backports), c2s STARTTLS required, internal_hashed, $XMPP_DOMAIN modules: ${XMPP_MODULES:-none}, tls_server_end_point_hash=sha256(cert); captured $(date -u +%Y-%m-%dT%H:%M:%SZ)"
RAW="$HERE/clients/xmpp_raw.py"
PASSED=0 FAILED=0
cap() { # name ok|fail args...
  local name="$PFX$1" expect="$2" rc=0 res
  shift 2
  res="$(timeout 30 "$PY" "$RAW" --host "$XMPP_HOST" --header "$HDR" --transcript "$OUT/$name.txt" "$@")" || rc=$?
  if { [ "$expect" = ok ] && [ "$rc" = 0 ]; } || { [ "$expect" = fail ] && [ "$rc" = 1 ]; }; then
    PASSED=$((PASSED + 1)); echo "PASS $name: $res"
  else
    FAILED=$((FAILED + 1)); echo "UNEXPECTED $name (rc=$rc): $res"
  fi
}
U="alice@$XMPP_DOMAIN" U2="alice@$XMPP_SHA256_DOMAIN" T="alice@$XMPP_TLS12_DOMAIN" P=secret
S=(--port "$XMPP_PORT") DT=(--port "$XMPP_TLS_PORT" --direct-tls)
cap features_starttls                    ok   "${S[@]}" --jid "$XMPP_DOMAIN" --features-only
cap features_starttls_stream_from        ok   "${S[@]}" --jid "$U" --stream-from --features-only
cap features_direct_tls                  ok   "${DT[@]}" --jid "$XMPP_DOMAIN" --features-only
cap features_tls12_host                  ok   "${S[@]}" --jid "$XMPP_TLS12_DOMAIN" --features-only
cap features_tls12_host_direct_tls       ok   "${DT[@]}" --tls-max 1.2 --jid "$XMPP_DOMAIN" --features-only
cap features_anon_host                   ok   "${S[@]}" --jid "$XMPP_ANON_DOMAIN" --features-only
cap features_sha256_host                 ok   "${S[@]}" --jid "$XMPP_SHA256_DOMAIN" --features-only
cap scram_sha1_bind                      ok   "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1 --message-to self
cap scram_sha1_bind_sm                   ok   "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1 --sm
cap plain                                ok   "${S[@]}" --jid "$U" --password $P --mech PLAIN
cap scram_wrong_password                 fail "${S[@]}" --jid "$U" --password wrong --mech SCRAM-SHA-1
cap plain_wrong_password                 fail "${S[@]}" --jid "$U" --password wrong --mech PLAIN
cap scram_unknown_user                   fail "${S[@]}" --jid "nobody@$XMPP_DOMAIN" --password x --mech SCRAM-SHA-1
cap scram_sha1_gs2_y_rejected            fail "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1 --gs2-flag y
cap scram_sha1_plus_endp_tls13           ok   "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1-PLUS --cb-type tls-server-end-point
cap scram_sha1_plus_unique_tls13_rejected fail "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1-PLUS --cb-type tls-unique --force-mech
cap tls12_scram_sha1_plus                ok   "${S[@]}" --jid "$T" --password $P --mech SCRAM-SHA-1-PLUS --cb-type tls-unique
cap tls12_scram_sha1_plus_endp           ok   "${S[@]}" --jid "$T" --password $P --mech SCRAM-SHA-1-PLUS --cb-type tls-server-end-point
cap sha256_scram_sha256                  ok   "${S[@]}" --jid "$U2" --password $P --mech SCRAM-SHA-256
cap sha256_scram_sha256_plus_endp        ok   "${S[@]}" --jid "$U2" --password $P --mech SCRAM-SHA-256-PLUS --cb-type tls-server-end-point
cap sha256_plain                         ok   "${S[@]}" --jid "$U2" --password $P --mech PLAIN
cap sha256_scram_sha1_not_offered        fail "${S[@]}" --jid "$U2" --password $P --mech SCRAM-SHA-1
cap anonymous                            ok   "${S[@]}" --jid "$XMPP_ANON_DOMAIN" --mech ANONYMOUS
cap ibr_register_then_scram              ok   "${S[@]}" --jid "ibr$RANDOM$RANDOM@$XMPP_DOMAIN" --password pw --register --mech SCRAM-SHA-1
cap ibr_register_existing                fail "${S[@]}" --jid "$U" --password $P --register
cap legacy_auth_plain                    ok   "${S[@]}" --jid "$U" --password $P --legacy plain
cap legacy_auth_digest                   ok   "${S[@]}" --jid "$U" --password $P --legacy digest
cap no_starttls_auth_refused             fail "${S[@]}" --jid "$U" --password $P --mech PLAIN --no-tls --force-mech
cap direct_tls_scram                     ok   "${DT[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1
if [[ " ${XMPP_MODULES:-} " == *" sasl2_bind2 "* ]]; then
  cap sasl2_scram_sha1_bind2             ok   "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1 --sasl2 --message-to self
  cap sasl2_scram_sha1_bind2_sm          ok   "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1 --sasl2 --sm
  cap sasl2_scram_sha1_bind2_carbons_csi ok   "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1 --sasl2 --sm --carbons --csi inactive
  cap sasl2_plain_bind2                  ok   "${S[@]}" --jid "$U" --password $P --mech PLAIN --sasl2
  cap sasl2_scram_wrong_password         fail "${S[@]}" --jid "$U" --password wrong --mech SCRAM-SHA-1 --sasl2
fi
if [[ " ${XMPP_MODULES:-} " == *" sasl2_fast "* ]]; then
  cap sasl2_fast_ht_sha256_none          ok   "${S[@]}" --jid "$U" --password $P --mech SCRAM-SHA-1-PLUS --cb-type tls-server-end-point --sasl2 --fast-roundtrip HT-SHA-256-NONE
fi
echo "capture: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
