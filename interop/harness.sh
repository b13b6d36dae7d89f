# Sourced by the interop scripts that start their own peers (server_tests.sh,
# ccert_tests.sh, kerberos_tests.sh): the log folder, PASS/SKIP/FAIL lines,
# the summary and exit status, and `case_`, one client run checked against
# its OK/ERROR line and the server's log. Each script defines `cleanup`
# (stop what it started) before calling harness_finish.

PASSED=0 FAILED=0 SKIPPED=0

# harness_logdir NAME: LOGDIR from the environment, else $WORKDIR/NAME, else
# a temp dir (TMPLOG), removed after a green run unless KEEP_LOGS=1.
harness_logdir() {
  TMPLOG=""
  if [ -n "${LOGDIR:-}" ]; then :
  elif [ -n "${WORKDIR:-}" ]; then LOGDIR="$WORKDIR/$1"
  else TMPLOG="$(mktemp -d -t "$1.XXXXXX")"; LOGDIR="$TMPLOG"
  fi
  mkdir -p "$LOGDIR"
  LOGDIR="$(cd "$LOGDIR" && pwd)"
}

# harness_finish NAME: `cleanup`, the summary line, exit 0 only when
# something passed and nothing failed (the logs' place otherwise).
harness_finish() {
  cleanup
  local line="$1: $PASSED passed, $FAILED failed"
  [ "$SKIPPED" -gt 0 ] && line="$line, $SKIPPED skipped"
  echo "$line"
  if [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]; then
    [ -n "$TMPLOG" ] && [ "${KEEP_LOGS:-0}" != 1 ] && rm -rf -- "$TMPLOG"
    exit 0
  fi
  echo "logs: $LOGDIR"
  exit 1
}

# harness_port SERVERLOG: waits (10 s at most) for the example server's "LISTENING 127.0.0.1:PORT ..." line
# and prints PORT (nothing when it never came).
harness_port() {
  local port="" i
  for i in $(seq 100); do
    port="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$1")"
    [ -n "$port" ] && break
    sleep 0.1
  done
  echo "$port"
}

pass() { PASSED=$((PASSED + 1)); echo "PASS $1: $2"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP $1: $2"; }
fail() {
  FAILED=$((FAILED + 1)); echo "FAIL $1: $2"
  if [ -f "$LOGDIR/$1.out" ]; then
    echo "  ---- $LOGDIR/$1.out (last lines)"
    tail -n 8 "$LOGDIR/$1.out" | cut -c1-300 | sed 's/^/  | /'
  fi
}

# case_ NAME EXPECT SERVERLOG PATTERN -- CMD...
#   EXPECT: "ok" (exit 0 and an "OK ..." line) or "error:REGEX" (non-zero exit, an "ERROR ..." line matching)
#   PATTERN: an extended regex that a line the server logged during the case must match ("" for none)
#   OUTPAT (env, optional): an extended regex that a line of the client's output must match
#   CASE_TIMEOUT (seconds) bounds the run.
case_() {
  local name="$1" expect="$2" slog="$3" pat="$4"; shift 5
  local out="$LOGDIR/$name.out" rc=0 line from i
  from=$(($(wc -l <"$slog") + 1))
  timeout "$CASE_TIMEOUT" "$@" >"$out" 2>&1 </dev/null || rc=$?
  line="$(grep -E '^(OK|ERROR) ' "$out" | tail -n 1)"
  if [ "$rc" = 124 ]; then fail "$name" "timed out after ${CASE_TIMEOUT}s"; return; fi
  if [ "$expect" = ok ]; then
    if [ "$rc" != 0 ] || [[ "$line" != OK* ]]; then
      fail "$name" "expected OK, got exit $rc and '${line:-no OK/ERROR line}'"; return
    fi
  else
    local want="${expect#error:}"
    if [ "$rc" = 0 ] || [[ "$line" != ERROR* ]] || ! grep -Eq -- "$want" <<<"$line"; then
      fail "$name" "expected a non-zero exit and ERROR /$want/, got exit $rc and '${line:-no OK/ERROR line}'"; return
    fi
  fi
  if [ -n "${OUTPAT:-}" ] && ! grep -Eq -- "$OUTPAT" "$out"; then
    fail "$name" "$line, but no line of the client's output matches /$OUTPAT/"; return
  fi
  if [ -n "$pat" ]; then
    # The server logs after writing, and a loaded CI machine can hold its
    # log writes back for a while: give it up to five seconds.
    for i in $(seq 50); do
      tail -n +"$from" "$slog" | grep -Eq -- "$pat" && break
      sleep 0.1
    done
    if ! tail -n +"$from" "$slog" | grep -Eq -- "$pat"; then
      fail "$name" "$line, but the server logged no line matching /$pat/ from line $from on:"
      tail -n +"$from" "$slog" | tail -n 5 | cut -c1-300 | sed 's/^/  | /'
      echo "  ---- where the whole log matches (line numbers):"
      grep -nE -- "$pat" "$slog" | tail -n 3 | cut -c1-200 | sed 's/^/  | /'
      return
    fi
  fi
  local logged
  logged="$(tail -n +"$from" "$slog" | grep -E -- "${pat:-^$}" | head -n 1 | cut -c1-160)"
  pass "$name" "$line${logged:+ [server: $logged]}"
}

# The processes a script started (PIDS), stopped by PID: TERM, then KILL after 5 s.
# harness_trap_pids installs it for EXIT, INT and TERM.
PIDS=()
stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}
harness_trap_pids() {
  trap stop_all EXIT
  trap 'stop_all; exit 130' INT TERM
}

# harness_build_tools: builds the server and client tools (unless BUILD=0) and sets BIN and CLIENT to
# them; a failure is one FAIL and `finish`. Needs ROOT and LOGDIR.
harness_build_tools() {
  echo "== building the server and client tools"
  if [ "${BUILD:-1}" = 1 ] && ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin server --bin client) >"$LOGDIR/build.log" 2>&1; then
    echo "FAIL build: cargo build -p xmpp-sansio-hosts --bin server --bin client"; tail -n 30 "$LOGDIR/build.log" | sed 's/^/  | /'
    FAILED=1; finish
  fi
  local target
  target="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  BIN="${target:-$ROOT/target}/debug/server"
  CLIENT="${target:-$ROOT/target}/debug/client"
  [ -x "$BIN" ] && [ -x "$CLIENT" ] || { echo "FAIL build: no binaries at $BIN, $CLIENT"; FAILED=1; finish; }
}

# harness_port LOG: the port of the server's `LISTENING 127.0.0.1:PORT` line in LOG (waits up to 10 s), or
# nothing.
harness_port() {
  local port=""
  for _ in $(seq 100); do
    port="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$1")"
    [ -n "$port" ] && break
    sleep 0.1
  done
  echo "$port"
}
