#!/usr/bin/env bash
# Real clients against the server tool (hosts/src/bin/server.rs: the sans-IO Server on std::net +
# rustls). Needs no Prosody: it makes a self-signed certificate (openssl, SAN = the domain), starts the
# server twice on free loopback ports (STARTTLS, and XEP-0368 direct TLS) and runs:
#   - slixmpp (interop/clients/slixmpp_login.py, the venv of clients/setup_venv.sh): SCRAM-SHA-1,
#     SCRAM-SHA-256, PLAIN and its default choice, each sending a message to itself and receiving it;
#     SCRAM-*-PLUS when this Python's ssl module can export tls-exporter (else SKIP, with the reason);
#     a wrong password and an unknown user refused with not-authorized; direct TLS; ANONYMOUS;
#     routing between two users (bare and full JID, an unknown user's error, a ping); a bind conflict;
#     in-band registration of a new account, then a login with it;
#   - interop/clients/xmpp_raw.py (an independent stdlib client): SCRAM-*-PLUS with tls-server-end-point
#     on TLS 1.3 and 1.2 (XEP-0474 h= required); registering a taken name (409); legacy XEP-0078
#     plaintext and digest logins, and a wrong password (401);
#   - the client tool (rustls on both sides), when it builds: SCRAM-*-PLUS with tls-exporter on TLS
#     1.3 and on TLS 1.2 (extended master secret), tls-server-end-point, SCRAM-SHA-512-PLUS, a wrong password;
#   - the legacy_login tool, when it builds: zero-knowledge legacy auth, twice (the hash chain steps down).
# Each case is bounded by `timeout $CASE_TIMEOUT` (30 s); the server's log must show the matching LOGIN /
# AUTHFAIL line. One PASS/FAIL/SKIP line per case, then "server_tests: N passed, N failed[, N skipped]".
# Exit 0 only when nothing failed. The servers are stopped (by PID, trap) at the end.
#
#   bash interop/server_tests.sh          # by hand; interop/run.sh runs it too
# Env: PYTHON (the venv python; made with clients/setup_venv.sh otherwise), CASE_TIMEOUT, LOGDIR (default
# $WORKDIR/server_tests, or a temp dir), KEEP_LOGS=1 keeps a temp LOGDIR after a green run.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
CASE_TIMEOUT="${CASE_TIMEOUT:-30}"
DOMAIN="sansio.test"
PIDS=()

stop_servers() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_servers EXIT
trap 'stop_servers; exit 130' INT TERM

# shellcheck source=harness.sh
. "$HERE/harness.sh"
harness_logdir server_tests
cleanup() { stop_servers; }
finish() { harness_finish server_tests; }

# ---------- python with slixmpp
if [ -z "${PYTHON:-}" ]; then
  PYTHON="$(bash "$HERE/clients/setup_venv.sh" | tail -n 1)" || { echo "FAIL setup: clients/setup_venv.sh"; FAILED=1; finish; }
fi
SLIX="$HERE/clients/slixmpp_login.py"
RAW="$HERE/clients/xmpp_raw.py"

# ---------- build once
echo "== building the server tool (and the client and legacy_login tools: optional)"
if ! (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin server) >"$LOGDIR/build.log" 2>&1; then
  echo "FAIL build: cargo build -p xmpp-sansio-hosts --bin server"; tail -n 30 "$LOGDIR/build.log" | sed 's/^/  | /'
  FAILED=1; finish
fi
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
BIN="${TARGET_DIR:-$ROOT/target}/debug/server"
CLIENT="${TARGET_DIR:-$ROOT/target}/debug/client"
[ -x "$BIN" ] || { echo "FAIL build: no binary at $BIN"; FAILED=1; finish; }
LEGACY="${TARGET_DIR:-$ROOT/target}/debug/legacy_login"
CLIENT_OK=no LEGACY_OK=no
if (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin client) >"$LOGDIR/build-client.log" 2>&1 && [ -x "$CLIENT" ]; then
  CLIENT_OK=yes
fi
if (cd "$ROOT" && cargo build --quiet -p xmpp-sansio-hosts --bin legacy_login) >"$LOGDIR/build-legacy_login.log" 2>&1 && [ -x "$LEGACY" ]; then
  LEGACY_OK=yes
fi

# ---------- certificate (self-signed, SAN = the domain)
CERT="$LOGDIR/cert.pem" KEY="$LOGDIR/key.pem"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 2 \
  -keyout "$KEY" -out "$CERT" -subj "/CN=$DOMAIN" -addext "subjectAltName=DNS:$DOMAIN" \
  >"$LOGDIR/openssl.log" 2>&1; then
  echo "FAIL setup: openssl req"; tail -n 5 "$LOGDIR/openssl.log"; FAILED=1; finish
fi

# ---------- servers
# start_server NAME ARGS...: runs the server on 127.0.0.1:0, log in $LOGDIR/server-NAME.log; sets PORT.
start_server() {
  local name="$1" log="$LOGDIR/server-$1.log" i
  shift
  "$BIN" --listen 127.0.0.1:0 --domain "$DOMAIN" --cert "$CERT" --key "$KEY" \
    --user alice:secret --user 'bob:pass word:with colon' "$@" >"$log" 2>&1 </dev/null &
  PIDS+=("$!")
  for i in $(seq 100); do
    PORT="$(sed -n 's/^LISTENING 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")"
    [ -n "$PORT" ] && return 0
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL server-$name: did not start"; sed 's/^/  | /' "$log"
  return 1
}

start_server starttls --tls starttls --allow-register --legacy-auth || { FAILED=$((FAILED + 1)); finish; }
S_PORT="$PORT" S_LOG="$LOGDIR/server-starttls.log"
start_server direct --tls direct \
  --mechanisms SCRAM-SHA-512-PLUS,SCRAM-SHA-256-PLUS,SCRAM-SHA-256,SCRAM-SHA-1,PLAIN,DIGEST-MD5,ANONYMOUS \
  || { FAILED=$((FAILED + 1)); finish; }
D_PORT="$PORT" D_LOG="$LOGDIR/server-direct.log"
echo "== servers: starttls on 127.0.0.1:$S_PORT, direct TLS on 127.0.0.1:$D_PORT (domain $DOMAIN)"

# case_ (harness.sh): NAME EXPECT SERVERLOG PATTERN -- CMD...

E="${DOMAIN//./\\.}"
# (arrays, not functions: timeout runs programs)
slix=("$PYTHON" "$SLIX" --host 127.0.0.1 --cafile "$CERT")
raw=("$PYTHON" "$RAW" --host 127.0.0.1 --cafile "$CERT")
cl=("$CLIENT" --host 127.0.0.1 --ca-file "$CERT" --transcript)

# ---------- slixmpp over STARTTLS
for m in SCRAM-SHA-1 SCRAM-SHA-256 PLAIN; do
  r="slix-${m,,}"
  case_ "slixmpp-${m,,}" ok "$S_LOG" "^LOGIN alice@$E/$r via $m " -- \
    "${slix[@]}" --port "$S_PORT" --jid "alice@$DOMAIN/$r" --password secret --mech "$m" --to self
done
# No --mech: slixmpp's own choice among what is offered (SCRAM-SHA-256-PLUS first; see below).
case_ slixmpp-default ok "$S_LOG" "^LOGIN bob@$E/slix-default via SCRAM-SHA-256(-PLUS)? " -- \
  "${slix[@]}" --port "$S_PORT" --jid "bob@$DOMAIN/slix-default" --password 'pass word:with colon' --to self

# Channel binding: slixmpp 1.17 binds with tls-unique on TLS <= 1.2 and with tls-exporter on TLS 1.3 only
# if Python's ssl module can export it (ssl.CHANNEL_BINDING_TYPES); otherwise it falls back to non-PLUS.
if "$PYTHON" -c 'import ssl, sys; sys.exit(0 if "tls-exporter" in ssl.CHANNEL_BINDING_TYPES else 1)' 2>/dev/null; then
  case_ slixmpp-scram-sha-256-plus ok "$S_LOG" "^LOGIN alice@$E/slix-plus via SCRAM-SHA-256-PLUS " -- \
    "${slix[@]}" --port "$S_PORT" --jid "alice@$DOMAIN/slix-plus" --password secret --mech SCRAM-SHA-256-PLUS --to self
else
  skip slixmpp-scram-plus "Python $("$PYTHON" -c 'import platform; print(platform.python_version())')'s ssl exports only tls-unique (no tls-exporter), which is undefined on TLS 1.3 and which rustls cannot supply on TLS 1.2, so slixmpp 1.17 does no channel binding here (slixmpp-default shows its fallback to SCRAM-SHA-256); -PLUS is covered by raw-* (tls-server-end-point) and client-* (tls-exporter) below"
fi

case_ slixmpp-wrong-password "error:not-authorized" "$S_LOG" "^AUTHFAIL alice via SCRAM-SHA-256: not-authorized " -- \
  "${slix[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password wrong-password --mech SCRAM-SHA-256
case_ slixmpp-unknown-user "error:not-authorized" "$S_LOG" "^AUTHFAIL nobody via PLAIN: not-authorized " -- \
  "${slix[@]}" --port "$S_PORT" --jid "nobody@$DOMAIN" --password secret --mech PLAIN

# ---------- routing and binding, with two slixmpp sessions at once (helper below)
HELPER="$LOGDIR/two_sessions.py"
cat >"$HELPER" <<'PYEOF'
"""Two slixmpp sessions on the server tool: routing (bare JID, full JID, unknown user, ping to the
server) or a bind conflict (a second session asks for a bound full JID, with xmpp_raw.py)."""
import argparse, asyncio, logging, ssl, sys
from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=["routing", "conflict"])
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--domain", required=True)
ap.add_argument("--cafile", required=True)
ap.add_argument("--raw", help="xmpp_raw.py (conflict mode)")
a = ap.parse_args()
logging.basicConfig(level=logging.CRITICAL)
PW = {"alice": "secret", "bob": "pass word:with colon"}


def client(user, resource):
    x = ClientXMPP("%s@%s/%s" % (user, a.domain, resource), PW[user])
    x.ca_certs = a.cafile
    x.enable_plaintext = False
    x.register_plugin("xep_0199")
    x.inbox = asyncio.Queue()
    x.errors = asyncio.Queue()
    x.add_event_handler("message", lambda m: x.inbox.put_nowait(m))
    x.add_event_handler("message_error", lambda m: x.errors.put_nowait(m))
    return x


async def online(x):
    fut = asyncio.get_event_loop().create_future()
    done = lambda r: fut.done() or fut.set_result(r)
    x.add_event_handler("session_start", lambda e: done("ok"))
    x.add_event_handler("failed_auth", lambda e: done("auth failed"))
    x.add_event_handler("disconnected", lambda e: done("disconnected"))
    x.connect("127.0.0.1", a.port)
    r = await asyncio.wait_for(fut, 15)
    if r != "ok":
        raise RuntimeError("%s: %s" % (x.requested_jid, r))


def send(x, to, mid):
    m = x.make_message(mto=to, mbody="routed " + mid, mtype="chat")
    m["id"] = mid
    m.send()


async def expect(q, mid, sender):
    m = await asyncio.wait_for(q.get(), 10)
    if m["id"] != mid or m["from"].full != sender or m["body"] != "routed " + mid:
        raise RuntimeError("got id=%s from=%s body=%r, wanted id=%s from=%s" % (m["id"], m["from"], m["body"], mid, sender))


async def routing():
    bob, alice = client("bob", "home"), client("alice", "desk")
    await online(bob)
    await online(alice)
    done = []
    send(alice, "bob@" + a.domain, "to-bare")
    await expect(bob.inbox, "to-bare", alice.boundjid.full)
    done.append("bare JID")
    send(alice, bob.boundjid.full, "to-full")
    await expect(bob.inbox, "to-full", alice.boundjid.full)
    done.append("full JID")
    send(bob, alice.boundjid.full, "reply")
    await expect(alice.inbox, "reply", bob.boundjid.full)
    done.append("reply")
    send(alice, "nobody@" + a.domain, "to-nobody")
    e = await asyncio.wait_for(alice.errors.get(), 10)
    if e["id"] != "to-nobody" or e["error"]["condition"] != "service-unavailable":
        raise RuntimeError("unknown user: got id=%s condition=%s" % (e["id"], e["error"]["condition"]))
    done.append("unknown user -> service-unavailable")
    await alice["xep_0199"].ping(jid=a.domain, timeout=5)
    done.append("ping")
    for x in (alice, bob):
        await x.disconnect(wait=1)
    return "routed: " + ", ".join(done)


async def conflict():
    bob = client("bob", "home")
    await online(bob)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, a.raw, "--host", "127.0.0.1", "--port", str(a.port), "--cafile", a.cafile,
        "--jid", "bob@" + a.domain, "--password", PW["bob"], "--resource", "home", "--mech", "SCRAM-SHA-256",
        "--transcript", "/dev/null", stdout=asyncio.subprocess.PIPE)
    out = (await asyncio.wait_for(proc.communicate(), 20))[0].decode().strip()
    if "conflict" not in out:
        raise RuntimeError("second bind of %s: %s" % (bob.boundjid.full, out))
    await bob["xep_0199"].ping(jid=a.domain, timeout=5)  # the first session is unharmed
    await bob.disconnect(wait=1)
    return "second bind of %s refused (%s); first session still answers" % (bob.boundjid.full, out)


async def main():
    try:
        r = await (routing() if a.mode == "routing" else conflict())
        print("OK " + r)
        return 0
    except (RuntimeError, asyncio.TimeoutError, IqError, IqTimeout) as e:
        print("ERROR %s: %s" % (type(e).__name__, e))
        return 1

sys.exit(asyncio.new_event_loop().run_until_complete(main()))
PYEOF
case_ slixmpp-routing ok "$S_LOG" "^LOGIN alice@$E/desk via " -- \
  "$PYTHON" "$HELPER" routing --port "$S_PORT" --domain "$DOMAIN" --cafile "$CERT"
case_ bind-conflict ok "$S_LOG" "^BIND-CONFLICT bob@$E/home " -- \
  "$PYTHON" "$HELPER" conflict --port "$S_PORT" --domain "$DOMAIN" --cafile "$CERT" --raw "$RAW"

# ---------- in-band registration (XEP-0077) and legacy authentication (XEP-0078)
case_ slixmpp-register ok "$S_LOG" "^LOGIN carol@$E/slix-reg via SCRAM-SHA-256 " -- \
  "${slix[@]}" --port "$S_PORT" --jid "carol@$DOMAIN/slix-reg" --password 'carol pass' --register --to self
case_ slixmpp-registered-login ok "$S_LOG" "^LOGIN carol@$E/slix-reg2 via SCRAM-SHA-1 " -- \
  "${slix[@]}" --port "$S_PORT" --jid "carol@$DOMAIN/slix-reg2" --password 'carol pass' --mech SCRAM-SHA-1 --to self
case_ raw-register-taken "error:iq error: conflict" "$S_LOG" "^REGISTER-FAIL alice: 409 conflict " -- \
  "${raw[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password other --register --transcript "$LOGDIR/raw-register-taken.wire"
for how in plain digest; do
  case_ "raw-legacy-$how" ok "$S_LOG" "^LOGIN alice@$E/legacy-$how via jabber:iq:auth " -- \
    "${raw[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password secret --resource "legacy-$how" --legacy "$how" \
    --message-to self --transcript "$LOGDIR/raw-legacy-$how.wire"
done
case_ raw-legacy-wrong-password "error:iq error: not-authorized" "$S_LOG" "^AUTHFAIL alice via jabber:iq:auth: 401 " -- \
  "${raw[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password wrong --resource legacy-bad --legacy digest \
  --transcript "$LOGDIR/raw-legacy-wrong-password.wire"
# Zero-knowledge (jabberd 1.4 mod_auth_0k) with the crate's own legacy client, twice: the second login
# proves the server stored the stepped-down hash chain.
if [ "$LEGACY_OK" = yes ]; then
  for i in 1 2; do
    OUTPAT='^-- legacy method: zero-knowledge$' case_ "legacy-zero-k-$i" ok "$S_LOG" "^LOGIN alice@$E/zero-k-$i via jabber:iq:auth " -- \
      "$LEGACY" --host 127.0.0.1 --port "$S_PORT" --ca-file "$CERT" --jid "alice@$DOMAIN" --password secret --resource "zero-k-$i"
  done
else
  skip "legacy-zero-k-*" "the legacy_login tool does not build (see $LOGDIR/build-legacy_login.log)"
fi

# ---------- xmpp_raw.py: its own SCRAM and tls-server-end-point (hash of the certificate it received)
case_ raw-scram-sha-256-plus-endpoint ok "$S_LOG" "^LOGIN alice@$E/raw-256 via SCRAM-SHA-256-PLUS \[cb tls-server-end-point, h= sent\] \(TLSv1\.3" -- \
  "${raw[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password secret --resource raw-256 --mech SCRAM-SHA-256-PLUS \
  --cb-type tls-server-end-point --require-ssdp --message-to self --transcript "$LOGDIR/raw-scram-sha-256-plus-endpoint.wire"
case_ raw-scram-sha-1-plus-endpoint-tls12 ok "$S_LOG" "^LOGIN alice@$E/raw-12 via SCRAM-SHA-1-PLUS \[cb tls-server-end-point, h= sent\] \(TLSv1\.2" -- \
  "${raw[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password secret --resource raw-12 --mech SCRAM-SHA-1-PLUS \
  --cb-type tls-server-end-point --tls-max 1.2 --require-ssdp --transcript "$LOGDIR/raw-scram-sha-1-plus-endpoint-tls12.wire"

# ---------- the client tool: tls-exporter (rustls on both sides)
if [ "$CLIENT_OK" = yes ]; then
  case_ client-scram-sha-256-plus-exporter ok "$S_LOG" "^LOGIN alice@$E/cl-exp via SCRAM-SHA-256-PLUS \[cb tls-exporter, h= sent\] \(TLSv1\.3" -- \
    "${cl[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password secret --resource cl-exp \
    --mechanism SCRAM-SHA-256-PLUS --channel-binding tls-exporter
  case_ client-scram-sha-256-plus-exporter-tls12 ok "$S_LOG" "^LOGIN alice@$E/cl-exp12 via SCRAM-SHA-256-PLUS \[cb tls-exporter, h= sent\] \(TLSv1\.2" -- \
    "${cl[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password secret --resource cl-exp12 \
    --mechanism SCRAM-SHA-256-PLUS --channel-binding tls-exporter --tls-version 1.2
  case_ client-scram-sha-1-plus-endpoint ok "$S_LOG" "^LOGIN alice@$E/cl-ep via SCRAM-SHA-1-PLUS \[cb tls-server-end-point, h= sent\] " -- \
    "${cl[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password secret --resource cl-ep \
    --mechanism SCRAM-SHA-1-PLUS --channel-binding tls-server-end-point
  case_ client-wrong-password "error:not-authorized" "$S_LOG" "^AUTHFAIL alice via SCRAM-SHA-256-PLUS: not-authorized " -- \
    "${cl[@]}" --port "$S_PORT" --jid "alice@$DOMAIN" --password wrong-password
else
  skip "client-*" "the client tool does not build (see $LOGDIR/build-client.log)"
fi

# ---------- direct TLS (XEP-0368)
case_ slixmpp-direct-scram-sha-256 ok "$D_LOG" "^LOGIN alice@$E/slix-direct via SCRAM-SHA-256 " -- \
  "${slix[@]}" --port "$D_PORT" --direct-tls --jid "alice@$DOMAIN/slix-direct" --password secret --mech SCRAM-SHA-256 --to self
case_ slixmpp-direct-anonymous ok "$D_LOG" "^LOGIN anon-[a-z0-9]+@$E/[^ ]+ via ANONYMOUS " -- \
  "${slix[@]}" --port "$D_PORT" --direct-tls --jid "$DOMAIN" --mech ANONYMOUS --to self
case_ slixmpp-direct-digest-md5 ok "$D_LOG" "^LOGIN bob@$E/slix-md5 via DIGEST-MD5 " -- \
  "${slix[@]}" --port "$D_PORT" --direct-tls --jid "bob@$DOMAIN/slix-md5" --password 'pass word:with colon' --mech DIGEST-MD5 --to self
if [ "$CLIENT_OK" = yes ]; then
  case_ client-direct-scram-sha-512-plus ok "$D_LOG" "^LOGIN alice@$E/cl-512 via SCRAM-SHA-512-PLUS " -- \
    "${cl[@]}" --port "$D_PORT" --tls direct --jid "alice@$DOMAIN" --password secret --resource cl-512 --mechanism SCRAM-SHA-512-PLUS
fi

# ---------- the servers are still up
alive=0
for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
if [ "$alive" = "${#PIDS[@]}" ]; then pass servers-alive "both servers still running after every case"
else fail servers-alive "$((${#PIDS[@]} - alive)) server(s) exited"; tail -n 5 "$S_LOG" "$D_LOG" | sed 's/^/  | /'
fi

finish
