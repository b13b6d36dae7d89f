//! The stream feature table (RFC 6120 section 4.3), shared by both roles.
//!
//! Every feature is one row of [`FEATURES`]: its element, the negotiation
//! stages in which it may be offered, and whether completing it restarts
//! the stream. The client reads `<stream:features/>` into
//! [`StreamFeatures`] through the table (a feature offered in a stage where
//! the table does not allow it is ignored, never acted on); the server
//! builds its `<stream:features/>` from the same struct. A new extension is
//! a new row. The XEP-0077 and XEP-0078 rows exist only with the `legacy`
//! cargo feature (on by default): without it, a server's `<register/>` and
//! `<auth/>` are features the table does not know
//! ([`StreamFeatures::other`]).

use minidom::Element;

use crate::ns;
use crate::sasl::channel_binding::{
    parse_sasl_channel_binding, sasl_channel_binding_element_from_names,
};

/// How far a stream has come: what a feature may depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Not encrypted, not authenticated.
    Plain,
    /// Encrypted (STARTTLS done, or direct TLS), not authenticated.
    Encrypted,
    /// Authenticated (SASL or legacy iq:auth done).
    Authenticated,
}

/// What a stream feature is, as a row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FeatureKind {
    /// STARTTLS (RFC 6120 section 5).
    StartTls,
    /// SASL mechanisms (RFC 6120 section 6).
    Mechanisms,
    /// XEP-0440 SASL channel-binding types.
    ChannelBindingTypes,
    /// XEP-0388 SASL2 (with its inline features: Bind 2, stream
    /// management, FAST...); no restart after it.
    Sasl2,
    /// XEP-0077 in-band registration.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    Register,
    /// XEP-0078 non-SASL authentication.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    IqAuth,
    /// Resource binding (RFC 6120 section 7).
    Bind,
    /// RFC 3921 session establishment.
    Session,
    /// XEP-0198 stream management (v3).
    StreamManagement,
}

/// One row of the feature table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureRow {
    /// Which feature.
    pub kind: FeatureKind,
    /// The feature element's name.
    pub name: &'static str,
    /// The feature element's namespace.
    pub ns: &'static str,
    /// The stages in which it may be offered.
    pub stages: &'static [Stage],
    /// Whether completing it restarts the stream.
    pub restarts: bool,
}

use Stage::{Authenticated, Encrypted, Plain};

/// The feature table.
pub const FEATURES: &[FeatureRow] = &[
    FeatureRow {
        kind: FeatureKind::StartTls,
        name: "starttls",
        ns: ns::TLS,
        stages: &[Plain],
        restarts: true,
    },
    FeatureRow {
        kind: FeatureKind::Mechanisms,
        name: "mechanisms",
        ns: ns::SASL,
        stages: &[Plain, Encrypted],
        restarts: true,
    },
    FeatureRow {
        kind: FeatureKind::Sasl2,
        name: "authentication",
        ns: ns::SASL2,
        stages: &[Plain, Encrypted],
        restarts: false,
    },
    FeatureRow {
        kind: FeatureKind::ChannelBindingTypes,
        name: "sasl-channel-binding",
        ns: ns::SASL_CB,
        stages: &[Encrypted],
        restarts: false,
    },
    #[cfg(feature = "legacy")]
    FeatureRow {
        kind: FeatureKind::Register,
        name: "register",
        ns: ns::FEATURE_REGISTER,
        stages: &[Plain, Encrypted],
        restarts: false,
    },
    #[cfg(feature = "legacy")]
    FeatureRow {
        kind: FeatureKind::IqAuth,
        name: "auth",
        ns: ns::FEATURE_IQ_AUTH,
        stages: &[Plain, Encrypted],
        restarts: false,
    },
    FeatureRow {
        kind: FeatureKind::Bind,
        name: "bind",
        ns: ns::BIND,
        stages: &[Authenticated],
        restarts: false,
    },
    FeatureRow {
        kind: FeatureKind::Session,
        name: "session",
        ns: ns::SESSION,
        stages: &[Authenticated],
        restarts: false,
    },
    FeatureRow {
        kind: FeatureKind::StreamManagement,
        name: "sm",
        ns: ns::SM,
        stages: &[Authenticated],
        restarts: false,
    },
];

/// The row of `kind`.
pub fn row(kind: FeatureKind) -> &'static FeatureRow {
    FEATURES
        .iter()
        .find(|r| r.kind == kind)
        .expect("every FeatureKind has a row")
}

/// What a `<stream:features/>` offered, as far as the table knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamFeatures {
    /// STARTTLS offered; `Some(true)` when `<required/>`.
    pub starttls: Option<bool>,
    /// SASL mechanism names, in the server's order.
    pub mechanisms: Option<Vec<String>>,
    /// XEP-0440 channel-binding type names, unknown ones included.
    pub channel_binding_types: Option<Vec<String>>,
    /// XEP-0388 SASL2, with its mechanisms and inline features.
    pub sasl2: Option<crate::steps::sasl2::Sasl2Feature>,
    /// XEP-0077 registration offered.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    pub register: bool,
    /// XEP-0078 legacy authentication offered.
    #[cfg(feature = "legacy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "legacy")))]
    pub iq_auth: bool,
    /// Resource binding offered.
    pub bind: bool,
    /// Session offered; `Some(true)` when `<optional/>`.
    pub session: Option<bool>,
    /// XEP-0198 stream management offered.
    pub stream_management: bool,
    /// Children the table has no row for, or that the table does not allow
    /// in this stage: (namespace, name).
    pub other: Vec<(String, String)>,
}

impl StreamFeatures {
    /// Reads a `<stream:features/>` element received in `stage`.
    pub fn parse(el: &Element, stage: Stage) -> Self {
        let mut out = StreamFeatures::default();
        for child in el.children() {
            let row = FEATURES
                .iter()
                .find(|r| child.is(r.name, r.ns) && r.stages.contains(&stage));
            let Some(row) = row else {
                out.other.push((child.ns(), child.name().to_owned()));
                continue;
            };
            match row.kind {
                FeatureKind::StartTls => {
                    out.starttls = Some(child.has_child("required", ns::TLS));
                }
                FeatureKind::Mechanisms => {
                    out.mechanisms = Some(
                        child
                            .children()
                            .filter(|m| m.is("mechanism", ns::SASL))
                            .map(|m| m.text().trim().to_owned())
                            .filter(|m| !m.is_empty())
                            .collect(),
                    );
                }
                FeatureKind::ChannelBindingTypes => {
                    out.channel_binding_types = parse_sasl_channel_binding(child);
                }
                FeatureKind::Sasl2 => {
                    out.sasl2 = Some(crate::steps::sasl2::Sasl2Feature::parse(child));
                }
                #[cfg(feature = "legacy")]
                FeatureKind::Register => out.register = true,
                #[cfg(feature = "legacy")]
                FeatureKind::IqAuth => out.iq_auth = true,
                FeatureKind::Bind => out.bind = true,
                FeatureKind::Session => {
                    out.session = Some(child.has_child("optional", ns::SESSION));
                }
                FeatureKind::StreamManagement => out.stream_management = true,
            }
        }
        out
    }

    /// Builds the `<stream:features/>` element (server side).
    pub fn to_element(&self) -> Element {
        let mut f = Element::builder("features", ns::STREAM).build();
        let bare = |kind| {
            let r = row(kind);
            Element::builder(r.name, r.ns).build()
        };
        if let Some(required) = self.starttls {
            let mut el = bare(FeatureKind::StartTls);
            if required {
                el.append_child(Element::builder("required", ns::TLS).build());
            }
            f.append_child(el);
        }
        if let Some(s) = &self.sasl2 {
            f.append_child(s.to_element());
        }
        if let Some(mechs) = &self.mechanisms {
            let mut el = bare(FeatureKind::Mechanisms);
            for m in mechs {
                el.append_child(
                    Element::builder("mechanism", ns::SASL)
                        .append(m.as_str())
                        .build(),
                );
            }
            f.append_child(el);
        }
        if let Some(types) = &self.channel_binding_types {
            f.append_child(sasl_channel_binding_element_from_names(
                types.iter().map(String::as_str),
            ));
        }
        #[cfg(feature = "legacy")]
        if self.register {
            f.append_child(bare(FeatureKind::Register));
        }
        #[cfg(feature = "legacy")]
        if self.iq_auth {
            f.append_child(bare(FeatureKind::IqAuth));
        }
        if self.bind {
            f.append_child(bare(FeatureKind::Bind));
        }
        if let Some(optional) = self.session {
            let mut el = bare(FeatureKind::Session);
            if optional {
                el.append_child(Element::builder("optional", ns::SESSION).build());
            }
            f.append_child(el);
        }
        if self.stream_management {
            f.append_child(bare(FeatureKind::StreamManagement));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn prosody_13_features_after_tls() {
        // From prosody13_scram_sha1_bind.txt.
        let f = el("<features xmlns='http://etherx.jabber.org/streams'><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism></authentication><register xmlns='http://jabber.org/features/iq-register'/><auth xmlns='http://jabber.org/features/iq-auth'/><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>OAUTHBEARER</mechanism><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/><channel-binding type='tls-exporter'/></sasl-channel-binding><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>262144</max-bytes></limits></features>");
        let parsed = StreamFeatures::parse(&f, Stage::Encrypted);
        assert_eq!(parsed.starttls, None);
        assert_eq!(
            parsed.mechanisms.as_deref().unwrap(),
            ["SCRAM-SHA-1", "OAUTHBEARER", "PLAIN", "SCRAM-SHA-1-PLUS"]
        );
        assert_eq!(
            parsed.channel_binding_types.as_deref().unwrap(),
            ["tls-server-end-point", "tls-exporter"]
        );
        assert!(!parsed.bind);
        assert_eq!(parsed.sasl2.unwrap().mechanisms, ["SCRAM-SHA-1"]);
        #[cfg(feature = "legacy")]
        {
            assert!(parsed.register && parsed.iq_auth);
            assert_eq!(parsed.other.len(), 1);
        }
        // Without `legacy`, registration and iq:auth are unknown features.
        #[cfg(not(feature = "legacy"))]
        assert_eq!(
            parsed.other[0..2],
            [
                (
                    "http://jabber.org/features/iq-register".into(),
                    "register".into()
                ),
                ("http://jabber.org/features/iq-auth".into(), "auth".into()),
            ]
        );
    }

    #[test]
    fn features_out_of_stage_are_not_acted_on() {
        // Bind offered before authentication, STARTTLS after it.
        let f = el("<features xmlns='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></features>");
        let pre = StreamFeatures::parse(&f, Stage::Plain);
        assert_eq!(pre.starttls, Some(true));
        assert!(!pre.bind);
        let post = StreamFeatures::parse(&f, Stage::Authenticated);
        assert_eq!(post.starttls, None);
        assert!(post.bind);
    }

    #[test]
    fn built_features_parse_back() {
        let f = StreamFeatures {
            bind: true,
            session: Some(true),
            ..Default::default()
        };
        assert_eq!(
            StreamFeatures::parse(&f.to_element(), Stage::Authenticated),
            f
        );
        let g = StreamFeatures {
            starttls: Some(true),
            mechanisms: Some(vec!["PLAIN".into()]),
            #[cfg(feature = "legacy")]
            register: true,
            ..Default::default()
        };
        assert_eq!(StreamFeatures::parse(&g.to_element(), Stage::Plain), g);
    }
}
