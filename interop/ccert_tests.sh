#!/usr/bin/env bash
# SASL EXTERNAL with a TLS client certificate (RFC 6120 section 6.3.4, XEP-0178), both roles, against real
# peers. It makes a throw-away CA (and a second, untrusted one) and client certificates with an XmppAddr
# (openssl), then:
#   - Prosody 13 with mod_auth_ccert (prosody-modules): a second Prosody of its own (interop/prosody/start.sh
#     installs both packages; this script does not install anything), VirtualHost localhost with
#     authentication = "ccert", c2s_ssl asking for a client certificate against the CA (its README's
#     settings): the client tool logs in with --client-cert/--client-key --mechanism EXTERNAL over STARTTLS
#     and over direct TLS; a certificate of the other CA is refused (by the TLS handshake: UnknownCA);
#   - the example server (hosts/src/bin/server.rs) with --client-ca: the client tool with EXTERNAL over
#     STARTTLS and direct TLS (the server's log must show LOGIN ... via EXTERNAL); a client without a
#     certificate is not offered EXTERNAL and still logs in with SCRAM; a certificate of the other CA fails the TLS handshake; a
#     certificate of another domain, or of a user the server does not know, is refused (not-authorized).
# One PASS/FAIL/SKIP line per case, then "ccert_tests: N passed, N failed[, N skipped]". Exit 0 only when
# nothing failed. Prosody and the servers are stopped (by PID, trap) at the end.
#
#   bash interop/ccert_tests.sh          # by hand (as root, Prosody 13 + prosody-modules installed);
#                                        # interop/run.sh runs it too
# Env: BUILD=0 (use the tools already built), CASE_TIMEOUT (30), LOGDIR (default $WORKDIR/ccert_tests, or a temp dir), KEEP_LOGS=1 keeps a temp
# LOGDIR after a green run.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CASE_TIMEOUT="${CASE_TIMEOUT:-30}"
DOMAIN="sansio.test"      # the example server's
P_DOMAIN="localhost"      # the ccert Prosody's
# shellcheck source=harness.sh
. "$HERE/harness.sh"
harness_logdir ccert_tests
harness_trap_pids
chmod 755 "$LOGDIR"

cleanup() { stop_all; }
finish() { harness_finish ccert_tests; }

# ---------- build once
harness_build_tools

# ---------- PKI (openssl): the CA, another CA, server certificates, client certificates
P="$LOGDIR/pki"
mkdir -p "$P"
ossl() { openssl "$@" >>"$P/openssl.log" 2>&1 || { echo "FAIL setup: openssl $1 (see $P/openssl.log)"; FAILED=1; finish; }; }
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 2)
# mk_ca NAME
mk_ca() {
  ossl req -x509 "${ec[@]}" -keyout "$P/$1.key" -out "$P/$1.pem" -subj "/CN=$1 (throw-away test CA)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
# mk_client CA NAME XMPPADDR: a client certificate with an XmppAddr (id-on-xmppAddr otherName)
mk_client() {
  ossl req -new "${ec[@]}" -keyout "$P/$2.key" -out "$P/$2.csr" -subj "/CN=$2"
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" \
    "subjectAltName=otherName:1.3.6.1.5.5.7.8.5;UTF8:$3" >"$P/$2.ext"
  ossl x509 -req -in "$P/$2.csr" -CA "$P/$1.pem" -CAkey "$P/$1.key" -CAcreateserial -days 2 -sha256 \
    -extfile "$P/$2.ext" -out "$P/$2.pem"
}
# mk_server NAME DOMAIN: self-signed, SAN = DOMAIN
mk_server() {
  ossl req -x509 "${ec[@]}" -keyout "$P/$1.key" -out "$P/$1.pem" -subj "/CN=$2" -addext "subjectAltName=DNS:$2"
}
mk_ca ca
mk_ca other-ca
mk_server server "$DOMAIN"
mk_server prosody "$P_DOMAIN"
mk_client ca alice "alice@$DOMAIN"
mk_client ca p-alice "alice@$P_DOMAIN"
mk_client other-ca rogue "alice@$DOMAIN"
mk_client other-ca p-rogue "alice@$P_DOMAIN"
mk_client ca elsewhere "alice@elsewhere.test"
mk_client ca carol "carol@$DOMAIN"
chmod 644 "$P"/*
echo "== PKI in $P: ca.pem, other-ca.pem; client certificates alice, p-alice (CA), rogue, p-rogue (other CA), elsewhere, carol"

# case_ (harness.sh): NAME EXPECT SERVERLOG PATTERN -- CMD...

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PICKED=" "
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    case "$PICKED" in *" $p "*) continue ;; esac
    if ! port_open "$p"; then PICKED+="$p "; echo "$p"; return 0; fi
  done
  return 1
}

# The EXTERNAL exchange as the client's transcript shows it: <auth mechanism='EXTERNAL'>=</auth> (no authzid).
EXT_OUT="^SEND: <auth [^>]*mechanism=.EXTERNAL.[^>]*>=</auth>"

# ---------- (a) Prosody 13 with mod_auth_ccert
PW="$LOGDIR/prosody"
mkdir -p "$PW/data" "$PW/certs"
chmod 755 "$PW"
if ! command -v prosody >/dev/null 2>&1 || [ ! -f /usr/lib/prosody/modules/mod_auth_ccert/mod_auth_ccert.lua ] \
   && [ ! -f /usr/lib/prosody/modules/mod_auth_ccert.lua ]; then
  skip "prosody-*" "no prosody or no mod_auth_ccert (prosody-modules) installed: run interop/prosody/start.sh first"
else
  PP="$(pick_port)" PD="$(pick_port)"
  ssl_opts="certificate = \"$P/prosody.pem\"; key = \"$P/prosody.key\";
    cafile = \"$P/ca.pem\"; capath = false;
    verify = { \"peer\"; \"client_once\" };   -- ask for a client certificate, do not require one
    verifyext = { lsec_ignore_purpose = false };"
  cat >"$PW/prosody.cfg.lua" <<CFGEOF
-- generated by interop/ccert_tests.sh: a throw-away Prosody for SASL EXTERNAL (mod_auth_ccert), loopback only
run_as_root = true
pidfile = "$PW/prosody.pid"
data_path = "$PW/data"
log = { { levels = { min = "debug" }, to = "file", filename = "$PW/prosody.log" } }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $PP }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { $PD }
c2s_direct_tls_interfaces = { "127.0.0.1" }
modules_disabled = { "s2s" }
s2s_ports = { }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping" }
storage = "internal"
c2s_require_encryption = true
certificates = "$PW/certs"
ssl = { certificate = "$P/prosody.pem"; key = "$P/prosody.key"; }
-- mod_auth_ccert's README: the CA, and ask clients for a certificate
c2s_ssl = { $ssl_opts }
c2s_direct_tls_ssl = { $ssl_opts }

VirtualHost "$P_DOMAIN"
  authentication = "ccert"
  certificate_match = "xmppaddr"
CFGEOF
  prosodyctl --config "$PW/prosody.cfg.lua" check config >"$PW/check.log" 2>&1 || true
  prosody -F --config "$PW/prosody.cfg.lua" >"$PW/stdout.log" 2>&1 </dev/null &
  PROSODY_PID=$!
  PIDS+=("$PROSODY_PID")
  up=no
  for _ in $(seq 100); do
    kill -0 "$PROSODY_PID" 2>/dev/null || break
    if port_open "$PP" && port_open "$PD"; then up=yes; break; fi
    sleep 0.2
  done
  if [ "$up" != yes ]; then
    fail prosody-start "the ccert Prosody did not come up on $PP/$PD:"
    tail -n 10 "$PW/stdout.log" "$PW/prosody.log" 2>/dev/null | sed 's/^/  | /'
  else
    echo "== ccert Prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null) up: STARTTLS 127.0.0.1:$PP, direct TLS 127.0.0.1:$PD (PID $PROSODY_PID)"
    PL="$PW/prosody.log"
    pc=("$CLIENT" --host 127.0.0.1 --ca-file "$P/prosody.pem" --transcript --jid "alice@$P_DOMAIN")
    OUTPAT="$EXT_OUT" case_ prosody-external-starttls ok "$PL" "Authenticated as alice@$P_DOMAIN" -- \
      "${pc[@]}" --port "$PP" --client-cert "$P/p-alice.pem" --client-key "$P/p-alice.key" --mechanism EXTERNAL
    OUTPAT="$EXT_OUT" case_ prosody-external-direct-tls ok "$PL" "Authenticated as alice@$P_DOMAIN" -- \
      "${pc[@]}" --port "$PD" --tls direct --client-cert "$P/p-alice.pem" --client-key "$P/p-alice.key" --mechanism EXTERNAL
    # Prosody (LuaSec) refuses it in the handshake already (the alert reaches a TLS 1.3 client at its
    # first read); mod_auth_ccert would say not-authorized to one that got through.
    case_ prosody-external-other-ca "error:(UnknownCA|sasl not-authorized)" "$PL" "" -- \
      "${pc[@]}" --port "$PP" --client-cert "$P/p-rogue.pem" --client-key "$P/p-rogue.key" --mechanism EXTERNAL
  fi
fi

# ---------- (b)-(d) the example server with --client-ca
start_server() { # NAME ARGS...: on 127.0.0.1:0, log $LOGDIR/server-NAME.log; sets PORT
  local log="$LOGDIR/server-$1.log"
  shift
  "$BIN" --listen 127.0.0.1:0 --domain "$DOMAIN" --cert "$P/server.pem" --key "$P/server.key" \
    --user alice:secret --client-ca "$P/ca.pem" "$@" >"$log" 2>&1 </dev/null &
  PIDS+=("$!")
  for _ in $(seq 100); do
    PORT="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")"
    [ -n "$PORT" ] && return 0
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL server: did not start"; sed 's/^/  | /' "$log"
  return 1
}
start_server starttls --tls starttls || { FAILED=$((FAILED + 1)); finish; }
S_PORT="$PORT" S_LOG="$LOGDIR/server-starttls.log"
start_server direct --tls direct || { FAILED=$((FAILED + 1)); finish; }
D_PORT="$PORT" D_LOG="$LOGDIR/server-direct.log"
echo "== example servers with --client-ca: STARTTLS 127.0.0.1:$S_PORT, direct TLS 127.0.0.1:$D_PORT (domain $DOMAIN)"
E="${DOMAIN//./\\.}"
cl=("$CLIENT" --host 127.0.0.1 --ca-file "$P/server.pem" --transcript --jid "alice@$DOMAIN")
cert() { echo --client-cert "$P/$1.pem" --client-key "$P/$1.key"; }

OUTPAT="$EXT_OUT" case_ server-external-starttls ok "$S_LOG" "^LOGIN alice@$E/[^ ]+ via EXTERNAL .*client certificate XmppAddr" -- \
  "${cl[@]}" --port "$S_PORT" $(cert alice) --mechanism EXTERNAL
OUTPAT="$EXT_OUT" case_ server-external-direct-tls ok "$D_LOG" "^LOGIN alice@$E/[^ ]+ via EXTERNAL " -- \
  "${cl[@]}" --port "$D_PORT" --tls direct $(cert alice) --mechanism EXTERNAL
case_ server-no-certificate-scram ok "$S_LOG" "^LOGIN alice@$E/[^ ]+ via SCRAM-SHA-256-PLUS " -- \
  "${cl[@]}" --port "$S_PORT" --password secret
# The features after TLS: EXTERNAL for the client with a certificate, not for the one without.
if [ -f "$LOGDIR/server-no-certificate-scram.out" ] && [ -f "$LOGDIR/server-external-starttls.out" ]; then
  if grep -q "^RECV: .*<mechanism>EXTERNAL</mechanism>" "$LOGDIR/server-no-certificate-scram.out"; then
    fail server-no-certificate-no-external "EXTERNAL offered to a client that presented no certificate"
  elif ! grep -q "^RECV: .*<mechanism>EXTERNAL</mechanism>" "$LOGDIR/server-external-starttls.out"; then
    fail server-no-certificate-no-external "EXTERNAL not in the features the client with a certificate got"
  else
    pass server-no-certificate-no-external "EXTERNAL offered after TLS only to the client that presented a verified certificate"
  fi
fi
case_ server-other-ca-refused "error:(tls|alert|UnknownCA|closed)" "$S_LOG" "^ERROR 127\.0\.0\.1:[0-9]+: tls" -- \
  "${cl[@]}" --port "$S_PORT" $(cert rogue) --mechanism EXTERNAL
case_ server-other-domain-refused "error:sasl not-authorized" "$S_LOG" "^AUTHFAIL - via EXTERNAL: not-authorized" -- \
  "${cl[@]}" --port "$S_PORT" $(cert elsewhere) --mechanism EXTERNAL
case_ server-unknown-user-refused "error:sasl not-authorized" "$S_LOG" "^AUTHFAIL carol via EXTERNAL: not-authorized" -- \
  "${cl[@]}" --port "$S_PORT" $(cert carol) --mechanism EXTERNAL

alive=0
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
if [ "$alive" = "${#PIDS[@]}" ]; then pass peers-alive "Prosody and both servers still running after every case"
else fail peers-alive "$((${#PIDS[@]} - alive)) peer(s) exited"
fi
finish
