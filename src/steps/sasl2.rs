//! XEP-0388 Extensible SASL Profile (SASL2) elements, built and read the
//! same way by both roles: the `<authentication/>` feature,
//! `<authenticate/>`, `<challenge/>`, `<response/>`, `<abort/>`,
//! `<success/>`, `<failure/>`, and the task elements `<continue/>`,
//! `<next/>`, `<task-data/>`.
//!
//! Payloads are base64 in the element's text; unlike RFC 6120, an empty
//! payload is an empty element and `=` means nothing special (it is bad
//! base64). An absent `<initial-response/>` is no initial response, an
//! empty one an empty response.
//!
//! What the core does not know inside `<inline/>`, `<authenticate/>` and
//! `<success/>` (FAST's `<fast/>`, `<request-token/>`, `<token/>`, ...)
//! is kept in the `extra` fields, untouched: that is where another inline
//! feature reads and writes its elements.

use minidom::Element;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::ns;
use crate::sasl::{decode_secret_payload, SaslCondition, SaslError};
use crate::steps::bind2::{Bind2Offer, Bind2Request, Bind2Result};
use crate::steps::name;
use crate::steps::sm::SmElement;

/// The client's `<user-agent/>`: a stable id (a UUID the host keeps
/// across connections), and optionally its software and device names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserAgent {
    /// The `id` attribute: the same for this installation every time.
    pub id: String,
    /// `<software/>`: the client's name.
    pub software: Option<String>,
    /// `<device/>`: the device's name.
    pub device: Option<String>,
}

impl UserAgent {
    /// A user agent with this id and no names.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            software: None,
            device: None,
        }
    }

    fn to_element(&self) -> Element {
        let mut el = Element::builder("user-agent", ns::SASL2)
            .attr(name("id"), self.id.as_str())
            .build();
        for (n, v) in [("software", &self.software), ("device", &self.device)] {
            if let Some(v) = v {
                el.append_child(Element::builder(n, ns::SASL2).append(v.as_str()).build());
            }
        }
        el
    }

    fn parse(el: &Element) -> Option<Self> {
        let child = |n| {
            el.get_child(n, ns::SASL2)
                .map(|c| c.text().trim().to_owned())
        };
        Some(Self {
            id: el.attr("id").filter(|i| !i.is_empty())?.to_owned(),
            software: child("software"),
            device: child("device"),
        })
    }
}

/// The server's `<authentication xmlns='urn:xmpp:sasl:2'/>` feature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sasl2Feature {
    /// The mechanisms, in the server's order.
    pub mechanisms: Vec<String>,
    /// Bind 2 inline (`<bind xmlns='urn:xmpp:bind:0'/>`), with the
    /// features it can enable.
    pub bind2: Option<Bind2Offer>,
    /// Stream management resumption inline (`<sm xmlns='urn:xmpp:sm:3'/>`).
    pub sm_resume: bool,
    /// XEP-0480 upgrade tasks offered (`UPGR-SCRAM-SHA-256`...).
    pub upgrades: Vec<String>,
    /// Other children of `<inline/>` (FAST's `<fast/>`...), as sent.
    pub extra_inline: Vec<Element>,
}

impl Sasl2Feature {
    /// Reads the feature element.
    pub fn parse(el: &Element) -> Self {
        let mut out = Self::default();
        for c in el.children() {
            if c.is("mechanism", ns::SASL2) {
                let m = c.text().trim().to_owned();
                if !m.is_empty() {
                    out.mechanisms.push(m);
                }
            } else if c.is("upgrade", ns::SASL_UPGRADE) {
                out.upgrades.push(c.text().trim().to_owned());
            } else if c.is("inline", ns::SASL2) {
                for i in c.children() {
                    if i.is("bind", ns::BIND2) {
                        out.bind2 = Some(Bind2Offer::parse(i));
                    } else if i.is("sm", ns::SM) {
                        out.sm_resume = true;
                    } else {
                        out.extra_inline.push(i.clone());
                    }
                }
            }
        }
        out
    }

    /// Builds the feature element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::builder("authentication", ns::SASL2).build();
        for m in &self.mechanisms {
            el.append_child(
                Element::builder("mechanism", ns::SASL2)
                    .append(m.as_str())
                    .build(),
            );
        }
        let mut inline = Element::builder("inline", ns::SASL2).build();
        if let Some(b) = &self.bind2 {
            inline.append_child(b.to_element());
        }
        if self.sm_resume {
            inline.append_child(Element::builder("sm", ns::SM).build());
        }
        for e in &self.extra_inline {
            inline.append_child(e.clone());
        }
        el.append_child(inline);
        for u in &self.upgrades {
            el.append_child(
                Element::builder("upgrade", ns::SASL_UPGRADE)
                    .append(u.as_str())
                    .build(),
            );
        }
        el
    }
}

/// The client's `<authenticate/>`.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Authenticate {
    /// The mechanism.
    pub mechanism: String,
    /// `None`: no `<initial-response/>`; `Some(empty)`: an empty one.
    pub initial_response: Option<Zeroizing<Vec<u8>>>,
    /// `<user-agent/>`.
    pub user_agent: Option<UserAgent>,
    /// Bind 2 inline.
    pub bind2: Option<Bind2Request>,
    /// Stream management resumption inline (`<resume previd h/>`).
    pub resume: Option<(String, u32)>,
    /// XEP-0480 upgrade tasks asked for.
    pub upgrades: Vec<String>,
    /// Other children (FAST's `<request-token/>`, `<fast/>`...), as sent.
    pub extra: Vec<Element>,
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field("mechanism", &self.mechanism)
            .field(
                "initial_response",
                &self.initial_response.as_ref().map(|p| p.len()),
            )
            .field("user_agent", &self.user_agent)
            .field("bind2", &self.bind2)
            .field("resume", &self.resume)
            .field("upgrades", &self.upgrades)
            .field("extra", &self.extra.len())
            .finish()
    }
}

impl Authenticate {
    /// `<authenticate mechanism/>` with nothing else.
    pub fn new(mechanism: impl Into<String>) -> Self {
        Self {
            mechanism: mechanism.into(),
            initial_response: None,
            user_agent: None,
            bind2: None,
            resume: None,
            upgrades: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// Builds the element.
    pub fn to_element(&self) -> Element {
        self.build(self.extra.iter().cloned())
    }

    /// Builds the element, moving the extra children into it rather than
    /// copying them (for a request that is written once and dropped).
    pub fn into_element(mut self) -> Element {
        let extra = std::mem::take(&mut self.extra);
        self.build(extra)
    }

    /// The element, with `extra` as the extension children.
    fn build(&self, extra: impl IntoIterator<Item = Element>) -> Element {
        let mut el = Element::builder("authenticate", ns::SASL2)
            .attr(name("mechanism"), self.mechanism.as_str())
            .build();
        if let Some(ir) = &self.initial_response {
            el.append_child(payload_element("initial-response", ir));
        }
        if let Some(ua) = &self.user_agent {
            el.append_child(ua.to_element());
        }
        for u in &self.upgrades {
            el.append_child(
                Element::builder("upgrade", ns::SASL_UPGRADE)
                    .append(u.as_str())
                    .build(),
            );
        }
        if let Some((previd, h)) = &self.resume {
            el.append_child(
                SmElement::Resume {
                    previd: previd.clone(),
                    h: *h,
                }
                .to_element(),
            );
        }
        for e in extra {
            el.append_child(e);
        }
        if let Some(b) = &self.bind2 {
            el.append_child(b.to_element());
        }
        el
    }

    fn parse(el: &Element) -> Result<Self, SaslError> {
        let mechanism = el
            .attr("mechanism")
            .filter(|m| !m.is_empty())
            .ok_or(SaslError::new(
                SaslCondition::InvalidMechanism,
                "authenticate without a mechanism",
            ))?;
        let mut out = Self::new(mechanism);
        for c in el.children() {
            if c.is("initial-response", ns::SASL2) {
                out.initial_response = Some(payload(c)?);
            } else if c.is("user-agent", ns::SASL2) {
                out.user_agent = UserAgent::parse(c);
            } else if c.is("upgrade", ns::SASL_UPGRADE) {
                out.upgrades.push(c.text().trim().to_owned());
            } else if c.is("bind", ns::BIND2) {
                out.bind2 = Some(Bind2Request::parse(c));
            } else if c.has_ns(ns::SM) {
                match SmElement::parse(c) {
                    Some(Ok(SmElement::Resume { previd, h })) => out.resume = Some((previd, h)),
                    _ => return Err(SaslError::malformed("a bad stream management request")),
                }
            } else {
                out.extra.push(c.clone());
            }
        }
        Ok(out)
    }
}

/// The server's `<success/>`.
#[derive(Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Success {
    /// `<additional-data/>`.
    pub additional_data: Option<Zeroizing<Vec<u8>>>,
    /// `<authorization-identifier/>` (or XEP-0484's older
    /// `<authorization-identity/>`): a bare JID, or the full JID once
    /// bound or resumed.
    pub authorization_identifier: Option<String>,
    /// Bind 2's `<bound/>` or `<failed/>`.
    pub bind2: Option<Bind2Result>,
    /// Stream management: `<resumed/>` or `<failed/>` of an inline
    /// resumption.
    pub sm: Option<SmElement>,
    /// Other children (FAST's `<token/>`...), as sent.
    pub extra: Vec<Element>,
}

impl std::fmt::Debug for Success {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Success")
            .field(
                "additional_data",
                &self.additional_data.as_ref().map(|p| p.len()),
            )
            .field("authorization_identifier", &self.authorization_identifier)
            .field("bind2", &self.bind2)
            .field("sm", &self.sm)
            .field("extra", &self.extra.len())
            .finish()
    }
}

impl Success {
    /// Builds the element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::builder("success", ns::SASL2).build();
        if let Some(d) = &self.additional_data {
            el.append_child(payload_element("additional-data", d));
        }
        if let Some(sm) = &self.sm {
            el.append_child(sm.to_element());
        }
        if let Some(b) = &self.bind2 {
            el.append_child(b.to_element());
        }
        for e in &self.extra {
            el.append_child(e.clone());
        }
        if let Some(a) = &self.authorization_identifier {
            el.append_child(
                Element::builder("authorization-identifier", ns::SASL2)
                    .append(a.as_str())
                    .build(),
            );
        }
        el
    }

    fn parse(el: &Element) -> Result<Self, SaslError> {
        let mut out = Self::default();
        for c in el.children() {
            if c.is("additional-data", ns::SASL2) {
                out.additional_data = Some(payload(c)?);
            } else if c.is("authorization-identifier", ns::SASL2)
                || c.is("authorization-identity", ns::SASL2)
            {
                out.authorization_identifier = Some(c.text().trim().to_owned());
            } else if c.has_ns(ns::BIND2) {
                out.bind2 = Some(Bind2Result::parse(c)?);
            } else if c.has_ns(ns::SM) {
                match SmElement::parse(c) {
                    Some(Ok(e @ (SmElement::Resumed { .. } | SmElement::Failed { .. }))) => {
                        out.sm = Some(e)
                    }
                    _ => return Err(SaslError::malformed("a bad stream management result")),
                }
            } else {
                out.extra.push(c.clone());
            }
        }
        Ok(out)
    }
}

/// A SASL2 element, decoded. Payloads are zeroed on drop and `Debug`
/// shows their length only.
#[derive(Clone, PartialEq, Debug)]
#[non_exhaustive]
pub enum Sasl2Element {
    /// `<authenticate/>` (client).
    Authenticate(Box<Authenticate>),
    /// `<challenge/>` (server).
    Challenge(Payload),
    /// `<response/>` (client).
    Response(Payload),
    /// `<abort/>` (client), with its text.
    Abort(Option<String>),
    /// `<success/>` (server).
    Success(Box<Success>),
    /// `<failure/>` (server).
    Failure {
        /// The RFC 6120 condition; `None` when none or an unknown one.
        condition: Option<SaslCondition>,
        /// `<text/>`.
        text: Option<String>,
    },
    /// `<continue/>` (server): tasks to do before success.
    Continue {
        /// `<additional-data/>` of the mechanism (SCRAM's server-final).
        additional_data: Option<Payload>,
        /// `<tasks/>`: the task names.
        tasks: Vec<String>,
        /// `<text/>`.
        text: Option<String>,
    },
    /// `<next task/>` (client): the task it does.
    Next {
        /// The task.
        task: String,
        /// The task's own children.
        data: Vec<Element>,
    },
    /// `<task-data/>` (either side): a task's children.
    TaskData(Vec<Element>),
}

/// A payload, zeroed on drop; `Debug` shows its length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Payload(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Sasl2Element {
    /// Decodes an element of the SASL2 namespace: `None` when `el` is not
    /// one; `Some(Err)` (with `incorrect-encoding`, `invalid-mechanism`
    /// or `malformed-request`) when it is one but malformed.
    pub fn parse(el: &Element) -> Option<Result<Self, SaslError>> {
        if !el.has_ns(ns::SASL2) {
            return None;
        }
        let text = || {
            el.get_child("text", ns::SASL2)
                .map(|t| t.text().trim().to_owned())
        };
        Some(match el.name() {
            "authenticate" => Authenticate::parse(el).map(|a| Self::Authenticate(Box::new(a))),
            "challenge" => payload(el).map(|p| Self::Challenge(Payload(p))),
            "response" => payload(el).map(|p| Self::Response(Payload(p))),
            "abort" => Ok(Self::Abort(text())),
            "success" => Success::parse(el).map(|s| Self::Success(Box::new(s))),
            "failure" => Ok(Self::Failure {
                condition: el
                    .children()
                    .filter(|c| c.has_ns(ns::SASL))
                    .find_map(|c| SaslCondition::from_name(c.name())),
                text: text(),
            }),
            "continue" => {
                let additional_data = match el.get_child("additional-data", ns::SASL2) {
                    Some(d) => match payload(d) {
                        Ok(p) => Some(Payload(p)),
                        Err(e) => return Some(Err(e)),
                    },
                    None => None,
                };
                let tasks: Vec<String> = el
                    .get_child("tasks", ns::SASL2)
                    .map(|t| {
                        t.children()
                            .filter(|c| c.is("task", ns::SASL2))
                            .map(|c| c.text().trim().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                if tasks.is_empty() {
                    Err(SaslError::malformed("continue without a task"))
                } else {
                    Ok(Self::Continue {
                        additional_data,
                        tasks,
                        text: text(),
                    })
                }
            }
            "next" => match el.attr("task").filter(|t| !t.is_empty()) {
                Some(task) => Ok(Self::Next {
                    task: task.to_owned(),
                    data: el.children().cloned().collect(),
                }),
                None => Err(SaslError::malformed("next without a task")),
            },
            "task-data" => Ok(Self::TaskData(el.children().cloned().collect())),
            _ => return None,
        })
    }

    /// Builds the element.
    pub fn to_element(&self) -> Element {
        let text = |el: &mut Element, t: &Option<String>| {
            if let Some(t) = t {
                el.append_child(
                    Element::builder("text", ns::SASL2)
                        .append(t.as_str())
                        .build(),
                );
            }
        };
        match self {
            Self::Authenticate(a) => a.to_element(),
            Self::Challenge(p) => payload_element("challenge", p),
            Self::Response(p) => payload_element("response", p),
            Self::Abort(t) => {
                let mut el = Element::builder("abort", ns::SASL2).build();
                text(&mut el, t);
                el
            }
            Self::Success(s) => s.to_element(),
            Self::Failure { condition, text: t } => {
                let mut el = Element::builder("failure", ns::SASL2).build();
                if let Some(c) = condition {
                    el.append_child(Element::builder(c.as_str(), ns::SASL).build());
                }
                text(&mut el, t);
                el
            }
            Self::Continue {
                additional_data,
                tasks,
                text: t,
            } => {
                let mut el = Element::builder("continue", ns::SASL2).build();
                if let Some(d) = additional_data {
                    el.append_child(payload_element("additional-data", d));
                }
                let mut list = Element::builder("tasks", ns::SASL2).build();
                for task in tasks {
                    list.append_child(
                        Element::builder("task", ns::SASL2)
                            .append(task.as_str())
                            .build(),
                    );
                }
                el.append_child(list);
                text(&mut el, t);
                el
            }
            Self::Next { task, data } => {
                let mut el = Element::builder("next", ns::SASL2)
                    .attr(name("task"), task.as_str())
                    .build();
                for d in data {
                    el.append_child(d.clone());
                }
                el
            }
            Self::TaskData(data) => {
                let mut el = Element::builder("task-data", ns::SASL2).build();
                for d in data {
                    el.append_child(d.clone());
                }
                el
            }
        }
    }
}

/// `<name xmlns=SASL2>base64</name>`; an empty payload is an empty
/// element.
fn payload_element(n: &str, data: &[u8]) -> Element {
    let mut el = Element::builder(n, ns::SASL2).build();
    if !data.is_empty() {
        el.append_text_node(base64::engine::general_purpose::STANDARD.encode(data));
    }
    el
}

/// The base64 text of `el`: empty text is an empty payload; `=` is bad
/// base64 here (RFC 6120's empty marker does not apply).
pub(crate) fn payload(el: &Element) -> Result<Zeroizing<Vec<u8>>, SaslError> {
    let text = Zeroizing::new(el.text());
    let t = text.trim();
    if t.is_empty() {
        return Ok(Zeroizing::new(Vec::new()));
    }
    if t == "=" {
        return Err(SaslError::new(
            SaslCondition::IncorrectEncoding,
            "`=` is not base64 (SASL2 sends an empty payload as an empty element)",
        ));
    }
    Ok(decode_secret_payload(t)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    /// XEP-0388's examples read as they mean.
    #[test]
    fn xep_0388_examples() {
        let f = el("<authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism><inline><sm xmlns='urn:xmpp:sm:3'/><bind xmlns='urn:xmpp:bind:0'/></inline></authentication>");
        let f = Sasl2Feature::parse(&f);
        assert_eq!(f.mechanisms, ["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]);
        assert!(f.sm_resume && f.bind2.is_some());
        let a = el("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1-PLUS'><initial-response>cD10bHMtZXhwb3J0ZXIsLG49dXNlcixyPTEyQzRDRDVDLUUzOEUtNEE5OC04RjZELTE1QzM4RjUxQ0NDNg==</initial-response><user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>AwesomeXMPP</software><device>Kiva's Phone</device></user-agent></authenticate>");
        let Some(Ok(Sasl2Element::Authenticate(a))) = Sasl2Element::parse(&a) else {
            panic!()
        };
        assert_eq!(
            a.initial_response.as_deref().map(Vec::as_slice),
            Some(&b"p=tls-exporter,,n=user,r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6"[..])
        );
        let ua = a.user_agent.clone().unwrap();
        assert_eq!(ua.id, "d4565fa7-4d72-4749-b3d3-740edbf87770");
        assert_eq!(ua.device.as_deref(), Some("Kiva's Phone"));
        // Built again, read again: the same.
        let again = Sasl2Element::parse(&a.to_element()).unwrap().unwrap();
        assert_eq!(again, Sasl2Element::Authenticate(a));
        let s = el("<success xmlns='urn:xmpp:sasl:2'><additional-data>dj1tc1ZIcy9CeklPSERxWGVWSDdFbW1EdTlpZDg9</additional-data><authorization-identifier>user@example.org</authorization-identifier></success>");
        let Some(Ok(Sasl2Element::Success(s))) = Sasl2Element::parse(&s) else {
            panic!()
        };
        assert_eq!(
            s.authorization_identifier.as_deref(),
            Some("user@example.org")
        );
        let fail = el("<failure xmlns='urn:xmpp:sasl:2'><aborted xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><optional-application-specific xmlns='urn:something:else'/><text>This is a terrible example.</text></failure>");
        assert_eq!(
            Sasl2Element::parse(&fail).unwrap().unwrap(),
            Sasl2Element::Failure {
                condition: Some(SaslCondition::Aborted),
                text: Some("This is a terrible example.".into())
            }
        );
        let cont = el("<continue xmlns='urn:xmpp:sasl:2'><additional-data>SSdtIGJvcmVkIG5vdy4=</additional-data><tasks><task>HOTP-EXAMPLE</task><task>TOTP-EXAMPLE</task></tasks><text>This account requires 2FA</text></continue>");
        let Some(Ok(Sasl2Element::Continue {
            additional_data,
            tasks,
            ..
        })) = Sasl2Element::parse(&cont)
        else {
            panic!()
        };
        assert_eq!(&additional_data.unwrap()[..], b"I'm bored now.");
        assert_eq!(tasks, ["HOTP-EXAMPLE", "TOTP-EXAMPLE"]);
    }

    /// XEP-0484's examples still say `authorization-identity`.
    #[test]
    fn authorization_identity_is_accepted() {
        let s = el("<success xmlns='urn:xmpp:sasl:2'><authorization-identity>juliet@montague.example/r</authorization-identity></success>");
        let Some(Ok(Sasl2Element::Success(s))) = Sasl2Element::parse(&s) else {
            panic!()
        };
        assert_eq!(
            s.authorization_identifier.as_deref(),
            Some("juliet@montague.example/r")
        );
    }

    /// Absent, empty and `=` initial responses.
    #[test]
    fn initial_response_absent_empty_and_equals() {
        let read = |s: &str| match Sasl2Element::parse(&el(s)).unwrap() {
            Ok(Sasl2Element::Authenticate(a)) => Ok(a.initial_response.map(|p| p.to_vec())),
            Ok(_) => panic!(),
            Err(e) => Err(e.condition),
        };
        assert_eq!(
            read("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='EXTERNAL'/>"),
            Ok(None)
        );
        assert_eq!(
            read("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='EXTERNAL'><initial-response/></authenticate>"),
            Ok(Some(vec![]))
        );
        assert_eq!(
            read("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='EXTERNAL'><initial-response>=</initial-response></authenticate>"),
            Err(SaslCondition::IncorrectEncoding)
        );
        assert_eq!(
            read("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>!!</initial-response></authenticate>"),
            Err(SaslCondition::IncorrectEncoding)
        );
        assert_eq!(
            read("<authenticate xmlns='urn:xmpp:sasl:2'/>"),
            Err(SaslCondition::InvalidMechanism)
        );
        // Built: absent stays absent, empty is an empty element.
        let mut a = Authenticate::new("EXTERNAL");
        assert!(a
            .to_element()
            .get_child("initial-response", ns::SASL2)
            .is_none());
        a.initial_response = Some(Zeroizing::new(Vec::new()));
        let ir = a.to_element();
        let ir = ir.get_child("initial-response", ns::SASL2).unwrap();
        assert_eq!(ir.text(), "");
    }

    /// Moved or copied, the extension children land in the same place
    /// (after `<resume/>`, before Bind 2's request) with the same content.
    #[test]
    fn into_element_is_to_element() {
        let mut a = Authenticate::new("HT-SHA-256-NONE");
        a.initial_response = Some(Zeroizing::new(b"juliet\0mac".to_vec()));
        a.user_agent = Some(UserAgent::new("d4565fa7"));
        a.resume = Some(("prev".to_owned(), 3));
        a.extra = vec![
            el("<fast xmlns='urn:xmpp:fast:0' count='2'/>"),
            el("<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"),
        ];
        a.bind2 = Some(Bind2Request::default());
        let copied = a.to_element();
        let names: Vec<&str> = copied.children().map(Element::name).collect();
        assert_eq!(
            names,
            [
                "initial-response",
                "user-agent",
                "resume",
                "fast",
                "request-token",
                "bind"
            ]
        );
        assert_eq!(a.into_element(), copied);
    }

    /// `Debug` never shows a payload.
    #[test]
    fn debug_shows_lengths() {
        let mut a = Authenticate::new("PLAIN");
        a.initial_response = Some(Zeroizing::new(b"\0alice\0hunter2".to_vec()));
        assert!(!format!("{a:?}").contains("hunter2"));
        let r = Sasl2Element::Response(Payload(Zeroizing::new(b"hunter2".to_vec())));
        assert_eq!(format!("{r:?}"), "Response(<7 bytes>)");
    }
}
