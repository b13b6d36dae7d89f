//! The `<body/>` wrapper of XEP-0124 (section 4) with the XEP-0206
//! attributes: bytes to a [`Body`] and back.
//!
//! Parsing goes through the crate's [`StreamReader`], so a body is bounded
//! by the same [`Limits`] as a stream's top-level element: the whole
//! `<body/>` with its payloads is one element (its bytes, depth,
//! attributes, tokens and heap).

use std::fmt;

use minidom::{Element, Node};

use crate::ns;
use crate::xml::{
    write_attr, Limits, ReadError, StreamEvent, StreamReader, StreamWriter, WriteError,
};

/// The BOSH namespace (XEP-0124).
pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";
/// The XMPP-over-BOSH namespace of `xmpp:version` and `xmpp:restart`
/// (XEP-0206).
pub const NS_XBOSH: &str = "urn:xmpp:xbosh";
/// The largest `rid` (2^53 - 1, XEP-0124 section 14.1).
pub const MAX_RID: u64 = (1 << 53) - 1;

/// The `type` attribute of a `<body/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyType {
    /// `terminate`: the session ends (XEP-0124 sections 12 and 17.2).
    Terminate,
    /// `error`: a recoverable binding error (XEP-0124 section 17.3).
    Error,
}

/// A terminal binding condition (XEP-0124 section 17.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Condition {
    /// `bad-request`: a syntax error in the body.
    BadRequest,
    /// `host-gone`.
    HostGone,
    /// `host-unknown`.
    HostUnknown,
    /// `improper-addressing`: no `to` where one is required.
    ImproperAddressing,
    /// `internal-server-error`.
    InternalServerError,
    /// `item-not-found`: unknown `sid`, `rid` outside the window, a
    /// response no longer cached.
    ItemNotFound,
    /// `other-request`.
    OtherRequest,
    /// `policy-violation`: too many or too frequent requests, limits.
    PolicyViolation,
    /// `remote-connection-failed`.
    RemoteConnectionFailed,
    /// `remote-stream-error`: the transported stream failed.
    RemoteStreamError,
    /// `see-other-uri`: the `<uri/>` child says where to go.
    SeeOtherUri,
    /// `system-shutdown`.
    SystemShutdown,
    /// `undefined-condition`, and any condition this crate does not know.
    UndefinedCondition,
}

impl Condition {
    /// The attribute value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::HostGone => "host-gone",
            Self::HostUnknown => "host-unknown",
            Self::ImproperAddressing => "improper-addressing",
            Self::InternalServerError => "internal-server-error",
            Self::ItemNotFound => "item-not-found",
            Self::OtherRequest => "other-request",
            Self::PolicyViolation => "policy-violation",
            Self::RemoteConnectionFailed => "remote-connection-failed",
            Self::RemoteStreamError => "remote-stream-error",
            Self::SeeOtherUri => "see-other-uri",
            Self::SystemShutdown => "system-shutdown",
            Self::UndefinedCondition => "undefined-condition",
        }
    }

    /// The condition named `s`; an unknown name is `undefined-condition`.
    pub fn from_name(s: &str) -> Self {
        [
            Self::BadRequest,
            Self::HostGone,
            Self::HostUnknown,
            Self::ImproperAddressing,
            Self::InternalServerError,
            Self::ItemNotFound,
            Self::OtherRequest,
            Self::PolicyViolation,
            Self::RemoteConnectionFailed,
            Self::RemoteStreamError,
            Self::SeeOtherUri,
            Self::SystemShutdown,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
        .unwrap_or(Self::UndefinedCondition)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why bytes are not a `<body/>` this crate accepts. Each has the
/// terminal condition a connection manager answers with
/// ([`BodyError::condition`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// Not well-formed, restricted XML, a limit exceeded...: what the
    /// stream reader says.
    Xml(ReadError),
    /// The root element is not `body` in the httpbind namespace.
    NotABody,
    /// The input ended inside the `<body/>` (or was empty).
    Incomplete,
    /// Something other than whitespace after `</body>`.
    TrailingData,
    /// Character data directly inside `<body/>` (XEP-0124 section 4).
    TextInBody,
    /// An attribute whose value is not of its type (a `rid` above
    /// 2^53 - 1, a `wait` that is not a number...).
    BadAttribute {
        /// The attribute, as written (`rid`, `xmpp:restart`).
        name: &'static str,
        /// Its value, cut to 64 bytes.
        value: String,
    },
}

impl BodyError {
    /// The terminal binding condition for the sender: `policy-violation`
    /// for a limit, `bad-request` for the rest.
    pub fn condition(&self) -> Condition {
        match self {
            Self::Xml(ReadError::LimitExceeded { .. }) => Condition::PolicyViolation,
            _ => Condition::BadRequest,
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xml(e) => write!(f, "bad BOSH body: {e}"),
            Self::NotABody => f.write_str("the root element is not an httpbind <body/>"),
            Self::Incomplete => f.write_str("the <body/> is incomplete"),
            Self::TrailingData => f.write_str("data after </body>"),
            Self::TextInBody => f.write_str("character data directly inside <body/>"),
            Self::BadAttribute { name, value } => {
                write!(f, "attribute {name} has an invalid value {value:?}")
            }
        }
    }
}

impl std::error::Error for BodyError {}

/// One `<body/>`: its attributes and payloads. Every attribute is
/// optional on the wire; what a request or a response needs is the
/// session machines' business.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    /// `rid`: the request id (requests only), at most [`MAX_RID`].
    pub rid: Option<u64>,
    /// `sid`: the session id.
    pub sid: Option<String>,
    /// `to`: the target domain.
    pub to: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// `route` (`proto:host:port`).
    pub route: Option<String>,
    /// `ver`: the BOSH version (`1.6`).
    pub ver: Option<String>,
    /// `content`: the HTTP Content-Type responses must carry.
    pub content: Option<String>,
    /// `wait`, in seconds.
    pub wait: Option<u32>,
    /// `hold`.
    pub hold: Option<u32>,
    /// `requests`.
    pub requests: Option<u32>,
    /// `polling`, in seconds.
    pub polling: Option<u32>,
    /// `inactivity`, in seconds.
    pub inactivity: Option<u32>,
    /// `maxpause`, in seconds.
    pub maxpause: Option<u32>,
    /// `pause`, in seconds.
    pub pause: Option<u32>,
    /// `ack`.
    pub ack: Option<u64>,
    /// `secure` (`true`/`1`, `false`/`0`).
    pub secure: Option<bool>,
    /// `authid`: the XMPP stream id (deprecated, XEP-0206 section 4).
    pub authid: Option<String>,
    /// `xmpp:version` (XEP-0206).
    pub xmpp_version: Option<String>,
    /// `xmpp:restart='true'` (XEP-0206 section 5).
    pub restart: bool,
    /// `type`.
    pub kind: Option<BodyType>,
    /// `condition` (with `type='terminate'`); an unknown one reads as
    /// `undefined-condition`.
    pub condition: Option<Condition>,
    /// The `<uri/>` child of a `see-other-uri` termination.
    pub uri: Option<String>,
    /// The payloads, in order. Those without a namespace of their own
    /// (in the httpbind namespace) are moved to `jabber:client`, as XEP-0206
    /// section 2 says many implementations expect; `stream:features` and
    /// `stream:error` stay in the streams namespace.
    pub payloads: Vec<Element>,
}

/// The reader's stream wrapper: a body is read as the one top-level
/// element of this stream. The `stream` prefix is bound in advance
/// (XEP-0206's "Restart a stream result" example uses it undeclared).
const WRAPPER: &[u8] = b"<stream xmlns='http://etherx.jabber.org/streams' \
    xmlns:stream='http://etherx.jabber.org/streams'>";

/// Longest XML declaration accepted before the `<body/>`.
const MAX_DECLARATION: usize = 128;

/// The fast path's stream wrapper: payloads are read as its top-level
/// elements, in the namespaces a `<body/>` of the usual kind declares
/// (httpbind by default, the `stream` prefix).
const PAYLOAD_WRAPPER: &[u8] = b"<stream:stream xmlns='http://jabber.org/protocol/httpbind' \
    xmlns:stream='http://etherx.jabber.org/streams'>";

/// Parses bodies one after another.
///
/// The fast path: the `<body ...>` start tag is read by hand
/// ([`start_tag`](super::start_tag)), and the payloads by one stream
/// reader, kept from body to body, as top-level elements of a stream whose
/// header declares what such a start tag may declare. Only start tags of
/// the usual kind take it (all of those BOSH peers write); whatever it
/// cannot read (an unusual tag, an invalid attribute value, a broken
/// payload, a `<stream:error/>` payload, text in the body, an unfinished
/// body) is read again by the general path, which decides. Its result is
/// the general path's (`tests::the_fast_path_reads_what_the_general_path_reads`).
///
/// The general path reads the whole `<body/>` as one element with one
/// stream reader, kept between bodies once it has read the wrapper that
/// declares the namespaces a `<body/>` is read in. A reader is kept only
/// after a body read cleanly (at a boundary, nothing partial in it): any
/// error drops it, and a body with an XML declaration is read by a reader
/// of its own. What a body may be is the same either way.
///
/// The limits are those of the whole `<body/>` as one element on both
/// paths: the body's bytes, its start tag's attributes and tokens, the
/// payloads' depth below it, and one heap budget for the body, its
/// payloads and the whitespace between them. Each path charges the heap
/// it allocates, and they allocate a little differently (the parser makes
/// element templates for names that repeat within one element, the fast
/// path within one payload): a body within a few percent of
/// [`Limits::max_element_heap`] may be read by one and refused by the
/// other, never one beyond the budget by its reader's own count. That is
/// the one difference (`the_fast_path_reads_what_the_general_path_reads`,
/// the `bosh_body` fuzz target).
#[derive(Debug, Default)]
pub(crate) struct BodyReader {
    /// (Boxed, as the other: a reader is large, and the sessions holding
    /// this move.)
    primed: Option<Box<StreamReader>>,
    /// The fast path's payload reader and the limits it was built for.
    fast: Option<Box<(StreamReader, Limits)>>,
    /// Give back the parser's scratch space after each body (a client's
    /// reader: one per session, idle between responses).
    release: bool,
}

impl BodyReader {
    /// A reader that gives back its scratch space after each body.
    pub(crate) fn releasing() -> Self {
        Self {
            primed: None,
            fast: None,
            release: true,
        }
    }

    /// Parses one HTTP body, bounded by `limits`.
    pub(crate) fn parse(&mut self, bytes: &[u8], limits: &Limits) -> Result<Body, BodyError> {
        let spaces = bytes.iter().take_while(|b| is_space(**b)).count();
        let rest = &bytes[spaces..];
        match rest.first() {
            None => return Err(BodyError::Incomplete),
            Some(b'<') => {}
            // Text where the element should start: never a body.
            Some(_) => return Err(BodyError::NotABody),
        }
        if rest.len() < limits.max_element_bytes {
            if let Some(body) = self.parse_fast(rest, limits) {
                return Ok(body);
            }
        }
        self.parse_general(rest, limits)
    }

    /// The fast path (see the type): `None` when the general path must
    /// read this body.
    fn parse_fast(&mut self, rest: &[u8], limits: &Limits) -> Option<Body> {
        let tag = super::start_tag::scan(rest, limits.max_attributes, limits.max_token_bytes)?;
        let mut body = Body::new();
        for a in tag.attrs() {
            // An invalid value: the general path gives the error (the
            // first in its order).
            body.set_attr(a.ns, a.name, a.value).ok()?;
        }
        let after = &rest[tag.len..];
        if tag.empty {
            return after.iter().all(|b| is_space(*b)).then_some(body);
        }
        let trimmed = after.len() - after.iter().rev().take_while(|b| is_space(**b)).count();
        let mut inner = after[..trimmed].strip_suffix(b"</body>")?;
        if limits.max_depth < 2 {
            return None;
        }
        // The reader stays in place (it is large: moving it in and out
        // of its slot for every body cost more than reading a start tag).
        if !matches!(&self.fast, Some(f) if f.1 == *limits) {
            let mut payload_limits = *limits;
            // The body is the top-level element: payloads are one level
            // down.
            payload_limits.max_depth -= 1;
            let mut reader = StreamReader::new(payload_limits);
            let mut wrapper = PAYLOAD_WRAPPER;
            match reader.read(&mut wrapper) {
                Ok(Some(StreamEvent::Header(_))) => {}
                _ => return None,
            }
            reader.carry_heap();
            self.fast = Some(Box::new((reader, *limits)));
        }
        let (reader, _) = &mut **self.fast.as_mut()?;
        reader.clear_heap();
        // The heap the parser would charge beyond the payloads' own: the
        // body's start tag, and the whitespace between payloads (text
        // children of the body).
        let mut beyond = tag.heap_bound();
        loop {
            let spaces = inner.iter().take_while(|b| is_space(**b)).count();
            if spaces > 0 {
                beyond += crate::xml::cost::text(spaces);
            }
            let left = inner.len();
            match reader.read(&mut inner) {
                Ok(Some(StreamEvent::Element(el))) => body.push_child(el),
                // The end, after nothing but whitespace. Anything else left
                // unread (an unfinished reference, say) is the parser's
                // to judge.
                Ok(None) if spaces == left => break,
                Ok(None) => {
                    self.fast = None;
                    return None;
                }
                // A `<stream:error/>` payload, text, a broken payload...:
                // the reader is dropped, the general path reads the body.
                Ok(Some(_)) | Err(_) => {
                    self.fast = None;
                    return None;
                }
            }
        }
        if reader.in_element() {
            self.fast = None;
            return None; // unfinished: the general path says how
        }
        // One heap budget for the whole body: the payloads (as this path
        // allocates them), the start tag and the whitespace between them.
        if reader.element_heap() + beyond > limits.max_element_heap {
            return None;
        }
        if self.release {
            reader.release_temporaries();
        }
        Some(body)
    }

    /// The general path (see the type): `rest` starts with `<`.
    fn parse_general(&mut self, mut rest: &[u8], limits: &Limits) -> Result<Body, BodyError> {
        let mut reader = match self.primed.take() {
            Some(r) if r.limits() == limits && !rest.starts_with(b"<?xml") => r,
            _ => {
                let mut reader = Box::new(StreamReader::new(*limits));
                let keep = !rest.starts_with(b"<?xml");
                if !keep {
                    // The declaration must come first: read it before the
                    // wrapper.
                    let end = rest
                        .windows(2)
                        .take(MAX_DECLARATION)
                        .position(|w| w == b"?>")
                        .ok_or(BodyError::Xml(ReadError::NotWellFormed(
                            "unterminated XML declaration".into(),
                        )))?;
                    let mut decl = &rest[..end + 2];
                    rest = &rest[end + 2..];
                    match reader.read(&mut decl) {
                        Ok(None) => {}
                        Ok(Some(_)) => return Err(BodyError::NotABody),
                        Err(e) => return Err(BodyError::Xml(e)),
                    }
                }
                let mut wrapper = WRAPPER;
                match reader.read(&mut wrapper) {
                    Ok(Some(StreamEvent::Header(_))) => {}
                    Ok(_) => return Err(BodyError::NotABody),
                    Err(e) => return Err(BodyError::Xml(e)),
                }
                if !keep {
                    return read_body(&mut reader, rest);
                }
                reader
            }
        };
        let body = read_body(&mut reader, rest)?;
        if self.release {
            reader.release_temporaries();
        }
        self.primed = Some(reader);
        Ok(body)
    }
}

/// Reads the one `<body/>` of `rest` with a reader inside the wrapper.
fn read_body(reader: &mut StreamReader, mut rest: &[u8]) -> Result<Body, BodyError> {
    let gate = |name: &str, ns: &str| {
        if name == "body" && ns == NS_HTTPBIND {
            Ok(())
        } else {
            Err(crate::xml::Refusal {
                condition: crate::stream_error::StreamErrorCondition::BadFormat,
                reason: "not an httpbind <body/>",
            })
        }
    };
    let el = match reader.read_gated(&mut rest, &gate) {
        Ok(Some(StreamEvent::Element(el))) => el,
        Ok(None) => return Err(BodyError::Incomplete),
        Ok(Some(_)) => return Err(BodyError::NotABody),
        Err(ReadError::Refused(_)) => return Err(BodyError::NotABody),
        Err(ReadError::TextAtStreamLevel) => return Err(BodyError::NotABody),
        Err(e) => return Err(BodyError::Xml(e)),
    };
    if rest.iter().any(|b| !is_space(*b)) {
        return Err(BodyError::TrailingData);
    }
    Body::from_element(el)
}

impl Body {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it is `type='terminate'`.
    pub fn is_terminate(&self) -> bool {
        self.kind == Some(BodyType::Terminate)
    }

    /// Parses one HTTP body, bounded by `limits` (the whole `<body/>` is
    /// one element for them).
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        BodyReader::default().parse(bytes, limits)
    }

    /// Parses one HTTP body with the XML parser alone, as
    /// [`parse`](Self::parse) does for bodies its start-tag scanner leaves
    /// to the parser: the reference that faster path is held to (the
    /// fuzz target `bosh_body` compares the two on every input).
    pub fn parse_with_xml_parser(bytes: &[u8], limits: &Limits) -> Result<Self, BodyError> {
        let spaces = bytes.iter().take_while(|b| is_space(**b)).count();
        let rest = &bytes[spaces..];
        match rest.first() {
            None => Err(BodyError::Incomplete),
            Some(b'<') => BodyReader::default().parse_general(rest, limits),
            Some(_) => Err(BodyError::NotABody),
        }
    }

    /// The body of a parsed `<body/>` element (namespaces resolved).
    pub fn from_element(mut el: Element) -> Result<Self, BodyError> {
        if !el.is("body", NS_HTTPBIND) {
            return Err(BodyError::NotABody);
        }
        let mut body = Body::new();
        for ((attr_ns, name), value) in el.attrs().iter() {
            body.set_attr(attr_ns.as_str(), name.as_str(), value.as_str())?;
        }
        for node in el.take_nodes() {
            match node {
                Node::Text(t) if t.bytes().all(is_space) => {}
                Node::Text(_) => return Err(BodyError::TextInBody),
                Node::Element(child) => body.push_child(child),
            }
        }
        Ok(body)
    }

    /// Takes one attribute of the `<body/>` (namespace resolved).
    fn set_attr(&mut self, attr_ns: &str, name: &str, value: &str) -> Result<(), BodyError> {
        let body = self;
        match (attr_ns, name) {
            ("", "rid") => {
                let rid = number::<u64>("rid", value)?;
                if rid > MAX_RID {
                    return Err(bad("rid", value));
                }
                body.rid = Some(rid);
            }
            ("", "sid") => body.sid = Some(value.to_owned()),
            ("", "to") => body.to = Some(value.to_owned()),
            ("", "from") => body.from = Some(value.to_owned()),
            ("", "route") => body.route = Some(value.to_owned()),
            ("", "ver") => body.ver = Some(value.to_owned()),
            ("", "content") => body.content = Some(value.to_owned()),
            ("", "authid") => body.authid = Some(value.to_owned()),
            ("", "wait") => body.wait = Some(number("wait", value)?),
            ("", "hold") => body.hold = Some(number("hold", value)?),
            ("", "requests") => body.requests = Some(number("requests", value)?),
            ("", "polling") => body.polling = Some(number("polling", value)?),
            ("", "inactivity") => body.inactivity = Some(number("inactivity", value)?),
            ("", "maxpause") => body.maxpause = Some(number("maxpause", value)?),
            ("", "pause") => body.pause = Some(number("pause", value)?),
            ("", "ack") => body.ack = Some(number("ack", value)?),
            ("", "secure") => body.secure = Some(boolean("secure", value)?),
            ("", "type") => {
                body.kind = Some(match value {
                    "terminate" => BodyType::Terminate,
                    "error" => BodyType::Error,
                    _ => return Err(bad("type", value)),
                })
            }
            ("", "condition") => body.condition = Some(Condition::from_name(value)),
            (ns::XML, "lang") => body.lang = Some(value.to_owned()),
            (NS_XBOSH, "version") => body.xmpp_version = Some(value.to_owned()),
            (NS_XBOSH, "restart") => body.restart = boolean("xmpp:restart", value)?,
            _ => {} // other attributes are ignored (XEP-0124 `##other`)
        }
        Ok(())
    }

    /// Takes one child element of the `<body/>`: the `<uri/>` of a
    /// `see-other-uri` termination, or a payload.
    fn push_child(&mut self, child: Element) {
        if child.is("uri", NS_HTTPBIND)
            && self.condition == Some(Condition::SeeOtherUri)
            && self.uri.is_none()
        {
            self.uri = Some(child.text().trim().to_owned());
        } else {
            self.payloads.push(rehome(child));
        }
    }

    /// The body as bytes, its payloads serialised with the crate's
    /// [`StreamWriter`] (no redundant `xmlns`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, WriteError> {
        let writer = StreamWriter::new(NS_HTTPBIND);
        let mut payloads = Vec::new();
        let mut stream_prefix = false;
        for p in &self.payloads {
            writer.write_element(&mut payloads, p)?;
            stream_prefix |= p.has_ns(ns::STREAM);
        }
        let mut out = Vec::with_capacity(payloads.len() + 160);
        self.write_framed(&mut out, &payloads, stream_prefix)?;
        Ok(out)
    }

    /// Writes the body around `payloads`, already serialised for a
    /// `<body/>` (by a [`StreamWriter`] whose content namespace is
    /// [`NS_HTTPBIND`]); `stream_prefix`: they use the `stream:` prefix.
    /// The `uri` goes after them. Nothing is written on an error.
    pub(crate) fn write_framed(
        &self,
        out: &mut Vec<u8>,
        payloads: &[u8],
        stream_prefix: bool,
    ) -> Result<(), WriteError> {
        let start = out.len();
        let res = self.write_framed_inner(out, payloads, stream_prefix);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    fn write_framed_inner(
        &self,
        out: &mut Vec<u8>,
        payloads: &[u8],
        stream_prefix: bool,
    ) -> Result<(), WriteError> {
        out.extend_from_slice(b"<body");
        // In this order, written in place (no value is built as a string).
        let text = |out: &mut Vec<u8>, name: &str, v: &Option<String>| match v {
            Some(v) => write_attr(out, name, v),
            None => Ok(()),
        };
        let num = |out: &mut Vec<u8>, name: &str, v: Option<u64>| {
            if let Some(n) = v {
                write_number_attr(out, name, n);
            }
        };
        num(out, "rid", self.rid);
        text(out, "sid", &self.sid)?;
        text(out, "to", &self.to)?;
        text(out, "from", &self.from)?;
        text(out, "route", &self.route)?;
        text(out, "xml:lang", &self.lang)?;
        text(out, "ver", &self.ver)?;
        text(out, "content", &self.content)?;
        num(out, "wait", self.wait.map(u64::from));
        num(out, "hold", self.hold.map(u64::from));
        num(out, "requests", self.requests.map(u64::from));
        num(out, "polling", self.polling.map(u64::from));
        num(out, "inactivity", self.inactivity.map(u64::from));
        num(out, "maxpause", self.maxpause.map(u64::from));
        num(out, "pause", self.pause.map(u64::from));
        num(out, "ack", self.ack);
        if let Some(secure) = self.secure {
            write_attr(out, "secure", if secure { "true" } else { "false" })?;
        }
        text(out, "authid", &self.authid)?;
        if let Some(kind) = self.kind {
            let kind = match kind {
                BodyType::Terminate => "terminate",
                BodyType::Error => "error",
            };
            write_attr(out, "type", kind)?;
        }
        if let Some(c) = self.condition {
            write_attr(out, "condition", c.as_str())?;
        }
        if let Some(v) = &self.xmpp_version {
            write_attr(out, "xmpp:version", v)?;
        }
        if self.restart {
            write_attr(out, "xmpp:restart", "true")?;
        }
        write_attr(out, "xmlns", NS_HTTPBIND)?;
        if self.xmpp_version.is_some() || self.restart {
            write_attr(out, "xmlns:xmpp", NS_XBOSH)?;
        }
        if stream_prefix {
            write_attr(out, "xmlns:stream", ns::STREAM)?;
        }
        if payloads.is_empty() && self.uri.is_none() {
            out.extend_from_slice(b"/>");
            return Ok(());
        }
        out.push(b'>');
        out.extend_from_slice(payloads);
        if let Some(uri) = &self.uri {
            let mut el = Element::bare("uri", NS_HTTPBIND);
            el.append_text(uri.clone());
            StreamWriter::new(NS_HTTPBIND).write_element(out, &el)?;
        }
        out.extend_from_slice(b"</body>");
        Ok(())
    }
}

/// `<body type='terminate' condition='...'/>` as bytes (always writable).
pub fn terminate_bytes(condition: Option<Condition>) -> Vec<u8> {
    let body = Body {
        kind: Some(BodyType::Terminate),
        condition,
        ..Body::default()
    };
    body.to_bytes().unwrap_or_default()
}

/// Moves an element and its descendants out of the httpbind namespace
/// into `jabber:client` (payloads written without their own namespace).
fn rehome(el: Element) -> Element {
    if !el.has_ns(NS_HTTPBIND) && !has_httpbind_descendant(&el) {
        return el;
    }
    let mut el = el;
    let ns = if el.has_ns(NS_HTTPBIND) {
        ns::JABBER_CLIENT.to_owned()
    } else {
        el.ns()
    };
    let mut new = Element::bare(el.name(), ns);
    *new.attrs_mut() = el.attrs().clone();
    for node in el.take_nodes() {
        match node {
            Node::Element(child) => {
                new.append_child(rehome(child));
            }
            Node::Text(t) => new.append_text_node(t),
        }
    }
    new
}

fn has_httpbind_descendant(el: &Element) -> bool {
    el.children()
        .any(|c| c.has_ns(NS_HTTPBIND) || has_httpbind_descendant(c))
}

/// ` name='digits'`, without building the number as a string.
fn write_number_attr(out: &mut Vec<u8>, name: &str, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    out.extend_from_slice(&digits[i..]);
    out.push(b'\'');
}

fn bad(name: &'static str, value: &str) -> BodyError {
    let mut cut = value.len().min(64);
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    BodyError::BadAttribute {
        name,
        value: value[..cut].to_owned(),
    }
}

/// A decimal number: digits only (no sign, no space), within the type.
fn number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, BodyError> {
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(name, value));
    }
    value.parse().map_err(|_| bad(name, value))
}

fn boolean(name: &'static str, value: &str) -> Result<bool, BodyError> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(name, value)),
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The BOSH bodies of the Prosody captures, both ways.
    fn captured_bodies() -> Vec<String> {
        [
            include_str!("../../tests/fixtures/prosody/prosody13_bosh_scram.txt"),
            include_str!("../../tests/fixtures/prosody/prosody13_bosh_plain.txt"),
            include_str!("../../tests/fixtures/prosody/prosody13_bosh_scram_idle_wait.txt"),
            include_str!("../../tests/fixtures/prosody/prosody13_bosh_wrong_password.txt"),
        ]
        .iter()
        .flat_map(|f| f.lines())
        .filter_map(|l| l.strip_prefix("C: ").or_else(|| l.strip_prefix("S: ")))
        .map(str::to_owned)
        .collect()
    }

    /// Bodies the fast path must leave to the general path, or read as it
    /// does: unusual tags, invalid values, broken or unusual payloads.
    fn odd_bodies() -> Vec<String> {
        let h = "xmlns='http://jabber.org/protocol/httpbind'";
        let mut v: Vec<String> = vec![
            format!("<body rid='1' sid='s' {h}/>"),
            format!("<body rid='1' sid='s' {h}></body>"),
            format!("<body rid='1' sid='s' {h}> \n </body>\n"),
            format!("<body rid='x' {h}/>"),
            format!("<body rid='9007199254740992' {h}/>"),
            format!("<body wait='-1' rid='x' {h}/>"),
            format!("<body type='bogus' {h}/>"),
            format!("<body secure='yes' {h}/>"),
            format!("<body rid='1' {h} xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='maybe'/>"),
            format!("<body rid='1' {h} xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='1'/>"),
            format!("<body rid='1' {h} xmlns:xmpp='urn:xmpp:xbosh'><xmpp:x/></body>"),
            format!("<body rid='1' {h}><xmpp:x/></body>"),
            format!("<body rid='1' {h}><stream:features/></body>"),
            format!("<body rid='1' {h} xmlns:stream='http://etherx.jabber.org/streams'><stream:error><host-gone xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></body>"),
            format!("<body rid='1' {h}><message to='a@b'><body>hi</body></message></body>"),
            format!("<body rid='1' {h}><message xmlns='jabber:client'/> <iq xmlns='jabber:client' type='get' id='1'/></body>"),
            format!("<body rid='1' {h}>text<message/></body>"),
            format!("<body rid='1' {h}><message/>text</body>"),
            format!("<body rid='1' {h}><message></body>"),
            format!("<body rid='1' {h}><message/></body></body>"),
            format!("<body rid='1' {h}><message/></stream:stream></body>"),
            format!("<body rid='1' {h}><message/>"),
            format!("<body rid='1' {h}><message/>\n&</body>"),
            format!("<body rid='1' {h}><message/>&amp;</body>"),
            format!("<body rid='1' {h}><message/>&#x3c</body>"),
            format!("<body rid='1' {h}>&</body>"),
            format!("<body rid='1' {h}><message/>]]></body>"),
            format!("<body rid='1' {h}><message/></body >"),
            format!("<body rid='1' {h}></body><body/>"),
            format!("<body rid='1' {h}/><message/>"),
            format!("<body rid='1' {h}><a></b></body>"),
            format!("<body rid='1' {h}><!-- c --></body>"),
            format!("<body rid='1' {h}><?pi x?></body>"),
            format!("<body rid='1' {h}><![CDATA[x]]></body>"),
            format!("<body rid='1' {h}><x xmlns='http://jabber.org/protocol/httpbind'><y/></x></body>"),
            format!("<body type='terminate' condition='see-other-uri' {h}><uri>https://b.example/bind</uri></body>"),
            format!("<body type='terminate' condition='see-other-uri' {h}><uri>one</uri><uri>two</uri></body>"),
            format!("<body type='terminate' {h}><uri>not a redirect</uri></body>"),
            format!("<body type='terminate' condition='nonsense' {h}/>"),
            format!("<body sid='a&amp;b' {h}/>"),
            format!("<body sid='a\tb' {h}/>"),
            format!("<body sid='caf\u{e9}' {h}/>"),
            format!("<body sid=\"it's\" {h}/>"),
            format!("<body rid='1' rid='2' {h}/>"),
            format!("<body {h} xml:lang='en' xml:space='preserve'/>"),
            format!("<body {h} xmlns:other='urn:o' other:a='1'/>"),
            format!("<body {h} unbound:a='1'/>"),
            format!("<?xml version='1.0'?><body rid='5' {h}/>"),
            "<body rid='1'/>".to_owned(),
            "<body xmlns='urn:other'/>".to_owned(),
            "<b:body xmlns:b='http://jabber.org/protocol/httpbind'/>".to_owned(),
            "<nobody/>".to_owned(),
            "<body".to_owned(),
            format!("<body {h}"),
            format!("<body {h}><message xmlns='jabber:client'><body>&lt;&#x3c;</body></message></body>"),
            format!("<body {h}><message xmlns='jabber:client'><body>\u{1F600}</body></message></body>"),
            format!("<body {h}><message xmlns='jabber:client'><body>\u{1}</body></message></body>"),
        ];
        // Deep payloads, at and over the depth limit, many of them.
        let deep = |n: usize| "<a>".repeat(n) + &"</a>".repeat(n);
        v.push(format!("<body {h}>{}</body>", deep(63)));
        v.push(format!("<body {h}>{}</body>", deep(64)));
        v.push(format!("<body {h}>{}</body>", "<a x='1'/>".repeat(2000)));
        v
    }

    /// The fast path gives what the general path gives, body by body,
    /// with the default limits and with tight ones (heap, bytes, depth,
    /// attributes, tokens), whether the reader is kept or new.
    #[test]
    fn the_fast_path_reads_what_the_general_path_reads() {
        let mut bodies = captured_bodies();
        assert!(bodies.len() > 40, "{}", bodies.len());
        bodies.extend(odd_bodies());
        let tight = Limits {
            max_element_bytes: 4096,
            max_depth: 8,
            max_attributes: 8,
            max_token_bytes: 40,
            max_element_heap: 64 * 1024,
        };
        for limits in [Limits::default(), tight] {
            let mut kept = BodyReader::default();
            let mut kept_releasing = BodyReader::releasing();
            for b in &bodies {
                let general = BodyReader::default().parse_general(b.as_bytes(), &limits);
                for (name, got) in [
                    ("new", BodyReader::default().parse(b.as_bytes(), &limits)),
                    ("kept", kept.parse(b.as_bytes(), &limits)),
                    ("releasing", kept_releasing.parse(b.as_bytes(), &limits)),
                ] {
                    if same_but_for_the_heap_margin(&got, &general) {
                        continue;
                    }
                    assert_eq!(
                        format!("{got:?}"),
                        format!("{general:?}"),
                        "{name} reader, {limits:?}: {b}"
                    );
                }
            }
        }
    }

    /// The one allowed difference between the paths (see [`BodyReader`]):
    /// the fast path read a body the parser refused for its heap.
    pub(crate) fn same_but_for_the_heap_margin(
        fast: &Result<Body, BodyError>,
        general: &Result<Body, BodyError>,
    ) -> bool {
        fast.is_ok()
            && matches!(
                general,
                Err(BodyError::Xml(ReadError::LimitExceeded {
                    limit: crate::xml::Limit::ElementHeap,
                    ..
                }))
            )
    }

    /// Every body the Prosody captures hold, and every body of ours, takes
    /// the fast path; the odd ones above reach both outcomes.
    #[test]
    fn peers_bodies_take_the_fast_path() {
        let limits = Limits::default();
        let mut r = BodyReader::default();
        for b in captured_bodies() {
            assert!(r.parse_fast(b.as_bytes(), &limits).is_some(), "{b}");
        }
        let ours = Body {
            rid: Some(7),
            sid: Some("s".into()),
            lang: Some("en".into()),
            xmpp_version: Some("1.0".into()),
            restart: true,
            payloads: vec![Element::builder("features", ns::STREAM).build()],
            ..Body::default()
        };
        let bytes = ours.to_bytes().unwrap();
        assert_eq!(r.parse_fast(&bytes, &limits), Some(ours));
        let (mut fast, mut general) = (0, 0);
        for b in odd_bodies() {
            match BodyReader::default().parse_fast(b.as_bytes(), &limits) {
                Some(_) => fast += 1,
                None => general += 1,
            }
        }
        assert!(fast > 10 && general > 20, "{fast} fast, {general} general");
    }

    /// One heap budget for all the payloads of a body, as for one element:
    /// many small attribute-dense payloads are refused together though
    /// each alone is far below the limit.
    #[test]
    fn payloads_share_the_bodys_heap_budget() {
        let limits = Limits {
            max_element_heap: 64 * 1024,
            ..Limits::default()
        };
        let h = "xmlns='http://jabber.org/protocol/httpbind'";
        let one = format!("<body {h}><a x='1'/></body>");
        let many = format!("<body {h}>{}</body>", "<a x='1'/>".repeat(400));
        let mut r = BodyReader::default();
        assert!(r.parse(one.as_bytes(), &limits).is_ok());
        assert!(matches!(
            r.parse(many.as_bytes(), &limits),
            Err(BodyError::Xml(ReadError::LimitExceeded { .. }))
        ));
        assert!(r.parse(one.as_bytes(), &limits).is_ok());
        assert!(r.parse_fast(many.as_bytes(), &limits).is_none());
    }

    /// One reader kept across bodies reads each exactly as a fresh one
    /// does, whatever came before: good bodies, broken ones (which drop
    /// the kept reader), a declaration, trailing data, a half body, and a
    /// prefix declared on one body and used undeclared in the next (a
    /// declaration must not outlive its body).
    #[test]
    fn a_kept_reader_reads_each_body_as_a_fresh_one_does() {
        let h = "xmlns='http://jabber.org/protocol/httpbind'";
        let bodies: Vec<String> = vec![
            format!("<body rid='1' sid='s' {h}/>"),
            format!("<body rid='2' sid='s' {h} xmlns:f='urn:f'><f:x/></body>"),
            format!("<body rid='3' sid='s' {h}><f:x/></body>"),
            format!("<body rid='4' sid='s' {h}><message xmlns='jabber:client'><body>hi</body></message></body>"),
            format!("<?xml version='1.0'?><body rid='5' sid='s' {h}/>"),
            format!("<body rid='6' sid='s' {h}/>junk"),
            format!("<body rid='7' sid='s' {h}><iq"),
            format!("<body rid='8' sid='s' {h}/>"),
            "<nobody/>".to_owned(),
            format!("<body rid='9' sid='s' {h}><stream:features xmlns:stream='http://etherx.jabber.org/streams'/></body>"),
            format!("<body rid='10' sid='s' {h}><a></b></body>"),
            format!("  <body rid='11' sid='s' {h}/>  "),
        ];
        let limits = Limits::default();
        for release in [false, true] {
            let mut kept = if release {
                BodyReader::releasing()
            } else {
                BodyReader::default()
            };
            for b in &bodies {
                let fresh = BodyReader::default().parse(b.as_bytes(), &limits);
                let reused = kept.parse(b.as_bytes(), &limits);
                assert_eq!(format!("{reused:?}"), format!("{fresh:?}"), "{b}");
            }
        }
        // The cases above do reach each outcome.
        let mut r = BodyReader::default();
        assert!(r.parse(bodies[1].as_bytes(), &limits).is_ok());
        assert!(r.parse(bodies[2].as_bytes(), &limits).is_err());
        assert!(r.parse(bodies[4].as_bytes(), &limits).is_ok());
        assert_eq!(
            r.parse(bodies[5].as_bytes(), &limits),
            Err(BodyError::TrailingData)
        );
        assert_eq!(
            r.parse(bodies[6].as_bytes(), &limits),
            Err(BodyError::Incomplete)
        );
        assert_eq!(
            r.parse(bodies[7].as_bytes(), &limits).map(|b| b.rid),
            Ok(Some(8))
        );
    }
}
