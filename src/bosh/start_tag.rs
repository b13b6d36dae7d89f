//! The `<body ...>` start tag read by hand: the fast path of
//! [`BodyReader`](super::body::BodyReader).
//!
//! Every BOSH request and response is one `<body/>` whose start tag carries
//! the session's attributes (`rid`, `sid`, `ack`...). Reading that tag
//! with the XML parser and building it as an element costs more than the
//! payloads it wraps in a negotiation. This scanner reads the start tags
//! that BOSH peers write (Strophe.js, xmpp.js, Prosody, ours): plain ASCII
//! attribute values without entity or character references, the httpbind
//! default namespace and the `xmpp` and `stream` prefixes bound to their
//! usual namespaces. It answers `None` for anything else, which does not
//! mean the tag is wrong: the caller then reads the body with the XML
//! parser, which decides. So the scanner never accepts what the parser
//! would refuse, and never has to say why something is refused.

use super::body::{NS_HTTPBIND, NS_XBOSH};
use crate::ns;

/// One attribute of the tag: its namespace (resolved) and name, and its
/// value exactly as written (no reference, no character to normalise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    pub ns: &'static str,
    pub name: &'a str,
    pub value: &'a str,
}

/// Most attributes the scanner reads on one tag (more: the parser reads
/// the tag). Bodies carry at most about twenty.
const MAX_ATTRS: usize = 24;

/// What an attribute of the tag is, decided once as it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No prefix.
    Plain,
    /// `xmlns='...'` or `xmlns:p='...'` (already checked).
    Declaration,
    /// `xml:lang`.
    Lang,
    /// `xmpp:...` (the prefix must be declared).
    Xmpp,
}

/// One attribute as byte ranges of the tag (small: tags longer than
/// 64 KiB go to the parser, and the tag is returned by value).
#[derive(Debug, Clone, Copy)]
struct Raw {
    kind: Kind,
    /// Start of the written name, start of the local name, end of the name.
    name: [u16; 3],
    /// Start and end of the value.
    value: [u16; 2],
}

impl Raw {
    const EMPTY: Raw = Raw {
        kind: Kind::Plain,
        name: [0; 3],
        value: [0; 2],
    };
}

/// A start tag the scanner read (nothing allocated: it is read for every
/// request and response).
#[derive(Debug)]
pub(crate) struct StartTag<'a> {
    /// The tag's text.
    tag: &'a str,
    raw: [Raw; MAX_ATTRS],
    /// How many of `raw` there are.
    count: usize,
    /// `<body .../>`: nothing inside.
    pub empty: bool,
    /// Bytes of the tag, up to and including its `>`.
    pub len: usize,
}

impl<'a> StartTag<'a> {
    /// The attributes other than namespace declarations, in document
    /// order.
    pub fn attrs(&self) -> impl Iterator<Item = Attr<'a>> + '_ {
        let tag = self.tag;
        self.raw[..self.count].iter().filter_map(move |r| {
            let ns = match r.kind {
                Kind::Declaration => return None,
                Kind::Plain => "",
                Kind::Lang => ns::XML,
                Kind::Xmpp => NS_XBOSH,
            };
            Some(Attr {
                ns,
                name: slice(tag, r.name[1], r.name[2]),
                value: slice(tag, r.value[0], r.value[1]),
            })
        })
    }

    /// At least what the XML parser charges against
    /// [`Limits::max_element_heap`](crate::xml::Limits::max_element_heap)
    /// for this tag read as an element: the element, its attributes and
    /// declarations, and its attribute maps.
    pub fn heap_bound(&self) -> usize {
        use crate::xml::cost;
        let attrs: usize = self.raw[..self.count]
            .iter()
            .map(|r| {
                let value = slice(self.tag, r.value[0], r.value[1]);
                match r.kind {
                    Kind::Declaration => cost::declaration(value),
                    _ => cost::attribute(slice(self.tag, r.name[1], r.name[2]), value),
                }
            })
            .sum();
        // Attribute namespaces: none, xml, xmpp; one map more.
        cost::template("body", NS_HTTPBIND) + attrs + cost::attr_maps(4)
    }
}

/// `tag[from..to]` (ranges the scanner made, on ASCII boundaries).
fn slice(tag: &str, from: u16, to: u16) -> &str {
    &tag[usize::from(from)..usize::from(to)]
}

/// Reads `<body ...>` or `<body .../>` at the start of `bytes`. `None`: not
/// a tag this scanner reads (the XML parser must): an unusual but perhaps
/// well-formed one, or a broken one. `max_attributes` counts namespace
/// declarations too, and `max_token` bounds each name and value, as the
/// parser's limits do.
pub(crate) fn scan(bytes: &[u8], max_attributes: usize, max_token: usize) -> Option<StartTag<'_>> {
    if !bytes.starts_with(b"<body") {
        return None;
    }
    let mut i = b"<body".len();
    let mut raw = [Raw::EMPTY; MAX_ATTRS];
    // Each written name's length and first bytes, for the duplicate check.
    let mut keys = [0u64; MAX_ATTRS];
    let mut count = 0;
    let (mut httpbind, mut xmpp_declared, mut xmpp_used) = (false, false, false);
    let empty = loop {
        let spaces = skip_space(bytes, i);
        let spaced = spaces > i;
        i = spaces;
        match *bytes.get(i)? {
            b'>' => {
                i += 1;
                break false;
            }
            b'/' => {
                if bytes.get(i + 1) != Some(&b'>') {
                    return None;
                }
                i += 2;
                break true;
            }
            _ if !spaced => return None, // attributes are separated by space
            _ => {}
        }
        let start = i;
        let mut local = i;
        i = name_part(bytes, i)?;
        if bytes.get(i) == Some(&b':') {
            local = i + 1;
            i = name_part(bytes, local)?;
        }
        let name_end = i;
        if name_end - start >= max_token {
            return None;
        }
        i = skip_space(bytes, i);
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i = skip_space(bytes, i + 1);
        let quote = *bytes.get(i)?;
        if quote != b'\'' && quote != b'"' {
            return None;
        }
        let value_start = i + 1;
        let value_end = value_start + memchr::memchr(quote, &bytes[value_start..])?;
        let value = &bytes[value_start..value_end];
        // Every byte checked, without an early exit (a loop the compiler
        // can widen).
        if value.len() >= max_token || !value.iter().fold(true, |ok, b| ok & plain_value_byte(*b)) {
            return None;
        }
        let name = &bytes[start..name_end];
        let kind = match (
            &bytes[start..local.max(start + 1) - 1],
            &bytes[local..name_end],
        ) {
            _ if local == start => match name {
                b"xmlns" if value == NS_HTTPBIND.as_bytes() => {
                    httpbind = true;
                    Kind::Declaration
                }
                b"xmlns" => return None,
                _ => Kind::Plain,
            },
            (b"xmlns", b"xmpp") if value == NS_XBOSH.as_bytes() => {
                xmpp_declared = true;
                Kind::Declaration
            }
            (b"xmlns", b"stream") if value == ns::STREAM.as_bytes() => Kind::Declaration,
            (b"xml", b"lang") => Kind::Lang,
            (b"xmpp", _) => {
                xmpp_used = true;
                Kind::Xmpp
            }
            // Another declaration or prefix: the parser's.
            _ => return None,
        };
        // A duplicate written name is refused by the parser (with the only
        // prefixes allowed, no two expanded names can be equal otherwise).
        let key = name_key(name);
        for (n, k) in keys[..count].iter().enumerate() {
            let o = &raw[n];
            if *k == key && &bytes[usize::from(o.name[0])..usize::from(o.name[2])] == name {
                return None;
            }
        }
        if count + 1 >= max_attributes.min(MAX_ATTRS) {
            return None;
        }
        let at = |n: usize| u16::try_from(n).ok();
        raw[count] = Raw {
            kind,
            name: [at(start)?, at(local)?, at(name_end)?],
            value: [at(value_start)?, at(value_end)?],
        };
        keys[count] = key;
        count += 1;
        i = value_end + 1;
    };
    if !httpbind || (xmpp_used && !xmpp_declared) {
        return None;
    }
    // Every byte read is ASCII (names and values were checked, the rest
    // is markup): one check makes it text.
    let tag = std::str::from_utf8(&bytes[..i]).ok()?;
    Some(StartTag {
        tag,
        raw,
        count,
        empty,
        len: i,
    })
}

/// A written name's length and first seven bytes, as one number (equal
/// names have equal keys).
fn name_key(name: &[u8]) -> u64 {
    let mut first = [0u8; 8];
    let n = name.len().min(7);
    first[..n].copy_from_slice(&name[..n]);
    first[7] = name.len().min(255) as u8;
    u64::from_le_bytes(first)
}

/// The index after the spaces from `i`.
fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| is_space(*b)) {
        i += 1;
    }
    i
}

/// The index after one part of a name (ASCII name characters) from
/// `start`; `None` if none starts there.
fn name_part(bytes: &[u8], start: usize) -> Option<usize> {
    let first = *bytes.get(start)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let mut i = start + 1;
    while bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        i += 1;
    }
    Some(i)
}

/// A byte an attribute value may hold as it is: printable ASCII, without
/// the `<` the parser refuses and the `&` of a reference. Tabs and line
/// ends (which the parser normalises to spaces) and everything else send
/// the tag to the parser.
fn plain_value_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'<' && b != b'&'
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "xmlns='http://jabber.org/protocol/httpbind'";

    fn names(tag: &StartTag<'_>) -> Vec<(&'static str, String, String)> {
        tag.attrs()
            .map(|a| (a.ns, a.name.to_owned(), a.value.to_owned()))
            .collect()
    }

    #[test]
    fn reads_the_tags_peers_write() {
        let strophe = "<body rid='2805432417' xmlns='http://jabber.org/protocol/httpbind' to='localhost' xml:lang='en' wait='60' hold='1' content='text/xml; charset=utf-8' ver='1.6' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>";
        let tag = scan(strophe.as_bytes(), 64, 8192).unwrap();
        assert!(tag.empty);
        assert_eq!(tag.len, strophe.len());
        let attrs = names(&tag);
        assert!(attrs.contains(&(NS_XBOSH, "version".into(), "1.0".into())));
        assert!(attrs.contains(&(ns::XML, "lang".into(), "en".into())));
        assert!(attrs.contains(&("", "content".into(), "text/xml; charset=utf-8".into())));
        assert_eq!(attrs.len(), 8, "{attrs:?}");

        let prosody = "<body xmlns:stream=\"http://etherx.jabber.org/streams\" xmlns=\"http://jabber.org/protocol/httpbind\"><message/></body>";
        let tag = scan(prosody.as_bytes(), 64, 8192).unwrap();
        assert!(!tag.empty);
        assert_eq!(&prosody[tag.len..], "<message/></body>");
        assert_eq!(tag.attrs().count(), 0);
    }

    #[test]
    fn leaves_everything_unusual_to_the_parser() {
        for tag in [
            format!("<body rid='1' {H}"),                  // unfinished
            format!("<body rid='1'{H}/>"),                 // no space between attributes
            format!("<body rid='1' rid='2' {H}/>"),        // duplicate
            format!("<body rid='&#49;' {H}/>"),            // a reference
            format!("<body sid='a\tb' {H}/>"),             // normalised whitespace
            format!("<body sid='caf\u{e9}' {H}/>"),        // not ASCII
            format!("<body sid='a<b' {H}/>"),              // refused by XML
            format!("<body rid=1 {H}/>"),                  // unquoted
            format!("<body rid='1\" {H}/>"),               // mismatched quotes
            "<body rid='1'/>".to_owned(),                  // no namespace
            "<body xmlns='urn:other'/>".to_owned(),        // another namespace
            format!("<body {H} xmlns:x='urn:x'/>"),        // another prefix
            format!("<body {H} xmlns:xmpp='urn:other'/>"), // xmpp rebound
            format!("<body {H} xmpp:version='1.0'/>"),     // xmpp undeclared
            format!("<body {H} foo:bar='1'/>"),            // unbound prefix
            format!("<b:body xmlns:b='{NS_HTTPBIND}'/>"),  // prefixed body
            format!("<bodyx {H}/>"),                       // another name
            format!("<body {H} / >"),                      // broken empty tag
            format!("<body {H} 1a='x'/>"),                 // bad name
        ] {
            assert!(scan(tag.as_bytes(), 64, 8192).is_none(), "{tag}");
        }
        // Limits: over them, the parser decides (and refuses).
        let tag = format!("<body rid='1' sid='s' {H}/>");
        // (at the limit too: the parser's own count may differ by one)
        assert!(scan(tag.as_bytes(), 4, 8192).is_some());
        assert!(scan(tag.as_bytes(), 3, 8192).is_none());
        assert!(scan(tag.as_bytes(), 64, 36).is_some());
        assert!(scan(tag.as_bytes(), 64, 35).is_none());
    }
}
