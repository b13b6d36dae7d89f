//! SASL negotiation elements (RFC 6120 section 6.4): `<auth/>`,
//! `<challenge/>`, `<response/>`, `<abort/>`, `<success/>`, `<failure/>`.

use minidom::Element;

use crate::ns;
use crate::sasl::{decode_payload, encode_payload, AuthAttribute, SaslCondition, SaslError};
use crate::steps::name;

/// A SASL element, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaslElement {
    /// `<auth mechanism='...'>`, with its initial response.
    Auth {
        /// The mechanism name.
        mechanism: String,
        /// `None` for an empty `<auth/>`, `Some(empty)` for `=`.
        initial_response: Option<Vec<u8>>,
    },
    /// `<challenge/>`.
    Challenge(Vec<u8>),
    /// `<response/>`.
    Response(Vec<u8>),
    /// `<abort/>`.
    Abort,
    /// `<success/>`, with its additional data.
    Success(Option<Vec<u8>>),
    /// `<failure/>`.
    Failure {
        /// The condition; `None` when the server sent none or an unknown
        /// one.
        condition: Option<SaslCondition>,
        /// The `<text/>`, if any.
        text: Option<String>,
    },
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
        let payload = || decode_payload(&el.text());
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

/// Builds `<auth/>` with the extra attributes a mechanism asks for
/// (Google's X-OAUTH2 `auth:service`).
pub fn auth(
    mechanism: &str,
    initial_response: Option<Vec<u8>>,
    extra: &[AuthAttribute],
) -> Element {
    let mut el = SaslElement::Auth {
        mechanism: mechanism.to_owned(),
        initial_response,
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

    #[test]
    fn seed004_elements_decode() {
        let challenge: Element = "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'> cnNwYXV0aD1lYTQwZjYwMzM1YzQyN2I1NTI3Yjg0ZGJhYmNkZmZmZAo= </challenge>".parse().unwrap();
        assert_eq!(
            SaslElement::parse(&challenge).unwrap().unwrap(),
            SaslElement::Challenge(b"rspauth=ea40f60335c427b5527b84dbabcdfffd\n".to_vec())
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
                initial_response: Some(vec![]),
            },
            SaslElement::Challenge(b"x".to_vec()),
            SaslElement::Response(vec![]),
            SaslElement::Response(b"y".to_vec()),
            SaslElement::Abort,
            SaslElement::Success(None),
            SaslElement::Success(Some(b"v=abc".to_vec())),
            SaslElement::Failure {
                condition: Some(SaslCondition::NotAuthorized),
                text: Some("bad".into()),
            },
        ] {
            assert_eq!(SaslElement::parse(&e.to_element()).unwrap().unwrap(), e);
        }
    }
}
