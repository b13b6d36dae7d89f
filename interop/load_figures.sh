#!/usr/bin/env bash
# The README's load figures (long: minutes; not run by CI): xmpp-load (release build) against
# xmpp-server-async and Prosody 13 (interop/prosody/start.sh, log level info), each with an ECDSA P-256
# and an RSA-2048 certificate:
#   - sustained logins/s (scenario login, STARTTLS, SCRAM, 20 at once for FIG_SECONDS) and its p99;
#   - the server's CPU per login: utime+stime of its process from /proc/PID/stat over the run / logins;
#   - RSS per idle session: VmRSS with FIG_HOLD sessions held (login-hold, ramp 400/s) minus VmRSS before,
#     divided by the sessions actually held (the run's peak ready sessions).
# Prints one line per server and certificate, with the load average of the machine at the time.
#   bash interop/load_figures.sh     # env: FIG_SECONDS (20), FIG_HOLD (10000), FIG_USERS (100)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SECS="${FIG_SECONDS:-20}" HOLD="${FIG_HOLD:-10000}" USERS="${FIG_USERS:-100}"
WD="$(mktemp -d -t load-figures.XXXXXX)"
(cd "$ROOT" && cargo build --release --quiet -p xmpp-sansio-hosts --bin xmpp-load --bin xmpp-server-async)
LOAD="$ROOT/target/release/xmpp-load" ASYNC="$ROOT/target/release/xmpp-server-async"
PIDS=()
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; PIDS=(); }
trap 'stop; [ -f "$WD/p/peer.env" ] && bash "$HERE/prosody/stop.sh" "$WD/p" >/dev/null 2>&1 || true' EXIT
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }  # kB
tck="$(getconf CLK_TCK)"
certs() { # certs DIR KIND DOMAIN
  if [ "$2" = ecdsa ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -keyout "$1/key.pem" \
      -out "$1/cert.pem" -subj "/CN=$3" -addext "subjectAltName=DNS:$3" 2>/dev/null
  else
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$1/key.pem" -out "$1/cert.pem" \
      -subj "/CN=$3" -addext "subjectAltName=DNS:$3" 2>/dev/null
  fi
}
# measure NAME PID HOSTPORT DOMAIN CA
measure() {
  local name="$1" pid="$2" target="$3" domain="$4" ca="$5" c0 c1 r0 r1 line logins held
  local common=(--target "$target" --domain "$domain" --password fig-secret --ca-file "$ca" --users "$USERS")
  "$LOAD" "${common[@]}" --concurrency 20 --duration 60 --max-logins "$USERS" --register >"$WD/$name-reg.out" 2>&1 || true
  c0="$(cpu "$pid")"
  "$LOAD" "${common[@]}" --concurrency 20 --duration "$SECS" >"$WD/$name-login.out" 2>&1 || true
  c1="$(cpu "$pid")"
  line="$(tail -n 1 "$WD/$name-login.out")"
  logins="$(sed -n 's/^RESULT logins=\([0-9]*\) .*/\1/p' <<<"$line")"
  r0="$(rss "$pid")"
  "$LOAD" "${common[@]}" --concurrency "$HOLD" --duration $((HOLD / 400 + 20)) --ramp 400 --scenario login-hold \
    >"$WD/$name-hold.out" 2>&1 &
  local lp=$!
  sleep $((HOLD / 400 + 12))
  r1="$(rss "$pid")"
  wait "$lp" || true
  # Divided by the sessions actually held (a server that cannot keep up with the ramp holds fewer).
  held="$(sed -n 's/^  peak ready sessions *//p' "$WD/$name-hold.out")"
  echo "$name: $line | cpu/login $(awk -v t=$((c1 - c0)) -v n="${logins:-0}" -v k="$tck" 'BEGIN {printf "%.2f ms", n ? t * 1000 / k / n : 0}') | rss/session $(awk -v a="$r0" -v b="$r1" -v n="${held:-0}" 'BEGIN {printf "%.1f KiB", n ? (b - a) / n : 0}') over ${held:-0} held ($(tail -n 1 "$WD/$name-hold.out")) | load $(cut -d' ' -f1-3 /proc/loadavg)"
}
for kind in ecdsa rsa; do
  mkdir -p "$WD/a-$kind"; certs "$WD/a-$kind" "$kind" localhost
  "$ASYNC" --listen 127.0.0.1:0 --domain localhost --db "$WD/a-$kind/db" --cert "$WD/a-$kind/cert.pem" \
    --key "$WD/a-$kind/key.pem" --allow-register >"$WD/a-$kind/log" 2>&1 &
  PIDS+=($!); sleep 1
  port="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$WD/a-$kind/log")"
  measure "xmpp-server-async-$kind" "${PIDS[0]}" "127.0.0.1:$port" localhost "$WD/a-$kind/cert.pem"
  stop
  rm -rf "$WD/p"; mkdir -p "$WD/p"
  certs "$WD/p" "$kind" localhost
  # start.sh keeps a cert.pem/key.pem already in its work dir
  env PROSODY_WORKDIR="$WD/p" PROSODY_LOG_LEVEL=info PROSODY_SASL2=0 bash "$HERE/prosody/start.sh" >/dev/null 2>"$WD/p.err"
  . "$WD/p/peer.env"
  measure "prosody-$SERVER_VERSION-$kind" "$PID" "127.0.0.1:$XMPP_PORT" localhost "$WD/p/cert.pem"
  bash "$HERE/prosody/stop.sh" "$WD/p" >/dev/null 2>&1 || true
done
echo "outputs: $WD"
