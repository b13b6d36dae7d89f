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

/// A start tag the scanner read (nothing allocated: it is read for every
/// request and response).
#[derive(Debug)]
pub(crate) struct StartTag<'a> {
    /// The tag's text.
    tag: &'a str,
    /// Each attribute as byte ranges of `tag`: (end of prefix or 0, start
    /// of name, end of name, start of value, end of value). Small (tags
    /// longer than 64 KiB go to the parser): the tag is returned by value.
    raw: [[u16; 5]; MAX_ATTRS],
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
        self.raw[..self.count].iter().filter_map(|r| {
            let (prefix, name) = qname(self.tag, r);
            let ns = match prefix {
                None if name == "xmlns" => return None,
                Some("xmlns") => return None,
                None => "",
                Some("xml") => ns::XML,
                // `scan` let no other prefix through.
                _ => NS_XBOSH,
            };
            Some(Attr {
                ns,
                name,
                value: value(self.tag, r),
            })
        })
    }
}

impl StartTag<'_> {
    /// At least what the XML parser charges against
    /// [`Limits::max_element_heap`](crate::xml::Limits::max_element_heap)
    /// for this tag read as an element: the element, its attributes and
    /// declarations, and its attribute maps.
    pub fn heap_bound(&self) -> usize {
        use crate::xml::cost;
        let attrs: usize = self.raw[..self.count]
            .iter()
            .map(|r| match qname(self.tag, r) {
                (None, "xmlns") | (Some("xmlns"), _) => cost::declaration(value(self.tag, r)),
                (_, name) => cost::attribute(name, value(self.tag, r)),
            })
            .sum();
        // Attribute namespaces: none, xml, xmpp; one map more.
        cost::template("body", NS_HTTPBIND) + attrs + cost::attr_maps(4)
    }
}

/// The prefix and local name of attribute `r` of `tag`.
fn qname<'a>(tag: &'a str, r: &[u16; 5]) -> (Option<&'a str>, &'a str) {
    let [prefix_end, start, end, ..] = r.map(usize::from);
    if prefix_end == 0 {
        (None, &tag[start..end])
    } else {
        (Some(&tag[start..prefix_end]), &tag[prefix_end + 1..end])
    }
}

/// The value of attribute `r` of `tag`.
fn value<'a>(tag: &'a str, r: &[u16; 5]) -> &'a str {
    &tag[usize::from(r[3])..usize::from(r[4])]
}

/// The written name of attribute `r` of `tag`.
fn written_name<'a>(tag: &'a str, r: &[u16; 5]) -> &'a str {
    &tag[usize::from(r[1])..usize::from(r[2])]
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
    // (prefix end or 0, name start, name end, value start, value end): byte
    // ranges, turned into text once the whole tag is known to be ASCII.
    let mut raw = [[0u16; 5]; MAX_ATTRS];
    let mut count = 0;
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
        let mut prefix_end = 0;
        i = name_part(bytes, i)?;
        if bytes.get(i) == Some(&b':') {
            prefix_end = i;
            i = name_part(bytes, i + 1)?;
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
        let len = bytes[value_start..].iter().position(|b| *b == quote)?;
        let j = value_start + len;
        // Every byte checked, without an early exit (a loop the compiler
        // can widen).
        if !bytes[value_start..j]
            .iter()
            .fold(true, |ok, b| ok & plain_value_byte(*b))
        {
            return None;
        }
        if j - value_start >= max_token {
            return None;
        }
        if count + 1 >= max_attributes.min(MAX_ATTRS) {
            return None;
        }
        let at = |n: usize| u16::try_from(n).ok();
        raw[count] = [
            at(prefix_end)?,
            at(start)?,
            at(name_end)?,
            at(value_start)?,
            at(j)?,
        ];
        count += 1;
        i = j + 1;
    };
    // Every byte read is ASCII (names and values were checked, the rest
    // is markup): one check makes it text.
    let tag = std::str::from_utf8(&bytes[..i]).ok()?;
    let raw_used = &raw[..count];
    // A duplicate is refused by the parser (no two attributes of one
    // written name; with the only prefixes allowed below, no two of one
    // expanded name either).
    for (n, r) in raw_used.iter().enumerate() {
        let name = written_name(tag, r);
        if raw_used[..n].iter().any(|o| written_name(tag, o) == name) {
            return None;
        }
    }
    // Namespace declarations: the default one must be httpbind; `xmpp` and
    // `stream` may be declared to their usual namespaces; nothing else.
    let mut httpbind = false;
    let mut xmpp = false;
    for r in raw_used {
        let value = value(tag, r);
        match qname(tag, r) {
            (None, "xmlns") if value == NS_HTTPBIND => httpbind = true,
            (Some("xmlns"), "xmpp") if value == NS_XBOSH => xmpp = true,
            (Some("xmlns"), "stream") if value == ns::STREAM => {}
            (None, "xmlns") | (Some("xmlns"), _) => return None,
            _ => {}
        }
    }
    if !httpbind {
        return None;
    }
    // Prefixed attributes: `xml:lang`, and `xmpp:` when declared.
    for r in raw_used {
        match qname(tag, r) {
            (None, _) | (Some("xmlns"), _) | (Some("xml"), "lang") => {}
            (Some("xmpp"), _) if xmpp => {}
            _ => return None,
        }
    }
    Some(StartTag {
        tag,
        raw,
        count,
        empty,
        len: i,
    })
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
