#!/usr/bin/env bash
# SASL2 (XEP-0388), Bind 2 (XEP-0386) and stream management inline (XEP-0198 in SASL2) against real peers:
# the client tool (hosts/src/bin/client.rs, --sasl2 require) against Prosody 13 with mod_sasl2,
# mod_sasl2_bind2 and mod_sasl2_sm (interop/prosody/start.sh loads them), and against the example server
# (--sasl2):
#   *-scram:        SCRAM-SHA-1 (Prosody; SCRAM-SHA-256 on ours) over SASL2: the `-- SASL2` note, a resource
#                   bound by Bind 2 (the --resource tag and the server's suffix: `tag~...`), the message to
#                   self back;
#   *-scram-plus:   the same with -PLUS, bound to the TLS channel (tls-exporter or tls-server-end-point);
#   *-resume:       --sm --hangup: stream management enabled inside Bind 2, the TCP connection dropped
#                   without a close, a new connection resumes inside <authenticate/>: `OK ... resumed h=`, the
#                   message arrived once;
#   *-wrong:        a wrong password: `ERROR sasl not-authorized` over SASL2;
#   *-fast-*:       FAST (XEP-0484) with --fast-token-file: a password login that asks for a token and saves
#                   it (`-- FAST token for HT-... saved`), a login with the token (the password given is
#                   wrong: `-- FAST HT-...`), the token altered: refused, no password login, the file removed;
#   *-carbons:      Message Carbons (XEP-0280) and CSI (XEP-0352) inline in Bind 2 (--carbons --csi inactive):
#                   the `-- Bind 2: carbons on, CSI inactive` note, then a second resource's chat message
#                   reaches the first as a carbon copy (<sent/> or <received/> with the text).
#   *-fast-tls1.X-HT-...: the FAST variant matrix (XEP-0484), each HT mechanism on TLS 1.2 and on TLS 1.3
#                   (--tls-version), asked for by name (--fast-mechanism): where the peer offers it and the
#                   connection can carry its channel binding, a password login gets a token for exactly it
#                   (`-- FAST token for HT-... saved`) and a login with that token alone (the password given is
#                   wrong) says `-- FAST HT-...` on the TLS version asked for (*-login); elsewhere the client
#                   refuses before logging in, saying why (`ERROR fast no-token-mechanism (HT-...: ...)`,
#                   *-refused): -UNIQ on TLS 1.3 (not defined there: XEP-0484), a variant the peer does not
#                   offer (the server tool has no tls-unique, so no -UNIQ). -UNIQ on TLS 1.2 against Prosody
#                   is a token login (the blocking client computes tls-unique: hosts/src/tls_unique.rs). Prosody 13
#                   (mod_sasl2_fast registers HT-SHA-256-{NONE,UNIQ,ENDP,EXPR}; mod_sasl2's handler carries
#                   tls-exporter on 1.3, tls-unique on 1.2, never tls-server-end-point) offers -EXPR and -NONE
#                   on 1.3, -UNIQ and -NONE on 1.2; the example server offers all twelve its TLS can carry;
#   prosody-never:  --sasl2 never: RFC 6120 SASL against the same Prosody (no `-- SASL2` note);
#   fastlife-*:     FAST token life on a second example server (--fast-ttl 8): rotation past half the
#                   lifetime, the count kept in the token file (with and without --sm), a replayed count and
#                   the old token refused, --fast-invalidate.
# Reads the peer's environment (XMPP_HOST XMPP_PORT XMPP_DOMAIN XMPP_CA_CERT; interop/run.sh exports peer.env);
# starts the example server itself (127.0.0.1:0, a throw-away certificate, stopped by PID). One PASS/FAIL line
# per case (each bounded by CASE_TIMEOUT, 30 s), then "sasl2_tests: N passed, N failed".
#   set -a; . /path/to/peer.env; set +a; bash interop/sasl2_tests.sh
# Env: BUILD=0 (use the tools already built), LOGDIR (default $WORKDIR/sasl2_tests, or a temp dir).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CASE_TIMEOUT="${CASE_TIMEOUT:-30}"
# shellcheck source=harness.sh
. "$HERE/harness.sh"
harness_logdir sasl2_tests
harness_trap_pids
cleanup() { stop_all; }
finish() { harness_finish sasl2_tests; }

harness_build_tools

UA="d4565fa7-4d72-4749-b3d3-740edbf87770"

# check NAME EXPECT-REGEX DESCRIPTION CMD...: runs the client; PASS when a line of its output matches
# every regex of EXPECT-REGEX (separated by ' && ').
check() {
  local name="$1" want="$2" what="$3" rc=0 ok=1 re; shift 3
  timeout "$CASE_TIMEOUT" "$@" >"$LOGDIR/$name.out" 2>&1 </dev/null || rc=$?
  [ "$rc" = 124 ] && echo "(timed out after ${CASE_TIMEOUT}s)" >>"$LOGDIR/$name.out"
  while IFS= read -r re; do
    grep -Eq -- "$re" "$LOGDIR/$name.out" || { ok=0; echo "(no line matches /$re/)" >>"$LOGDIR/$name.out"; }
  done < <(sed 's/ && /\n/g' <<<"$want")
  if [ "$ok" = 1 ]; then pass "$name" "$what ($(grep -E '^(OK|ERROR) ' "$LOGDIR/$name.out" | tail -n 1))"
  else fail "$name" "expected /$want/"; fi
}
# copies TEXT FILE: how many STANZA lines carry <body>TEXT</body>.
copies() { grep -c "^STANZA .*<body>$1</body>" "$2" || true; }

# cases PREFIX MECH PLUS-MECH ARGS...: the SASL2 cases against one server.
cases() {
  local p="$1" mech="$2" plus="$3" text n; shift 3
  check "$p-scram" '^-- SASL2$ && ^-- authenticated with '"$mech"'$ && ^OK [^ ]+/sasl2-interop~[^ ]+$' \
    "$mech over SASL2, bound by Bind 2" \
    "$CLIENT" "$@" --sasl2 require --mechanism "$mech" --resource sasl2-interop --user-agent-id "$UA"
  check "$p-scram-plus" '^-- SASL2$ && ^-- authenticated with '"$plus"'$ && ^-- channel binding: tls-(exporter|server-end-point)$ && ^OK ' \
    "$plus over SASL2, bound to the channel" \
    "$CLIENT" "$@" --sasl2 require --mechanism "$plus" --resource sasl2-interop
  text="sasl2-$p-$$-$RANDOM"
  check "$p-resume" '^-- SASL2$ && ^OK .* sm=[^ ]+$ && ^OK .* resumed h=[0-9]+$' \
    "stream management enabled in Bind 2, hung up, resumed inside <authenticate/>" \
    "$CLIENT" "$@" --sasl2 require --mechanism "$mech" --resource sasl2-interop --sm --message "$text" --hangup
  n="$(copies "$text" "$LOGDIR/$p-resume.out")"
  if [ "$n" = 1 ]; then pass "$p-resume-once" "the message arrived once across both connections"
  else fail "$p-resume-once" "the message arrived $n times"; fi
  check "$p-wrong" '^ERROR sasl not-authorized' "a wrong password over SASL2" \
    "$CLIENT" "${@/secret/wrong-password}" --sasl2 require --mechanism "$mech"
  # FAST (XEP-0484) with --fast-token-file: a password login that gets a token, a login with it (a wrong
  # password given, so only the token can log in), then the token altered: refused, the file removed.
  local tok="$LOGDIR/$p-fast.token"
  rm -f "$tok"
  check "$p-fast-token" '^-- SASL2$ && ^-- FAST token for HT-[A-Z0-9-]+ saved to && ^OK ' \
    "a password login asks for a FAST token and keeps it" \
    "$CLIENT" "$@" --sasl2 require --user-agent-id "$UA" --fast-token-file "$tok"
  check "$p-fast-login" '^-- FAST HT-[A-Z0-9-]+$ && ^-- authenticated with HT- && ^OK ' \
    "a login with the FAST token (the password given is wrong)" \
    "$CLIENT" "${@/secret/wrong-password}" --sasl2 require --user-agent-id "$UA" --fast-token-file "$tok"
  [ -f "$tok" ] && sed -i '2s/.*/altered-token/' "$tok"
  check "$p-fast-refused" '^-- FAST token for HT-[A-Z0-9-]+ refused: removed$ && ^ERROR sasl (credentials-expired|not-authorized)' \
    "an altered FAST token is refused, no password login follows" \
    "$CLIENT" "$@" --sasl2 require --user-agent-id "$UA" --fast-token-file "$tok"
  if [ -e "$tok" ]; then fail "$p-fast-file" "the refused token's file is still there"
  else pass "$p-fast-file" "the refused token's file is removed"; fi
}

# fast_expect PEER TLS MECH: "token" when the login should get and use a token of MECH on TLS version TLS
# against PEER (prosody or server), else the regex of the client's refusal after `(MECH: `.
fast_expect() {
  case "$1:$2:$3" in
    *:1.3:*-UNIQ) echo 'tls-unique is not defined on TLS 1\.3' ;;
    # the server tool cannot supply tls-unique (rustls, server side), so it does not offer -UNIQ
    server:1.2:*-UNIQ) echo 'not offered by the server' ;;
    prosody:*:HT-SHA-256-NONE | prosody:1.3:HT-SHA-256-EXPR | prosody:1.2:HT-SHA-256-UNIQ | server:*) echo token ;;
    *) echo 'not offered by the server' ;;
  esac
}

# fast_matrix PREFIX "MECH..." ARGS...: each MECH on TLS 1.2 and 1.3 against one server, as fast_expect says.
fast_matrix() {
  local p="$1" mechs="$2" v m want name n=0 fast; shift 2
  for v in 1.2 1.3; do
    for m in $mechs; do
      n=$((n + 1))
      name="$p-fast-tls$v-$m"
      rm -f "$LOGDIR/$name.token"
      # a token slot of its own per variant (the user agent id)
      fast=(--sasl2 require --tls-version "$v" --user-agent-id "$(printf 'd4565fa7-4d72-4749-b3d3-%012d' "$n")"
        --fast-mechanism "$m" --fast-token-file "$LOGDIR/$name.token")
      want="$(fast_expect "$p" "$v" "$m")"
      if [ "$want" = token ]; then
        check "$name" "^-- TLS established: TLSv$v && ^-- FAST token for $m saved to && ^OK " \
          "a password login on TLS $v gets a $m token" "$CLIENT" "$@" "${fast[@]}"
        check "$name-login" "^-- TLS established: TLSv$v && ^-- FAST $m\$ && ^-- authenticated with $m\$ && ^OK " \
          "the $m token alone logs in on TLS $v (the password given is wrong)" \
          "$CLIENT" "${@/secret/wrong-password}" "${fast[@]}"
      else
        check "$name-refused" "^ERROR fast no-token-mechanism \($m: $want" \
          "$m on TLS $v: refused by the client, nothing sent" "$CLIENT" "$@" "${fast[@]}"
      fi
    done
  done
}

# ---------- Prosody 13 (mod_sasl2, mod_sasl2_bind2, mod_sasl2_sm)
missing=""
for v in XMPP_HOST XMPP_PORT XMPP_DOMAIN XMPP_CA_CERT; do [ -n "${!v:-}" ] || missing="$missing $v"; done
if [ -n "$missing" ]; then
  skip "prosody-*" "not set:$missing (export the peer's peer.env first)"
else
  PARGS=(--host "$XMPP_HOST" --port "$XMPP_PORT" --jid "alice@$XMPP_DOMAIN" --password secret --ca-file "$XMPP_CA_CERT")
  cases prosody SCRAM-SHA-1 SCRAM-SHA-1-PLUS "${PARGS[@]}"
  fast_matrix prosody "HT-SHA-256-NONE HT-SHA-256-EXPR HT-SHA-256-UNIQ HT-SHA-256-ENDP" "${PARGS[@]}"
  check prosody-never '^-- authenticated with SCRAM-SHA-1$ && ^OK ' "RFC 6120 SASL when told (--sasl2 never)" \
    "$CLIENT" "${PARGS[@]}" --sasl2 never --mechanism SCRAM-SHA-1
  if grep -q '^-- SASL2$' "$LOGDIR/prosody-never.out"; then fail prosody-never-rfc6120 "a SASL2 note with --sasl2 never"
  else pass prosody-never-rfc6120 "no SASL2 with --sasl2 never"; fi
fi

# ---------- the example server (--sasl2 --sm), STARTTLS with a throw-away certificate
if ! command -v openssl >/dev/null 2>&1; then
  skip "server-*" "no openssl for the throw-away certificate"
else
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 2 \
    -keyout "$LOGDIR/key.pem" -out "$LOGDIR/cert.pem" -subj "/CN=sansio.test" \
    -addext "subjectAltName=DNS:sansio.test" >"$LOGDIR/openssl.log" 2>&1
  slog="$LOGDIR/server.log"
  "$BIN" --listen 127.0.0.1:0 --domain sansio.test --tls starttls --cert "$LOGDIR/cert.pem" --key "$LOGDIR/key.pem" \
    --user alice:secret --sasl2 --sm --sm-resume-timeout 30 >"$slog" 2>&1 &
  PIDS+=($!)
  PORT="$(harness_port "$slog")"
  if [ -z "$PORT" ]; then
    fail "server-start" "no LISTENING line"; tail -n 5 "$slog" | sed 's/^/  | /'
  else
    SARGS=(--host 127.0.0.1 --port "$PORT" --jid alice@sansio.test --password secret --ca-file "$LOGDIR/cert.pem")
    cases server SCRAM-SHA-256 SCRAM-SHA-256-PLUS "${SARGS[@]}"
    fast_matrix server "$(for h in SHA-256 SHA-512 SHA3-512; do for b in NONE EXPR ENDP UNIQ; do echo "HT-$h-$b"; done; done)" \
      "${SARGS[@]}"
    if grep -q '^RESUMED ' "$slog"; then pass "server-log" "the server logged RESUMED"
    else fail "server-log" "no RESUMED line in $slog"; fi
  fi
fi
# ---------- carbons and CSI inline in Bind 2 (both servers list them)
# carbons PREFIX ARGS...: resource A enables carbons inline and lingers; resource B sends a chat message to
# itself; A must get a carbon copy of it.
carbons() {
  local p="$1" text="carbons-$1-$$-$RANDOM" a="$LOGDIR/$1-carbons-a.out" apid i; shift
  timeout "$CASE_TIMEOUT" "$CLIENT" "$@" --sasl2 require --resource carbons-a --carbons --csi inactive --sm \
    --linger 6 >"$a" 2>&1 </dev/null &
  apid=$!
  for i in $(seq 1 100); do grep -qs '^-- Bind 2:' "$a" && break; sleep 0.1; done
  sleep 0.5
  check "$p-carbons-b" '^OK ' "a second resource sends a chat message" \
    "$CLIENT" "$@" --sasl2 require --resource carbons-b --sm --message "$text"
  wait "$apid"
  if grep -q '^-- Bind 2: carbons on, CSI inactive$' "$a"; then pass "$p-carbons" "carbons and CSI enabled inline in Bind 2"
  else fail "$p-carbons" "no '-- Bind 2: carbons on, CSI inactive' line in $a"; fi
  if grep -Eq "^STANZA .*<(sent|received) xmlns=.urn:xmpp:carbons:2.>.*<body>$text</body>" "$a"; then
    pass "$p-carbons-copy" "the other resource's message arrived as a carbon copy"
  else fail "$p-carbons-copy" "no carbon copy of $text in $a"; fi
}
[ -n "${PARGS+x}" ] && carbons prosody "${PARGS[@]}"
[ -n "${PORT:-}" ] && carbons server --host 127.0.0.1 --port "$PORT" --jid alice@sansio.test --password secret \
  --ca-file "$LOGDIR/cert.pem"
# ---------- FAST token life on the example server (--sasl2 --fast-ttl 8): rotation, count, invalidate
# A password login gets a token; 5 s later (past half its 8 s lifetime) a token login gets a rotated one
# (FAST-ROTATE, the file rewritten); the new token logs in (with --sm: the file kept there too) and the old
# one is then refused; a copy of the file from before a login replays its count: refused (not-authorized);
# --fast-invalidate logs in and removes the file (FAST-INVALIDATE), after which the token is refused.
if [ ! -f "$LOGDIR/cert.pem" ]; then
  skip "fastlife-*" "no throw-away certificate"
else
  flog="$LOGDIR/server-fastlife.log"
  "$BIN" --listen 127.0.0.1:0 --domain sansio.test --tls starttls --cert "$LOGDIR/cert.pem" --key "$LOGDIR/key.pem" \
    --user alice:secret --sasl2 --sm --fast-ttl 8 >"$flog" 2>&1 &
  PIDS+=($!)
  FPORT="$(harness_port "$flog")"
  if [ -z "$FPORT" ]; then
    fail "fastlife-start" "no LISTENING line"; tail -n 5 "$flog" | sed 's/^/  | /'
  else
    FA=(--host 127.0.0.1 --port "$FPORT" --jid alice@sansio.test --ca-file "$LOGDIR/cert.pem" --sasl2 require
      --user-agent-id "$UA")
    tok="$LOGDIR/fastlife.token"; rm -f "$tok"
    check fastlife-token '^-- FAST token for HT-[A-Z0-9-]+ saved to && ^OK ' "a password login gets a token" \
      "$CLIENT" "${FA[@]}" --password secret --fast-token-file "$tok"
    [ -f "$tok" ] && cp "$tok" "$tok.first"
    sleep 5
    check fastlife-rotate '^-- FAST count 1$ && ^-- authenticated with HT- && ^-- FAST token for HT-[A-Z0-9-]+ saved to && ^OK ' \
      "a token login past half the lifetime gets a rotated token" \
      "$CLIENT" "${FA[@]}" --password wrong-password --fast-token-file "$tok"
    if grep -q '^FAST-ROTATE alice@sansio.test ' "$flog" && ! cmp -s <(sed -n 2p "$tok") <(sed -n 2p "$tok.first"); then
      pass fastlife-rotated "the server logged FAST-ROTATE and the file holds a new token"
    else fail fastlife-rotated "no FAST-ROTATE line or the same token"; fi
    [ -f "$tok" ] && cp "$tok" "$tok.before"
    check fastlife-new-sm '^-- FAST count 1$ && ^-- authenticated with HT- && ^OK .* sm=' \
      "the rotated token logs in, with --sm" \
      "$CLIENT" "${FA[@]}" --password wrong-password --fast-token-file "$tok" --sm
    check fastlife-old '^ERROR sasl credentials-expired' "the old token is refused once the new one was used" \
      "$CLIENT" "${FA[@]}" --password wrong-password --fast-token-file "$tok.first"
    check fastlife-replay '^-- FAST count 1$ && ^ERROR sasl not-authorized' "a count already used is refused" \
      "$CLIENT" "${FA[@]}" --password wrong-password --fast-token-file "$tok.before"
    [ -f "$tok" ] && cp "$tok" "$tok.last"
    check fastlife-invalidate '^-- FAST count 2$ && ^-- FAST token for HT-[A-Z0-9-]+ invalidated by the server: removed$ && ^OK ' \
      "--fast-invalidate logs in and drops the token" \
      "$CLIENT" "${FA[@]}" --password wrong-password --fast-token-file "$tok" --fast-invalidate
    if [ ! -e "$tok" ] && grep -q '^FAST-INVALIDATE alice@sansio.test ' "$flog"; then
      pass fastlife-invalidated "the file is removed and the server logged FAST-INVALIDATE"
    else fail fastlife-invalidated "the file is still there or no FAST-INVALIDATE line"; fi
    check fastlife-after '^ERROR sasl credentials-expired' "the invalidated token is refused" \
      "$CLIENT" "${FA[@]}" --password wrong-password --fast-token-file "$tok.last"
  fi
fi
finish
