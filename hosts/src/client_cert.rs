//! TLS client certificates for SASL EXTERNAL (RFC 6120 section 6.3.4,
//! XEP-0178): the server's optional client-certificate check against a CA
//! file, and the identity a verified certificate names.
//!
//! The identity, in the order XEP-0178 gives: the first XmppAddr otherName
//! (`id-on-xmppAddr`, 1.3.6.1.5.5.7.8.5) of the subjectAltName, else the
//! first rfc822Name (e-mail) of it, else the subject's commonName. It is
//! mapped to a local user of the server's domain: `user@domain` (or, for a
//! commonName, a bare `user`); an identity of another domain names no local
//! user ([`user_for`] refuses it).

use std::path::Path;
use std::sync::Arc;

use crate::tls::der_next;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use x509_parser::extensions::GeneralName;
use xmpp_sansio::sasl::SaslCondition;

/// `id-on-xmppAddr` (RFC 6120 section 13.7.1.4).
pub const XMPP_ADDR_OID: &str = "1.3.6.1.5.5.7.8.5";

/// Where the identity of a certificate came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertIdentity {
    /// An XmppAddr otherName of the subjectAltName.
    XmppAddr(String),
    /// An rfc822Name (e-mail address) of the subjectAltName.
    Email(String),
    /// The subject's commonName.
    CommonName(String),
}

impl CertIdentity {
    /// The name itself.
    pub fn as_str(&self) -> &str {
        match self {
            Self::XmppAddr(s) | Self::Email(s) | Self::CommonName(s) => s,
        }
    }
}

/// A client-certificate verifier for a rustls server: chains to the PEM
/// certificates of `ca_file`; a client that presents no certificate is
/// let in too (it logs in with a password), one whose certificate does not
/// verify fails the handshake.
pub fn optional_verifier(ca_file: &Path) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let origin = format!("--client-ca {}", ca_file.display());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| format!("{origin}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{origin}: {e}"))?;
    verifier_of(certs, &origin)
}

/// [`optional_verifier`] for anchors in memory (errors begin with `origin`).
pub fn verifier_of(
    certs: Vec<CertificateDer<'static>>,
    origin: &str,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{origin}: no usable CA certificate in it"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("{origin}: {e}"))
}

/// The identity a DER certificate names (see the module docs), or why
/// there is none.
pub fn identity(der: &[u8]) -> Result<CertIdentity, String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("certificate: {e}"))?;
    let mut email = None;
    if let Some(san) = cert
        .subject_alternative_name()
        .map_err(|e| format!("subjectAltName: {e}"))?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::OtherName(oid, value) if oid.to_id_string() == XMPP_ADDR_OID => {
                    let addr = other_name_utf8(value).ok_or("XmppAddr is not a UTF8String")?;
                    return Ok(CertIdentity::XmppAddr(addr));
                }
                GeneralName::RFC822Name(e) if email.is_none() => email = Some(e.to_string()),
                _ => {}
            }
        }
    }
    if let Some(e) = email {
        return Ok(CertIdentity::Email(e));
    }
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .ok_or("no XmppAddr, e-mail or commonName in the certificate")?;
    let cn = cn
        .as_str()
        .map_err(|e| format!("commonName is not a string: {e}"))?;
    Ok(CertIdentity::CommonName(cn.to_owned()))
}

/// The local user of `domain` that `identity` names: `user@domain`, or a
/// commonName without `@` (the local part prepared as a JID's). `None`:
/// another domain, a resource, or no valid local part.
pub fn local_user(identity: &CertIdentity, domain: &str) -> Option<String> {
    let name = identity.as_str();
    let (local, dom) = match name.rsplit_once('@') {
        Some((l, d)) => (l, Some(d)),
        None if matches!(identity, CertIdentity::CommonName(_)) => (name, None),
        None => return None,
    };
    if dom.is_some_and(|d| !d.eq_ignore_ascii_case(domain)) || name.contains('/') {
        return None;
    }
    let node = xmpp_sansio::jid::NodePart::new(local).ok()?;
    Some(node.as_str().to_owned())
}

/// The answer to an EXTERNAL request: the user the certificate (`der`,
/// already verified; `None`: the client presented none) names on `domain`,
/// if `authzid` is none, that user, or its bare JID. `not-authorized`
/// without a certificate or a local identity, `invalid-authzid` for an
/// authzid of another user.
pub fn user_for(
    der: Option<&[u8]>,
    domain: &str,
    authzid: Option<&str>,
) -> Result<String, SaslCondition> {
    let der = der.ok_or(SaslCondition::NotAuthorized)?;
    let id = identity(der).map_err(|_| SaslCondition::NotAuthorized)?;
    let user = local_user(&id, domain).ok_or(SaslCondition::NotAuthorized)?;
    match authzid {
        None | Some("") => Ok(user),
        Some(a) => {
            let wanted = CertIdentity::XmppAddr(a.to_owned());
            match local_user(&wanted, domain) {
                Some(u) if u == user && a.contains('@') => Ok(user),
                _ => Err(SaslCondition::InvalidAuthzid),
            }
        }
    }
}

/// The UTF8String inside an otherName value (`[0] EXPLICIT UTF8String`).
fn other_name_utf8(value: &[u8]) -> Option<String> {
    let (tag, inner, _) = der_next(value)?;
    let (tag2, s, _) = der_next(if tag == 0xa0 { inner } else { value })?;
    (tag2 == 0x0c)
        .then(|| String::from_utf8(s.to_vec()).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, OtherNameValue, SanType};

    fn cert(cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    fn xmpp_addr(a: &str) -> SanType {
        SanType::OtherName((
            vec![1, 3, 6, 1, 5, 5, 7, 8, 5],
            OtherNameValue::Utf8String(a.into()),
        ))
    }

    fn email(e: &str) -> SanType {
        SanType::Rfc822Name(e.try_into().unwrap())
    }

    #[test]
    fn xmpp_addr_first_then_email_then_cn() {
        let c = cert(
            Some("carol"),
            vec![email("bob@example.test"), xmpp_addr("alice@example.test")],
        );
        assert_eq!(
            identity(&c).unwrap(),
            CertIdentity::XmppAddr("alice@example.test".into())
        );
        let c = cert(Some("carol"), vec![email("bob@example.test")]);
        assert_eq!(
            identity(&c).unwrap(),
            CertIdentity::Email("bob@example.test".into())
        );
        let c = cert(Some("carol"), vec![]);
        assert_eq!(
            identity(&c).unwrap(),
            CertIdentity::CommonName("carol".into())
        );
        assert!(identity(&cert(None, vec![])).is_err());
        assert!(identity(b"not a certificate").is_err());
    }

    #[test]
    fn mapped_to_users_of_the_domain() {
        let d = "example.test";
        let x = |s: &str| CertIdentity::XmppAddr(s.into());
        assert_eq!(
            local_user(&x("Alice@EXAMPLE.test"), d),
            Some("alice".into())
        );
        assert_eq!(local_user(&x("alice@other.test"), d), None);
        assert_eq!(local_user(&x("alice@example.test/res"), d), None);
        assert_eq!(local_user(&x("example.test"), d), None);
        assert_eq!(
            local_user(&CertIdentity::Email("bob@example.test".into()), d),
            Some("bob".into())
        );
        assert_eq!(
            local_user(&CertIdentity::CommonName("carol".into()), d),
            Some("carol".into())
        );
        assert_eq!(
            local_user(&CertIdentity::CommonName("carol@else.test".into()), d),
            None
        );
        assert_eq!(
            local_user(&CertIdentity::CommonName("two words".into()), d),
            None
        );
    }

    #[test]
    fn external_verdicts() {
        let d = "example.test";
        let c = cert(None, vec![xmpp_addr("alice@example.test")]);
        assert_eq!(user_for(Some(&c), d, None), Ok("alice".into()));
        assert_eq!(user_for(Some(&c), d, Some("")), Ok("alice".into()));
        assert_eq!(
            user_for(Some(&c), d, Some("alice@example.test")),
            Ok("alice".into())
        );
        assert_eq!(
            user_for(Some(&c), d, Some("bob@example.test")),
            Err(SaslCondition::InvalidAuthzid)
        );
        assert_eq!(
            user_for(Some(&c), d, Some("alice@other.test")),
            Err(SaslCondition::InvalidAuthzid)
        );
        assert_eq!(user_for(None, d, None), Err(SaslCondition::NotAuthorized));
        let other = cert(None, vec![xmpp_addr("alice@other.test")]);
        assert_eq!(
            user_for(Some(&other), d, None),
            Err(SaslCondition::NotAuthorized)
        );
    }
}
