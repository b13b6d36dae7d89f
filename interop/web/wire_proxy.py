#!/usr/bin/env python3
"""Logging proxy between a web XMPP client and Prosody, for interop/capture_web.sh.

  wire_proxy.py ws   --upstream ws://127.0.0.1:PORT/xmpp-websocket --transcript FILE [--header LINE]...
  wire_proxy.py http --upstream http://127.0.0.1:PORT --transcript FILE [--static DIR] [--header LINE]...

Listens on 127.0.0.1 (a free port; prints "LISTENING <port>" on stdout once ready) and writes the
transcript in the fixture format of tests/fixtures/README.md:
  ws:   one line per WebSocket text message, "C: " client->server, "S: " server->client, in the
        order the proxy saw them (the subprotocol the client asked for is passed on: "xmpp").
  http: one line per HTTP body: "C: " the body of a POST to /http-bind, "S: " the body of
        Prosody's answer, each after a "-- " line naming the request (#n) it belongs to, so that a
        held request and its late answer can be paired; an answer the client no longer waited for
        is marked so. GET serves files from --static (the test
        page and the client library), so the page and /http-bind share one origin (no CORS).
        POST /result takes the page's verdict (one line: "OK ..." or "ERROR ..."), prints it as
        "RESULT <line>" on stdout and writes it to the transcript as a "-- result:" line.
A message or body holding a line break would be written with "\\n"/"\\r" (and a backslash as
"\\\\"); Prosody and the clients captured here send none.
"""
import argparse
import asyncio
import http.client
import http.server
import os
import sys
import threading
import urllib.parse

LOCK = threading.Lock()
OUT = None


def escape(text):
    if "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    return text


def record(line):
    with LOCK:
        OUT.write(line + "\n")
        OUT.flush()


# ------------------------------------------------------------------ WebSocket (RFC 7395)
async def ws_main(args):
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    async def handler(client):
        asked = client.request.headers.get_all("Sec-WebSocket-Protocol")
        record("-- websocket: client asked for subprotocol %s, path %s" % (", ".join(asked) or "none", client.request.path))
        async with connect(args.upstream, subprotocols=["xmpp"], max_size=None, compression=None) as up:
            record("-- websocket: Prosody chose subprotocol %s" % up.subprotocol)

            async def pump(src, dst, tag):
                try:
                    async for msg in src:
                        if isinstance(msg, bytes):
                            record("-- %s sent a binary message of %d bytes" % (tag, len(msg)))
                        else:
                            record("%s: %s" % (tag, escape(msg)))
                        await dst.send(msg)
                finally:
                    code = src.close_code
                    if code is not None:
                        record("-- %s closed the WebSocket (code %s%s)" % (tag, code, " " + src.close_reason if src.close_reason else ""))
                    await dst.close()

            await asyncio.gather(pump(client, up, "C"), pump(up, client, "S"), return_exceptions=True)

    async with serve(handler, "127.0.0.1", 0, subprotocols=["xmpp"], max_size=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print("LISTENING %d" % port, flush=True)
        await asyncio.Future()


# ------------------------------------------------------------------ HTTP (BOSH, XEP-0124/0206)
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter = 0

    def log_message(self, fmt, *a):
        pass

    def reply(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path.lstrip("/") or "index.html"
        root = os.path.realpath(self.server.static or "/nonexistent")
        full = os.path.realpath(os.path.join(root, path))
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            return self.reply(404, b"not found")
        ctype = {"html": "text/html", "js": "text/javascript", "cjs": "text/javascript"}.get(full.rsplit(".", 1)[-1], "application/octet-stream")
        with open(full, "rb") as f:
            self.reply(200, f.read(), ctype)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urllib.parse.urlparse(self.path).path
        if path == "/result":
            line = body.decode("utf-8", "replace").strip().splitlines()[0] if body.strip() else "ERROR empty result"
            record("-- result: %s" % line)
            print("RESULT %s" % line, flush=True)
            return self.reply(200, b"ok")
        if path == "/log":  # the page's own notes (not wire data): stderr only
            print("[page] %s" % body.decode("utf-8", "replace"), file=sys.stderr, flush=True)
            return self.reply(200, b"ok")
        if path != "/http-bind":
            return self.reply(404, b"not found")
        with LOCK:
            Handler.counter += 1
            n = Handler.counter
        record("-- #%d POST /http-bind (Content-Type: %s)" % (n, self.headers.get("Content-Type", "-")))
        record("C: %s" % escape(body.decode("utf-8")))
        up = urllib.parse.urlparse(self.server.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        try:
            conn.request("POST", "/http-bind", body, {"Content-Type": self.headers.get("Content-Type", "text/xml; charset=utf-8")})
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "text/xml; charset=utf-8")
        except OSError as e:
            record("-- #%d no answer from Prosody: %s" % (n, e))
            return self.reply(502, b"upstream error")
        finally:
            conn.close()
        record("-- #%d answer: HTTP %d (Content-Type: %s)" % (n, resp.status, ctype))
        if data:
            record("S: %s" % escape(data.decode("utf-8")))
        try:
            self.reply(resp.status, data, ctype)
        except OSError as e:  # the client gave up on this request (or the browser was closed)
            record("-- #%d the client had closed this request: the answer above never reached it (%s)" % (n, type(e).__name__))


def http_main(args):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.upstream = args.upstream
    srv.static = args.static
    print("LISTENING %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


def main():
    global OUT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["ws", "http"])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--transcript", required=True)
    ap.add_argument("--static")
    ap.add_argument("--header", action="append", default=[], help="a line written first (repeatable)")
    args = ap.parse_args()
    OUT = open(args.transcript, "w", encoding="utf-8")
    for h in args.header:
        record(h)
    if args.mode == "ws":
        asyncio.run(ws_main(args))
    else:
        http_main(args)


if __name__ == "__main__":
    main()
