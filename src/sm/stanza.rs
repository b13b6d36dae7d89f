//! [`SentStanza`]: a stanza kept for stream management, as bytes.

use std::borrow::Cow;
use std::fmt;

use minidom::Element;

use crate::framing::Framing;
use crate::xml::{Limits, StreamEvent, StreamReader, StreamWriter, WriteError};

/// A stanza sent under stream management and kept until the peer
/// acknowledges it: its XML as one standalone element, its namespace
/// declared on it (`<message xmlns='jabber:client' ...>`), the form a
/// WebSocket message carries and [`SmState`](super::SmState) stores.
///
/// The machines keep these bytes rather than the element: copying the
/// bytes they just wrote costs a small fraction of copying a tree, the
/// queue's byte bound
/// ([`SmSettings::max_unacked_bytes`](super::SmSettings::max_unacked_bytes))
/// is then what it holds, and retransmitting after a resume writes them
/// as they are. They come back to the host in the `Acked` and
/// `Undelivered` events: [`id`](Self::id) names the stanza (the host's
/// `id` attribute), [`to_element`](Self::to_element) rebuilds it.
///
/// `Debug` shows the size, never the content (a message body may be
/// private).
#[derive(Clone, PartialEq, Eq)]
pub struct SentStanza(Box<[u8]>);

impl SentStanza {
    /// The stanza `el`, as it would be kept: for a host that holds
    /// stanzas of a detached session in an
    /// [`SmParts`](super::SmParts). An element XML cannot carry (a name
    /// or text it cannot express) is an error.
    pub fn from_element(el: &Element) -> Result<Self, WriteError> {
        let mut out = Vec::new();
        standalone_writer().write_element(&mut out, el)?;
        Ok(Self(out.into_boxed_slice()))
    }

    /// Keeps what a writer of `framing` just wrote for `el` (`wire`):
    /// over TCP a stanza in the stream's content namespace carries no
    /// `xmlns` (the stream declares it), so the declaration goes in after
    /// its name; every other framing wrote the standalone form already.
    pub(crate) fn from_wire(wire: &[u8], el: &Element, writer: &StreamWriter) -> Self {
        let declared_by_stream = writer.framing() == Framing::Tcp
            && el.has_ns(writer.content_ns())
            && wire.first() == Some(&b'<');
        if !declared_by_stream {
            return Self(wire.into());
        }
        let ns = writer.content_ns().as_bytes();
        let at = 1 + el.name().len();
        let mut out = Vec::with_capacity(wire.len() + ns.len() + 9);
        out.extend_from_slice(&wire[..at]);
        out.extend_from_slice(b" xmlns='");
        out.extend_from_slice(ns);
        out.push(b'\'');
        out.extend_from_slice(&wire[at..]);
        Self(out.into_boxed_slice())
    }

    /// Reads one stanza's bytes (from a saved [`SmState`](super::SmState)):
    /// exactly one element within the default [`Limits`], kept in the
    /// standalone form whatever form it came in.
    pub(crate) fn read(bytes: &[u8]) -> Result<Self, String> {
        let el = parse(bytes)?;
        Self::from_element(&el).map_err(|e| e.to_string())
    }

    /// The stanza's XML: one element, its namespace declared on it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true: a stanza is at least `<x/>`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stanza as an element again. The bytes were written by the
    /// crate's writer or checked when read, so this fails only on a
    /// stanza put together by hand in an [`SmParts`](super::SmParts)
    /// that does not parse.
    pub fn to_element(&self) -> Result<Element, String> {
        parse(&self.0)
    }

    /// The element's name (`message`, `presence`, `iq`).
    pub fn name(&self) -> &str {
        let tag = &self.0[1.min(self.0.len())..];
        let end = tag
            .iter()
            .position(|&b| matches!(b, b' ' | b'/' | b'>'))
            .unwrap_or(tag.len());
        std::str::from_utf8(&tag[..end]).unwrap_or("")
    }

    /// Its `id` attribute, read from the start tag without parsing the
    /// whole stanza: the host's handle on which stanza this is.
    pub fn id(&self) -> Option<Cow<'_, str>> {
        let raw = attribute(&self.0, b"id")?;
        let raw = std::str::from_utf8(raw).ok()?;
        if !raw.contains('&') {
            return Some(Cow::Borrowed(raw));
        }
        // The writer escapes `&`, `<`, `>`, `'`, `"` and the whitespace
        // characters an attribute value would lose.
        let el = self.to_element().ok()?;
        el.attr("id").map(|s| Cow::Owned(s.to_owned()))
    }
}

impl fmt::Debug for SentStanza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentStanza")
            .field("name", &self.name())
            .field("bytes", &self.0.len())
            .finish()
    }
}

impl From<SentStanza> for Vec<u8> {
    fn from(s: SentStanza) -> Vec<u8> {
        s.0.into_vec()
    }
}

fn standalone_writer() -> StreamWriter {
    StreamWriter::with_framing(crate::ns::JABBER_CLIENT, Framing::WebSocket)
}

/// One standalone element, read as a WebSocket message is.
fn parse(bytes: &[u8]) -> Result<Element, String> {
    let mut reader = StreamReader::for_messages(Limits::default());
    reader.push_message(bytes.len());
    let mut input = bytes;
    match reader.read(&mut input) {
        Ok(Some(StreamEvent::Element(el))) if input.is_empty() => Ok(el),
        Ok(_) => Err("not one element".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The raw value of attribute `name` of the start tag at the head of
/// `xml`, as the crate's writer quotes it (single quotes; a quote in a
/// value is escaped).
fn attribute<'a>(xml: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut i = xml.iter().position(|&b| b == b' ')?;
    loop {
        // At a space before an attribute, or at the tag's end.
        while xml.get(i) == Some(&b' ') {
            i += 1;
        }
        let eq = i + xml[i..]
            .iter()
            .position(|&b| matches!(b, b'=' | b'>' | b'/'))?;
        if xml[eq] != b'=' {
            return None;
        }
        let quote = *xml.get(eq + 1)?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        let start = eq + 2;
        let end = start + xml[start..].iter().position(|&b| b == quote)?;
        if &xml[i..eq] == name {
            return Some(&xml[start..end]);
        }
        i = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> Element {
        Element::builder("message", "jabber:client")
            .attr(rxml::NcName::try_from("to").unwrap(), "romeo@example.net")
            .attr(rxml::NcName::try_from("id").unwrap(), id)
            .append(
                Element::builder("body", "jabber:client")
                    .append("hi")
                    .build(),
            )
            .build()
    }

    #[test]
    fn tcp_wire_bytes_get_the_namespace_the_stream_declared() {
        let el = message("m1");
        let writer = StreamWriter::new(crate::ns::JABBER_CLIENT);
        let mut wire = Vec::new();
        writer.write_element(&mut wire, &el).unwrap();
        assert!(!wire.windows(5).any(|w| w == b"xmlns"), "{wire:?}");
        let kept = SentStanza::from_wire(&wire, &el, &writer);
        assert_eq!(kept, SentStanza::from_element(&el).unwrap());
        assert_eq!(
            std::str::from_utf8(kept.as_bytes()).unwrap(),
            "<message xmlns='jabber:client' id='m1' to='romeo@example.net'><body>hi</body></message>"
        );
        assert_eq!(kept.to_element().unwrap(), el);
        assert_eq!(kept.name(), "message");
        assert_eq!(kept.id().as_deref(), Some("m1"));
    }

    #[test]
    fn websocket_wire_bytes_are_kept_as_they_are() {
        let el = message("m2");
        let writer = StreamWriter::with_framing(crate::ns::JABBER_CLIENT, Framing::WebSocket);
        let mut wire = Vec::new();
        writer.write_element(&mut wire, &el).unwrap();
        assert_eq!(
            SentStanza::from_wire(&wire, &el, &writer).as_bytes(),
            &wire[..]
        );
    }

    #[test]
    fn an_escaped_id_comes_back_unescaped() {
        let kept = SentStanza::from_element(&message("a'b&c<d")).unwrap();
        assert_eq!(kept.id().as_deref(), Some("a'b&c<d"));
        let none = SentStanza::from_element(
            &Element::builder("presence", "jabber:client")
                .attr(rxml::NcName::try_from("xid").unwrap(), "x")
                .build(),
        )
        .unwrap();
        assert_eq!(none.id(), None, "xid is not id");
        assert_eq!(none.name(), "presence");
    }

    #[test]
    fn debug_shows_no_content() {
        let kept = SentStanza::from_element(&message("secret-id")).unwrap();
        let shown = format!("{kept:?}");
        assert!(
            !shown.contains("hi") && !shown.contains("secret"),
            "{shown}"
        );
        assert!(shown.contains("message"), "{shown}");
    }
}
