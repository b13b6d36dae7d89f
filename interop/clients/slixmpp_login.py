#!/usr/bin/env python3
"""A real third-party XMPP client (slixmpp, pinned in requirements.txt) used as a peer in interop tests.

Login:     slixmpp_login.py --host 127.0.0.1 --port P --jid alice@localhost --password secret [--mech SCRAM-SHA-1]
           [--to self|bob@localhost] [--direct-tls] [--cafile cert.pem] [--debug] [--log FILE]
Register:  slixmpp_login.py --port P --jid newuser@localhost --password pw --register   (XEP-0077, then logs in)
Anonymous: slixmpp_login.py --port P --jid anon.localhost --mech ANONYMOUS
Legacy XEP-0078 auth: not usable via slixmpp when SASL is offered -> use xmpp_raw.py --legacy.

Prints "OK <bound full jid>" and exits 0, or "ERROR <reason>" and exits 1.
Defaults for --host/--port come from XMPP_HOST/XMPP_PORT (e.g. `set -a; . WORKDIR/peer.env`).
Self-signed server certificates are accepted unless --cafile is given.
With --debug, slixmpp's SEND:/RECV: lines are logged (RECV is re-serialised by slixmpp, not raw bytes).

slixmpp comes from the project's venv interop/.venv (made by interop/clients/setup_venv.sh). Run with any
python3: if slixmpp is not importable and that venv exists, the script re-executes itself with the venv's python.
"""
import argparse
import asyncio
import logging
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
from slixmpp.exceptions import IqError, IqTimeout


class Peer(ClientXMPP):
    def __init__(self, a):
        super().__init__(a.jid, a.password, sasl_mech=a.mech)
        self.a = a
        self.result = None
        self.done = asyncio.get_event_loop().create_future()
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")
        if a.register:
            self.register_plugin("xep_0077")
            self.plugin["xep_0077"].force_registration = True
            self.add_event_handler("register", self.on_register)
        if a.sm:
            self.register_plugin("xep_0198")
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("failed_auth", lambda s: self.finish("auth failed: %s" % s["condition"]))
        self.add_event_handler("failed_all_auth", lambda e: self.finish("all auth mechanisms failed"))
        self.add_event_handler("no_auth", lambda e: self.finish("no usable auth mechanism"))
        self.add_event_handler("connection_failed", lambda e: self.finish("connection failed: %s" % e))
        self.add_event_handler("stream_error", lambda e: self.finish("stream error: %s" % e["condition"]))
        self.add_event_handler("disconnected", lambda e: self.finish("disconnected before login"))
        self.add_event_handler("message", self.on_message)

    def finish(self, result):
        if not self.done.done():
            self.result = result
            self.done.set_result(result)

    async def on_register(self, event):
        iq = self.Iq()
        iq["type"] = "set"
        iq["register"]["username"] = self.boundjid.user
        iq["register"]["password"] = self.password
        try:
            await iq.send()
            logging.info("registered %s", self.boundjid.bare)
            if self.a.register_only:
                self.finish("OK registered %s" % self.boundjid.bare)
        except IqError as e:
            self.finish("registration failed: %s" % e.iq["error"]["condition"])
        except IqTimeout:
            self.finish("registration timed out")

    async def on_start(self, event):
        full = self.boundjid.full
        self.send_presence()
        if self.a.to:
            if self.a.to == "self":
                self._want_echo = True
                self.send_message(mto=full, mbody="hello from slixmpp", mtype="chat")
                return  # finish when it comes back (on_message)
            self.send_message(mto=self.a.to, mbody="hello from slixmpp", mtype="chat")
        self.finish("OK %s" % full)

    def on_message(self, msg):
        if getattr(self, "_want_echo", False) and msg["from"] == self.boundjid:
            self.finish("OK %s" % self.boundjid.full)


async def run(a):
    xmpp = Peer(a)
    if a.cafile:
        xmpp.ca_certs = a.cafile
        xmpp.ssl_context.check_hostname = True
    else:
        xmpp.ssl_context.check_hostname = False
        xmpp.ssl_context.verify_mode = ssl.CERT_NONE
    xmpp.enable_direct_tls = a.direct_tls
    xmpp.enable_starttls = not a.direct_tls
    xmpp.enable_plaintext = False
    xmpp.connect(a.host, a.port)  # (also initialises plugins)
    try:
        res = await asyncio.wait_for(xmpp.done, a.timeout)
    except asyncio.TimeoutError:
        res = "timeout after %ss" % a.timeout
    try:
        await asyncio.wait_for(xmpp.disconnect(wait=1), 5)
    except Exception:
        pass
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("XMPP_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("XMPP_PORT", "5222")))
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", default="")
    ap.add_argument("--mech", default=None, help="force one SASL mechanism, e.g. PLAIN, SCRAM-SHA-1, ANONYMOUS")
    ap.add_argument("--to", help="'self' or a bare jid to send one chat message to")
    ap.add_argument("--register", action="store_true", help="XEP-0077 in-band registration before login")
    ap.add_argument("--register-only", action="store_true", help="with --register: stop after registering")
    ap.add_argument("--sm", action="store_true", help="load XEP-0198 stream management")
    ap.add_argument("--direct-tls", action="store_true")
    ap.add_argument("--cafile")
    ap.add_argument("--timeout", type=float, default=15)
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--log", help="write DEBUG log (SEND:/RECV:) to this file")
    a = ap.parse_args()
    if a.register_only:
        a.register = True
    if a.debug or a.log:
        logging.basicConfig(level=logging.DEBUG, filename=a.log,
                            format="%(asctime)s %(levelname)-7s %(name)s %(message)s")
    else:
        logging.basicConfig(level=logging.CRITICAL)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    res = loop.run_until_complete(run(a))
    if res.startswith("OK"):
        print(res)
        return 0
    print("ERROR %s" % res)
    return 1


if __name__ == "__main__":
    sys.exit(main())
