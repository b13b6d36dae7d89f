#!/usr/bin/env bash
# Start a throw-away ejabberd 24 on 127.0.0.1 (for interop/load_figures.sh): installs ejabberd from
# bookworm-backports if missing (adds the backports apt source if no source names it; the distro
# service is kept from starting), writes interop/ejabberd/ejabberd.yml into a work dir with its
# certificate and port, and runs it there (ejabberdctl foreground, as the ejabberd user, its own
# Erlang node name and Mnesia spool).
#
# Usage: [EJABBERD_WORKDIR=dir] interop/ejabberd/start.sh
#   -> prints "PEER_ENV=<workdir>/peer.env" on stdout on success (the rest goes to stderr). peer.env:
#      XMPP_HOST XMPP_PORT XMPP_DOMAIN XMPP_CA_CERT SERVER_VERSION PID (the beam.smp process) NODE
# The work dir may hold cert.pem/key.pem already (load_figures.sh puts ECDSA or RSA ones there);
# otherwise an ECDSA P-256 one is made for the domain.
# Env: EJABBERD_WORKDIR, EJABBERD_DOMAIN (localhost), EJABBERD_START_TIMEOUT (60), APT_TIMEOUT (600)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[ejabberd/start] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install or run ejabberd"
  SUDO="sudo -n"
fi
APT_TIMEOUT="${APT_TIMEOUT:-600}"
BPO_FILE=/etc/apt/sources.list.d/bookworm-backports.sources
DOMAIN="${EJABBERD_DOMAIN:-localhost}"

ver="$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' ejabberd 2>/dev/null | awk '$1 ~ /^[ih]i/ {print $2}' || true)"
if [[ "$ver" != 24.* ]]; then
  log "installing ejabberd 24 from bookworm-backports (installed: ${ver:-none})"
  if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | $SUDO tee "$BPO_FILE" >/dev/null
  fi
  timeout "$APT_TIMEOUT" $SUDO apt-get update -q >&2 || die "apt-get update failed"
  created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d; created=1
  fi
  rc=0
  timeout "$APT_TIMEOUT" $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ejabberd >&2 || rc=$?
  [ "$created" = 1 ] && $SUDO rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die "apt-get install ejabberd failed ($rc)"
  ver="$(dpkg-query -W -f='${Version}' ejabberd)"
fi
# The distro service, if something started it, would hold the default node name: ours has its own.
WD="${EJABBERD_WORKDIR:-$(mktemp -d -t ejabberd.XXXXXX)}"
mkdir -p "$WD"
if [ ! -f "$WD/cert.pem" ] || [ ! -f "$WD/key.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -keyout "$WD/key.pem" \
    -out "$WD/cert.pem" -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" 2>/dev/null
fi
# What the ejabberd user reads and writes lives in a run dir of its own (the work dir may sit in a
# directory it cannot enter, such as another mktemp -d); stop.sh removes it.
RUN="$(mktemp -d -t ejabberd-run.XXXXXX)"
mkdir -p "$RUN/log" "$RUN/spool"
cat "$WD/cert.pem" "$WD/key.pem" >"$RUN/tls.pem"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
sed -e "s|@WORKDIR@|$RUN|g" -e "s|@DOMAIN@|$DOMAIN|g" -e "s|@C2S_PORT@|$PORT|g" "$HERE/ejabberd.yml" >"$RUN/ejabberd.yml"
NODE="ejabberd-load-$$@localhost"
printf 'ERLANG_NODE=%s\nPOLL=true\nERL_MAX_PORTS=65536\nERL_PROCESSES=1000000\n' "$NODE" >"$RUN/ejabberdctl.cfg"
$SUDO chown -R ejabberd:ejabberd "$RUN"
chmod 755 "$RUN"
# As the ejabberd user (ejabberdctl then runs as it is), with the open-file soft limit raised to the
# hard one first: su's login session would start it at 1,024, and the load figures hold 10,000
# sessions. The process group is ours to stop.
NOFILE="$(ulimit -Hn)"
setsid $SUDO su -s /bin/sh -c 'ulimit -n "$0"; exec ejabberdctl "$@"' ejabberd -- "$NOFILE" \
  --config-dir "$RUN" --config "$RUN/ejabberd.yml" --ctl-config "$RUN/ejabberdctl.cfg" \
  --logs "$RUN/log" --spool "$RUN/spool" --node "$NODE" foreground >"$WD/console.log" 2>&1 &
LEADER=$!
deadline=$((SECONDS + ${EJABBERD_START_TIMEOUT:-60}))
PID=""
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
  kill -0 "$LEADER" 2>/dev/null || { tail -n 30 "$WD/console.log" "$RUN/log/"*.log >&2 2>/dev/null || true; die "ejabberd exited"; }
  [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$WD/console.log" >&2; die "port $PORT not open after ${EJABBERD_START_TIMEOUT:-60}s"; }
  sleep 0.5
done
PID="$(pgrep -f "beam.smp.*-sname $NODE|beam.smp.*-name $NODE|beam.smp.*$NODE" | head -n 1 || true)"
[ -n "$PID" ] || die "no beam.smp process for $NODE"
cat >"$WD/peer.env" <<ENV
XMPP_HOST=127.0.0.1
XMPP_PORT=$PORT
XMPP_DOMAIN=$DOMAIN
XMPP_CA_CERT=$WD/cert.pem
SERVER_VERSION=ejabberd-${ver%%-*}
PID=$PID
LEADER=$LEADER
NODE=$NODE
WORKDIR=$WD
RUNDIR=$RUN
ENV
log "ejabberd $ver on 127.0.0.1:$PORT (pid $PID, node $NODE)"
echo "PEER_ENV=$WD/peer.env"
