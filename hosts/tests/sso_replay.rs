//! sso-proxy's protocol machines against the wire transcripts of real
//! runs (`tests/fixtures/sso/`, captured by interop/sso_tests.sh with
//! `SSO_PROXY_TRANSCRIPT`; see the README there): Chromium with Strophe.js
//! on the browser side, Prosody 13 with Cyrus GSSAPI (and the example
//! server) on the upstream side, alice's delegated Kerberos ticket in
//! between. No Kerberos here: the GSS-API context is [`Recorded`], which
//! gives the recorded context tokens and checks that the machine hands it
//! exactly the server's recorded tokens.
//!
//! Every byte the machine sends upstream and every body or message it
//! answers the browser must equal the recording, in order, each no later
//! than it was recorded: the feature rewriting, the EXTERNAL-to-GSSAPI
//! switch and the held restart are all on the wire. The other tests cut a
//! transcript where the browser authenticates and change one thing: the
//! authorization identity, the credential, the user.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use xmpp_sansio::bosh::{BoshManagerConfig, Reply};
use xmpp_sansio::sasl::gssapi::{GssContext, GssError, GssStep};
use xmpp_sansio::RandomSource;
use xmpp_sansio_hosts::sso::bosh::{Access, BoshEvent, SsoBosh};
use xmpp_sansio_hosts::sso::websocket::SsoWebSocket;
use xmpp_sansio_hosts::sso::{parse_realm_map, SsoConfig, SsoEvent};

const ALICE: &str = "alice@EXAMPLE.TEST";

/// One transcript line: direction and bytes.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    /// The browser's request body or message.
    BrowserIn(Vec<u8>),
    /// The proxy's answer body or message to the browser.
    BrowserOut(Vec<u8>),
    /// From the upstream server (plaintext).
    UpIn(Vec<u8>),
    /// To the upstream server (plaintext).
    UpOut(Vec<u8>),
    /// The upstream TLS handshake finished.
    Tls,
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(c) => out.push(c),
            None => {}
        }
    }
    out.into_bytes()
}

fn transcript(name: &str) -> Vec<Line> {
    let path = format!("{}/tests/fixtures/sso/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (dir, rest) = l.split_once(' ').unwrap_or((l, ""));
            match dir {
                "B>" => Line::BrowserIn(unescape(rest)),
                "B<" => Line::BrowserOut(unescape(rest)),
                "U<" => Line::UpIn(unescape(rest)),
                "U>" => Line::UpOut(unescape(rest)),
                "TLS" => Line::Tls,
                other => panic!("{path}: unknown direction {other:?}"),
            }
        })
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The base64 payload of the first `<name ...>payload</name>` in `s`.
fn payload(s: &str, name: &str) -> Option<Vec<u8>> {
    let start = s.find(&format!("<{name} "))?;
    let rest = &s[start..];
    let open_end = rest.find('>')?;
    if rest[..open_end].ends_with('/') {
        return Some(Vec::new());
    }
    let close = rest.find(&format!("</{name}>"))?;
    let b64 = rest[open_end + 1..close].trim();
    Some(if b64 == "=" {
        Vec::new()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64")
    })
}

/// The Kerberos tokens of a recorded RFC 4752 exchange.
#[derive(Debug, Clone)]
struct Tokens {
    ap_req: Vec<u8>,
    ap_rep: Vec<u8>,
    offer: Vec<u8>,
    answer: Vec<u8>,
}

fn tokens(lines: &[Line]) -> Tokens {
    let ups: Vec<String> = lines
        .iter()
        .filter_map(|l| match l {
            Line::UpOut(b) => Some(text(b)),
            _ => None,
        })
        .collect();
    let downs: Vec<String> = lines
        .iter()
        .filter_map(|l| match l {
            Line::UpIn(b) => Some(text(b)),
            _ => None,
        })
        .collect();
    let ap_req = ups.iter().find_map(|u| payload(u, "auth")).expect("auth");
    let responses: Vec<Vec<u8>> = ups.iter().filter_map(|u| payload(u, "response")).collect();
    let challenges: Vec<Vec<u8>> = downs
        .iter()
        .filter_map(|d| payload(d, "challenge"))
        .collect();
    assert_eq!(challenges.len(), 2, "AP-REP and the layer offer");
    assert_eq!(
        responses.len(),
        2,
        "the empty response and the layer answer"
    );
    assert!(responses[0].is_empty());
    Tokens {
        ap_req,
        ap_rep: challenges[0].clone(),
        offer: challenges[1].clone(),
        answer: responses[1].clone(),
    }
}

/// The GSS-API initiator of a recording: the recorded tokens out, and
/// every input checked against the server's recorded tokens. `wrapped`
/// gets what the machine asked to wrap (the layer answer).
struct Recorded {
    t: Tokens,
    step: usize,
    wrapped: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl GssContext for Recorded {
    fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        self.step += 1;
        match (self.step, token) {
            (1, None) => Ok(GssStep::Continue(self.t.ap_req.clone())),
            (2, Some(t)) if t == self.t.ap_rep => Ok(GssStep::Complete(None)),
            _ => Err(GssError::new("not the recorded exchange")),
        }
    }
    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        self.wrapped.lock().unwrap().push(message.to_vec());
        Ok(self.t.answer.clone())
    }
    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        if token == self.t.offer {
            // Cyrus offers "no security layer" and nothing else.
            Ok(vec![0x01, 0, 0, 0])
        } else {
            Err(GssError::new("not the recorded offer"))
        }
    }
    fn peer_name(&self) -> Option<String> {
        None
    }
}

/// Session ids from a counter.
struct Counter(u8);

impl RandomSource for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

fn config() -> Arc<SsoConfig> {
    let mut c = SsoConfig::new("xmpp.example.test");
    c.realm_map
        .push(parse_realm_map("EXAMPLE.TEST=xmpp.example.test").unwrap());
    Arc::new(c)
}

fn rules() -> BoshManagerConfig {
    BoshManagerConfig {
        max_sessions: 256,
        ..BoshManagerConfig::default()
    }
}

/// The `sid='...'` of a body.
fn sid_in(body: &str) -> Option<String> {
    let i = body.find("sid='").or_else(|| body.find("sid=\""))? + 5;
    let end = body[i..].find(['\'', '"'])?;
    Some(body[i..i + end].to_owned())
}

/// What a replay gathered.
#[derive(Default)]
struct Outcome {
    events: Vec<SsoEvent>,
    wrapped: Vec<Vec<u8>>,
}

/// Replays the BOSH transcript `lines` (a whole one, or its start)
/// against an [`SsoBosh`] whose browser is `principal`, with a
/// [`Recorded`] credential of `tokens` (none: no delegated credential),
/// checking every output against the recording; `edit` may change a
/// browser body before it is handled. What the machine produced beyond
/// the recording (or instead of it, at the first difference) is left for
/// the caller: the browser's bodies and the upstream bytes.
fn replay_bosh(
    lines: &[Line],
    tokens: Option<Tokens>,
    principal: Option<&str>,
    edit: impl Fn(&[u8]) -> Vec<u8>,
) -> (Outcome, VecDeque<Vec<u8>>, Vec<u8>) {
    let wrapped = Arc::new(Mutex::new(Vec::new()));
    let mut credential: Option<Box<dyn GssContext>> = tokens.map(|t| {
        Box::new(Recorded {
            t,
            step: 0,
            wrapped: wrapped.clone(),
        }) as Box<dyn GssContext>
    });
    let mut bosh = SsoBosh::new(config(), rules(), Box::new(Counter(0)));
    let mut now = Instant::now();
    let (mut recorded_sid, mut live_sid): (Option<String>, Option<String>) = (None, None);
    let mut to_browser: VecDeque<Vec<u8>> = VecDeque::new();
    let mut upstream: Vec<u8> = Vec::new();
    let mut out = Outcome::default();
    let drain = |bosh: &mut SsoBosh,
                 live: &Option<String>,
                 to_browser: &mut VecDeque<Vec<u8>>,
                 upstream: &mut Vec<u8>,
                 out: &mut Outcome| {
        while let Some((_, body)) = bosh.poll_response() {
            to_browser.push_back(body);
        }
        if let Some(sid) = live {
            bosh.poll_upstream(sid, upstream);
        }
        while let Some(ev) = bosh.poll_event() {
            if let BoshEvent::Session { event, .. } = ev {
                out.events.push(event);
            }
        }
    };
    for line in lines {
        now += Duration::from_millis(50);
        match line {
            Line::BrowserIn(body) => {
                let mut body = text(&edit(body));
                if let (Some(r), Some(l)) = (&recorded_sid, &live_sid) {
                    body = body.replace(r.as_str(), l);
                }
                assert_eq!(
                    bosh.access(body.as_bytes(), principal, principal.is_none()),
                    Access::Pass
                );
                let reply = bosh.handle_request(now, body.as_bytes(), principal, credential.take());
                if live_sid.is_none() {
                    live_sid = bosh.created_last().map(str::to_owned);
                }
                match reply {
                    Reply::Immediate(b) | Reply::Refused { body: b, .. } => to_browser.push_back(b),
                    Reply::Held(_) => {}
                }
                drain(
                    &mut bosh,
                    &live_sid,
                    &mut to_browser,
                    &mut upstream,
                    &mut out,
                );
            }
            Line::UpIn(data) => {
                bosh.feed_upstream(now, live_sid.as_deref().unwrap(), data);
                drain(
                    &mut bosh,
                    &live_sid,
                    &mut to_browser,
                    &mut upstream,
                    &mut out,
                );
            }
            Line::Tls => {
                bosh.tls_established(now, live_sid.as_deref().unwrap());
                drain(
                    &mut bosh,
                    &live_sid,
                    &mut to_browser,
                    &mut upstream,
                    &mut out,
                );
            }
            Line::BrowserOut(expected) => {
                let expected = text(expected);
                if recorded_sid.is_none() {
                    recorded_sid = sid_in(&expected);
                }
                let Some(got) = to_browser.pop_front() else {
                    // Stopped early (an edited run): the rest is not ours.
                    return (finish(out, &wrapped), to_browser, upstream);
                };
                let mut got = text(&got);
                if let (Some(r), Some(l)) = (&recorded_sid, &live_sid) {
                    got = got.replace(l.as_str(), r);
                }
                if got != expected {
                    return (
                        finish(out, &wrapped),
                        VecDeque::from([got.into_bytes()]),
                        upstream,
                    );
                }
            }
            Line::UpOut(expected) => {
                if upstream.len() < expected.len()
                    || &upstream[..expected.len()] != expected.as_slice()
                {
                    return (finish(out, &wrapped), to_browser, upstream);
                }
                upstream.drain(..expected.len());
            }
        }
    }
    (finish(out, &wrapped), to_browser, upstream)
}

fn finish(mut out: Outcome, wrapped: &Arc<Mutex<Vec<Vec<u8>>>>) -> Outcome {
    out.wrapped = wrapped.lock().unwrap().clone();
    out
}

const BOSH_PROSODY: &str = "bosh_prosody_alice.txt";
const WS_PROSODY: &str = "ws_prosody_alice.txt";
const BOSH_SERVER: &str = "bosh_server_alice.txt";

/// The layer answer: no layer, maximum buffer 0, alice's bare JID (what
/// Strophe.js asked for with EXTERNAL).
fn layer_answer() -> Vec<u8> {
    let mut m = vec![1, 0, 0, 0];
    m.extend_from_slice(b"alice@xmpp.example.test");
    m
}

fn check_full_bosh(name: &str) {
    let lines = transcript(name);
    let t = tokens(&lines);
    let (out, left_b, left_u) = replay_bosh(&lines, Some(t), Some(ALICE), |b| b.to_vec());
    assert!(
        left_b.is_empty(),
        "{name}: the browser got {:?} where the recording differs",
        left_b.iter().map(|b| text(b)).collect::<Vec<_>>()
    );
    assert!(
        left_u.is_empty(),
        "{name}: upstream got {:?} where the recording differs",
        text(&left_u)
    );
    assert_eq!(out.wrapped, [layer_answer()], "{name}");
    assert!(
        out.events.contains(&SsoEvent::LoggedIn {
            principal: ALICE.into(),
            jid: Some("alice@xmpp.example.test".into())
        }),
        "{name}: {:?}",
        out.events
    );
}

#[test]
fn bosh_with_prosody_replays_byte_for_byte() {
    check_full_bosh(BOSH_PROSODY);
}

#[test]
fn bosh_with_the_example_server_replays_byte_for_byte() {
    check_full_bosh(BOSH_SERVER);
}

#[test]
fn the_recorded_chain_is_the_feature() {
    // What the byte-for-byte replay holds the machine to, spelled out.
    let lines = transcript(BOSH_PROSODY);
    let browser: Vec<String> = lines
        .iter()
        .filter_map(|l| match l {
            Line::BrowserOut(b) => Some(text(b)),
            _ => None,
        })
        .collect();
    let up: Vec<String> = lines
        .iter()
        .filter_map(|l| match l {
            Line::UpOut(b) => Some(text(b)),
            Line::UpIn(b) => Some(text(b)),
            _ => None,
        })
        .collect();
    // Prosody offers GSSAPI; the browser was offered EXTERNAL alone.
    assert!(up
        .iter()
        .any(|u| u.contains("<mechanism>GSSAPI</mechanism>")));
    assert!(browser[0].contains("<mechanism>EXTERNAL</mechanism>"));
    assert!(!browser.iter().any(|b| b.contains("GSSAPI")));
    // The browser's EXTERNAL never went upstream; GSSAPI did.
    assert!(!up.iter().any(|u| u.contains("EXTERNAL")));
    assert!(up.iter().any(|u| u.contains("mechanism='GSSAPI'")));
    // The recorded layer answer carries the authzid in the clear (a
    // wrap token without confidentiality).
    let t = tokens(&lines);
    let answer = text(&t.answer);
    assert!(answer.contains("alice@xmpp.example.test"), "{answer:?}");
}

/// The index of the browser line carrying `<auth`.
fn auth_line(lines: &[Line]) -> usize {
    lines
        .iter()
        .position(|l| matches!(l, Line::BrowserIn(b) if text(b).contains("<auth")))
        .expect("the browser's auth")
}

/// Replays up to and including the browser's `<auth/>` (edited), then
/// returns what the browser got after it and what went upstream after it.
fn up_to_auth(
    name: &str,
    principal: Option<&str>,
    with_credential: bool,
    edit: impl Fn(&[u8]) -> Vec<u8>,
) -> (Outcome, Vec<String>, String) {
    let lines = transcript(name);
    let cut = auth_line(&lines) + 1;
    let t = with_credential.then(|| tokens(&lines));
    let (out, left_b, left_u) = replay_bosh(&lines[..cut], t, principal, edit);
    (out, left_b.iter().map(|b| text(b)).collect(), text(&left_u))
}

/// A browser body with its `<auth/>`'s payload replaced by `payload`.
fn with_auth_payload(body: &[u8], payload: &str) -> Vec<u8> {
    let t = text(body);
    let (Some(open), Some(close)) = (t.find("<auth"), t.find("</auth>")) else {
        return body.to_vec();
    };
    let gt = open + t[open..].find('>').unwrap();
    format!("{}{payload}{}", &t[..=gt], &t[close..]).into_bytes()
}

/// Replays up to the browser's `<auth/>` (with `payload` for its
/// authzid, when given) and checks it is refused with `condition`, for
/// `reason`, with nothing sent upstream.
fn refused(payload: Option<&str>, with_credential: bool, condition: &str, reason: &str) {
    let (out, browser, up) =
        up_to_auth(
            BOSH_PROSODY,
            Some(ALICE),
            with_credential,
            |b| match payload {
                Some(p) => with_auth_payload(b, p),
                None => b.to_vec(),
            },
        );
    assert_eq!(browser.len(), 1, "{browser:?}");
    let failure =
        format!("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{condition}/></failure>");
    assert!(browser[0].contains(&failure), "{browser:?}");
    // Nothing upstream: neither the browser's EXTERNAL nor any other
    // credential.
    assert!(up.is_empty(), "{up:?}");
    assert!(
        out.events.iter().any(
            |e| matches!(e, SsoEvent::LoginRefused { reason: r, .. } if r.starts_with(condition) && r.contains(reason))
        ),
        "{:?}",
        out.events
    );
}

#[test]
fn another_authzid_is_invalid_authzid_and_nothing_goes_upstream() {
    let bob = base64::engine::general_purpose::STANDARD.encode("bob@xmpp.example.test");
    refused(
        Some(&bob),
        true,
        "invalid-authzid",
        "another authorization identity",
    );
}

#[test]
fn without_a_delegated_credential_the_answer_is_not_authorized() {
    refused(None, false, "not-authorized", "no delegated credential");
}

#[test]
fn the_bare_jid_or_no_authzid_is_accepted() {
    // The recording carries alice's bare JID; `=` (none) goes through too.
    let (_, browser, up) = up_to_auth(BOSH_PROSODY, Some(ALICE), true, |b| {
        with_auth_payload(b, "=")
    });
    assert!(browser.is_empty(), "{browser:?}");
    assert!(
        up.starts_with("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='GSSAPI'>"),
        "{up:?}"
    );
}

#[test]
fn a_user_without_sso_sees_the_upstream_features_unchanged() {
    let lines = transcript(BOSH_PROSODY);
    let first_out = lines
        .iter()
        .position(|l| matches!(l, Line::BrowserOut(_)))
        .unwrap();
    let (_, browser, _) = {
        let (out, b, u) = replay_bosh(&lines[..first_out], None, None, |b| b.to_vec());
        (out, b.iter().map(|b| text(b)).collect::<Vec<_>>(), u)
    };
    assert_eq!(browser.len(), 1, "{browser:?}");
    assert!(
        browser[0].contains("<mechanism>GSSAPI</mechanism>"),
        "{browser:?}"
    );
    assert!(!browser[0].contains("EXTERNAL"), "{browser:?}");
}

#[test]
fn the_browser_restart_is_held_until_the_upstream_features() {
    let lines = transcript(BOSH_PROSODY);
    let restart = lines
        .iter()
        .position(|l| matches!(l, Line::BrowserIn(b) if text(b).contains("restart=\"true\"")))
        .expect("the restart request");
    // Up to the restart request: nothing for the browser yet (held), the
    // upstream got the new header.
    let t = tokens(&lines);
    let (_, browser, up) = replay_bosh(&lines[..=restart], Some(t.clone()), Some(ALICE), |b| {
        b.to_vec()
    });
    assert!(
        browser.is_empty(),
        "answered before the upstream's features: {browser:?}"
    );
    assert!(
        text(&up).starts_with("<?xml version='1.0'?><stream:stream to='xmpp.example.test'"),
        "{:?}",
        text(&up)
    );
    // With the upstream's new header and features: the held answer
    // carries them (bind).
    let next_up = restart
        + lines[restart..]
            .iter()
            .position(|l| matches!(l, Line::UpIn(b) if text(b).contains("stream:features")))
            .unwrap();
    let (_, browser, _) = replay_bosh(&lines[..=next_up], Some(t), Some(ALICE), |b| b.to_vec());
    assert_eq!(browser.len(), 1, "{browser:?}");
    assert!(
        text(&browser[0]).contains("urn:ietf:params:xml:ns:xmpp-bind"),
        "{:?}",
        text(&browser[0])
    );
}

/// Replays a WebSocket transcript.
fn replay_ws(name: &str) -> (Outcome, Vec<String>, String) {
    let lines = transcript(name);
    let t = tokens(&lines);
    let wrapped = Arc::new(Mutex::new(Vec::new()));
    let credential = Box::new(Recorded {
        t,
        step: 0,
        wrapped: wrapped.clone(),
    });
    let config = config();
    let user = config.user(ALICE);
    let mut ws = SsoWebSocket::new(config, Some(user), Some(credential));
    let mut now = Instant::now();
    let mut to_browser: VecDeque<Vec<u8>> = VecDeque::new();
    let mut upstream = Vec::new();
    let mut out = Outcome::default();
    for line in &lines {
        now += Duration::from_millis(50);
        match line {
            Line::BrowserIn(m) => ws.feed_message(now, m),
            Line::UpIn(d) => ws.feed_upstream(d),
            Line::Tls => ws.tls_established(),
            Line::BrowserOut(expected) => {
                while let Some(m) = ws.poll_message() {
                    to_browser.push_back(m);
                }
                let got = to_browser.pop_front().map(|g| text(&g));
                assert_eq!(got.as_deref(), Some(text(expected).as_str()), "{name}");
            }
            Line::UpOut(expected) => {
                ws.poll_upstream(&mut upstream);
                assert!(
                    upstream.starts_with(expected),
                    "{name}: upstream got {:?}, recorded {:?}",
                    text(&upstream),
                    text(expected)
                );
                upstream.drain(..expected.len());
            }
        }
        while let Some(e) = ws.poll_event() {
            out.events.push(e);
        }
    }
    while let Some(m) = ws.poll_message() {
        to_browser.push_back(m);
    }
    ws.poll_upstream(&mut upstream);
    out.wrapped = wrapped.lock().unwrap().clone();
    (
        out,
        to_browser.iter().map(|b| text(b)).collect(),
        text(&upstream),
    )
}

#[test]
fn websocket_with_prosody_replays_byte_for_byte() {
    let (out, browser, up) = replay_ws(WS_PROSODY);
    assert!(browser.is_empty(), "{browser:?}");
    assert!(up.is_empty(), "{up:?}");
    assert_eq!(out.wrapped, [layer_answer()]);
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, SsoEvent::LoggedIn { .. })));
}
