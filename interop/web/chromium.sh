# shellcheck shell=bash
# Sourced by the browser harnesses (web_tests.sh, sso_tests.sh): one headless Chromium run that ends when its page
# has POSTed a verdict to a collector (interop/web/wire_proxy.py http, which prints "RESULT <line>").
#
# chromium_verdict RESULTS LOG -- COMMAND...: runs COMMAND (chromium with its flags and URL, possibly behind env) in a
# process group of its own, bounded by CASE_TIMEOUT, until RESULTS has a new "RESULT " line or the browser exits;
# then stops the group. VERDICT is that line without "RESULT " ("" for none). CHROME_PID names the group meanwhile
# (for the caller's trap).
chromium_verdict() {
  local results="$1" log="$2" before
  shift 3
  before="$(grep -c '^RESULT ' "$results")"
  VERDICT=""
  setsid timeout "$CASE_TIMEOUT" "$@" >"$log" 2>&1 </dev/null &
  CHROME_PID=$!
  for _ in $(seq 1 $((CASE_TIMEOUT * 10))); do
    if [ "$(grep -c '^RESULT ' "$results")" -gt "$before" ]; then
      VERDICT="$(sed -n 's/^RESULT //p' "$results" | tail -n 1)"; break
    fi
    kill -0 "$CHROME_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -- "-$CHROME_PID" 2>/dev/null || true
  wait "$CHROME_PID" 2>/dev/null || true
  CHROME_PID=""
}
