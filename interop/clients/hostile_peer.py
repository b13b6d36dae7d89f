#!/usr/bin/env python3
"""A tiny hostile XMPP server for the client *tools* (stdlib only, Python >= 3.8).

It listens on 127.0.0.1 (a free port, printed first as "LISTENING <port>"), takes one connection and
plays an honest server up to the client's first request: a stream header and features offering SASL
SCRAM-SHA-1, jabber:iq:auth and in-band registration (and STARTTLS, required, with --cert/--key; after
the TLS handshake the stream restarts and the same features follow, without STARTTLS). It answers that
first request (`<auth/>`: a `<challenge/>`; `<iq/>`: an `<iq type='result'>`) with a start tag and then
endless text, --size bytes (default 5 MiB), that never closes the element. An honest client refuses it at
its element limit (256 KiB by default), writes its stream error and `</stream:stream>`, and closes the
socket: the writes here then fail (reset).

One line at the end:
  HOSTILE-PEER request=<name> sent=<bytes of the oversized element accepted by the kernel>
      closed_after=<seconds> end=<reset|stalled|eof-stalled|all-sent> client_said=<what came after the request>
"sent" counts what the kernel accepted before the connection failed: what the client read plus what sat in
the two socket buffers (this side's is kept small, --sndbuf), so it bounds from above what the client read.
"stalled": no write progress for --stall seconds (the client stopped reading without closing the
connection; "eof-stalled": it had sent its FIN). Exit 0 when the exchange got as far as the oversized
element, 1 otherwise.

  hostile_peer.py [--size BYTES] [--stall S] [--sndbuf BYTES] [--cert F --key F]
"""
import argparse, select, socket, ssl, sys, time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"


class Peer:
    def __init__(self, sock):
        self.sock = sock
        self.parser = None
        self.depth = 0
        self.events = []
        self.raw = b""

    def restart(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.events = []

    def next_event(self):
        """("open", el) for the stream header, ("elem", el) for a top-level element."""
        while not self.events:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("the client closed the connection")
            self.raw += d
            self.parser.feed(d)
            for ev, el in self.parser.read_events():
                if ev == "start":
                    self.depth += 1
                    if self.depth == 1:
                        self.events.append(("open", el))
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.events.append(("elem", el))
        return self.events.pop(0)

    def features(self, starttls):
        self.restart()
        ev, _ = self.next_event()
        if ev != "open":
            raise ConnectionError("no stream header")
        tls = ("<starttls xmlns='%s'><required/></starttls>" % NS_TLS) if starttls else ""
        self.sock.sendall((
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='%s' id='hostile-%d' "
            "from='sansio.test' version='1.0'><stream:features>%s<mechanisms xmlns='%s'>"
            "<mechanism>SCRAM-SHA-1</mechanism></mechanisms><auth xmlns='http://jabber.org/features/iq-auth'/>"
            "<register xmlns='http://jabber.org/features/iq-register'/></stream:features>"
            % (NS_STREAM, int(time.time()), tls, NS_SASL)).encode())


def local(tag):
    return tag.rpartition("}")[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=5 * 1024 * 1024)
    ap.add_argument("--stall", type=float, default=5.0)
    ap.add_argument("--sndbuf", type=int, default=64 * 1024)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--accept-timeout", type=float, default=30.0)
    a = ap.parse_args()

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(a.accept_timeout)
    print("LISTENING %d" % ls.getsockname()[1], flush=True)
    try:
        s, _ = ls.accept()
    except socket.timeout:
        print("HOSTILE-PEER error=no-connection", flush=True)
        return 1
    ls.close()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, a.sndbuf)
    s.settimeout(10)
    p = Peer(s)
    try:
        p.features(starttls=bool(a.cert))
        ev, req = p.next_event()
        if a.cert:
            if local(req.tag) != "starttls":
                raise ConnectionError("expected <starttls/>, got %s" % req.tag)
            s.sendall(("<proceed xmlns='%s'/>" % NS_TLS).encode())
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(a.cert, a.key)
            s = ctx.wrap_socket(s, server_side=True)
            p.sock = s
            p.features(starttls=False)
            ev, req = p.next_event()
    except (OSError, ConnectionError, ET.ParseError) as e:
        print("HOSTILE-PEER error=%s" % e, flush=True)
        return 1
    name = local(req.tag)
    after = len(p.raw)
    if name == "auth":
        head = "<challenge xmlns='%s'>" % NS_SASL
        unit = b"QUFB"
    elif name == "iq":
        q = req[0].tag[1:].partition("}")[0] if len(req) else "jabber:iq:auth"
        head = "<iq type='result' id=%s><query xmlns=%s><instructions>" % (
            quoteattr(req.get("id", "")), quoteattr(q))
        unit = b"aaaa"
    else:
        head = "<message><body>"
        unit = b"aaaa"
    chunk = unit * 4096  # 16 KiB
    pending = head.encode()
    sent = 0
    s.setblocking(False)
    t0 = last = time.monotonic()
    end = "all-sent"
    eof = False
    said = b""
    while True:
        if not pending:
            if sent >= a.size:
                break
            pending = chunk[: a.size - sent]
        try:
            n = s.send(pending)
            sent += n
            pending = pending[n:]
            last = time.monotonic()
            continue
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        except OSError:
            end = "reset"
            break
        # Blocked: take what the client says meanwhile (its stream error, its close, its FIN).
        try:
            d = s.recv(65536)
            if d:
                said += d
            else:
                eof = True
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError:
            end = "reset"
            break
        if time.monotonic() - last > a.stall:
            end = "eof-stalled" if eof else "stalled"
            break
        select.select([s], [s], [], 0.05)
    closed_after = time.monotonic() - t0
    try:  # what is left of what the client said
        s.setblocking(True)
        s.settimeout(0.5)
        while True:
            d = s.recv(65536)
            if not d:
                break
            said += d
    except OSError:
        pass
    text = (p.raw[after:] + said).decode("utf-8", "backslashreplace").replace("\n", "\\n")
    print("HOSTILE-PEER request=%s sent=%d closed_after=%.2f end=%s client_said=%s"
          % (name, sent, closed_after, end, text[:300]), flush=True)
    try:
        s.close()
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
