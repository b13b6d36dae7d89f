#!/usr/bin/env python3
"""slixmpp's XEP-0198 resumption against a server (interop/sm_tests.sh runs it against the example server's --sm).

    slixmpp_sm_resume.py --host 127.0.0.1 --port P --jid alice@D --password W --bob bob@D --bob-password W
        [--mech SCRAM-SHA-256] [--text TEXT]

Alice logs in with slixmpp's xep_0198 plugin and enables stream management with resumption; her TCP connection is
then cut without closing the stream (the asyncio transport aborted). While she is detached, Bob (a second slixmpp
client) sends her full JID a message. Alice reconnects: slixmpp resumes the session (<resume/>, <resumed/>), and
the message, held by the server meanwhile, must arrive exactly once.

Prints ENABLED <jid>, RESUMED, MESSAGE <text> lines, then "OK <alice's full jid> messages=1" (exit 0), or
"ERROR <reason>" (exit 1). STARTTLS, accepting the server's self-signed certificate (a throw-away one).
"""
import argparse
import asyncio
import os
import ssl
import sys

_VENV_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".venv", "bin", "python")
try:
    import slixmpp  # noqa: F401
except ImportError:
    if os.path.exists(_VENV_PY) and os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(_VENV_PY, "..", "..")):
        os.execv(_VENV_PY, [_VENV_PY] + sys.argv)
    print("ERROR slixmpp is not installed: run interop/clients/setup_venv.sh (makes interop/.venv)")
    sys.exit(2)
from slixmpp import ClientXMPP


def client(jid, password, mech, sm):
    c = ClientXMPP(jid, password, sasl_mech=mech)
    c.enable_direct_tls = False
    # STARTTLS with the server's throw-away self-signed certificate.
    c.ssl_context.check_hostname = False
    c.ssl_context.verify_mode = ssl.CERT_NONE
    if sm:
        c.register_plugin("xep_0198")
    return c


async def main(a):
    loop = asyncio.get_event_loop()
    alice = client(a.jid, a.password, a.mech, True)
    enabled, resumed, got = loop.create_future(), loop.create_future(), []
    alice.add_event_handler("sm_enabled", lambda s: enabled.done() or enabled.set_result(str(alice.boundjid)))
    alice.add_event_handler("session_resumed", lambda s: resumed.done() or resumed.set_result(True))
    alice.add_event_handler("sm_failed", lambda s: resumed.done() or resumed.set_result(False))
    alice.add_event_handler("session_start", lambda e: alice.send_presence())

    def on_message(m):
        if m["body"] == a.text:
            got.append(m["body"])
            print("MESSAGE %s" % m["body"], flush=True)
    alice.add_event_handler("message", on_message)
    alice.connect(a.host, a.port)
    full = await asyncio.wait_for(enabled, 15)
    print("ENABLED %s" % full, flush=True)

    # Cut the connection: no </stream:stream>, just the socket closed.
    alice.abort()
    await asyncio.sleep(1.0)

    bob = client(a.bob, a.bob_password, a.mech, False)
    bob_ready = loop.create_future()
    bob.add_event_handler("session_start", lambda e: bob_ready.done() or bob_ready.set_result(True))
    bob.connect(a.host, a.port)
    await asyncio.wait_for(bob_ready, 15)
    bob.send_message(mto=full, mbody=a.text, mtype="chat")
    await asyncio.sleep(0.5)
    await asyncio.wait_for(bob.disconnect(wait=1), 5)

    alice.connect(a.host, a.port)
    if not await asyncio.wait_for(resumed, 15):
        return "ERROR the resumption failed (sm_failed)"
    print("RESUMED", flush=True)
    for _ in range(50):
        if got:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # room for a duplicate to show up
    await asyncio.wait_for(alice.disconnect(wait=1), 5)
    if len(got) != 1:
        return "ERROR the message arrived %d times" % len(got)
    return "OK %s messages=1" % full


def run():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--bob", required=True)
    p.add_argument("--bob-password", required=True)
    p.add_argument("--mech", default="SCRAM-SHA-256")
    p.add_argument("--text", default="sent while detached")
    a = p.parse_args()
    try:
        line = asyncio.run(asyncio.wait_for(main(a), 45))
    except Exception as e:  # noqa: BLE001 (the interop line says what went wrong)
        line = "ERROR %s: %s" % (type(e).__name__, e)
    print(line, flush=True)
    sys.exit(0 if line.startswith("OK ") else 1)


if __name__ == "__main__":
    run()
