//! Bytes to stream events, with exact byte accounting and bounded memory.

use std::collections::VecDeque;
use std::fmt;

use minidom::Element;
use rxml::error::EndOrError;
use rxml::{Namespace, NcName, Parse, RawEvent, RawParser};

use crate::ns;
use crate::stream_error::{StreamError, StreamErrorCondition};

/// Resource limits of a [`StreamReader`]. Memory held by the reader stays
/// bounded by these, whatever the peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most input bytes one top-level element (or the stream header) may
    /// span, markup included. Default 256 KiB, as Prosody's
    /// `c2s_stanza_size_limit`.
    pub max_element_bytes: usize,
    /// Deepest nesting of elements inside a top-level element, the
    /// top-level element itself counting as 1. Default 64.
    pub max_depth: usize,
    /// Most attributes on one element, namespace declarations included.
    /// Default 64.
    pub max_attributes: usize,
    /// Longest single name or attribute value, in bytes (text longer than
    /// this is split, not refused). Default 8 KiB. Values above
    /// `max_element_bytes` are clamped to it.
    pub max_token_bytes: usize,
    /// Most heap the reader may hold for one top-level element while it
    /// is being read: the element tree (nodes, names, attributes, text)
    /// and the namespace declarations in it, charged as the allocations
    /// they cause. Default 4 x the default `max_element_bytes` (1 MiB).
    ///
    /// The byte limit alone does not bound memory: a parsed tree costs
    /// more than its bytes (an empty child element about 300 bytes of
    /// heap, an element's first attribute about 1.1 KiB in minidom's
    /// attribute map), so attribute-dense payloads, a large roster for
    /// one, reach this limit before the byte limit. A host that expects
    /// such payloads raises both.
    pub max_element_heap: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_element_bytes: 256 * 1024,
            max_depth: 64,
            max_attributes: 64,
            max_token_bytes: 8 * 1024,
            max_element_heap: 4 * 256 * 1024,
        }
    }
}

/// Which [`Limits`] field a peer exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// [`Limits::max_element_bytes`].
    ElementBytes,
    /// [`Limits::max_depth`].
    Depth,
    /// [`Limits::max_attributes`].
    Attributes,
    /// [`Limits::max_token_bytes`].
    TokenBytes,
    /// [`Limits::max_element_heap`].
    ElementHeap,
}

/// Decides at its start tag whether a top-level element (`name`,
/// `namespace`) may come now: see [`StreamReader::read_gated`].
pub type Gate<'a> = &'a dyn Fn(&str, &str) -> Result<(), Refusal>;

/// A top-level element refused at its start tag: the role's phase does
/// not allow its name and namespace (see [`StreamReader::read_gated`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stream error condition the peer gets.
    pub condition: StreamErrorCondition,
    /// What was wrong, for the host's logs.
    pub reason: &'static str,
}

/// What kind of XML that XMPP forbids (RFC 6120 section 11.1) the peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Restricted {
    /// A document type declaration (`<!DOCTYPE`) or other `<!` markup that
    /// is neither a comment nor CDATA.
    Dtd,
    /// A processing instruction.
    ProcessingInstruction,
    /// A comment.
    Comment,
    /// An entity reference other than the five predefined ones.
    EntityReference,
    /// An XML version other than 1.0.
    XmlVersion,
}

/// Why a [`StreamReader`] refused its input. Each maps to the stream error
/// condition the peer should receive ([`ReadError::condition`]). Errors are
/// sticky: once returned, every later [`StreamReader::read`] returns the
/// same error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadError {
    /// The input is not well-formed XML (`not-well-formed`).
    NotWellFormed(String),
    /// XML that XMPP forbids (`restricted-xml`).
    Restricted(Restricted),
    /// The input is not UTF-8: an invalid byte sequence or a declaration
    /// naming another encoding (`unsupported-encoding`).
    NotUtf8,
    /// An element or attribute uses a prefix that no declaration in scope
    /// binds (`not-well-formed`: the XML is not namespace-well-formed).
    UnboundPrefix(String),
    /// The stream header uses a prefix that no declaration binds
    /// (`bad-namespace-prefix`).
    StreamPrefixUnbound(String),
    /// The same attribute twice on one element (`not-well-formed`).
    DuplicateAttribute(String),
    /// The root element is `stream` in a namespace other than
    /// `http://etherx.jabber.org/streams` (`invalid-namespace`).
    InvalidStreamNamespace(String),
    /// The root element is not `stream` (`bad-format`).
    NotAStream(String),
    /// Non-whitespace character data between top-level elements
    /// (`bad-format`).
    TextAtStreamLevel,
    /// Data other than whitespace after `</stream:stream>`
    /// (`not-well-formed`).
    DataAfterClose,
    /// A top-level element that its start tag showed to be illegal in the
    /// reader's context; nothing of its content was read.
    Refused(Refusal),
    /// A configured limit was exceeded (`policy-violation`).
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Its configured value.
        max: usize,
    },
    /// A WebSocket message that is not exactly one complete element
    /// (RFC 7395 section 3.3.3: each message is parsed as an XML
    /// document, so this is `not-well-formed`).
    Message(MessageFault),
}

/// How a WebSocket message broke the one-element rule (see
/// [`StreamReader::for_messages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageFault {
    /// No element at all (empty, or whitespace only).
    Empty,
    /// The message ends inside its element.
    Incomplete,
    /// A second element after the first.
    Several,
    /// An end tag without its start tag.
    StrayEndTag,
    /// Bytes read outside any message announced with
    /// [`StreamReader::push_message`].
    Unframed,
}

impl fmt::Display for MessageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "a message without an element",
            Self::Incomplete => "a message that ends inside its element",
            Self::Several => "a message with more than one element",
            Self::StrayEndTag => "an end tag without its start tag",
            Self::Unframed => "bytes outside any message",
        })
    }
}

impl ReadError {
    /// The stream error condition that the peer should receive.
    pub fn condition(&self) -> StreamErrorCondition {
        match self {
            Self::NotWellFormed(_)
            | Self::UnboundPrefix(_)
            | Self::DuplicateAttribute(_)
            | Self::Message(_)
            | Self::DataAfterClose => StreamErrorCondition::NotWellFormed,
            Self::Restricted(_) => StreamErrorCondition::RestrictedXml,
            Self::NotUtf8 => StreamErrorCondition::UnsupportedEncoding,
            Self::StreamPrefixUnbound(_) => StreamErrorCondition::BadNamespacePrefix,
            Self::InvalidStreamNamespace(_) => StreamErrorCondition::InvalidNamespace,
            Self::NotAStream(_) | Self::TextAtStreamLevel => StreamErrorCondition::BadFormat,
            Self::LimitExceeded { .. } => StreamErrorCondition::PolicyViolation,
            Self::Refused(r) => r.condition.clone(),
        }
    }

    /// The `<stream:error/>` to send the peer.
    pub fn to_stream_error(&self) -> StreamError {
        StreamError::new(self.condition())
    }

    fn from_xml(e: rxml::Error) -> Self {
        use rxml::Error as E;
        match e {
            E::InvalidUtf8Byte(_) => Self::NotUtf8,
            E::RestrictedXml("only utf-8 encoding is allowed") => Self::NotUtf8,
            E::RestrictedXml("processing instructions") => {
                Self::Restricted(Restricted::ProcessingInstruction)
            }
            E::RestrictedXml("comments") => Self::Restricted(Restricted::Comment),
            E::RestrictedXml("only XML version 1.0 is allowed") => {
                Self::Restricted(Restricted::XmlVersion)
            }
            // rxml's name for a token over max_token_length
            E::RestrictedXml("long name or reference") | E::RestrictedXml("event too long") => {
                Self::LimitExceeded {
                    limit: Limit::TokenBytes,
                    max: 0,
                }
            }
            E::UndeclaredEntity => Self::Restricted(Restricted::EntityReference),
            // `<!` that is neither `<!--` nor `<![CDATA[`: a DTD.
            E::InvalidSyntax("malformed cdata or comment section start") => {
                Self::Restricted(Restricted::Dtd)
            }
            E::DuplicateAttribute => Self::DuplicateAttribute(String::new()),
            E::UndeclaredNamespacePrefix(_) => Self::UnboundPrefix(String::new()),
            other => Self::NotWellFormed(other.to_string()),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotWellFormed(d) => write!(f, "not well-formed XML: {d}"),
            Self::Restricted(r) => write!(f, "restricted XML: {r:?}"),
            Self::NotUtf8 => f.write_str("input is not UTF-8"),
            Self::UnboundPrefix(p) => write!(f, "unbound namespace prefix {p:?}"),
            Self::StreamPrefixUnbound(p) => write!(f, "unbound stream prefix {p:?}"),
            Self::DuplicateAttribute(a) => write!(f, "duplicate attribute {a:?}"),
            Self::InvalidStreamNamespace(n) => write!(f, "wrong stream namespace {n:?}"),
            Self::NotAStream(n) => write!(f, "root element {n:?} is not a stream"),
            Self::TextAtStreamLevel => f.write_str("character data between top-level elements"),
            Self::DataAfterClose => f.write_str("data after the stream was closed"),
            Self::LimitExceeded { limit, max } => write!(f, "{limit:?} limit ({max}) exceeded"),
            Self::Refused(r) => write!(f, "{}: {}", r.condition, r.reason),
            Self::Message(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// The attributes of a `<stream:stream>` header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHeader {
    /// `from`.
    pub from: Option<String>,
    /// `to`.
    pub to: Option<String>,
    /// `id`.
    pub id: Option<String>,
    /// `version`; `None` for a pre-1.0 stream (seed 001's Jabber 1.4).
    pub version: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// The default (content) namespace: `jabber:client`, `jabber:server`.
    /// `None` when the header declared none.
    pub content_ns: Option<String>,
    /// The prefix bound to the streams namespace (`stream` usually; `None`
    /// when the streams namespace was the default namespace).
    pub stream_prefix: Option<String>,
}

impl StreamHeader {
    /// The `version` as (major, minor); `(0, 9)` for a header without one,
    /// as RFC 6120 section 4.7.5 says; `None` when unparseable.
    pub fn version_numbers(&self) -> Option<(u32, u32)> {
        match &self.version {
            None => Some((0, 9)),
            Some(v) => {
                let (major, minor) = v.split_once('.')?;
                Some((major.parse().ok()?, minor.parse().ok()?))
            }
        }
    }

    /// Whether this is a pre-XMPP 1.0 stream (no `version`, or one below
    /// 1.0): no stream features will follow.
    pub fn is_pre_1_0(&self) -> bool {
        self.version_numbers().is_none_or(|(major, _)| major < 1)
    }
}

/// One thing a [`StreamReader`] recognised in its input.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The peer's `<stream:stream>` header.
    Header(StreamHeader),
    /// A complete top-level element (stanza, `<stream:features/>`, SASL
    /// or TLS negotiation element...), namespaces resolved; unprefixed
    /// elements are in the stream's content namespace.
    Element(Element),
    /// A `<stream:error/>` from the peer (the stream is unusable after it).
    StreamError(StreamError),
    /// `</stream:stream>`.
    Closed,
}

#[derive(Debug)]
enum State {
    /// Before the stream header has been read completely.
    Prolog,
    /// Inside the stream.
    Open,
    /// After `</stream:stream>`.
    Closed,
    /// A fatal error (sticky).
    Failed(ReadError),
}

/// The element head (`<name attr...`) being read.
#[derive(Debug)]
struct Head {
    prefix: Option<NcName>,
    name: NcName,
    attrs: Vec<(Option<NcName>, NcName, String)>,
    /// Attributes seen, declarations included.
    count: usize,
}

/// A namespace declaration in scope. The name is shared (an `Arc`) with
/// every attribute in that namespace.
#[derive(Debug)]
struct Decl {
    prefix: Option<NcName>,
    ns: String,
    /// The name in an `Arc`, made when an attribute first needs it.
    shared: Option<Namespace<'static>>,
}

/// An element of one name in one declared namespace, cloned for each
/// element of that name: clones share the namespace name instead of
/// copying it (minidom only takes namespaces as `String`s).
#[derive(Debug)]
struct Template {
    /// Index of the declaration in `decls`; `usize::MAX` for the `xml`
    /// namespace.
    decl: usize,
    /// Kept from one top-level element to the next: a template in a
    /// namespace the stream header declared, of at most
    /// [`MAX_PERSISTENT_NS`] bytes.
    persistent: bool,
    element: Element,
}

/// Templates kept per top-level element, at most (a flood of distinct
/// names builds elements without a template then).
const MAX_TEMPLATES: usize = 32;
/// Longest element name given a template.
const MAX_TEMPLATE_NAME: usize = 64;
/// Longest namespace name of a template kept across top-level elements
/// (with at most [`MAX_TEMPLATES`] of them, what an idle stream keeps is
/// bounded; [`StreamReader::release_temporaries`] drops them).
const MAX_PERSISTENT_NS: usize = 256;

/// What the reader charges against [`Limits::max_element_heap`]: the heap
/// each part of a tree causes, rounded up (checked against a counting
/// allocator in `tests/hostile.rs`).
pub(crate) mod cost {
    use std::collections::BTreeMap;
    use std::mem::size_of;

    use minidom::{Element, Node};
    use rxml::{Namespace, NcName};

    /// Allocator bookkeeping and rounding, per allocation.
    const SLACK: usize = 16;

    /// An element: its slot in the parent's child list (which grows by
    /// doubling, so up to two slots) and its name.
    pub fn element(name: &str) -> usize {
        2 * size_of::<Node>() + name.len() + SLACK
    }

    /// A template: the element, its own copy of the namespace name in an
    /// `Arc`.
    pub fn template(name: &str, ns: &str) -> usize {
        size_of::<Element>() + element(name) + ns.len() + 2 * SLACK + 16
    }

    /// A text chunk: a new text node, or appended to the last one (whose
    /// string grows by doubling).
    pub fn text(len: usize) -> usize {
        2 * len + 2 * size_of::<Node>() + SLACK
    }

    /// One B-tree node of the attribute map: the outer map by namespace,
    /// the inner by name (a leaf holds up to 11 entries).
    fn outer_leaf() -> usize {
        16 + 11 * (size_of::<Namespace>() + size_of::<BTreeMap<NcName, String>>()) + SLACK
    }
    fn inner_leaf() -> usize {
        16 + 11 * (size_of::<NcName>() + size_of::<String>()) + SLACK
    }

    /// The attribute map of an element with attributes in `namespaces`
    /// distinct namespaces: one outer leaf, one inner leaf each.
    pub fn attr_maps(namespaces: usize) -> usize {
        outer_leaf() + namespaces * inner_leaf()
    }

    /// One attribute: its name and value, its entry, and its share of
    /// the nodes added as the map splits (an internal node has 12 more
    /// pointers than a leaf; a split leaves two half-full leaves).
    pub fn attribute(name: &str, value: &str) -> usize {
        name.len() + value.len() + 2 * SLACK + (inner_leaf() + 12 * 8) / 5
    }

    /// A namespace declaration: the name in an `Arc`, its entry in the
    /// declaration stack (which grows by doubling).
    pub fn declaration(ns: &str) -> usize {
        ns.len() + 16 + 2 * SLACK + 2 * (size_of::<Option<NcName>>() + size_of::<Namespace>())
    }
}

/// The stream reader: feed it bytes in any chunks, get [`StreamEvent`]s.
///
/// [`read`](Self::read) returns at most one event per call and advances the
/// input slice past exactly the bytes it consumed, so a caller can stop
/// right after any top-level element: after `<proceed/>` the rest of the
/// slice is TLS data, never parsed; after SASL `<success/>` the rest
/// belongs to the restarted stream ([`reset`](Self::reset)).
///
/// ```
/// use xmpp_sansio::xml::{StreamReader, StreamEvent, Limits};
///
/// let mut reader = StreamReader::new(Limits::default());
/// let mut input: &[u8] = b"<stream:stream xmlns='jabber:client' \
///     xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>\
///     <proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01";
/// assert!(matches!(reader.read(&mut input), Ok(Some(StreamEvent::Header(_)))));
/// let Ok(Some(StreamEvent::Element(proceed))) = reader.read(&mut input) else { panic!() };
/// assert_eq!(proceed.name(), "proceed");
/// assert_eq!(input, b"\x16\x03\x01"); // the TLS bytes, untouched
/// ```
pub struct StreamReader {
    parser: RawParser,
    limits: Limits,
    state: State,
    /// [`header_is_pre_1_0`](Self::header_is_pre_1_0).
    header_pre_1_0: Option<bool>,
    head: Option<Head>,
    /// Declarations in scope, innermost last.
    decls: Vec<Decl>,
    /// `decls.len()` before each open element's declarations (the header's
    /// first), so closing an element drops its declarations.
    decl_marks: Vec<usize>,
    /// Open elements of the current top-level element, outermost first.
    stack: Vec<Element>,
    /// Element templates of the current top-level element, and those
    /// kept across elements.
    templates: Vec<Template>,
    /// (declaration, name hash) of the elements built once in the current
    /// top-level element (bounded: at most one entry per element built,
    /// cleared at each boundary; the template cap bounds its use).
    seen: Vec<(usize, u64)>,
    /// How many declarations the stream header made (they stay in scope
    /// for the whole stream).
    header_decls: usize,
    /// Heap charged for the current top-level element (see [`cost`]).
    heap: usize,
    /// Keep charging the heap across top-level elements, until
    /// [`clear_heap`](Self::clear_heap): the payloads of one BOSH
    /// `<body/>` share one budget, as the whole body is one element.
    carry_heap: bool,
    /// Whether non-whitespace bytes of an unfinished top-level element
    /// (or header) have been consumed.
    started: bool,
    /// Bytes consumed since the last boundary (header end, top-level
    /// element end, stream-level whitespace).
    pending_bytes: usize,
    /// Whether the first non-whitespace byte (`<`) has been seen.
    prolog_started: bool,
    /// The parser has just returned a top-level element or the header of
    /// a TCP stream (or a message reader's parser is inside its root) and
    /// consumed nothing since: it holds no partial token, so the next
    /// bytes may be taken without it (see [`shortcut`](Self::shortcut)
    /// and [`plain_element`](Self::plain_element)).
    at_rest: bool,
    /// The last two bytes the parser consumed: a header ends its tag with
    /// `>`, and one closed by `/>` leaves the stream's end pending in the
    /// parser (no rest then).
    last_two: [u8; 2],
    /// WebSocket framing: where the messages begin and end (`None`: a TCP
    /// stream).
    messages: Option<Box<Messages>>,
    /// How many headers and elements the plain path read (tests).
    #[cfg(test)]
    pub(super) plain_reads: usize,
    /// The `see-other-uri` of a `<close/>` read (WebSocket framing).
    see_other_uri: Option<String>,
}

/// The message boundaries of a [`StreamReader::for_messages`] reader.
#[derive(Debug, Default, Clone)]
struct Messages {
    /// Lengths of the messages announced after the current one.
    queued: VecDeque<usize>,
    /// Bytes of the current message not read yet.
    left: usize,
    /// Whether a message is being read.
    open: bool,
    /// Events (complete elements) read from the current message.
    elements: usize,
}

/// The name of the invisible root a message reader's parser is put
/// inside, so that each message is read as a top-level element of a
/// stream (one code path for both framings).
const MESSAGE_ROOT: &[u8] = b"<x>";
/// The declaration index of Prosody's undeclared `stream:` prefix on a
/// message's top-level element (see [`StreamReader::for_messages`]).
const UNDECLARED_STREAM: usize = usize::MAX - 1;

impl fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamReader")
            .field("limits", &self.limits)
            .field("state", &self.state)
            .field("header_pre_1_0", &self.header_pre_1_0)
            .field("depth", &self.stack.len())
            .field("pending_bytes", &self.pending_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for StreamReader {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

fn new_parser(limits: &Limits) -> RawParser {
    let opts = rxml::Options {
        max_token_length: limits.max_token_bytes.min(limits.max_element_bytes).max(1),
        ..Default::default()
    };
    <RawParser as rxml::WithOptions>::with_options(opts)
}

impl StreamReader {
    /// A reader for a new stream, with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            parser: new_parser(&limits),
            limits,
            state: State::Prolog,
            header_pre_1_0: None,
            head: None,
            decls: Vec::new(),
            decl_marks: Vec::new(),
            stack: Vec::new(),
            templates: Vec::new(),
            seen: Vec::new(),
            header_decls: 0,
            heap: 0,
            carry_heap: false,
            started: false,
            pending_bytes: 0,
            prolog_started: false,
            at_rest: false,
            last_two: [0; 2],
            #[cfg(test)]
            plain_reads: 0,
            messages: None,
            see_other_uri: None,
        }
    }

    /// A reader for RFC 7395 WebSocket messages: each message, announced
    /// with [`push_message`](Self::push_message) before its bytes are
    /// read, must be exactly one complete element, namespaced on its own
    /// (nothing is declared around it), with the same [`Limits`] as a
    /// top-level element of a stream. `<open/>` in
    /// `urn:ietf:params:xml:ns:xmpp-framing` is read as
    /// [`StreamEvent::Header`] (its `content_ns` is `None`), `<close/>`
    /// as [`StreamEvent::Closed`] (its `see-other-uri` is kept:
    /// [`see_other_uri`](Self::see_other_uri)); neither is gated. A
    /// message of no element, two, or an unfinished one is a
    /// [`ReadError::Message`].
    ///
    /// Prosody 13 sends `<stream:error>` over WebSocket without declaring
    /// `xmlns:stream`: on the top-level element of a message (and only
    /// there), an undeclared `stream:` prefix is the streams namespace.
    pub fn for_messages(limits: Limits) -> Self {
        let mut r = Self::new(limits);
        // The parser goes inside an invisible root once; each message is
        // then a top-level element, as in a stream.
        let mut root = MESSAGE_ROOT;
        while let Ok(Some(_)) = r.parser.parse(&mut root, false) {}
        r.at_rest = true;
        r.state = State::Open;
        r.prolog_started = true;
        r.decl_marks.push(0);
        r.messages = Some(Box::default());
        r
    }

    /// Announces a WebSocket message of `len` bytes: the next `len` bytes
    /// read are that message. Nothing for a stream reader.
    pub fn push_message(&mut self, len: usize) {
        if let Some(m) = &mut self.messages {
            m.queued.push_back(len);
        }
    }

    /// Whether this reader reads WebSocket messages
    /// ([`for_messages`](Self::for_messages)).
    pub fn reads_messages(&self) -> bool {
        self.messages.is_some()
    }

    /// The `see-other-uri` of the `<close/>` read, if it had one
    /// (WebSocket framing: RFC 7395 section 3.6.1, the redirect).
    pub fn see_other_uri(&self) -> Option<&str> {
        self.see_other_uri.as_deref()
    }

    /// Restarts: a fresh parser for a new stream (after STARTTLS or SASL
    /// success), same limits. Feed it exactly the bytes after the
    /// boundary. A message reader stays one, and keeps the boundaries of
    /// the messages announced.
    pub fn reset(&mut self) {
        if self.messages.is_some()
            && matches!(self.state, State::Open)
            && self.at_boundary()
            && !self.started
            && self.pending_bytes == 0
        {
            // A message reader between messages: its parser is where a new
            // one's is (inside the invisible root, between elements), so
            // only the stream's state goes. Building a parser and reading
            // the root again was most of a restart's cost.
            self.header_pre_1_0 = None;
            self.see_other_uri = None;
            self.decls.clear();
            self.decl_marks.clear();
            self.decl_marks.push(0);
            self.templates.clear();
            self.seen.clear();
            self.header_decls = 0;
            self.heap = 0;
            self.carry_heap = false;
            return;
        }
        let messages = self.messages.take();
        *self = match messages {
            None => Self::new(self.limits),
            Some(m) => {
                let mut r = Self::for_messages(self.limits);
                r.messages = Some(m);
                r
            }
        };
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether the peer's stream header was one of a pre-1.0 stream
    /// ([`StreamHeader::is_pre_1_0`]); `None` until a header was read. The
    /// header itself goes to the host in [`StreamEvent::Header`] only: a
    /// copy kept here cost a fifth of a restart's allocations.
    pub fn header_is_pre_1_0(&self) -> Option<bool> {
        self.header_pre_1_0
    }

    /// Whether `</stream:stream>` has been read.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Gives back scratch memory the parser keeps between tokens (up to
    /// the token limit), when nothing partial is buffered. It is taken
    /// again on the next read: call it on idle connections.
    pub fn release_temporaries(&mut self) {
        if self.at_boundary() {
            self.parser.release_temporaries();
            self.stack.shrink_to_fit();
            self.templates = Vec::new();
            self.seen = Vec::new();
            self.decls.shrink_to_fit();
            self.decl_marks.shrink_to_fit();
        }
    }

    /// Whether the reader is between top-level elements (nothing partial
    /// buffered as an element).
    pub fn at_boundary(&self) -> bool {
        self.stack.is_empty() && self.head.is_none()
    }

    /// Whether a top-level element (or the stream header) has begun and
    /// not ended: some of its non-whitespace bytes have been read. Hosts
    /// and roles put a deadline on this (a peer trickling one byte at a
    /// time holds the element's memory for as long as it is allowed to).
    pub fn in_element(&self) -> bool {
        self.started
    }

    /// From now on the heap charged for top-level elements adds up across
    /// them, until [`clear_heap`](Self::clear_heap) (the payloads of one
    /// BOSH `<body/>` read as top-level elements).
    pub(crate) fn carry_heap(&mut self) {
        self.carry_heap = true;
    }

    /// Starts a new heap budget (see [`carry_heap`](Self::carry_heap)).
    pub(crate) fn clear_heap(&mut self) {
        self.heap = 0;
    }

    /// The heap charged so far for the top-level element being read
    /// (bounded by [`Limits::max_element_heap`]).
    pub fn element_heap(&self) -> usize {
        self.heap
    }

    /// Reads at most one event from `input`, advancing it past the bytes
    /// consumed. `Ok(None)`: all of `input` was consumed and more is
    /// needed.
    pub fn read(&mut self, input: &mut &[u8]) -> Result<Option<StreamEvent>, ReadError> {
        self.read_gated(input, &|_: &str, _: &str| Ok(()))
    }

    /// [`read`](Self::read), checking every top-level element at its
    /// start tag: `gate(name, namespace)` decides whether the element may
    /// come now, before anything of its content is read or kept. A
    /// refusal fails the reader with [`ReadError::Refused`]. The stream
    /// header, `<stream:error/>` and the closing tag are not gated.
    pub fn read_gated(
        &mut self,
        input: &mut &[u8],
        gate: Gate<'_>,
    ) -> Result<Option<StreamEvent>, ReadError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let read = match self.messages.is_some() {
            false => self.read_inner(input, gate),
            true => self.read_messages(input, gate),
        };
        match read {
            Ok(ev) => Ok(ev),
            Err(e) => {
                self.stack = Vec::new();
                self.templates = Vec::new();
                self.head = None;
                self.heap = 0;
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// A top-level boundary: what was charged for the element is gone.
    fn boundary(&mut self) {
        self.pending_bytes = 0;
        if !self.carry_heap {
            self.heap = 0;
        }
        self.started = false;
        // Templates in the header's short namespaces (`jabber:client`)
        // serve the next stanzas too; the others go.
        self.templates.retain(|t| t.persistent);
        self.seen.clear();
    }

    fn charge(&mut self, bytes: usize) -> Result<(), ReadError> {
        self.heap = self.heap.saturating_add(bytes);
        if self.heap > self.limits.max_element_heap {
            return Err(ReadError::LimitExceeded {
                limit: Limit::ElementHeap,
                max: self.limits.max_element_heap,
            });
        }
        Ok(())
    }

    /// [`read_inner`](Self::read_inner) within message boundaries: the
    /// parser sees at most the rest of the current message, and each
    /// message must end where its one element ends.
    fn read_messages(
        &mut self,
        input: &mut &[u8],
        gate: Gate<'_>,
    ) -> Result<Option<StreamEvent>, ReadError> {
        loop {
            let Some(m) = self.messages.as_deref_mut() else {
                return Err(ReadError::Message(MessageFault::Unframed));
            };
            if m.open && m.left == 0 {
                // The message is over: it must have been one element.
                m.open = false;
                let elements = m.elements;
                if self.started || !self.at_boundary() {
                    return Err(ReadError::Message(MessageFault::Incomplete));
                }
                if elements == 0 {
                    return Err(ReadError::Message(MessageFault::Empty));
                }
                continue;
            }
            if !m.open {
                match m.queued.pop_front() {
                    Some(len) => {
                        m.open = true;
                        m.left = len;
                        m.elements = 0;
                        continue;
                    }
                    None if input.is_empty() => return Ok(None),
                    None => return Err(ReadError::Message(MessageFault::Unframed)),
                }
            }
            if input.is_empty() {
                return Ok(None);
            }
            let take = m.left.min(input.len());
            let mut part = &input[..take];
            let read = self.read_inner(&mut part, gate);
            let consumed = take - part.len();
            *input = &input[consumed..];
            let Some(m) = self.messages.as_deref_mut() else {
                return Err(ReadError::Message(MessageFault::Unframed));
            };
            m.left -= consumed;
            match read? {
                Some(ev) => {
                    m.elements += 1;
                    return Ok(Some(ev));
                }
                None => continue,
            }
        }
    }

    fn read_inner(
        &mut self,
        input: &mut &[u8],
        gate: Gate<'_>,
    ) -> Result<Option<StreamEvent>, ReadError> {
        if matches!(self.state, State::Closed) {
            // Only whitespace may follow `</stream:stream>`; nothing is
            // parsed or kept.
            return match input.iter().position(|b| !is_space(*b)) {
                Some(_) => Err(ReadError::DataAfterClose),
                None => {
                    *input = &input[input.len()..];
                    Ok(None)
                }
            };
        }
        if matches!(self.state, State::Prolog) && !self.prolog_started {
            // A stream starts with `<` (an XML declaration or the header),
            // possibly after whitespace, which is dropped here (the parser
            // would refuse it before a header without a declaration, and
            // its answer would depend on how the bytes were cut). Anything
            // else (an HTTP request, a TLS ClientHello on a plaintext port)
            // fails at once instead of being buffered as text.
            let spaces = input.iter().take_while(|b| is_space(**b)).count();
            self.pending_bytes += spaces;
            *input = &input[spaces..];
            match input.first() {
                Some(b'<') => self.prolog_started = true,
                Some(_) => {
                    return Err(ReadError::NotWellFormed(
                        "a stream must start with '<'".into(),
                    ))
                }
                None => {
                    return if self.pending_bytes > self.limits.max_element_bytes {
                        Err(ReadError::LimitExceeded {
                            limit: Limit::ElementBytes,
                            max: self.limits.max_element_bytes,
                        })
                    } else {
                        Ok(None)
                    };
                }
            }
        }
        if matches!(self.state, State::Prolog) && !self.started && self.messages.is_none() {
            if let Some(header) = self.plain_header(input)? {
                return Ok(Some(header));
            }
        }
        loop {
            if self.at_rest {
                if let Some(el) = self.shortcut(input, gate) {
                    return Ok(Some(StreamEvent::Element(el)));
                }
                if let Some(ev) = self.plain_element(input, gate)? {
                    return Ok(Some(ev));
                }
            }
            let before = *input;
            let res = self.parser.parse(input, false);
            let consumed = before.len() - input.len();
            if consumed > 0 {
                self.at_rest = false;
                self.last_two = match before[..consumed] {
                    [.., a, b] => [a, b],
                    [b] => [self.last_two[1], b],
                    [] => self.last_two,
                };
            }
            self.pending_bytes += consumed;
            if !self.started && before[..consumed].iter().any(|b| !is_space(*b)) {
                self.started = true;
            }
            if self.pending_bytes > self.limits.max_element_bytes {
                return Err(ReadError::LimitExceeded {
                    limit: Limit::ElementBytes,
                    max: self.limits.max_element_bytes,
                });
            }
            let ev = match res {
                Ok(Some(ev)) => ev,
                Ok(None) => return Ok(None),
                Err(EndOrError::NeedMoreData) => return Ok(None),
                Err(EndOrError::Error(e)) => {
                    if matches!(self.state, State::Closed) {
                        return Err(ReadError::DataAfterClose);
                    }
                    let mut err = ReadError::from_xml(e);
                    if let ReadError::LimitExceeded { max, .. } = &mut err {
                        *max = self.limits.max_token_bytes;
                    }
                    return Err(err);
                }
            };
            if let Some(out) = self.handle(ev, gate)? {
                // After a top-level element or the header, the parser
                // waits for the next element: nothing of it is held
                // (unless the header closed itself: its end is pending).
                let header_open = matches!(self.last_two, [a, b'>'] if a != b'/');
                let rest = match out {
                    StreamEvent::Element(_) => true,
                    StreamEvent::Header(_) => header_open,
                    _ => false,
                };
                self.at_rest = rest
                    && matches!(self.state, State::Open)
                    && self.stack.is_empty()
                    && self.head.is_none();
                return Ok(Some(out));
            }
        }
    }

    /// An element in one of the exact forms [`shortcut`](super::shortcut)
    /// takes without the parser, at rest between top-level elements. The
    /// gate decides as for any element: a refusal leaves it to the
    /// parser, which fails as it would.
    fn shortcut(&mut self, input: &mut &[u8], gate: Gate<'_>) -> Option<Element> {
        if self.messages.as_ref().is_some_and(|m| m.elements > 0) {
            // A second element in one message: the parser's to refuse.
            return None;
        }
        let max_text = self
            .limits
            .max_token_bytes
            .min(self.limits.max_element_bytes);
        let (len, el, ns) = super::shortcut::take(input, max_text)?;
        if len > self.limits.max_element_bytes {
            return None;
        }
        if gate(el.name(), ns).is_err() {
            return None;
        }
        *input = &input[len..];
        self.boundary();
        Some(el)
    }

    /// The bounds [`plain`](super::plain) keeps to.
    fn plain_bounds(&self) -> super::plain::Bounds {
        super::plain::Bounds {
            max_token: self
                .limits
                .max_token_bytes
                .min(self.limits.max_element_bytes),
            max_bytes: self
                .limits
                .max_element_bytes
                .saturating_sub(self.pending_bytes),
        }
    }

    /// A stream header in the plain subset, whole at the start of
    /// `input`, tokenised without the parser; the parser is then put
    /// inside a root of the same name, where it would be had it read the
    /// header. `Ok(None)`: nothing consumed, the parser's to read.
    fn plain_header(&mut self, input: &mut &[u8]) -> Result<Option<StreamEvent>, ReadError> {
        let bounds = self.plain_bounds();
        let whole: &[u8] = input;
        let Some((len, header)) = self.take_plain(&|_: &str, _: &str| Ok(()), |each| {
            super::plain::header(whole, bounds, each)
        })?
        else {
            return Ok(None);
        };
        *input = &input[len..];
        let mut root: &[u8] = b"<stream:stream>";
        while let Ok(Some(_)) = self.parser.parse(&mut root, false) {}
        if !root.is_empty() {
            return Err(ReadError::NotWellFormed(
                "the parser refused the root".into(),
            ));
        }
        self.at_rest = true;
        #[cfg(test)]
        {
            self.plain_reads += 1;
        }
        Ok(Some(header))
    }

    /// A top-level element in the plain subset, whole at the start of
    /// `input` (at rest), tokenised without the parser: its events go
    /// through [`handle`](Self::handle) as the parser's would.
    /// `Ok(None)`: nothing consumed, the parser's to read.
    fn plain_element(
        &mut self,
        input: &mut &[u8],
        gate: Gate<'_>,
    ) -> Result<Option<StreamEvent>, ReadError> {
        let bounds = self.plain_bounds();
        let whole: &[u8] = input;
        let Some((len, out)) =
            self.take_plain(gate, |each| super::plain::element(whole, bounds, each))?
        else {
            return Ok(None);
        };
        *input = &input[len..];
        #[cfg(test)]
        {
            self.plain_reads += 1;
        }
        Ok(Some(out))
    }

    /// Runs a [`plain`](super::plain) scan (`scan`, given where to send
    /// each token) through [`handle`](Self::handle): the bytes it took and
    /// the event they ended with. `Ok(None)`: the scan took nothing.
    fn take_plain(
        &mut self,
        gate: Gate<'_>,
        scan: impl FnOnce(
            &mut dyn FnMut(super::plain::Token<'_>) -> Result<(), ReadError>,
        ) -> Option<Result<usize, ReadError>>,
    ) -> Result<Option<(usize, StreamEvent)>, ReadError> {
        let mut out = None;
        let Some(read) = scan(&mut |token| {
            if let Some(ev) = self.handle(raw_event(token)?, gate)? {
                out = Some(ev);
            }
            Ok(())
        }) else {
            return Ok(None);
        };
        let len = read?;
        match out {
            Some(ev) => Ok(Some((len, ev))),
            None => Err(ReadError::NotWellFormed(
                "plain markup without its end".into(),
            )),
        }
    }

    fn handle(&mut self, ev: RawEvent, gate: Gate<'_>) -> Result<Option<StreamEvent>, ReadError> {
        match ev {
            RawEvent::XmlDeclaration(..) => Ok(None),
            RawEvent::ElementHeadOpen(_, (prefix, name)) => {
                if matches!(self.state, State::Closed) {
                    return Err(ReadError::DataAfterClose);
                }
                if let Some(m) = &self.messages {
                    if self.stack.is_empty() && m.elements > 0 {
                        return Err(ReadError::Message(MessageFault::Several));
                    }
                }
                if matches!(self.state, State::Open) && self.stack.len() >= self.limits.max_depth {
                    return Err(ReadError::LimitExceeded {
                        limit: Limit::Depth,
                        max: self.limits.max_depth,
                    });
                }
                self.head = Some(Head {
                    prefix,
                    name,
                    attrs: Vec::new(),
                    count: 0,
                });
                Ok(None)
            }
            RawEvent::Attribute(_, (prefix, name), value) => {
                let max_attributes = self.limits.max_attributes;
                let Some(head) = self.head.as_mut() else {
                    return Err(ReadError::NotWellFormed("attribute outside a head".into()));
                };
                head.count += 1;
                if head.count > max_attributes {
                    return Err(ReadError::LimitExceeded {
                        limit: Limit::Attributes,
                        max: max_attributes,
                    });
                }
                if head.count == 1 {
                    self.decl_marks.push(self.decls.len());
                }
                let mark = *self.decl_marks.last().unwrap_or(&0);
                let cost = match (prefix, name) {
                    (None, n) if n.as_str() == "xmlns" => {
                        let cost = cost::declaration(&value);
                        push_decl(&mut self.decls, mark, None, value)?;
                        cost
                    }
                    (Some(p), n) if p.as_str() == "xmlns" => {
                        let cost = cost::declaration(&value);
                        push_decl(&mut self.decls, mark, Some(n), value)?;
                        cost
                    }
                    (p, n) => {
                        if head.attrs.iter().any(|(ap, an, _)| *ap == p && *an == n) {
                            return Err(ReadError::DuplicateAttribute(n.to_string()));
                        }
                        let cost = cost::attribute(&n, &value);
                        head.attrs.push((p, n, value));
                        cost
                    }
                };
                if matches!(self.state, State::Open) {
                    self.charge(cost)?;
                }
                Ok(None)
            }
            RawEvent::ElementHeadClose(_) => {
                let Some(head) = self.head.take() else {
                    return Err(ReadError::NotWellFormed("head close without head".into()));
                };
                if head.count == 0 {
                    self.decl_marks.push(self.decls.len());
                }
                match self.state {
                    State::Prolog => self.open_stream(head).map(Some),
                    _ => {
                        let top_level = self.stack.is_empty();
                        let el = self.build(head, top_level.then_some(gate))?;
                        self.stack.push(el);
                        Ok(None)
                    }
                }
            }
            RawEvent::Text(_, text) => {
                if !self.stack.is_empty() {
                    self.charge(cost::text(text.len()))?;
                }
                if let Some(top) = self.stack.last_mut() {
                    top.append_text(text);
                    Ok(None)
                } else if text.bytes().all(is_space) {
                    // A keepalive: nothing is kept.
                    if matches!(self.state, State::Open) {
                        self.boundary();
                    }
                    Ok(None)
                } else if matches!(self.state, State::Closed) {
                    Err(ReadError::DataAfterClose)
                } else {
                    Err(ReadError::TextAtStreamLevel)
                }
            }
            RawEvent::ElementFoot(_) => {
                if let Some(mark) = self.decl_marks.pop() {
                    self.decls.truncate(mark);
                    // Templates of the dropped declarations go with them:
                    // a later declaration may reuse the index.
                    self.templates
                        .retain(|t| t.decl < mark || t.decl == usize::MAX);
                }
                let Some(el) = self.stack.pop() else {
                    if self.messages.is_some() {
                        // The invisible root: no message may close it.
                        return Err(ReadError::Message(MessageFault::StrayEndTag));
                    }
                    // The stream element itself closed.
                    self.state = State::Closed;
                    self.boundary();
                    return Ok(Some(StreamEvent::Closed));
                };
                if let Some(parent) = self.stack.last_mut() {
                    parent.append_child(el);
                    return Ok(None);
                }
                self.boundary();
                if self.messages.is_some() && el.has_ns(ns::FRAMING) {
                    match el.name() {
                        "open" => {
                            let header = crate::framing::header_of_open(&el);
                            self.header_pre_1_0 = Some(header.is_pre_1_0());
                            return Ok(Some(StreamEvent::Header(header)));
                        }
                        "close" => {
                            self.see_other_uri = crate::framing::see_other_uri(&el);
                            self.state = State::Closed;
                            return Ok(Some(StreamEvent::Closed));
                        }
                        _ => {}
                    }
                }
                if el.is("error", ns::STREAM) {
                    if let Some(err) = StreamError::from_element(&el) {
                        return Ok(Some(StreamEvent::StreamError(err)));
                    }
                }
                Ok(Some(StreamEvent::Element(el)))
            }
        }
    }

    /// The declaration that binds `prefix`: its index in `decls`
    /// (`usize::MAX` for `xml`) and namespace.
    fn resolve(&self, prefix: Option<&NcName>) -> Option<(usize, &str)> {
        match prefix {
            Some(p) if p.as_str() == "xml" => Some((usize::MAX, ns::XML)),
            _ => self
                .decls
                .iter()
                .enumerate()
                .rev()
                .find(|(_, d)| d.prefix.as_ref() == prefix)
                .map(|(i, d)| (i, d.ns.as_str())),
        }
    }

    /// The namespace of declaration `decl` (from [`resolve`](Self::resolve)),
    /// shared: one `Arc` per declaration for all its attributes.
    fn shared(&mut self, decl: usize) -> Namespace<'static> {
        match self.decls.get_mut(decl) {
            None => Namespace::XML,
            Some(d) => d
                .shared
                .get_or_insert_with(|| Namespace::from(d.ns.clone()))
                .clone(),
        }
    }

    fn lookup(&self, prefix: Option<&NcName>) -> Option<&str> {
        self.resolve(prefix).map(|(_, ns)| ns)
    }

    fn open_stream(&mut self, head: Head) -> Result<StreamEvent, ReadError> {
        let Some(stream_ns) = self.lookup(head.prefix.as_ref()) else {
            let p = head.prefix.map(|p| p.to_string()).unwrap_or_default();
            return Err(ReadError::StreamPrefixUnbound(p));
        };
        if head.name.as_str() != "stream" {
            return Err(ReadError::NotAStream(head.name.to_string()));
        }
        if stream_ns != ns::STREAM {
            return Err(ReadError::InvalidStreamNamespace(stream_ns.to_owned()));
        }
        let mut header = StreamHeader {
            content_ns: self.lookup(None).map(str::to_owned),
            stream_prefix: head.prefix.map(|p| p.to_string()),
            ..StreamHeader::default()
        };
        if header.stream_prefix.is_none() {
            // The streams namespace is the default one: stanzas need
            // explicit namespaces then.
            header.content_ns = None;
        }
        for (prefix, name, value) in head.attrs {
            match (prefix.as_ref().map(|p| p.as_str()), name.as_str()) {
                (None, "from") => header.from = Some(value),
                (None, "to") => header.to = Some(value),
                (None, "id") => header.id = Some(value),
                (None, "version") => header.version = Some(value),
                (Some("xml"), "lang") => header.lang = Some(value),
                (Some(p), _) if self.lookup(prefix.as_ref()).is_none() => {
                    return Err(ReadError::UnboundPrefix(p.to_owned()))
                }
                _ => {}
            }
        }
        self.state = State::Open;
        self.header_decls = self.decls.len();
        self.boundary();
        self.header_pre_1_0 = Some(header.is_pre_1_0());
        Ok(StreamEvent::Header(header))
    }

    /// The element of `head`, its namespace resolved; a top-level one is
    /// first put to `gate`.
    fn build(&mut self, head: Head, gate: Option<Gate<'_>>) -> Result<Element, ReadError> {
        let top_level = gate.is_some();
        let prosody_stream_prefix = top_level
            && self.messages.is_some()
            && head.prefix.as_ref().is_some_and(|p| p.as_str() == "stream");
        let (decl, ns) = match self.resolve(head.prefix.as_ref()) {
            Some(found) => found,
            None if prosody_stream_prefix => (UNDECLARED_STREAM, ns::STREAM),
            None => {
                return Err(ReadError::UnboundPrefix(
                    head.prefix.map(|p| p.to_string()).unwrap_or_default(),
                ))
            }
        };
        let framing = self.messages.is_some()
            && ns == ns::FRAMING
            && matches!(head.name.as_str(), "open" | "close");
        if let Some(gate) = gate.filter(|_| !framing) {
            gate(head.name.as_str(), ns).map_err(ReadError::Refused)?;
        }
        let name = head.name.as_str();
        let (mut el, cost) = self.element(decl, name);
        // Distinct attribute namespaces (each its own map node), by
        // declaration; past the first few, each counts as new.
        let mut seen = [usize::MAX; 4];
        let mut namespaces = 0;
        if !head.attrs.is_empty() {
            let attrs = el.attrs_mut();
            for (prefix, name, value) in head.attrs {
                let ns = match &prefix {
                    None => Namespace::NONE,
                    Some(p) => match self.resolve(Some(p)) {
                        Some((decl, _)) => {
                            if !seen.contains(&decl) || namespaces >= seen.len() {
                                if let Some(slot) = seen.get_mut(namespaces) {
                                    *slot = decl;
                                }
                                namespaces += 1;
                            }
                            self.shared(decl)
                        }
                        None => return Err(ReadError::UnboundPrefix(p.to_string())),
                    },
                };
                if attrs.insert(ns, name, value).is_some() {
                    // Two prefixes bound to one namespace, same local name.
                    return Err(ReadError::DuplicateAttribute(
                        "two prefixes for one namespace".into(),
                    ));
                }
            }
            let maps = cost::attr_maps(namespaces + 1);
            self.charge(cost + maps)?;
        } else {
            self.charge(cost)?;
        }
        Ok(el)
    }
}

impl StreamReader {
    /// A bare element `name` in declaration `decl`'s namespace, and
    /// the heap it costs. The second element of one name and namespace
    /// in a top-level element makes a template, and later ones are its
    /// clones: they share the namespace name instead of copying it.
    fn element(&mut self, decl: usize, name: &str) -> (Element, usize) {
        if let Some(t) = self
            .templates
            .iter()
            .find(|t| t.decl == decl && t.element.name() == name)
        {
            return (t.element.clone(), cost::element(name));
        }
        let ns = self.decl_ns(decl);
        let cost = cost::template(name, ns);
        match super::known::element(name, ns) {
            Some(el) => (el, cost),
            None => self.new_element(decl, name, cost),
        }
    }

    /// The namespace name of declaration `decl`.
    fn decl_ns(&self, decl: usize) -> &str {
        match decl {
            UNDECLARED_STREAM => ns::STREAM,
            _ => self.decls.get(decl).map_or(ns::XML, |d| d.ns.as_str()),
        }
    }

    /// An element no template and no table knows: built, and the
    /// second of its kind in a top-level element made a template.
    fn new_element(&mut self, decl: usize, name: &str, cost: usize) -> (Element, usize) {
        let ns = self.decl_ns(decl);
        let el = Element::bare(name, ns);
        let persistent = decl < self.header_decls && ns.len() <= MAX_PERSISTENT_NS;
        if self.templates.len() >= MAX_TEMPLATES || name.len() > MAX_TEMPLATE_NAME {
            return (el, cost);
        }
        let key = (decl, name_hash(name));
        if !self.seen.contains(&key) {
            // The first of its kind: most names come once per stanza.
            self.seen.push(key);
            return (el, cost);
        }
        self.templates.push(Template {
            decl,
            persistent,
            element: el.clone(),
        });
        (el, cost + cost::element(name))
    }
}

/// FNV-1a of an element name (which names were seen once).
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The rxml event of a [`plain`](super::plain) token (its names are
/// checked again: ASCII names in the subset always pass).
fn raw_event(token: super::plain::Token<'_>) -> Result<RawEvent, ReadError> {
    use super::plain::Token;
    let m = rxml::parser::EventMetrics::new(0);
    let name =
        |n: &str| NcName::try_from(n).map_err(|_| ReadError::NotWellFormed("a bad name".into()));
    let qname = |p: Option<&str>, n: &str| -> Result<_, ReadError> {
        Ok((p.map(name).transpose()?, name(n)?))
    };
    Ok(match token {
        Token::Open(p, n) => RawEvent::ElementHeadOpen(m, qname(p, n)?),
        Token::Attribute(p, n, v) => RawEvent::Attribute(m, qname(p, n)?, v.into_owned()),
        Token::HeadClose => RawEvent::ElementHeadClose(m),
        Token::Foot => RawEvent::ElementFoot(m),
        Token::Text(t) => RawEvent::Text(m, t.into_owned()),
    })
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

fn push_decl(
    decls: &mut Vec<Decl>,
    mark: usize,
    prefix: Option<NcName>,
    ns: String,
) -> Result<(), ReadError> {
    // Namespaces in XML 1.0 section 3: the xmlns namespace name may not be
    // bound at all, the xml one only to `xml` (rxml checks the prefixed
    // forms of the latter).
    if ns == XMLNS_NS || (prefix.is_none() && ns == crate::ns::XML) {
        return Err(ReadError::NotWellFormed(
            "reserved namespace name bound".into(),
        ));
    }
    if decls[mark..].iter().any(|d| d.prefix == prefix) {
        let name = prefix
            .map(|p| format!("xmlns:{p}"))
            .unwrap_or("xmlns".into());
        return Err(ReadError::DuplicateAttribute(name));
    }
    decls.push(Decl {
        prefix,
        ns,
        shared: None,
    });
    Ok(())
}
