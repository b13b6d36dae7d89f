//! Top-level elements the reader takes without the XML parser.
//!
//! Some elements come in every negotiation or every few stanzas, in one
//! exact form, and the parser spends more on them than a short stanza
//! costs: stream management's `<r/>` and `<a h/>`, and the SASL steps
//! whose only content is base64 (`<auth mechanism>`, `<challenge>`,
//! `<response>`, `<success>`, in RFC 6120's namespace, and SASL2's
//! `<challenge>` and `<response>`), where rxml looks at each byte of the
//! payload three times (lexing, validating, copying).
//!
//! Only the exact bytes this crate and Prosody write are taken:
//! `xmlns` first in single quotes, no other attribute (but the
//! mechanism of `<auth/>`), no space, no prefix, nothing but base64 in
//! the text, and the whole element in the input at hand. Each declares
//! its own namespace and is closed, so the parser's state is the same
//! whether it saw them or not. Any other form (double quotes, spaces, a
//! comment, an entity, a split read) goes through the parser, which
//! builds the same element or refuses the bytes; the `stream_reader`
//! fuzz target checks that reading whole and reading byte by byte agree.

use minidom::Element;

use crate::ns;

/// The element at the start of `input` if it is in one of the exact
/// forms, its namespace, and how many bytes it takes; `max_text`: the longest text the
/// parser would take as one token (a longer one is left to it, to fail).
pub(super) fn take(input: &[u8], max_text: usize) -> Option<(usize, Element, &'static str)> {
    match input.get(1)? {
        b'r' | b'a' if input.get(2) == Some(&b' ') => sm(input),
        _ => sasl(input, max_text),
    }
}

/// `<r xmlns='urn:xmpp:sm:3'/>` and `<a xmlns='urn:xmpp:sm:3' h='N'/>`.
fn sm(input: &[u8]) -> Option<(usize, Element, &'static str)> {
    const R: &[u8] = b"<r xmlns='urn:xmpp:sm:3'/>";
    const A: &[u8] = b"<a xmlns='urn:xmpp:sm:3' h='";
    if input.starts_with(R) {
        return Some((R.len(), super::known::element("r", ns::SM)?, ns::SM));
    }
    let rest = input.strip_prefix(A)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=10).contains(&digits) || rest.get(digits..digits + 3) != Some(b"'/>") {
        return None;
    }
    let h = std::str::from_utf8(&rest[..digits]).ok()?;
    // A value the parser would keep as it is: no leading zero games,
    // within u32 (anything else is the parser's and the role's to judge).
    if (digits > 1 && h.starts_with('0')) || h.parse::<u32>().is_err() {
        return None;
    }
    let mut el = super::known::element("a", ns::SM)?;
    el.set_attr(rxml::Namespace::NONE, rxml::NcName::try_from("h").ok()?, h);
    Some((A.len() + digits + 3, el, ns::SM))
}

/// The SASL steps: name, namespace, and whether a `mechanism` follows
/// the namespace.
const SASL_FORMS: &[(&str, &str, bool)] = &[
    ("challenge", ns::SASL, false),
    ("response", ns::SASL, false),
    ("success", ns::SASL, false),
    ("auth", ns::SASL, true),
    ("challenge", ns::SASL2, false),
    ("response", ns::SASL2, false),
];

/// The longest mechanism name taken (SASL names are at most 20
/// characters, RFC 4422 section 3.1).
const MAX_MECHANISM: usize = 20;

fn sasl(input: &[u8], max_text: usize) -> Option<(usize, Element, &'static str)> {
    let rest = input.strip_prefix(b"<")?;
    SASL_FORMS.iter().find_map(|&(name, ns, mechanism)| {
        let (rest_len, el) = sasl_form(rest, name, ns, mechanism, max_text)?;
        Some((input.len() - rest_len, el, ns))
    })
}

/// One form at `rest` (after the `<`): the element and the length of
/// what follows it.
fn sasl_form(
    rest: &[u8],
    name: &str,
    ns: &str,
    mechanism: bool,
    max_text: usize,
) -> Option<(usize, Element)> {
    let rest = rest
        .strip_prefix(name.as_bytes())?
        .strip_prefix(b" xmlns='")?
        .strip_prefix(ns.as_bytes())?
        .strip_prefix(b"'")?;
    let (mechanism, rest) = if mechanism {
        let rest = rest.strip_prefix(b" mechanism='")?;
        let len = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')
            .count();
        if !(1..=MAX_MECHANISM).contains(&len) {
            return None;
        }
        let (m, rest) = rest.split_at(len);
        (Some(m), rest.strip_prefix(b"'")?)
    } else {
        (None, rest)
    };
    let (text, rest) = if let Some(rest) = rest.strip_prefix(b"/>") {
        (&[][..], rest)
    } else {
        let rest = rest.strip_prefix(b">")?;
        let len = rest
            .iter()
            .position(|b| !BASE64[*b as usize])
            .unwrap_or(rest.len());
        if len > max_text {
            return None;
        }
        let (text, rest) = rest.split_at(len);
        let rest = rest
            .strip_prefix(b"</")?
            .strip_prefix(name.as_bytes())?
            .strip_prefix(b">")?;
        (text, rest)
    };
    let mut el = super::known::element(name, ns)?;
    if let Some(m) = mechanism {
        // ASCII letters, digits, '-' and '_': UTF-8 and a valid value.
        let m = std::str::from_utf8(m).ok()?;
        el.set_attr(
            rxml::Namespace::NONE,
            rxml::NcName::try_from("mechanism").ok()?,
            m,
        );
    }
    if !text.is_empty() {
        el.append_text(std::str::from_utf8(text).ok()?);
    }
    Some((rest.len(), el))
}

/// The bytes of base64 text (RFC 4648 section 4, with its padding).
const BASE64: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric() || matches!(b as u8, b'+' | b'/' | b'=');
        b += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{Limits, StreamEvent, StreamReader};

    const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

    /// The elements a reader returns for `body` after a header and a
    /// first element (so that the reader is at rest), reading it whole
    /// or byte by byte (which defeats every shortcut).
    fn read(body: &[u8], bytewise: bool) -> Vec<Element> {
        let mut reader = StreamReader::new(Limits::default());
        let mut all = HEADER.to_vec();
        all.extend_from_slice(b"<presence/>");
        all.extend_from_slice(body);
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = if bytewise {
            all.chunks(1).collect()
        } else {
            vec![&all[..HEADER.len() + 11], &all[HEADER.len() + 11..]]
        };
        for chunk in chunks {
            let mut input = chunk;
            while let Some(ev) = reader.read(&mut input).expect("valid") {
                if let StreamEvent::Element(el) = ev {
                    out.push(el);
                }
            }
            assert!(input.is_empty());
        }
        out.remove(0);
        out
    }

    #[test]
    fn the_exact_forms_read_as_the_parser_reads_them() {
        let bodies: &[&[u8]] = &[
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>biwsbj1qdWxpZXQ=</auth>",
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'/>",
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>=</auth>",
            b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj12TmQ3NW9n</challenge>",
            b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></response>",
            b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj11VnR1==</success>",
            b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            b"<challenge xmlns='urn:xmpp:sasl:2'>cj12TmQ3</challenge>",
            b"<response xmlns='urn:xmpp:sasl:2'>Yz1iaXdz</response>",
            b"<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='42'/>",
        ];
        for body in bodies {
            let whole = read(body, false);
            assert!(!whole.is_empty());
            assert_eq!(whole, read(body, true), "{}", String::from_utf8_lossy(body));
            // And the shortcut took it.
            assert!(
                take(body, 8192).is_some(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn every_other_form_is_left_to_the_parser() {
        for body in [
            // Double quotes, a space, another attribute, a prefix.
            &b"<challenge xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\">cj12</challenge>"[..],
            b"<challenge  xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj12</challenge>",
            b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl' id='1'>cj12</challenge>",
            b"<sasl:challenge xmlns:sasl='urn:ietf:params:xml:ns:xmpp-sasl'>cj12</sasl:challenge>",
            // Text that is not only base64, an entity, a child.
            b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj 12</challenge>",
            b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj&#x31;2</challenge>",
            b"<success xmlns='urn:xmpp:sasl:2'><authorization-identifier/></success>",
            // SASL2's success and authenticate have children: never.
            b"<success xmlns='urn:xmpp:sasl:2'>abc</success>",
            // A wrong end tag, a missing mechanism, a long one, a cut.
            b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>abc</challenge>",
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>abc</auth>",
            b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='AAAAAAAAAAAAAAAAAAAAA'/>",
            b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>abc</respo",
            b"<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'/>",
        ] {
            assert!(
                take(body, 8192).is_none(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        // Text longer than a parser token: the parser's to refuse.
        let long = b"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>abcdefgh</response>";
        assert!(take(long, 7).is_none());
        assert!(take(long, 8).is_some());
    }
}
