//! The login clients' command line (`client` and `tokio_client` take the
//! same options), the `ClientConfig` it makes, and the one-line reason of a
//! failure both print.

use std::sync::Arc;
use std::time::{Duration, Instant};
use xmpp_sansio::client::{PeerRefusal, PolicyError};
use xmpp_sansio::error::Misbehavior;

use xmpp_sansio::client::{Client, ClientConfig, ClientError, Credentials, TlsMode};
use xmpp_sansio::sasl::channel_binding::{ChannelBindingType, TlsVersion};
use xmpp_sansio::TlsInfo;

use xmpp_sansio::bosh::{BoshClientConfig, BoshXmppClient};

use crate::blocking::BoxTransport;
use crate::tls::{BindingChoice, Trust};
use crate::tokio::BoxStream;
use crate::tool::host::{note, trust_of, CommonFlags};

/// The options of the `--help` of `client` and `tokio_client` (the text of
/// `parse_args`), in the pieces both say alike, for `concat!`: from
/// `OPTIONS:` to the `--channel-binding` line, ...
#[macro_export]
#[doc(hidden)]
macro_rules! help_options_head {
    () => {
        "\
OPTIONS:
    --host H            server address (default: the JID's domain)
    --port P            port (default: 5222, or 5223 with --tls direct)
    --transport T       tcp (default) | websocket (RFC 7395) | bosh (XEP-0206), with --url
    --url U             websocket: ws://HOST:PORT/xmpp-websocket or wss://...; bosh:
                        http://HOST:PORT/http-bind or https://... (instead of
                        --host/--port/--tls: ws://, http:// have no TLS; wss://, https://
                        are TLS first)
    --jid J             user@domain, or just domain for ANONYMOUS
    --password W        password (SCRAM-*, PLAIN, ...)
    --token T           bearer token (OAUTHBEARER, X-OAUTH2)
                        with neither: SASL ANONYMOUS
    --mechanism M       use only this SASL mechanism (e.g. SCRAM-SHA-1-PLUS, PLAIN);
                        GSSAPI: Kerberos, the ticket of KRB5CCNAME for xmpp@<domain>
                        (a hosts crate built with --features gssapi)
    --client-cert F     PEM certificate (chain) to present in TLS, with --client-key F
    --client-key F      (its PEM key); without --password/--token: SASL EXTERNAL
    --channel-binding B tls-exporter | tls-server-end-point | tls-unique | none | auto (default)
"
    };
}

/// ... from `--insecure` to the `--transcript` line, ...
#[macro_export]
#[doc(hidden)]
macro_rules! help_options_middle {
    () => {
        "    --insecure          accept any server certificate (tests only)
    --tls-version V     1.2 | 1.3: allow only this TLS version (default: both)
    --resource R        the resource to ask for (default: the server chooses); with
                        SASL2, Bind 2's tag (the server adds a part of its own)
    --sasl2 P           auto (default: SASL2, XEP-0388, when offered, with Bind 2 and
                        stream management inline) | require | never (RFC 6120 SASL)
    --user-agent-id U   SASL2's user-agent id: a UUID this installation keeps
    --carbons           Bind 2: enable Message Carbons (XEP-0280) inline, when the
                        server lists them
    --csi S             Bind 2: start active | inactive (XEP-0352), when listed
    --fast-token-file F FAST (XEP-0484): when F holds a token, log in with it (no
                        password fallback) sending XEP-0484's count (kept in F);
                        on a password login ask for a token and save it to F; a token
                        the server rotates rewrites F, one it refuses is removed
                        (over SASL2; with or without --sm)
    --fast-invalidate   with --fast-token-file: log in with the token and ask the
                        server to invalidate it (a log-out); F is removed
    --fast-mechanism M  with --fast-token-file: ask for a token of this FAST mechanism
                        only (HT-SHA-256-EXPR, HT-SHA-256-NONE, ...; a comma list:
                        the first usable, in that order), and log in only with a
                        token of it; when the server does not offer it or the
                        connection lacks its channel binding (-UNIQ: never on TLS
                        1.3, and rustls gives no tls-unique), an error: no other
                        is asked for. Implies --sasl2 require. Default: the best
                        offered (channel binding first, then the stronger hash)
    --transcript        print every byte sent and received (decrypted after TLS) as
"
    };
}

/// ... and from `--timeout` to the `OUTPUT:` heading.
#[macro_export]
#[doc(hidden)]
macro_rules! help_options_tail {
    () => {
        "    --timeout S         seconds allowed for the negotiation (default 20)
    -h, --help          this text

OUTPUT:
"
    };
}

/// `--tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsArg {
    StartTls,
    Direct,
    None,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportArg {
    /// The XML stream over TCP (default).
    Tcp,
    /// RFC 7395 over the WebSocket of `--url`.
    WebSocket,
    /// XEP-0206 over HTTP requests to `--url`.
    Bosh,
}

/// The parsed command line.
#[derive(Debug)]
pub struct Args {
    pub jid: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub mechanism: Option<String>,
    pub binding: BindingChoice,
    pub tls: TlsArg,
    pub trust: Option<Trust>,
    pub tls_version: Option<TlsVersion>,
    pub resource: Option<String>,
    pub transcript: bool,
    pub timeout: Duration,
    pub transport: TransportArg,
    /// `--url` (with `--transport websocket` or `bosh`).
    pub url: Option<crate::websocket::WsUrl>,
    /// `--client-cert F --client-key F`: presented in TLS (SASL EXTERNAL).
    pub client_auth: Option<crate::tls::ClientAuth>,
    /// `--sm`: stream management (XEP-0198) with resumption.
    pub sm: bool,
    /// `--sasl2`.
    pub sasl2: xmpp_sansio::sasl2::Sasl2Policy,
    /// `--user-agent-id`.
    pub user_agent_id: Option<String>,
    /// `--fast-token-file F`.
    pub fast_token_file: Option<std::path::PathBuf>,
    /// `--carbons`: Message Carbons inline in Bind 2.
    pub carbons: bool,
    /// `--csi active|inactive`: the CSI state inline in Bind 2.
    pub csi: Option<xmpp_sansio::sasl2::CsiState>,
    /// `--fast-mechanism M[,M...]`: the FAST mechanisms allowed, in order
    /// of preference (`FastPolicy::only`).
    pub fast_mechanisms: Option<Vec<String>>,
    /// `--fast-invalidate`.
    pub fast_invalidate: bool,
    /// `--sm-state-file F`: where the session's state is kept.
    pub sm_state_file: Option<std::path::PathBuf>,
    /// `--message TEXT`: sent to the client's own full JID.
    pub message: Option<String>,
    /// `--hangup`: drop the connection without closing the stream.
    pub hangup: bool,
    /// `--linger S`: once ready, keep the connection this long before
    /// closing (another process may resume the session meanwhile).
    pub linger: Option<std::time::Duration>,
}

/// The options of the HELP text; `Ok(None)` for `--help`.
pub fn parse_args(it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut password = None;
    let mut token = None;
    let mut mechanism = None;
    let mut binding = BindingChoice::Auto;
    let mut tls = TlsArg::StartTls;
    let mut tls_version = None;
    let mut transport = TransportArg::Tcp;
    let mut url = None;
    let mut tls_given = false;
    let (mut client_cert, mut client_key) = (None, None);
    let (mut sm, mut sm_state_file, mut message, mut hangup) = (false, None, None, false);
    let mut sasl2 = xmpp_sansio::sasl2::Sasl2Policy::Auto;
    let mut user_agent_id = None;
    let mut fast_token_file = None;
    let (mut carbons, mut csi) = (false, None);
    let mut fast_mechanisms = None;
    let mut fast_invalidate = false;
    let mut linger = None;
    let parsed = CommonFlags::parse(it, |flag, value| {
        match flag {
            "--sm" => sm = true,
            "--sasl2" => {
                use xmpp_sansio::sasl2::Sasl2Policy;
                let v = value()?;
                sasl2 = match v.as_str() {
                    "auto" => Sasl2Policy::Auto,
                    "require" => Sasl2Policy::Require,
                    "never" => Sasl2Policy::Never,
                    _ => return Err(format!("unknown --sasl2 {v:?} (auto, require or never)")),
                };
            }
            "--user-agent-id" => {
                let v = value()?;
                if !is_uuid(&v) {
                    return Err(format!(
                        "--user-agent-id {v:?} is not a UUID (8-4-4-4-12 hexadecimal digits)"
                    ));
                }
                user_agent_id = Some(v);
            }
            "--sm-state-file" => sm_state_file = Some(value()?.into()),
            "--fast-token-file" => fast_token_file = Some(value()?.into()),
            "--carbons" => carbons = true,
            "--csi" => {
                use xmpp_sansio::sasl2::CsiState;
                let v = value()?;
                csi = Some(match v.as_str() {
                    "active" => CsiState::Active,
                    "inactive" => CsiState::Inactive,
                    _ => return Err(format!("unknown --csi {v:?} (active or inactive)")),
                });
            }
            "--fast-mechanism" => {
                let v = value()?;
                let names: Vec<String> = v.split(',').map(str::to_owned).collect();
                if let Some(n) = names
                    .iter()
                    .find(|n| xmpp_sansio::sasl::ht::HtMechanism::from_name(n).is_none())
                {
                    return Err(format!(
                        "--fast-mechanism {n:?}: not a FAST mechanism (HT-<hash>-<binding>: \
                         hash SHA-256, SHA-512 or SHA3-512; binding NONE, UNIQ, ENDP or EXPR)"
                    ));
                }
                fast_mechanisms = Some(names);
            }
            "--fast-invalidate" => fast_invalidate = true,
            "--message" => message = Some(value()?),
            "--hangup" => hangup = true,
            "--linger" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                    .ok_or_else(|| format!("--linger {v}: seconds, 0 to 86400"))?;
                linger = Some(std::time::Duration::from_secs_f64(secs));
            }
            "--password" => password = Some(value()?),
            "--token" => token = Some(value()?),
            "--mechanism" => mechanism = Some(value()?),
            "--channel-binding" => {
                let v = value()?;
                binding = match v.as_str() {
                    "auto" => BindingChoice::Auto,
                    "none" => BindingChoice::None,
                    name => BindingChoice::Only(
                        ChannelBindingType::from_name(name)
                            .ok_or_else(|| format!("unknown --channel-binding {v:?}"))?,
                    ),
                };
            }
            "--transport" => {
                let v = value()?;
                transport = match v.as_str() {
                    "tcp" => TransportArg::Tcp,
                    "websocket" => TransportArg::WebSocket,
                    "bosh" => TransportArg::Bosh,
                    _ => {
                        return Err(format!(
                            "unknown --transport {v:?} (tcp, websocket or bosh)"
                        ))
                    }
                };
            }
            "--url" => url = Some(value()?),
            "--client-cert" => client_cert = Some(value()?),
            "--client-key" => client_key = Some(value()?),
            "--tls" => {
                tls_given = true;
                let v = value()?;
                tls = match v.as_str() {
                    "starttls" => TlsArg::StartTls,
                    "direct" => TlsArg::Direct,
                    "none" => TlsArg::None,
                    _ => return Err(format!("unknown --tls {v:?}")),
                };
            }
            "--tls-version" => {
                let v = value()?;
                tls_version = Some(match v.as_str() {
                    "1.2" => TlsVersion::Tls12,
                    "1.3" => TlsVersion::Tls13,
                    _ => return Err(format!("unknown --tls-version {v:?} (1.2 or 1.3)")),
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    let Some(mut common) = parsed else {
        return Ok(None);
    };
    let url = match (transport, url) {
        (TransportArg::Bosh, Some(u)) => Some(crate::websocket::WsUrl::parse_http(&u)?),
        (_, Some(u)) => Some(crate::websocket::WsUrl::parse(&u)?),
        (_, None) => None,
    };
    let mut a = Args {
        host: common.host.take(),
        port: common.port,
        jid: std::mem::take(&mut common.jid),
        password,
        token,
        mechanism,
        binding,
        tls,
        trust: None,
        tls_version,
        resource: common.resource.take(),
        transcript: common.transcript,
        timeout: common.timeout(),
        transport,
        url,
        client_auth: match (client_cert, client_key) {
            (Some(c), Some(k)) => Some(crate::tls::ClientAuth::load(&c, &k)?),
            (None, None) => None,
            _ => return Err("give --client-cert and --client-key together".into()),
        },
        sm,
        sasl2,
        user_agent_id,
        fast_token_file,
        carbons,
        csi,
        fast_mechanisms,
        fast_invalidate,
        sm_state_file,
        message,
        hangup,
        linger,
    };
    if (a.sm_state_file.is_some() || a.hangup || a.message.is_some() || a.linger.is_some()) && !a.sm
    {
        return Err("--sm-state-file, --message, --hangup and --linger go with --sm".into());
    }
    if a.fast_mechanisms.is_some() {
        if a.fast_token_file.is_none() {
            return Err("--fast-mechanism goes with --fast-token-file".into());
        }
        // Asked for by name: no silent login without a token over RFC 6120 SASL.
        a.sasl2 = match a.sasl2 {
            xmpp_sansio::sasl2::Sasl2Policy::Never => {
                return Err("--fast-mechanism needs SASL2, not --sasl2 never".into())
            }
            _ => xmpp_sansio::sasl2::Sasl2Policy::Require,
        };
    }
    if a.fast_invalidate && a.fast_token_file.is_none() {
        return Err("--fast-invalidate goes with --fast-token-file".into());
    }
    if a.hangup && a.linger.is_some() {
        return Err("--hangup or --linger, not both".into());
    }
    if a.sm && a.transport != TransportArg::Tcp {
        return Err("--sm: over --transport tcp only in this tool".into());
    }
    match (a.transport, &a.url) {
        (TransportArg::WebSocket, None) => {
            return Err("--transport websocket needs --url ws://... or wss://...".into())
        }
        (TransportArg::Bosh, None) => {
            return Err("--transport bosh needs --url http://... or https://...".into())
        }
        (TransportArg::Tcp, Some(_)) => {
            return Err("--url is for --transport websocket or bosh".into())
        }
        (TransportArg::WebSocket | TransportArg::Bosh, Some(u)) => {
            if tls_given || a.host.is_some() || a.port.is_some() {
                return Err(
                    "--transport websocket or bosh: the --url says where and whether TLS \
                     (wss://, https://); no --tls, --host or --port"
                        .into(),
                );
            }
            // No STARTTLS over a WebSocket or BOSH: TLS is the wss:// or
            // https:// one, set up before the stream (as direct TLS).
            a.tls = if u.secure {
                TlsArg::Direct
            } else {
                TlsArg::None
            };
        }
        (TransportArg::Tcp, None) => {}
    }
    if a.jid.is_empty() {
        return Err("--jid is required (see --help)".into());
    }
    if a.password.is_some() && a.token.is_some() {
        return Err("give --password or --token, not both".into());
    }
    if a.client_auth.is_some() && a.tls == TlsArg::None {
        return Err("--client-cert needs TLS".into());
    }
    let external = a.mechanism.as_deref() == Some("EXTERNAL");
    if external && (a.client_auth.is_none() || a.password.is_some() || a.token.is_some()) {
        return Err(
            "--mechanism EXTERNAL: give --client-cert and --client-key, no password or token"
                .into(),
        );
    }
    a.trust = trust_of(common.ca_file, common.insecure)?;
    if a.trust.is_none() && a.tls != TlsArg::None {
        return Err("TLS needs --ca-file F or --insecure".into());
    }
    Ok(Some(a))
}

impl Args {
    /// `--port`, or the default of `--tls`: 5223 for direct TLS, else 5222.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsArg::Direct => 5223,
            _ => 5222,
        })
    }

    /// Where to connect: the `--url`'s host and port, or `--host` (the
    /// JID's domain) and [`Args::port`].
    pub fn address(&self) -> (String, u16) {
        match &self.url {
            Some(u) => (u.host.clone(), u.port),
            None => (
                self.host
                    .clone()
                    .unwrap_or_else(|| crate::tool::host::domain_of(&self.jid).to_owned()),
                self.port(),
            ),
        }
    }

    /// The client's TLS mode, and what it is told of the first
    /// connection's TLS (`tls`, for direct TLS): over BOSH (`https://`),
    /// TLS without channel binding, as the session spans connections.
    pub fn tls_mode(&self, tls: Option<(TlsInfo, String)>) -> (TlsMode, Option<TlsInfo>) {
        let info = tls.map(|(i, _)| match self.transport {
            TransportArg::Bosh => TlsInfo::without_binding(i.version),
            _ => i,
        });
        match self.tls {
            TlsArg::None => (TlsMode::None, None),
            TlsArg::StartTls => (TlsMode::StartTlsRequired, None),
            TlsArg::Direct => (TlsMode::Direct, info),
        }
    }

    /// How to open a connection to the server for these arguments: for
    /// the first, and for each further HTTP connection of BOSH.
    pub fn dialer(&self) -> Result<Dialer, String> {
        let (host, port) = self.address();
        let tls = match self.tls {
            TlsArg::Direct => {
                let (name, alpn) = self.direct_tls_target();
                Some((self.tls_config(Some(alpn))?, name))
            }
            TlsArg::StartTls | TlsArg::None => None,
        };
        Ok(Dialer {
            host,
            port,
            timeout: self.timeout,
            tls,
            binding: self.binding,
            require_ems: self.require_ems(),
        })
    }

    /// The BOSH session of `client` (configured for BOSH by
    /// [`Args::client`]): `wait` within `--timeout`.
    pub fn bosh(&self, client: Client) -> Result<BoshXmppClient, String> {
        let mut config = BoshClientConfig::new(crate::tool::host::domain_of(&self.jid));
        config.wait = 30;
        BoshXmppClient::new(client, config, &mut xmpp_sansio::OsRandom, Instant::now())
            .map_err(|e| e.to_string())
    }

    /// Direct TLS's server name and ALPN protocol: the `wss://` URL's host
    /// and HTTP, or the JID's domain and `xmpp-client` (XEP-0368).
    pub fn direct_tls_target(&self) -> (String, &'static [u8]) {
        match &self.url {
            Some(u) => (u.host.clone(), b"http/1.1"),
            None => (
                crate::tool::host::domain_of(&self.jid).to_owned(),
                b"xmpp-client",
            ),
        }
    }

    /// `--password`, `--token`, the client certificate (SASL EXTERNAL), or
    /// none of them (SASL ANONYMOUS).
    pub fn credentials(&self) -> Credentials {
        match (&self.password, &self.token) {
            (Some(p), _) => Credentials::password(p.as_str()),
            (None, Some(t)) => Credentials::Token(t.as_str().into()),
            (None, None) if self.client_auth.is_some() => Credentials::ClientCertificate,
            (None, None) => Credentials::Anonymous,
        }
    }

    /// The client for these arguments, on a stream whose TLS is `tls`
    /// (`direct`: the TLS the connection already has, XEP-0368).
    pub fn client(&self, tls: TlsMode, direct: Option<TlsInfo>) -> Result<Client, String> {
        let gssapi = self
            .mechanism
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(xmpp_sansio::sasl::gssapi::NAME));
        let credentials = if gssapi {
            Credentials::Host
        } else {
            self.credentials()
        };
        let mut config = ClientConfig::builder(self.jid.clone(), credentials);
        if gssapi {
            register_gssapi(&mut config)?;
        }
        config.tls = tls;
        config.framing = match self.transport {
            TransportArg::Tcp => xmpp_sansio::Framing::Tcp,
            TransportArg::WebSocket => xmpp_sansio::Framing::WebSocket,
            TransportArg::Bosh => xmpp_sansio::Framing::Bosh,
        };
        config.resource = self.resource.clone();
        config.negotiation_timeout = self.timeout;
        if let Some(m) = &self.mechanism {
            config.policy.only = Some(vec![m.clone()]);
            // Cleartext PLAIN only when asked for by name on a stream without TLS.
            config.policy.allow_plain_without_tls = self.tls == TlsArg::None;
        }
        config.policy.enable_anonymous = matches!(config.credentials, Credentials::Anonymous);
        if self.sm {
            config.stream_management = Some(xmpp_sansio::sm::SmSettings::new());
        }
        config.sasl2 = self.sasl2;
        if let Some(id) = &self.user_agent_id {
            let mut ua = xmpp_sansio::sasl2::UserAgent::new(id.clone());
            ua.software = Some("xmpp-sansio client".into());
            config.user_agent = Some(ua);
        }
        config.carbons = self.carbons;
        config.csi = self.csi;
        config.fast.request_token = self.fast_token_file.is_some() && !self.fast_invalidate;
        config.fast.only = self.fast_mechanisms.clone();
        config.fast.send_count = self.fast_token_file.is_some();
        let config = config.build().map_err(|e| format!("configuration: {e}"))?;
        let mut client = Client::new(config, std::time::Instant::now());
        if let Some(path) = &self.fast_token_file {
            if let Some(token) = crate::tool::fast_token_file::load(path)? {
                client.use_fast_token(token, crate::tool::fast_token_file::unix_now());
                if self.fast_invalidate {
                    client.invalidate_fast_token();
                }
            } else if self.fast_invalidate {
                return Err(format!("{}: no FAST token to invalidate", path.display()));
            }
        }
        Ok(match direct {
            Some(info) => client.direct_tls(info),
            None => client,
        })
    }

    /// The rustls configuration for these arguments (`alpn`: for direct
    /// TLS).
    pub fn tls_config(&self, alpn: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
        let trust = self
            .trust
            .as_ref()
            .ok_or("TLS needs --ca-file F or --insecure")?;
        crate::tls::client_config_with_auth(
            trust,
            alpn,
            self.require_ems(),
            self.tls_version,
            self.client_auth.as_ref(),
        )
    }

    /// An explicitly requested tls-exporter (`--channel-binding
    /// tls-exporter`, or an `HT-*-EXPR` of `--fast-mechanism` with the
    /// binding left to auto): TLS 1.2 servers must then negotiate the
    /// extended master secret (RFC 9266 section 3).
    pub fn require_ems(&self) -> bool {
        let fast_expr = self
            .fast_mechanisms
            .iter()
            .flatten()
            .any(|m| m.ends_with("-EXPR"));
        match self.binding {
            BindingChoice::Only(t) => t == ChannelBindingType::TlsExporter,
            BindingChoice::Auto => fast_expr,
            BindingChoice::None => false,
        }
    }
}

/// A UUID as text: 8-4-4-4-12 hexadecimal digits.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `--mechanism GSSAPI`: the Kerberos initiator of the hosts crate, with
/// the ticket-granting ticket of the default cache (`KRB5CCNAME`), taken
/// now so that a missing ticket is reported with the library's reason
/// before anything is sent.
#[cfg(feature = "gssapi")]
fn register_gssapi(config: &mut xmpp_sansio::client::ClientSettings) -> Result<(), String> {
    use crate::gssapi::{Credential, GssContext, Initiator};
    let cred = Credential::default_initiator().map_err(|e| e.to_string())?;
    config
        .mechanisms
        .register(xmpp_sansio::client::ClientMechanismFactory::gssapi(
            move |target| {
                let context = Initiator::new(target.service, target.host, Some(&cred))?;
                Ok(Box::new(context) as Box<dyn GssContext>)
            },
        ));
    Ok(())
}

/// Without the feature there is no Kerberos library to run GSSAPI with.
#[cfg(not(feature = "gssapi"))]
fn register_gssapi(_: &mut xmpp_sansio::client::ClientSettings) -> Result<(), String> {
    Err("--mechanism GSSAPI needs the hosts crate built with --features gssapi".into())
}

/// Opens connections to the server: TCP, then TLS for direct TLS
/// (`--tls direct`, `wss://`, `https://`).
#[derive(Clone)]
pub struct Dialer {
    host: String,
    port: u16,
    timeout: Duration,
    /// The TLS configuration and server name.
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    binding: BindingChoice,
    require_ems: bool,
}

impl Dialer {
    /// A blocking connection, TLS done by `deadline`, and the TLS
    /// session's facts and summary; `notes`: say so on stdout.
    pub fn blocking(
        &self,
        deadline: Instant,
        notes: bool,
    ) -> Result<(BoxTransport, Option<(TlsInfo, String)>), String> {
        let (host, port) = (&self.host, self.port);
        let sock =
            crate::tool::host::connect(host, port, self.timeout).map_err(|e| e.line(host, port))?;
        self.noted(notes, None);
        let Some((config, name)) = &self.tls else {
            return Ok((Box::new(sock), None));
        };
        let up = crate::tls::blocking_connect(
            config.clone(),
            name,
            Box::new(sock),
            &[],
            Some(deadline),
            self.binding,
            self.require_ems,
        )?;
        self.noted(notes, Some(&up.summary));
        Ok((up.stream, Some((up.info, up.summary))))
    }

    /// The same on tokio, TLS done by `deadline`.
    pub async fn tokio(
        &self,
        deadline: Instant,
        notes: bool,
    ) -> Result<(BoxStream, Option<(TlsInfo, String)>), String> {
        let (host, port) = (&self.host, self.port);
        let sock = ::tokio::time::timeout_at(
            deadline.into(),
            ::tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| format!("connect {host}:{port}: timed out"))?
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let _ = sock.set_nodelay(true);
        self.noted(notes, None);
        let Some((config, name)) = &self.tls else {
            return Ok((Box::new(sock), None));
        };
        let handshake = crate::tls::tokio_connect(
            config.clone(),
            name,
            Box::new(sock),
            &[],
            self.binding,
            self.require_ems,
        );
        let up = ::tokio::time::timeout_at(deadline.into(), handshake)
            .await
            .map_err(|_| "tls handshake timed out".to_owned())??;
        self.noted(notes, Some(&up.summary));
        Ok((up.stream, Some((up.info, up.summary))))
    }

    fn noted(&self, notes: bool, tls: Option<&str>) {
        match (notes, tls) {
            (false, _) => {}
            (true, None) => note(&format!("connected to {}:{}", self.host, self.port)),
            (true, Some(s)) => note(&format!("TLS established (direct): {s}")),
        }
    }

    /// Further connections for the blocking BOSH driver (quiet).
    pub fn bosh_blocking(&self) -> crate::bosh::Connect {
        let d = self.clone();
        Arc::new(move |deadline| {
            let deadline = deadline.unwrap_or_else(|| Instant::now() + d.timeout);
            d.blocking(deadline, false).map(|(conn, _)| conn)
        })
    }

    /// Further connections for the tokio BOSH driver (quiet).
    pub fn bosh_tokio(&self) -> crate::bosh::AsyncConnect {
        let d = self.clone();
        Arc::new(move || {
            let d = d.clone();
            Box::pin(async move {
                let deadline = Instant::now() + d.timeout;
                d.tokio(deadline, false).await.map(|(io, _)| io)
            })
        })
    }
}

/// The one-line reason of a failure: the condition first.
pub fn error_line(e: &ClientError) -> String {
    match e {
        ClientError::Refused(PeerRefusal::Authentication { condition, text }) => format!(
            "sasl {}{}",
            condition.map_or("unknown-condition", |c| c.as_str()),
            text.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
        ),
        ClientError::PeerMisbehaved(Misbehavior::Sasl(e))
        | ClientError::Policy(PolicyError::Sasl(e)) => {
            format!("sasl {} (client side: {})", e.condition, e.reason)
        }
        ClientError::PeerStreamError(e) => format!(
            "stream {}{}",
            e.condition,
            e.text
                .as_ref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        ),
        ClientError::PeerMisbehaved(Misbehavior::Read(r)) => {
            format!("stream {} (bad input from the server: {r})", r.condition())
        }
        ClientError::PeerMisbehaved(Misbehavior::Protocol { condition, reason }) => {
            format!("stream {condition} ({reason})")
        }
        ClientError::Refused(PeerRefusal::StartTls) => {
            "tls starttls-failure (the server refused STARTTLS)".into()
        }
        ClientError::Policy(PolicyError::FastRequest(r)) => {
            format!("fast no-token-mechanism ({r})")
        }
        ClientError::Policy(PolicyError::Sasl2NotOffered) => {
            "sasl2 not-offered (the server does not offer SASL2)".into()
        }
        ClientError::Policy(PolicyError::TlsRequired) => {
            "tls required (the server does not offer STARTTLS)".into()
        }
        ClientError::Policy(PolicyError::NoMechanism(o)) => format!(
            "sasl no-acceptable-mechanism (offered: {})",
            if o.is_empty() {
                "none".into()
            } else {
                o.join(" ")
            }
        ),
        ClientError::Refused(PeerRefusal::Bind(e)) => format!("bind {e}"),
        ClientError::Refused(PeerRefusal::Session(e)) => format!("session {e}"),
        ClientError::Timeout(d) => format!("timeout ({d})"),
        ClientError::ClosedByPeer => "closed-by-peer (the server closed the stream)".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, String> {
        let base = [
            "--jid",
            "alice@localhost",
            "--password",
            "secret",
            "--insecure",
        ];
        parse_args(base.iter().chain(extra).map(|s| s.to_string())).map(|a| a.expect("args"))
    }

    #[test]
    fn fast_mechanism_names_the_policy_s_only_list() {
        let a = parse(&[
            "--fast-token-file",
            "t",
            "--fast-mechanism",
            "HT-SHA-256-UNIQ,HT-SHA-256-NONE",
        ])
        .unwrap();
        assert_eq!(
            a.fast_mechanisms.as_deref(),
            Some(&["HT-SHA-256-UNIQ".to_owned(), "HT-SHA-256-NONE".to_owned()][..])
        );
        // No silent RFC 6120 login without a token.
        assert_eq!(a.sasl2, xmpp_sansio::sasl2::Sasl2Policy::Require);
        assert!(!a.require_ems());
        // An -EXPR asked for: the extended master secret on TLS 1.2.
        let a = parse(&[
            "--fast-token-file",
            "t",
            "--fast-mechanism",
            "HT-SHA3-512-EXPR",
        ])
        .unwrap();
        assert!(a.require_ems());
        let a = parse(&["--fast-token-file", "t"]).unwrap();
        assert_eq!(a.fast_mechanisms, None);
        assert_eq!(a.sasl2, xmpp_sansio::sasl2::Sasl2Policy::Auto);
    }

    #[test]
    fn fast_mechanism_refuses_what_cannot_be_honoured() {
        let e = parse(&["--fast-token-file", "t", "--fast-mechanism", "HT-MD5-NONE"]).unwrap_err();
        assert!(e.contains("not a FAST mechanism"), "{e}");
        let e = parse(&["--fast-mechanism", "HT-SHA-256-NONE"]).unwrap_err();
        assert!(e.contains("--fast-token-file"), "{e}");
        let e = parse(&[
            "--fast-token-file",
            "t",
            "--fast-mechanism",
            "HT-SHA-256-NONE",
            "--sasl2",
            "never",
        ])
        .unwrap_err();
        assert!(e.contains("--sasl2 never"), "{e}");
    }
}
