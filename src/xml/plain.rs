//! The plain subset of XML the reader tokenises without rxml.
//!
//! Nearly every byte of a negotiation, and of most stanzas, is plain
//! markup: ASCII names, a few attributes in quotes, short text, no
//! character reference, no comment, no CDATA section. rxml spends about 130
//! instructions on each such byte (lexing, validating, copying into
//! tokens); this scanner recognises the plain subset in a few, and hands
//! the reader the same events rxml would (start, attributes, head close,
//! text, end), so that everything after tokenising (namespaces, limits,
//! the gate, the heap charged, the elements built) is the one code path
//! both take.
//!
//! What is taken:
//!
//! - names: ASCII `[A-Za-z_][A-Za-z0-9._-]*`, with at most one prefix;
//! - attribute values in `'` or `"`, and text: UTF-8, with the five
//!   predefined entities (`&lt;` `&gt;` `&amp;` `&quot;` `&apos;`), but no
//!   control character (text may hold tabs and line feeds; XML would turn
//!   them into spaces in a value, and normalise a carriage return
//!   anywhere), no character reference, no `]]>` in text, no U+FFFE or
//!   U+FFFF, and none of the values rxml refuses itself (see
//!   [`acceptable`]);
//! - whitespace inside tags: space, tab, line feed, carriage return.
//!
//! A whole top-level element must be at hand ([`element`]), or a whole
//! stream header with its optional XML declaration ([`header`]); every
//! name, value and text at most the parser's token limit, the element at
//! most the element limit, the depth at most [`MAX_DEPTH`]. Anything else
//! (a byte outside the subset, a cut, a mismatched end tag) returns
//! `None` and the reader gives the same bytes to rxml, which builds the
//! same thing or refuses it: nothing is consumed until the whole is known
//! to be plain. The `stream_reader` fuzz target checks that reading whole
//! (this path) and reading byte by byte (rxml's) agree.

use std::borrow::Cow;

/// One tokenising event, as rxml's `RawEvent` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token<'a> {
    /// `<prefix:name`.
    Open(Option<&'a str>, &'a str),
    /// `prefix:name='value'` (the value with its references expanded).
    Attribute(Option<&'a str>, &'a str, Cow<'a, str>),
    /// The `>` (or `/>`) ending a start tag.
    HeadClose,
    /// An end tag, or the end of an empty-element tag.
    Foot,
    /// Character data (whitespace included; references expanded).
    Text(Cow<'a, str>),
}

/// The deepest nesting taken (deeper elements are left to rxml).
pub(super) const MAX_DEPTH: usize = 16;

/// The limits the scanner keeps to: beyond them, rxml decides.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Longest name, value or text (rxml's token limit).
    pub max_token: usize,
    /// Longest element (or header).
    pub max_bytes: usize,
}

/// The XML declarations taken before a header: the forms this crate,
/// Prosody, ejabberd, libstrophe and slixmpp write.
const DECLARATIONS: &[&[u8]] = &[b"<?xml version='1.0'?>", b"<?xml version=\"1.0\"?>"];

/// The header start tag taken.
const STREAM_OPEN: &[u8] = b"<stream:stream";

/// A stream header at the start of `input`: an optional XML declaration,
/// optional whitespace, then `<stream:stream ...>` (not empty). Returns
/// its length once `each` has seen its tokens (`Open`, the attributes,
/// `HeadClose`); `None` before any call of `each` if it is not plain.
pub(super) fn header<E>(
    input: &[u8],
    bounds: Bounds,
    each: impl FnMut(Token<'_>) -> Result<(), E>,
) -> Option<Result<usize, E>> {
    let mut at = DECLARATIONS
        .iter()
        .find(|d| input.starts_with(d))
        .map_or(0, |d| d.len());
    at += input[at..].iter().take_while(|b| is_space(**b)).count();
    let after = input[at..].strip_prefix(STREAM_OPEN)?;
    if !matches!(after.first(), Some(b) if is_space(*b) || *b == b'>') {
        return None;
    }
    let mut scanner = Scanner {
        input,
        at: at + 1,
        bounds,
        expand: false,
    };
    // Checked first, emitted after.
    let (end, self_closing) = scanner.start_tag(&mut |_| Ok::<(), ()>(())).ok()??;
    if self_closing || end > bounds.max_bytes {
        return None;
    }
    let mut scanner = Scanner {
        input: &input[..end],
        at: at + 1,
        bounds,
        expand: true,
    };
    Some(scanner.start_tag(&mut { each }).map(|_| end))
}

/// A whole top-level element at the start of `input`, after optional
/// whitespace (given to `each` as text first). Returns its length (the
/// whitespace included) once `each` has seen all its tokens; `None`
/// before any call of `each` if it is not plain and whole.
pub(super) fn element<E>(
    input: &[u8],
    bounds: Bounds,
    mut each: impl FnMut(Token<'_>) -> Result<(), E>,
) -> Option<Result<usize, E>> {
    let len = Scanner {
        input,
        at: 0,
        bounds,
        expand: false,
    }
    .element(&mut |_| Ok::<(), ()>(()))
    .ok()??;
    if len > bounds.max_bytes {
        return None;
    }
    let mut scanner = Scanner {
        input: &input[..len],
        at: 0,
        bounds,
        expand: true,
    };
    Some(scanner.element(&mut each).map(|_| len))
}

struct Scanner<'a> {
    input: &'a [u8],
    at: usize,
    bounds: Bounds,
    /// Whether references are replaced in what the tokens carry (the
    /// first pass only checks, and leaves them: the five entities
    /// cannot make a value empty or the XML namespace name, so
    /// [`acceptable`] judges the raw value the same).
    expand: bool,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn skip_space(&mut self) -> usize {
        let n = self.input[self.at..]
            .iter()
            .take_while(|b| is_space(**b))
            .count();
        self.at += n;
        n
    }

    /// A name (`prefix:local` or `local`) at `at`.
    fn name(&mut self) -> Option<(Option<&'a str>, &'a str)> {
        let first = self.ncname()?;
        if self.peek() == Some(b':') {
            self.at += 1;
            let local = self.ncname()?;
            return Some((Some(first), local));
        }
        Some((None, first))
    }

    fn ncname(&mut self) -> Option<&'a str> {
        let rest = &self.input[self.at..];
        if !matches!(rest.first(), Some(b) if b.is_ascii_alphabetic() || *b == b'_') {
            return None;
        }
        let len = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            .count();
        if len > self.bounds.max_token {
            return None;
        }
        self.at += len;
        // ASCII: always UTF-8.
        std::str::from_utf8(&rest[..len]).ok()
    }

    /// The rest of a start tag after its `<`: its tokens to `each`.
    /// Returns where it ends and whether it was an empty-element tag.
    fn start_tag<E>(
        &mut self,
        each: &mut impl FnMut(Token<'a>) -> Result<(), E>,
    ) -> Result<Option<(usize, bool)>, E> {
        let Some((prefix, name)) = self.name() else {
            return Ok(None);
        };
        each(Token::Open(prefix, name))?;
        loop {
            let spaced = self.skip_space() > 0;
            match self.peek() {
                Some(b'>') => {
                    self.at += 1;
                    each(Token::HeadClose)?;
                    return Ok(Some((self.at, false)));
                }
                Some(b'/') => {
                    if self.input.get(self.at + 1) != Some(&b'>') {
                        return Ok(None);
                    }
                    self.at += 2;
                    each(Token::HeadClose)?;
                    return Ok(Some((self.at, true)));
                }
                Some(_) if spaced => {
                    let Some((prefix, name, value)) = self.attribute() else {
                        return Ok(None);
                    };
                    each(Token::Attribute(prefix, name, value))?;
                }
                _ => return Ok(None),
            }
        }
    }

    fn attribute(&mut self) -> Option<(Option<&'a str>, &'a str, Cow<'a, str>)> {
        let (prefix, name) = self.name()?;
        self.skip_space();
        if self.peek() != Some(b'=') {
            return None;
        }
        self.at += 1;
        self.skip_space();
        let quote = self.peek().filter(|q| matches!(q, b'\'' | b'"'))?;
        self.at += 1;
        let rest = &self.input[self.at..];
        let (len, references) = run(rest, Some(quote))?;
        if rest.get(len) != Some(&quote) || len > self.bounds.max_token {
            return None;
        }
        let value = expand(
            std::str::from_utf8(&rest[..len]).ok()?,
            references && self.expand,
        );
        self.at += len + 1;
        acceptable(prefix, name, &value).then_some((prefix, name, value))
    }

    /// Optional whitespace, then one whole element: its tokens to
    /// `each`. Returns its end.
    fn element<E>(
        &mut self,
        each: &mut impl FnMut(Token<'a>) -> Result<(), E>,
    ) -> Result<Option<usize>, E> {
        let spaces = self.skip_space();
        if spaces > 0 {
            // ASCII whitespace: always UTF-8.
            if let Ok(ws) = std::str::from_utf8(&self.input[..spaces]) {
                each(Token::Text(Cow::Borrowed(ws)))?;
            }
        }
        let mut open: [&[u8]; MAX_DEPTH] = [&[]; MAX_DEPTH];
        let mut depth: usize = 0;
        loop {
            // At a `<` here, always.
            if self.peek() != Some(b'<') {
                return Ok(None);
            }
            if self.input.get(self.at + 1) == Some(&b'/') {
                // An end tag: the name of the innermost open element.
                let Some(depth_now) = depth.checked_sub(1) else {
                    return Ok(None);
                };
                let name = open[depth_now];
                let rest = &self.input[self.at + 2..];
                if !rest.starts_with(name) {
                    return Ok(None);
                }
                self.at += 2 + name.len();
                self.skip_space();
                if self.peek() != Some(b'>') {
                    return Ok(None);
                }
                self.at += 1;
                depth = depth_now;
                each(Token::Foot)?;
            } else {
                if depth == MAX_DEPTH {
                    return Ok(None);
                }
                self.at += 1;
                let name_start = self.at;
                let Some((_, empty)) = self.start_tag(each)? else {
                    return Ok(None);
                };
                if empty {
                    each(Token::Foot)?;
                } else {
                    let name_len = self.input[name_start..]
                        .iter()
                        .take_while(|b| !is_space(**b) && !matches!(b, b'>' | b'/'))
                        .count();
                    open[depth] = &self.input[name_start..name_start + name_len];
                    depth += 1;
                }
            }
            if depth == 0 {
                return Ok(Some(self.at));
            }
            // Text up to the next tag.
            let rest = &self.input[self.at..];
            let Some((len, references)) = run(rest, None) else {
                return Ok(None);
            };
            if len > 0 {
                if len > self.bounds.max_token {
                    return Ok(None);
                }
                let Ok(text) = std::str::from_utf8(&rest[..len]) else {
                    return Ok(None);
                };
                self.at += len;
                each(Token::Text(expand(text, references && self.expand)))?;
            }
        }
    }
}

/// The predefined entities (XML 1.0 section 4.6), with what they stand for.
const ENTITIES: [(&[u8], &str); 5] = [
    (b"&lt;", "<"),
    (b"&gt;", ">"),
    (b"&amp;", "&"),
    (b"&quot;", "\""),
    (b"&apos;", "'"),
];

/// The length of the character data at the start of `rest` (up to a
/// `<`, or the `quote` ending an attribute value), and whether it holds
/// references; `None` if something in it is not plain: a reference other
/// than the five predefined entities, a control character (and in a
/// value a tab or a line feed, which XML turns into spaces), a carriage
/// return, `]]>` in text, U+FFFE or U+FFFF. Other bytes above 0x7F are
/// taken: the caller checks that the run is UTF-8.
fn run(rest: &[u8], quote: Option<u8>) -> Option<(usize, bool)> {
    let mut i = 0;
    let mut references = false;
    loop {
        // Most bytes need no look: one table look-up each.
        i += rest[i..]
            .iter()
            .position(|b| LOOK[*b as usize])
            .unwrap_or(rest.len() - i);
        let Some(&b) = rest.get(i) else {
            break;
        };
        match b {
            b'<' => break,
            _ if Some(b) == quote => break,
            b'&' => {
                let (entity, _) = ENTITIES.iter().find(|(e, _)| rest[i..].starts_with(e))?;
                references = true;
                i += entity.len();
                continue;
            }
            b'\t' | b'\n' if quote.is_none() => {}
            0..=0x1f | 0x7f => return None,
            b']' if quote.is_none() && rest[i..].starts_with(b"]]>") => return None,
            0xef if matches!(rest.get(i + 1..i + 3), Some([0xbf, 0xbe | 0xbf])) => return None,
            _ => {}
        }
        i += 1;
    }
    Some((i, references))
}

/// The bytes [`run`] looks at: markup, quotes, `]`, controls, DEL and
/// 0xEF (U+FFFE and U+FFFF begin with it).
const LOOK: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'<' as usize] = true;
    t[b'&' as usize] = true;
    t[b'\'' as usize] = true;
    t[b'"' as usize] = true;
    t[b']' as usize] = true;
    t[0x7f] = true;
    t[0xef] = true;
    t
};

/// `text` with its predefined entities replaced (see [`run`]).
fn expand(text: &str, references: bool) -> Cow<'_, str> {
    if !references {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match ENTITIES
            .iter()
            .find(|(e, _)| rest.as_bytes().starts_with(e))
        {
            Some((entity, c)) => {
                out.push_str(c);
                rest = &rest[entity.len()..];
            }
            // `run` let no other `&` through.
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The XML namespace name, which rxml lets only `xml` bind.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Whether rxml itself would take this attribute (Namespaces in XML 1.0
/// section 3: `xmlns:xmlns` and `xmlns:xml` are reserved, the XML
/// namespace name is `xml`'s alone, a prefix is never undeclared). The
/// reader checks the rest, on both paths.
fn acceptable(prefix: Option<&str>, name: &str, value: &str) -> bool {
    match prefix {
        Some("xmlns") => !matches!(name, "xml" | "xmlns") && !value.is_empty() && value != XML_NS,
        _ => value != XML_NS,
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        max_token: 8192,
        max_bytes: 1 << 20,
    };

    fn tokens(input: &[u8]) -> Option<(usize, Vec<String>)> {
        let mut out = Vec::new();
        let len = element(input, BOUNDS, |t| {
            out.push(format!("{t:?}"));
            Ok::<(), ()>(())
        })?
        .ok()?;
        Some((len, out))
    }

    #[test]
    fn a_plain_element_is_tokenised_as_rxml_would() {
        let input = b" <iq type='set' id=\"b\"><bind xmlns='urn:xmpp:bind'><resource>a b</resource></bind><x/></iq><next/>";
        let (len, toks) = tokens(input).expect("plain");
        assert_eq!(&input[len..], b"<next/>");
        assert_eq!(
            toks,
            [
                "Text(\" \")",
                "Open(None, \"iq\")",
                "Attribute(None, \"type\", \"set\")",
                "Attribute(None, \"id\", \"b\")",
                "HeadClose",
                "Open(None, \"bind\")",
                "Attribute(None, \"xmlns\", \"urn:xmpp:bind\")",
                "HeadClose",
                "Open(None, \"resource\")",
                "HeadClose",
                "Text(\"a b\")",
                "Foot",
                "Foot",
                "Open(None, \"x\")",
                "HeadClose",
                "Foot",
                "Foot",
            ]
        );
    }

    #[test]
    fn anything_outside_the_subset_is_left_to_rxml() {
        for input in [
            &b"<m>a &#x31; b</m>"[..], // a character reference
            b"<m>a &nbsp; b</m>",      // an entity XML does not define
            b"<m>a & b</m>",           // a bare ampersand
            b"<m>caf\xc3(</m>",        // not UTF-8
            b"<m>\xef\xbf\xbe</m>",    // U+FFFE
            b"<m>\x7f</m>",            // DEL: left to rxml
            b"<m>a\x01</m>",           // a control character
            b"<m><![CDATA[x]]></m>",   // CDATA
            b"<m><!-- c --></m>",      // a comment
            b"<m>a\r\nb</m>",          // a line end XML normalises
            b"<m a='x\ty'/>",          // a tab in a value
            b"<m a='x\ny'/>",          // a line feed in a value
            b"<m a='x&#60;'/>",        // a reference in a value
            b"<m a='x'b='y'/>",        // no space between attributes
            b"<m a=x/>",               // no quotes
            b"<m>x</n>",               // a mismatched end tag
            b"<m><n></m></n>",         // crossed
            b"<m>x",                   // cut
            b"<m",                     // cut in the name
            b"<a:b:c/>",               // two colons
            b"<1a/>",                  // a bad name
            b"<m xmlns:p=''/>",        // undeclaring a prefix
            b"<m xmlns:xml='urn:x'/>", // the reserved prefixes
            b"<m xmlns:xmlns='urn:x'/>",
            b"<m xmlns='http://www.w3.org/XML/1998/namespace'/>",
            b"<m>]]></m>", // ']]>' in text
            b"</m>",       // an end tag first
            b"text<m/>",   // text first
        ] {
            assert!(
                tokens(input).is_none(),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn text_and_values_may_be_utf8_with_the_predefined_entities() {
        let input = "<m a='&lt;&apos;\u{e9}' b=\"'\">caf\u{e9} &amp; \u{1f339} &gt; ]]</m>";
        let (len, toks) = tokens(input.as_bytes()).expect("plain");
        assert_eq!(len, input.len());
        assert_eq!(
            toks,
            [
                "Open(None, \"m\")",
                "Attribute(None, \"a\", \"<'\u{e9}\")",
                "Attribute(None, \"b\", \"'\")",
                "HeadClose",
                "Text(\"caf\u{e9} & \u{1f339} > ]]\")",
                "Foot",
            ]
        );
    }

    #[test]
    fn the_bounds_hold() {
        let small = Bounds {
            max_token: 3,
            max_bytes: 12,
        };
        let ok = |i: &[u8], b| element(i, b, |_| Ok::<(), ()>(())).is_some();
        assert!(ok(b"<m>abc</m>", small));
        assert!(!ok(b"<m>abcd</m>", small)); // text over the token limit
        assert!(!ok(b"<mmmm/>", small)); // name over it
        assert!(!ok(b"<m a='abcd'/>", small)); // value over it
        assert!(!ok(
            b"<m>abc</m>  ",
            Bounds {
                max_bytes: 9,
                ..small
            }
        )); // element
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(!ok(deep.as_bytes(), BOUNDS));
        let deep = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(ok(deep.as_bytes(), BOUNDS));
    }

    /// The events a reader returns for `stream`, read whole (this path
    /// for what is plain) or byte by byte (rxml's, always).
    fn read(stream: &[u8], bytewise: bool) -> (Vec<crate::xml::StreamEvent>, usize) {
        use crate::xml::{Limits, StreamReader};
        let mut reader = StreamReader::new(Limits::default());
        let chunks: Vec<&[u8]> = match bytewise {
            true => stream.chunks(1).collect(),
            false => vec![stream],
        };
        let mut out = Vec::new();
        for chunk in chunks {
            let mut input = chunk;
            while let Some(ev) = reader.read(&mut input).expect("valid") {
                out.push(ev);
            }
        }
        (out, reader.plain_reads)
    }

    #[test]
    fn the_reader_builds_from_the_plain_path_what_it_builds_from_rxml() {
        let head = b"<?xml version='1.0'?><stream:stream from='example.org' id='x1' \
            version='1.0' xml:lang='en' xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams'>";
        let stanzas: &[&[u8]] = &[
            b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
              <mechanism>PLAIN</mechanism></mechanisms></stream:features>",
            b"<iq id='bind_1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
              <jid>juliet@example.org/balcony</jid></bind></iq>",
            b" \n<message to=\"romeo@example.net\" type='chat'><body>hi &gt; &#x31;</body></message>",
            "<message type='chat'><body>Gr\u{fc}\u{df}e &amp; \u{1f339}</body></message>".as_bytes(),
            b"<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' \
              node='https://x.example/n' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>",
            b"<x:q xmlns:x='urn:x' x:a='1' b='2'><x:r/>text</x:q>",
            b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        ];
        let mut stream = head.to_vec();
        for s in stanzas {
            stream.extend_from_slice(s);
        }
        let (whole, plain_reads) = read(&stream, false);
        assert_eq!(whole.len(), 1 + stanzas.len());
        let (bytewise, none) = read(&stream, true);
        assert_eq!(whole, bytewise);
        // The header and every stanza but the message came the plain way.
        assert_eq!((plain_reads, none), (stanzas.len(), 0));
        // And each was plain (but the first message: a character
        // reference).
        assert!(header(head, BOUNDS, |_| Ok::<(), ()>(())).is_some());
        for s in stanzas {
            let plain = element(s, BOUNDS, |_| Ok::<(), ()>(())).is_some();
            assert_eq!(
                plain,
                !s.windows(2).any(|w| w == b"&#"),
                "{}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn a_message_reader_takes_plain_messages_too() {
        use crate::xml::{Limits, MessageFault, ReadError, StreamEvent, StreamReader};
        let mut reader = StreamReader::for_messages(Limits::default());
        let open =
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.org' version='1.0'/>";
        let message =
            "<message xmlns='jabber:client' type='chat'><body>Gr\u{fc}\u{df}e</body></message>"
                .as_bytes();
        for m in [&open[..], message] {
            reader.push_message(m.len());
            let mut input = m;
            assert!(reader.read(&mut input).expect("valid").is_some());
            assert!(input.is_empty());
        }
        assert_eq!(reader.plain_reads, 2);
        // Two elements in one message are refused as from the parser.
        let two = b"<r xmlns='urn:xmpp:sm:3'/><presence/>";
        reader.push_message(two.len());
        let mut input = &two[..];
        assert!(matches!(
            reader.read(&mut input),
            Ok(Some(StreamEvent::Element(_)))
        ));
        assert_eq!(
            reader.read(&mut input),
            Err(ReadError::Message(MessageFault::Several))
        );
    }

    #[test]
    fn headers() {
        let mut seen = Vec::new();
        let input = b"<?xml version='1.0'?><stream:stream to='example.org' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><x/>";
        let len = header(input, BOUNDS, |t| {
            seen.push(format!("{t:?}"));
            Ok::<(), ()>(())
        })
        .expect("plain")
        .expect("no error");
        assert_eq!(&input[len..], b"<x/>");
        assert_eq!(seen.len(), 7);
        assert_eq!(seen[0], "Open(Some(\"stream\"), \"stream\")");
        assert_eq!(seen[3], "Attribute(Some(\"xml\"), \"lang\", \"en\")");
        let plain = |i: &[u8]| header(i, BOUNDS, |_| Ok::<(), ()>(())).is_some();
        assert!(plain(
            b"<?xml version=\"1.0\"?>\n<stream:stream xmlns='jabber:client'>"
        ));
        assert!(plain(b"<stream:stream xmlns='jabber:client'>"));
        // Left to rxml: another declaration, a self-closing header,
        // another name, a cut.
        assert!(!plain(
            b"<?xml version='1.0' encoding='UTF-8'?><stream:stream>"
        ));
        assert!(!plain(b"<stream:stream xmlns='jabber:client'/>"));
        assert!(!plain(b"<stream xmlns='http://etherx.jabber.org/streams'>"));
        assert!(!plain(b"<stream:streams>"));
        assert!(!plain(b"<stream:stream xmlns='jabber:client'"));
    }
}
