#!/usr/bin/env bash
# The README's load figures (long: minutes; not run by CI): xmpp-load (release build) against
# xmpp-server-async, Prosody 13 (interop/prosody/start.sh, log level info) and ejabberd 24
# (interop/ejabberd/start.sh), each with an ECDSA P-256 and an RSA-2048 certificate:
#   - sustained logins/s (scenario login, STARTTLS, SCRAM, 20 at once for FIG_SECONDS) and its p99;
#   - the server's CPU per login: utime+stime of its process from /proc/PID/stat over the run / logins;
#   - RSS per idle session: VmRSS with FIG_HOLD sessions held (login-hold, ramp 400/s) minus VmRSS before,
#     divided by the sessions actually held (the run's peak ready sessions); for ours also the live heap
#     per session (its counting allocator, the STATS lines of --stats);
#   - with each certificate, the floor: `xmpp-server-async --tls-floor` (bare rustls TLS 1.3 handshakes
#     with the same certificate and configuration, no XMPP), the server side's CPU per handshake.
# Prints one line per server and certificate, with the load average at the time, then the ratios.
# FIG_20K=1 adds the 20,000 idle sessions run: xmpp-server-async --workers 2 and xmpp-load --processes 2
# (one process cannot hold 20,000 sockets here: the hard open-file limit is 20,000), its RSS and time.
#   bash interop/load_figures.sh  # env: FIG_SECONDS (20), FIG_HOLD (10000), FIG_USERS (100),
#                                 #      FIG_SERVERS ("ours prosody ejabberd"), FIG_KINDS ("ecdsa rsa"), FIG_20K
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SECS="${FIG_SECONDS:-20}" HOLD="${FIG_HOLD:-10000}" USERS="${FIG_USERS:-100}"
SERVERS="${FIG_SERVERS:-ours prosody ejabberd}" KINDS="${FIG_KINDS:-ecdsa rsa}"
WD="$(mktemp -d -t load-figures.XXXXXX)"
(cd "$ROOT" && cargo build --release --quiet -p xmpp-sansio-hosts --bin xmpp-load --bin xmpp-server-async)
LOAD="$ROOT/target/release/xmpp-load" ASYNC="$ROOT/target/release/xmpp-server-async"
PIDS=()
stop() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; PIDS=(); }
cleanup() {
  stop
  [ -f "$WD/p/peer.env" ] && bash "$HERE/prosody/stop.sh" "$WD/p" >/dev/null 2>&1 || true
  [ -f "$WD/e/peer.env" ] && bash "$HERE/ejabberd/stop.sh" "$WD/e" >/dev/null 2>&1 || true
}
trap cleanup EXIT
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
heap() { sed -n 's/^STATS .* heap \([0-9]*\) .*/\1/p' "$1" | tail -n 1; }  # the last STATS line's heap
# measure NAME PID HOSTPORT DOMAIN CA [SERVER_LOG]: prints the figure line; appends "NAME rate cpu_ms rss_kib" to $WD/figs
measure() {
  local name="$1" pid="$2" target="$3" domain="$4" ca="$5" slog="${6:-}" c0 c1 r0 r1 h0="" h1="" line logins held
  local common=(--target "$target" --domain "$domain" --password fig-secret --ca-file "$ca" --users "$USERS")
  "$LOAD" "${common[@]}" --concurrency 20 --duration 60 --max-logins "$USERS" --register >"$WD/$name-reg.out" 2>&1 || true
  c0="$(cpu "$pid")"
  "$LOAD" "${common[@]}" --concurrency 20 --duration "$SECS" >"$WD/$name-login.out" 2>&1 || true
  c1="$(cpu "$pid")"
  line="$(tail -n 1 "$WD/$name-login.out")"
  logins="$(sed -n 's/^RESULT logins=\([0-9]*\) .*/\1/p' <<<"$line")"
  sleep 2
  r0="$(rss "$pid")"; [ -n "$slog" ] && h0="$(heap "$slog")"
  "$LOAD" "${common[@]}" --concurrency "$HOLD" --duration $((HOLD / 400 + 20)) --ramp 400 --scenario login-hold \
    >"$WD/$name-hold.out" 2>&1 &
  local lp=$!
  sleep $((HOLD / 400 + 12))
  r1="$(rss "$pid")"; [ -n "$slog" ] && h1="$(heap "$slog")"
  wait "$lp" || true
  # Divided by the sessions actually held (a server that cannot keep up with the ramp holds fewer).
  held="$(sed -n 's/^  peak ready sessions *//p' "$WD/$name-hold.out")"
  local cpums rsskib heapkib=""
  cpums="$(awk -v t=$((c1 - c0)) -v n="${logins:-0}" -v k="$tck" 'BEGIN {printf "%.2f", n ? t * 1000 / k / n : 0}')"
  rsskib="$(awk -v a="$r0" -v b="$r1" -v n="${held:-0}" 'BEGIN {printf "%.1f", n ? (b - a) / n : 0}')"
  [ -n "$h1" ] && heapkib=" (live heap $(awk -v a="${h0:-0}" -v b="$h1" -v n="${held:-0}" 'BEGIN {printf "%.1f KiB", n ? (b - a) / 1024 / n : 0}'))"
  echo "$name: $line | cpu/login $cpums ms | rss/session $rsskib KiB$heapkib over ${held:-0} held ($(tail -n 1 "$WD/$name-hold.out")) | load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "$name $(sed -n 's/.* rate=\([0-9.]*\)\/s .*/\1/p' <<<"$line") $cpums $rsskib" >>"$WD/figs"
}
for kind in $KINDS; do
  mkdir -p "$WD/a-$kind"; certs "$WD/a-$kind" "$kind" localhost
  if [[ " $SERVERS " == *" ours "* ]]; then
    echo "tls-floor-$kind: $("$ASYNC" --domain localhost --db "$WD/a-$kind/floor.db" --cert "$WD/a-$kind/cert.pem" \
      --key "$WD/a-$kind/key.pem" --tls-floor 2000) | load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$ASYNC" --listen 127.0.0.1:0 --domain localhost --db "$WD/a-$kind/db" --cert "$WD/a-$kind/cert.pem" \
      --key "$WD/a-$kind/key.pem" --allow-register --stats 1 >"$WD/a-$kind/log" 2>&1 &
    PIDS+=($!); sleep 1
    port="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$WD/a-$kind/log")"
    measure "ours-$kind" "${PIDS[0]}" "127.0.0.1:$port" localhost "$WD/a-$kind/cert.pem" "$WD/a-$kind/log"
    stop
  fi
  if [[ " $SERVERS " == *" prosody "* ]]; then
    rm -rf "$WD/p"; mkdir -p "$WD/p"
    certs "$WD/p" "$kind" localhost
    # start.sh keeps a cert.pem/key.pem already in its work dir
    if ! env PROSODY_WORKDIR="$WD/p" PROSODY_LOG_LEVEL=info PROSODY_SASL2=0 bash "$HERE/prosody/start.sh" >/dev/null 2>"$WD/p.err"; then
      echo "prosody-$kind: did not start ($WD/p.err)"; continue
    fi
    . "$WD/p/peer.env"
    echo "(prosody $SERVER_VERSION)"
    measure "prosody-$kind" "$PID" "127.0.0.1:$XMPP_PORT" localhost "$WD/p/cert.pem"
    bash "$HERE/prosody/stop.sh" "$WD/p" >/dev/null 2>&1 || true
  fi
  if [[ " $SERVERS " == *" ejabberd "* ]]; then
    rm -rf "$WD/e"; mkdir -p "$WD/e"
    certs "$WD/e" "$kind" localhost
    if ! env EJABBERD_WORKDIR="$WD/e" bash "$HERE/ejabberd/start.sh" >/dev/null 2>"$WD/e.err"; then
      echo "ejabberd-$kind: did not start ($WD/e.err)"; continue
    fi
    . "$WD/e/peer.env"
    echo "($SERVER_VERSION)"
    measure "ejabberd-$kind" "$PID" "127.0.0.1:$XMPP_PORT" localhost "$WD/e/cert.pem"
    bash "$HERE/ejabberd/stop.sh" "$WD/e" >/dev/null 2>&1 || true
  fi
done
# The ratios, ours over each other server's (logins/s: higher is better; CPU and RSS: lower).
if [ -f "$WD/figs" ]; then
  for kind in $KINDS; do
    for other in prosody ejabberd; do
      awk -v k="$kind" -v o="$other" '
        $1 == "ours-" k {r = $2; c = $3; m = $4}
        $1 == o "-" k {ro = $2; co = $3; mo = $4}
        END {if (r != "" && ro != "") printf "ratio ours/%s %s: logins/s %.1fx, cpu/login %.2fx, rss/session %.2fx\n", o, k, ro ? r / ro : 0, co ? c / co : 0, mo ? m / mo : 0}
      ' "$WD/figs"
    done
  done
fi
if [ "${FIG_20K:-0}" = 1 ]; then
  N=20000
  mkdir -p "$WD/w"; certs "$WD/w" ecdsa localhost
  "$ASYNC" --listen 127.0.0.1:0 --domain localhost --db "$WD/w/db" --cert "$WD/w/cert.pem" --key "$WD/w/key.pem" \
    --allow-register --workers 2 --stats 1 >"$WD/w/log" 2>&1 &
  PIDS+=($!); sleep 2
  port="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$WD/w/log")"
  wpids="$(sed -n 's/^LISTENING .* pids \([0-9,]*\)$/\1/p' "$WD/w/log" | tr , ' ')"
  common=(--target "127.0.0.1:$port" --domain localhost --password fig-secret --ca-file "$WD/w/cert.pem" --users "$USERS")
  "$LOAD" "${common[@]}" --concurrency 20 --duration 60 --max-logins "$USERS" --register >"$WD/w-reg.out" 2>&1 || true
  total_rss() { local t=0 p; for p in "${PIDS[0]}" $wpids; do t=$((t + $(rss "$p"))); done; echo "$t"; }
  logins() { for w in 0 1; do grep "^STATS .* worker $w$" "$WD/w/log" | tail -n 1 | awk '{print $5}'; done | awk '{s += $1} END {print s + 0}'; }
  sleep 1.5; l0="$(logins)"  # the registration run's logins
  r0="$(total_rss)"; t0="$(date +%s.%N)"
  "$LOAD" "${common[@]}" --concurrency "$N" --duration $((N / 400 + 40)) --ramp 400 --scenario login-hold \
    --processes 2 >"$WD/w-hold.out" 2>&1 &
  lp=$!
  # Until the workers have counted N more logins (their STATS lines, one a second each).
  l=0
  for _ in $(seq $((N / 400 * 4 + 160))); do
    sleep 0.5
    l=$(($(logins) - l0))
    [ "$l" -ge "$N" ] && break
  done
  t1="$(date +%s.%N)"; r1="$(total_rss)"
  wait "$lp" || true
  echo "20k: $l sessions logged in and held after $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s (ramp 400/s);" \
    "RSS of the 3 processes $((r0 / 1024)) -> $((r1 / 1024)) MiB, $(awk -v a="$r0" -v b="$r1" -v n="$N" 'BEGIN {printf "%.1f", (b - a) / n}') KiB/session |" \
    "$(tail -n 1 "$WD/w-hold.out") | load $(cut -d' ' -f1-3 /proc/loadavg)"
  stop
fi
echo "outputs: $WD"
