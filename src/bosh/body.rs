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

/// Parses bodies one after another with one stream reader, kept between
/// bodies once it has read the wrapper that declares the namespaces a
/// `<body/>` is read in: each body is then one top-level element of that
/// stream. Building a reader and reading the wrapper for every body was
/// half of a BOSH negotiation's time. The reader is kept only after a
/// body read cleanly (at a boundary, nothing partial in it): any error
/// drops it, and a body with an XML declaration is read by a reader of
/// its own. What a body may be is the same either way.
#[derive(Debug, Default)]
pub(crate) struct BodyReader {
    primed: Option<StreamReader>,
    /// Give back the parser's scratch space after each body (a client's
    /// reader: one per session, idle between responses).
    release: bool,
}

impl BodyReader {
    /// A reader that gives back its scratch space after each body.
    pub(crate) fn releasing() -> Self {
        Self {
            primed: None,
            release: true,
        }
    }

    /// Parses one HTTP body, bounded by `limits`.
    pub(crate) fn parse(&mut self, bytes: &[u8], limits: &Limits) -> Result<Body, BodyError> {
        let spaces = bytes.iter().take_while(|b| is_space(**b)).count();
        let mut rest = &bytes[spaces..];
        match rest.first() {
            None => return Err(BodyError::Incomplete),
            Some(b'<') => {}
            // Text where the element should start: never a body.
            Some(_) => return Err(BodyError::NotABody),
        }
        let mut reader = match self.primed.take() {
            Some(r) if r.limits() == limits && !rest.starts_with(b"<?xml") => r,
            _ => {
                let mut reader = StreamReader::new(*limits);
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

    /// The body of a parsed `<body/>` element (namespaces resolved).
    pub fn from_element(mut el: Element) -> Result<Self, BodyError> {
        if !el.is("body", NS_HTTPBIND) {
            return Err(BodyError::NotABody);
        }
        let mut body = Body::new();
        for ((attr_ns, name), value) in el.attrs().iter() {
            let value = value.as_str();
            match (attr_ns.as_str(), name.as_str()) {
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
        }
        for node in el.take_nodes() {
            match node {
                Node::Text(t) if t.bytes().all(is_space) => {}
                Node::Text(_) => return Err(BodyError::TextInBody),
                Node::Element(child) => {
                    if child.is("uri", NS_HTTPBIND)
                        && body.condition == Some(Condition::SeeOtherUri)
                        && body.uri.is_none()
                    {
                        body.uri = Some(child.text().trim().to_owned());
                    } else {
                        body.payloads.push(rehome(child));
                    }
                }
            }
        }
        Ok(body)
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
        let num = |v: Option<u64>| v.map(|n| n.to_string());
        let num32 = |v: Option<u32>| v.map(|n| n.to_string());
        let attrs: [(&str, Option<String>); 19] = [
            ("rid", num(self.rid)),
            ("sid", self.sid.clone()),
            ("to", self.to.clone()),
            ("from", self.from.clone()),
            ("route", self.route.clone()),
            ("xml:lang", self.lang.clone()),
            ("ver", self.ver.clone()),
            ("content", self.content.clone()),
            ("wait", num32(self.wait)),
            ("hold", num32(self.hold)),
            ("requests", num32(self.requests)),
            ("polling", num32(self.polling)),
            ("inactivity", num32(self.inactivity)),
            ("maxpause", num32(self.maxpause)),
            ("pause", num32(self.pause)),
            ("ack", num(self.ack)),
            ("secure", self.secure.map(|s| s.to_string())),
            ("authid", self.authid.clone()),
            (
                "type",
                self.kind.map(|k| {
                    match k {
                        BodyType::Terminate => "terminate",
                        BodyType::Error => "error",
                    }
                    .to_owned()
                }),
            ),
        ];
        for (name, value) in attrs {
            if let Some(v) = value {
                write_attr(out, name, &v)?;
            }
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
