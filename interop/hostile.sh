#!/usr/bin/env bash
# The hostile-peer suite over real sockets on 127.0.0.1 (issue 11). Needs no Prosody and no venv (stdlib
# Python 3 and openssl).
#   1. interop/clients/hostile.py attacks the server tool (hosts/src/bin/server.rs), a fresh server per attack: elements over the
#      size limit and memory amplification shapes (policy-violation, peak RSS bounded, the server reading
#      far less than the 5 MiB flood), elements refused at their start tag by phase, legacy logins before
#      STARTTLS, failures counted across SASL aborts and jabber:iq:auth, a trickled element after ready,
#      text before the header. One PASS/FAIL line per attack with the condition, bytes sent, bytes the
#      server read, time to close and peak RSS growth.
#   2. interop/clients/hostile_peer.py, a hostile server, answers each client tool's first request with
#      an element that never ends (5 MiB): the client must refuse it at its limit, write its stream error
#      and </stream:stream>, and hang up at once (the peer sees a reset after far less than 5 MiB).
# Ends with "hostile: N passed, N failed"; exit 0 only when nothing failed.
#
#   bash interop/hostile.sh [--markdown]     # --markdown: also the server table as Markdown (for the README)
# Env: PYTHON (default python3), LOGDIR (default $WORKDIR/hostile or a temp dir), KEEP_LOGS=1,
#      HOSTILE_ARGS (more arguments for hostile.py, e.g. "--only oversize,ns-heavy").
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PY="${PYTHON:-python3}"
DOMAIN="sansio.test"
MARKDOWN=()
[ "${1:-}" = --markdown ] && MARKDOWN=(--markdown)

# shellcheck source=harness.sh
. "$HERE/harness.sh"
harness_logdir hostile
cleanup() { :; }
finish() { harness_finish hostile; }

# ---------- build
echo "== building the server and clients (the hosts crate's tools)"
if ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin server --bin client --bin tokio_client \
  --bin legacy_login --bin reguser) >"$LOGDIR/build.log" 2>&1; then
  fail build "cargo build of the tools"; tail -n 30 "$LOGDIR/build.log" | sed 's/^/  | /'; finish
fi
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
EX="${TARGET_DIR:-$ROOT/target}/debug"

# ---------- certificate (self-signed, SAN = the domain)
CERT="$LOGDIR/cert.pem" KEY="$LOGDIR/key.pem"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 2 \
  -keyout "$KEY" -out "$CERT" -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
  >"$LOGDIR/openssl.log" 2>&1; then
  fail setup "openssl req"; tail -n 5 "$LOGDIR/openssl.log"; finish
fi

# ---------- 1. attacks on the server tool
echo "== attacks on the server tool (one fresh server per attack)"
# shellcheck disable=SC2086
"$PY" "$HERE/clients/hostile.py" --server "$EX/server" --cert "$CERT" --key "$KEY" --logdir "$LOGDIR/server" \
  "${MARKDOWN[@]}" ${HOSTILE_ARGS:-} | tee "$LOGDIR/server.out" | grep -v '^hostile: '
p="$(grep -c '^PASS ' "$LOGDIR/server.out")" f="$(grep -c '^FAIL ' "$LOGDIR/server.out")"
PASSED=$((PASSED + p)) FAILED=$((FAILED + f))
grep -q '^hostile: ' "$LOGDIR/server.out" || fail hostile.py "no summary line (crashed?)"

# ---------- 2. the client tools against a hostile server
echo "== client tools against a server that sends an element without end (5 MiB)"
# hangup NAME TLS(yes|no) CMD...: the client must exit within 10 s with an ERROR about the limit; the peer
# must have been reset after far less than the 5 MiB, having received the stream error and the close.
hangup() {
  local name="$1" tls="$2" out="$LOGDIR/$1.client" peer="$LOGDIR/$1.peer" port="" i rc=0 t0 t1 line
  shift 2
  local extra=()
  [ "$tls" = yes ] && extra=(--cert "$CERT" --key "$KEY")
  "$PY" "$HERE/clients/hostile_peer.py" "${extra[@]}" >"$peer" 2>&1 &
  local ppid=$!
  for i in $(seq 100); do
    port="$(sed -n 's/^LISTENING //p' "$peer")"
    [ -n "$port" ] && break
    sleep 0.05
  done
  if [ -z "$port" ]; then fail "$name" "hostile_peer.py did not start"; kill "$ppid" 2>/dev/null; return; fi
  t0=$(date +%s%N)
  timeout 10 "${@//PORT/$port}" >"$out" 2>&1 </dev/null || rc=$?
  t1=$(date +%s%N)
  wait "$ppid"
  line="$(grep -E '^HOSTILE-PEER ' "$peer" | tail -n 1)"
  local sent end said ms=$(( (t1 - t0) / 1000000 ))
  sent="$(sed -n 's/.* sent=\([0-9]*\) .*/\1/p' <<<"$line")"
  end="$(sed -n 's/.* end=\([a-z-]*\) .*/\1/p' <<<"$line")"
  said="${line#* client_said=}"
  if [ "$rc" = 124 ]; then fail "$name" "the client did not exit within 10 s (peer: ${line:-nothing})"; return; fi
  if [ "$rc" = 0 ] || ! grep -Eq 'policy-violation|ElementBytes' "$out"; then
    fail "$name" "expected a failure at the element limit, got exit $rc: $(tail -n 1 "$out" | cut -c1-200)"; return
  fi
  if [ -z "$sent" ] || [ "$end" != reset ] || [ "$sent" -gt $((2 * 1024 * 1024)) ]; then
    fail "$name" "the client did not hang up at once: ${line:-no peer line}"; return
  fi
  if [[ "$said" != *"<policy-violation"*"</stream:stream>"* ]]; then
    fail "$name" "the client hung up without its stream error and close (it said: ${said:0:200})"; return
  fi
  pass "$name" "exit $rc after ${ms} ms; the peer wrote $sent of 5242880 bytes before the reset"
}
J=(--jid "alice@$DOMAIN" --password secret --host 127.0.0.1 --port PORT --timeout 10)
hangup client-plain no "$EX/client" "${J[@]}" --tls none
hangup client-starttls yes "$EX/client" "${J[@]}" --ca-file "$CERT"
hangup tokio_client-plain no "$EX/tokio_client" "${J[@]}" --tls none
hangup tokio_client-starttls yes "$EX/tokio_client" "${J[@]}" --ca-file "$CERT"
hangup legacy_login-plain no "$EX/legacy_login" "${J[@]}" --tls none --allow-plaintext
hangup reguser-starttls yes "$EX/reguser" --ca-file "$CERT" --domain "$DOMAIN" 127.0.0.1:PORT
finish
