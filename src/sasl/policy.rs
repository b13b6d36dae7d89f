//! Which mechanism a client uses: an explicit, documented policy.
//!
//! The client's mechanisms come from a registry
//! ([`ClientMechanisms`](crate::client::ClientMechanisms)): each has a
//! name and a [`MechanismProfile`] (its rank, the credentials it uses,
//! whether it needs channel binding, whether it sends the secret in the
//! clear, whether it must be enabled). [`ClientPolicy::select_among`]
//! ranks what the server offered, strongest (highest
//! [`rank`](MechanismProfile::rank)) first, and keeps only what the
//! policy and the credentials allow. The built-in mechanisms
//! ([`BUILTIN`]) rank:
//!
//! 1. `SCRAM-SHA-512-PLUS`, `SCRAM-SHA-256-PLUS`, `SCRAM-SHA-1-PLUS`, only
//!    when the host can supply channel-binding data of a type the server
//!    accepts;
//! 2. `SCRAM-SHA-512`, `SCRAM-SHA-256`, `SCRAM-SHA-1`;
//! 3. `DIGEST-MD5`, only when [`ClientPolicy::enable_digest_md5`] is set
//!    (RFC 6331 made it historic);
//! 4. `PLAIN`, only over TLS unless [`ClientPolicy::allow_plain_without_tls`];
//!
//! for a password. For a token: `OAUTHBEARER`, then `X-OAUTH2`, then
//! `X-GOOGLE-TOKEN` when enabled, all three only over TLS unless
//! [`ClientPolicy::allow_plain_without_tls`] (a bearer token is a
//! password: whoever reads it logs in with it). A TLS client
//! certificate selects `EXTERNAL`; no credentials select `ANONYMOUS` when
//! enabled. A host mechanism competes with these by its rank, among the
//! mechanisms of its credential kind. GSSAPI, once the host registered it
//! ([`ClientMechanismFactory::gssapi`](crate::client::ClientMechanismFactory::gssapi)),
//! is such a mechanism: [`Credentials::Host`](crate::client::Credentials::Host)
//! (a Kerberos ticket), rank 150 ([`gssapi::CLIENT_PROFILE`](crate::sasl::gssapi::CLIENT_PROFILE)).
//!
//! An explicit [`ClientPolicy::only`] list (a `--mechanism` flag) narrows
//! the choice to the mechanisms it names, and naming one allows it: a
//! named `DIGEST-MD5`, `X-GOOGLE-TOKEN` or `ANONYMOUS` needs no `enable_*`
//! flag. It never lifts the other rules: when no named mechanism can be
//! used, [`SelectError::Refused`] says, for each, which rule refused it
//! ([`Refusal`]: not offered, other credentials, no TLS, no channel
//! binding).
//!
//! There is no fallback: a mechanism is selected once per stream, and
//! after a credentials failure the client stops instead of retrying with
//! a weaker mechanism.

use std::fmt;

/// What the client authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// A password (or SCRAM keys cached from one).
    Password,
    /// A bearer token (OAuth 2.0 access token, Google token).
    Token,
    /// The TLS client certificate (SASL EXTERNAL).
    ClientCertificate,
    /// No credentials: anonymous login.
    None,
    /// Credentials the host keeps itself, which only its own mechanisms
    /// use (a Kerberos ticket for a GSSAPI mechanism).
    Host,
    /// A FAST token (XEP-0484): the `HT-*` mechanisms, chosen among the
    /// server's `<fast/>` offer by [`FastPolicy`](crate::fast::FastPolicy),
    /// never by the password selection.
    FastToken,
}

/// A policy switch a mechanism needs on before it is chosen on its own
/// (naming it in [`ClientPolicy::only`] turns it on too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OptIn {
    /// [`ClientPolicy::enable_digest_md5`].
    #[cfg(feature = "digest-md5")]
    #[cfg_attr(docsrs, doc(cfg(feature = "digest-md5")))]
    DigestMd5,
    /// [`ClientPolicy::enable_x_google_token`].
    #[cfg(feature = "google")]
    #[cfg_attr(docsrs, doc(cfg(feature = "google")))]
    XGoogleToken,
    /// [`ClientPolicy::enable_anonymous`].
    Anonymous,
}

/// What the selection policy knows about a mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MechanismProfile {
    /// Higher is stronger. The built-in ranks are multiples of 100 (see
    /// [`BUILTIN`]), so that a host mechanism can sit between two.
    pub rank: u32,
    /// The credentials it uses.
    pub credentials: CredentialKind,
    /// It needs channel-binding data of a type the server accepts (the
    /// `-PLUS` mechanisms).
    pub channel_binding: bool,
    /// It sends the secret in the clear: only over TLS unless
    /// [`ClientPolicy::allow_plain_without_tls`].
    pub cleartext: bool,
    /// A switch that must be on, unless the mechanism is named.
    pub opt_in: Option<OptIn>,
}

impl MechanismProfile {
    /// A mechanism of `rank` using `credentials`, with no other
    /// requirement.
    pub const fn new(rank: u32, credentials: CredentialKind) -> Self {
        Self {
            rank,
            credentials,
            channel_binding: false,
            cleartext: false,
            opt_in: None,
        }
    }

    const fn plus(mut self) -> Self {
        self.channel_binding = true;
        self
    }

    const fn clear(mut self) -> Self {
        self.cleartext = true;
        self
    }

    const fn opt(mut self, o: OptIn) -> Self {
        self.opt_in = Some(o);
        self
    }
}

/// The client's mechanism policy. `Default` is the safe choice: SCRAM, and
/// PLAIN over TLS, for passwords; OAUTHBEARER and X-OAUTH2 over TLS for
/// tokens; nothing legacy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientPolicy {
    /// Allow the mechanisms that send the secret in the clear on a stream
    /// without TLS: PLAIN, and the token mechanisms OAUTHBEARER, X-OAUTH2
    /// and X-GOOGLE-TOKEN (the last one also needs
    /// `enable_x_google_token`).
    pub allow_plain_without_tls: bool,
    /// Allow DIGEST-MD5 (seed 004; historic, RFC 6331).
    #[cfg(feature = "digest-md5")]
    #[cfg_attr(docsrs, doc(cfg(feature = "digest-md5")))]
    pub enable_digest_md5: bool,
    /// Allow X-GOOGLE-TOKEN (seed 000).
    #[cfg(feature = "google")]
    #[cfg_attr(docsrs, doc(cfg(feature = "google")))]
    pub enable_x_google_token: bool,
    /// Allow ANONYMOUS when the client has no credentials.
    pub enable_anonymous: bool,
    /// When set, only these mechanisms (exact names) may be chosen, and
    /// naming one turns on its [`OptIn`] switch.
    pub only: Option<Vec<String>>,
}

/// The situation a mechanism is chosen in.
#[derive(Debug, Clone, Copy)]
pub struct SelectionContext<'a> {
    /// The mechanisms the server offered, in its order.
    pub offered: &'a [String],
    /// Whether the stream is encrypted (STARTTLS done or direct TLS).
    pub tls: bool,
    /// Whether the host can supply channel-binding data of a type the
    /// server accepts (see `sasl::channel_binding`).
    pub can_bind: bool,
    /// What the client authenticates with.
    pub credentials: CredentialKind,
}

/// Which rule keeps a mechanism from being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// The server did not offer it.
    NotOffered,
    /// The client knows no such mechanism (nothing registered under the
    /// name).
    Unknown,
    /// [`ClientPolicy::only`] is set and does not name it.
    NotNamed,
    /// It uses other credentials than the client has.
    Credentials {
        /// What the mechanism uses.
        needs: CredentialKind,
        /// What the client has.
        have: CredentialKind,
    },
    /// It is off until this switch is on.
    Disabled(OptIn),
    /// It sends the secret in the clear and the stream is not encrypted
    /// ([`ClientPolicy::allow_plain_without_tls`] is off).
    NeedsTls,
    /// It needs channel-binding data that the host cannot supply (or of
    /// no type the server accepts).
    NeedsChannelBinding,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOffered => f.write_str("not offered by the server"),
            Self::Unknown => f.write_str("not a mechanism this client knows"),
            Self::NotNamed => f.write_str("not named by the policy"),
            Self::Credentials { needs, have } => {
                write!(f, "needs {needs:?} credentials, the client has {have:?}")
            }
            Self::Disabled(o) => write!(f, "disabled (needs {o:?} enabled)"),
            Self::NeedsTls => f.write_str("sends the secret in the clear and TLS is off"),
            Self::NeedsChannelBinding => f.write_str("needs channel-binding data"),
        }
    }
}

/// A mechanism the host named and why it cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefusedMechanism {
    /// The name.
    pub mechanism: String,
    /// The rule that refused it.
    pub refusal: Refusal,
}

/// Why no mechanism could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectError {
    /// The server offered nothing that the policy and the credentials
    /// allow. Carries what it offered.
    NoAcceptableMechanism(Vec<String>),
    /// None of the mechanisms named in [`ClientPolicy::only`] can be
    /// used: each with the rule that refused it, in the order named.
    Refused(Vec<RefusedMechanism>),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAcceptableMechanism(o) => {
                write!(f, "no acceptable SASL mechanism among {o:?}")
            }
            Self::Refused(r) => {
                f.write_str("no named SASL mechanism can be used:")?;
                for m in r {
                    write!(f, " {}: {};", m.mechanism, m.refusal)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for SelectError {}

/// The built-in mechanisms and their profiles, strongest first within
/// each credential kind.
pub const BUILTIN: &[(&str, MechanismProfile)] = {
    use CredentialKind as C;
    const fn pw(rank: u32) -> MechanismProfile {
        MechanismProfile::new(rank, CredentialKind::Password)
    }
    const fn tok(rank: u32) -> MechanismProfile {
        MechanismProfile::new(rank, CredentialKind::Token).clear()
    }
    &[
        ("SCRAM-SHA-512-PLUS", pw(800).plus()),
        ("SCRAM-SHA-256-PLUS", pw(700).plus()),
        ("SCRAM-SHA-1-PLUS", pw(600).plus()),
        ("SCRAM-SHA-512", pw(500)),
        ("SCRAM-SHA-256", pw(400)),
        ("SCRAM-SHA-1", pw(300)),
        #[cfg(feature = "digest-md5")]
        ("DIGEST-MD5", pw(200).opt(OptIn::DigestMd5)),
        ("PLAIN", pw(100).clear()),
        ("OAUTHBEARER", tok(300)),
        ("X-OAUTH2", tok(200)),
        #[cfg(feature = "google")]
        ("X-GOOGLE-TOKEN", tok(100).opt(OptIn::XGoogleToken)),
        ("EXTERNAL", MechanismProfile::new(100, C::ClientCertificate)),
        (
            "ANONYMOUS",
            MechanismProfile::new(100, C::None).opt(OptIn::Anonymous),
        ),
    ]
};

impl ClientPolicy {
    /// Whether the policy allows the built-in `mechanism` in `ctx`,
    /// regardless of what was offered (an unknown name: no).
    pub fn allows(&self, mechanism: &str, ctx: &SelectionContext<'_>) -> bool {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == mechanism)
            .is_some_and(|(n, p)| self.check(n, p, ctx).is_ok())
    }

    /// Whether the policy allows the mechanism `name` with `profile` in
    /// `ctx`, regardless of what was offered; the rule that refuses it
    /// otherwise.
    pub fn check(
        &self,
        name: &str,
        profile: &MechanismProfile,
        ctx: &SelectionContext<'_>,
    ) -> Result<(), Refusal> {
        let named = match &self.only {
            Some(only) if !only.iter().any(|m| m == name) => return Err(Refusal::NotNamed),
            Some(_) => true,
            None => false,
        };
        if profile.credentials != ctx.credentials {
            return Err(Refusal::Credentials {
                needs: profile.credentials,
                have: ctx.credentials,
            });
        }
        if let Some(o) = profile.opt_in {
            let on = match o {
                #[cfg(feature = "digest-md5")]
                OptIn::DigestMd5 => self.enable_digest_md5,
                #[cfg(feature = "google")]
                OptIn::XGoogleToken => self.enable_x_google_token,
                OptIn::Anonymous => self.enable_anonymous,
            };
            if !on && !named {
                return Err(Refusal::Disabled(o));
            }
        }
        if profile.cleartext && !ctx.tls && !self.allow_plain_without_tls {
            return Err(Refusal::NeedsTls);
        }
        if profile.channel_binding && !ctx.can_bind {
            return Err(Refusal::NeedsChannelBinding);
        }
        Ok(())
    }

    /// Chooses the strongest allowed built-in mechanism the server
    /// offered.
    pub fn select(&self, ctx: &SelectionContext<'_>) -> Result<String, SelectError> {
        self.select_among(BUILTIN.iter().map(|(n, p)| (*n, p)), ctx)
            .map(str::to_owned)
    }

    /// Chooses, among `known` (names with their profiles, in
    /// registration order), the highest-ranked mechanism the server
    /// offered and the policy allows; the first one registered on a tie.
    /// With [`only`](Self::only) set, the choice is among the named ones,
    /// and when none can be used the error says why for each.
    pub fn select_among<'a>(
        &self,
        known: impl Iterator<Item = (&'a str, &'a MechanismProfile)> + Clone,
        ctx: &SelectionContext<'_>,
    ) -> Result<&'a str, SelectError> {
        let offered = |n: &str| ctx.offered.iter().any(|o| o == n);
        let best = known
            .clone()
            .filter(|(n, p)| offered(n) && self.check(n, p, ctx).is_ok())
            .fold(None::<(&str, u32)>, |best, (n, p)| match best {
                Some((_, r)) if r >= p.rank => best,
                _ => Some((n, p.rank)),
            });
        match (best, &self.only) {
            (Some((n, _)), _) => Ok(n),
            (None, None) => Err(SelectError::NoAcceptableMechanism(ctx.offered.to_vec())),
            (None, Some(only)) => Err(SelectError::Refused(
                only.iter()
                    .map(|name| {
                        let refusal = match known.clone().find(|(n, _)| n == name) {
                            None => Refusal::Unknown,
                            Some(_) if !offered(name) => Refusal::NotOffered,
                            Some((n, p)) => match self.check(n, p, ctx) {
                                Err(r) => r,
                                Ok(()) => Refusal::NotOffered,
                            },
                        };
                        RefusedMechanism {
                            mechanism: name.clone(),
                            refusal,
                        }
                    })
                    .collect(),
            )),
        }
    }

    /// Whether the server offered any `-PLUS` mechanism: a SCRAM client
    /// that could bind but uses a non-PLUS mechanism sends gs2 flag `y`
    /// then, `n` otherwise.
    pub fn server_offered_plus(offered: &[String]) -> bool {
        offered.iter().any(|m| m.ends_with("-PLUS"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn ctx(o: &[String], tls: bool, can_bind: bool, c: CredentialKind) -> SelectionContext<'_> {
        SelectionContext {
            offered: o,
            tls,
            can_bind,
            credentials: c,
        }
    }

    #[test]
    fn prosody_13_offer_picks_plus_only_with_binding_data() {
        // The order Prosody 13 sent in prosody13_scram_sha1_bind.txt.
        let o = offered(&["SCRAM-SHA-1", "OAUTHBEARER", "PLAIN", "SCRAM-SHA-1-PLUS"]);
        let p = ClientPolicy::default();
        let pw = CredentialKind::Password;
        assert_eq!(
            p.select(&ctx(&o, true, true, pw)).unwrap(),
            "SCRAM-SHA-1-PLUS"
        );
        assert_eq!(p.select(&ctx(&o, true, false, pw)).unwrap(), "SCRAM-SHA-1");
        let tok = CredentialKind::Token;
        assert_eq!(p.select(&ctx(&o, true, true, tok)).unwrap(), "OAUTHBEARER");
        assert!(ClientPolicy::server_offered_plus(&o));
    }

    #[test]
    fn plain_only_over_tls_unless_allowed() {
        let o = offered(&["PLAIN"]);
        let pw = CredentialKind::Password;
        let strict = ClientPolicy::default();
        assert_eq!(
            strict.select(&ctx(&o, false, false, pw)),
            Err(SelectError::NoAcceptableMechanism(o.clone()))
        );
        assert_eq!(strict.select(&ctx(&o, true, false, pw)).unwrap(), "PLAIN");
        let lax = ClientPolicy {
            allow_plain_without_tls: true,
            ..ClientPolicy::default()
        };
        assert_eq!(lax.select(&ctx(&o, false, false, pw)).unwrap(), "PLAIN");
        let x = offered(&["X-OAUTH2"]);
        let tok = CredentialKind::Token;
        assert!(strict.select(&ctx(&x, false, false, tok)).is_err());
        assert_eq!(
            strict.select(&ctx(&x, true, false, tok)).unwrap(),
            "X-OAUTH2"
        );
    }

    #[test]
    fn legacy_mechanisms_need_an_explicit_opt_in() {
        // Seed 004 offers DIGEST-MD5 and PLAIN, seed 000 X-GOOGLE-TOKEN.
        let seed004 = offered(&["DIGEST-MD5", "PLAIN"]);
        let pw = CredentialKind::Password;
        let default = ClientPolicy::default();
        assert_eq!(
            default.select(&ctx(&seed004, true, false, pw)).unwrap(),
            "PLAIN"
        );
        #[cfg(feature = "digest-md5")]
        {
            let digest = ClientPolicy {
                enable_digest_md5: true,
                ..ClientPolicy::default()
            };
            assert_eq!(
                digest.select(&ctx(&seed004, true, false, pw)).unwrap(),
                "DIGEST-MD5"
            );
        }
        let seed000 = offered(&["X-GOOGLE-TOKEN"]);
        let tok = CredentialKind::Token;
        assert!(default.select(&ctx(&seed000, true, false, tok)).is_err());
        #[cfg(feature = "google")]
        {
            let google = ClientPolicy {
                enable_x_google_token: true,
                ..ClientPolicy::default()
            };
            assert_eq!(
                google.select(&ctx(&seed000, true, false, tok)).unwrap(),
                "X-GOOGLE-TOKEN"
            );
        }
        let anon = offered(&["ANONYMOUS"]);
        let none = CredentialKind::None;
        assert!(default.select(&ctx(&anon, true, false, none)).is_err());
        let anon_ok = ClientPolicy {
            enable_anonymous: true,
            ..ClientPolicy::default()
        };
        assert_eq!(
            anon_ok.select(&ctx(&anon, true, false, none)).unwrap(),
            "ANONYMOUS"
        );
    }

    #[test]
    fn strongest_first_and_only_narrows() {
        let o = offered(&[
            "PLAIN",
            "SCRAM-SHA-1",
            "SCRAM-SHA-256",
            "SCRAM-SHA-512",
            "EXTERNAL",
        ]);
        let pw = CredentialKind::Password;
        let p = ClientPolicy::default();
        assert_eq!(
            p.select(&ctx(&o, true, false, pw)).unwrap(),
            "SCRAM-SHA-512"
        );
        let only = ClientPolicy {
            only: Some(vec!["SCRAM-SHA-1".into()]),
            ..ClientPolicy::default()
        };
        assert_eq!(
            only.select(&ctx(&o, true, false, pw)).unwrap(),
            "SCRAM-SHA-1"
        );
        // `only` never widens: PLAIN stays refused without TLS.
        let only_plain = ClientPolicy {
            only: Some(vec!["PLAIN".into()]),
            ..ClientPolicy::default()
        };
        assert!(only_plain.select(&ctx(&o, false, false, pw)).is_err());
        let cert = CredentialKind::ClientCertificate;
        assert_eq!(p.select(&ctx(&o, true, false, cert)).unwrap(), "EXTERNAL");
    }

    #[test]
    fn naming_a_mechanism_allows_it_and_refusals_say_which_rule() {
        let seed004 = offered(&["DIGEST-MD5", "PLAIN"]);
        let pw = CredentialKind::Password;
        let digest = ClientPolicy {
            only: Some(vec!["DIGEST-MD5".into()]),
            ..ClientPolicy::default()
        };
        // Named: no enable_digest_md5 needed, even without TLS (DIGEST-MD5
        // does not send the password); unknown in a build without it.
        let chosen = digest.select(&ctx(&seed004, false, false, pw));
        if cfg!(feature = "digest-md5") {
            assert_eq!(chosen.unwrap(), "DIGEST-MD5");
        } else {
            assert!(matches!(
                &chosen,
                Err(SelectError::Refused(r)) if r[0].refusal == Refusal::Unknown
            ));
        }
        let refused =
            |p: &ClientPolicy, o: &[String], tls, c| match p.select(&ctx(o, tls, false, c)) {
                Err(SelectError::Refused(r)) => r,
                other => panic!("{other:?}"),
            };
        let plain = ClientPolicy {
            only: Some(vec!["PLAIN".into()]),
            ..ClientPolicy::default()
        };
        assert_eq!(
            refused(&plain, &seed004, false, pw),
            [RefusedMechanism {
                mechanism: "PLAIN".into(),
                refusal: Refusal::NeedsTls
            }]
        );
        let plus = ClientPolicy {
            only: Some(vec![
                "SCRAM-SHA-1-PLUS".into(),
                "X-UNKNOWN".into(),
                "SCRAM-SHA-1".into(),
            ]),
            ..ClientPolicy::default()
        };
        let o = offered(&["SCRAM-SHA-1-PLUS", "X-UNKNOWN"]);
        let r: Vec<Refusal> = refused(&plus, &o, true, pw)
            .into_iter()
            .map(|m| m.refusal)
            .collect();
        assert_eq!(
            r,
            [
                Refusal::NeedsChannelBinding,
                Refusal::Unknown,
                Refusal::NotOffered
            ]
        );
        let tok = CredentialKind::Token;
        assert_eq!(
            refused(&plain, &seed004, true, tok)[0].refusal,
            Refusal::Credentials {
                needs: CredentialKind::Password,
                have: tok
            }
        );
        // Without `only`, an opt-in mechanism stays disabled.
        let p = ClientPolicy::default();
        let (n, prof) = BUILTIN.iter().find(|(n, _)| *n == "ANONYMOUS").unwrap();
        assert_eq!(
            p.check(
                n,
                prof,
                &ctx(&offered(&["ANONYMOUS"]), true, false, CredentialKind::None)
            ),
            Err(Refusal::Disabled(OptIn::Anonymous))
        );
    }

    #[test]
    fn mechanisms_of_features_not_built_are_never_chosen() {
        let named = |m: &str| ClientPolicy {
            only: Some(vec![m.to_owned()]),
            ..ClientPolicy::default()
        };
        let pw = CredentialKind::Password;
        let digest = named("DIGEST-MD5").select(&ctx(&offered(&["DIGEST-MD5"]), true, false, pw));
        assert_eq!(digest.is_ok(), cfg!(feature = "digest-md5"), "{digest:?}");
        let tok = CredentialKind::Token;
        let google =
            named("X-GOOGLE-TOKEN").select(&ctx(&offered(&["X-GOOGLE-TOKEN"]), true, false, tok));
        assert_eq!(google.is_ok(), cfg!(feature = "google"), "{google:?}");
    }
}
