#!/usr/bin/env python3
"""Minimal hand-rolled XMPP c2s client that records the EXACT bytes on the wire (the project's reference client).

Stdlib only (python3 >= 3.8). Used to check a real server (interop/selftest.sh) and to capture
negotiation transcripts for the crate's replay tests.

Every socket write is logged as "C: <bytes>" and every socket read chunk as "S: <bytes>"
(post-TLS: the plaintext inside TLS). Lines starting with "--" are annotations.

Examples:
  xmpp_raw.py --host 127.0.0.1 --port 5222 --jid alice@localhost --password secret --mech SCRAM-SHA-1
  xmpp_raw.py ... --mech PLAIN
  xmpp_raw.py ... --jid anon.localhost --mech ANONYMOUS
  xmpp_raw.py ... --legacy plain|digest          (XEP-0078 jabber:iq:auth instead of SASL)
  xmpp_raw.py ... --register                     (XEP-0077 IBR of --jid/--password, then SASL login)
  xmpp_raw.py ... --mech X-OAUTH2 --password TOKEN
  xmpp_raw.py ... --features-only                (stream features pre/post TLS, then close)
  xmpp_raw.py ... --mech SCRAM-SHA-1-PLUS --cb-type tls-server-end-point   (works on TLS 1.3 too)
  xmpp_raw.py ... --sasl2 [--sm] [--fast-roundtrip]   (XEP-0388 SASL2 + XEP-0386 Bind2 [+ SM inline];
                 --fast-roundtrip: request a XEP-0484 FAST token, reconnect and log in with it)
  xmpp_raw.py ... --sasl2 --carbons --csi inactive   (XEP-0280 carbons and XEP-0352 CSI inside Bind2)
  --stream-from: put from='<bare jid>' in the stream header (Prosody only advertises FAST then)
  --require-ssdp: fail unless the SCRAM server-first carries a (matching) XEP-0474 h= attribute
  --cb-type auto (default): tls-unique on TLS 1.2, tls-server-end-point on TLS 1.3
tls-exporter is not available from Python's ssl module (no RFC 5705 export): --cb-type tls-exporter errors out.
If the SCRAM server-first carries h= (XEP-0474 SSDP), it is checked against the offered mechanisms/cb types.
Exit 0 and "OK <full jid>" on success, exit 1 and "ERROR ..." otherwise.
"""
import argparse, base64, hashlib, hmac, os, socket, ssl, sys, time, uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION = "urn:ietf:params:xml:ns:xmpp-session"
NS_SM = "urn:xmpp:sm:3"
NS_IQAUTH = "jabber:iq:auth"
NS_REGISTER = "jabber:iq:register"
NS_SASL2 = "urn:xmpp:sasl:2"
NS_BIND2 = "urn:xmpp:bind:0"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_CSI = "urn:xmpp:csi:0"
NS_FAST = "urn:xmpp:fast:0"


class XmppError(Exception):
    pass


class Conn:
    def __init__(self, args, out):
        self.a = args
        self.out = out
        self.sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
        self.secure = False
        self.stream_id = None
        self.parser = None
        self.pending = []
        self.depth = 0
        if args.direct_tls:
            self.starttls_handshake()

    # ---------- logging ----------
    def note(self, msg):
        self.out.write("-- %s\n" % msg)
        self.out.flush()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.out.write("C: %s\n" % data.decode("utf-8", "backslashreplace"))
        self.out.flush()
        self.sock.sendall(data)

    # ---------- parsing ----------
    def new_parser(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0

    def _read_chunk(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise XmppError("timeout waiting for server data")
        if not data:
            raise XmppError("connection closed by server")
        self.out.write("S: %s\n" % data.decode("utf-8", "backslashreplace"))
        self.out.flush()
        self.parser.feed(data)
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.depth += 1
                if self.depth == 1:
                    self.pending.append(("open", el))
            else:
                self.depth -= 1
                if self.depth == 1:
                    self.pending.append(("elem", el))
                elif self.depth == 0:
                    self.pending.append(("close", el))

    def next_event(self):
        while not self.pending:
            self._read_chunk()
        return self.pending.pop(0)

    def next_elem(self):
        ev, el = self.next_event()
        if ev == "close":
            raise XmppError("server closed the stream")
        if ev == "open":
            return self.next_elem()
        if el.tag == "{%s}error" % NS_STREAM:
            cond = [c.tag.split("}")[1] for c in el]
            raise XmppError("stream error: %s" % ",".join(cond))
        return el

    # ---------- stream ----------
    def open_stream(self, to):
        self.new_parser()
        self.pending = []
        frm = (" from=%s" % quoteattr(self.a.jid.split("/")[0])) if self.a.stream_from and "@" in self.a.jid else ""
        self.send("<?xml version='1.0'?><stream:stream to=%s%s version='1.0' xml:lang='en' "
                  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" % (quoteattr(to), frm))
        ev, el = self.next_event()
        if ev != "open":
            raise XmppError("expected stream header, got %s" % el.tag)
        self.stream_id = el.get("id")
        feats = self.next_elem()
        if feats.tag != "{%s}features" % NS_STREAM:
            raise XmppError("expected stream:features, got %s" % feats.tag)
        self.note("features: " + ", ".join(describe_features(feats)))
        self.features = feats
        return feats

    def starttls_handshake(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.a.cafile:
            ctx.load_verify_locations(self.a.cafile)
            ctx.check_hostname = True
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.a.tls_max == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.sock = ctx.wrap_socket(self.sock, server_hostname=self.a.domain)
        self.secure = True
        self.note("TLS handshake done: %s %s (cert verify: %s)" % (
            self.sock.version(), self.sock.cipher()[0], "yes" if self.a.cafile else "no, self-signed accepted"))

    def close(self):
        try:
            self.send("</stream:stream>")
            deadline = time.time() + 3
            while time.time() < deadline:
                ev, el = self.next_event()
                if ev == "close":
                    break
        except Exception as e:  # noqa
            self.note("close: %s" % e)
        try:
            self.sock.close()
        except Exception:
            pass


def describe_features(feats):
    out = []
    for f in feats:
        ns, _, name = f.tag[1:].partition("}")
        if name == "mechanisms":
            out.append("mechanisms[%s]" % " ".join(m.text or "" for m in f))
        elif name == "sasl-channel-binding":
            out.append("sasl-channel-binding[%s]" % " ".join(x.get("type", "") for x in f))
        elif name == "authentication" and ns == NS_SASL2:
            mech = [m.text or "" for m in f if m.tag == "{%s}mechanism" % NS_SASL2]
            inl = f.find("{%s}inline" % NS_SASL2)
            inls = []
            for x in (inl if inl is not None else []):
                xns, _, xn = x.tag[1:].partition("}")
                if xn == "fast":
                    inls.append("fast{%s}[%s]" % (xns, " ".join(m.text or "" for m in x)))
                elif xn == "bind":
                    bi = x.find("{%s}inline" % NS_BIND2)
                    inls.append("bind{%s}[%s]" % (xns, " ".join(v.get("var", "") for v in (bi if bi is not None else []))))
                else:
                    inls.append("%s{%s}" % (xn, xns))
            out.append("sasl2-authentication[%s] inline[%s]" % (" ".join(mech), ", ".join(inls)))
        elif name == "starttls":
            req = f.find("{%s}required" % NS_TLS) is not None
            out.append("starttls%s" % ("(required)" if req else ""))
        else:
            out.append("%s{%s}" % (name, ns))
    return out


def mechs_of(feats):
    m = feats.find("{%s}mechanisms" % NS_SASL)
    return [x.text for x in m] if m is not None else []


# ---------- SASL ----------
def b64(b):
    return base64.b64encode(b).decode()


def saslname(u):
    return u.replace("=", "=3D").replace(",", "=2C")


# ---- SASL framing: RFC 6120 <auth/> or XEP-0388 SASL2 <authenticate/> ----
def sasl_start(c, mech, payload, extra=""):
    """payload: bytes or None (no initial response)"""
    if c.a.sasl2:
        ir = "<initial-response>%s</initial-response>" % (b64(payload) if payload else "=") if payload is not None else ""
        c.send("<authenticate xmlns='%s' mechanism='%s'>%s<user-agent id='%s'><software>xmpp_raw.py</software>"
               "<device>interop</device></user-agent>%s</authenticate>" % (NS_SASL2, mech, ir, c.a.user_agent_id, extra + sasl2_inline_extras(c)))
    else:
        c.send("<auth xmlns='%s' mechanism='%s'>%s</auth>" % (NS_SASL, mech, (b64(payload) if payload else "=") if payload is not None else ""))


def sasl_respond(c, payload):
    ns = NS_SASL2 if c.a.sasl2 else NS_SASL
    c.send("<response xmlns='%s'>%s</response>" % (ns, b64(payload) if payload else ""))


def sasl_read(c):
    """-> (kind, data bytes or None, element); kind in challenge|success; raises on failure"""
    el = c.next_elem()
    check_failure(el)
    ns, _, name = el.tag[1:].partition("}")
    if ns not in (NS_SASL, NS_SASL2) or name not in ("challenge", "success"):
        raise XmppError("unexpected %s" % el.tag)
    if ns == NS_SASL2 and name == "success":
        ad = el.find("{%s}additional-data" % NS_SASL2)
        return name, (base64.b64decode(ad.text or "") if ad is not None else None), el
    return name, (base64.b64decode(el.text) if el.text and el.text != "=" else (b"" if el.text == "=" else None)), el


def sasl2_inline_extras(c):
    x = ""
    if c.a.fast_request:
        x += "<request-token xmlns='%s' mechanism='%s'/>" % (NS_FAST, c.a.fast_request)
    # XEP-0386's order: carbons, stream management, CSI.
    inner = "<enable xmlns='%s'/>" % NS_CARBONS if c.a.carbons else ""
    inner += "<enable xmlns='%s' resume='true'/>" % NS_SM if c.a.sm else ""
    inner += "<%s xmlns='%s'/>" % (c.a.csi, NS_CSI) if c.a.csi else ""
    x += "<bind xmlns='%s'><tag>%s</tag>%s</bind>" % (NS_BIND2, escape(c.a.resource), inner)
    return x


def channel_binding(c, cbtype):
    if not c.secure:
        raise XmppError("channel binding needs TLS")
    if cbtype == "tls-unique":
        d = c.sock.get_channel_binding("tls-unique")
        if d is None:
            raise XmppError("tls-unique unavailable on this TLS connection (%s)" % c.sock.version())
        return d
    if cbtype == "tls-server-end-point":  # RFC 5929 4.1: hash of the server cert DER (SHA-256 unless sig hash is stronger)
        der = c.sock.getpeercert(binary_form=True)
        h = hashlib.sha256
        for oid, hh in ((b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0c", hashlib.sha384), (b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0d", hashlib.sha512),
                        (b"\x2a\x86\x48\xce\x3d\x04\x03\x03", hashlib.sha384), (b"\x2a\x86\x48\xce\x3d\x04\x03\x04", hashlib.sha512)):
            if oid in der[-400:]:  # outer signatureAlgorithm sits near the end
                h = hh
        return h(der).digest()
    if cbtype == "tls-exporter":
        raise XmppError("tls-exporter: Python's ssl module cannot export keying material (RFC 5705); not testable here")
    raise XmppError("unknown channel binding type %s" % cbtype)


def offered_cb_types(c):
    f = getattr(c, "features", None)
    el = f.find("{urn:xmpp:sasl-cb:0}sasl-channel-binding") if f is not None else None
    return [x.get("type") for x in el] if el is not None else None


def check_ssdp(c, attrs, hashmod, offered):
    if "h" not in attrs:
        if c.a.require_ssdp:
            raise XmppError("no XEP-0474 h= attribute in the SCRAM server-first message")
        return
    cbs = offered_cb_types(c)
    s = "\x1e".join(sorted(offered))
    if cbs is not None:
        s += "\x1f" + "\x1e".join(sorted(cbs))
    ok = b64(hashmod(s.encode()).digest()) == attrs["h"]
    c.note("XEP-0474 SSDP h=%s %s (over %r)" % (attrs["h"], "matches offered list" if ok else "DOES NOT match", s))
    if not ok:
        raise XmppError("SSDP downgrade-protection hash mismatch")


def sasl_scram(c, mech, user, password, offered):
    hname = mech[len("SCRAM-"):].replace("-PLUS", "")
    hashmod = {"SHA-1": hashlib.sha1, "SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}[hname]
    plus = mech.endswith("-PLUS")
    cbdata = b""
    if plus:
        cbtype = c.a.cb_type
        if cbtype == "auto":
            cbtype = "tls-unique" if c.sock.version() in ("TLSv1.2", "TLSv1.1", "TLSv1") else "tls-server-end-point"
        cbdata = channel_binding(c, cbtype)
        c.note("channel binding %s: %d bytes" % (cbtype, len(cbdata)))
        gs2 = "p=%s,," % cbtype
    else:
        # "n": client chooses no channel binding. "y" (client supports CB but thinks the server does not) must be
        # rejected by a server that offered -PLUS (RFC 5802 downgrade check); --gs2-flag y exercises that.
        gs2 = "%s,," % c.a.gs2_flag
    cnonce = b64(os.urandom(18)).rstrip("=")
    first_bare = "n=%s,r=%s" % (saslname(user), cnonce)
    sasl_start(c, mech, (gs2 + first_bare).encode())
    kind, data, el = sasl_read(c)
    if kind != "challenge":
        raise XmppError("expected challenge, got %s" % kind)
    server_first = (data or b"").decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    check_ssdp(c, attrs, hashmod, offered)
    if not attrs["r"].startswith(cnonce):
        raise XmppError("server nonce does not extend client nonce")
    salt = base64.b64decode(attrs["s"])
    it = int(attrs["i"])
    salted = hashlib.pbkdf2_hmac(hashmod().name, password.encode(), salt, it)
    ckey = hmac.new(salted, b"Client Key", hashmod).digest()
    skey = hmac.new(salted, b"Server Key", hashmod).digest()
    stored = hashmod(ckey).digest()
    final_wo_proof = "c=%s,r=%s" % (b64(gs2.encode() + cbdata), attrs["r"])
    auth_msg = ",".join([first_bare, server_first, final_wo_proof]).encode()
    csig = hmac.new(stored, auth_msg, hashmod).digest()
    proof = bytes(a ^ b for a, b in zip(ckey, csig))
    sasl_respond(c, (final_wo_proof + ",p=" + b64(proof)).encode())
    kind, data, el = sasl_read(c)
    if kind == "challenge":  # some servers send v= as a challenge
        sasl_respond(c, b"")
        kind, _, el = sasl_read(c)
    c.last_success = el
    sfinal = (data or b"").decode()
    ssig = hmac.new(skey, auth_msg, hashmod).digest()
    if sfinal != "v=" + b64(ssig):
        raise XmppError("server signature mismatch: %r" % sfinal)
    c.note("server signature verified")


def check_failure(el):
    if el.tag in ("{%s}failure" % NS_SASL, "{%s}failure" % NS_SASL2):
        conds = [x.tag.split("}")[1] for x in el if x.tag.split("}")[1] != "text"]
        txt = el.find("{%s}text" % NS_SASL)
        if txt is None:
            txt = el.find("{%s}text" % NS_SASL2)
        raise XmppError("SASL failure: %s%s" % (",".join(conds), (" (%s)" % txt.text) if txt is not None else ""))


def sasl_simple(c, mech, payload, extra=""):
    sasl_start(c, mech, payload, extra)
    kind, data, el = sasl_read(c)
    if kind != "success":
        raise XmppError("unexpected %s" % el.tag)
    c.last_success = el
    return data


def sasl_fast(c, mech, user, token):
    """XEP-0484 HT-* : initial response = user NUL HMAC(token, 'Initiator' || cb-data)"""
    cbt = {"NONE": None, "UNIQ": "tls-unique", "ENDP": "tls-server-end-point", "EXPR": "tls-exporter"}[mech.rsplit("-", 1)[1]]
    cb = channel_binding(c, cbt) if cbt else b""
    h = {"SHA-256": hashlib.sha256, "SHA-512": hashlib.sha512}[mech[3:].rsplit("-", 1)[0]]
    init = hmac.new(token.encode(), b"Initiator" + cb, h).digest()
    data = sasl_simple(c, mech, user.encode() + b"\0" + init, extra="<fast xmlns='%s'/>" % NS_FAST)
    if data != hmac.new(token.encode(), b"Responder" + cb, h).digest():
        raise XmppError("FAST server proof mismatch")
    c.note("FAST %s server proof verified" % mech)


def sasl_digest_md5(c, user, password, domain):
    sasl_start(c, "DIGEST-MD5", None)
    kind, data, el = sasl_read(c)
    if kind != "challenge":
        raise XmppError("expected challenge, got %s" % kind)
    ch = data.decode()
    params = {}
    for part in split_digest(ch):
        k, v = part.split("=", 1)
        params[k.strip()] = v.strip().strip('"')
    realm = params.get("realm", domain)
    cnonce = b64(os.urandom(12))
    uri = "xmpp/" + domain
    md5 = lambda b: hashlib.md5(b).digest()
    hx = lambda b: hashlib.md5(b).hexdigest()
    a1 = md5(("%s:%s:%s" % (user, realm, password)).encode()) + (":%s:%s" % (params["nonce"], cnonce)).encode()
    a2 = ("AUTHENTICATE:%s" % uri).encode()
    resp = hx(("%s:%s:00000001:%s:auth:%s" % (hx(a1), params["nonce"], cnonce, hx(a2))).encode())
    r = ('username="%s",realm="%s",nonce="%s",cnonce="%s",nc=00000001,qop=auth,digest-uri="%s",'
         'response=%s,charset=utf-8' % (user, realm, params["nonce"], cnonce, uri, resp))
    sasl_respond(c, r.encode())
    kind, data, el = sasl_read(c)
    if kind == "challenge":  # rspauth
        sasl_respond(c, b"")
        kind, data, el = sasl_read(c)
    c.last_success = el


def split_digest(s):
    parts, cur, q = [], "", False
    for ch in s:
        if ch == '"':
            q = not q
        if ch == "," and not q:
            parts.append(cur); cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


# ---------- iq helpers ----------
def iq(c, typ, payload, to=None, idv=None):
    idv = idv or uuid.uuid4().hex[:8]
    c.send("<iq type='%s' id='%s'%s>%s</iq>" % (typ, idv, (" to=%s" % quoteattr(to)) if to else "", payload))
    while True:
        el = c.next_elem()
        if el.tag == "{jabber:client}iq" and el.get("id") == idv:
            if el.get("type") == "error":
                err = el.find("{jabber:client}error")
                conds = [x.tag.split("}")[1] for x in err] if err is not None else []
                raise XmppError("iq error: %s" % ",".join(conds))
            return el


def redact_argv(argv, password):
    out, skip = [], False
    for x in argv:
        if skip:
            skip = False
            continue
        if x in ("--header", "--transcript"):
            skip = True
            continue
        out.append("<password>" if password and x == password else x)
    return out


def sasl_login(c, a, feats, user, domain):
    """SASL (RFC 6120 + bind) or SASL2 (+Bind2). Returns (bound full jid, FAST token or None)."""
    if a.sasl2:
        au = feats.find("{%s}authentication" % NS_SASL2)
        if au is None:
            raise XmppError("SASL2 not offered")
        offered = [m.text for m in au.findall("{%s}mechanism" % NS_SASL2)]
        fast = au.find("{%s}inline/{%s}fast" % (NS_SASL2, NS_FAST))
        fast_mechs = [m.text for m in fast] if fast is not None else []
        c.note("offered SASL2 mechanisms: %s; FAST: %s" % (offered, fast_mechs))
        if a.mech.startswith("HT-"):
            offered = offered + fast_mechs
    else:
        offered = mechs_of(feats)
        c.note("offered SASL mechanisms: %s" % offered)
    if a.mech not in offered and not a.force_mech:
        raise XmppError("mechanism %s not offered (offered: %s)" % (a.mech, offered))
    if a.mech.startswith("SCRAM-"):
        sasl_scram(c, a.mech, user, a.password, [m for m in offered if not m.startswith("HT-")])
    elif a.mech.startswith("HT-"):
        sasl_fast(c, a.mech, user, a.fast_token or a.password)
    elif a.mech == "PLAIN":
        sasl_simple(c, "PLAIN", ("%s\0%s\0%s" % (a.authzid, user, a.password)).encode())
    elif a.mech == "ANONYMOUS":
        sasl_simple(c, "ANONYMOUS", b"")
    elif a.mech == "X-OAUTH2":
        sasl_simple(c, "X-OAUTH2", ("%s\0%s\0%s" % (a.authzid, user, a.password)).encode())
    elif a.mech == "OAUTHBEARER":
        sasl_simple(c, "OAUTHBEARER", ("n,a=%s@%s,\x01auth=Bearer %s\x01\x01" % (user, domain, a.password)).encode())
    elif a.mech == "DIGEST-MD5":
        sasl_digest_md5(c, user, a.password, domain)
    else:
        raise XmppError("mechanism %s not implemented" % a.mech)
    c.note("%s %s succeeded" % ("SASL2" if a.sasl2 else "SASL", a.mech))
    if a.sasl2:
        ok = c.last_success
        aid = ok.find("{%s}authorization-identifier" % NS_SASL2)
        bound_el = ok.find("{%s}bound" % NS_BIND2)
        if bound_el is None:
            raise XmppError("SASL2 success without Bind2 <bound/>")
        tok_el = ok.find("{%s}token" % NS_FAST)
        if a.sm:
            en = bound_el.find("{%s}enabled" % NS_SM)
            if en is None:
                raise XmppError("SM not enabled inline in Bind2")
            c.note("SM enabled inline (id=%s resume=%s)" % (en.get("id"), en.get("resume")))
        if a.carbons:
            c.note("carbons %s in <bound/>" % ("<enabled/>" if bound_el.find("{%s}enabled" % NS_CARBONS) is not None
                                               else "not answered"))
        if tok_el is not None:
            c.note("FAST token issued (expiry %s)" % tok_el.get("expiry"))
        return (aid.text if aid is not None else None), (tok_el.get("token") if tok_el is not None else None)
    feats = c.open_stream(domain)
    if feats.find("{%s}bind" % NS_BIND) is None:
        raise XmppError("no resource binding offered")
    r = iq(c, "set", "<bind xmlns='%s'><resource>%s</resource></bind>" % (NS_BIND, escape(a.resource)))
    bound = r.find("{%s}bind/{%s}jid" % (NS_BIND, NS_BIND)).text
    sess = feats.find("{%s}session" % NS_SESSION)
    if sess is not None and sess.find("{%s}optional" % NS_SESSION) is None:
        iq(c, "set", "<session xmlns='%s'/>" % NS_SESSION)
    if a.sm:
        if feats.find("{%s}sm" % NS_SM) is None:
            raise XmppError("XEP-0198 not offered")
        c.send("<enable xmlns='%s' resume='true'/>" % NS_SM)
        el = c.next_elem()
        if el.tag != "{%s}enabled" % NS_SM:
            raise XmppError("sm enable failed: %s" % el.tag)
    return bound, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("XMPP_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("XMPP_PORT", "5222")))
    ap.add_argument("--jid", required=True, help="user@domain, or just domain for ANONYMOUS")
    ap.add_argument("--password", default="")
    ap.add_argument("--mech", default="SCRAM-SHA-1")
    ap.add_argument("--authzid", default="")
    ap.add_argument("--cb-type", default="auto", choices=["auto", "tls-unique", "tls-server-end-point", "tls-exporter"],
                    help="channel binding for -PLUS / FAST (auto: tls-unique on TLS <= 1.2, else tls-server-end-point)")
    ap.add_argument("--require-ssdp", action="store_true", help="fail unless SCRAM server-first has a matching XEP-0474 h=")
    ap.add_argument("--gs2-flag", choices=["n", "y"], default="n", help="GS2 cb flag for non-PLUS SCRAM")
    ap.add_argument("--stream-from", action="store_true", help="send from='<bare jid>' in the stream header")
    ap.add_argument("--sasl2", action="store_true", help="XEP-0388 SASL2 with XEP-0386 Bind2 (tag = --resource)")
    ap.add_argument("--fast-request", nargs="?", const="HT-SHA-256-NONE", help="(with --sasl2) request a FAST token for this mechanism")
    ap.add_argument("--fast-roundtrip", nargs="?", const="HT-SHA-256-NONE",
                    help="(with --sasl2) log in (requesting a FAST token), reconnect, log in again with the token via this HT-* mech")
    ap.add_argument("--fast-token", help="(with --sasl2 --mech HT-*) FAST token")
    ap.add_argument("--user-agent-id", default=str(uuid.uuid4()))
    ap.add_argument("--resource", default="raw")
    ap.add_argument("--legacy", choices=["plain", "digest"])
    ap.add_argument("--register", action="store_true")
    ap.add_argument("--features-only", action="store_true")
    ap.add_argument("--no-tls", action="store_true", help="do not STARTTLS (expect refusal)")
    ap.add_argument("--direct-tls", action="store_true", help="XEP-0368 direct TLS port")
    ap.add_argument("--tls-max", choices=["1.2", "1.3"], default="1.3")
    ap.add_argument("--cafile")
    ap.add_argument("--force-mech", action="store_true", help="send <auth> even if the mechanism is not offered")
    ap.add_argument("--sm", action="store_true", help="enable XEP-0198 after bind")
    ap.add_argument("--carbons", action="store_true", help="(with --sasl2) enable XEP-0280 carbons inside Bind2")
    ap.add_argument("--csi", choices=["active", "inactive"], help="(with --sasl2) XEP-0352 state inside Bind2")
    ap.add_argument("--message-to", help="send one message to this bare jid ('self' = own jid)")
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--transcript", help="write wire log here (default: stderr)")
    ap.add_argument("--header", default="", help="first line of transcript")
    a = ap.parse_args()
    if a.sasl2 or a.fast_roundtrip or a.fast_request or a.fast_token:
        # ejabberd 24 offers SASL2 and Prosody's mod_sasl2_fast offers FAST only when the stream header names the user
        a.stream_from = True
    if "@" in a.jid:
        user, domain = a.jid.split("@", 1)
    else:
        user, domain = "", a.jid
    domain = domain.split("/")[0]
    a.domain = domain
    out = open(a.transcript, "w") if a.transcript else sys.stderr
    if a.header:
        out.write(a.header.rstrip("\n") + "\n")
    out.write("# %s\n# C: = bytes client->server, S: = bytes server->client (one line per write/read; after TLS the decrypted bytes)\n"
              % " ".join(["xmpp_raw.py"] + redact_argv(sys.argv[1:], a.password)))
    c = None
    try:
        c = Conn(a, out)
        feats = c.open_stream(domain)
        if not a.direct_tls and not a.no_tls:
            if feats.find("{%s}starttls" % NS_TLS) is None:
                raise XmppError("server did not offer STARTTLS")
            c.send("<starttls xmlns='%s'/>" % NS_TLS)
            el = c.next_elem()
            if el.tag != "{%s}proceed" % NS_TLS:
                raise XmppError("STARTTLS refused: %s" % el.tag)
            c.starttls_handshake()
            feats = c.open_stream(domain)
        if a.features_only:
            c.close()
            print("OK features")
            return 0
        if a.register:
            q = iq(c, "get", "<query xmlns='%s'/>" % NS_REGISTER)
            c.note("registration fields: %s" % [x.tag.split("}")[1] for x in q.find("{%s}query" % NS_REGISTER)])
            iq(c, "set", "<query xmlns='%s'><username>%s</username><password>%s</password></query>"
               % (NS_REGISTER, escape(user), escape(a.password)))
            c.note("registered %s" % a.jid)
        bound = None
        if a.legacy:
            q = iq(c, "get", "<query xmlns='%s'><username>%s</username></query>" % (NS_IQAUTH, escape(user)), to=domain)
            offered = [x.tag.split("}")[1] for x in q.find("{%s}query" % NS_IQAUTH)]
            c.note("legacy auth fields: %s" % offered)
            wanted = "password" if a.legacy == "plain" else "digest"
            if wanted not in offered:
                raise XmppError("legacy auth: <%s/> not offered (fields: %s)" % (wanted, ",".join(offered)))
            if a.legacy == "plain":
                cred = "<password>%s</password>" % escape(a.password)
            else:
                cred = "<digest>%s</digest>" % hashlib.sha1((c.stream_id + a.password).encode()).hexdigest()
            r = iq(c, "set", "<query xmlns='%s'><username>%s</username>%s<resource>%s</resource></query>"
                   % (NS_IQAUTH, escape(user), cred, escape(a.resource)), to=domain)
            # XEP-0078: success is an empty result; a result that carries the
            # fields again is not a login.
            if len(r):
                raise XmppError("legacy auth: the set was answered with <%s/>, not an empty result"
                                % r[0].tag.split("}")[1])
            c.note("legacy auth %s succeeded" % a.legacy)
            bound = "%s@%s/%s" % (user, domain, a.resource)
        else:
            if a.sasl2 and a.fast_roundtrip:
                a.fast_request = a.fast_roundtrip
                bound, tok = sasl_login(c, a, feats, user, domain)
                if not tok:
                    raise XmppError("no FAST token in SASL2 success")
                c.note("FAST token received; reconnecting to log in with %s" % a.fast_roundtrip)
                c.close()
                a.fast_request, a.mech, a.fast_token = None, a.fast_roundtrip, tok
                c = Conn(a, out)
                feats = c.open_stream(domain)
                if not a.direct_tls:
                    c.send("<starttls xmlns='%s'/>" % NS_TLS)
                    if c.next_elem().tag != "{%s}proceed" % NS_TLS:
                        raise XmppError("STARTTLS refused")
                    c.starttls_handshake()
                    feats = c.open_stream(domain)
            bound, _ = sasl_login(c, a, feats, user, domain)
        if a.message_to:
            to = bound.split("/")[0] if a.message_to == "self" else a.message_to
            if a.message_to == "self":
                to = bound  # full jid so it is delivered back to this very session
            c.send("<message to=%s type='chat' id='m1'><body>hello from xmpp_raw</body></message>" % quoteattr(to))
            if a.message_to == "self":
                while True:
                    el = c.next_elem()
                    if el.tag == "{jabber:client}message":
                        c.note("own message echoed back")
                        break
        c.close()
        print("OK %s" % bound)
        return 0
    except (XmppError, OSError, ssl.SSLError, ET.ParseError) as e:
        if c:
            c.note("ERROR: %s" % e)
            try:
                c.sock.close()
            except Exception:
                pass
        print("ERROR %s" % e)
        return 1
    finally:
        if a.transcript:
            out.close()


if __name__ == "__main__":
    sys.exit(main())
