#!/usr/bin/env python3
"""The hostile-peer suite against the server tool, hosts/src/bin/server.rs (stdlib only, Python >= 3.8; issue 11).

Every attack starts a fresh server (the server tool) on 127.0.0.1 (a free port), makes one connection and does one
thing a hostile client would do. The server runs with --legacy-auth --allow-register, with --tls none (so
that SASL, jabber:iq:auth and stanzas are legal before TLS and the limits, not the TLS policy, are what is
tested) or, for the attacks on the TLS policy, with --tls starttls. One line per attack:

  PASS|FAIL <attack>: condition=<what the server answered> sent=<bytes> read=<bytes> close=<s> rss+=<KiB> [why]

  condition  the stream error condition (or, where the server answers with an IQ or SASL error and keeps
             the stream, `iq:<condition>` / `sasl:<condition>`; `open` when nothing came back)
  sent       bytes this side wrote (the kernel accepted) before the server closed the connection
  read       bytes the server read from the connection (its `END <peer>: N bytes read` log line)
  close      seconds from the attack's first byte to the end of the connection (`-` when it stayed open)
  rss+       growth of the server's peak resident set (VmHWM of /proc/PID/status) over the attack

The expectations are the behaviour issue 11 asks for: policy-violation at the limits with the peak heap
bounded (the reader's budget, default 4 x 256 KiB, plus the host's buffers: --rss-bound, default 8 MiB)
and the server reading far less than the 5 MiB flood (at most twice the element limit); elements not legal in their phase refused at their start
tag (the suite sends the start tag and 4 KiB and waits a second before it floods on); no credential
accepted before STARTTLS when TLS is required; SASL aborts and legacy failures counted together with SASL
failures (default limit 3, then policy-violation); a started element after the session is ready completed
within the element deadline; text before the stream header refused at once. The last line is
`hostile: N passed, N failed`; with --markdown the table (the same figures) is printed before it.

  hostile.py --server target/debug/server --cert cert.pem --key key.pem [--markdown] [--only NAME,..]
"""
import argparse, hashlib, os, re, select, socket, subprocess, sys, tempfile, time

DOMAIN = "sansio.test"
NS_STREAM = "http://etherx.jabber.org/streams"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
HEADER = ("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' xmlns='jabber:client' "
          "xmlns:stream='%s'>" % (DOMAIN, NS_STREAM))
FLOOD = 5 * 1024 * 1024          # what a flood attack tries to send
ELEMENT_LIMIT = 256 * 1024       # the server's max_element_bytes (default Limits)
PROBE = 4096                     # filler after a start tag that must be refused at once
AUTH = "<auth xmlns='%s' mechanism='SCRAM-SHA-256'>" % NS_SASL


# ---------------------------------------------------------------------------- the server under attack

class Server:
    def __init__(self, binary, tls, cert, key, logdir, name, extra=()):
        self.log = os.path.join(logdir, "server-%s.log" % name)
        args = [binary, "--listen", "127.0.0.1:0", "--domain", DOMAIN, "--user", "alice:secret",
                "--legacy-auth", "--allow-register"]
        args += ["--tls", "starttls", "--cert", cert, "--key", key] if tls else ["--tls", "none"]
        args += list(extra)
        self.out = open(self.log, "w")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"^LISTENING 127\.0\.0\.1:(\d+) ", open(self.log).read(), re.M)
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise RuntimeError("the server did not start: %s" % open(self.log).read()[-500:])

    def status(self, field):
        with open("/proc/%d/status" % self.proc.pid) as f:
            m = re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M)
        return int(m.group(1)) if m else 0

    def bytes_read(self, timeout=3.0):
        """What the server read from the (one) connection: its `END <peer>: N bytes read` line, logged once
        the connection is closed. None when it does not come."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(r"^END [^:]+:\d+: (\d+) bytes read", self.logged(), re.M)
            if m or time.monotonic() > deadline:
                return int(m.group(1)) if m else None
            time.sleep(0.02)

    def logged(self):
        return open(self.log).read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


# ---------------------------------------------------------------------------- one connection

class Wire:
    """A non-blocking connection that records what the server sends and when it went away."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        self.sock.setblocking(False)
        self.inbuf = b""
        self.sent = 0
        self.gone = None  # "eof" | "reset", once the server closed the connection
        self.gone_at = None
        self.t0 = time.monotonic()

    def pump(self, wait=0.0):
        """Takes what the server sent, waiting up to `wait` s for the first of it."""
        if self.gone:
            return
        r, _, _ = select.select([self.sock], [], [], wait)
        while r:
            try:
                d = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                self._gone("reset")
                return
            if not d:
                self._gone("eof")
                return
            self.inbuf += d
            r, _, _ = select.select([self.sock], [], [], 0)

    def _gone(self, how):
        if not self.gone:
            self.gone, self.gone_at = how, time.monotonic()

    def write(self, data, stop_when=None):
        """Writes `data` (bytes or an iterator of chunks) until done, the server goes away, or `stop_when()`
        holds; waits (select) while the socket is full, taking the server's bytes meanwhile. Gives up after
        5 s without progress. Returns whether everything was written."""
        chunks = iter([data]) if isinstance(data, (bytes, bytearray)) else data
        pending = b""
        last = time.monotonic()
        while True:
            self.pump()
            if self.gone or (stop_when and stop_when()):
                return False
            if not pending:
                pending = next(chunks, None)
                if pending is None:
                    return True
            try:
                n = self.sock.send(pending)
                self.sent += n
                pending = pending[n:]
                last = time.monotonic()
            except BlockingIOError:
                if time.monotonic() - last > 5:
                    return False
                select.select([self.sock], [self.sock], [], 0.05)
            except OSError:
                self._gone("reset")
                return False

    def wait_for(self, pattern, timeout):
        """Waits until `pattern` (a bytes regex) is in what the server sent, or it went away."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.inbuf) and not self.gone and time.monotonic() < deadline:
            self.pump(min(0.05, max(0.0, deadline - time.monotonic())))
        return re.search(pattern, self.inbuf)

    def wait_gone(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.gone and time.monotonic() < deadline:
            self.pump(min(0.05, max(0.0, deadline - time.monotonic())))
        return self.gone

    def open_stream(self):
        self.write(HEADER.encode())
        if not self.wait_for(rb"</stream:features>", 10):
            raise RuntimeError("no stream features (got %r)" % self.inbuf[-200:])
        m = re.search(rb"<stream:stream[^>]*\sid=['\"]([^'\"]+)['\"]", self.inbuf)
        return m.group(1).decode() if m else ""

    def condition(self):
        """The stream error condition, else an IQ or SASL error condition, else `open`/`closed`."""
        text = self.inbuf.decode("utf-8", "replace")
        m = re.search(r"<stream:error>\s*<([a-z-]+)", text)
        if m:
            return m.group(1)
        errs = [e for e in re.findall(r"<([a-z-]+) xmlns=['\"]urn:ietf:params:xml:ns:xmpp-stanzas['\"]", text)
                if e != "text"]
        if errs:
            return "iq:" + errs[-1]
        fails = re.findall(r"<failure xmlns=['\"]%s['\"]>\s*<([a-z-]+)" % re.escape(NS_SASL), text)
        if fails:
            return "sasl:" + fails[-1]
        return "closed" if self.gone else "open"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def repeat(head, unit, total=FLOOD, chunk=16 * 1024):
    """`head`, then `unit` over and over, `total` bytes in all, in chunks."""
    yield head
    block = unit * max(1, chunk // len(unit))
    left = total - len(head)
    while left > 0:
        yield block[:left]
        left -= len(block)


def digest(stream_id, password):
    return hashlib.sha1((stream_id + password).encode()).hexdigest()


def legacy_set(iq_id, credential):
    return ("<iq type='set' id='%s'><query xmlns='jabber:iq:auth'><username>alice</username>%s"
            "<resource>hostile</resource></query></iq>" % (iq_id, credential)).encode()


# ---------------------------------------------------------------------------- the attacks
# Each takes (wire, ctx) and returns a dict: `ok` (bool), `why` (when not ok); the table's figures are
# measured around it. ctx: the suite's options and the server.

LIMIT = {"policy-violation"}


def flood_attack(head, unit):
    def attack(w, ctx):
        w.open_stream()
        w.write(repeat(head.encode(), unit.encode()))
        w.wait_gone(10)
        return check_limit(w, ctx)
    return attack


def check_limit(w, ctx):
    if w.condition() not in LIMIT:
        return {"ok": False, "why": "expected policy-violation"}
    return {"ok": True, "flood": True}


def probe_attack(head, unit, expected, before=None):
    """A start tag that is not legal in the phase: it must be refused before the flood goes on."""
    def attack(w, ctx):
        if before is not None:
            before(w)
        w.write(head.encode() + (unit * (PROBE // len(unit))).encode())
        refused_at_once = w.wait_for(rb"</stream:stream>", 1.0) is not None
        w.write(repeat(b"", unit.encode(), FLOOD - w.sent))
        w.wait_gone(10)
        c = w.condition()
        if c not in expected:
            return {"ok": False, "why": "expected %s" % "/".join(sorted(expected))}
        if not refused_at_once:
            return {"ok": False, "why": "refused only after the start tag and %d bytes (not at the start tag)" % PROBE}
        return {"ok": True, "flood": True}
    return attack


def during_sasl(w):
    w.open_stream()
    w.write((AUTH + "biwsbj1hbGljZSxyPWhvc3RpbGVub25jZTAx</auth>").encode())  # n,,n=alice,r=hostilenonce01
    if not w.wait_for(rb"<challenge", 5):
        raise RuntimeError("no SASL challenge (got %r)" % w.inbuf[-200:])


def legacy_before_tls(credential):
    def attack(w, ctx):
        sid = w.open_stream()
        w.write(legacy_set("h1", credential(sid)))
        w.wait_for(rb"id=['\"]h1['\"]|</stream:stream>", 5)
        time.sleep(0.2)
        w.pump()
        accepted = re.search(rb"<iq[^>]*type=['\"]result['\"][^>]*id=['\"]h1|<iq[^>]*id=['\"]h1['\"][^>]*type=['\"]result",
                             w.inbuf)
        login = re.search(r"^LOGIN ", ctx["server"].logged(), re.M)
        w.write(b"</stream:stream>")
        w.wait_gone(3)
        if accepted or login:
            return {"ok": False, "why": "logged in before STARTTLS although TLS is required", "condition": "accepted"}
        c = w.condition()
        if c != "iq:not-acceptable":
            return {"ok": False, "why": "expected a 406 not-acceptable refusal (as Prosody's mod_legacyauth)"}
        return {"ok": True}
    return attack


def repeated_failures(one_try):
    """Four failed attempts: the stream must end with policy-violation (default limit: 3)."""
    def attack(w, ctx):
        sid = w.open_stream()
        for i in range(4):
            if w.gone:
                break
            one_try(w, sid, i)
        w.wait_gone(3)
        if w.condition() != "policy-violation":
            return {"ok": False, "why": "expected policy-violation after 3 failures (still %s after 4)"
                    % ("open" if not w.gone else "closed")}
        return {"ok": True}
    return attack


def sasl_abort(w, sid, i):
    w.write((AUTH + "biwsbj1hbGljZSxyPWhvc3RpbGVub25jZTAx</auth>").encode())  # n,,n=alice,r=hostilenonce01
    w.wait_for(rb"(?s)(<challenge.*){%d}|<failure|</stream:stream>" % (i + 1), 5)
    w.write(("<abort xmlns='%s'/>" % NS_SASL).encode())
    w.wait_for(rb"(?s)(<failure.*){%d}|</stream:stream>" % (i + 1), 5)


def wrong_password(w, sid, i):
    w.write(legacy_set("w%d" % i, "<digest>%s</digest>" % digest(sid, "wrong-%d" % i)))
    w.wait_for((r"id=['\"]w%d['\"]|</stream:stream>" % i).encode(), 5)


def trickle(w, ctx):
    sid = w.open_stream()
    w.write(legacy_set("t1", "<digest>%s</digest>" % digest(sid, "secret")))
    w.wait_for(rb"<iq[^>]*id=['\"]t1['\"]|</stream:stream>", 5)
    if not re.search(rb"<iq[^>]*type=['\"]result['\"]", w.inbuf):
        return {"ok": False, "why": "the legacy login (for a ready session) failed: %r" % w.inbuf[-200:]}
    w.write(("<message to='alice@%s' type='chat' id='t2'><body>" % DOMAIN).encode())
    limit = ctx["trickle_wait"]
    deadline = time.monotonic() + limit
    while not w.gone and time.monotonic() < deadline:
        w.write(b"a")
        w.pump(ctx["trickle_every"])
    if not w.gone:
        hint = "" if ctx["element_flag"] else " (the server tool has no %s flag)" % ctx["element_flag_name"]
        return {"ok": False, "why": "still open after %.0f s of one byte every %.1f s%s"
                % (limit, ctx["trickle_every"], hint)}
    if w.condition() != "policy-violation":
        return {"ok": False, "why": "expected policy-violation"}
    return {"ok": True}


def text_before_header(w, ctx):
    w.write(b"hello " * (PROBE // 6))
    refused_at_once = w.wait_for(rb"</stream:stream>", 1.0) is not None or w.gone
    w.write(repeat(b"", b"hello ", FLOOD - w.sent))
    w.wait_gone(10)
    c = w.condition()
    if c != "not-well-formed":
        return {"ok": False, "why": "expected not-well-formed"}
    if not refused_at_once:
        return {"ok": False, "why": "not refused within 1 s of %d bytes of text" % PROBE}
    return {"ok": True, "flood": True}


URI8K = "urn:hostile:" + "n" * 8000
ATTRS = "".join(" p:a%d=''" % i for i in range(60))
DECLS = "".join(" xmlns:n%d='urn:hostile:%d:%s'" % (i, i, "d" * 64) for i in range(60))

# (name, description, server with TLS?, attack)
ATTACKS = [
    ("oversize", "one element over the size limit (5 MiB of SASL payload)", False,
     flood_attack(AUTH, "QUFB")),
    ("ns-heavy", "<m xmlns='8 KB URI'> then <a/> children, unclosed", False,
     flood_attack(AUTH + "<m xmlns='%s'>" % URI8K, "<a/>")),
    ("prefixed-attrs", "children with 60 attributes of an 8 KB-URI prefix", False,
     flood_attack(AUTH + "<m xmlns:p='%s'>" % URI8K, "<a%s/>" % ATTRS)),
    ("tiny-children", "many <a/> children, unclosed", False,
     flood_attack(AUTH, "<a/>")),
    ("ns-declarations", "children with 60 namespace declarations each", False,
     flood_attack(AUTH, "<a%s/>" % DECLS)),
    ("deep-nesting", "nesting to depth 63, again and again", False,
     flood_attack(AUTH, "<a>" * 62 + "</a>" * 62)),
    ("stream-restart", "a <stream:stream> start tag mid-stream", False,
     probe_attack(HEADER.split("?>", 1)[1], "<a/>", {"bad-format"},
                  before=lambda w: w.open_stream())),
    ("message-before-auth", "a <message/> before authentication", False,
     probe_attack("<message to='alice@%s' type='chat'><body>" % DOMAIN, "aaaa", {"not-authorized"},
                  before=lambda w: w.open_stream())),
    ("stanza-during-sasl", "a <message/> while a SASL exchange is running", False,
     probe_attack("<message to='alice@%s' type='chat'><body>" % DOMAIN, "aaaa",
                  {"unsupported-stanza-type"}, before=during_sasl)),
    ("legacy-digest-before-tls", "jabber:iq:auth <digest> (right password) before STARTTLS, TLS required", True,
     legacy_before_tls(lambda sid: "<digest>%s</digest>" % digest(sid, "secret"))),
    ("legacy-plain-before-tls", "jabber:iq:auth <password> (right password) before STARTTLS, TLS required", True,
     legacy_before_tls(lambda sid: "<password>secret</password>")),
    ("sasl-aborts", "four SASL <abort/>s", False, repeated_failures(sasl_abort)),
    ("wrong-passwords", "four wrong jabber:iq:auth passwords", False, repeated_failures(wrong_password)),
    ("trickle-after-ready", "a started <message> after ready, one byte at a time", False, trickle),
    ("text-before-header", "text instead of a stream header", False, text_before_header),
]


def run_one(name, desc, tls, attack, opts, logdir):
    extra = []
    if name == "trickle-after-ready" and opts.element_flag:
        extra = [opts.element_flag_name, str(opts.element_timeout)]
    srv = Server(opts.server, tls, opts.cert, opts.key, logdir, name, extra)
    ctx = {"server": srv, "trickle_wait": opts.trickle_wait, "trickle_every": opts.trickle_every,
           "element_flag": opts.element_flag, "element_flag_name": opts.element_flag_name}
    if opts.element_flag:
        ctx["trickle_wait"] = opts.element_timeout + 3
    w = None
    try:
        time.sleep(0.05)
        hwm0 = srv.status("VmHWM")
        w = Wire(srv.port)
        try:
            res = attack(w, ctx)
        except RuntimeError as e:
            res = {"ok": False, "why": str(e)}
        res.setdefault("condition", w.condition())
        res.update(name=name, desc=desc, sent=w.sent, close=(w.gone_at - w.t0) if w.gone else None)
        w.close()  # (when the server kept it open) so that it logs END
        read = srv.bytes_read()
        rss = srv.status("VmHWM") - hwm0
        res.update(read=read if read is not None else -1, rss=rss)
        if res["ok"] and read is None:
            res.update(ok=False, why="the server logged no END line for the connection")
        if res["ok"] and rss * 1024 > opts.rss_bound:
            res.update(ok=False, why="peak RSS grew by %d KiB (bound %d KiB)" % (rss, opts.rss_bound // 1024))
        if res["ok"] and res.get("flood") and read > 2 * ELEMENT_LIMIT:
            res.update(ok=False, why="the server read %d bytes of a %d-byte flood (over twice the element limit)"
                       % (read, FLOOD))
        return res
    finally:
        if w:
            w.close()
        srv.stop()


def fmt_close(c):
    return "-" if c is None else "%.2f" % c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="the server tool binary (target/debug/server)")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    ap.add_argument("--only", help="comma-separated attack names")
    ap.add_argument("--logdir", help="where the server logs go (default: a temp dir)")
    ap.add_argument("--rss-bound", type=int, default=8 * 1024 * 1024, help="bytes (default 8 MiB)")
    ap.add_argument("--element-flag-name", default="--element-timeout",
                    help="the server flag for the element deadline after ready, used when --help lists it")
    ap.add_argument("--element-timeout", type=int, default=2, help="seconds, for that flag")
    ap.add_argument("--trickle-wait", type=float, default=4.0,
                    help="how long the trickle goes on when the server has no such flag")
    ap.add_argument("--trickle-every", type=float, default=0.5)
    opts = ap.parse_args()
    helptext = subprocess.run([opts.server, "--help"], capture_output=True, text=True).stdout
    opts.element_flag = opts.element_flag_name in helptext
    logdir = opts.logdir or tempfile.mkdtemp(prefix="hostile-")
    os.makedirs(logdir, exist_ok=True)
    only = set(opts.only.split(",")) if opts.only else None
    results = []
    for name, desc, tls, attack in ATTACKS:
        if only and name not in only:
            continue
        try:
            r = run_one(name, desc, tls, attack, opts, logdir)
        except (RuntimeError, OSError) as e:
            r = {"ok": False, "why": "could not run: %s" % e, "name": name, "desc": desc, "condition": "-",
                 "sent": 0, "read": 0, "rss": 0, "close": None}
        results.append(r)
        print("%s %s: condition=%s sent=%d read=%d close=%s rss+=%dKiB%s" % (
            "PASS" if r["ok"] else "FAIL", name, r["condition"], r["sent"], r["read"], fmt_close(r["close"]),
            r["rss"], "" if r["ok"] else " -- " + r["why"]), flush=True)
    if opts.markdown:
        print()
        print("| attack | condition | bytes sent | bytes read | close (s) | peak RSS growth | result |")
        print("|---|---|---:|---:|---:|---:|---|")
        for r in results:
            print("| %s: %s | `%s` | %d | %d | %s | %d KiB | %s |" % (
                r["name"], r["desc"].replace("|", "\\|").replace("<", "&lt;"), r["condition"], r["sent"],
                r["read"], fmt_close(r["close"]), r["rss"], "pass" if r["ok"] else "FAIL: " + r["why"]))
        print()
    passed = sum(1 for r in results if r["ok"])
    print("hostile: %d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) and results else 1


if __name__ == "__main__":
    sys.exit(main())
