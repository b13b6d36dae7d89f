//! Which mechanism a client uses: an explicit, documented policy.
//!
//! [`ClientPolicy::select`] ranks what the server offered, strongest first,
//! and keeps only what the policy and the credentials allow:
//!
//! 1. `SCRAM-SHA-512-PLUS`, `SCRAM-SHA-256-PLUS`, `SCRAM-SHA-1-PLUS`, only
//!    when the host can supply channel-binding data of a type the server
//!    accepts;
//! 2. `SCRAM-SHA-512`, `SCRAM-SHA-256`, `SCRAM-SHA-1`;
//! 3. `DIGEST-MD5`, only when `ClientPolicy::enable_digest_md5` is set
//!    (RFC 6331 made it historic; only with the `digest-md5` feature);
//! 4. `PLAIN`, only over TLS unless [`ClientPolicy::allow_plain_without_tls`];
//!
//! for a password. For a token: `OAUTHBEARER`, then `X-OAUTH2`, then
//! `X-GOOGLE-TOKEN` when enabled (only with the `google` feature), all three only over TLS unless
//! [`ClientPolicy::allow_plain_without_tls`] (a bearer token is a
//! password: whoever reads it logs in with it). A TLS client
//! certificate selects `EXTERNAL`; no credentials select `ANONYMOUS` when
//! enabled. An explicit [`ClientPolicy::only`] list narrows all of this
//! further (a `--mechanism` flag), it never widens it.
//!
//! There is no fallback: `select` is asked once per stream, and after a
//! credentials failure the client stops instead of retrying with a weaker
//! mechanism.

use std::fmt;

/// What the client authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A password (or SCRAM keys cached from one).
    Password,
    /// A bearer token (OAuth 2.0 access token, Google token).
    Token,
    /// The TLS client certificate (SASL EXTERNAL).
    ClientCertificate,
    /// No credentials: anonymous login.
    None,
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
    /// When set, only these mechanisms (exact names) may be chosen.
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

/// Why no mechanism could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// The server offered nothing that the policy and the credentials
    /// allow. Carries what it offered.
    NoAcceptableMechanism(Vec<String>),
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAcceptableMechanism(o) => {
                write!(f, "no acceptable SASL mechanism among {o:?}")
            }
        }
    }
}

impl std::error::Error for SelectError {}

/// The password mechanisms, strongest first, with whether each needs
/// channel binding.
const PASSWORD_RANKING: &[(&str, bool)] = &[
    ("SCRAM-SHA-512-PLUS", true),
    ("SCRAM-SHA-256-PLUS", true),
    ("SCRAM-SHA-1-PLUS", true),
    ("SCRAM-SHA-512", false),
    ("SCRAM-SHA-256", false),
    ("SCRAM-SHA-1", false),
    #[cfg(feature = "digest-md5")]
    ("DIGEST-MD5", false),
    ("PLAIN", false),
];

const TOKEN_RANKING: &[&str] = &[
    "OAUTHBEARER",
    "X-OAUTH2",
    #[cfg(feature = "google")]
    "X-GOOGLE-TOKEN",
];

impl ClientPolicy {
    /// Whether the policy allows `mechanism` in `ctx`, regardless of what
    /// was offered.
    pub fn allows(&self, mechanism: &str, ctx: &SelectionContext<'_>) -> bool {
        if let Some(only) = &self.only {
            if !only.iter().any(|m| m == mechanism) {
                return false;
            }
        }
        let cleartext_ok = ctx.tls || self.allow_plain_without_tls;
        match ctx.credentials {
            CredentialKind::Password => match mechanism {
                "PLAIN" => cleartext_ok,
                #[cfg(feature = "digest-md5")]
                "DIGEST-MD5" => self.enable_digest_md5,
                m => PASSWORD_RANKING
                    .iter()
                    .any(|(name, plus)| *name == m && (!plus || ctx.can_bind)),
            },
            // Bearer tokens are passwords: never in the clear by default.
            CredentialKind::Token => match mechanism {
                "OAUTHBEARER" | "X-OAUTH2" => cleartext_ok,
                #[cfg(feature = "google")]
                "X-GOOGLE-TOKEN" => self.enable_x_google_token && cleartext_ok,
                _ => false,
            },
            CredentialKind::ClientCertificate => mechanism == "EXTERNAL",
            CredentialKind::None => mechanism == "ANONYMOUS" && self.enable_anonymous,
        }
    }

    /// Chooses the strongest allowed mechanism the server offered.
    pub fn select(&self, ctx: &SelectionContext<'_>) -> Result<String, SelectError> {
        let ranking: Vec<&str> = match ctx.credentials {
            CredentialKind::Password => PASSWORD_RANKING.iter().map(|(n, _)| *n).collect(),
            CredentialKind::Token => TOKEN_RANKING.to_vec(),
            CredentialKind::ClientCertificate => vec!["EXTERNAL"],
            CredentialKind::None => vec!["ANONYMOUS"],
        };
        ranking
            .into_iter()
            .find(|m| ctx.offered.iter().any(|o| o == m) && self.allows(m, ctx))
            .map(str::to_owned)
            .ok_or_else(|| SelectError::NoAcceptableMechanism(ctx.offered.to_vec()))
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

    /// Without its feature, DIGEST-MD5 (a password mechanism) or
    /// X-GOOGLE-TOKEN (a token one) is a name the policy does not know:
    /// never chosen, even when it is the only one offered and the only one
    /// `only` names. (Nothing to check in a build with both.)
    #[test]
    fn mechanisms_of_features_not_built_are_never_chosen() {
        let not_built: &[(&str, CredentialKind)] = &[
            #[cfg(not(feature = "digest-md5"))]
            ("DIGEST-MD5", CredentialKind::Password),
            #[cfg(not(feature = "google"))]
            ("X-GOOGLE-TOKEN", CredentialKind::Token),
        ];
        for (m, kind) in not_built {
            let o = offered(&[m]);
            let p = ClientPolicy {
                only: Some(o.clone()),
                ..ClientPolicy::default()
            };
            let c = ctx(&o, true, false, *kind);
            assert!(!p.allows(m, &c), "{m}");
            assert_eq!(p.select(&c), Err(SelectError::NoAcceptableMechanism(o)));
        }
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
}
