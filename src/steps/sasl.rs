//! SASL negotiation elements (RFC 6120 section 6.4): `<auth/>`,
//! `<challenge/>`, `<response/>`, `<abort/>`, `<success/>`, `<failure/>`.

use minidom::Element;

use base64::Engine as _;

/// The zeroed-on-drop buffer of the payloads (re-exported: it is in this
/// module's public types).
pub use zeroize::Zeroizing;

use crate::ns;
use crate::sasl::{decode_secret_payload, encode_payload, AuthAttribute, SaslCondition, SaslError};
use crate::steps::name;
use crate::xml::{check_name, StreamWriter, WriteError};

/// A SASL element, decoded.
///
/// Payloads may carry a password (PLAIN's initial response) or a token:
/// they are held in buffers zeroed on drop, and `Debug` shows their length
/// only.
#[derive(Clone, PartialEq, Eq)]
pub enum SaslElement {
    /// `<auth mechanism='...'>`, with its initial response.
    Auth {
        /// The mechanism name.
        mechanism: String,
        /// `None` for an empty `<auth/>`, `Some(empty)` for `=`.
        initial_response: Option<Zeroizing<Vec<u8>>>,
    },
    /// `<challenge/>`.
    Challenge(Zeroizing<Vec<u8>>),
    /// `<response/>`.
    Response(Zeroizing<Vec<u8>>),
    /// `<abort/>`.
    Abort,
    /// `<success/>`, with its additional data.
    Success(Option<Zeroizing<Vec<u8>>>),
    /// `<failure/>`.
    Failure {
        /// The condition; `None` when the server sent none or an unknown
        /// one.
        condition: Option<SaslCondition>,
        /// The `<text/>`, if any.
        text: Option<String>,
    },
}

/// A payload's length, for `Debug`.
struct PayloadLen<'a>(Option<&'a [u8]>);

impl std::fmt::Debug for PayloadLen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("None"),
            Some(p) => write!(f, "<{} bytes>", p.len()),
        }
    }
}

impl std::fmt::Debug for SaslElement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &PayloadLen(initial_response.as_deref().map(|p| &p[..])),
                )
                .finish(),
            Self::Challenge(p) => f
                .debug_tuple("Challenge")
                .field(&PayloadLen(Some(p)))
                .finish(),
            Self::Response(p) => f
                .debug_tuple("Response")
                .field(&PayloadLen(Some(p)))
                .finish(),
            Self::Abort => f.write_str("Abort"),
            Self::Success(p) => f
                .debug_tuple("Success")
                .field(&PayloadLen(p.as_deref().map(|p| &p[..])))
                .finish(),
            Self::Failure { condition, text } => f
                .debug_struct("Failure")
                .field("condition", condition)
                .field("text", text)
                .finish(),
        }
    }
}

impl SaslElement {
    /// Decodes a SASL element. `None` when `el` is not in the SASL
    /// namespace or not one of its elements; `Some(Err)` (with
    /// `incorrect-encoding` or `invalid-mechanism`) when it is one but is
    /// malformed.
    pub fn parse(el: &Element) -> Option<Result<Self, SaslError>> {
        if !el.has_ns(ns::SASL) {
            return None;
        }
        // One text node (the usual case) is decoded in place; several are
        // joined first (into a copy zeroed on drop).
        let payload = || {
            let mut texts = el.texts();
            match (texts.next(), texts.next()) {
                (None, _) => decode_secret_payload(""),
                (Some(t), None) => decode_secret_payload(t),
                _ => decode_secret_payload(&Zeroizing::new(el.text())),
            }
        };
        Some(match el.name() {
            "auth" => match el.attr("mechanism") {
                Some(m) if !m.is_empty() => payload().map(|p| Self::Auth {
                    mechanism: m.to_owned(),
                    initial_response: p,
                }),
                _ => Err(SaslError::new(
                    SaslCondition::InvalidMechanism,
                    "auth without a mechanism",
                )),
            },
            "challenge" => payload().map(|p| Self::Challenge(p.unwrap_or_default())),
            "response" => payload().map(|p| Self::Response(p.unwrap_or_default())),
            "abort" => Ok(Self::Abort),
            "success" => payload().map(Self::Success),
            "failure" => {
                let mut condition = None;
                let mut text = None;
                for c in el.children().filter(|c| c.has_ns(ns::SASL)) {
                    if c.name() == "text" {
                        text = Some(c.text());
                    } else if condition.is_none() {
                        condition = SaslCondition::from_name(c.name());
                    }
                }
                Ok(Self::Failure { condition, text })
            }
            _ => return None,
        })
    }

    /// Writes the element to `out` as `writer` would write
    /// [`to_element`](Self::to_element), but without building it: the
    /// payload is base64-encoded straight into `out` (the base64 alphabet
    /// needs no escaping). A `<failure/>` with text goes through the
    /// element, and so does `<auth/>` when [`write_auth`] says so. The only
    /// elements that can fail are those with a text or mechanism name XML
    /// cannot carry; nothing is written then.
    pub fn write_to(&self, writer: &StreamWriter, out: &mut Vec<u8>) -> Result<(), WriteError> {
        let payload = match self {
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                let initial = initial_response.as_deref().map(Vec::as_slice);
                return write_auth(writer, out, mechanism, initial, &[]);
            }
            Self::Failure {
                condition,
                text: None,
            } => SaslPayload::Failure(*condition),
            Self::Failure { .. } => return writer.write_element(out, &self.to_element()),
            Self::Challenge(d) => SaslPayload::Challenge(d),
            Self::Response(d) => SaslPayload::Response(d),
            Self::Abort => SaslPayload::Abort,
            Self::Success(d) => SaslPayload::Success(d.as_deref().map(Vec::as_slice)),
        };
        payload.write(out);
        Ok(())
    }

    /// Builds the element.
    pub fn to_element(&self) -> Element {
        let with_payload = |n: &str, data: &[u8]| {
            Element::builder(n, ns::SASL)
                .append(encode_payload(data))
                .build()
        };
        match self {
            Self::Auth {
                mechanism,
                initial_response,
            } => {
                let mut el = Element::builder("auth", ns::SASL)
                    .attr(name("mechanism"), mechanism.as_str())
                    .build();
                if let Some(data) = initial_response {
                    el.append_text(encode_payload(data));
                }
                el
            }
            // RFC 6120's `=` is for an empty initial response and empty
            // additional data with success; an empty challenge or
            // response is an empty element (Strophe.js cannot decode `=`).
            Self::Challenge(d) if d.is_empty() => Element::builder("challenge", ns::SASL).build(),
            Self::Challenge(d) => with_payload("challenge", d),
            Self::Response(d) if d.is_empty() => Element::builder("response", ns::SASL).build(),
            Self::Response(d) => with_payload("response", d),
            Self::Abort => Element::builder("abort", ns::SASL).build(),
            Self::Success(None) => Element::builder("success", ns::SASL).build(),
            Self::Success(Some(d)) => with_payload("success", d),
            Self::Failure { condition, text } => {
                let mut el = Element::builder("failure", ns::SASL).build();
                if let Some(c) = condition {
                    el.append_child(Element::builder(c.as_str(), ns::SASL).build());
                }
                if let Some(t) = text {
                    el.append_child(
                        Element::builder("text", ns::SASL)
                            .append(t.as_str())
                            .build(),
                    );
                }
                el
            }
        }
    }
}

/// A SASL element without text: what the machines write on the hot
/// path. Writing it cannot fail (the names are fixed, the payloads
/// base64), so it needs no element and no error.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SaslPayload<'a> {
    /// `<challenge/>` (an empty payload writes `<challenge/>`).
    Challenge(&'a [u8]),
    /// `<response/>` (an empty payload writes `<response/>`).
    Response(&'a [u8]),
    /// `<abort/>`.
    Abort,
    /// `<success/>`, with its additional data.
    Success(Option<&'a [u8]>),
    /// `<failure/>` with its condition, no text.
    Failure(Option<SaslCondition>),
}

impl SaslPayload<'_> {
    /// Appends the element as [`StreamWriter`] writes the built one.
    pub(crate) fn write(self, out: &mut Vec<u8>) {
        let (name, payload) = match self {
            Self::Challenge(d) => ("challenge", (!d.is_empty()).then_some(d)),
            Self::Response(d) => ("response", (!d.is_empty()).then_some(d)),
            Self::Abort => ("abort", None),
            Self::Success(d) => ("success", d),
            Self::Failure(None) => ("failure", None),
            Self::Failure(Some(c)) => {
                write_open(out, "failure", None);
                out.extend_from_slice(b"><");
                out.extend_from_slice(c.as_str().as_bytes());
                out.extend_from_slice(b"/></failure>");
                return;
            }
        };
        write_parts(out, name, None, payload);
    }
}

/// Writes `<name xmlns=SASL [mechanism='attr']>base64(payload)</name>`
/// (`/>` without a payload, `=` for an empty one). `name` and `attr` need
/// no escaping; nor does the base64 alphabet.
fn write_parts(out: &mut Vec<u8>, name: &str, attr: Option<&str>, payload: Option<&[u8]>) {
    write_open(out, name, attr);
    match payload {
        None => out.extend_from_slice(b"/>"),
        Some(data) => {
            out.push(b'>');
            if data.is_empty() {
                out.push(b'=');
            } else {
                let start = out.len();
                out.resize(
                    start + base64::encoded_len(data.len(), true).unwrap_or(0),
                    0,
                );
                let n = base64::engine::general_purpose::STANDARD
                    .encode_slice(data, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + n);
            }
            out.extend_from_slice(b"</");
            out.extend_from_slice(name.as_bytes());
            out.push(b'>');
        }
    }
}

/// `<name xmlns=SASL [mechanism='attr']`, unclosed.
fn write_open(out: &mut Vec<u8>, name: &str, attr: Option<&str>) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" xmlns='");
    out.extend_from_slice(ns::SASL.as_bytes());
    out.push(b'\'');
    if let Some(m) = attr {
        out.extend_from_slice(b" mechanism='");
        out.extend_from_slice(m.as_bytes());
        out.push(b'\'');
    }
}

/// Writes `<auth/>` as [`auth`] builds it, directly when there are no
/// extra attributes (every mechanism but X-OAUTH2) and the name is in the
/// RFC 4422 alphabet.
pub fn write_auth(
    writer: &StreamWriter,
    out: &mut Vec<u8>,
    mechanism: &str,
    initial_response: Option<&[u8]>,
    extra: &[AuthAttribute],
) -> Result<(), WriteError> {
    if extra.is_empty() && is_mechanism_name(mechanism) {
        write_parts(out, "auth", Some(mechanism), initial_response);
        return Ok(());
    }
    // A mechanism's attribute names are checked before `auth` builds
    // them: a bad one is an error, not a panic.
    for a in extra {
        check_name(a.name)?;
    }
    writer.write_element(
        out,
        &auth(mechanism, initial_response.map(<[u8]>::to_vec), extra),
    )
}

/// RFC 4422 section 3.1: 1 to 20 of `A-Z 0-9 - _` (lower case accepted
/// too: such names need no escaping either).
fn is_mechanism_name(name: &str) -> bool {
    (1..=20).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Builds `<auth/>` with the extra attributes a mechanism asks for
/// (Google's X-OAUTH2 `auth:service`).
pub fn auth(
    mechanism: &str,
    initial_response: Option<Vec<u8>>,
    extra: &[AuthAttribute],
) -> Element {
    let mut el = SaslElement::Auth {
        mechanism: mechanism.to_owned(),
        initial_response: initial_response.map(Zeroizing::new),
    }
    .to_element();
    for a in extra {
        el.attrs_mut().insert(
            rxml::Namespace::from(a.namespace.to_owned()),
            name(a.name),
            a.value.to_owned(),
        );
    }
    el
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty challenge is `<challenge/>`, never RFC 6120's `=` (which
    /// is for the initial response and success's additional data only):
    /// Strophe.js's EXTERNAL hung on `<challenge>=</challenge>`.
    #[test]
    fn an_empty_challenge_is_an_empty_element() {
        let mut out = Vec::new();
        SaslPayload::Challenge(b"").write(&mut out);
        assert_eq!(
            out,
            b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
        );
        let mut out = Vec::new();
        SaslPayload::Success(Some(b"")).write(&mut out);
        assert_eq!(
            out,
            b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</success>"
        );
        let el = SaslElement::Challenge(Vec::new().into()).to_element();
        assert_eq!(el.text(), "");
    }

    /// The direct writer and the element path give the same bytes.
    #[test]
    fn write_to_matches_the_element_path() {
        let writer = StreamWriter::new(ns::JABBER_CLIENT);
        let payloads: [&[u8]; 5] = [b"", b"a", b"ab", b"abc", &[0xff; 77]];
        let mut cases = vec![
            SaslElement::Abort,
            SaslElement::Success(None),
            SaslElement::Failure {
                condition: Some(SaslCondition::NotAuthorized),
                text: Some("<&'\">".into()),
            },
            SaslElement::Failure {
                condition: Some(SaslCondition::TemporaryAuthFailure),
                text: None,
            },
            SaslElement::Failure {
                condition: None,
                text: None,
            },
        ];
        for p in payloads {
            cases.extend([
                SaslElement::Challenge(p.to_vec().into()),
                SaslElement::Response(p.to_vec().into()),
                SaslElement::Success(Some(p.to_vec().into())),
            ]);
            for m in ["SCRAM-SHA-1", "X-OAUTH2", "a'b", "", &"L".repeat(21)] {
                cases.extend([
                    SaslElement::Auth {
                        mechanism: m.into(),
                        initial_response: Some(p.to_vec().into()),
                    },
                    SaslElement::Auth {
                        mechanism: m.into(),
                        initial_response: None,
                    },
                ]);
            }
        }
        for el in cases {
            let mut direct = b"prefix".to_vec();
            el.write_to(&writer, &mut direct).unwrap();
            let mut via = b"prefix".to_vec();
            writer.write_element(&mut via, &el.to_element()).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&direct),
                String::from_utf8_lossy(&via),
                "{el:?}"
            );
            // And it reads back.
            let parsed: Element = std::str::from_utf8(&direct[6..]).unwrap().parse().unwrap();
            // (An empty <response/> reads as an empty payload; an
            // unnamed <auth/> is refused.)
            let lossy = match &el {
                SaslElement::Response(d) | SaslElement::Challenge(d) => d.is_empty(),
                SaslElement::Auth { mechanism, .. } => mechanism.is_empty(),
                _ => false,
            };
            if !lossy {
                assert_eq!(SaslElement::parse(&parsed).unwrap().unwrap(), el);
            }
        }
    }

    /// `write_auth` writes what `auth` builds, with and without extra
    /// attributes (X-OAUTH2's `auth:service`, seed 003's shape).
    #[test]
    fn write_auth_matches_auth() {
        let writer = StreamWriter::new(ns::JABBER_CLIENT);
        // Google's `auth:service='oauth2'`, spelled out: the attribute
        // support is not Google's, only this instance is (`google` feature).
        let service = AuthAttribute {
            namespace: "http://www.google.com/talk/protocol/auth",
            name: "service",
            value: "oauth2",
        };
        let extras: [&[AuthAttribute]; 2] = [&[], &[service]];
        for extra in extras {
            for (mech, initial) in [
                ("X-OAUTH2", Some(&b"\0user\0token"[..])),
                ("PLAIN", Some(&b""[..])),
                ("EXTERNAL", None),
                ("a'b", Some(&b"x"[..])),
            ] {
                let mut direct = Vec::new();
                write_auth(&writer, &mut direct, mech, initial, extra).unwrap();
                let mut via = Vec::new();
                let el = auth(mech, initial.map(<[u8]>::to_vec), extra);
                writer.write_element(&mut via, &el).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&direct),
                    String::from_utf8_lossy(&via),
                    "{mech} {extra:?}"
                );
            }
        }
    }

    /// `Debug` shows the kind and the payload's length, never the payload
    /// (PLAIN's carries the password).
    #[test]
    fn debug_shows_lengths_not_payloads() {
        let plain = b"\0alice\0hunter2".to_vec();
        for (el, shown) in [
            (
                SaslElement::Auth {
                    mechanism: "PLAIN".into(),
                    initial_response: Some(plain.clone().into()),
                },
                "Auth { mechanism: \"PLAIN\", initial_response: <14 bytes> }",
            ),
            (
                SaslElement::Auth {
                    mechanism: "EXTERNAL".into(),
                    initial_response: None,
                },
                "Auth { mechanism: \"EXTERNAL\", initial_response: None }",
            ),
            (
                SaslElement::Challenge(plain.clone().into()),
                "Challenge(<14 bytes>)",
            ),
            (
                SaslElement::Response(plain.clone().into()),
                "Response(<14 bytes>)",
            ),
            (
                SaslElement::Success(Some(plain.into())),
                "Success(<14 bytes>)",
            ),
            (SaslElement::Success(None), "Success(None)"),
            (SaslElement::Abort, "Abort"),
        ] {
            assert_eq!(format!("{el:?}"), shown);
        }
    }

    /// Text split over several nodes (around a child) is joined.
    #[test]
    fn payload_in_several_text_nodes() {
        let el: Element =
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cnNw<x/>YXV0aA==</response>"
                .parse()
                .unwrap();
        assert_eq!(
            SaslElement::parse(&el).unwrap().unwrap(),
            SaslElement::Response(b"rspauth".to_vec().into())
        );
    }

    #[test]
    fn seed004_elements_decode() {
        let challenge: Element = "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'> cnNwYXV0aD1lYTQwZjYwMzM1YzQyN2I1NTI3Yjg0ZGJhYmNkZmZmZAo= </challenge>".parse().unwrap();
        assert_eq!(
            SaslElement::parse(&challenge).unwrap().unwrap(),
            SaslElement::Challenge(
                b"rspauth=ea40f60335c427b5527b84dbabcdfffd\n"
                    .to_vec()
                    .into()
            )
        );
        let failure: Element = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'> <temporary-auth-failure/> </failure>".parse().unwrap();
        assert_eq!(
            SaslElement::parse(&failure).unwrap().unwrap(),
            SaslElement::Failure {
                condition: Some(SaslCondition::TemporaryAuthFailure),
                text: None
            }
        );
        let empty: Element =
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>"
                .parse()
                .unwrap();
        assert_eq!(
            SaslElement::parse(&empty).unwrap().unwrap(),
            SaslElement::Auth {
                mechanism: "DIGEST-MD5".into(),
                initial_response: None
            }
        );
        let bad: Element = "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>!!</response>"
            .parse()
            .unwrap();
        assert_eq!(
            SaslElement::parse(&bad).unwrap().unwrap_err().condition,
            SaslCondition::IncorrectEncoding
        );
    }

    #[test]
    fn elements_round_trip() {
        for e in [
            SaslElement::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some(vec![].into()),
            },
            SaslElement::Challenge(b"x".to_vec().into()),
            SaslElement::Response(vec![].into()),
            SaslElement::Response(b"y".to_vec().into()),
            SaslElement::Abort,
            SaslElement::Success(None),
            SaslElement::Success(Some(b"v=abc".to_vec().into())),
            SaslElement::Failure {
                condition: Some(SaslCondition::NotAuthorized),
                text: Some("bad".into()),
            },
        ] {
            assert_eq!(SaslElement::parse(&e.to_element()).unwrap().unwrap(), e);
        }
    }
}
