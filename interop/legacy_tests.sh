#!/usr/bin/env bash
# Seed 001 against a real peer (issue 6): in-band registration (XEP-0077) with the reguser tool (hosts/src/bin/reguser.rs) and
# non-SASL authentication (XEP-0078, jabber:iq:auth) with the legacy_login tool (hosts/src/bin/legacy_login.rs), against a running
# Prosody (mod_register + mod_legacyauth on XMPP_DOMAIN; registration off on XMPP_ANON_DOMAIN).
# Reads only the peer's environment variables: XMPP_HOST XMPP_PORT (STARTTLS) XMPP_DOMAIN
# XMPP_ANON_DOMAIN XMPP_CA_CERT, and WORKDIR (where the logs go).
#
#   interop/run.sh runs it with peer.env exported. By hand, against a running peer:
#     set -a; . /path/to/peer.env; set +a; bash interop/legacy_tests.sh
#
# Builds the tools once (reguser, legacy_login, client), then runs each case with `timeout 30`
# (CASE_TIMEOUT) and the wire transcript kept in LOGDIR (default $WORKDIR/legacy_tests): NAME.out is
# what the tool printed, NAME.wire its transcript (reguser writes it to stderr). One PASS/FAIL/SKIP line
# per case, then "legacy_tests: N passed, N failed[, N skipped]". Exit 0 only when nothing failed.
#
# What Prosody 13's mod_legacyauth offers: <username/><password/><resource/> only, i.e. the plaintext
# method, and only on an encrypted stream (no <digest/>, no <sequence/>/<token/>). The digest case is
# run only if the server offers <digest/>; otherwise it is reported as SKIP.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CASE_TIMEOUT="${CASE_TIMEOUT:-30}"
PASSED=0 FAILED=0 SKIPPED=0

finish() {
  local line="legacy_tests: $PASSED passed, $FAILED failed"
  [ "$SKIPPED" -gt 0 ] && line="$line, $SKIPPED skipped"
  echo "$line"
  [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
  exit $?
}

missing=""
for v in XMPP_HOST XMPP_PORT XMPP_DOMAIN XMPP_ANON_DOMAIN XMPP_CA_CERT; do
  [ -n "${!v:-}" ] || missing="$missing $v"
done
if [ -n "$missing" ]; then
  echo "FAIL setup: not set:$missing (export the peer's peer.env first)"
  FAILED=1; finish
fi

LOGDIR="${LOGDIR:-${WORKDIR:-$(mktemp -d -t legacy-tests.XXXXXX)}/legacy_tests}"
mkdir -p "$LOGDIR"

# ---------- build once
echo "== building the tools reguser, legacy_login, client"
if ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin reguser --bin legacy_login --bin client) \
    >"$LOGDIR/build.log" 2>&1; then
  echo "FAIL build: cargo build -p xmpp-sansio-hosts --bin reguser --bin legacy_login --bin client"
  tail -n 30 "$LOGDIR/build.log" | sed 's/^/  | /'
  FAILED=1; finish
fi
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BINDIR="${TARGET_DIR:-$ROOT/target}/debug"
for b in reguser legacy_login client; do
  [ -x "$BINDIR/$b" ] || { echo "FAIL build: no binary at $BINDIR/$b"; FAILED=1; finish; }
done

pass() { PASSED=$((PASSED + 1)); echo "PASS $1: $2"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP $1: $2"; }
fail() {
  FAILED=$((FAILED + 1)); echo "FAIL $1: $2"
  echo "  ---- $LOGDIR/$1.out and $1.wire (last lines)"
  { tail -n 8 "$LOGDIR/$1.out" 2>/dev/null; tail -n 4 "$LOGDIR/$1.wire" 2>/dev/null; } | cut -c1-300 | sed 's/^/  | /' || true
}

# run NAME BIN ARGS... : runs the tool under `timeout`, stdout to NAME.out, stderr to NAME.wire.
# Sets RC and LINE (the last line of stdout).
RC=0 LINE=""
run() {
  local name="$1" bin="$2"; shift 2
  RC=0
  timeout "$CASE_TIMEOUT" "$BINDIR/$bin" "$@" >"$LOGDIR/$name.out" 2>"$LOGDIR/$name.wire" </dev/null || RC=$?
  LINE="$(tail -n 1 "$LOGDIR/$name.out")"
}

# The registration stream must end right after the server's answer: no SASL or jabber:iq:auth from
# the client, and its last bytes are </stream:stream>. Prints the problem, if any.
closes_without_auth() {
  local wire="$1" sent
  sent="$(grep -E '^SEND: ' "$wire")"
  if grep -Eq "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'|urn:xmpp:sasl:2|jabber:iq:auth" <<<"$sent"; then
    echo "the client tried to authenticate after the registration answer"; return
  fi
  if [[ "$(tail -n 1 <<<"$sent")" != *'</stream:stream>'* ]]; then
    echo "the client's last bytes are not </stream:stream>"; return
  fi
}

D="$XMPP_DOMAIN" A="$XMPP_ANON_DOMAIN"
TLSOPT=(--ca-file "$XMPP_CA_CERT")
REG=("${TLSOPT[@]}" --domain "$D" --transcript "$XMPP_HOST:$XMPP_PORT")
USER_NAME="u$RANDOM$RANDOM$$"
PW="spinach$RANDOM"

# ---------- jabber:iq:register with reguser
n=reguser_enquiry
run $n reguser "${REG[@]}"
why="$(closes_without_auth "$LOGDIR/$n.wire")"
if [ "$RC" != 0 ] || [[ "$LINE" != "[Enquiry] Fields: "* ]]; then
  fail $n "expected exit 0 and '[Enquiry] Fields: ...', got exit $RC and '$LINE'"
elif ! grep -Eq '(^|, )username(,|$)' <<<"${LINE#*Fields: }" || ! grep -Eq '(^|, )password(,|$)' <<<"${LINE#*Fields: }"; then
  fail $n "the fields do not include username and password: '$LINE'"
elif grep -q instructions <<<"$LINE"; then
  fail $n "instructions listed as a field: '$LINE'"
elif [ -n "$why" ]; then
  fail $n "$why"
else
  pass $n "$LINE"
fi

n=reguser_register
run $n reguser "${REG[@]}" "username=$USER_NAME" "password=$PW" "name=Joseph Adams" "email=joseph@yak"
why="$(closes_without_auth "$LOGDIR/$n.wire")"
if [ "$RC" != 0 ] || [ "$LINE" != "[Attempt] ($USER_NAME) Successful registration" ]; then
  fail $n "expected exit 0 and '[Attempt] ($USER_NAME) Successful registration', got exit $RC and '$LINE'"
elif [ -n "$why" ]; then
  fail $n "$why"
else
  pass $n "$LINE"
fi
REGISTERED=$([ "$RC" = 0 ] && echo yes || echo no)

n=reguser_conflict_409
run $n reguser "${REG[@]}" "username=$USER_NAME" "password=other" "name=DJ Adams"
if [ "$RC" = 0 ] || [ "$LINE" != "[Attempt] ($USER_NAME) Error: 409 (Username Not Available)" ]; then
  fail $n "expected a non-zero exit and '[Attempt] ($USER_NAME) Error: 409 (Username Not Available)', got exit $RC and '$LINE'"
else
  pass $n "$LINE"
fi

n=reguser_missing_password_406
run $n reguser "${REG[@]}" "username=${USER_NAME}x"
if [ "$RC" = 0 ] || [ "$LINE" != "[Attempt] (${USER_NAME}x) Error: 406 (Not Acceptable)" ]; then
  fail $n "expected a non-zero exit and '[Attempt] (${USER_NAME}x) Error: 406 (Not Acceptable)', got exit $RC and '$LINE'"
else
  pass $n "$LINE"
fi

# Registration is off on the anonymous host: the IQ is not handled (service-unavailable, i.e. 501).
n=reguser_disabled_501
run $n reguser "${TLSOPT[@]}" --domain "$A" --transcript "$XMPP_HOST:$XMPP_PORT"
if [ "$RC" = 0 ] || [ "$LINE" != "[Enquiry] Error: 501 (Not Implemented)" ]; then
  fail $n "expected a non-zero exit and '[Enquiry] Error: 501 (Not Implemented)', got exit $RC and '$LINE'"
else
  pass $n "$LINE"
fi

# ---------- the new account logs in with SASL (the client tool)
n=new_account_scram_sha1
if [ "$REGISTERED" = yes ]; then
  run $n client --host "$XMPP_HOST" --port "$XMPP_PORT" "${TLSOPT[@]}" --jid "$USER_NAME@$D" --password "$PW" \
    --mechanism SCRAM-SHA-1 --transcript
  if [ "$RC" != 0 ] || [[ "$LINE" != "OK $USER_NAME@$D/"* ]]; then
    fail $n "expected exit 0 and 'OK $USER_NAME@$D/...', got exit $RC and '$LINE'"
  elif ! grep -q '^-- authenticated with SCRAM-SHA-1$' "$LOGDIR/$n.out"; then
    fail $n "$LINE, but not authenticated with SCRAM-SHA-1"
  else
    pass $n "$LINE [SCRAM-SHA-1]"
  fi
else
  fail $n "not run: the registration failed"
fi

# ---------- jabber:iq:auth with legacy_login
# legacy NAME EXPECT JID PASSWORD : EXPECT is "ok" or "error:REGEX" (matched against the ERROR line).
# On success the method used must be the strongest one the server offered.
OFFERED=""
legacy() {
  local name="$1" expect="$2" jid="$3" pw="$4" offered method want
  run "$name" legacy_login --host "$XMPP_HOST" --port "$XMPP_PORT" "${TLSOPT[@]}" --jid "$jid" --password "$pw" --transcript
  # legacy_login prints the transcript on stdout; keep the wire part in .wire for the logs.
  grep -E '^(SEND|RECV): ' "$LOGDIR/$name.out" >"$LOGDIR/$name.wire" || true
  offered="$(sed -n 's/^-- offered: //p' "$LOGDIR/$name.out" | head -n 1)"
  method="$(sed -n 's/^-- legacy method: //p' "$LOGDIR/$name.out" | head -n 1)"
  OFFERED="${OFFERED:-$offered}"
  want=plaintext
  [[ " $offered " == *" digest "* ]] && want=digest
  [[ " $offered " == *" sequence "* && " $offered " == *" token "* ]] && want=zero-knowledge
  if [ "$expect" = ok ]; then
    if [ "$RC" != 0 ] || [[ "$LINE" != "OK ${jid}/"* ]]; then
      fail "$name" "expected exit 0 and 'OK $jid/...', got exit $RC and '$LINE'"; return
    fi
    if ! grep -q '^-- authenticated with jabber:iq:auth$' "$LOGDIR/$name.out"; then
      fail "$name" "$LINE, but not through jabber:iq:auth"; return
    fi
    if ! grep -q '^-- message to self received back$' "$LOGDIR/$name.out"; then
      fail "$name" "$LINE, but the message to self did not come back"; return
    fi
  else
    local re="${expect#error:}"
    if [ "$RC" = 0 ] || [[ "$LINE" != ERROR\ * ]] || ! grep -Eq -- "$re" <<<"$LINE"; then
      fail "$name" "expected a non-zero exit and ERROR /$re/, got exit $RC and '$LINE'"; return
    fi
  fi
  if [ "$method" != "$want" ]; then
    fail "$name" "$LINE, but the method sent was '${method:-none}' while the server offered '$offered' (strongest: $want)"; return
  fi
  pass "$name" "$LINE [offered: $offered; method: $method]"
}

legacy legacy_plaintext_alice ok "alice@$D" secret
if [ "$REGISTERED" = yes ]; then
  legacy legacy_plaintext_new_account ok "$USER_NAME@$D" "$PW"
else
  fail legacy_plaintext_new_account "not run: the registration failed"
fi
legacy legacy_wrong_password_401 "error:^ERROR legacy-auth 401 " "alice@$D" wrong-password

# Digest: only when the server offers it (then the login above already used it, as the strongest).
if [[ " $OFFERED " == *" digest "* ]]; then
  legacy legacy_digest_bob ok "bob@$D" secret
else
  skip legacy_digest "the server does not offer <digest/> (offered: ${OFFERED:-nothing}); the client did not send one"
fi

finish
