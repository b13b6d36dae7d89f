//! The login clients' command line (`client` and `tokio_client` take the
//! same options), the `ClientConfig` it makes, and the one-line reason of a
//! failure both print.

use std::sync::Arc;
use std::time::Duration;
use xmpp_sansio::client::{PeerRefusal, PolicyError};
use xmpp_sansio::error::Misbehavior;

use xmpp_sansio::client::{Client, ClientConfig, ClientError, Credentials, TlsMode};
use xmpp_sansio::sasl::channel_binding::{ChannelBindingType, TlsVersion};
use xmpp_sansio::TlsInfo;

use crate::tls::{BindingChoice, Trust};
use crate::tool::host::{trust_of, CommonFlags};

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
    --transport T       tcp (default) | websocket (RFC 7395, with --url); bosh: not yet
    --url U             ws://HOST:PORT/xmpp-websocket or wss://... (websocket: instead of
                        --host/--port/--tls: ws:// has no TLS, wss:// is TLS first)
    --jid J             user@domain, or just domain for ANONYMOUS
    --password W        password (SCRAM-*, PLAIN, ...)
    --token T           bearer token (OAUTHBEARER, X-OAUTH2)
                        with neither: SASL ANONYMOUS
    --mechanism M       use only this SASL mechanism (e.g. SCRAM-SHA-1-PLUS, PLAIN);
                        GSSAPI: Kerberos, the ticket of KRB5CCNAME for xmpp@<domain>
                        (a hosts crate built with --features gssapi)
    --client-cert F     PEM certificate (chain) to present in TLS, with --client-key F
    --client-key F      (its PEM key); without --password/--token: SASL EXTERNAL
    --channel-binding B tls-exporter | tls-server-end-point | none | auto (default)
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
    --resource R        the resource to ask for (default: the server chooses)
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
    /// `--url` (with `--transport websocket`).
    pub url: Option<crate::websocket::WsUrl>,
    /// `--client-cert F --client-key F`: presented in TLS (SASL EXTERNAL).
    pub client_auth: Option<crate::tls::ClientAuth>,
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
    let parsed = CommonFlags::parse(it, |flag, value| {
        match flag {
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
                    "bosh" => {
                        return Err(
                            "--transport bosh is not supported yet (tcp or websocket)".into()
                        )
                    }
                    _ => return Err(format!("unknown --transport {v:?} (tcp or websocket)")),
                };
            }
            "--url" => url = Some(crate::websocket::WsUrl::parse(&value()?)?),
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
    };
    match (a.transport, &a.url) {
        (TransportArg::WebSocket, None) => {
            return Err("--transport websocket needs --url ws://... or wss://...".into())
        }
        (TransportArg::Tcp, Some(_)) => return Err("--url is for --transport websocket".into()),
        (TransportArg::WebSocket, Some(u)) => {
            if tls_given || a.host.is_some() || a.port.is_some() {
                return Err(
                    "--transport websocket: the --url says where and whether TLS (wss://); \
                     no --tls, --host or --port"
                        .into(),
                );
            }
            // No STARTTLS over a WebSocket: TLS is the wss:// one, set up
            // before the stream (as direct TLS).
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
        if self.transport == TransportArg::WebSocket {
            config.framing = xmpp_sansio::Framing::WebSocket;
        }
        config.resource = self.resource.clone();
        config.negotiation_timeout = self.timeout;
        if let Some(m) = &self.mechanism {
            config.policy.only = Some(vec![m.clone()]);
            // Cleartext PLAIN only when asked for by name on a stream without TLS.
            config.policy.allow_plain_without_tls = self.tls == TlsArg::None;
        }
        config.policy.enable_anonymous = matches!(config.credentials, Credentials::Anonymous);
        let config = config.build().map_err(|e| format!("configuration: {e}"))?;
        let client = Client::new(config, std::time::Instant::now());
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

    /// An explicitly requested tls-exporter: TLS 1.2 servers must then
    /// negotiate the extended master secret (RFC 9266 section 3).
    pub fn require_ems(&self) -> bool {
        self.binding == BindingChoice::Only(ChannelBindingType::TlsExporter)
    }
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
