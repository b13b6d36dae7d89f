//! A `Client` and a `Server` in memory, driven to completion over a
//! virtual clock (in the spirit of quinn-proto's `tests/util.rs` `Pair`),
//! with a host that answers the server's requests from a user store and a
//! filter that can split, delay, drop or tamper with bytes in flight.
//!
//! TLS is simulated: when both sides asked for it, each gets its
//! `tls_established` with the binding data the test chose (the same on
//! both sides for an honest channel, different for a man in the middle).
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use xmpp_sansio::client::{Client, ClientError, ClientEvent, ClientSettings, Credentials, TlsMode};
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::scram::derive_server_credentials;
#[cfg(feature = "digest-md5")]
use xmpp_sansio::sasl::DigestMd5Secret;
use xmpp_sansio::sasl::{CredentialAnswer, CredentialRequest, SaslCondition, ScramHash, Secret};
use xmpp_sansio::server::{
    BindAnswer, Server, ServerError, ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::stream_error::StreamErrorCondition;
use xmpp_sansio::{DeterministicRandom, TlsInfo};

use xmpp_sansio::fast::{Expiry, FastToken, TokenSlot, TokenSlots};

/// The host's clock for FAST tokens (Unix seconds), on both sides.
pub const FAST_NOW: i64 = 1_800_000_000;

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// What the filter does with a chunk in flight: the chunks to deliver
/// instead (empty: dropped; several: split).
pub type Filter = Box<dyn FnMut(Way, Vec<u8>) -> Vec<Vec<u8>>>;

/// The server host's user store.
#[derive(Clone)]
pub struct Store {
    pub users: HashMap<String, String>,
    scram: HashMap<(String, u8), xmpp_sansio::sasl::ScramCredentials>,
    /// FAST tokens per (user, user-agent id): the two slots.
    pub fast: HashMap<(String, Option<String>), TokenSlots>,
    /// Tokens issued so far (each token is `fast-token-<n>`).
    pub fast_issued: u32,
    /// Issue a new token on a token login too (rotation).
    pub fast_rotate: bool,
}

impl Store {
    pub fn new(users: &[(&str, &str)]) -> Store {
        let mut scram = HashMap::new();
        for (u, p) in users {
            for (k, h) in [
                (1u8, ScramHash::Sha1),
                (2, ScramHash::Sha256),
                (5, ScramHash::Sha512),
            ] {
                let c =
                    derive_server_credentials(h, p, format!("salt-{u}").as_bytes(), 4096).unwrap();
                scram.insert((u.to_string(), k), c);
            }
        }
        Store {
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            scram,
            fast: HashMap::new(),
            fast_issued: 0,
            fast_rotate: false,
        }
    }

    /// The host's answer to [`ServerEvent::IssueFastToken`]: promotes the
    /// slot the login used and keeps its count, and issues a token (on a
    /// token login only when rotating), valid for a day from the fixed
    /// clock [`FAST_NOW`].
    pub fn issue_fast_token(
        &mut self,
        user: &str,
        user_agent_id: Option<&str>,
        mechanism: &str,
        used: Option<TokenSlot>,
        count: Option<u32>,
    ) -> Option<FastToken> {
        let slots = self
            .fast
            .entry((user.to_owned(), user_agent_id.map(str::to_owned)))
            .or_default();
        if let Some(slot) = used {
            slots.record_use(slot, count);
            if !self.fast_rotate {
                return None;
            }
        }
        self.fast_issued += 1;
        let token = FastToken::new(
            mechanism,
            format!("fast-token-{}", self.fast_issued),
            Expiry::from_unix(FAST_NOW + 86_400).unwrap(),
        );
        slots.issue(token.clone());
        Some(token)
    }

    /// Replaces `user`'s SCRAM keys of `hash`.
    pub fn set_scram(
        &mut self,
        user: &str,
        hash: ScramHash,
        creds: xmpp_sansio::sasl::ScramCredentials,
    ) {
        let k = match hash {
            ScramHash::Sha1 => 1,
            ScramHash::Sha256 => 2,
            ScramHash::Sha512 => 5,
        };
        self.scram.insert((user.to_owned(), k), creds);
    }

    /// The host's answer to a request.
    pub fn answer(&self, req: &CredentialRequest) -> CredentialAnswer {
        match req {
            CredentialRequest::Password {
                username, password, ..
            } => CredentialAnswer::Verdict(match self.users.get(username) {
                Some(p) if password.ct_eq(p) => Ok(username.clone()),
                _ => Err(SaslCondition::NotAuthorized),
            }),
            CredentialRequest::Scram { username, hash, .. } => {
                let k = match hash {
                    ScramHash::Sha1 => 1u8,
                    ScramHash::Sha256 => 2,
                    ScramHash::Sha512 => 5,
                };
                CredentialAnswer::Scram(self.scram.get(&(username.clone(), k)).cloned())
            }
            #[cfg(feature = "digest-md5")]
            CredentialRequest::DigestMd5 { username, .. } => CredentialAnswer::DigestMd5(
                self.users
                    .get(username)
                    .map(|p| DigestMd5Secret::Password(p.as_str().into())),
            ),
            CredentialRequest::Token {
                username, token, ..
            } => {
                // Tokens are `token-<user>`; OAUTHBEARER may name no user.
                let user = token
                    .expose()
                    .strip_prefix("token-")
                    .unwrap_or_default()
                    .to_owned();
                // The claimed user: a local part, or a bare JID (Google's
                // tokens name the account's address).
                let claimed = username.split('@').next().unwrap_or_default();
                let ok = self.users.contains_key(&user) && (claimed.is_empty() || claimed == user);
                CredentialAnswer::Verdict(if ok {
                    Ok(user)
                } else {
                    Err(SaslCondition::NotAuthorized)
                })
            }
            CredentialRequest::External { .. } => CredentialAnswer::Verdict(Ok("alice".into())),
            // GSSAPI: `user@EXAMPLE.TEST` is `user`, who may act as
            // herself only.
            CredentialRequest::Gssapi { principal, authzid } => {
                let user = principal
                    .strip_suffix("@EXAMPLE.TEST")
                    .filter(|u| self.users.contains_key(*u));
                CredentialAnswer::Verdict(match (user, authzid.as_deref()) {
                    (None, _) => Err(SaslCondition::NotAuthorized),
                    (Some(u), Some(a)) if a.split('@').next() != Some(u) => {
                        Err(SaslCondition::InvalidAuthzid)
                    }
                    (Some(u), _) => Ok(u.to_owned()),
                })
            }
            CredentialRequest::Anonymous { .. } => CredentialAnswer::Verdict(Ok("anon-7".into())),
            CredentialRequest::FastToken {
                username,
                user_agent_id,
                ..
            } => CredentialAnswer::FastTokens({
                let mut slots = self
                    .fast
                    .get(&(username.clone(), user_agent_id.clone()))
                    .cloned()
                    .unwrap_or_default();
                slots.drop_expired(FAST_NOW);
                slots
            }),
            _ => CredentialAnswer::Verdict(Err(SaslCondition::TemporaryAuthFailure)),
        }
    }
}

/// The simulated TLS channel.
#[derive(Clone)]
pub struct TlsSim {
    pub client: TlsInfo,
    pub server: TlsInfo,
}

impl TlsSim {
    /// Both sides see the same channel.
    pub fn same(info: TlsInfo) -> TlsSim {
        TlsSim {
            client: info.clone(),
            server: info,
        }
    }
}

/// The pair.
pub struct Pair {
    pub client: Client,
    pub server: Server,
    pub now: Instant,
    pub store: Store,
    pub tls: Option<TlsSim>,
    pub filter: Option<Filter>,
    /// Bytes held back by the filter's delay (delivered next round).
    pub client_events: Vec<ClientEvent>,
    pub server_events: Vec<ServerEvent>,
    pub up_bytes: Vec<u8>,
    pub down_bytes: Vec<u8>,
    /// WebSocket framing (both sides' configurations say so): bytes move
    /// as messages, `poll_message` to `feed_message`.
    pub websocket: bool,
    /// Each message delivered, in order (WebSocket framing).
    pub up_messages: Vec<Vec<u8>>,
    pub down_messages: Vec<Vec<u8>>,
    /// Whether the host answers requests at once or one round later.
    pub slow_host: bool,
    pending_answers: Vec<CredentialRequest>,
    pending_bind: Option<Option<xmpp_sansio::jid::ResourcePart>>,
    client_wants_tls: bool,
    server_wants_tls: bool,
    pub bind_answer: Option<BindAnswer>,
    /// The server host's detached stream-management sessions, by id,
    /// kept and used to answer `Resume` when `answer_resume` is on
    /// (off: the test answers).
    pub detached: HashMap<String, xmpp_sansio::sm::SmState>,
    pub answer_resume: bool,
    /// The configurations, kept as a host keeps them for all its
    /// connections: a session dropped alone frees only the session.
    pub configs: (
        std::sync::Arc<xmpp_sansio::client::ClientConfig>,
        std::sync::Arc<xmpp_sansio::server::ServerConfig>,
    ),
}

impl Pair {
    pub fn new(
        client: ClientSettings,
        server: ServerSettings,
        store: Store,
        tls: Option<TlsSim>,
    ) -> Pair {
        Pair::seeded(client, server, store, tls, (1, 2))
    }

    /// A pair whose client and server draw from these seeds.
    pub fn seeded(
        client: ClientSettings,
        server: ServerSettings,
        store: Store,
        tls: Option<TlsSim>,
        (client_seed, server_seed): (u64, u64),
    ) -> Pair {
        let now = Instant::now();
        let (client, server) = (
            std::sync::Arc::new(client.build().unwrap()),
            std::sync::Arc::new(server.build().unwrap()),
        );
        let configs = (client.clone(), server.clone());
        assert_eq!(client.framing, server.framing, "one framing for both sides");
        let websocket = client.framing == xmpp_sansio::Framing::WebSocket;
        let (direct_client, direct_server) = (
            client.tls == TlsMode::Direct,
            server.tls == ServerTls::Direct,
        );
        let mut c =
            Client::with_random(client, Box::new(DeterministicRandom::new(client_seed)), now);
        let mut s =
            Server::with_random(server, Box::new(DeterministicRandom::new(server_seed)), now);
        // Direct TLS: the simulated channel is up before XMPP starts.
        if let Some(sim) = &tls {
            if direct_client {
                c = c.direct_tls(sim.client.clone());
            }
            if direct_server {
                s = s.direct_tls(sim.server.clone());
            }
        }
        Pair {
            client: c,
            server: s,
            now,
            store,
            tls,
            filter: None,
            client_events: Vec::new(),
            server_events: Vec::new(),
            up_bytes: Vec::new(),
            down_bytes: Vec::new(),
            websocket,
            up_messages: Vec::new(),
            down_messages: Vec::new(),
            slow_host: false,
            pending_answers: Vec::new(),
            pending_bind: None,
            client_wants_tls: false,
            server_wants_tls: false,
            bind_answer: None,
            detached: HashMap::new(),
            answer_resume: false,
            configs,
        }
    }

    /// A pair whose server knows one user: alice, password `pencil`.
    pub fn with_alice(client: ClientSettings, server: ServerSettings, tls: Option<TlsSim>) -> Pair {
        Pair::new(client, server, Store::new(&[("alice", "pencil")]), tls)
    }

    /// [`with_alice`](Self::with_alice) with the client and server seeds.
    pub fn alice_seeded(
        client: ClientSettings,
        server: ServerSettings,
        tls: Option<TlsSim>,
        seeds: (u64, u64),
    ) -> Pair {
        Pair::seeded(
            client,
            server,
            Store::new(&[("alice", "pencil")]),
            tls,
            seeds,
        )
    }

    /// Bytes in flight, through the filter; in WebSocket framing, a
    /// message (each chunk the filter gives is delivered as a message).
    fn deliver(&mut self, way: Way, bytes: Vec<u8>) {
        if bytes.is_empty() && !self.websocket {
            return;
        }
        let chunks = match &mut self.filter {
            Some(f) => f(way, bytes),
            None => vec![bytes],
        };
        for c in chunks {
            let (bytes, messages) = match way {
                Way::Up => (&mut self.up_bytes, &mut self.up_messages),
                Way::Down => (&mut self.down_bytes, &mut self.down_messages),
            };
            bytes.extend_from_slice(&c);
            let now = self.now;
            let _ = match (way, self.websocket) {
                (Way::Up, false) => self.server.feed(now, &c),
                (Way::Down, false) => self.client.feed(now, &c),
                (Way::Up, true) => self.server.feed_message(now, &c),
                (Way::Down, true) => self.client.feed_message(now, &c),
            };
            if self.websocket {
                messages.push(c);
            }
        }
    }

    /// One round: move bytes both ways, handle events, answer requests.
    /// Returns whether anything happened.
    pub fn step(&mut self) -> bool {
        let mut busy = false;
        if self.websocket {
            while let Some(m) = self.client.poll_message() {
                busy = true;
                self.deliver(Way::Up, m);
            }
            while let Some(m) = self.server.poll_message() {
                busy = true;
                self.deliver(Way::Down, m);
            }
        }
        if !self.websocket {
            let mut up = Vec::new();
            self.client.poll_transmit(&mut up);
            busy |= !up.is_empty();
            self.deliver(Way::Up, up);
            let mut down = Vec::new();
            self.server.poll_transmit(&mut down);
            busy |= !down.is_empty();
            self.deliver(Way::Down, down);
        }
        // Answers held back by a slow host go out now.
        for req in std::mem::take(&mut self.pending_answers) {
            let a = self.store.answer(&req);
            let _ = self.server.answer_credentials(self.now, a);
            busy = true;
        }
        if let Some(requested) = self.pending_bind.take() {
            let a = self
                .bind_answer
                .clone()
                .unwrap_or(BindAnswer::Accept(requested));
            let _ = self.server.answer_bind(self.now, a);
            busy = true;
        }
        while let Some(ev) = self.client.poll_event() {
            busy = true;
            if let ClientEvent::StartTls { pending } = &ev {
                assert!(pending.is_empty(), "bytes after proceed");
                self.client_wants_tls = true;
            }
            self.client_events.push(ev);
        }
        while let Some(ev) = self.server.poll_event() {
            busy = true;
            match &ev {
                ServerEvent::StartTls { pending } => {
                    assert!(pending.is_empty(), "bytes after starttls");
                    self.server_wants_tls = true;
                }
                ServerEvent::Credentials(req) => {
                    if self.slow_host {
                        self.pending_answers.push(clone_request(req));
                    } else {
                        let a = self.store.answer(req);
                        let _ = self.server.answer_credentials(self.now, a);
                    }
                }
                ServerEvent::Detached(st) if self.answer_resume => {
                    self.detached.insert(st.id().to_owned(), st.clone());
                }
                ServerEvent::Resume(req) if self.answer_resume => {
                    let answer = match self.detached.remove(&req.previd) {
                        Some(st) => xmpp_sansio::server::ResumeAnswer::Found(st),
                        None => xmpp_sansio::server::ResumeAnswer::NotFound,
                    };
                    let _ = self.server.answer_resume(self.now, answer);
                }
                ServerEvent::IssueFastToken {
                    jid,
                    user_agent_id,
                    mechanism,
                    used,
                    count,
                } => {
                    let user = jid.node().map(|n| n.to_string()).unwrap_or_default();
                    let token = self.store.issue_fast_token(
                        &user,
                        user_agent_id.as_deref(),
                        mechanism,
                        *used,
                        *count,
                    );
                    let _ = self.server.answer(self.now, token);
                }
                ServerEvent::FastTokenInvalidated {
                    jid,
                    user_agent_id,
                    used,
                } => {
                    let user = jid.node().map(|n| n.to_string()).unwrap_or_default();
                    if let Some(slots) = self.store.fast.get_mut(&(user, user_agent_id.clone())) {
                        slots.invalidate(*used);
                    }
                }
                ServerEvent::Bind { resource, .. } => {
                    if self.slow_host {
                        self.pending_bind = Some(resource.clone());
                    } else {
                        let a = self
                            .bind_answer
                            .clone()
                            .unwrap_or(BindAnswer::Accept(resource.clone()));
                        let _ = self.server.answer_bind(self.now, a);
                    }
                }
                _ => {}
            }
            self.server_events.push(ev);
        }
        // The TLS handshake completes once both sides started it (the
        // server's <proceed/> has been delivered by then).
        if self.client_wants_tls && self.server_wants_tls {
            let sim = self
                .tls
                .clone()
                .expect("TLS asked for without a simulated channel");
            self.client_wants_tls = false;
            self.server_wants_tls = false;
            self.server.tls_established(self.now, sim.server).unwrap();
            self.client.tls_established(self.now, sim.client).unwrap();
            busy = true;
        }
        busy
    }

    /// Steps until idle, advancing the clock to the next deadline when
    /// nothing else happens; at most `max` rounds.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            if self.step() {
                continue;
            }
            if self.client.is_closed() && self.server.is_closed() {
                return;
            }
            // Idle: advance the virtual clock.
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                }
                None => return,
            }
        }
        panic!("the pair did not settle");
    }

    /// Steps until both sides are ready or something failed, without
    /// advancing the clock.
    pub fn negotiate(&mut self) {
        for _ in 0..1000 {
            if (self.client.is_ready() && self.server.is_ready())
                || self.client.is_closed()
                || self.server.is_closed()
            {
                // Let the last bytes land.
                while self.step() {}
                return;
            }
            if !self.step() {
                return;
            }
        }
        panic!("negotiation did not settle");
    }

    pub fn client_error(&self) -> Option<&ClientError> {
        self.client_events.iter().find_map(|e| match e {
            ClientEvent::Error(err) => Some(err),
            _ => None,
        })
    }

    pub fn server_error(&self) -> Option<&ServerError> {
        self.server_events.iter().find_map(|e| match e {
            ServerEvent::Error(err) => Some(err),
            _ => None,
        })
    }

    pub fn server_auth_failure(&self) -> Option<SaslCondition> {
        self.server_events.iter().find_map(|e| match e {
            ServerEvent::AuthenticationFailed { condition, .. } => Some(*condition),
            _ => None,
        })
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }
}

fn clone_request(r: &CredentialRequest) -> CredentialRequest {
    match r {
        CredentialRequest::Password {
            username,
            authzid,
            password,
        } => CredentialRequest::Password {
            username: username.clone(),
            authzid: authzid.clone(),
            password: password.clone(),
        },
        CredentialRequest::Scram {
            username,
            authzid,
            hash,
        } => CredentialRequest::Scram {
            username: username.clone(),
            authzid: authzid.clone(),
            hash: *hash,
        },
        #[cfg(feature = "digest-md5")]
        CredentialRequest::DigestMd5 {
            username,
            realm,
            authzid,
        } => CredentialRequest::DigestMd5 {
            username: username.clone(),
            realm: realm.clone(),
            authzid: authzid.clone(),
        },
        CredentialRequest::Token {
            mechanism,
            username,
            token,
        } => CredentialRequest::Token {
            mechanism,
            username: username.clone(),
            token: token.clone(),
        },
        CredentialRequest::External { authzid } => CredentialRequest::External {
            authzid: authzid.clone(),
        },
        CredentialRequest::Gssapi { principal, authzid } => CredentialRequest::Gssapi {
            principal: principal.clone(),
            authzid: authzid.clone(),
        },
        CredentialRequest::Anonymous { trace } => CredentialRequest::Anonymous {
            trace: trace.clone(),
        },
        _ => panic!("unknown request"),
    }
}

/// A client config for `jid` with `creds`, using only `mechanism`.
pub fn client_config(
    jid: &str,
    creds: Credentials,
    mechanism: &str,
    tls: TlsMode,
) -> ClientSettings {
    let mut c = ClientSettings::new(jid, creds);
    c.tls = tls;
    c.policy.only = Some(vec![mechanism.to_owned()]);
    c.policy.allow_plain_without_tls = true;
    #[cfg(feature = "digest-md5")]
    {
        c.policy.enable_digest_md5 = true;
    }
    #[cfg(feature = "google")]
    {
        c.policy.enable_x_google_token = true;
    }
    c.policy.enable_anonymous = true;
    c.resource = Some("pair".into());
    c
}

/// alice@example.com with password `pencil`, using only `mechanism`.
pub fn alice_config(mechanism: &str, tls: TlsMode) -> ClientSettings {
    client_config(
        "alice@example.com",
        Credentials::password("pencil"),
        mechanism,
        tls,
    )
}

/// A server config for `domain` offering `mechanisms`.
pub fn server_config(domain: &str, mechanisms: &[&str], tls: ServerTls) -> ServerSettings {
    let mut s = ServerSettings::new(domain);
    s.tls = tls;
    s.mechanisms = mechanisms.iter().map(|m| m.to_string()).collect();
    s.allow_plain_without_tls = true;
    s
}

/// The condition a stream error carried, as the other side saw it.
pub fn stream_condition_seen_by_client(e: &ClientError) -> Option<StreamErrorCondition> {
    match e {
        ClientError::PeerStreamError(s) => Some(s.condition.clone()),
        _ => None,
    }
}

/// Every built-in mechanism of this build.
pub const MECHANISMS: &[&str] = &[
    "PLAIN",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "SCRAM-SHA-512",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-512-PLUS",
    #[cfg(feature = "digest-md5")]
    "DIGEST-MD5",
    "EXTERNAL",
    "ANONYMOUS",
    "X-OAUTH2",
    #[cfg(feature = "google")]
    "X-GOOGLE-TOKEN",
    "OAUTHBEARER",
];

/// The credentials for `mech`: good ones, or wrong ones.
pub fn creds(mech: &str, good: bool) -> (String, Credentials) {
    let pw = if good { "pencil" } else { "wrong" };
    match mech {
        "EXTERNAL" => ("example.com".into(), Credentials::ClientCertificate),
        "ANONYMOUS" => ("example.com".into(), Credentials::Anonymous),
        "X-OAUTH2" | "X-GOOGLE-TOKEN" | "OAUTHBEARER" => (
            "alice@example.com".into(),
            Credentials::Token(Secret::new(if good {
                "token-alice"
            } else {
                "token-mallory"
            })),
        ),
        _ => ("alice@example.com".into(), Credentials::password(pw)),
    }
}

pub fn tls_info(version: TlsVersion, cb: Option<(ChannelBindingType, &[u8])>) -> TlsInfo {
    TlsInfo {
        version,
        channel_bindings: cb
            .map(|(k, d)| ChannelBinding::new(k, d.to_vec()))
            .into_iter()
            .collect(),
    }
}
