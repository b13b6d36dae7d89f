//! The server's SASL2 step (XEP-0388): the `<authentication/>` offer,
//! `<authenticate/>` run through the same mechanisms and host requests as
//! RFC 6120 SASL, XEP-0480 upgrade tasks, then stream management's inline
//! resumption and Bind 2 through the host's `Resume` and `Bind` answers,
//! and one `<success/>` followed by the features, without a restart.

use std::time::Instant;

use base64::Engine as _;
use jid::{FullJid, ResourcePart};
use minidom::Element;
use sha1::Digest as _;

use super::{Phase, Server, ServerEvent, StreamErrorCondition};
use crate::fast::{FastAuth, FastFeature, FastToken, RequestToken, TokenSlot};
use crate::features::StreamFeatures;
use crate::ns;
use crate::random::printable_token;
use crate::sasl::{SaslCondition, SaslError, ScramHash};
use crate::sasl2::upgrade;
use crate::steps::bind2::{Bind2Features, Bind2Offer, Bind2Request, Bind2Result};
use crate::steps::sasl2::{Authenticate, Payload, Sasl2Element, Sasl2Feature, Success, UserAgent};
use crate::steps::sm::SmElement;
use crate::steps::StanzaError;

/// A SASL2 login in progress: what the client asked for inline, and the
/// `<success/>` being built.
pub(super) struct Sasl2Login {
    bind2: Option<Bind2Request>,
    resume: Option<(String, u32)>,
    /// Upgrades asked for and offered, in the client's order.
    upgrades: Vec<ScramHash>,
    pub(super) user_agent: Option<UserAgent>,
    /// The FAST feature this stream offered.
    pub(super) fast: Option<FastFeature>,
    /// `<fast/>`: this login uses a FAST token.
    pub(super) fast_auth: Option<FastAuth>,
    /// The slot of the token that matched (a token login).
    pub(super) fast_used: Option<TokenSlot>,
    /// The mechanism a token is to be issued for: asked for
    /// (`<request-token/>`), or the token login's (a rotation the host
    /// may make).
    issue_token: Option<String>,
    pub(super) success: Success,
}

/// Where an upgrade task is.
pub(super) enum TaskStep {
    /// `<continue/>` sent: waiting for `<next task/>`.
    AwaitNext(ScramHash),
    /// The salt sent: waiting for the client's `<task-data/>`.
    AwaitHash { hash: ScramHash, salt: Vec<u8> },
}

/// Bytes of an upgrade's fresh salt.
const SALT_LEN: usize = 16;

impl Server {
    /// The `<authentication/>` feature for this stream's offer.
    pub(super) fn sasl2_feature(&mut self) -> Option<Sasl2Feature> {
        let settings = self.config.sasl2.as_ref()?;
        if self.n.offer.mechanisms.is_empty() {
            return None;
        }
        let sm = self.config.stream_management.as_ref();
        let mut f = Sasl2Feature {
            mechanisms: self.n.offer.mechanisms.clone(),
            bind2: self.bind2_offer(),
            sm_resume: sm.is_some_and(|s| s.resume),
            upgrades: settings
                .upgrades
                .iter()
                .map(|h| upgrade::task_name(*h))
                .collect(),
            extra_inline: Vec::new(),
        };
        self.sasl2_inline_offer(&mut f);
        Some(f)
    }

    /// The hook where an inline extension adds its offer to
    /// `<inline/>`: FAST's `<fast/>` ([`Sasl2Settings::fast`](crate::sasl2::Sasl2Settings::fast)).
    fn sasl2_inline_offer(&mut self, feature: &mut Sasl2Feature) {
        if let Some(fast) = self.fast_offer() {
            feature.extra_inline.push(fast.to_element());
        }
    }

    /// The FAST feature of this stream, when any.
    fn fast_offer(&self) -> Option<FastFeature> {
        let names = &self.config.sasl2.as_ref()?.fast;
        crate::fast::offer(&self.config.registry, names, self.n.tls.as_ref())
    }

    /// The hook where an inline extension reads its requests in
    /// `<authenticate/>` (FAST's `<fast/>` and `<request-token/>`): the
    /// login, or the condition of the `<failure/>` for a malformed one.
    fn sasl2_inline_requests(
        &self,
        login: &mut Sasl2Login,
        mechanism: &str,
        extra: &[Element],
    ) -> Result<(), SaslError> {
        let Some(fast) = self.fast_offer() else {
            return Ok(());
        };
        for el in extra {
            if let Some(r) = FastAuth::parse(el) {
                login.fast_auth = Some(r.map_err(|e| SaslError::malformed(e.reason()))?);
            } else if let Some(r) = RequestToken::parse(el) {
                let r = r.map_err(|e| SaslError::malformed(e.reason()))?;
                // A mechanism not offered: no token (XEP-0484 section 3.2).
                if fast.offers(&r.mechanism) {
                    login.issue_token = Some(r.mechanism);
                }
            }
        }
        if fast.offers(mechanism) {
            // A token login (`<fast/>` is optional for it: count and
            // invalidate only); the host may rotate its token, unless the
            // client invalidates it (then only a `<request-token/>` gets
            // a new one: XEP-0484 section 3.5).
            let auth = login.fast_auth.get_or_insert_with(FastAuth::default);
            if !auth.invalidate {
                login
                    .issue_token
                    .get_or_insert_with(|| mechanism.to_owned());
            }
        } else {
            login.fast_auth = None;
        }
        login.fast = Some(fast);
        Ok(())
    }

    /// The hook where an inline extension acts once the mechanism
    /// succeeded: FAST tells the host of a token invalidated
    /// ([`ServerEvent::FastTokenInvalidated`]) and asks it for a token
    /// ([`ServerEvent::IssueFastToken`]). `Some(login)` when nothing is
    /// pending.
    fn sasl2_inline_results(&mut self, mut login: Box<Sasl2Login>) -> Option<Box<Sasl2Login>> {
        let user_agent_id = login.user_agent.as_ref().map(|u| u.id.clone());
        let invalidate = login.fast_auth.is_some_and(|f| f.invalidate);
        if let (true, Some(slot), Some(jid)) = (invalidate, login.fast_used, &self.n.account) {
            // Nothing left to promote or count.
            login.fast_used = None;
            self.core.push_event(ServerEvent::FastTokenInvalidated {
                jid: jid.clone(),
                user_agent_id: user_agent_id.clone(),
                used: slot,
            });
        }
        let (Some(mechanism), Some(jid)) = (login.issue_token.take(), self.n.account.clone())
        else {
            return Some(login);
        };
        self.core.push_event(ServerEvent::IssueFastToken {
            jid,
            user_agent_id,
            mechanism,
            used: login.fast_used,
            count: login
                .fast_used
                .and_then(|_| login.fast_auth.and_then(|f| f.count)),
        });
        self.phase = Phase::FastTokenPending { login };
        None
    }

    /// The host's answer to [`ServerEvent::IssueFastToken`]: the token
    /// goes into `<success/>` (`None`: no token). Its mechanism must be
    /// the one asked for.
    pub fn answer_fast_token(
        &mut self,
        now: Instant,
        token: Option<FastToken>,
    ) -> Result<(), crate::UsageError> {
        self.check_answer(crate::AnswerKind::IssueFastToken)?;
        let Phase::FastTokenPending { mut login } =
            std::mem::replace(&mut self.phase, Phase::AwaitBind)
        else {
            return Err(crate::UsageError::NoPendingRequest);
        };
        if let Some(t) = &token {
            login.success.extra.push(crate::fast::token_element(t));
        }
        self.sasl2_next_task(now, login);
        self.resume(now);
        Ok(())
    }

    /// `<authenticate/>`: the mechanism runs as for `<auth/>`.
    pub(super) fn on_authenticate(&mut self, now: Instant, auth: Box<Authenticate>) {
        if self.config.sasl2.is_none() {
            return self.fail_with(
                StreamErrorCondition::UnsupportedStanzaType,
                "SASL2 not offered",
            );
        }
        let offered: Vec<ScramHash> = self
            .config
            .sasl2
            .as_ref()
            .map(|s| s.upgrades.clone())
            .unwrap_or_default();
        let auth = *auth;
        let upgrades = auth
            .upgrades
            .iter()
            .filter_map(|t| upgrade::parse_task(t))
            .filter(|h| offered.contains(h))
            .collect();
        let mut login = Sasl2Login {
            bind2: auth.bind2,
            resume: auth.resume,
            upgrades,
            user_agent: auth.user_agent,
            fast: None,
            fast_auth: None,
            fast_used: None,
            issue_token: None,
            success: Success::default(),
        };
        if let Err(e) = self.sasl2_inline_requests(&mut login, &auth.mechanism, &auth.extra) {
            self.n.sasl2_exchange = true;
            return self.sasl_failure_of(Some(&auth.mechanism), e);
        }
        self.on_auth(
            now,
            auth.mechanism,
            auth.initial_response,
            Some(Box::new(login)),
        );
    }

    /// Writes a SASL2 element built by the machine.
    pub(super) fn write_sasl2(&mut self, el: Sasl2Element) {
        self.write(&el.to_element());
    }

    /// The mechanism succeeded for `login`: tasks, then resumption, then
    /// binding, then `<success/>`.
    pub(super) fn sasl2_authenticated(
        &mut self,
        now: Instant,
        mut login: Box<Sasl2Login>,
        additional_data: Option<Vec<u8>>,
    ) {
        login.success.additional_data = additional_data.map(zeroize::Zeroizing::new);
        if let Some(login) = self.sasl2_inline_results(login) {
            self.sasl2_next_task(now, login);
        }
    }

    /// The next upgrade task, or what follows the tasks.
    fn sasl2_next_task(&mut self, now: Instant, mut login: Box<Sasl2Login>) {
        if login.upgrades.is_empty() {
            return self.sasl2_resume(now, login);
        }
        let hash = login.upgrades.remove(0);
        // The mechanism's additional data goes with the first task.
        let additional_data = login.success.additional_data.take().map(Payload);
        self.write_sasl2(Sasl2Element::Continue {
            additional_data,
            tasks: vec![upgrade::task_name(hash)],
            text: None,
        });
        self.phase = Phase::Sasl2Task {
            login,
            step: TaskStep::AwaitNext(hash),
        };
    }

    /// An element during the upgrade tasks.
    pub(super) fn on_sasl2_task(
        &mut self,
        now: Instant,
        login: Box<Sasl2Login>,
        step: TaskStep,
        el: &Element,
    ) {
        match (step, Sasl2Element::parse(el)) {
            (TaskStep::AwaitNext(hash), Some(Ok(Sasl2Element::Next { task, .. })))
                if task == upgrade::task_name(hash) =>
            {
                let iterations = self
                    .config
                    .sasl2
                    .as_ref()
                    .map_or(10_000, |s| s.upgrade_iterations);
                let mut salt = vec![0; SALT_LEN];
                self.rng.fill(&mut salt);
                let data = Sasl2Element::TaskData(vec![upgrade::salt_element(&salt, iterations)]);
                self.write_sasl2(data);
                self.phase = Phase::Sasl2Task {
                    login,
                    step: TaskStep::AwaitHash { hash, salt },
                };
            }
            (TaskStep::AwaitHash { hash, salt }, Some(Ok(Sasl2Element::TaskData(data)))) => {
                let iterations = self
                    .config
                    .sasl2
                    .as_ref()
                    .map_or(10_000, |s| s.upgrade_iterations);
                match upgrade::server_credentials(hash, &salt, iterations, &data) {
                    Ok(credentials) => {
                        if let Some(jid) = self.n.account.clone() {
                            self.core.push_event(ServerEvent::ScramUpgraded {
                                jid,
                                hash,
                                credentials,
                            });
                        }
                        self.sasl2_next_task(now, login);
                    }
                    Err(e) => self.sasl2_unauthenticate(e),
                }
            }
            (_, Some(Ok(Sasl2Element::Abort(_)))) => {
                self.sasl2_unauthenticate(SaslError::new(SaslCondition::Aborted, "aborted"))
            }
            (_, Some(Ok(Sasl2Element::Next { .. }))) => {
                self.sasl2_unauthenticate(SaslError::malformed("a task that was not asked for"))
            }
            (_, Some(Err(e))) => self.sasl2_unauthenticate(e),
            _ => self.fail_with(
                StreamErrorCondition::UnsupportedStanzaType,
                "expected <next/>, <task-data/> or <abort/>",
            ),
        }
    }

    /// A task failed after the mechanism succeeded: the client is not
    /// logged in after all (`<failure/>`, counted), and may try again.
    fn sasl2_unauthenticate(&mut self, e: SaslError) {
        self.n.account = None;
        self.identity = None;
        self.n.sasl2_exchange = true;
        self.sasl_failure(e);
    }

    /// Stream management's inline resumption, when asked for: the host
    /// decides ([`ServerEvent::Resume`]).
    fn sasl2_resume(&mut self, now: Instant, mut login: Box<Sasl2Login>) {
        let Some((previd, h)) = login.resume.take() else {
            return self.sasl2_bind(now, login);
        };
        let resumable = self
            .config
            .stream_management
            .as_ref()
            .is_some_and(|s| s.resume);
        match self.n.account.clone() {
            Some(jid) if resumable => {
                self.core
                    .push_event(ServerEvent::Resume(super::ResumeRequest {
                        jid,
                        previd: previd.clone(),
                        h,
                    }));
                self.phase = Phase::ResumePending {
                    previd,
                    h,
                    sasl2: Some(login),
                };
            }
            _ => {
                login.success.sm = Some(SmElement::Failed {
                    h: None,
                    condition: Some("feature-not-implemented".into()),
                });
                self.sasl2_bind(now, login);
            }
        }
    }

    /// The inline resumption failed (`<failed/>` in `<success/>`): bind,
    /// when asked.
    pub(super) fn sasl2_resume_failed(&mut self, now: Instant, mut login: Box<Sasl2Login>) {
        login.success.sm = Some(SmElement::Failed {
            h: None,
            condition: Some("item-not-found".into()),
        });
        self.sasl2_bind(now, login);
    }

    /// Bind 2, when asked for and offered: the host decides
    /// ([`ServerEvent::Bind`]) on the resource made of the client's tag.
    fn sasl2_bind(&mut self, now: Instant, login: Box<Sasl2Login>) {
        let offered = self.config.sasl2.as_ref().is_some_and(|s| s.bind2);
        let (Some(request), true, Some(jid)) = (&login.bind2, offered, self.n.account.clone())
        else {
            return self.sasl2_finish(now, login, None);
        };
        let resource = bind2_resource(
            request.tag.as_deref(),
            login.user_agent.as_ref(),
            self.rng.as_mut(),
        );
        self.core.push_event(ServerEvent::Bind {
            jid,
            resource: Some(resource),
        });
        self.phase = Phase::BindPending {
            via: super::BindVia::Sasl2(login),
        };
    }

    /// The host's answer to a Bind 2 request: `<bound/>` (with stream
    /// management enabled when asked) or `<failed/>`.
    pub(super) fn sasl2_bound(
        &mut self,
        now: Instant,
        mut login: Box<Sasl2Login>,
        bound: Result<FullJid, StanzaError>,
    ) {
        match bound {
            Ok(jid) => {
                let sm = login
                    .bind2
                    .as_ref()
                    .and_then(|b| b.sm_enable.as_ref())
                    .map(|e| match e {
                        SmElement::Enable { resume, max } if self.sm.is_none() => {
                            self.sm_start(&jid, *resume, *max)
                        }
                        _ => SmElement::Failed {
                            h: None,
                            condition: Some("unexpected-request".into()),
                        },
                    });
                // Carbons and CSI: the host acts on them. XEP-0386 needs
                // no answer; carbons' `<enabled/>` is Prosody's, which
                // clients may look for.
                let features = self.bind2_features(login.bind2.as_ref());
                let extra = features
                    .carbons
                    .then(|| Element::builder("enabled", ns::CARBONS).build())
                    .into_iter()
                    .collect();
                login.success.bind2 = Some(Bind2Result::Bound { sm, extra });
                if !features.is_empty() {
                    self.core.push_event(ServerEvent::Bind2Enabled(features));
                }
                self.sasl2_finish(now, login, Some(jid));
            }
            Err(e) => {
                login.success.bind2 = Some(Bind2Result::Failed(e));
                self.sasl2_finish(now, login, None);
            }
        }
    }

    /// Bind 2's offer, when on: the features it enables inline, in
    /// XEP-0386's (and Prosody's) order.
    fn bind2_offer(&self) -> Option<Bind2Offer> {
        let settings = self.config.sasl2.as_ref().filter(|s| s.bind2)?;
        let sm = self.config.stream_management.is_some();
        let features = [
            (settings.carbons, ns::CARBONS),
            (settings.csi, ns::CSI),
            (sm, ns::SM),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, var)| var.to_owned())
        .collect();
        Some(Bind2Offer { features })
    }

    /// Carbons and CSI of `request` that this server listed; the others
    /// are ignored, as a server without the feature would.
    fn bind2_features(&self, request: Option<&Bind2Request>) -> Bind2Features {
        match (self.bind2_offer(), request) {
            (Some(offer), Some(r)) => r.features.offered(&offer),
            _ => Bind2Features::default(),
        }
    }

    /// `<success/>` and the features; ready when bound.
    fn sasl2_finish(&mut self, _now: Instant, mut login: Box<Sasl2Login>, bound: Option<FullJid>) {
        let Some(account) = self.n.account.clone() else {
            return self.fail_with(StreamErrorCondition::NotAuthorized, "no account");
        };
        login.success.authorization_identifier = Some(match &bound {
            Some(jid) => jid.to_string(),
            None => account.to_string(),
        });
        self.write(&login.success.to_element());
        let features = self.post_auth_features(bound.is_some());
        self.write(&features.to_element());
        match bound {
            Some(jid) => self.ready(jid),
            None => self.phase = Phase::AwaitBind,
        }
    }

    /// Resumed inline: `<success/>` with `<resumed/>` and the session's
    /// JID, then the features.
    pub(super) fn sasl2_resumed(
        &mut self,
        mut login: Box<Sasl2Login>,
        resumed: SmElement,
        jid: &FullJid,
    ) {
        login.success.sm = Some(resumed);
        login.success.authorization_identifier = Some(jid.to_string());
        self.write(&login.success.to_element());
        let features = self.post_auth_features(true);
        self.write(&features.to_element());
    }

    /// The features after authentication: binding unless bound, stream
    /// management unless on.
    pub(super) fn post_auth_features(&self, bound: bool) -> StreamFeatures {
        StreamFeatures {
            bind: !bound,
            session: (self.config.offer_session && !bound).then_some(true),
            stream_management: self.config.stream_management.is_some() && self.sm.is_none(),
            ..StreamFeatures::default()
        }
    }

    /// A SASL2 failure: `<failure/>` with the condition.
    pub(super) fn write_sasl2_failure(&mut self, condition: SaslCondition) {
        self.write_sasl2(Sasl2Element::Failure {
            condition: Some(condition),
            text: None,
        });
    }

    /// An element in a SASL2 exchange: `<response/>` to the mechanism,
    /// `<abort/>`; anything else of SASL2 (a second `<authenticate/>`...)
    /// ends the stream.
    pub(super) fn sasl2_response(el: &Element) -> Option<Result<Payload, SaslError>> {
        match Sasl2Element::parse(el)? {
            Ok(Sasl2Element::Response(p)) => Some(Ok(p)),
            Ok(Sasl2Element::Abort(_)) => {
                Some(Err(SaslError::new(SaslCondition::Aborted, "aborted")))
            }
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Bind 2's resource: the tag and a suffix, as Prosody makes them
/// (`tag~suffix`): the suffix derives from the user agent's id when the
/// client sent one (the same client gets the same resource back), else it
/// is random. A tag that fails resourceprep is left out.
fn bind2_resource(
    tag: Option<&str>,
    user_agent: Option<&UserAgent>,
    rng: &mut dyn crate::RandomSource,
) -> ResourcePart {
    let suffix = match user_agent {
        Some(ua) => {
            let digest = sha1::Sha1::digest(ua.id.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(&digest[..9])
        }
        None => printable_token(rng, 12),
    }
    .replace(['+', '/'], "x");
    tag.and_then(|t| {
        ResourcePart::new(&format!("{t}~{suffix}"))
            .ok()
            .map(std::borrow::Cow::into_owned)
    })
    .unwrap_or_else(|| {
        ResourcePart::new(&suffix)
            .map(std::borrow::Cow::into_owned)
            .expect("base64 characters are a resource")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same user agent gets the same resource; without one, a random
    /// suffix; a tag that fails resourceprep is dropped.
    #[test]
    fn bind2_resources() {
        let mut rng = crate::DeterministicRandom::new(1);
        let ua = UserAgent::new("d4565fa7-4d72-4749-b3d3-740edbf87770");
        let a = bind2_resource(Some("raw"), Some(&ua), &mut rng);
        let b = bind2_resource(Some("raw"), Some(&ua), &mut rng);
        assert_eq!(a, b);
        assert!(
            a.as_str().starts_with("raw~") && a.as_str().len() == 16,
            "{a}"
        );
        let c = bind2_resource(Some("raw"), None, &mut rng);
        let d = bind2_resource(Some("raw"), None, &mut rng);
        assert_ne!(c, d);
        let e = bind2_resource(Some("bad\u{7}"), None, &mut rng);
        assert!(!e.as_str().contains('~'));
    }
}
