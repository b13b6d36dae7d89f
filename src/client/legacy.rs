//! The client side of seed 001: in-band registration (XEP-0077) before
//! authentication, and non-SASL authentication (XEP-0078) for pre-1.0
//! servers or when no SASL mechanism is acceptable. Only with the `legacy`
//! cargo feature.

use minidom::Element;

use super::{Client, ClientError, ClientEvent, Credentials, PeerRefusal, Phase, PolicyError};
use crate::features::StreamFeatures;
use crate::ns;
use crate::sasl::{ExchangeSecurity, Secret};
use crate::steps::iq_auth::{self, LegacyCredential};
use crate::steps::register::{self, RegisterForm};
use crate::steps::LegacyError;

/// Whether and how the client may use `jabber:iq:auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegacyAuthPolicy {
    /// Use it with pre-1.0 servers (no `version`, seed 001), and with 1.0
    /// servers that offer `<auth xmlns='http://jabber.org/features/iq-auth'/>`
    /// but no acceptable SASL mechanism.
    pub enabled: bool,
    /// Allow the plaintext method on an unencrypted stream (the digest and
    /// zero-knowledge methods send no password).
    pub allow_plaintext_without_tls: bool,
}

/// An in-band registration to do before authenticating.
#[derive(Clone, PartialEq, Eq)]
pub struct Registration {
    /// The fields to submit (`username`, `password`, `email`...); empty for
    /// an enquiry only (the server's form is reported).
    pub fields: Vec<(String, String)>,
    /// Authenticate afterwards (with the configured credentials); otherwise
    /// close the stream once the registration is answered.
    pub then_login: bool,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Registration")
            .field("fields", &names)
            .field("then_login", &self.then_login)
            .finish()
    }
}

const REGISTER_ID: &str = "reg_1";
const AUTH_GET_ID: &str = "auth_1";
const AUTH_SET_ID: &str = "auth_2";

/// What the client waits for: the reply to the IQ it sent.
pub(super) enum Step {
    /// A registration IQ sent; `features` to go on with afterwards.
    Registering { features: Option<StreamFeatures> },
    /// The `jabber:iq:auth` IQ-get sent.
    Fields,
    /// The `jabber:iq:auth` IQ-set sent.
    Auth { resource: String },
}

impl Step {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Registering { .. } => "registering",
            Self::Fields => "legacy-fields",
            Self::Auth { .. } => "legacy-auth",
        }
    }

    /// The id of the IQ whose reply the step waits for.
    pub(super) fn reply_id(&self) -> &'static str {
        match self {
            Self::Registering { .. } => REGISTER_ID,
            Self::Fields => AUTH_GET_ID,
            Self::Auth { .. } => AUTH_SET_ID,
        }
    }
}

/// What the legacy protocols remember on one connection.
#[derive(Default)]
pub(super) struct State {
    /// The registration was done (or refused) on this connection.
    registered: bool,
    /// The server's stream id (the salt of legacy digests).
    pub(super) stream_id: Option<String>,
}

impl Client {
    /// The reply to the IQ `step` sent.
    pub(super) fn on_legacy_reply(&mut self, now: std::time::Instant, step: Step, el: &Element) {
        match step {
            Step::Registering { features } => self.on_registration_reply(now, el, features),
            Step::Fields => {
                self.phase = Phase::Legacy(Step::Fields);
                self.on_legacy_fields(el);
            }
            Step::Auth { resource } => {
                self.phase = Phase::Legacy(Step::Auth {
                    resource: resource.clone(),
                });
                self.on_legacy_result(el, resource);
            }
        }
    }

    /// Before authentication, once the server's header (pre-1.0) or
    /// features (1.0) are known: register first when asked to, then
    /// authenticate.
    pub(super) fn preauth(&mut self, features: Option<StreamFeatures>) {
        if let Some(reg) = self
            .config
            .register
            .clone()
            .filter(|_| !self.legacy.registered)
        {
            self.legacy.registered = true;
            let el = if reg.fields.is_empty() {
                register::get(REGISTER_ID)
            } else {
                register::set(REGISTER_ID, &reg.fields)
            };
            self.write(&el);
            self.phase = Phase::Legacy(Step::Registering { features });
            return;
        }
        match features {
            Some(f) => self.start_sasl(f),
            None if self.config.legacy_auth.enabled => self.start_legacy(),
            None => self.fail(ClientError::Policy(PolicyError::UnsupportedVersion)),
        }
    }

    pub(super) fn start_legacy(&mut self) {
        if !matches!(self.config.credentials, Credentials::Password { .. }) {
            return self.fail(ClientError::Policy(PolicyError::NoMechanism(vec![
                "jabber:iq:auth".into(),
            ])));
        }
        let username = self.config.username().to_owned();
        self.write(&iq_auth::get(AUTH_GET_ID, &username));
        self.phase = Phase::Legacy(Step::Fields);
    }

    fn on_registration_reply(
        &mut self,
        now: std::time::Instant,
        el: &Element,
        features: Option<StreamFeatures>,
    ) {
        let enquiry = self
            .config
            .register
            .as_ref()
            .is_some_and(|r| r.fields.is_empty());
        let ok = el.attr("type") == Some("result");
        if ok && enquiry {
            let form = el
                .get_child("query", ns::IQ_REGISTER)
                .map(RegisterForm::from_query)
                .unwrap_or_default();
            self.core.push_event(ClientEvent::RegistrationForm(form));
        } else if ok {
            self.core.push_event(ClientEvent::Registered);
        } else {
            self.phase = Phase::Legacy(Step::Registering { features: None });
            let e = LegacyError::from_iq(el);
            return self.fail(ClientError::Refused(PeerRefusal::Registration(e)));
        }
        let then_login = self.config.register.as_ref().is_some_and(|r| r.then_login);
        if then_login && !enquiry {
            self.preauth(features);
        } else {
            self.close(now);
        }
    }

    fn on_legacy_fields(&mut self, el: &Element) {
        let fields = match iq_auth::parse_fields(el) {
            Ok(f) => f,
            Err(e) => return self.fail(ClientError::Refused(PeerRefusal::LegacyAuth(e))),
        };
        let Credentials::Password { password, .. } = &self.config.credentials else {
            return self.fail(ClientError::Policy(PolicyError::NoMechanism(vec![
                "jabber:iq:auth".into(),
            ])));
        };
        let pw = password.expose();
        let cleartext_ok =
            self.tls.is_some() || self.config.legacy_auth.allow_plaintext_without_tls;
        if let Some((seq, _)) = fields.zero_k {
            // The server picks how many hashes we do: never more than the
            // configured cap, and none at all when it asks for more.
            let max = self.config.max_zero_k_sequence;
            if seq > max {
                return self.fail(ClientError::Policy(PolicyError::ZeroKSequenceTooHigh {
                    sequence: seq,
                    max,
                }));
            }
        }
        // Strongest first: zero-knowledge, digest, plaintext.
        let credential = if let Some((seq, token)) = &fields.zero_k {
            LegacyCredential::ZeroK(Secret::new(iq_auth::zero_k_hash(pw, token, *seq)))
        } else if fields.digest && self.legacy.stream_id.is_some() {
            let id = self.legacy.stream_id.clone().unwrap_or_default();
            LegacyCredential::Digest(Secret::new(iq_auth::digest(&id, pw)))
        } else if fields.password && cleartext_ok {
            LegacyCredential::Password(password.clone())
        } else {
            return self.fail(ClientError::Policy(PolicyError::NoMechanism(vec![
                "jabber:iq:auth".into(),
            ])));
        };
        let username = self.config.username().to_owned();
        let resource = self
            .config
            .resource()
            .map_or("xmpp-sansio", |r| r.as_str())
            .to_owned();
        self.write(&iq_auth::set(
            AUTH_SET_ID,
            &username,
            &resource,
            &credential,
        ));
        self.phase = Phase::Legacy(Step::Auth { resource });
    }

    fn on_legacy_result(&mut self, el: &Element, resource: String) {
        if el.attr("type") != Some("result") {
            return self.fail(ClientError::Refused(PeerRefusal::LegacyAuth(
                LegacyError::from_iq(el),
            )));
        }
        if el.get_child("query", ns::IQ_AUTH).is_some() {
            // A success is an empty result; a result that repeats the
            // fields (Prosody, for a method it does not offer) is not one.
            return self.fail(ClientError::Refused(PeerRefusal::LegacyAuth(
                LegacyError::NOT_AUTHORIZED,
            )));
        }
        self.authenticated = true;
        self.core.push_event(ClientEvent::Authenticated {
            mechanism: "jabber:iq:auth".into(),
            security: ExchangeSecurity::default(),
            sasl2: false,
        });
        match self.config.jid().with_resource_str(&resource) {
            Ok(jid) => self.ready(jid),
            Err(e) => self.fail(ClientError::Internal(crate::error::InternalError::jid(e))),
        }
    }
}
