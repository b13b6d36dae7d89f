//! Kerberos through the GSS-API (MIT krb5, the `libgssapi` crate): the
//! security contexts of SASL GSSAPI (RFC 4752) and HTTP Negotiate
//! (SPNEGO, RFC 4559). Feature `gssapi`; building it needs the krb5
//! headers, libclang and pkg-config (Debian: `libkrb5-dev libclang-dev
//! pkg-config`).
//!
//! - [`Initiator`]: the client side of a Kerberos context to a service
//!   (`xmpp@xmpp.example.test`), with the default credential cache
//!   (`KRB5CCNAME`), a named cache ([`Credential::from_ccache`]) or a
//!   credential the host already holds (a delegated one, from
//!   [`Negotiated::delegated`]).
//! - [`Acceptor`]: the server side, made from an [`AcceptorCredential`]
//!   that holds the service's key from a keytab; one credential serves many
//!   contexts, and a missing or wrong keytab is reported when the
//!   credential is made, not at the first login.
//! - [`accept_negotiate`]: one HTTP Negotiate token (from
//!   `Authorization: Negotiate <base64>`) accepted with an
//!   `HTTP/<host>` keytab: the client's principal and, when the browser
//!   forwarded its ticket-granting ticket, the delegated credential.
//!
//! The keytab and the credential cache are chosen per credential with
//! `gss_acquire_cred_from` (MIT's credential-store extension), never with
//! the process-wide `KRB5_KTNAME`/`KRB5CCNAME`, so one process can hold
//! several.

use std::ffi::CString;
use std::fmt;
use std::path::Path;
use std::ptr;
use std::time::Duration;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{OidSet, GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE};

pub use xmpp_sansio::sasl::gssapi::{GssContext, GssError, GssStep};

fn lib_err(what: &str, e: libgssapi::error::Error) -> GssError {
    GssError::new(format!("{what}: {e}"))
}

/// `service@host`, a GSS host-based service name (RFC 2743 4.1).
fn service_name(service: &str, host: &str) -> Result<Name, GssError> {
    if service.is_empty() || host.is_empty() || service.contains('@') {
        return Err(GssError::new(format!(
            "bad service name {service:?}@{host:?}"
        )));
    }
    Name::new(
        format!("{service}@{host}").as_bytes(),
        Some(GSS_NT_HOSTBASED_SERVICE),
    )
    .map_err(|e| lib_err(&format!("service name {service}@{host}"), e))
}

/// A Kerberos credential to initiate contexts with: the user's tickets.
#[derive(Clone)]
pub struct Credential {
    cred: Cred,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("principal", &self.principal().ok())
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The tickets of the default credential cache (`KRB5CCNAME`, else the
    /// one `krb5.conf` names). Fails when there are none.
    pub fn default_initiator() -> Result<Self, GssError> {
        let mechs = OidSet::singleton(GSS_MECH_KRB5).map_err(|e| lib_err("mechanism set", e))?;
        let cred = Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs))
            .map_err(|e| lib_err("no Kerberos credential in the default cache", e))?;
        Ok(Credential { cred })
    }

    /// The tickets of the credential cache `ccache` (`FILE:/path`,
    /// `KEYRING:...`, or a path), whatever `KRB5CCNAME` says.
    pub fn from_ccache(ccache: &str) -> Result<Self, GssError> {
        let cred = ffi::acquire_from(None, CredUsage::Initiate, "ccache", ccache)
            .map_err(|e| GssError::new(format!("credential cache {ccache}: {e}")))?;
        Ok(Credential { cred })
    }

    fn from_cred(cred: Cred) -> Self {
        Credential { cred }
    }

    /// Whose credential this is: `alice@EXAMPLE.TEST`.
    pub fn principal(&self) -> Result<String, GssError> {
        self.cred
            .name()
            .map(|n| n.to_string())
            .map_err(|e| lib_err("credential name", e))
    }

    /// How long the credential is still valid.
    pub fn lifetime(&self) -> Result<Duration, GssError> {
        self.cred
            .lifetime()
            .map_err(|e| lib_err("credential lifetime", e))
    }
}

/// The client side of a Kerberos context (the `GSSAPI` SASL mechanism's,
/// or an SPNEGO one like a browser's).
pub struct Initiator {
    ctx: ClientCtx,
    target: String,
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("target", &self.target)
            .field("complete", &self.ctx.is_complete())
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// A Kerberos V5 context to `service@host` (`xmpp`, the server's
    /// domain, for SASL GSSAPI), with mutual authentication and integrity,
    /// from `credential` or, with `None`, the default credential cache.
    pub fn new(
        service: &str,
        host: &str,
        credential: Option<&Credential>,
    ) -> Result<Self, GssError> {
        let target = service_name(service, host)?;
        let flags = CtxFlags::GSS_C_MUTUAL_FLAG
            | CtxFlags::GSS_C_INTEG_FLAG
            | CtxFlags::GSS_C_SEQUENCE_FLAG;
        Ok(Initiator {
            ctx: ClientCtx::new(
                credential.map(|c| c.cred.clone()),
                target,
                flags,
                Some(GSS_MECH_KRB5),
            ),
            target: format!("{service}@{host}"),
        })
    }

    /// An SPNEGO context to `service@host`, as a browser makes for HTTP
    /// Negotiate (`HTTP`, the web host); with `delegate`, the
    /// ticket-granting ticket is forwarded (when it is forwardable).
    /// For tests and tools: a real browser makes its own.
    pub fn negotiate(
        service: &str,
        host: &str,
        credential: Option<&Credential>,
        delegate: bool,
    ) -> Result<Self, GssError> {
        let target = service_name(service, host)?;
        let mut flags = CtxFlags::GSS_C_INTEG_FLAG | CtxFlags::GSS_C_CONF_FLAG;
        if delegate {
            flags |= CtxFlags::GSS_C_DELEG_FLAG;
        }
        Ok(Initiator {
            ctx: ClientCtx::new(
                credential.map(|c| c.cred.clone()),
                target,
                flags,
                Some(GSS_MECH_SPNEGO),
            ),
            target: format!("{service}@{host}"),
        })
    }

    /// One step: `None` first, then each token from the acceptor.
    pub fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        let out = self
            .ctx
            .step(token, None)
            .map_err(|e| lib_err(&format!("initiator to {}", self.target), e))?;
        Ok(step_result(self.ctx.is_complete(), out.map(|b| b.to_vec())))
    }

    /// Whether the context is established.
    pub fn is_complete(&self) -> bool {
        self.ctx.is_complete()
    }

    /// `message` wrapped with integrity only (no confidentiality).
    pub fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        wrap(&mut self.ctx, message)
    }

    /// The message in a wrapped token, checked.
    pub fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        unwrap(&mut self.ctx, token)
    }

    /// The acceptor's name once established
    /// (`xmpp/xmpp.example.test@EXAMPLE.TEST`). (The trait's
    /// [`GssContext::peer_name`] is the acceptor's view only: `None` here.)
    pub fn target_name(&self) -> Option<String> {
        if !self.ctx.is_complete() {
            return None;
        }
        self.ctx.target_name().ok().map(|n| n.to_string())
    }
}

impl GssContext for Initiator {
    fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        Initiator::step(self, token)
    }

    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        Initiator::wrap(self, message)
    }

    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        Initiator::unwrap(self, token)
    }

    fn peer_name(&self) -> Option<String> {
        None
    }
}

fn wrap(ctx: &mut impl SecurityContext, message: &[u8]) -> Result<Vec<u8>, GssError> {
    if !ctx.is_complete() {
        return Err(GssError::new("wrap before the context is established"));
    }
    ctx.wrap(false, message)
        .map(|b| b.to_vec())
        .map_err(|e| lib_err("gss_wrap", e))
}

fn unwrap(ctx: &mut impl SecurityContext, token: &[u8]) -> Result<Vec<u8>, GssError> {
    if !ctx.is_complete() {
        return Err(GssError::new("unwrap before the context is established"));
    }
    ctx.unwrap(token)
        .map(|b| b.to_vec())
        .map_err(|e| lib_err("gss_unwrap", e))
}

/// A service's key, from a keytab: makes [`Acceptor`] contexts and accepts
/// HTTP Negotiate tokens ([`accept_negotiate`]).
#[derive(Clone)]
pub struct AcceptorCredential {
    cred: Cred,
    service: String,
}

impl fmt::Debug for AcceptorCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptorCredential")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl AcceptorCredential {
    /// The key of `service@host` (the principal `service/host@REALM`) in
    /// the keytab file `keytab`. Fails at once, with the library's reason,
    /// when the file is missing, unreadable, or holds no key for that
    /// principal.
    pub fn from_keytab(keytab: &Path, service: &str, host: &str) -> Result<Self, GssError> {
        let display = keytab.display();
        let meta = std::fs::metadata(keytab)
            .map_err(|e| GssError::new(format!("keytab {display}: {e}")))?;
        if !meta.is_file() {
            return Err(GssError::new(format!("keytab {display}: not a file")));
        }
        let path = keytab
            .to_str()
            .ok_or_else(|| GssError::new(format!("keytab {display}: path is not UTF-8")))?;
        let name = format!("{service}@{host}");
        if service.is_empty() || host.is_empty() || service.contains('@') {
            return Err(GssError::new(format!("bad service name {name:?}")));
        }
        let cred = ffi::acquire_from(
            Some(&name),
            CredUsage::Accept,
            "keytab",
            &format!("FILE:{path}"),
        )
        .map_err(|e| GssError::new(format!("keytab {display}, service {name}: {e}")))?;
        Ok(AcceptorCredential {
            cred,
            service: name,
        })
    }

    /// The realm of the service's principal (`EXAMPLE.TEST` for
    /// `xmpp/xmpp.example.test@EXAMPLE.TEST`): the realm a server maps its
    /// users from.
    pub fn realm(&self) -> Result<String, GssError> {
        let name = self
            .cred
            .name()
            .and_then(|n| n.canonicalize(Some(GSS_MECH_KRB5)))
            .map_err(|e| lib_err(&format!("principal of {}", self.service), e))?
            .to_string();
        match name.rsplit_once('@') {
            Some((_, realm)) if !realm.is_empty() => Ok(realm.to_owned()),
            _ => Err(GssError::new(format!(
                "principal {name} of {} names no realm",
                self.service
            ))),
        }
    }

    /// The service, `service@host`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// A new acceptor context with this key (one per authentication).
    pub fn acceptor(&self) -> Acceptor {
        Acceptor {
            ctx: ServerCtx::new(Some(self.cred.clone())),
            service: self.service.clone(),
        }
    }
}

/// The server side of a Kerberos (or SPNEGO) context.
pub struct Acceptor {
    ctx: ServerCtx,
    service: String,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("service", &self.service)
            .field("complete", &self.ctx.is_complete())
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// One step with the initiator's token (an acceptor always has one).
    pub fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        let token = token.ok_or_else(|| GssError::new("acceptor stepped without a token"))?;
        let out = self
            .ctx
            .step(token, None)
            .map_err(|e| lib_err(&format!("acceptor for {}", self.service), e))?;
        Ok(step_result(self.ctx.is_complete(), out.map(|b| b.to_vec())))
    }

    /// Whether the context is established.
    pub fn is_complete(&self) -> bool {
        self.ctx.is_complete()
    }

    /// `message` wrapped with integrity only (no confidentiality).
    pub fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        wrap(&mut self.ctx, message)
    }

    /// The message in a wrapped token, checked.
    pub fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        unwrap(&mut self.ctx, token)
    }

    /// The initiator's principal once established (`alice@EXAMPLE.TEST`).
    pub fn peer_name(&self) -> Option<String> {
        if !self.ctx.is_complete() {
            return None;
        }
        self.ctx.source_name().ok().map(|n| n.to_string())
    }

    /// The credential the initiator delegated (its forwarded
    /// ticket-granting ticket), once; `None` when it forwarded none.
    pub fn take_delegated(&mut self) -> Option<Credential> {
        self.ctx.take_delegated_cred().map(Credential::from_cred)
    }
}

impl GssContext for Acceptor {
    fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        Acceptor::step(self, token)
    }

    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        Acceptor::wrap(self, message)
    }

    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        Acceptor::unwrap(self, token)
    }

    fn peer_name(&self) -> Option<String> {
        Acceptor::peer_name(self)
    }
}

/// What one accepted HTTP Negotiate token gave.
#[derive(Debug)]
pub struct Negotiated {
    /// The client's principal: `alice@EXAMPLE.TEST`.
    pub principal: String,
    /// The forwarded ticket-granting ticket, when the client delegated
    /// one (a browser allowed to, a forwardable ticket).
    pub delegated: Option<Credential>,
    /// A token for `WWW-Authenticate: Negotiate <base64>` on the answer,
    /// when the mechanism made one (mutual authentication).
    pub reply: Option<Vec<u8>>,
}

/// Accepts one HTTP Negotiate token (RFC 4559; SPNEGO or raw Kerberos)
/// with the key of `credential` (`HTTP@<web host>`): who the client is,
/// and its delegated credential if it sent one. A token that needs
/// another leg is an error: Kerberos under SPNEGO never does, and the
/// browsers' one-leg exchange is all HTTP Negotiate carries.
pub fn accept_negotiate(
    credential: &AcceptorCredential,
    token: &[u8],
) -> Result<Negotiated, GssError> {
    if token.is_empty() {
        return Err(GssError::new("empty Negotiate token"));
    }
    let mut acceptor = credential.acceptor();
    match acceptor.step(Some(token))? {
        GssStep::Continue(_) => Err(GssError::new(
            "Negotiate token needs another leg (not a Kerberos token?)",
        )),
        GssStep::Complete(reply) => {
            let principal = acceptor
                .peer_name()
                .ok_or_else(|| GssError::new("established context without a peer name"))?;
            Ok(Negotiated {
                principal,
                delegated: acceptor.take_delegated(),
                reply,
            })
        }
    }
}

/// The one call `libgssapi` 0.11 does not wrap: `gss_acquire_cred_from`,
/// MIT's credential store (a keytab or a ccache per credential).
#[allow(unsafe_code)]
mod ffi {
    use super::*;
    use libgssapi_sys as sys;

    /// A string from `gss_display_status` for a failed call.
    fn status(major: u32, minor: u32) -> String {
        let e = libgssapi::error::Error {
            major: libgssapi::error::MajorFlags::from_bits_retain(major),
            minor,
        };
        e.to_string()
    }

    /// `gss_acquire_cred_from(name as a host-based service, usage,
    /// {key: value})`, for the default mechanisms (Kerberos and SPNEGO).
    pub(super) fn acquire_from(
        service: Option<&str>,
        usage: CredUsage,
        key: &str,
        value: &str,
    ) -> Result<Cred, String> {
        let key = CString::new(key).map_err(|_| "NUL in the store key".to_string())?;
        let value = CString::new(value).map_err(|_| "NUL in the store value".to_string())?;
        let mut minor: sys::OM_uint32 = 0;
        let mut name: sys::gss_name_t = ptr::null_mut();
        if let Some(service) = service {
            let mut buf = sys::gss_buffer_desc {
                length: service.len(),
                value: service.as_ptr() as *mut std::ffi::c_void,
            };
            // SAFETY: buf points at `service`, alive for the call; the
            // name type is a static OID of the library; `name` receives a
            // new name released below.
            let major = unsafe {
                sys::gss_import_name(
                    &mut minor,
                    &mut buf,
                    sys::GSS_C_NT_HOSTBASED_SERVICE,
                    &mut name,
                )
            };
            if major != sys::GSS_S_COMPLETE {
                return Err(format!("service name {service}: {}", status(major, minor)));
            }
        }
        let mut element = sys::gss_key_value_element_desc {
            key: key.as_ptr(),
            value: value.as_ptr(),
        };
        let store = sys::gss_key_value_set_desc {
            count: 1,
            elements: &mut element,
        };
        let usage = match usage {
            CredUsage::Accept => sys::GSS_C_ACCEPT,
            CredUsage::Initiate => sys::GSS_C_INITIATE,
            CredUsage::Both => sys::GSS_C_BOTH,
        } as sys::gss_cred_usage_t;
        let mut cred: sys::gss_cred_id_t = ptr::null_mut();
        // SAFETY: every pointer is valid for the call (the CStrings and the
        // store outlive it); a null name and a null mechanism set are the
        // library's GSS_C_NO_NAME / GSS_C_NO_OID_SET; the credential is
        // handed to `Cred::from_c`, its sole owner.
        let major = unsafe {
            sys::gss_acquire_cred_from(
                &mut minor,
                name,
                sys::_GSS_C_INDEFINITE,
                ptr::null_mut(),
                usage,
                &store,
                &mut cred,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let acquire_minor = minor;
        if !name.is_null() {
            // SAFETY: `name` came from gss_import_name above, released once.
            unsafe { sys::gss_release_name(&mut minor, &mut name) };
        }
        if major != sys::GSS_S_COMPLETE {
            return Err(status(major, acquire_minor));
        }
        // SAFETY: `cred` is a fresh credential we own alone.
        Ok(unsafe { Cred::from_c(cred) })
    }
}

/// A step's output token as the core's [`GssStep`], by whether the context
/// is now established (either side).
fn step_result(complete: bool, out: Option<Vec<u8>>) -> GssStep {
    if complete {
        GssStep::Complete(out)
    } else {
        GssStep::Continue(out.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<T: GssContext>() {}

    #[test]
    fn both_sides_are_contexts_for_the_core_mechanisms() {
        context::<Initiator>();
        context::<Acceptor>();
    }

    #[test]
    fn a_missing_keytab_fails_when_the_credential_is_made() {
        let e = AcceptorCredential::from_keytab(
            Path::new("/nonexistent/xmpp.keytab"),
            "xmpp",
            "xmpp.example.test",
        )
        .unwrap_err();
        assert!(e.message().contains("/nonexistent/xmpp.keytab"), "{e}");
    }

    #[test]
    fn a_bad_service_name_is_refused() {
        assert!(Initiator::new("xmpp@x", "host", None).is_err());
        assert!(Initiator::new("xmpp", "", None).is_err());
    }

    #[test]
    fn an_initiator_names_no_peer_through_the_trait() {
        let i = Initiator::new("xmpp", "xmpp.example.test", None).unwrap();
        assert_eq!(GssContext::peer_name(&i), None);
        assert_eq!(i.target_name(), None);
    }
}
