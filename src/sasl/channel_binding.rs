//! Channel binding for the SCRAM `-PLUS` mechanisms (RFC 5056, RFC 5929,
//! RFC 9266) and its XMPP advertisement (XEP-0440).
//!
//! The state machines never compute TLS values: the host extracts the
//! binding data from its TLS library (the `tls-unique` Finished message, the
//! `tls-server-end-point` certificate hash, the `tls-exporter` keying
//! material) and hands it over as a [`ChannelBinding`].
//!
//! XEP-0440 helpers:
//!
//! - [`parse_sasl_channel_binding`] reads the server's
//!   `<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'/>` feature;
//! - [`choose_channel_binding`] picks the type a client uses from the TLS
//!   version, the server's offer and what the host can supply;
//! - [`advertisable_types`] and [`sasl_channel_binding_element`] build the
//!   feature on the server side from what the host can provide.

use std::fmt;
use std::str::FromStr;

use minidom::Element;

use super::SecretBytes;
use crate::ns;

/// The channel-binding types this crate knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelBindingType {
    /// `tls-unique` (RFC 5929 section 3): the first Finished message of the
    /// handshake. Only defined for TLS 1.2 and earlier.
    TlsUnique,
    /// `tls-server-end-point` (RFC 5929 section 4): a hash of the server's
    /// certificate.
    TlsServerEndPoint,
    /// `tls-exporter` (RFC 9266): 32 bytes of exported keying material with
    /// the label `EXPORTER-Channel-Binding` and an empty context.
    TlsExporter,
}

impl ChannelBindingType {
    /// Every known type, in the order of preference used by
    /// [`choose_channel_binding`] (most preferred first).
    pub const ALL: [ChannelBindingType; 3] =
        [Self::TlsExporter, Self::TlsServerEndPoint, Self::TlsUnique];

    /// The registered name (`tls-unique`, `tls-server-end-point`,
    /// `tls-exporter`), as used in the gs2 header and in XEP-0440.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsUnique => "tls-unique",
            Self::TlsServerEndPoint => "tls-server-end-point",
            Self::TlsExporter => "tls-exporter",
        }
    }

    /// Parses a registered name (case-sensitive, as the registry is);
    /// `None` for a type this crate does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Whether this type is defined for `tls`: `tls-unique` is not defined
    /// for TLS 1.3 (RFC 9266 section 3), the others are defined everywhere.
    pub fn is_defined_for(self, tls: TlsVersion) -> bool {
        !(self == Self::TlsUnique && tls == TlsVersion::Tls13)
    }
}

impl fmt::Display for ChannelBindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`ChannelBindingType::from_str`]: an unknown name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownChannelBindingType;

impl fmt::Display for UnknownChannelBindingType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown channel-binding type")
    }
}

impl std::error::Error for UnknownChannelBindingType {}

impl FromStr for ChannelBindingType {
    type Err = UnknownChannelBindingType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownChannelBindingType)
    }
}

/// The TLS protocol version of the connection, as the host's TLS library
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// Channel-binding data that the host extracted from its TLS connection.
///
/// `data` is the raw binding value (not base64): the Finished message for
/// `tls-unique`, the certificate hash for `tls-server-end-point`, the 32
/// exported bytes for `tls-exporter`. It is kept in [`SecretBytes`]: zeroed
/// on drop and never printed by `Debug`.
#[derive(Debug, Clone)]
pub struct ChannelBinding {
    /// Which binding this is.
    pub kind: ChannelBindingType,
    /// The binding value.
    pub data: SecretBytes,
}

/// Equal when the kinds are and the data are, the data compared in
/// constant time ([`SecretBytes::ct_eq`]).
impl PartialEq for ChannelBinding {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.data.ct_eq(other.data.expose())
    }
}

impl Eq for ChannelBinding {}

impl ChannelBinding {
    /// Binding data of type `kind`.
    pub fn new(kind: ChannelBindingType, data: impl Into<Vec<u8>>) -> Self {
        Self {
            kind,
            data: SecretBytes::new(data),
        }
    }
}

/// Reads the server's XEP-0440 feature
/// `<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>`.
///
/// Returns `None` when `element` is not that feature. Otherwise returns the
/// value of the `type` attribute of each `<channel-binding/>` child, in
/// document order, without duplicates.
///
/// **Unknown types are kept** (as strings): XEP-0474 downgrade protection
/// hashes every type the server advertised, so dropping one would make the
/// check fail. Use [`ChannelBindingType::from_name`] to map the names this
/// crate knows. Children in another namespace or without a non-empty `type`
/// are ignored.
pub fn parse_sasl_channel_binding(element: &Element) -> Option<Vec<String>> {
    if !element.is("sasl-channel-binding", ns::SASL_CB) {
        return None;
    }
    let mut types: Vec<String> = Vec::new();
    for child in element.children() {
        if !child.is("channel-binding", ns::SASL_CB) {
            continue;
        }
        match child.attr("type") {
            Some(t) if !t.is_empty() && !types.iter().any(|x| x == t) => types.push(t.to_owned()),
            _ => {}
        }
    }
    Some(types)
}

/// Chooses the channel-binding type a client uses.
///
/// - `tls`: the negotiated TLS version. `tls-unique` is never chosen on TLS
///   1.3.
/// - `server_offer`: the types the server advertised with XEP-0440
///   ([`parse_sasl_channel_binding`]), or `None` when it advertised nothing.
/// - `host_supports`: the types the host can extract from its TLS library
///   on this connection. On TLS 1.2 and earlier, list `tls-exporter` only
///   when the extended master secret extension was negotiated (RFC 9266
///   section 3).
///
/// With an offer, the first of `tls-exporter`, `tls-server-end-point`,
/// `tls-unique` (the last only on TLS 1.2 and earlier) that both sides
/// support wins. Without an offer, the protocol defaults apply: `tls-exporter`
/// on TLS 1.3 (RFC 9266), `tls-unique` on TLS 1.2 and earlier (RFC 5802,
/// RFC 5929), if the host supports it. `None` means: do not bind (use a
/// non-PLUS mechanism).
pub fn choose_channel_binding(
    tls: TlsVersion,
    server_offer: Option<&[String]>,
    host_supports: &[ChannelBindingType],
) -> Option<ChannelBindingType> {
    let usable = |t: ChannelBindingType| t.is_defined_for(tls) && host_supports.contains(&t);
    match server_offer {
        Some(offer) => ChannelBindingType::ALL
            .into_iter()
            .filter(|t| usable(*t))
            .find(|t| offer.iter().any(|o| o == t.as_str())),
        None => {
            let default = if tls == TlsVersion::Tls13 {
                ChannelBindingType::TlsExporter
            } else {
                ChannelBindingType::TlsUnique
            };
            usable(default).then_some(default)
        }
    }
}

/// The types a server advertises on a connection: those the host can
/// provide that are defined for `tls` (so never `tls-unique` on TLS 1.3),
/// without duplicates, in order of preference (`tls-exporter`,
/// `tls-server-end-point`, `tls-unique`).
pub fn advertisable_types(
    tls: TlsVersion,
    host_provides: &[ChannelBindingType],
) -> Vec<ChannelBindingType> {
    ChannelBindingType::ALL
        .into_iter()
        .filter(|t| t.is_defined_for(tls) && host_provides.contains(t))
        .collect()
}

/// Builds the XEP-0440 feature
/// `<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>` with one
/// `<channel-binding type='...'/>` per entry of `types`, in that order
/// (usually the output of [`advertisable_types`]).
pub fn sasl_channel_binding_element(types: &[ChannelBindingType]) -> Element {
    sasl_channel_binding_element_from_names(types.iter().map(|t| t.as_str()))
}

/// The same feature from type names (unknown ones kept as given, as
/// [`parse_sasl_channel_binding`] keeps them).
pub fn sasl_channel_binding_element_from_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Element {
    let type_attr = rxml::NcName::try_from("type").expect("valid name");
    let mut feature = Element::builder("sasl-channel-binding", ns::SASL_CB).build();
    for t in names {
        feature.append_child(
            Element::builder("channel-binding", ns::SASL_CB)
                .attr(type_attr.clone(), t)
                .build(),
        );
    }
    feature
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in ChannelBindingType::ALL {
            assert_eq!(ChannelBindingType::from_name(t.as_str()), Some(t));
            assert_eq!(t.to_string().parse::<ChannelBindingType>(), Ok(t));
        }
        assert_eq!(ChannelBindingType::from_name("TLS-UNIQUE"), None);
        assert!("tls-bogus".parse::<ChannelBindingType>().is_err());
    }

    #[test]
    fn binding_data_is_redacted() {
        let cb = ChannelBinding::new(ChannelBindingType::TlsExporter, b"secret-ekm".to_vec());
        assert!(!format!("{cb:?}").contains("secret"));
    }
}
