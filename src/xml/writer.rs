//! Stream events to bytes: headers, elements, stream errors, the close.

use std::fmt;

use minidom::{Element, Node};

use crate::framing::Framing;
use crate::ns;
use crate::stream_error::StreamError;
use crate::xml::StreamHeader;

/// Why an element could not be serialised. Only elements built by the host
/// can fail: what the reader produced always serialises.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// An element or attribute name that is not an XML NCName.
    InvalidName(String),
    /// A character that XML 1.0 cannot carry (most C0 controls, U+FFFE,
    /// U+FFFF), as its code point.
    InvalidChar(u32),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(n) => write!(f, "invalid XML name {n:?}"),
            Self::InvalidChar(c) => write!(f, "character U+{c:04X} cannot be sent in XML"),
        }
    }
}

impl std::error::Error for WriteError {}

/// Serialises one stream. Stateless apart from the stream's content
/// namespace, so one writer serves a whole connection, restarts included.
///
/// Top-level elements in the content namespace carry no `xmlns`; elements
/// in the streams namespace use the `stream:` prefix the header declared;
/// any other namespace is declared as the default namespace where it
/// starts. Attribute values are single-quoted.
///
/// With [`Framing::WebSocket`] (RFC 7395) each call writes one message:
/// the header is `<open/>`, the close `<close/>`, and every top-level
/// element is namespaced on its own (`xmlns='jabber:client'` on stanzas,
/// `xmlns:stream` on `<stream:features/>` and `<stream:error/>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamWriter {
    content_ns: String,
    framing: Framing,
}

impl StreamWriter {
    /// A writer for a TCP stream whose content namespace is `content_ns`
    /// (`jabber:client` or `jabber:server`).
    pub fn new(content_ns: impl Into<String>) -> Self {
        Self::with_framing(content_ns, Framing::Tcp)
    }

    /// A writer for a stream of `content_ns` carried by `framing`.
    pub fn with_framing(content_ns: impl Into<String>, framing: Framing) -> Self {
        Self {
            content_ns: content_ns.into(),
            framing: framing.wire(),
        }
    }

    /// The framing it writes.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The content namespace.
    pub fn content_ns(&self) -> &str {
        &self.content_ns
    }

    /// Writes the XML declaration and the stream header. The header's
    /// `content_ns` is ignored in favour of the writer's. A value with a
    /// character XML cannot carry is an error, and nothing is written.
    pub fn write_header(&self, out: &mut Vec<u8>, header: &StreamHeader) -> Result<(), WriteError> {
        let start = out.len();
        let websocket = self.framing != Framing::Tcp;
        if websocket {
            out.extend_from_slice(b"<open xmlns='");
            out.extend_from_slice(ns::FRAMING.as_bytes());
            out.push(b'\'');
        } else {
            out.extend_from_slice(b"<?xml version='1.0'?><stream:stream");
        }
        let attrs = [
            ("from", &header.from),
            ("to", &header.to),
            ("id", &header.id),
            ("version", &header.version),
            ("xml:lang", &header.lang),
        ];
        let namespaces = [
            ("xmlns", self.content_ns.as_str()),
            ("xmlns:stream", ns::STREAM),
        ];
        let written = attrs
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.as_deref()?)))
            .chain(namespaces.into_iter().filter(|_| !websocket))
            .try_for_each(|(name, value)| write_attr(out, name, value));
        if written.is_err() {
            out.truncate(start);
            return written;
        }
        out.extend_from_slice(if websocket { b"/>" } else { b">" });
        Ok(())
    }

    /// Writes a top-level element.
    pub fn write_element(&self, out: &mut Vec<u8>, el: &Element) -> Result<(), WriteError> {
        let start = out.len();
        let res = match self.framing {
            Framing::Tcp => write_el(out, el, &self.content_ns, Level::Top),
            // No stream around it: nothing is in scope.
            _ => write_el(out, el, "", Level::Message),
        };
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    /// Writes a `<stream:error/>`. One whose text, application element or
    /// `see-other-host` address cannot be written is an error, and nothing
    /// is written (the condition is not sent without them).
    pub fn write_stream_error(
        &self,
        out: &mut Vec<u8>,
        err: &StreamError,
    ) -> Result<(), WriteError> {
        self.write_element(out, &err.to_element())
    }

    /// Writes `</stream:stream>` (WebSocket: `<close/>`).
    pub fn write_close(&self, out: &mut Vec<u8>) {
        match self.framing {
            Framing::Tcp => out.extend_from_slice(b"</stream:stream>"),
            _ => {
                out.extend_from_slice(b"<close xmlns='");
                out.extend_from_slice(ns::FRAMING.as_bytes());
                out.extend_from_slice(b"'/>");
            }
        }
    }

    /// Writes `<close see-other-uri='uri'/>`, RFC 7395's redirect
    /// (WebSocket framing; the role machine checks that). A `uri` that XML
    /// cannot carry is an error, and nothing is written.
    pub fn write_close_see_other_uri(
        &self,
        out: &mut Vec<u8>,
        uri: &str,
    ) -> Result<(), WriteError> {
        let mut close = Vec::with_capacity(80 + uri.len());
        close.extend_from_slice(b"<close xmlns='");
        close.extend_from_slice(ns::FRAMING.as_bytes());
        close.push(b'\'');
        write_attr(&mut close, "see-other-uri", uri)?;
        close.extend_from_slice(b"/>");
        out.extend_from_slice(&close);
        Ok(())
    }

    /// `<stream:error/>` with `condition`'s element alone, for a stream
    /// error that `write_stream_error` refused with `_why`: the
    /// condition's name is a fixed XML name, so this always writes.
    pub(crate) fn write_bare_stream_error(
        &self,
        out: &mut Vec<u8>,
        condition: &crate::stream_error::StreamErrorCondition,
        _why: &WriteError,
    ) {
        out.extend_from_slice(b"<stream:error");
        if self.framing != Framing::Tcp {
            out.extend_from_slice(b" xmlns:stream='");
            out.extend_from_slice(ns::STREAM.as_bytes());
            out.push(b'\'');
        }
        write_bare_condition(out, condition);
    }
}

fn write_bare_condition(out: &mut Vec<u8>, condition: &crate::stream_error::StreamErrorCondition) {
    out.extend_from_slice(b"><");
    out.extend_from_slice(condition.as_str().as_bytes());
    out.extend_from_slice(b" xmlns='");
    out.extend_from_slice(ns::STREAM_ERRORS.as_bytes());
    out.extend_from_slice(b"'/></stream:error>");
}

const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

pub(crate) fn check_name(name: &str) -> Result<(), WriteError> {
    rxml::strings::validate_ncname(name).map_err(|_| WriteError::InvalidName(name.to_owned()))
}

/// Where an element is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// A top-level element of a TCP stream: the header's declarations are
    /// in scope.
    Top,
    /// A WebSocket message: nothing is in scope, `stream:` is declared.
    Message,
    /// Inside another element.
    Child,
}

fn write_el(
    out: &mut Vec<u8>,
    el: &Element,
    default_ns: &str,
    level: Level,
) -> Result<(), WriteError> {
    let top = level != Level::Child;
    let name = el.name();
    check_name(name)?;
    // Elements in the reserved `xml` namespace take its predefined prefix
    // (it may never be bound as a default namespace); nothing may be in
    // the `xmlns` namespace.
    if el.has_ns(XMLNS_NS) {
        return Err(WriteError::InvalidName(format!(
            "xmlns namespace element {name}"
        )));
    }
    let prefix: &[u8] = if top && el.has_ns(ns::STREAM) {
        b"stream:"
    } else if el.has_ns(ns::XML) {
        b"xml:"
    } else {
        b""
    };
    let declare = prefix.is_empty() && !el.has_ns(default_ns);
    let ns_owned;
    let child_default = if declare {
        ns_owned = el.ns();
        ns_owned.as_str()
    } else {
        default_ns
    };
    out.push(b'<');
    out.extend_from_slice(prefix);
    out.extend_from_slice(name.as_bytes());
    if level == Level::Message && prefix == b"stream:" {
        out.extend_from_slice(b" xmlns:stream='");
        out.extend_from_slice(ns::STREAM.as_bytes());
        out.push(b'\'');
    }
    if declare {
        out.extend_from_slice(b" xmlns='");
        escape(out, child_default, true)?;
        out.push(b'\'');
    }
    let mut generated = 0usize;
    for ((attr_ns, attr_name), value) in el.attrs().iter() {
        check_name(attr_name.as_str())?;
        out.push(b' ');
        let attr_ns = attr_ns.as_str();
        if attr_ns.is_empty() {
            // unqualified
        } else if attr_ns == ns::XML {
            out.extend_from_slice(b"xml:");
        } else if attr_ns == XMLNS_NS {
            return Err(WriteError::InvalidName(format!(
                "xmlns namespace attribute {attr_name}"
            )));
        } else {
            let prefix = el
                .prefixes
                .declared_prefixes()
                .iter()
                .find(|(p, n)| p.is_some() && n.as_str() == attr_ns)
                .and_then(|(p, _)| p.clone())
                .filter(|p| p != "xml" && p != "xmlns" && check_name(p).is_ok())
                .unwrap_or_else(|| {
                    generated += 1;
                    format!("ns{generated}")
                });
            out.extend_from_slice(b"xmlns:");
            out.extend_from_slice(prefix.as_bytes());
            out.extend_from_slice(b"='");
            escape(out, attr_ns, true)?;
            out.extend_from_slice(b"' ");
            out.extend_from_slice(prefix.as_bytes());
            out.push(b':');
        }
        out.extend_from_slice(attr_name.as_bytes());
        out.extend_from_slice(b"='");
        escape(out, value, true)?;
        out.push(b'\'');
    }
    let mut nodes = el.nodes().peekable();
    if nodes.peek().is_none() {
        out.extend_from_slice(b"/>");
        return Ok(());
    }
    out.push(b'>');
    for node in nodes {
        match node {
            Node::Element(child) => write_el(out, child, child_default, Level::Child)?,
            Node::Text(text) => escape(out, text, false)?,
        }
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(prefix);
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    Ok(())
}

pub(crate) fn write_attr(out: &mut Vec<u8>, name: &str, value: &str) -> Result<(), WriteError> {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    escape(out, value, true)?;
    out.push(b'\'');
    Ok(())
}

/// The first character of `s` that XML 1.0 cannot carry, as an error.
pub(crate) fn check_text(s: &str) -> Result<(), WriteError> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(WriteError::InvalidChar(c as u32)),
        None => Ok(()),
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes `s` into `out`: markup characters always; in attribute values
/// also quotes and the whitespace characters that attribute-value
/// normalisation would otherwise turn into spaces. `\r` is always written
/// as a reference so that line-end normalisation keeps it.
fn escape(out: &mut Vec<u8>, s: &str, attr: bool) -> Result<(), WriteError> {
    let bytes = s.as_bytes();
    // Most text (names, ids, base64, JIDs) has nothing to escape: one
    // table look-up per byte finds that, and the bytes go out in one copy.
    let mask = if attr { IN_ATTR } else { IN_TEXT };
    let Some(first) = bytes.iter().position(|b| SPECIAL[*b as usize] & mask != 0) else {
        out.extend_from_slice(bytes);
        return Ok(());
    };
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        let rep: &[u8] = match b {
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'&' => b"&amp;",
            b'\r' => b"&#xD;",
            b'\'' if attr => b"&apos;",
            b'"' if attr => b"&quot;",
            b'\n' if attr => b"&#xA;",
            b'\t' if attr => b"&#x9;",
            b'\t' | b'\n' => continue,
            0..=0x1F => return Err(WriteError::InvalidChar(b as u32)),
            // U+FFFE and U+FFFF are EF BF BE / EF BF BF in UTF-8.
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                return Err(WriteError::InvalidChar(
                    0xFFF0 | (bytes[i + 2] as u32 & 0x0F),
                ))
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
    Ok(())
}

/// [`SPECIAL`]'s flag for a byte [`escape`] must look at in text.
const IN_TEXT: u8 = 1;
/// [`SPECIAL`]'s flag for a byte [`escape`] must look at in an attribute.
const IN_ATTR: u8 = 2;

/// For each byte, whether [`escape`] writes it otherwise or refuses it:
/// the markup characters, the control characters (tab and line feed are
/// written as they are in text), and 0xEF (U+FFFE and U+FFFF begin
/// with it).
const SPECIAL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = IN_TEXT | IN_ATTR;
        b += 1;
    }
    t[b'\t' as usize] = IN_ATTR;
    t[b'\n' as usize] = IN_ATTR;
    t[b'<' as usize] = IN_TEXT | IN_ATTR;
    t[b'>' as usize] = IN_TEXT | IN_ATTR;
    t[b'&' as usize] = IN_TEXT | IN_ATTR;
    t[b'\'' as usize] = IN_ATTR;
    t[b'"' as usize] = IN_ATTR;
    t[0xEF] = IN_TEXT | IN_ATTR;
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream_error::StreamErrorCondition;

    #[test]
    fn escape_writes_plain_text_as_it_is_and_the_rest_escaped() {
        let esc = |s: &str, attr| {
            let mut out = Vec::new();
            escape(&mut out, s, attr).map(|()| String::from_utf8(out).unwrap())
        };
        assert_eq!(
            esc("dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9", false).unwrap(),
            "dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9"
        );
        assert_eq!(
            esc("a<b>&'\"\t\n\rz", false).unwrap(),
            "a&lt;b&gt;&amp;'\"\t\n&#xD;z"
        );
        assert_eq!(
            esc("a<b>&'\"\t\n\rz", true).unwrap(),
            "a&lt;b&gt;&amp;&apos;&quot;&#x9;&#xA;&#xD;z"
        );
        assert_eq!(
            esc("caf\u{e9} \u{fffd}", true).unwrap(),
            "caf\u{e9} \u{fffd}"
        );
        assert!(esc("x\u{1}", false).is_err());
        assert!(esc("x\u{fffe}", false).is_err());
        assert!(esc("\u{ffff}", true).is_err());
    }

    /// The fallback writes what the element path writes for a bare
    /// condition.
    #[test]
    fn the_bare_stream_error_matches_the_element_path() {
        let w = StreamWriter::new(ns::JABBER_CLIENT);
        for c in [
            StreamErrorCondition::HostUnknown,
            StreamErrorCondition::PolicyViolation,
            StreamErrorCondition::UndefinedCondition,
        ] {
            let mut via = Vec::new();
            w.write_stream_error(&mut via, &StreamError::new(c.clone()))
                .unwrap();
            let mut bare = Vec::new();
            w.write_bare_stream_error(&mut bare, &c, &WriteError::InvalidChar(7));
            assert_eq!(String::from_utf8(bare), String::from_utf8(via));
            let ws = StreamWriter::with_framing(ns::JABBER_CLIENT, Framing::WebSocket);
            let mut via = Vec::new();
            ws.write_stream_error(&mut via, &StreamError::new(c.clone()))
                .unwrap();
            let mut bare = Vec::new();
            ws.write_bare_stream_error(&mut bare, &c, &WriteError::InvalidChar(7));
            assert_eq!(String::from_utf8(bare), String::from_utf8(via));
        }
    }
}
