//! XEP-0386 Bind 2 (`urn:xmpp:bind:0`), inline in SASL2: the offer
//! (`<bind><inline><feature var/></inline></bind>`), the client's request
//! (`<bind><tag/>...</bind>` with the features to enable: stream
//! management's `<enable/>`, carbons, CSI), and the result (`<bound/>` with
//! what was enabled, or `<failed/>` with a stanza error).

use minidom::Element;

use crate::ns;
use crate::sasl::SaslError;
use crate::steps::sm::SmElement;
use crate::steps::{name, StanzaError};

/// The server's Bind 2 offer: the namespaces of the features it can
/// enable inline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bind2Offer {
    /// `<feature var/>` values (`urn:xmpp:sm:3`, `urn:xmpp:carbons:2`...).
    pub features: Vec<String>,
}

impl Bind2Offer {
    /// Reads `<bind xmlns='urn:xmpp:bind:0'/>` of `<inline/>`.
    pub fn parse(el: &Element) -> Self {
        let features = el
            .get_child("inline", ns::BIND2)
            .map(|i| {
                i.children()
                    .filter(|f| f.is("feature", ns::BIND2))
                    .filter_map(|f| f.attr("var").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Self { features }
    }

    /// Whether the feature `var` can be enabled inline.
    pub fn offers(&self, var: &str) -> bool {
        self.features.iter().any(|f| f == var)
    }

    /// Builds the offer.
    pub fn to_element(&self) -> Element {
        let mut inline = Element::builder("inline", ns::BIND2).build();
        for f in &self.features {
            inline.append_child(
                Element::builder("feature", ns::BIND2)
                    .attr(name("var"), f.as_str())
                    .build(),
            );
        }
        Element::builder("bind", ns::BIND2).append(inline).build()
    }
}

/// The state a session starts in (XEP-0352 Client State Indication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CsiState {
    /// `<active/>`: the user is looking; send everything now.
    Active,
    /// `<inactive/>`: the client is in the background; the server may
    /// hold back what is not urgent.
    Inactive,
}

impl CsiState {
    /// The element's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }

    /// Reads `<active/>` or `<inactive/>` of `urn:xmpp:csi:0`.
    pub fn parse(el: &Element) -> Option<Self> {
        if !el.has_ns(ns::CSI) {
            return None;
        }
        match el.name() {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }

    /// Builds the element.
    pub fn to_element(self) -> Element {
        Element::builder(self.as_str(), ns::CSI).build()
    }
}

/// What Bind 2 enables inline besides stream management (XEP-0386
/// section 3.2): Message Carbons (XEP-0280, no answer: enabling "MUST
/// succeed") and the CSI state the session starts in (XEP-0352).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Bind2Features {
    /// `<enable xmlns='urn:xmpp:carbons:2'/>`: carbons are on for the
    /// session.
    pub carbons: bool,
    /// `<active/>` or `<inactive/>` of `urn:xmpp:csi:0`.
    pub csi: Option<CsiState>,
}

impl Bind2Features {
    /// Neither carbons nor a CSI state.
    pub fn is_empty(&self) -> bool {
        !self.carbons && self.csi.is_none()
    }

    /// Only what `offer` lists.
    pub fn offered(self, offer: &Bind2Offer) -> Self {
        Self {
            carbons: self.carbons && offer.offers(ns::CARBONS),
            csi: self.csi.filter(|_| offer.offers(ns::CSI)),
        }
    }
}

/// The client's Bind 2 request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bind2Request {
    /// `<tag/>`: the client's name; the server makes the resource of it
    /// and a part of its own.
    pub tag: Option<String>,
    /// Stream management's `<enable/>` inline.
    pub sm_enable: Option<SmElement>,
    /// Carbons' `<enable/>` and CSI's `<active/>`/`<inactive/>`.
    pub features: Bind2Features,
    /// Other features to enable, as sent.
    pub extra: Vec<Element>,
}

impl Bind2Request {
    /// Reads the request.
    pub fn parse(el: &Element) -> Self {
        let mut out = Self::default();
        for c in el.children() {
            if c.is("tag", ns::BIND2) {
                out.tag = Some(c.text().trim().to_owned()).filter(|t| !t.is_empty());
            } else if c.is("enable", ns::SM) {
                out.sm_enable = SmElement::parse(c).and_then(Result::ok);
            } else if c.is("enable", ns::CARBONS) {
                out.features.carbons = true;
            } else if let Some(csi) = CsiState::parse(c) {
                out.features.csi = Some(csi);
            } else {
                out.extra.push(c.clone());
            }
        }
        out
    }

    /// Builds the request.
    pub fn to_element(&self) -> Element {
        let mut el = Element::builder("bind", ns::BIND2).build();
        if let Some(t) = &self.tag {
            el.append_child(
                Element::builder("tag", ns::BIND2)
                    .append(t.as_str())
                    .build(),
            );
        }
        if self.features.carbons {
            el.append_child(Element::builder("enable", ns::CARBONS).build());
        }
        if let Some(e) = &self.sm_enable {
            el.append_child(e.to_element());
        }
        if let Some(csi) = self.features.csi {
            el.append_child(csi.to_element());
        }
        for e in &self.extra {
            el.append_child(e.clone());
        }
        el
    }
}

/// The result of a Bind 2 request, inside `<success/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bind2Result {
    /// `<bound/>`: the resource is bound (the full JID is the success's
    /// authorization identifier).
    Bound {
        /// Stream management's `<enabled/>` or `<failed/>`, when asked.
        sm: Option<SmElement>,
        /// Other results (carbons' `<enabled/>`...), as sent.
        extra: Vec<Element>,
    },
    /// `<failed/>`: no resource was bound.
    Failed(StanzaError),
}

impl Bind2Result {
    /// Reads `<bound/>` or `<failed/>`.
    pub fn parse(el: &Element) -> Result<Self, SaslError> {
        match el.name() {
            "bound" => {
                let mut sm = None;
                let mut extra = Vec::new();
                for c in el.children() {
                    if c.has_ns(ns::SM) {
                        match SmElement::parse(c) {
                            Some(Ok(
                                e @ (SmElement::Enabled { .. } | SmElement::Failed { .. }),
                            )) => sm = Some(e),
                            _ => {
                                return Err(SaslError::malformed("a bad stream management result"))
                            }
                        }
                    } else {
                        extra.push(c.clone());
                    }
                }
                Ok(Self::Bound { sm, extra })
            }
            "failed" => Ok(Self::Failed(StanzaError::from_iq(el))),
            _ => Err(SaslError::malformed("an unknown Bind 2 result")),
        }
    }

    /// Builds the result.
    pub fn to_element(&self) -> Element {
        match self {
            Self::Bound { sm, extra } => {
                let mut el = Element::builder("bound", ns::BIND2).build();
                if let Some(s) = sm {
                    el.append_child(s.to_element());
                }
                for e in extra {
                    el.append_child(e.clone());
                }
                el
            }
            Self::Failed(err) => {
                // The stanza error as an IQ error carries it, in `<failed/>`.
                let iq = err.to_iq("x");
                let mut el = Element::builder("failed", ns::BIND2).build();
                for c in iq.children() {
                    el.append_child(c.clone());
                }
                el
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0386's examples and Prosody's shapes.
    #[test]
    fn offers_requests_and_results() {
        let offer: Element = "<bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/><feature var='urn:xmpp:csi:0'/><feature var='urn:xmpp:sm:3'/></inline></bind>".parse().unwrap();
        let o = Bind2Offer::parse(&offer);
        assert!(o.offers("urn:xmpp:sm:3") && !o.offers("urn:xmpp:mam:2"));
        assert_eq!(Bind2Offer::parse(&o.to_element()), o);
        let req: Element = "<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag><enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/><inactive xmlns='urn:xmpp:csi:0'/></bind>".parse().unwrap();
        let r = Bind2Request::parse(&req);
        assert_eq!(r.tag.as_deref(), Some("AwesomeXMPP"));
        assert_eq!(
            r.sm_enable,
            Some(SmElement::Enable {
                resume: true,
                max: None
            })
        );
        assert!(r.features.carbons);
        assert_eq!(r.features.csi, Some(CsiState::Inactive));
        assert!(r.extra.is_empty());
        assert_eq!(Bind2Request::parse(&r.to_element()), r);
        // Built in XEP-0386's order: carbons, stream management, CSI.
        assert_eq!(r.to_element(), req);
        // Only what the offer lists is asked for.
        let bare = Bind2Offer {
            features: vec![ns::SM.into()],
        };
        assert!(r.features.offered(&bare).is_empty());
        assert_eq!(r.features.offered(&o), r.features);
        let bound: Element = "<bound xmlns='urn:xmpp:bind:0'><enabled resume='1' id='Qblssr-xKWIi' max='600' xmlns='urn:xmpp:sm:3'/></bound>".parse().unwrap();
        let Bind2Result::Bound { sm, .. } = Bind2Result::parse(&bound).unwrap() else {
            panic!()
        };
        assert_eq!(
            sm,
            Some(SmElement::Enabled {
                id: Some("Qblssr-xKWIi".into()),
                resume: true,
                location: None,
                max: Some(600)
            })
        );
        // Prosody's failure: a stanza error inside <failed/>.
        let failed: Element = "<failed xmlns='urn:xmpp:bind:0'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></failed>".parse().unwrap();
        let f = Bind2Result::parse(&failed).unwrap();
        let Bind2Result::Failed(e) = &f else { panic!() };
        assert_eq!(e.condition, "conflict");
        assert_eq!(Bind2Result::parse(&f.to_element()).unwrap(), f);
    }
}
