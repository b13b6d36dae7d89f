#!/usr/bin/env bash
# Start a throw-away Prosody 13 XMPP server on 127.0.0.1 for interop tests.
#
# Usage: [PROSODY_WORKDIR=dir] interop/prosody/start.sh
#   -> prints "PEER_ENV=<workdir>/peer.env" on stdout on success (everything else goes to stderr)
#
# Installs prosody 13 + prosody-modules from Debian bookworm-backports if missing (adds the backports
# apt source if no source names it). Never starts the distro service. Everything binds to 127.0.0.1.
#
# Optional environment:
#   PROSODY_WORKDIR        work dir (default: a fresh mktemp -d)
#   PROSODY_C2S_PORT       STARTTLS c2s port      (default: a random free port)
#   PROSODY_C2S_TLS_PORT   XEP-0368 direct TLS port (default: a random free port)
#   PROSODY_HTTP_PORT      plain HTTP port for mod_websocket (RFC 7395, /xmpp-websocket) and mod_bosh
#                          (XEP-0124/0206, /http-bind), loopback only, treated as secure (default: random free)
#   PROSODY_SASL2=0        do not load mod_sasl2/sasl2_bind2/sasl2_sm/sasl2_fast (default: load them)
#   PROSODY_MODULES="..."  replace the whole list of extra modules enabled on localhost
#   PROSODY_START_TIMEOUT  seconds to wait for the ports (default 20)
#   PROSODY_LOG_LEVEL      the log's minimum level (default debug; info for load figures: module checks need it)
#   APT_TIMEOUT            seconds for each apt-get call (default 600)
#   PROSODY_INSTALL_ONLY=1 install (as above) and exit: no work dir, no server (kerberos/start-prosody.sh)
set -euo pipefail

log() { echo "[prosody/start] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install packages"
  SUDO="sudo -n"
fi
APT_TIMEOUT="${APT_TIMEOUT:-600}"
BPO_FILE=/etc/apt/sources.list.d/bookworm-backports.sources

# ---------------------------------------------------------------- 1. install (only when missing)
installed_ver() { # prints the installed version of package $1, or nothing
  dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null | awk '$1 ~ /^[ih]i/ {print $2}' || true
}
have_backports_source() {
  grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/
}
add_backports_source() {
  log "adding the bookworm-backports apt source ($BPO_FILE)"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    | $SUDO tee "$BPO_FILE" >/dev/null
}
bpo_candidate() { # does apt know a bookworm-backports version of $1 (for prosody: a 13.x one)?
  local re='bookworm-backports'
  [ "$1" = prosody ] && re=' 13[.~].*bookworm-backports'
  apt-cache madison "$1" 2>/dev/null | grep -- "$re" >/dev/null   # no -q: an early exit would SIGPIPE apt-cache under pipefail
}
apt_install() { # keeps the distro service from auto-starting (it would listen on 0.0.0.0:5222/5269)
  local created_policy=0 rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  # finish any half-done earlier install (e.g. an interrupted run) before adding more
  $SUDO dpkg --configure -a >&2 || true
  timeout "$APT_TIMEOUT" $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >&2 || rc=$?
  if [ "$created_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
  return "$rc"
}

PV="$(installed_ver prosody)"
MV="$(installed_ver prosody-modules)"
NEED=()
[[ "$PV" == 13.* ]] || NEED+=(prosody)
[[ "$MV" == *bpo* ]] || NEED+=(prosody-modules)         # bookworm's own prosody-modules is a 2023 snapshot without sasl_ssdp
command -v openssl >/dev/null 2>&1 || NEED+=(openssl)
command -v timeout >/dev/null 2>&1 || die "coreutils 'timeout' missing"
if [ "${#NEED[@]}" -gt 0 ]; then
  log "installing: ${NEED[*]} (installed prosody: ${PV:-none}, prosody-modules: ${MV:-none})"
  t0=$SECONDS
  have_backports_source || add_backports_source
  if ! bpo_candidate prosody || ! bpo_candidate prosody-modules; then
    log "apt-get update (no Prosody 13 candidate in the apt lists yet)"
    timeout "$APT_TIMEOUT" $SUDO apt-get update -q >&2 || die "apt-get update failed"
  fi
  bpo_candidate prosody || die "no Prosody 13 in bookworm-backports according to apt-cache madison prosody"
  apt_install -t bookworm-backports "${NEED[@]}" || die "apt-get install ${NEED[*]} failed"
  # don't let the packaged service come up at next boot on a systemd machine (we just installed it)
  if [[ " ${NEED[*]} " == *" prosody "* ]] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now prosody >/dev/null 2>&1 || true
  fi
  log "install done in $((SECONDS - t0))s"
else
  log "prosody $PV and prosody-modules $MV already installed; skipping install"
fi
PV="$(installed_ver prosody)"
[[ "$PV" == 13.* ]] || die "wanted Prosody 13 but dpkg says '${PV:-none}'"
for b in prosody prosodyctl openssl; do command -v "$b" >/dev/null 2>&1 || die "$b missing after install"; done
if [ "${PROSODY_INSTALL_ONLY:-0}" = 1 ]; then exit 0; fi

# ---------------------------------------------------------------- 2. work dir
WORKDIR="${PROSODY_WORKDIR:-}"
[ -n "$WORKDIR" ] || WORKDIR="$(mktemp -d -t prosody-peer.XXXXXX)"
mkdir -p "$WORKDIR"
WORKDIR="$(cd "$WORKDIR" && pwd)"
if [ -f "$WORKDIR/peer.env" ]; then
  oldpid="$(sed -n 's/^PID=//p' "$WORKDIR/peer.env")"
  if [ -n "$oldpid" ] && kill -0 "$oldpid" 2>/dev/null; then
    log "already running (PID $oldpid) in $WORKDIR"
    echo "PEER_ENV=$WORKDIR/peer.env"
    exit 0
  fi
fi
rm -rf "$WORKDIR/data"
mkdir -p "$WORKDIR/data" "$WORKDIR/certs"
chmod 755 "$WORKDIR"

# ---------------------------------------------------------------- 3. free loopback ports
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PICKED=" "
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    case "$PICKED" in *" $p "*) continue ;; esac
    if ! port_open "$p"; then echo "$p"; return 0; fi
  done
  return 1
}
C2S_PORT="${PROSODY_C2S_PORT:-$(pick_port)}" || die "no free port"
PICKED+="$C2S_PORT "
C2S_TLS_PORT="${PROSODY_C2S_TLS_PORT:-$(pick_port)}" || die "no free port"
PICKED+="$C2S_TLS_PORT "
HTTP_PORT="${PROSODY_HTTP_PORT:-$(pick_port)}" || die "no free port"

DOMAIN=localhost
SHA256_DOMAIN=sha256.localhost
ANON_DOMAIN=anon.localhost
TLS12_DOMAIN=tls12.localhost

# ---------------------------------------------------------------- 4. self-signed certificate
if [ ! -s "$WORKDIR/cert.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 \
    -keyout "$WORKDIR/key.pem" -out "$WORKDIR/cert.pem" -subj "/CN=$DOMAIN" \
    -addext "subjectAltName=DNS:$DOMAIN,DNS:$SHA256_DOMAIN,DNS:$ANON_DOMAIN,DNS:$TLS12_DOMAIN,IP:127.0.0.1" \
    2>/dev/null || die "openssl could not make the certificate"
  chmod 644 "$WORKDIR/key.pem" "$WORKDIR/cert.pem"
fi
# RFC 5929 tls-server-end-point: hash of the cert DER with the cert's signature hash (SHA-256 here).
# Stock Prosody 13 only offers tls-exporter/tls-unique; with this set it also offers tls-server-end-point.
TSEP_HASH="$(openssl x509 -in "$WORKDIR/cert.pem" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)"

# ---------------------------------------------------------------- 5. config
# Modules from prosody-modules, enabled on $DOMAIN only:
#   sasl_ssdp (XEP-0474 downgrade protection: h= in the SCRAM server-first) is always wanted.
#   sasl2 sasl2_bind2 sasl2_sm sasl2_fast (XEP-0388/0386/0198-in-SASL2/0484): a Prosody 13 deployment
#   offers them next to RFC 6120 <mechanisms/>+bind; loading them checks that our client ignores the
#   extra <authentication xmlns='urn:xmpp:sasl:2'/> feature. PROSODY_SASL2=0 turns them off.
EXTRA_MODULES="sasl_ssdp"
[ "${PROSODY_SASL2:-1}" = 0 ] || EXTRA_MODULES="sasl2 sasl2_bind2 sasl2_sm sasl2_fast sasl_ssdp"
EXTRA_MODULES="${PROSODY_MODULES:-$EXTRA_MODULES}"
CFG="$WORKDIR/prosody.cfg.lua"
write_config() {
  local extra="" m
  for m in $EXTRA_MODULES; do extra+="\"$m\"; "; done
  cat > "$CFG" <<CFGEOF
-- generated by interop/prosody/start.sh; throw-away test server, loopback only
run_as_root = true            -- test use only; harmless when not root
pidfile = "$WORKDIR/prosody.pid"
data_path = "$WORKDIR/data"
log = { { levels = { min = "${PROSODY_LOG_LEVEL:-debug}" }, to = "file", filename = "$WORKDIR/prosody.log" } }

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $C2S_PORT }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { $C2S_TLS_PORT }
c2s_direct_tls_interfaces = { "127.0.0.1" }
-- no s2s; plain HTTP on loopback only, for mod_websocket and mod_bosh (no HTTPS)
modules_disabled = { "s2s" }
s2s_ports = { }
s2s_direct_tls_ports = { }
http_ports = { $HTTP_PORT }
https_ports = { }
http_interfaces = { "127.0.0.1" }
https_interfaces = { "127.0.0.1" }

modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "register"; "legacyauth";
  "smacks"; "carbons"; "blocklist"; "private"; "vcard_legacy"; "version"; "time"; "uptime"; "pep";
  "websocket"; "bosh";
}
-- RFC 7395 at http://127.0.0.1:$HTTP_PORT/xmpp-websocket, XEP-0206 at http://127.0.0.1:$HTTP_PORT/http-bind.
-- Plain HTTP on loopback counts as secure (so c2s_require_encryption does not refuse SASL there);
-- every VirtualHost is reachable through the to= of the <open/> or the BOSH <body/>.
consider_websocket_secure = true
consider_bosh_secure = true
http_default_host = "$DOMAIN"

authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = true
allow_registration = true      -- IBR throttling (mod_register_limits) allow-lists 127.0.0.1 by default
tls_server_end_point_hash = "$TSEP_HASH"   -- sha256(cert DER), RFC 5929

certificates = "$WORKDIR/certs"
ssl = { certificate = "$WORKDIR/cert.pem"; key = "$WORKDIR/key.pem"; }

-- SCRAM-SHA-1 storage (internal_hashed default); alice/secret, bob/secret; IBR; XEP-0078 legacy auth
VirtualHost "$DOMAIN"
  modules_enabled = { $extra}

-- SCRAM-SHA-256 storage: Prosody keeps one hash family per host, so this host offers
-- SCRAM-SHA-256[-PLUS] and PLAIN, not SCRAM-SHA-1
VirtualHost "$SHA256_DOMAIN"
  password_hash = "SHA-256"

-- SASL ANONYMOUS only
VirtualHost "$ANON_DOMAIN"
  authentication = "anonymous"
  allow_registration = false

-- TLS capped at 1.2, so tls-unique channel binding is offered
VirtualHost "$TLS12_DOMAIN"
  ssl = { certificate = "$WORKDIR/cert.pem"; key = "$WORKDIR/key.pem"; protocol = "tlsv1_2"; }
CFGEOF
}
write_config
CTL_LOG="$WORKDIR/prosodyctl.log"
: > "$CTL_LOG"
if ! prosodyctl --config "$CFG" check config >>"$CTL_LOG" 2>&1; then
  log "prosodyctl check config reported problems (continuing):"; tail -n 20 "$CTL_LOG" >&2
fi

# ---------------------------------------------------------------- 6. users
for host in "$DOMAIN" "$SHA256_DOMAIN" "$TLS12_DOMAIN"; do
  for u in alice bob; do
    if ! prosodyctl --config "$CFG" register "$u" "$host" secret >>"$CTL_LOG" 2>&1; then
      tail -n 20 "$CTL_LOG" >&2; die "prosodyctl register $u@$host failed"
    fi
  done
done
log "users alice/secret, bob/secret created on $DOMAIN $SHA256_DOMAIN $TLS12_DOMAIN"

# ---------------------------------------------------------------- 7. start
START_TIMEOUT="${PROSODY_START_TIMEOUT:-20}"
PID=""
start_prosody() {
  : > "$WORKDIR/prosody.log"
  nohup prosody -F --config "$CFG" >"$WORKDIR/stdout.log" 2>&1 </dev/null &
  PID=$!
  local deadline=$((SECONDS + START_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! alive "$PID"; then
      log "prosody exited during start-up:"; tail -n 20 "$WORKDIR/stdout.log" "$WORKDIR/prosody.log" >&2 || true
      exit 1
    fi
    if port_open "$C2S_PORT" && port_open "$C2S_TLS_PORT" && port_open "$HTTP_PORT"; then return 0; fi
    sleep 0.2
  done
  log "ports $C2S_PORT/$C2S_TLS_PORT/$HTTP_PORT not accepting connections after ${START_TIMEOUT}s:"
  tail -n 20 "$WORKDIR/stdout.log" "$WORKDIR/prosody.log" >&2 || true
  stop_prosody
  exit 1
}
alive() { kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
stop_prosody() {
  kill "$PID" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$PID" || return 0; sleep 0.1; done
  kill -9 "$PID" 2>/dev/null || true
}
module_failed() { # did module $1 log a load error?
  grep -Eq "($DOMAIN:$1[[:space:]]+error)|((Unable to load|Error initializing|Failed to load|Error loading).*mod_$1\b)|(module '$1')" \
    "$WORKDIR/prosody.log"
}
start_prosody
# every community module must have loaded on $DOMAIN; a failing one is dropped (listed in
# XMPP_MODULES_DROPPED, which selftest.sh reports as a failure) and the server restarted once without it
sleep 0.3
DROPPED="" keep=""
for m in $EXTRA_MODULES; do
  if module_failed "$m"; then
    DROPPED+="$m "
    log "module $m failed to load on $DOMAIN, dropping it:"
    grep -E "$DOMAIN:$m|mod_$m|'$m'" "$WORKDIR/prosody.log" | tail -n 3 >&2 || true
  else
    keep+="$m "
  fi
done
if [ -n "$DROPPED" ]; then
  EXTRA_MODULES="$keep"
  stop_prosody; write_config; start_prosody
fi
# bound to loopback only? (portmanager logs "Activated service 'c2s' on [127.0.0.1]:PORT")
if grep -E "Activated service '[^']+' on \[" "$WORKDIR/prosody.log" | grep -v "on \[127\.0\.0\.1\]" >/dev/null; then
  log "prosody listens on a non-loopback address:"; grep "Activated service" "$WORKDIR/prosody.log" >&2
  stop_prosody; exit 1
fi

cat > "$WORKDIR/peer.env" <<ENVEOF
SERVER=prosody
SERVER_VERSION=$PV
XMPP_HOST=127.0.0.1
XMPP_PORT=$C2S_PORT
XMPP_TLS_PORT=$C2S_TLS_PORT
PROSODY_HTTP_PORT=$HTTP_PORT
XMPP_HTTP_PORT=$HTTP_PORT
XMPP_WS_URL=ws://127.0.0.1:$HTTP_PORT/xmpp-websocket
XMPP_BOSH_URL=http://127.0.0.1:$HTTP_PORT/http-bind
XMPP_DOMAIN=$DOMAIN
XMPP_SHA256_DOMAIN=$SHA256_DOMAIN
XMPP_ANON_DOMAIN=$ANON_DOMAIN
XMPP_TLS12_DOMAIN=$TLS12_DOMAIN
XMPP_USERS="alice:secret bob:secret"
XMPP_CA_CERT=$WORKDIR/cert.pem
XMPP_TLS_SERVER_END_POINT_HASH=$TSEP_HASH
XMPP_MODULES="$(echo $EXTRA_MODULES)"
XMPP_MODULES_DROPPED="$(echo $DROPPED)"
WORKDIR=$WORKDIR
PID=$PID
ENVEOF
log "prosody $PV up: PID=$PID c2s(STARTTLS)=127.0.0.1:$C2S_PORT direct-tls=127.0.0.1:$C2S_TLS_PORT http(ws,bosh)=127.0.0.1:$HTTP_PORT modules on $DOMAIN: $(echo $EXTRA_MODULES)${DROPPED:+ (dropped: $DROPPED)}"
echo "PEER_ENV=$WORKDIR/peer.env"
