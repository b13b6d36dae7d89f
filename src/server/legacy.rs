//! The server side of seed 001: in-band registration (XEP-0077) and
//! non-SASL authentication (XEP-0078), before and inside a session. Only
//! with the `legacy` cargo feature.

use std::time::Instant;

use jid::FullJid;
use minidom::Element;

use super::{Phase, Server, ServerEvent};
use crate::core::{AnswerKind, UsageError};
use crate::features::StreamFeatures;
use crate::sasl::{ExchangeSecurity, Identity, Secret};
use crate::steps::iq_auth::{self, AuthFields, AuthQuery, LegacyCredential, ZeroKState};
use crate::steps::register::{self, field, RedactedFields, RegisterQuery};
use crate::steps::LegacyError;
use crate::stream_error::{StreamError, StreamErrorCondition};

/// Which `jabber:iq:auth` methods a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyAuthMethods {
    /// `<password/>` (plaintext; only over TLS when TLS is required).
    pub password: bool,
    /// `<digest/>`: SHA-1 of stream id and password (the host needs the
    /// plaintext password).
    pub digest: bool,
    /// `<sequence/>`/`<token/>`/`<hash/>`: zero-knowledge (the host keeps
    /// a [`ZeroKState`] per user).
    pub zero_k: bool,
}

impl Default for LegacyAuthMethods {
    fn default() -> Self {
        Self {
            password: true,
            digest: true,
            zero_k: true,
        }
    }
}

/// A registration decision for the host; answer with
/// [`Server::answer_register`].
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum RegistrationRequest {
    /// Create an account (before authentication). Refuse with 409 when the
    /// name is taken, 406 when a field is unacceptable.
    Create {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
        /// Every field sent, `username` and `password` included.
        fields: Vec<(String, String)>,
    },
    /// Change the password of the session's account.
    ChangePassword {
        /// The account.
        username: String,
        /// The new password.
        password: Secret,
    },
    /// Update other registration fields of the session's account.
    Update {
        /// The account.
        username: String,
        /// The fields sent.
        fields: Vec<(String, String)>,
    },
    /// Remove the session's account; the stream ends after it.
    Remove {
        /// The account.
        username: String,
    },
}

/// `Debug` shows no password: `password` is a [`Secret`], and in `fields`
/// the value of a field named `password` is redacted.
impl std::fmt::Debug for RegistrationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Create {
                username,
                password,
                fields,
            } => f
                .debug_struct("Create")
                .field("username", username)
                .field("password", password)
                .field("fields", &RedactedFields(fields))
                .finish(),
            Self::ChangePassword { username, password } => f
                .debug_struct("ChangePassword")
                .field("username", username)
                .field("password", password)
                .finish(),
            Self::Update { username, fields } => f
                .debug_struct("Update")
                .field("username", username)
                .field("fields", &RedactedFields(fields))
                .finish(),
            Self::Remove { username } => f
                .debug_struct("Remove")
                .field("username", username)
                .finish(),
        }
    }
}

/// A legacy authentication request for the host; answer with
/// [`Server::answer_legacy_auth`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LegacyAuthRequest {
    /// The zero-knowledge state of `username`, to advertise its sequence
    /// and token. Answer [`LegacyAuthAnswer::ZeroK`].
    ZeroKState {
        /// The user name.
        username: String,
    },
    /// Check these credentials (and whether `resource` may be used).
    /// Answer [`LegacyAuthAnswer::Verdict`]: 401 for bad credentials, 409
    /// for a resource in use. Digest: compare with
    /// [`iq_auth::digest`]`(stream_id, password)`; zero-knowledge: call
    /// [`ZeroKState::verify`] and store the stepped-down state.
    Verify {
        /// The user name.
        username: String,
        /// The resource.
        resource: String,
        /// What the client sent.
        credential: LegacyCredential,
        /// This stream's id (the digest's salt).
        stream_id: String,
    },
}

/// The host's answer to a [`LegacyAuthRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyAuthAnswer {
    /// The user's zero-knowledge state, `None` when it has none.
    ZeroK(Option<ZeroKState>),
    /// The decision on a `Verify`.
    Verdict(Result<(), LegacyError>),
}

impl LegacyAuthAnswer {
    /// Which kind of answer this is.
    pub fn kind(&self) -> AnswerKind {
        match self {
            Self::ZeroK(_) => AnswerKind::LegacyZeroK,
            Self::Verdict(_) => AnswerKind::LegacyVerdict,
        }
    }
}

impl Pending {
    /// The kind of answer the request takes.
    pub(super) fn answer_kind(&self) -> AnswerKind {
        match self {
            Self::Register { .. } => AnswerKind::Registration,
            Self::Fields { .. } => AnswerKind::LegacyZeroK,
            Self::Verify { .. } => AnswerKind::LegacyVerdict,
        }
    }
}

/// What a host request was about, to answer the client afterwards.
#[derive(Debug)]
pub(super) enum Pending {
    Register {
        id: String,
        query: Option<Element>,
        remove: bool,
    },
    Fields {
        id: String,
        username: String,
    },
    Verify {
        id: String,
        username: String,
        jid: FullJid,
    },
}

/// The copy of a client's `<query/>` that an error reply echoes (XEP-0077
/// and XEP-0078 return what was sent): every credential in it emptied, so
/// a refused registration or login never sends a password back. Emptied:
/// `<password/>`, `<digest/>` and `<hash/>` (in any namespace), and the
/// `password` or `text-private` fields of a `jabber:x:data` form.
fn echoed(mut query: Element) -> Element {
    for c in query.children_mut() {
        if matches!(c.name(), "password" | "digest" | "hash") {
            *c = Element::builder(c.name(), c.ns()).build();
        } else if c.is("x", DATA_FORMS) {
            for f in c.children_mut().filter(|f| f.name() == "field") {
                if f.attr("var") == Some("password") || f.attr("type") == Some("text-private") {
                    f.take_nodes();
                }
            }
        }
    }
    query
}

/// XEP-0004 data forms (XEP-0077's extensible registration).
const DATA_FORMS: &str = "jabber:x:data";

impl Server {
    /// An IQ error; `query`, the client's, is echoed without credentials.
    fn legacy_reply(&mut self, id: &str, err: LegacyError, query: Option<Element>) {
        self.write(&err.to_iq(id, query.map(echoed)));
    }

    fn hold(&mut self, pending: Pending, resume: Phase) {
        self.phase = Phase::Host {
            pending: Box::new(pending),
            resume: Box::new(resume),
        };
    }

    /// The `<register/>` and `<auth/>` features, when configured.
    pub(super) fn offer_legacy(&self, f: &mut StreamFeatures) {
        f.register = self.config.register.is_some();
        f.iq_auth = self.config.legacy_auth.is_some();
    }

    /// `jabber:iq:register` and `jabber:iq:auth` before authentication.
    /// Returns whether `el` was one of them.
    pub(super) fn on_legacy_preauth(&mut self, el: &Element) -> bool {
        // When TLS is required, nothing of this is served before it.
        let blocked = self.n.tls.is_none() && self.config.tls == super::ServerTls::StartTlsRequired;
        if let Some(q) = RegisterQuery::parse(el) {
            match q {
                _ if blocked => {
                    let id = el.attr("id").unwrap_or_default().to_owned();
                    self.legacy_reply(&id, LegacyError::NOT_ALLOWED, None);
                }
                RegisterQuery::Get { id } => match &self.config.register {
                    Some(form) => {
                        let mut form = form.clone();
                        for required in ["username", "password"] {
                            if !form.fields.iter().any(|f| f == required) {
                                form.fields.push(required.to_owned());
                            }
                        }
                        self.write(&register::form_result(&id, &form));
                    }
                    None => {
                        let q = el.get_child("query", crate::ns::IQ_REGISTER).cloned();
                        self.legacy_reply(&id, LegacyError::NOT_IMPLEMENTED, q);
                    }
                },
                RegisterQuery::Set { id, fields, query } => {
                    // Seed 001: the required fields are checked before
                    // whether registration is enabled at all.
                    let (Some(u), Some(p)) =
                        (field(&fields, "username"), field(&fields, "password"))
                    else {
                        self.legacy_reply(&id, LegacyError::NOT_ACCEPTABLE, Some(query));
                        return true;
                    };
                    if self.config.register.is_none() {
                        self.legacy_reply(&id, LegacyError::NOT_IMPLEMENTED, Some(query));
                        return true;
                    }
                    let req = RegistrationRequest::Create {
                        username: u.to_owned(),
                        password: Secret::new(p),
                        fields: fields.clone(),
                    };
                    self.core.push_event(ServerEvent::Register(req));
                    self.hold(
                        Pending::Register {
                            id,
                            query: Some(echoed(query)),
                            remove: false,
                        },
                        Phase::Negotiating,
                    );
                }
                RegisterQuery::Remove { id } => {
                    self.legacy_reply(&id, LegacyError::NOT_ALLOWED, None);
                }
            }
            return true;
        }
        let Some(q) = AuthQuery::parse(el) else {
            return false;
        };
        let Some(methods) = self.config.legacy_auth else {
            let id = el.attr("id").unwrap_or_default().to_owned();
            self.legacy_reply(&id, LegacyError::NOT_IMPLEMENTED, None);
            return true;
        };
        if blocked {
            // No credential of any kind before the required TLS, and no
            // question to the host (a user's zero-knowledge state) either:
            // 406, as Prosody's mod_legacyauth answers. A pre-1.0 stream
            // (seed 001) gets no STARTTLS offer, so it cannot log in here.
            let (AuthQuery::Get { id, .. } | AuthQuery::Set { id, .. }) = &q;
            let id = id.clone();
            self.legacy_reply(&id, LegacyError::NOT_ACCEPTABLE, None);
            if matches!(q, AuthQuery::Set { .. }) {
                self.count_auth_failure();
            }
            return true;
        }
        match q {
            AuthQuery::Get { id, username } => {
                let username = username.unwrap_or_default();
                if methods.zero_k && !username.is_empty() {
                    self.core
                        .push_event(ServerEvent::LegacyAuth(LegacyAuthRequest::ZeroKState {
                            username: username.clone(),
                        }));
                    self.hold(Pending::Fields { id, username }, Phase::Negotiating);
                } else {
                    // Nothing from the host: the client's user name (read,
                    // so writable) and the configured methods.
                    let fields = self.auth_fields(&id, username, None);
                    self.write(&fields);
                }
            }
            AuthQuery::Set {
                id,
                username,
                resource,
                credential,
            } => {
                let (Some(username), Some(resource), Some(credential)) =
                    (username, resource, credential)
                else {
                    // Seed 001: a missing resource is 406 too.
                    let q = el.get_child("query", crate::ns::IQ_AUTH).cloned();
                    self.legacy_reply(&id, LegacyError::NOT_ACCEPTABLE, q);
                    return true;
                };
                let allowed = match &credential {
                    LegacyCredential::Password(_) => methods.password,
                    LegacyCredential::Digest(_) => methods.digest,
                    LegacyCredential::ZeroK(_) => methods.zero_k,
                };
                if !allowed {
                    // A refused method is a failed attempt.
                    self.legacy_reply(&id, LegacyError::NOT_ACCEPTABLE, None);
                    self.count_auth_failure();
                    return true;
                }
                // The session's JID, prepared: a user name or resource that
                // is none is as unacceptable as a missing one.
                let Some(jid) = self
                    .account_of(&username)
                    .and_then(|b| b.with_resource_str(&resource).ok())
                else {
                    self.legacy_reply(&id, LegacyError::NOT_ACCEPTABLE, None);
                    return true;
                };
                let stream_id = self.n.stream_id.clone();
                self.core
                    .push_event(ServerEvent::LegacyAuth(LegacyAuthRequest::Verify {
                        username: username.clone(),
                        resource: resource.clone(),
                        credential,
                        stream_id,
                    }));
                self.hold(Pending::Verify { id, username, jid }, Phase::Negotiating);
            }
        }
        true
    }

    /// The methods for `username`. Never before a required TLS:
    /// [`on_legacy_preauth`](Self::on_legacy_preauth) refuses every
    /// `jabber:iq:auth` query then, so no method is offered in plaintext.
    fn auth_fields(&self, id: &str, username: String, zero_k: Option<&ZeroKState>) -> Element {
        let methods = self.config.legacy_auth.unwrap_or_default();
        let f = AuthFields {
            username,
            password: methods.password,
            digest: methods.digest,
            zero_k: zero_k.and_then(|z| z.advertised().map(|n| (n, z.token.clone()))),
            resource: true,
        };
        iq_auth::fields_result(id, &f)
    }

    /// `jabber:iq:register` inside a session: password change, update,
    /// removal; a new registration is refused.
    pub(super) fn on_register_in_session(&mut self, el: &Element, jid: &FullJid) -> bool {
        let Some(q) = RegisterQuery::parse(el) else {
            return false;
        };
        let username = jid.node().map_or("", |n| n.as_str()).to_owned();
        let ready = Phase::Ready { jid: jid.clone() };
        match q {
            RegisterQuery::Get { id } => {
                let mut form = self.config.register.clone().unwrap_or_default();
                form.registered = true;
                if !form.fields.iter().any(|f| f == "password") {
                    form.fields.push("password".into());
                }
                self.write(&register::form_result(&id, &form));
            }
            RegisterQuery::Set { id, fields, query } => {
                if field(&fields, "username").is_some_and(|u| u != username) {
                    // Seed 001: no new registration inside a session.
                    self.legacy_reply(&id, LegacyError::NOT_ALLOWED, Some(query));
                    return true;
                }
                let others: Vec<(String, String)> = fields
                    .iter()
                    .filter(|(n, _)| n != "username" && n != "password")
                    .cloned()
                    .collect();
                let req = match field(&fields, "password") {
                    Some(p) if others.is_empty() => RegistrationRequest::ChangePassword {
                        username,
                        password: Secret::new(p),
                    },
                    _ => RegistrationRequest::Update { username, fields },
                };
                self.core.push_event(ServerEvent::Register(req));
                self.hold(
                    Pending::Register {
                        id,
                        query: Some(echoed(query)),
                        remove: false,
                    },
                    ready,
                );
            }
            RegisterQuery::Remove { id } => {
                self.core
                    .push_event(ServerEvent::Register(RegistrationRequest::Remove {
                        username,
                    }));
                self.hold(
                    Pending::Register {
                        id,
                        query: None,
                        remove: true,
                    },
                    ready,
                );
            }
        }
        true
    }

    /// The host's answer to [`ServerEvent::Register`] (or
    /// [`UsageError::WrongAnswer`] when another request is pending).
    pub fn answer_register(
        &mut self,
        now: Instant,
        answer: super::RegisterAnswer,
    ) -> Result<(), UsageError> {
        self.check_answer(AnswerKind::Registration)?;
        let (pending, resume) = self.take_pending()?;
        let (id, query, remove) = match pending {
            Pending::Register { id, query, remove } => {
                self.phase = *resume;
                (id, query, remove)
            }
            other => {
                self.phase = Phase::Host {
                    pending: Box::new(other),
                    resume,
                };
                return Err(UsageError::NoPendingRequest);
            }
        };
        match answer {
            Ok(()) => {
                self.write(&register::result(&id));
                if remove {
                    // XEP-0077 3.2: the account is gone; so is the stream.
                    self.end_with(
                        StreamError::new(StreamErrorCondition::NotAuthorized)
                            .with_text("Account removed"),
                    );
                    return Ok(());
                }
            }
            Err(e) => self.legacy_reply(&id, e, query),
        }
        self.resume(now);
        Ok(())
    }

    /// The host's answer to [`ServerEvent::LegacyAuth`]: `ZeroK` to a
    /// `ZeroKState` request, `Verdict` to a `Verify`, or
    /// [`UsageError::WrongAnswer`]. A zero-knowledge state whose token
    /// cannot be sent (a character XML cannot carry) is refused with
    /// [`UsageError::Write`]; the request stays pending.
    pub fn answer_legacy_auth(
        &mut self,
        now: Instant,
        answer: LegacyAuthAnswer,
    ) -> Result<(), UsageError> {
        self.check_answer(answer.kind())?;
        let (pending, resume) = self.take_pending()?;
        match (pending, answer) {
            (Pending::Fields { id, username }, LegacyAuthAnswer::ZeroK(state)) => {
                let fields = self.auth_fields(&id, username.clone(), state.as_ref());
                if let Err(e) = self.core.write(&fields) {
                    self.phase = Phase::Host {
                        pending: Box::new(Pending::Fields { id, username }),
                        resume,
                    };
                    return Err(UsageError::Write(e));
                }
                self.phase = *resume;
            }
            (Pending::Verify { id, username, jid }, LegacyAuthAnswer::Verdict(v)) => {
                self.phase = *resume;
                match v {
                    Ok(()) => {
                        self.write(&iq_auth::result(&id));
                        let identity = Identity {
                            username: username.clone(),
                            authzid: None,
                        };
                        self.identity = Some(identity.clone());
                        self.n.stop_clocks();
                        self.n.account = Some(jid.to_bare());
                        self.core.push_event(ServerEvent::Authenticated {
                            identity,
                            jid: jid.to_bare(),
                            mechanism: "jabber:iq:auth".into(),
                            security: ExchangeSecurity::default(),
                        });
                        self.core
                            .push_event(ServerEvent::Ready { jid: jid.clone() });
                        self.core.become_lean(self.config.buffers);
                        self.n.end();
                        self.phase = Phase::Ready { jid };
                    }
                    Err(e) => {
                        self.legacy_reply(&id, e, None);
                        if e == LegacyError::NOT_AUTHORIZED {
                            // Bad credentials; a resource in use (409) or
                            // the host's own trouble is no failed attempt.
                            self.count_auth_failure();
                        }
                    }
                }
            }
            (other, _) => {
                self.phase = Phase::Host {
                    pending: Box::new(other),
                    resume,
                };
                return Err(UsageError::NoPendingRequest);
            }
        }
        self.resume(now);
        Ok(())
    }

    /// The request with the host and the phase to return to, taken out of
    /// the phase (which is left as it was when none is).
    fn take_pending(&mut self) -> Result<(Pending, Box<Phase>), UsageError> {
        match std::mem::replace(&mut self.phase, Phase::AwaitHeader) {
            Phase::Host { pending, resume } => Ok((*pending, resume)),
            other => {
                self.phase = other;
                Err(UsageError::NoPendingRequest)
            }
        }
    }
}
