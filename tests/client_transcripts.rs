//! The client against real servers' lines: seeds 000 and 004 and the
//! Prosody captures. Fed the server's bytes, the client must send the
//! client's lines (equal as XML; the IQ ids it picks itself aside) and
//! reach the same outcome.

mod support;

use std::time::{Duration, Instant};
use xmpp_sansio::client::{ClientSettings, PeerRefusal, PolicyError};
use xmpp_sansio::error::Deadline;

use minidom::Element;
use std::sync::{Arc, Mutex};
use support::test_gss::{cfx_payload, ReplayGss};
use support::{text_of, Dir, Entry, Transcript};
use xmpp_sansio::client::ClientMechanismFactory;
use xmpp_sansio::client::{Client, ClientError, ClientEvent, Credentials, TlsInfo, TlsMode};
use xmpp_sansio::ns;
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::gssapi::{self, GssapiClient};
use xmpp_sansio::sasl::policy::{Refusal, RefusedMechanism};
use xmpp_sansio::sasl::{ChannelBindingUse, ExchangeSecurity, SaslCondition};
use xmpp_sansio::xml::{StreamEvent, StreamReader};
use xmpp_sansio::DeterministicRandom;

/// What a replay ended with.
#[derive(Debug)]
struct Outcome {
    events: Vec<ClientEvent>,
    sent: Vec<u8>,
    expected: Vec<u8>,
}

impl Outcome {
    fn ready_jid(&self) -> Option<&str> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Ready { jid } => Some(jid.as_str()),
            _ => None,
        })
    }

    fn error(&self) -> Option<&ClientError> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Error(err) => Some(err),
            _ => None,
        })
    }
}

/// Reads a byte stream of one side into per-stream lists of
/// (header `to`, elements); restarts at each new header.
fn streams(bytes: &[u8]) -> Vec<(Option<String>, Vec<Element>, bool)> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut starts: Vec<usize> = Vec::new();
    for (at, _) in text.match_indices("<stream:stream") {
        // An XML declaration right before the header belongs to it.
        let before = text[..at].trim_end();
        let start = match before.ends_with("?>") {
            true => before.rfind("<?xml").unwrap_or(at),
            false => at,
        };
        starts.push(start);
    }
    starts.dedup();
    starts.push(text.len());
    let mut out = Vec::new();
    for w in starts.windows(2) {
        let mut reader = StreamReader::default();
        let mut rest = &text.as_bytes()[w[0]..w[1]];
        let mut to = None;
        let mut els = Vec::new();
        let mut closed = false;
        while let Some(ev) = reader.read(&mut rest).expect("well-formed side") {
            match ev {
                StreamEvent::Header(h) => to = h.to,
                StreamEvent::Element(e) => els.push(e),
                StreamEvent::Closed => closed = true,
                StreamEvent::StreamError(_) => {}
            }
        }
        out.push((to, els, closed));
    }
    out
}

/// Drops whitespace-only text nodes (pretty-printing) recursively.
fn normalize(el: &Element) -> Element {
    support::without_blank_text(el, false)
}

/// Compares as XML (formatting whitespace aside); an `iq`'s id is the
/// client's own choice.
fn same_element(a: &Element, b: &Element) -> bool {
    let (a, b) = (&normalize(a), &normalize(b));
    if a.name() == "iq" && b.name() == "iq" {
        let strip = |e: &Element| {
            let mut e = e.clone();
            e.attrs_mut().remove(rxml::Namespace::none(), "id");
            e
        };
        return strip(a) == strip(b);
    }
    a == b
}

fn assert_same_client_lines(name: &str, o: &Outcome) {
    let ours = streams(&o.sent);
    let theirs = streams(&o.expected);
    assert_eq!(ours.len(), theirs.len(), "{name}: number of streams opened");
    for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a.0, b.0, "{name}: stream {k} header `to`");
        assert_eq!(
            a.1.len(),
            b.1.len(),
            "{name}: stream {k} elements: ours {:#?} theirs {:#?}",
            a.1,
            b.1
        );
        for (x, y) in a.1.iter().zip(&b.1) {
            assert!(
                same_element(x, y),
                "{name}: stream {k}:\nours   {x:?}\ntheirs {y:?}"
            );
        }
        assert_eq!(a.2, b.2, "{name}: stream {k} closed");
    }
}

fn b64(s: &str) -> Vec<u8> {
    xmpp_sansio::sasl::decode_payload(s)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The SCRAM client nonce and channel binding the capturing client used,
/// read back from its own messages.
fn capture_secrets(t: &Transcript) -> (Option<String>, Option<ChannelBinding>) {
    let c = String::from_utf8(t.bytes_of(Dir::C)).unwrap();
    let mut nonce = None;
    let mut binding = None;
    // RFC 6120's <auth/>, or SASL2's <initial-response/>.
    let initial = text_of("auth", &c).or_else(|| text_of("initial-response", &c));
    if let Some(first) = initial.filter(|s| !s.is_empty()) {
        let first = String::from_utf8(b64(first)).unwrap_or_default();
        if !first.contains(",r=") {
            return (None, None);
        }
        nonce = first
            .split(',')
            .find_map(|kv| kv.strip_prefix("r="))
            .map(str::to_owned);
        if let (Some(rest), Some(final_)) = (first.strip_prefix("p="), text_of("response", &c)) {
            let kind = rest.split(',').next().unwrap();
            let final_ = String::from_utf8(b64(final_)).unwrap();
            let cbind = b64(final_
                .split(',')
                .find_map(|kv| kv.strip_prefix("c="))
                .unwrap());
            let gs2_len = first.find(",n=").unwrap() + 1;
            binding = Some(ChannelBinding::new(
                ChannelBindingType::from_name(kind).unwrap(),
                cbind[gs2_len..].to_vec(),
            ));
        }
    }
    (nonce, binding)
}

fn tls_version(t: &Transcript) -> TlsVersion {
    if t.notes().iter().any(|n| n.contains("TLSv1.2")) {
        TlsVersion::Tls12
    } else {
        TlsVersion::Tls13
    }
}

/// Replays `t` against a client built from `config`: server lines are
/// fed; once ready, the stanzas the capturing client sent are sent
/// through the API, and its close is a `close()`.
fn replay(t: &Transcript, config: ClientSettings) -> Outcome {
    replay_chunked(t, config, &[])
}

/// [`replay`], with each server read split at `cuts` (taken modulo its
/// length).
fn replay_chunked(t: &Transcript, config: ClientSettings, cuts: &[usize]) -> Outcome {
    replay_prepared(t, config, cuts, &mut |_| {})
}

/// [`replay_chunked`], with `prepare` given the client before any byte
/// (a FAST token to log in with).
fn replay_prepared(
    t: &Transcript,
    mut config: ClientSettings,
    cuts: &[usize],
    prepare: &mut dyn FnMut(&mut Client),
) -> Outcome {
    let (nonce, binding) = capture_secrets(t);
    config.replay_nonce = nonce;
    let info = TlsInfo {
        version: tls_version(t),
        channel_bindings: binding.into_iter().collect(),
    };
    let direct = config.tls == TlsMode::Direct;
    let now = Instant::now();
    let mut client = Client::with_random(
        config.build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    if direct {
        client = client.direct_tls(info.clone());
    }
    prepare(&mut client);
    let mut out = Outcome {
        events: Vec::new(),
        sent: Vec::new(),
        expected: Vec::new(),
    };
    // The capturing client's bind id, replaced by ours in the server's
    // reply ("ids aside").
    let their_bind_id = String::from_utf8(t.bytes_of(Dir::C))
        .unwrap()
        .split("<iq ")
        .skip(1)
        .find(|s| s.contains("xmpp-bind"))
        .and_then(|s| s.split("id='").nth(1))
        .and_then(|s| s.split('\'').next())
        .map(str::to_owned);
    let drain = |client: &mut Client, out: &mut Outcome| loop {
        client.poll_transmit(&mut out.sent);
        let Some(ev) = client.poll_event() else { break };
        if let ClientEvent::StartTls { pending } = &ev {
            assert!(pending.is_empty());
            client.tls_established(now, info.clone()).unwrap();
        }
        out.events.push(ev);
    };
    drain(&mut client, &mut out);
    for entry in &t.entries {
        match entry {
            Entry::Data(Dir::C, bytes) => {
                out.expected.extend_from_slice(bytes);
                if client.is_ready() {
                    let line = String::from_utf8(bytes.clone()).unwrap();
                    if line.starts_with("</stream:stream>") {
                        client.close(now);
                    } else if !line.contains("xmpp-bind") && !line.contains("xmpp-session") {
                        for el in support::elements_of(&line) {
                            client.send(&el).unwrap();
                        }
                    }
                }
            }
            Entry::Data(Dir::S, _) if client.is_closed() => {}
            Entry::Data(Dir::S, bytes) => {
                let mut s = String::from_utf8(bytes.clone()).unwrap();
                if let Some(id) = &their_bind_id {
                    s = s.replace(&format!("id='{id}'"), "id='bind_1'");
                }
                let bytes = s.as_bytes();
                let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                points.push(bytes.len());
                points.sort_unstable();
                let mut start = 0;
                for end in points {
                    if client.is_closed() {
                        break;
                    }
                    client.feed(now, &bytes[start..end]).unwrap();
                    drain(&mut client, &mut out);
                    start = end;
                }
            }
            Entry::Note(_) => {}
        }
        drain(&mut client, &mut out);
    }
    out
}

fn config(jid: &str, creds: Credentials) -> ClientSettings {
    let mut c = ClientSettings::new(jid, creds);
    // The captures are RFC 6120 logins (Prosody offered SASL2 too).
    c.sasl2 = xmpp_sansio::sasl2::Sasl2Policy::Never;
    c.resource = Some("raw".into());
    c
}

fn only(c: &mut ClientSettings, m: &str) {
    c.policy.only = Some(vec![m.into()]);
}

// ---------------------------------------------------------------------

#[test]
fn prosody_scram_logins_replay_exactly() {
    for (file, jid) in [
        ("prosody13_scram_sha1_bind.txt", "alice@localhost"),
        (
            "prosody13_scram_sha1_plus_endp_tls13.txt",
            "alice@localhost",
        ),
        (
            "prosody13_sha256_scram_sha256.txt",
            "alice@sha256.localhost",
        ),
        (
            "prosody13_sha256_scram_sha256_plus_endp.txt",
            "alice@sha256.localhost",
        ),
        (
            "prosody13_tls12_scram_sha1_plus.txt",
            "alice@tls12.localhost",
        ),
        ("prosody_scram_sha1_bind.txt", "alice@localhost"),
        ("prosody_tls12_scram_sha1_plus.txt", "alice@tls12.localhost"),
    ] {
        let t = Transcript::load(&format!("prosody/{file}"));
        let o = replay(&t, config(jid, Credentials::password("secret")));
        assert_eq!(o.error(), None, "{file}: {:?}", o.events);
        let want = format!("{jid}/raw");
        assert_eq!(o.ready_jid(), Some(want.as_str()), "{file}");
        assert_same_client_lines(file, &o);
        // The Authenticated event says what the capture shows: the binding
        // the capturing client used, and XEP-0474 exactly when Prosody's
        // first challenge carried h= (mod_sasl_ssdp).
        let (_, binding) = capture_secrets(&t);
        let s = String::from_utf8(t.bytes_of(Dir::S)).unwrap();
        let server_first = String::from_utf8(b64(text_of("challenge", &s).unwrap())).unwrap();
        let sent_h = server_first.split(',').any(|kv| kv.starts_with("h="));
        let security = o.events.iter().find_map(|e| match e {
            ClientEvent::Authenticated { security, .. } => Some(*security),
            _ => None,
        });
        let security = security.unwrap_or_else(|| panic!("{file}: not authenticated"));
        assert_eq!(
            security.channel_binding,
            Some(match binding {
                Some(b) => ChannelBindingUse::Bound(b.kind),
                None => ChannelBindingUse::NotSupported,
            }),
            "{file}"
        );
        assert_eq!(security.downgrade_protection, sent_h, "{file}");
        // Where the capturing client sent itself a message, the server's
        // echo arrived as a stanza.
        let sent_message = String::from_utf8_lossy(&t.bytes_of(Dir::C)).contains("<message");
        let got_message = o
            .events
            .iter()
            .any(|e| matches!(e, ClientEvent::Stanza(s) if s.name() == "message"));
        assert_eq!(got_message, sent_message, "{file}");
        assert_eq!(o.events.last(), Some(&ClientEvent::Closed), "{file}");
    }
}

/// The value of the first `attr='...'` (`attr` given with `='`) in `xml`.
fn attr_after<'a>(xml: &'a str, attr: &str) -> &'a str {
    let rest = xml.split(attr).nth(1).expect("the attribute");
    rest.split('\'').next().expect("quoted")
}

/// The configuration of the capturing client of a SASL2 capture: SASL2
/// only, `mechanism`, its user agent (the id it sent, `xmpp_raw.py` on
/// `interop`), the resource `raw` as Bind 2's tag.
fn sasl2_capture_config(t: &Transcript, password: &str, mechanism: &str) -> ClientSettings {
    use xmpp_sansio::sasl2::{Sasl2Policy, UserAgent};
    let c = String::from_utf8(t.bytes_of(Dir::C)).unwrap();
    let mut config = config("alice@localhost", Credentials::password(password));
    config.sasl2 = Sasl2Policy::Require;
    only(&mut config, mechanism);
    let mut ua = UserAgent::new(attr_after(&c, "<user-agent id='"));
    ua.software = Some("xmpp_raw.py".into());
    ua.device = Some("interop".into());
    config.user_agent = Some(ua);
    config
}

/// Prosody 13's SASL2 logins (mod_sasl2, mod_sasl2_bind2, mod_sasl2_sm):
/// `<authenticate/>` with the user agent and Bind 2 (and stream
/// management's `<enable/>` inside it), the challenge and response, the
/// success with the bound JID and what was enabled, then the features
/// without a restart; a message to self; a wrong password. The client's
/// lines are the capturing client's, element for element. The FAST
/// capture's first connection is a SCRAM-SHA-1-PLUS login bound to
/// tls-server-end-point (its `<request-token/>` is FAST's, left out here).
#[test]
fn prosody_sasl2_logins_replay_exactly() {
    for (file, resumable, plus) in [
        ("prosody13_sasl2_plain_bind2.txt", false, false),
        ("prosody13_sasl2_scram_sha1_bind2.txt", false, false),
        ("prosody13_sasl2_scram_sha1_bind2_sm.txt", true, false),
        ("prosody13_sasl2_fast_ht_sha256_none.txt", false, true),
    ] {
        let mut t = Transcript::load(&format!("prosody/{file}"));
        if plus {
            t = t.connections().remove(0);
            for e in &mut t.entries {
                if let Entry::Data(Dir::C, b) = e {
                    let line = String::from_utf8(b.clone()).unwrap();
                    let fast =
                        "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>";
                    *b = line.replace(fast, "").into_bytes();
                }
            }
        }
        let c = String::from_utf8(t.bytes_of(Dir::C)).unwrap();
        let mech = attr_after(&c, "mechanism='");
        let mut config = sasl2_capture_config(&t, "secret", mech);
        if resumable {
            config.stream_management = Some(xmpp_sansio::sm::SmSettings::new());
        }
        let mut o = replay(&t, config);
        assert_eq!(o.error(), None, "{file}: {:?}", o.events);
        let s = String::from_utf8(t.bytes_of(Dir::S)).unwrap();
        let bound = s.split("<authorization-identifier>").nth(1).unwrap();
        let bound = bound.split('<').next().unwrap().to_owned();
        assert!(bound.starts_with("alice@localhost/raw~"), "{file}");
        assert_eq!(o.ready_jid(), Some(bound.as_str()), "{file}");
        if resumable {
            // Enabled inline, resumable; our close acknowledges what we
            // handled (<a h='0'/>), which the capturing client did not.
            assert!(o.events.iter().any(|e| matches!(
                e,
                ClientEvent::StreamManagementEnabled { id: Some(id), max: Some(600), .. }
                    if id == "Qblssr-xKWIi"
            )));
            let ours = String::from_utf8(o.sent.clone()).unwrap();
            o.sent = ours
                .replace("<a xmlns='urn:xmpp:sm:3' h='0'/>", "")
                .into_bytes();
        }
        assert_same_client_lines(file, &o);
        let security = o.events.iter().find_map(|e| match e {
            ClientEvent::Authenticated { security, .. } => Some(*security),
            _ => None,
        });
        let security = security.unwrap();
        if mech.starts_with("SCRAM") {
            // mod_sasl_ssdp's h= checked against the SASL2 mechanisms.
            assert!(security.downgrade_protection, "{file}");
        }
        if plus {
            assert_eq!(
                security.channel_binding,
                Some(ChannelBindingUse::Bound(
                    ChannelBindingType::TlsServerEndPoint
                ))
            );
        }
        assert_eq!(o.events.last(), Some(&ClientEvent::Closed), "{file}");
    }
    // The wrong password: SASL2's failure, condition and text.
    let t = Transcript::load("prosody/prosody13_sasl2_scram_wrong_password.txt");
    let config = sasl2_capture_config(&t, "wrong", "SCRAM-SHA-1");
    let o = replay(&t, config);
    assert_eq!(
        o.error(),
        Some(&ClientError::Refused(PeerRefusal::Authentication {
            condition: Some(SaslCondition::NotAuthorized),
            text: Some(
                "The response provided by the client doesn't match the one we calculated.".into()
            ),
        }))
    );
    // Our client closes the stream after the failure; the capturing client
    // hung up without a close.
    let mut o = o;
    assert!(o.sent.ends_with(b"</stream:stream>"));
    o.sent.truncate(o.sent.len() - b"</stream:stream>".len());
    assert_same_client_lines("prosody13_sasl2_scram_wrong_password.txt", &o);
}

/// Prosody 13 (mod_sasl2_bind2) asked for carbons, stream management
/// and an inactive start inside Bind 2, as XEP-0386's example does: the
/// client, told to ask for carbons and `CsiState::Inactive`, sends the
/// capturing client's `<bind/>` element for element (Prosody lists both
/// features), and reports both on; Prosody's `<enabled
/// xmlns='urn:xmpp:carbons:2'/>` in `<bound/>` (which XEP-0386 does not
/// require) is accepted beside stream management's `<enabled/>`.
#[test]
fn prosody_bind2_carbons_and_csi_replay_exactly() {
    use xmpp_sansio::sasl2::CsiState;
    let file = "prosody13_sasl2_scram_sha1_bind2_carbons_csi.txt";
    let t = Transcript::load(&format!("prosody/{file}"));
    let s = String::from_utf8(t.bytes_of(Dir::S)).unwrap();
    assert!(s.contains("<feature var='urn:xmpp:carbons:2'/><feature var='urn:xmpp:csi:0'/>"));
    assert!(s.contains("<enabled xmlns='urn:xmpp:carbons:2'/></bound>"));
    let mut config = sasl2_capture_config(&t, "secret", "SCRAM-SHA-1");
    config.stream_management = Some(xmpp_sansio::sm::SmSettings::new());
    config.carbons = true;
    config.csi = Some(CsiState::Inactive);
    let mut o = replay(&t, config);
    assert_eq!(o.error(), None, "{:?}", o.events);
    let features = o.events.iter().find_map(|e| match e {
        ClientEvent::Bind2Enabled(f) => Some(*f),
        _ => None,
    });
    let features = features.expect("Bind2Enabled");
    assert!(features.carbons);
    assert_eq!(features.csi, Some(CsiState::Inactive));
    assert!(o
        .ready_jid()
        .is_some_and(|j| j.starts_with("alice@localhost/raw~")));
    // Our close acknowledges what we handled; the capturing client's did not.
    let ours = String::from_utf8(o.sent.clone()).unwrap();
    o.sent = ours
        .replace("<a xmlns='urn:xmpp:sm:3' h='0'/>", "")
        .into_bytes();
    assert_same_client_lines(file, &o);
}

/// Prosody 13's FAST (mod_sasl2_fast), both connections through the
/// client: a SCRAM-SHA-1-PLUS login that asks for a token bound to
/// HT-SHA-256-NONE (the strongest the client can use later: the capture's
/// channel offers no tls-exporter for -EXPR) and gets Prosody's token
/// (`ClientEvent::FastToken`); then a login with that token, line for line
/// the capturing client's, Prosody's additional data verified.
#[test]
fn prosody_fast_token_then_fast_login_replay_exactly() {
    let file = "prosody13_sasl2_fast_ht_sha256_none.txt";
    let full = Transcript::load(&format!("prosody/{file}"));
    let mut connections = full.connections();
    let (first, second) = (connections.remove(0), connections.remove(0));
    let mut config = sasl2_capture_config(&first, "secret", "SCRAM-SHA-1-PLUS");
    config.fast.request_token = true;
    let o = replay(&first, config);
    assert_eq!(o.error(), None, "{:?}", o.events);
    assert_same_client_lines(file, &o);
    let tokens: Vec<_> = o
        .events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::FastToken(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(tokens.len(), 1, "{:?}", o.events);
    let token = tokens[0].clone();
    assert_eq!(token.mechanism, "HT-SHA-256-NONE");
    assert_eq!(token.expiry.as_str(), "2026-12-14T06:42:18.991109Z");
    let s = String::from_utf8(first.bytes_of(Dir::S)).unwrap();
    assert_eq!(attr_after(&s, " token='"), token.token.expose());

    // The token logs in: no password configured to fall back to.
    let config = sasl2_capture_config(&second, "not-the-password", "SCRAM-SHA-1-PLUS");
    let now = token.expiry.unix_seconds() - 86_400;
    let o = replay_prepared(&second, config, &[], &mut |c| {
        c.use_fast_token(token.clone(), now)
    });
    assert_eq!(o.error(), None, "{:?}", o.events);
    assert_same_client_lines(file, &o);
    assert!(o.events.iter().any(|e| matches!(
        e,
        ClientEvent::Authenticated { mechanism, sasl2: true, .. } if mechanism == "HT-SHA-256-NONE"
    )));
    assert!(o
        .ready_jid()
        .is_some_and(|j| j.starts_with("alice@localhost/raw~")));
}

#[test]
fn prosody_plain_and_anonymous_replay_exactly() {
    for (file, jid, creds, mech) in [
        (
            "prosody13_plain.txt",
            "alice@localhost",
            Credentials::password("secret"),
            "PLAIN",
        ),
        (
            "prosody_plain.txt",
            "alice@localhost",
            Credentials::password("secret"),
            "PLAIN",
        ),
        (
            "prosody13_sha256_plain.txt",
            "alice@sha256.localhost",
            Credentials::password("secret"),
            "PLAIN",
        ),
        (
            "prosody13_anonymous.txt",
            "anon.localhost",
            Credentials::Anonymous,
            "ANONYMOUS",
        ),
        (
            "prosody_anonymous.txt",
            "anon.localhost",
            Credentials::Anonymous,
            "ANONYMOUS",
        ),
    ] {
        let t = Transcript::load(&format!("prosody/{file}"));
        let mut c = config(jid, creds);
        only(&mut c, mech);
        c.policy.enable_anonymous = true;
        let o = replay(&t, c);
        assert_eq!(o.error(), None, "{file}");
        assert!(o.ready_jid().is_some(), "{file}");
        // No gs2 header, no XEP-0474: nothing proved beyond the identity.
        assert!(
            o.events.iter().any(|e| matches!(
                e,
                ClientEvent::Authenticated { mechanism, security, .. }
                    if mechanism == mech && *security == ExchangeSecurity::default()
            )),
            "{file}"
        );
        assert_same_client_lines(file, &o);
    }
}

#[test]
fn prosody_direct_tls_replays_exactly() {
    for file in [
        "prosody13_direct_tls_scram.txt",
        "prosody_direct_tls_scram.txt",
    ] {
        let t = Transcript::load(&format!("prosody/{file}"));
        let mut c = config("alice@localhost", Credentials::password("secret"));
        c.tls = TlsMode::Direct;
        let o = replay(&t, c);
        assert_eq!(o.error(), None, "{file}: {:?}", o.events);
        assert_eq!(o.ready_jid(), Some("alice@localhost/raw"));
        assert_same_client_lines(file, &o);
    }
}

#[test]
fn prosody_failures_reach_the_same_outcome() {
    for (file, jid, mech) in [
        (
            "prosody13_scram_wrong_password.txt",
            "alice@localhost",
            "SCRAM-SHA-1",
        ),
        (
            "prosody13_scram_unknown_user.txt",
            "nosuchuser@localhost",
            "SCRAM-SHA-1",
        ),
        (
            "prosody13_plain_wrong_password.txt",
            "alice@localhost",
            "PLAIN",
        ),
        (
            "prosody_scram_wrong_password.txt",
            "alice@localhost",
            "SCRAM-SHA-1",
        ),
        (
            "prosody_plain_wrong_password.txt",
            "alice@localhost",
            "PLAIN",
        ),
    ] {
        let t = Transcript::load(&format!("prosody/{file}"));
        let mut c = config(jid, Credentials::password("wrong-password"));
        only(&mut c, mech);
        let o = replay(&t, c);
        assert!(
            matches!(
                o.error(),
                Some(ClientError::Refused(PeerRefusal::Authentication {
                    condition: Some(SaslCondition::NotAuthorized),
                    ..
                }))
            ),
            "{file}: {:?}",
            o.error()
        );
        assert_eq!(o.ready_jid(), None);
        assert_eq!(o.events.last(), Some(&ClientEvent::Closed));
    }
}

#[test]
fn prosody_no_starttls_mechanism_not_offered_is_never_forced() {
    // The capturing client forced PLAIN on a stream where Prosody offered
    // no mechanism before TLS (and answered encryption-required). Ours,
    // even configured for cleartext, does not force what was not offered:
    // it stops, saying the named mechanism was not offered, and sends no
    // <auth/>.
    for file in [
        "prosody13_no_starttls_auth_refused.txt",
        "prosody_no_starttls_auth_refused.txt",
    ] {
        let t = Transcript::load(&format!("prosody/{file}"));
        let mut c = config("alice@localhost", Credentials::password("secret"));
        c.tls = TlsMode::None;
        c.policy.allow_plain_without_tls = true;
        only(&mut c, "PLAIN");
        let o = replay(&t, c);
        assert_eq!(
            o.error(),
            Some(&ClientError::Policy(PolicyError::MechanismRefused(vec![
                RefusedMechanism {
                    mechanism: "PLAIN".into(),
                    refusal: Refusal::NotOffered,
                }
            ]))),
            "{file}"
        );
        assert!(!String::from_utf8_lossy(&o.sent).contains("<auth"));
    }
}

#[test]
fn tls_required_by_policy_sends_no_credentials() {
    // The same server (STARTTLS required, capture above), but a client
    // whose policy allows no cleartext: it never gets to <auth/>. With
    // a server that offers no STARTTLS at all it closes with a policy
    // error.
    let features_without_tls = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{}' id='1' from='localhost' version='1.0'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
        ns::STREAM
    );
    let now = Instant::now();
    let mut client = Client::with_random(
        config("alice@localhost", Credentials::password("secret"))
            .build()
            .unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    let mut sent = Vec::new();
    client.poll_transmit(&mut sent);
    client.feed(now, features_without_tls.as_bytes()).unwrap();
    sent.clear();
    client.poll_transmit(&mut sent);
    let sent = String::from_utf8(sent).unwrap();
    assert!(!sent.contains("<auth"), "{sent}");
    assert!(
        sent.contains("policy-violation") && sent.ends_with("</stream:stream>"),
        "{sent}"
    );
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Error(ClientError::Policy(
            PolicyError::TlsRequired
        )))
    );
    assert_eq!(client.poll_event(), Some(ClientEvent::Closed));
}

// ---------------------------------------------------------------------
// Seeds

#[test]
fn seed000_gtalk_login_replays() {
    let t = Transcript::load("seeds/seed000_gtalk.txt");
    let mut c = ClientSettings::new("XXXXXXXX@gmail.com", Credentials::password("blacked-out"));
    c.lang = None;
    let o = replay(&t, c);
    assert_eq!(o.error(), None);
    // The bound JID as the server wrote it, prepared (nodeprep folds
    // case): one JID, however it is spelled.
    assert_eq!(o.ready_jid(), Some("xxxxxxxx@gmail.com/D922F673"));
    // The blog blacked out the PLAIN payload: compare everything else.
    let ours = streams(&o.sent);
    let theirs = streams(&o.expected);
    assert_eq!(ours.len(), 3);
    assert_eq!(theirs.len(), 3);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a.0.as_deref(), Some("gmail.com"));
        assert_eq!(a.0, b.0);
        assert_eq!(a.1.len(), b.1.len());
        for (x, y) in a.1.iter().zip(&b.1) {
            if x.name() == "auth" {
                assert_eq!(x.attr("mechanism"), y.attr("mechanism"));
                let payload = b64(&x.text());
                assert_eq!(payload, b"\0XXXXXXXX\0blacked-out");
            } else {
                assert!(same_element(x, y), "ours {x:?}\ntheirs {y:?}");
            }
        }
    }
    // The session was established because <session/> had no <optional/>.
    assert!(o.sent.windows(7).any(|w| w == b"sess_1'"));
}

#[cfg(feature = "digest-md5")]
#[test]
fn seed004_digest_md5_replay_fails_safe_and_rfc2831_parameters_are_checked() {
    // Seed 004's server answers with RFC 2831's rspauth, which no password
    // of `somenode` in `somerealm` can produce: our client must refuse it
    // (the server did not prove itself) instead of sending the empty
    // response of step 8.
    let t = Transcript::load("seeds/seed004_digest_md5.txt");
    let mut c = ClientSettings::new("somenode@example.com", Credentials::password("secret"));
    c.tls = TlsMode::None;
    c.lang = None;
    c.policy.enable_digest_md5 = true;
    let o = replay(&t, c);
    assert!(
        matches!(o.error(), Some(ClientError::PeerMisbehaved(xmpp_sansio::error::Misbehavior::Sasl(e))) if e.condition == SaslCondition::NotAuthorized),
        "{:?}",
        o.error()
    );
    // Up to that point it sent what the seed shows: the header, an empty
    // <auth mechanism='DIGEST-MD5'/>, a response with the seed's fields.
    let ours = streams(&o.sent);
    let auth = &ours[0].1[0];
    assert_eq!(auth.attr("mechanism"), Some("DIGEST-MD5"));
    assert_eq!(auth.text(), "");
    let response = String::from_utf8(b64(&ours[0].1[1].text())).unwrap();
    for field in [
        "username=\"somenode\"",
        "realm=\"somerealm\"",
        "nonce=\"OA6MG9tEQGm2hh\"",
        "nc=00000001",
        "qop=auth",
        "digest-uri=\"xmpp/example.com\"",
        "charset=utf-8",
    ] {
        assert!(response.contains(field), "{field} in {response}");
    }
    // ... and then <abort/> and the close, nothing else.
    assert!(ours[0].1[2].is("abort", ns::SASL));
    assert!(ours[0].2);
}

#[test]
fn negotiation_deadline_fires() {
    let now = Instant::now();
    let mut c = config("alice@localhost", Credentials::password("secret"));
    c.negotiation_timeout = Duration::from_secs(10);
    let mut client = Client::with_random(
        c.build().unwrap(),
        Box::new(DeterministicRandom::new(0)),
        now,
    );
    assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(10)));
    client.handle_timeout(now + Duration::from_secs(9));
    assert_eq!(client.poll_event(), None);
    client.handle_timeout(now + Duration::from_secs(10));
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Error(ClientError::Timeout(
            Deadline::Negotiation
        )))
    );
    assert_eq!(client.poll_event(), Some(ClientEvent::Closed));
    assert_eq!(client.poll_timeout(), None);
}

// ---------------------------------------------------------------------
// Chunking invariance

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    #[test]
    fn client_is_chunking_invariant(cuts in proptest::collection::vec(0usize..4000, 0..12), which in 0usize..4) {
        let (file, jid, creds, mech) = [
            ("prosody/prosody13_scram_sha1_bind.txt", "alice@localhost", Credentials::password("secret"), "SCRAM-SHA-1"),
            ("prosody/prosody13_scram_sha1_plus_endp_tls13.txt", "alice@localhost", Credentials::password("secret"), "SCRAM-SHA-1-PLUS"),
            ("prosody/prosody13_plain_wrong_password.txt", "alice@localhost", Credentials::password("nope"), "PLAIN"),
            ("seeds/seed000_gtalk.txt", "XXXXXXXX@gmail.com", Credentials::password("x"), "PLAIN"),
        ][which].clone();
        let t = Transcript::load(file);
        let make = || {
            let mut c = config(jid, creds.clone());
            only(&mut c, mech);
            if file.starts_with("seeds/") {
                c.resource = None;
                c.lang = None;
            }
            c
        };
        let whole = replay(&t, make());
        let split = replay_chunked(&t, make(), &cuts);
        proptest::prop_assert_eq!(&split.events, &whole.events);
        proptest::prop_assert_eq!(&split.sent, &whole.sent);
    }
}

/// The base64-decoded text of every `<tag ...>` element in `side`.
fn payloads_of(tag: &str, side: &str) -> Vec<Vec<u8>> {
    side.split(&format!("<{tag} "))
        .skip(1)
        .map(|rest| {
            let (open, after) = rest.split_once('>').unwrap();
            match open.ends_with('/') {
                true => Vec::new(),
                false => b64(after.split('<').next().unwrap()),
            }
        })
        .collect()
}

/// A context replaying the client side of a GSSAPI capture, and the
/// server's challenges.
fn replay_gss(t: &Transcript) -> (ReplayGss, Vec<Vec<u8>>) {
    let (c_side, s_side) = (
        String::from_utf8(t.bytes_of(Dir::C)).unwrap(),
        String::from_utf8(t.bytes_of(Dir::S)).unwrap(),
    );
    let auth = payloads_of("auth", &c_side);
    let challenges = payloads_of("challenge", &s_side);
    let responses = payloads_of("response", &c_side);
    assert_eq!((auth.len(), challenges.len(), responses.len()), (1, 2, 2));
    assert_eq!(auth[0].len(), 729);
    assert!(responses[0].is_empty());
    // Cyrus offers "no security layer" only, maximum buffer 0.
    assert_eq!(cfx_payload(&challenges[1]), Some(&[0x01, 0, 0, 0][..]));
    let context = ReplayGss::new(auth, vec![challenges[0].clone()], responses[1].clone());
    (context, challenges)
}

/// SASL GSSAPI against Prosody 13 with Cyrus SASL and a real KDC: a
/// context that hands out the capture's Kerberos tokens (and reads the
/// RFC 4121 wrap tokens for real) lets the client replay the exchange
/// byte for byte: AP-REQ in `<auth/>`, the empty response to the AP-REP,
/// the layer offer unwrapped ("no layer", maximum buffer 0) and the
/// captured wrap of `[0x01, 0, 0, 0]` with an empty authzid.
#[test]
fn prosody_gssapi_login_replays_exactly() {
    let file = "kerberos/prosody13_gssapi_login.txt";
    let t = Transcript::load(file);
    let (context, challenges) = replay_gss(&t);
    assert_eq!(challenges[0].len(), 156);
    let context = Arc::new(Mutex::new(Some(context)));
    let targets = Arc::new(Mutex::new(Vec::new()));
    let mut c = config("alice@xmpp.example.test", Credentials::Host);
    c.resource = Some("gssapi".into());
    let seen = targets.clone();
    c.mechanisms
        .register(ClientMechanismFactory::gssapi(move |target| {
            seen.lock().unwrap().push(target.hostbased_name());
            let ctx = context.lock().unwrap().take().expect("one context");
            Ok(Box::new(ctx))
        }));
    let o = replay(&t, c);
    assert_eq!(o.error(), None, "{:?}", o.events);
    assert_eq!(o.ready_jid(), Some("alice@xmpp.example.test/gssapi"));
    assert_same_client_lines(file, &o);
    assert_eq!(*targets.lock().unwrap(), ["xmpp@xmpp.example.test"]);
    assert!(o.events.iter().any(|e| matches!(
        e,
        ClientEvent::Authenticated { mechanism, security, .. }
            if mechanism == "GSSAPI" && *security == ExchangeSecurity::default()
    )));
}

/// The same exchange with authzid `bob` and alice's ticket: the client
/// wraps `[0x01, 0, 0, 0] + "bob"` exactly as the capture did, and
/// Prosody's `not-authorized` ends the login.
#[test]
fn prosody_gssapi_other_authzid_is_refused() {
    let file = "kerberos/prosody13_gssapi_authzid_other_user.txt";
    let t = Transcript::load(file);
    let (context, _) = replay_gss(&t);
    assert_eq!(
        cfx_payload(&context.wrap_result),
        Some(&b"\x01\0\0\0bob"[..])
    );
    let context = Arc::new(Mutex::new(Some(context)));
    let mut c = config("alice@xmpp.example.test", Credentials::Host);
    c.mechanisms.register(ClientMechanismFactory::new(
        gssapi::NAME,
        gssapi::CLIENT_PROFILE,
        move |_| {
            let ctx = context.lock().unwrap().take().expect("one context");
            Ok(Box::new(
                GssapiClient::new(Box::new(ctx)).with_authzid("bob"),
            ))
        },
    ));
    let o = replay(&t, c);
    assert!(
        matches!(
            o.error(),
            Some(ClientError::Refused(PeerRefusal::Authentication {
                condition: Some(SaslCondition::NotAuthorized),
                ..
            }))
        ),
        "{:?}",
        o.error()
    );
    assert_eq!(o.ready_jid(), None);
    assert_same_client_lines(file, &o);
}
