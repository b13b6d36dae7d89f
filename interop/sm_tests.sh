#!/usr/bin/env bash
# Stream management (XEP-0198) against real peers: the client tool (hosts/src/bin/client.rs, --sm) against
# Prosody 13 (mod_smacks, "smacks" in Prosody 13 core) and against the example server (--sm):
#   *-hangup-resume: enable, a message to its own full JID, drop the TCP connection without closing the
#                    stream (--hangup), reconnect and resume in the same process: the message arrives
#                    exactly once (counted in the STANZA lines of both connections);
#   *-state-file:    the same, but the state goes to a file (--sm-state-file) and the process exits; a new
#                    process resumes from the file: the message arrives exactly once across both;
#   *-unknown:       resuming from the state of a session that ended with a close: the resumption fails
#                    (item-not-found) and a new session binds;
#   slixmpp-resume:  slixmpp's XEP-0198 plugin against the example server (STARTTLS, a throw-away self-signed
#                    certificate): Alice enables, her socket is cut, Bob messages her while she is detached, she
#                    reconnects and resumes: the message, held by the server, arrives exactly once
#                    (interop/clients/slixmpp_sm_resume.py; PYTHON is the venv's, as interop/run.sh exports it).
# Reads the peer's environment (XMPP_HOST XMPP_PORT XMPP_DOMAIN XMPP_CA_CERT; interop/run.sh exports
# peer.env); starts the example server itself (127.0.0.1:0, stopped by PID). One PASS/FAIL line per case
# (each bounded by CASE_TIMEOUT, 30 s), then "sm_tests: N passed, N failed". Exit 0 only when nothing failed.
#   set -a; . /path/to/peer.env; set +a; bash interop/sm_tests.sh
# Env: BUILD=0 (use the tools already built), LOGDIR (default $WORKDIR/sm_tests, or a temp dir).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CASE_TIMEOUT="${CASE_TIMEOUT:-30}"
# shellcheck source=harness.sh
. "$HERE/harness.sh"
harness_logdir sm_tests
harness_trap_pids
cleanup() { stop_all; }
finish() { harness_finish sm_tests; }

harness_build_tools

# run NAME CMD...: the client, time-bound, output in $LOGDIR/NAME.out; its exit code.
run() {
  local name="$1" rc=0; shift
  timeout "$CASE_TIMEOUT" "$@" >"$LOGDIR/$name.out" 2>&1 </dev/null || rc=$?
  [ "$rc" = 124 ] && echo "(timed out after ${CASE_TIMEOUT}s: $name)" >>"$LOGDIR/$name.out"
  return "$rc"
}
# copies TEXT FILES...: how many STANZA lines carry <body>TEXT</body>.
copies() { local t="$1"; shift; cat "$@" | grep -c "^STANZA .*<body>$t</body>" || true; }

# sm_cases PREFIX SERVERLOG CLIENT-ARGS...: the three cases against one server.
sm_cases() {
  local p="$1" slog="$2" n m f; shift 2
  local text="sm-$p-$$-$RANDOM"
  # 1. hang up and resume in the same process.
  if run "$p-hangup-resume" "$CLIENT" "$@" --sm --message "$text" --hangup \
     && grep -Eq '^OK .* sm=[^ ]+$' "$LOGDIR/$p-hangup-resume.out" \
     && grep -Eq '^OK .* resumed h=[0-9]+$' "$LOGDIR/$p-hangup-resume.out"; then
    n="$(copies "$text" "$LOGDIR/$p-hangup-resume.out")"
    if [ "$n" = 1 ]; then pass "$p-hangup-resume" "enabled, hung up, resumed: the message arrived once ($(grep -E '^OK .* resumed' "$LOGDIR/$p-hangup-resume.out"))"
    else fail "$p-hangup-resume" "the message arrived $n times"; fi
  else
    fail "$p-hangup-resume" "no 'OK ... sm=' then 'OK ... resumed h=' lines"
  fi
  # 2. across processes, through the state file.
  f="$LOGDIR/$p.state" text="$text-file"
  rm -f "$f"
  if run "$p-state-file-1" "$CLIENT" "$@" --sm --sm-state-file "$f" --message "$text" --hangup \
     && [ -s "$f" ] && grep -Eq '^OK .* sm=[^ ]+$' "$LOGDIR/$p-state-file-1.out" \
     && run "$p-state-file-2" "$CLIENT" "$@" --sm --sm-state-file "$f" \
     && grep -Eq '^OK .* resumed h=[0-9]+$' "$LOGDIR/$p-state-file-2.out"; then
    n="$(copies "$text" "$LOGDIR/$p-state-file-1.out" "$LOGDIR/$p-state-file-2.out")"
    if [ "$n" = 1 ]; then pass "$p-state-file" "saved, exited, resumed from a new process: the message arrived once ($(grep -E '^OK ' "$LOGDIR/$p-state-file-2.out"))"
    else fail "$p-state-file" "the message arrived $n times across both processes"; fi
  else
    fail "$p-state-file" "expected 'OK ... sm=' with a state file, then 'OK ... resumed h=' (see $p-state-file-1.out, -2.out)"
  fi
  # 3. a state the server does not know: resumption fails, what it held comes back, a new session.
  #    The state of case 2 (resumed and closed since: that session is over).
  # Takeover: the first process stays connected (--linger) while a
  # second resumes from its state file; the server ends the first stream
  # (ours with a conflict stream error, Prosody by closing the
  # connection: TAKEOVER_END) and resumes the session on the second.
  f="$LOGDIR/$p.takeover.state" text="$text-takeover"
  rm -f "$f"
  run "$p-takeover-1" "$CLIENT" "$@" --sm --sm-state-file "$f" --message "$text" --linger 20 &
  local first=$!
  for _ in $(seq 100); do
    grep -q "^STANZA .*<body>$text</body>" "$LOGDIR/$p-takeover-1.out" 2>/dev/null && break
    sleep 0.1
  done
  local rc2=0 rc1=0
  run "$p-takeover-2" "$CLIENT" "$@" --sm --sm-state-file "$f" || rc2=$?
  wait "$first" || rc1=$?
  if [ "$rc2" = 0 ] && [ "$rc1" != 0 ] \
     && grep -Eq '^OK .* resumed h=[0-9]+$' "$LOGDIR/$p-takeover-2.out" \
     && grep -Eq "${TAKEOVER_END:-^ERROR .*conflict}" "$LOGDIR/$p-takeover-1.out"; then
    n="$(copies "$text" "$LOGDIR/$p-takeover-1.out" "$LOGDIR/$p-takeover-2.out")"
    if [ "$n" = 1 ]; then pass "$p-takeover" "resumed while the first connection was up: it ended with $(grep -E '^ERROR ' "$LOGDIR/$p-takeover-1.out" | cut -c1-60); the message arrived once ($(grep -E '^OK ' "$LOGDIR/$p-takeover-2.out"))"
    else fail "$p-takeover" "the message arrived $n times across both processes"; fi
  else
    fail "$p-takeover" "expected the second process 'OK ... resumed h=' and the first to end with /${TAKEOVER_END:-^ERROR .*conflict}/ (see $p-takeover-1.out, -2.out)"
  fi
  f="$LOGDIR/$p.state"
  m="$text"
  if run "$p-unknown" "$CLIENT" "$@" --sm --sm-state-file "$f" \
     && grep -q -- '-- resumption failed: item-not-found' "$LOGDIR/$p-unknown.out" \
     && grep -Eq '^OK .* sm=[^ ]+$' "$LOGDIR/$p-unknown.out"; then
    pass "$p-unknown" "item-not-found, then a new session ($(grep -E '^OK ' "$LOGDIR/$p-unknown.out"))"
  else
    fail "$p-unknown" "expected '-- resumption failed: item-not-found' and a new session"
  fi
  : "$slog" "$m"
}

# ---------- Prosody 13 (mod_smacks)
missing=""
for v in XMPP_HOST XMPP_PORT XMPP_DOMAIN XMPP_CA_CERT; do [ -n "${!v:-}" ] || missing="$missing $v"; done
if [ -n "$missing" ]; then
  skip "prosody-*" "not set:$missing (export the peer's peer.env first)"
else
  : >"$LOGDIR/prosody-none.log"
  TAKEOVER_END='^ERROR ' sm_cases prosody "$LOGDIR/prosody-none.log" --host "$XMPP_HOST" --port "$XMPP_PORT" \
    --jid "alice@$XMPP_DOMAIN" --password secret --ca-file "$XMPP_CA_CERT" --resource sm-interop
fi

# ---------- the example server (--sm)
slog="$LOGDIR/server.log"
"$BIN" --listen 127.0.0.1:0 --domain sansio.test --tls none --user alice:secret --sm --sm-resume-timeout 30 \
  >"$slog" 2>&1 &
PIDS+=($!)
PORT="$(harness_port "$slog")"
if [ -z "$PORT" ]; then
  fail "server-start" "no LISTENING line"; tail -n 5 "$slog" | sed 's/^/  | /'
else
  sm_cases server "$slog" --host 127.0.0.1 --port "$PORT" --tls none --mechanism SCRAM-SHA-256 \
    --jid alice@sansio.test --password secret
  if grep -q '^DETACHED ' "$slog" && grep -q '^RESUMED ' "$slog" && grep -q '^TAKEOVER ' "$slog"; then
    pass "server-log" "the server logged DETACHED, TAKEOVER and RESUMED"
  else
    fail "server-log" "no DETACHED/TAKEOVER/RESUMED lines in $slog"
  fi
fi

# ---------- slixmpp (xep_0198) resumes against the example server
if ! command -v openssl >/dev/null 2>&1; then
  skip "slixmpp-resume" "no openssl for the throw-away certificate"
else
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 2 \
    -keyout "$LOGDIR/key.pem" -out "$LOGDIR/cert.pem" -subj "/CN=sansio.test" \
    -addext "subjectAltName=DNS:sansio.test" >"$LOGDIR/openssl.log" 2>&1
  tlog="$LOGDIR/server-tls.log"
  "$BIN" --listen 127.0.0.1:0 --domain sansio.test --tls starttls --cert "$LOGDIR/cert.pem" \
    --key "$LOGDIR/key.pem" --user alice:secret --user bob:secret --sm --sm-resume-timeout 30 >"$tlog" 2>&1 &
  PIDS+=($!)
  TPORT="$(harness_port "$tlog")"
  if [ -z "$TPORT" ]; then
    fail "slixmpp-resume" "the TLS server did not start"
  elif run slixmpp-resume "${PYTHON:-python3}" "$HERE/clients/slixmpp_sm_resume.py" --port "$TPORT" \
       --jid alice@sansio.test --password secret --bob bob@sansio.test --bob-password secret \
     && grep -Eq '^OK .* messages=1$' "$LOGDIR/slixmpp-resume.out" \
     && grep -Eq '^RESUMED .*: 1 held stanzas delivered' "$tlog"; then
    pass "slixmpp-resume" "$(grep -E '^OK ' "$LOGDIR/slixmpp-resume.out"); the server: $(grep -E '^RESUMED ' "$tlog" | cut -d'(' -f1)"
  else
    fail "slixmpp-resume" "expected 'OK ... messages=1' and the server's 'RESUMED ...: 1 held stanzas delivered'"
    tail -n 5 "$tlog" | sed 's/^/  | /'
  fi
fi
finish
