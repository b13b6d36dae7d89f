//! The client's SASL2 step (XEP-0388): `<authenticate/>` with the inline
//! requests (Bind 2, stream management's `<enable/>` and `<resume/>`,
//! XEP-0480 upgrades), challenges, tasks, `<success/>` with what was
//! bound, enabled or resumed, then the server's features without a
//! restart.

use jid::FullJid;
use minidom::Element;
use zeroize::Zeroizing;

use super::{
    Client, ClientError, ClientEvent, Credentials, Misbehavior, PeerRefusal, Phase, PolicyError,
    StreamErrorCondition,
};
use crate::fast::{parse_token, FastAuth, FastFeature, FastToken, RequestToken};
use crate::features::StreamFeatures;
use crate::ns;
use crate::sasl::{ClientMechanism, SaslCondition, SaslError, ScramHash};
use crate::sasl2::upgrade;
use crate::sasl2::Sasl2Policy;
use crate::sm::Session;
use crate::steps::bind2::{Bind2Features, Bind2Request, Bind2Result};
use crate::steps::sasl2::{Authenticate, Sasl2Element, Sasl2Feature, Success};
use crate::steps::sm::SmElement;

/// A SASL2 exchange under way.
pub(super) struct Sasl2Exchange {
    mech: Box<dyn ClientMechanism>,
    /// Where the exchange is.
    step: Step,
    /// `<resume/>` went inline.
    resume: bool,
    /// A Bind 2 request went inline.
    bind2: bool,
    /// Carbons and CSI sent in it (those the host asked for and the
    /// server listed).
    bind2_features: Bind2Features,
    /// The upgrade tasks asked for.
    upgrades: Vec<ScramHash>,
    /// A FAST token login: what a password login on this stream needs,
    /// should the token be refused and the policy allow the password.
    token_login: Option<PasswordFallback>,
    /// The mechanism a `<token/>` in `<success/>` is bound to: the one
    /// asked for in `<request-token/>`, or the token login's (rotation).
    token_mechanism: Option<String>,
    /// The offer, kept for a password login after a refused token.
    feature: Option<Box<Sasl2Feature>>,
    /// The token login asked for its token to be invalidated.
    invalidate: bool,
}

/// What a password login after a refused FAST token needs besides the
/// SASL2 offer.
pub(super) struct PasswordFallback {
    /// The XEP-0440 channel-binding types the server advertised.
    pub(super) cb_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The mechanism runs: challenges, then `<success/>` or `<continue/>`.
    Mechanism,
    /// The mechanism succeeded (its additional data checked): tasks.
    Tasks,
    /// `<next/>` sent for this upgrade: waiting for its `<task-data/>`.
    Upgrade(ScramHash),
}

/// What follows the server's features after a SASL2 success.
pub(super) enum AfterSasl2 {
    /// Bind 2 bound this JID.
    Bound(FullJid),
}

impl Client {
    /// Whether the last login used SASL2 (XEP-0388).
    pub fn used_sasl2(&self) -> bool {
        self.sasl2_used
    }

    /// Whether this login is SASL2's: the offer when it is (taken out of
    /// `features`), `None` for RFC 6120 SASL; an error when the policy
    /// requires SASL2 and the server does not offer it.
    pub(super) fn sasl2_choice(
        &mut self,
        features: &mut StreamFeatures,
    ) -> Result<Option<Sasl2Feature>, PolicyError> {
        match (features.sasl2.take(), self.config.sasl2) {
            (_, Sasl2Policy::Never) | (None, Sasl2Policy::Auto) => Ok(None),
            (None, Sasl2Policy::Require) => Err(PolicyError::Sasl2NotOffered),
            (Some(f), _) => Ok(Some(f)),
        }
    }

    /// Logs in with a FAST token (XEP-0484) on the next streams that
    /// offer SASL2 and the token's mechanism, instead of the password
    /// (which is used only when
    /// [`FastPolicy::fallback_to_password`](crate::fast::FastPolicy::fallback_to_password)
    /// allows). `now_unix`: the host's clock (Unix seconds), against the
    /// token's expiry. Call it before the server's features arrive.
    pub fn use_fast_token(&mut self, token: FastToken, now_unix: i64) {
        self.fast_token = Some(Box::new((token, now_unix)));
    }

    /// The next login with the FAST token (given to
    /// [`use_fast_token`](Self::use_fast_token)) asks the server to
    /// invalidate it (`<fast invalidate='true'/>`, XEP-0484 section 3.5:
    /// a log-out): once it succeeded, the client reports
    /// [`ClientEvent::FastTokenInvalidated`] and holds no token, and a
    /// token in that `<success/>` is ignored. The session goes on (close
    /// it to log out). Call it before the server's features arrive.
    pub fn invalidate_fast_token(&mut self) {
        self.fast_invalidate = true;
    }

    /// The FAST token the client holds: the one given to
    /// [`use_fast_token`](Self::use_fast_token) or the last one the server
    /// issued on this stream.
    pub fn fast_token(&self) -> Option<&FastToken> {
        self.fast_token.as_deref().map(|(t, _)| t)
    }

    /// The mechanism for a login with the token held, over `sasl2`.
    pub(super) fn fast_login(
        &mut self,
        sasl2: Option<&Sasl2Feature>,
    ) -> Result<Box<dyn ClientMechanism>, Box<ClientError>> {
        let Some((token, now)) = self.fast_token.as_deref() else {
            return Err(Box::new(ClientError::Policy(PolicyError::FastToken(
                crate::fast::FastRefusal::NotOffered,
            ))));
        };
        let fast = sasl2.and_then(|f| f.extra_inline.iter().find_map(FastFeature::parse));
        super::mechanism::fast_mechanism_from(
            &self.config,
            self.rng.as_mut(),
            fast,
            token,
            self.tls.as_ref(),
            Some(*now),
        )
        .map_err(|e| {
            Box::new(match e {
                super::FastMechanismError::Refused(r) => {
                    ClientError::Policy(PolicyError::FastToken(r))
                }
                super::FastMechanismError::Sasl(e) => ClientError::sasl(e),
            })
        })
    }

    /// `<authenticate/>` with `mech` and the inline requests the offer
    /// allows; `token_login` when `mech` uses the FAST token (then the
    /// offer is kept, moved rather than copied, for a password login
    /// should the token be refused).
    pub(super) fn start_sasl2(
        &mut self,
        mut mech: Box<dyn ClientMechanism>,
        feature: Sasl2Feature,
        token_login: Option<PasswordFallback>,
    ) {
        let initial = match mech.initial_response() {
            Ok(i) => i,
            Err(e) => return self.fail(ClientError::sasl(e)),
        };
        let mut auth = Authenticate::new(mech.name());
        auth.initial_response = initial.map(Zeroizing::new);
        auth.user_agent = self.config.user_agent.clone();
        let mut exchange = Sasl2Exchange {
            mech,
            step: Step::Mechanism,
            resume: false,
            bind2: false,
            bind2_features: Bind2Features::default(),
            upgrades: Vec::new(),
            feature: None,
            token_login,
            token_mechanism: None,
            invalidate: false,
        };
        // Resume inline, when the server can; Bind 2 as well, so that a
        // failed resumption still binds.
        if self.sm_resuming && feature.sm_resume {
            if let Some(s) = &self.sm {
                auth.resume = Some((s.id.clone().unwrap_or_default(), s.handled));
                exchange.resume = true;
            }
        }
        if let Some(offer) = &feature.bind2 {
            let sm_enable = self
                .config
                .stream_management
                .as_ref()
                .filter(|_| offer.offers(ns::SM))
                .map(|s| SmElement::Enable {
                    resume: s.resume,
                    max: s.max_secs(),
                });
            let asked = Bind2Features {
                carbons: self.config.carbons,
                csi: self.config.csi,
            };
            exchange.bind2_features = asked.offered(offer);
            auth.bind2 = Some(Bind2Request {
                tag: self.config.resource().map(|r| r.as_str().to_owned()),
                sm_enable,
                features: exchange.bind2_features,
                extra: Vec::new(),
            });
            exchange.bind2 = true;
        }
        if exchange.token_login.is_none()
            && self.config.scram_upgrades
            && matches!(self.config.credentials, Credentials::Password { .. })
        {
            for task in &feature.upgrades {
                if let Some(hash) = upgrade::parse_task(task) {
                    auth.upgrades.push(task.clone());
                    exchange.upgrades.push(hash);
                }
            }
        }
        if let Err(e) = self.sasl2_inline_requests(&feature, &mut auth, &mut exchange) {
            return self.fail(ClientError::Policy(PolicyError::FastRequest(e)));
        }
        if exchange.token_login.is_some() {
            exchange.feature = Some(Box::new(feature));
        }
        // The request is consumed: its extension children move into the
        // element, and its initial response (a password with PLAIN) is
        // zeroed as it goes.
        let el = auth.into_element();
        self.write(&el);
        self.phase = Phase::Sasl2(Box::new(exchange));
    }

    /// The hook where an inline extension adds its requests to
    /// `<authenticate/>`, reading its part of the server's offer
    /// (`feature.extra_inline`). FAST: `<fast/>` on a token login;
    /// `<request-token/>` on a password login when the policy asks for a
    /// token ([`FastPolicy::token_request`](crate::fast::FastPolicy::token_request)).
    /// An error when the policy names the mechanisms (`only`) and none
    /// can be had: nothing is sent.
    fn sasl2_inline_requests(
        &mut self,
        feature: &Sasl2Feature,
        auth: &mut Authenticate,
        x: &mut Sasl2Exchange,
    ) -> Result<(), crate::fast::FastRequestRefused> {
        if x.token_login.is_some() {
            let mut fast = FastAuth {
                count: None,
                invalidate: self.fast_invalidate,
            };
            if let (true, Some((token, _))) =
                (self.config.fast.send_count, self.fast_token.as_deref_mut())
            {
                // Counted before it is sent: the host keeps the count
                // even if this attempt goes nowhere.
                token.count = token.count.saturating_add(1);
                fast.count = Some(token.count);
                self.core
                    .push_event(ClientEvent::FastTokenCounted(token.clone()));
            }
            auth.extra.push(fast.to_element());
            x.invalidate = fast.invalidate;
            // A log-out takes no new token.
            if !fast.invalidate {
                x.token_mechanism = Some(x.mech.name().to_owned());
            }
            return Ok(());
        }
        if !matches!(self.config.credentials, Credentials::Password { .. }) {
            return Ok(());
        }
        let fast = feature.extra_inline.iter().find_map(FastFeature::parse);
        let chosen = self.config.fast.token_request(
            fast.as_ref(),
            &self.config.mechanisms,
            self.tls.as_ref(),
        )?;
        if let Some(mechanism) = chosen {
            let request = RequestToken {
                mechanism: mechanism.to_owned(),
            };
            auth.extra.push(request.to_element());
            x.token_mechanism = Some(request.mechanism);
        }
        Ok(())
    }

    /// The hook where an inline extension reads its results in
    /// `<success/>` and reports them. FAST: a `<token/>` (asked for, or a
    /// rotation) becomes [`ClientEvent::FastToken`] and the token held;
    /// after an invalidating login, [`ClientEvent::FastTokenInvalidated`].
    /// `false` when the stream failed.
    fn sasl2_inline_results(&mut self, x: &Sasl2Exchange, success: &Success) -> bool {
        if x.invalidate {
            self.fast_invalidate = false;
            if let Some((token, _)) = self.fast_token.take().map(|b| *b) {
                self.core.push_event(ClientEvent::FastTokenInvalidated {
                    mechanism: token.mechanism,
                });
            }
        }
        let Some(mechanism) = &x.token_mechanism else {
            // No token asked for, none used: a `<token/>` would be bound
            // to no known mechanism; ignored.
            return true;
        };
        for el in &success.extra {
            match parse_token(el, mechanism) {
                None => {}
                Some(Ok(token)) => {
                    let now = self.fast_token.as_deref().map_or(0, |(_, n)| *n);
                    self.fast_token = Some(Box::new((token.clone(), now)));
                    self.core.push_event(ClientEvent::FastToken(token));
                }
                Some(Err(e)) => {
                    self.protocol_error(e.reason());
                    return false;
                }
            }
        }
        true
    }

    /// The server refused a token login: apply the policy
    /// ([`FastPolicy::after_failure`](crate::fast::FastPolicy::after_failure)).
    /// `true` when a password login started instead.
    fn sasl2_token_refused(
        &mut self,
        x: &mut Sasl2Exchange,
        condition: Option<&SaslCondition>,
    ) -> bool {
        let Some(fallback) = x.token_login.take() else {
            return false;
        };
        let after = match condition {
            Some(c) => self.config.fast.after_failure(*c),
            None => crate::fast::AfterFailure {
                discard_token: false,
                use_password: self.config.fast.fallback_to_password,
            },
        };
        if after.discard_token {
            if let Some((token, _)) = self.fast_token.take().map(|b| *b) {
                self.core.push_event(ClientEvent::FastTokenDiscarded {
                    mechanism: token.mechanism,
                });
            }
        }
        let Some(feature) = x.feature.take().filter(|_| after.use_password) else {
            return false;
        };
        // The token is not tried again on this stream.
        self.fast_token = None;
        let offer = crate::sasl::scram::ServerOffer {
            mechanisms: feature.mechanisms.clone(),
            channel_binding_types: fallback.cb_types,
        };
        match super::mechanism::choose(&self.config, self.rng.as_mut(), &offer, self.tls.as_ref()) {
            Ok(mech) => self.start_sasl2(mech, *feature, None),
            Err(e) => self.choose_failed(e),
        }
        true
    }

    /// A SASL2 element from the server.
    pub(super) fn on_sasl2(&mut self, mut x: Box<Sasl2Exchange>, el: &Element) {
        let parsed = match Sasl2Element::parse(el) {
            Some(Ok(p)) => p,
            Some(Err(e)) => return self.sasl2_abort(x, e),
            None => {
                self.phase = Phase::Sasl2(x);
                return self.protocol_error("a non-SASL2 element during SASL2");
            }
        };
        match (x.step, parsed) {
            (Step::Mechanism, Sasl2Element::Challenge(data)) => match x.mech.respond(&data) {
                Ok(resp) => {
                    let resp =
                        Sasl2Element::Response(crate::steps::sasl2::Payload(Zeroizing::new(resp)));
                    self.write(&resp.to_element());
                    self.phase = Phase::Sasl2(x);
                }
                Err(e) => self.sasl2_abort(x, e),
            },
            (
                Step::Mechanism,
                Sasl2Element::Continue {
                    additional_data,
                    tasks,
                    ..
                },
            ) => {
                if let Err(e) = x.mech.success(additional_data.as_deref()) {
                    return self.sasl2_server_unproven(x, e);
                }
                x.step = Step::Tasks;
                self.sasl2_next_task(x, &tasks);
            }
            (Step::Tasks, Sasl2Element::Continue { tasks, .. }) => self.sasl2_next_task(x, &tasks),
            (Step::Upgrade(hash), Sasl2Element::TaskData(data)) => {
                let Credentials::Password { password, .. } = &self.config.credentials else {
                    return self.sasl2_abort(x, SaslError::malformed("no password to upgrade"));
                };
                match upgrade::client_answer(
                    hash,
                    password,
                    &data,
                    self.config.min_scram_iterations,
                    self.config.max_scram_iterations,
                ) {
                    Ok(answer) => {
                        self.write(&Sasl2Element::TaskData(vec![answer]).to_element());
                        x.step = Step::Tasks;
                        self.phase = Phase::Sasl2(x);
                    }
                    Err(e) => self.sasl2_abort(x, e),
                }
            }
            (step @ (Step::Mechanism | Step::Tasks), Sasl2Element::Success(success)) => {
                if step == Step::Mechanism {
                    let data = success.additional_data.as_deref().map(Vec::as_slice);
                    if let Err(e) = x.mech.success(data) {
                        return self.sasl2_server_unproven(x, e);
                    }
                }
                self.sasl2_success(&mut x, &success);
            }
            (_, Sasl2Element::Failure { condition, text }) => {
                if self.sasl2_token_refused(&mut x, condition.as_ref()) {
                    return;
                }
                self.phase = Phase::Sasl2(x);
                self.fail(ClientError::Refused(PeerRefusal::Authentication {
                    condition,
                    text,
                }));
            }
            (_, _) => {
                self.phase = Phase::Sasl2(x);
                self.protocol_error("a SASL2 element that is not legal in this step");
            }
        }
    }

    /// Picks the first task of `tasks` that we asked for; any other is
    /// one we cannot do: abort.
    fn sasl2_next_task(&mut self, mut x: Box<Sasl2Exchange>, tasks: &[String]) {
        let chosen = tasks
            .iter()
            .find_map(|t| upgrade::parse_task(t).filter(|h| x.upgrades.contains(h)));
        let Some(hash) = chosen else {
            return self.sasl2_abort(
                x,
                SaslError::malformed("the server asks for an unknown task"),
            );
        };
        let next = Sasl2Element::Next {
            task: upgrade::task_name(hash),
            data: Vec::new(),
        };
        self.write(&next.to_element());
        x.step = Step::Upgrade(hash);
        self.phase = Phase::Sasl2(x);
    }

    /// We stop the exchange: `<abort/>`, and the stream fails.
    fn sasl2_abort(&mut self, x: Box<Sasl2Exchange>, e: SaslError) {
        self.write(&Sasl2Element::Abort(None).to_element());
        self.phase = Phase::Sasl2(x);
        self.fail(ClientError::sasl(e));
    }

    /// The server's additional data did not prove it: never go on.
    fn sasl2_server_unproven(&mut self, x: Box<Sasl2Exchange>, e: SaslError) {
        self.phase = Phase::Sasl2(x);
        self.fail(ClientError::sasl(e));
    }

    fn sasl2_success(&mut self, x: &mut Sasl2Exchange, success: &Success) {
        self.scram_keys = x.mech.derived_keys().map(Box::new);
        self.authenticated = true;
        self.sasl2_used = true;
        self.core.push_event(ClientEvent::Authenticated {
            mechanism: x.mech.name().to_owned(),
            security: x.mech.security(),
            sasl2: true,
        });
        self.phase = Phase::AwaitFeatures;
        // Stream management's resumption first: when it worked, nothing
        // was bound.
        match (&success.sm, x.resume) {
            (Some(SmElement::Resumed { previd, h }), true) => {
                // Ready at once: Prosody sends the stanzas it held (and
                // `<r/>`) before the features that follow.
                self.sasl2_features_late = true;
                self.sm_resumed(self.last_input, previd, *h);
                self.sasl2_inline_results(x, success);
                return;
            }
            (Some(SmElement::Failed { h, condition }), true) => {
                self.sm_resume_failed(*h, condition.clone());
            }
            (None, true) => self.sm_resume_failed(None, None),
            (None, false) => {}
            (Some(_), _) => return self.protocol_error("a stream management result not asked for"),
        }
        if self.core.is_closed() {
            return;
        }
        match &success.bind2 {
            Some(Bind2Result::Bound { sm, .. }) if x.bind2 => {
                let jid = success
                    .authorization_identifier
                    .as_deref()
                    .and_then(|a| FullJid::new(a).ok());
                let Some(jid) = jid else {
                    return self.fail(ClientError::PeerMisbehaved(Misbehavior::protocol(
                        StreamErrorCondition::UndefinedCondition,
                        "Bind 2 bound no full JID",
                    )));
                };
                match sm {
                    Some(SmElement::Enabled {
                        id,
                        resume,
                        location,
                        max,
                    }) if self.config.stream_management.is_some() => {
                        // Our count started with `<enable/>`, the server's
                        // with `<enabled/>`: both now.
                        self.sm = Some(Box::new(Session::new(jid.clone())));
                        self.sm_enabled(id.clone(), *resume, location.clone(), *max);
                    }
                    Some(SmElement::Failed { condition, .. }) => {
                        self.core.push_event(ClientEvent::StreamManagementFailed {
                            condition: condition.clone(),
                        });
                    }
                    None => {}
                    Some(_) => {
                        return self.protocol_error("a stream management result not asked for")
                    }
                }
                // Carbons and CSI have no answer (XEP-0386: enabling
                // them cannot fail): bound means on.
                if self.config.carbons || self.config.csi.is_some() {
                    self.core
                        .push_event(ClientEvent::Bind2Enabled(x.bind2_features));
                }
                self.sasl2_after = Some(AfterSasl2::Bound(jid));
            }
            Some(Bind2Result::Failed(e)) if x.bind2 => {
                return self.fail(ClientError::Refused(PeerRefusal::Bind(e.clone())));
            }
            // Not bound (none asked, or the server ignored it): RFC 6120
            // binding on the features that follow.
            None => {}
            Some(_) => return self.protocol_error("a Bind 2 result not asked for"),
        }
        self.sasl2_inline_results(x, success);
    }

    /// The features after a SASL2 success: bound or resumed inline, the
    /// session is ready now; otherwise `false` (RFC 6120 binding follows).
    pub(super) fn sasl2_features(&mut self, features: &StreamFeatures) -> bool {
        match self.sasl2_after.take() {
            None => false,
            Some(AfterSasl2::Bound(jid)) => {
                // Stream management not enabled inline may still be
                // enabled the RFC 6120 way, when offered now.
                self.sm_offered = features.stream_management;
                self.session_required = false;
                self.ready(jid);
                true
            }
        }
    }
}
