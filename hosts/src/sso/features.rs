//! Step 1: the upstream server's pre-authentication `<stream:features/>`
//! as the browser sees them.
//!
//! A user the proxy authenticated with HTTP Negotiate is offered SASL
//! EXTERNAL and nothing else to log in with: browser libraries (Strophe.js,
//! Converse.js) take the highest-ranked mechanism they can run, and SCRAM
//! or PLAIN need only a JID to be tried, so EXTERNAL first among others is
//! not enough. Every other way to authenticate goes too: SASL2
//! (XEP-0388), the channel-binding list (XEP-0440), `jabber:iq:auth`
//! (XEP-0078), in-band registration (XEP-0077) and STARTTLS (the browser's
//! TLS is HTTP's). Features that are no login (none before authentication,
//! usually) stay as they are.
//!
//! Everyone else gets the upstream features unchanged.

use minidom::Element;
use xmpp_sansio::ns;

/// SASL2 (XEP-0388).
const NS_SASL2: &str = "urn:xmpp:sasl:2";

/// The name the browser logs in with.
pub const EXTERNAL: &str = "EXTERNAL";

/// Whether a feature is a way to log in (or to upgrade the stream) that an
/// SSO user must not be offered.
fn is_login(feature: &Element) -> bool {
    (feature.is("mechanisms", ns::SASL))
        || feature.is("authentication", NS_SASL2)
        || feature.has_ns(ns::SASL_CB)
        || feature.is("auth", ns::FEATURE_IQ_AUTH)
        || feature.is("register", ns::FEATURE_REGISTER)
        || feature.is("starttls", ns::TLS)
}

/// The features to give the browser: `features` itself when `sso` is
/// false; with `sso`, SASL EXTERNAL alone in place of every login method.
pub fn for_browser(features: &Element, sso: bool) -> Element {
    if !sso {
        return features.clone();
    }
    let mut out = Element::builder(features.name(), features.ns()).build();
    out.append_child(
        Element::builder("mechanisms", ns::SASL)
            .append(
                Element::builder("mechanism", ns::SASL)
                    .append(EXTERNAL)
                    .build(),
            )
            .build(),
    );
    for f in features.children().filter(|f| !is_login(f)) {
        out.append_child(f.clone());
    }
    out
}

/// Whether `features` offers STARTTLS (`<starttls/>` in the TLS namespace).
pub fn offers_starttls(features: &Element) -> bool {
    features.get_child("starttls", ns::TLS).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROSODY: &str = "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
        <mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>GSSAPI</mechanism>\
        <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>\
        <authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism></authentication>\
        <sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-exporter'/></sasl-channel-binding>\
        <register xmlns='http://jabber.org/features/iq-register'/>\
        <csi xmlns='urn:xmpp:csi:0'/></stream:features>";

    fn mechanisms(f: &Element) -> Vec<String> {
        f.get_child("mechanisms", ns::SASL)
            .map(|m| m.children().map(|c| c.text()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_sso_user_sees_external_alone() {
        let up: Element = PROSODY.parse().unwrap();
        let f = for_browser(&up, true);
        assert!(f.is("features", ns::STREAM));
        assert_eq!(mechanisms(&f), ["EXTERNAL"]);
        let left: Vec<&str> = f.children().map(|c| c.name()).collect();
        assert_eq!(left, ["mechanisms", "csi"]);
    }

    #[test]
    fn everyone_else_sees_the_upstream_features() {
        let up: Element = PROSODY.parse().unwrap();
        assert_eq!(for_browser(&up, false), up);
        assert_eq!(mechanisms(&up), ["GSSAPI", "SCRAM-SHA-1", "PLAIN"]);
    }
}
