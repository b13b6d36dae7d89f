//! SASL2 (XEP-0388) with Bind 2 (XEP-0386), inline stream management
//! and XEP-0480 SCRAM upgrades: our client against our server, in memory.
//! Every mechanism logs in; the round trips are counted against an RFC
//! 6120 login; every failure path ends with the right element or stream
//! error on both sides.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use support::pair::{
    client_config, creds, server_config, tls_info, Pair, Store, TlsSim, Way, MECHANISMS,
};
use support::sm_world::World;
use xmpp_sansio::client::{ClientError, ClientEvent, ClientSettings, PeerRefusal, PolicyError};
use xmpp_sansio::client::{Credentials, TlsMode};
use xmpp_sansio::sasl::channel_binding::{ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::{ChannelBindingUse, SaslCondition, ScramHash};
use xmpp_sansio::sasl2::{Bind2Features, CsiState, Sasl2Policy, Sasl2Settings, UserAgent};
use xmpp_sansio::server::{
    BindAnswer, BindRefusal, ServerError, ServerEvent, ServerSettings, ServerTls,
};
use xmpp_sansio::sm::SmSettings;
use xmpp_sansio::stream_error::StreamErrorCondition;

/// alice@example.com, password `pencil`, only `mech`, STARTTLS.
fn alice(mech: &str) -> ClientSettings {
    client_config(
        "alice@example.com",
        Credentials::password("pencil"),
        mech,
        TlsMode::StartTlsRequired,
    )
}

fn sasl2_server(mechanisms: &[&str], tls: ServerTls) -> ServerSettings {
    let mut s = server_config("example.com", mechanisms, tls);
    s.sasl2 = Some(Sasl2Settings::new());
    s
}

fn exporter() -> TlsSim {
    TlsSim::same(tls_info(
        TlsVersion::Tls13,
        Some((ChannelBindingType::TlsExporter, b"channel-binding-data")),
    ))
}

/// The bytes each way, and how many times the client wrote (its flights:
/// each a round trip, as the pair moves in lockstep).
#[derive(Default, Debug, Clone, Copy)]
struct Traffic {
    client_flights: usize,
    up: usize,
    down: usize,
}

fn counted(pair: &mut Pair) -> Rc<RefCell<Traffic>> {
    let t = Rc::new(RefCell::new(Traffic::default()));
    let t2 = t.clone();
    pair.filter = Some(Box::new(move |way, bytes| {
        let mut t = t2.borrow_mut();
        match way {
            Way::Up => {
                t.client_flights += 1;
                t.up += bytes.len();
            }
            Way::Down => t.down += bytes.len(),
        }
        vec![bytes]
    }));
    t
}

fn login(c: ClientSettings, s: ServerSettings) -> Pair {
    let mut pair = Pair::with_alice(c, s, Some(exporter()));
    pair.negotiate();
    pair
}

fn ready_jid(p: &Pair) -> Option<String> {
    p.client_events.iter().find_map(|e| match e {
        ClientEvent::Ready { jid } => Some(jid.to_string()),
        _ => None,
    })
}

/// Every mechanism of the registry logs in over SASL2 with Bind 2, over
/// STARTTLS with tls-exporter: the -PLUS ones bound to the channel, the
/// SCRAM ones with XEP-0474's downgrade protection verified.
#[test]
fn every_mechanism_logs_in_over_sasl2_with_bind2() {
    for mech in MECHANISMS {
        let (jid, creds) = creds(mech, true);
        let mut c = client_config(&jid, creds, mech, TlsMode::StartTlsRequired);
        c.user_agent = Some(UserAgent::new("d4565fa7-4d72-4749-b3d3-740edbf87770"));
        let pair = login(c, sasl2_server(&[mech], ServerTls::StartTlsRequired));
        assert!(pair.client.is_ready(), "{mech}: {:?}", pair.client_events);
        assert!(pair.server.is_ready(), "{mech}: {:?}", pair.server_events);
        assert!(pair.client.used_sasl2(), "{mech}");
        // Bound by Bind 2: the tag and the suffix the user agent derives.
        let jid = ready_jid(&pair).unwrap();
        assert!(jid.contains("/pair~"), "{mech}: {jid}");
        assert_eq!(pair.server.jid().map(|j| j.to_string()), Some(jid));
        // No stream restart: one header each way after TLS.
        let headers = String::from_utf8_lossy(&pair.up_bytes)
            .matches("<stream:stream")
            .count();
        assert_eq!(headers, 2, "{mech}");
        let security = pair.client_events.iter().find_map(|e| match e {
            ClientEvent::Authenticated { security, .. } => Some(*security),
            _ => None,
        });
        if mech.starts_with("SCRAM") {
            let s = security.unwrap();
            assert!(s.downgrade_protection, "{mech}");
            if mech.ends_with("-PLUS") {
                assert_eq!(
                    s.channel_binding,
                    Some(ChannelBindingUse::Bound(ChannelBindingType::TlsExporter))
                );
            }
        }
    }
}

/// The same user agent gets the same resource on its next login.
#[test]
fn the_same_user_agent_gets_the_same_resource() {
    let jid = |seed| {
        let mut c = alice("PLAIN");
        c.user_agent = Some(UserAgent::new("59966e99-4d6c-433f-bb20-07910e1ddb8a"));
        let mut p = Pair::alice_seeded(
            c,
            sasl2_server(&["PLAIN"], ServerTls::StartTlsRequired),
            Some(exporter()),
            (seed, seed + 1),
        );
        p.negotiate();
        ready_jid(&p).unwrap()
    };
    assert_eq!(jid(1), jid(7));
}

/// Counted: a SCRAM login bound with stream management on takes three
/// round trips after TLS over SASL2 (header, authenticate, response) and
/// six over RFC 6120 (header, auth, response, header, bind, enable); with
/// PLAIN two against five.
#[test]
fn round_trips_sasl2_and_bind2_against_rfc6120() {
    let run = |mech: &str, sasl2: bool| {
        let mut c = alice(mech);
        c.stream_management = Some(SmSettings::new());
        c.sasl2 = if sasl2 {
            Sasl2Policy::Require
        } else {
            Sasl2Policy::Never
        };
        let mut s = sasl2_server(&[mech], ServerTls::StartTlsRequired);
        s.stream_management = Some(SmSettings::server());
        let mut pair = Pair::with_alice(c, s, Some(exporter()));
        let t = counted(&mut pair);
        pair.negotiate();
        assert!(pair.client.is_ready() && pair.server.is_ready());
        assert!(pair
            .client_events
            .iter()
            .any(|e| matches!(e, ClientEvent::StreamManagementEnabled { id: Some(_), .. })));
        assert_eq!(pair.client.used_sasl2(), sasl2);
        let t = *t.borrow();
        t
    };
    // Before TLS: the header and <starttls/>, the same for both.
    for (mech, sasl2_trips, rfc_trips) in [("SCRAM-SHA-256", 3, 6), ("PLAIN", 2, 5)] {
        let modern = run(mech, true);
        let classic = run(mech, false);
        assert_eq!(modern.client_flights, 2 + sasl2_trips, "{mech} {modern:?}");
        assert_eq!(classic.client_flights, 2 + rfc_trips, "{mech} {classic:?}");
        eprintln!("{mech}: SASL2 {modern:?}, RFC 6120 {classic:?}");
    }
}

/// The policy: SASL2 by default, RFC 6120 when told or when not offered;
/// `Require` against a server without SASL2 sends no credentials.
#[test]
fn the_policy_decides_between_sasl2_and_rfc6120() {
    let c = |p| {
        let mut c = alice("SCRAM-SHA-256");
        c.sasl2 = p;
        c
    };
    let with = || sasl2_server(&["SCRAM-SHA-256"], ServerTls::StartTlsRequired);
    let without = || {
        server_config(
            "example.com",
            &["SCRAM-SHA-256"],
            ServerTls::StartTlsRequired,
        )
    };
    for (policy, server, sasl2) in [
        (Sasl2Policy::Auto, with(), true),
        (Sasl2Policy::Never, with(), false),
        (Sasl2Policy::Auto, without(), false),
    ] {
        let p = login(c(policy), server);
        assert!(p.client.is_ready(), "{policy:?}");
        assert_eq!(p.client.used_sasl2(), sasl2, "{policy:?}");
    }
    let p = login(c(Sasl2Policy::Require), without());
    assert_eq!(
        p.client_error(),
        Some(&ClientError::Policy(PolicyError::Sasl2NotOffered))
    );
    assert!(!String::from_utf8_lossy(&p.up_bytes).contains("auth"));
}

/// A wrong password: `<failure><not-authorized/>` in SASL2's namespace,
/// the client refused, the server counting the attempt.
#[test]
fn a_wrong_password_is_a_sasl2_failure() {
    for mech in ["SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-1-PLUS"] {
        let (jid, creds) = creds(mech, false);
        let c = client_config(&jid, creds, mech, TlsMode::StartTlsRequired);
        let p = login(c, sasl2_server(&[mech], ServerTls::StartTlsRequired));
        assert!(matches!(
            p.client_error(),
            Some(ClientError::Refused(PeerRefusal::Authentication {
                condition: Some(SaslCondition::NotAuthorized),
                ..
            }))
        ));
        assert_eq!(p.server_auth_failure(), Some(SaslCondition::NotAuthorized));
        let down = String::from_utf8_lossy(&p.down_bytes).into_owned();
        assert!(
            down.contains("<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>"),
            "{down}"
        );
    }
}

/// Drives a server alone with the client's lines, after TLS (simulated).
fn raw_server(s: ServerSettings, lines: &[&str]) -> (String, Vec<ServerEvent>) {
    use xmpp_sansio::server::Server;
    let now = std::time::Instant::now();
    let sim = exporter();
    let mut server = Server::with_random(
        s.build().unwrap(),
        Box::new(xmpp_sansio::DeterministicRandom::new(3)),
        now,
    )
    .direct_tls(sim.server);
    let store = Store::new(&[("alice", "pencil")]);
    let mut out = Vec::new();
    let mut events = Vec::new();
    let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";
    for line in std::iter::once(header).chain(lines.iter().copied()) {
        if server.is_closed() {
            break;
        }
        server.feed(now, line.as_bytes()).unwrap();
        while let Some(ev) = server.poll_event() {
            match &ev {
                ServerEvent::Credentials(r) => {
                    server.answer_credentials(now, store.answer(r)).unwrap()
                }
                ServerEvent::Bind { resource, .. } => server
                    .answer_bind(now, BindAnswer::Accept(resource.clone()))
                    .unwrap(),
                _ => {}
            }
            events.push(ev);
        }
        server.poll_transmit(&mut out);
    }
    (String::from_utf8(out).unwrap(), events)
}

fn server_error(events: &[ServerEvent]) -> Option<&ServerError> {
    events.iter().find_map(|e| match e {
        ServerEvent::Error(e) => Some(e),
        _ => None,
    })
}

const PLAIN_ALICE: &str = "AGFsaWNlAHBlbmNpbA=="; // \0alice\0pencil

/// Hostile and broken clients: an unknown mechanism, bad base64, `=`
/// (RFC 6120's empty marker, not SASL2's), an abort, a second
/// `<authenticate/>` during an exchange, a `<success/>` from the client,
/// a `<response/>` out of an exchange, an unknown task.
#[test]
fn broken_clients_get_failures_or_stream_errors() {
    let s = || {
        let mut s = sasl2_server(&["PLAIN", "SCRAM-SHA-256"], ServerTls::Direct);
        s.sasl2.as_mut().unwrap().upgrades = vec![ScramHash::Sha512];
        s
    };
    let failure = |c: &str| {
        format!("<failure xmlns='urn:xmpp:sasl:2'><{c} xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>")
    };
    // SASL failures: the stream goes on.
    for (line, condition) in [
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='X-UNKNOWN'/>".to_owned(),
            "invalid-mechanism",
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>!!!</initial-response></authenticate>".to_owned(),
            "incorrect-encoding",
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>=</initial-response></authenticate>".to_owned(),
            "incorrect-encoding",
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>biwsbj1hbGljZSxyPWFiYw==</initial-response></authenticate><abort xmlns='urn:xmpp:sasl:2'/>".to_owned(),
            "aborted",
        ),
        (
            "<authenticate xmlns='urn:xmpp:sasl:2'/>".to_owned(),
            "invalid-mechanism",
        ),
    ] {
        let (out, events) = raw_server(s(), &[&line]);
        assert!(out.contains(&failure(condition)), "{line}: {out}");
        assert!(server_error(&events).is_none(), "{line}: {events:?}");
        assert!(events.iter().any(|e| matches!(
            e,
            ServerEvent::AuthenticationFailed { .. }
        )));
    }
    // Then a good login on the same stream.
    let bad = "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='X-UNKNOWN'/>";
    let good = format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>{PLAIN_ALICE}</initial-response><bind xmlns='urn:xmpp:bind:0'><tag>t</tag></bind></authenticate>"
    );
    let (out, events) = raw_server(s(), &[bad, &good]);
    assert!(
        out.contains("<authorization-identifier>alice@example.com/t~"),
        "{out}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::Ready { .. })));
    // Stream errors: the stream ends.
    for (lines, condition) in [
        (
            vec![
                "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>biwsbj1hbGljZSxyPWFiYw==</initial-response></authenticate>",
                "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>biwsbj1hbGljZSxyPWFiYw==</initial-response></authenticate>",
            ],
            StreamErrorCondition::UnsupportedStanzaType,
        ),
        (
            vec!["<success xmlns='urn:xmpp:sasl:2'/>"],
            StreamErrorCondition::UnsupportedStanzaType,
        ),
        (
            vec!["<response xmlns='urn:xmpp:sasl:2'>AAAA</response>"],
            StreamErrorCondition::UnsupportedStanzaType,
        ),
        (
            vec!["<message xmlns='jabber:client' to='bob@example.com'><body>x</body></message>"],
            StreamErrorCondition::NotAuthorized,
        ),
    ] {
        let (out, events) = raw_server(s(), &lines);
        let e = server_error(&events).unwrap_or_else(|| panic!("{lines:?}: {events:?}"));
        assert_eq!(e.condition(), Some(condition.clone()), "{lines:?}");
        assert!(out.contains("</stream:stream>"), "{out}");
    }
    // A task the server did not start: a failure, and not logged in.
    let upgrade = format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>{PLAIN_ALICE}</initial-response><upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-512</upgrade></authenticate>"
    );
    let (out, events) = raw_server(
        s(),
        &[
            &upgrade,
            "<next xmlns='urn:xmpp:sasl:2' task='UPGR-SCRAM-SHA-1'/>",
        ],
    );
    assert!(out.contains("<task>UPGR-SCRAM-SHA-512</task>"), "{out}");
    assert!(out.contains(&failure("malformed-request")), "{out}");
    assert!(!events
        .iter()
        .any(|e| matches!(e, ServerEvent::Ready { .. })));
}

/// A server that says `<success/>` before the mechanism finished (SCRAM
/// without its server signature): the client never goes on.
#[test]
fn a_success_before_the_exchange_ends_is_refused() {
    let mut c = alice("SCRAM-SHA-256");
    c.sasl2 = Sasl2Policy::Require;
    let mut pair = Pair::with_alice(
        c,
        sasl2_server(&["SCRAM-SHA-256"], ServerTls::StartTlsRequired),
        Some(exporter()),
    );
    // The server's challenge becomes a success.
    pair.filter = Some(Box::new(|way, bytes| {
        let s = String::from_utf8(bytes).unwrap();
        if way == Way::Down && s.starts_with("<challenge xmlns='urn:xmpp:sasl:2'>") {
            return vec![b"<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@example.com</authorization-identifier></success>".to_vec()];
        }
        vec![s.into_bytes()]
    }));
    pair.negotiate();
    assert!(!pair.client.is_ready());
    assert!(
        matches!(pair.client_error(), Some(ClientError::PeerMisbehaved(_))),
        "{:?}",
        pair.client_error()
    );
    assert!(!pair
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Authenticated { .. })));
}

/// The host refuses the Bind 2 resource: `<failed/>` with the stanza
/// error inside `<success/>`, and the client reports the refusal.
#[test]
fn a_refused_bind2_is_reported() {
    let c = alice("PLAIN");
    let mut pair = Pair::with_alice(
        c,
        sasl2_server(&["PLAIN"], ServerTls::StartTlsRequired),
        Some(exporter()),
    );
    pair.bind_answer = Some(BindAnswer::Refuse(BindRefusal::Conflict));
    pair.negotiate();
    match pair.client_error() {
        Some(ClientError::Refused(PeerRefusal::Bind(e))) => assert_eq!(e.condition, "conflict"),
        other => panic!("{other:?}"),
    }
}

/// XEP-0480: a client asks for the SHA-512 upgrade the server offers; the
/// server's host gets keys equal to those its own derivation from the
/// password gives for the salt it sent, and the client logs in with
/// SCRAM-SHA-512 next time with them.
#[test]
fn scram_upgrade_task_stores_keys_that_log_in() {
    let mut c = alice("SCRAM-SHA-1");
    c.min_scram_iterations = 4096;
    let mut s = sasl2_server(
        &["SCRAM-SHA-1", "SCRAM-SHA-512"],
        ServerTls::StartTlsRequired,
    );
    s.sasl2.as_mut().unwrap().upgrades = vec![ScramHash::Sha512];
    s.sasl2.as_mut().unwrap().upgrade_iterations = 4096;
    let mut pair = Pair::with_alice(c.clone(), s.clone(), Some(exporter()));
    pair.negotiate();
    assert!(pair.client.is_ready(), "{:?}", pair.client_events);
    let up = String::from_utf8_lossy(&pair.up_bytes).into_owned();
    assert!(up.contains("<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-512</upgrade>"));
    assert!(up.contains("<next xmlns='urn:xmpp:sasl:2' task='UPGR-SCRAM-SHA-512'/>"));
    let down = String::from_utf8_lossy(&pair.down_bytes).into_owned();
    assert!(down.contains("<continue xmlns='urn:xmpp:sasl:2'><additional-data>"));
    let creds = pair
        .server_events
        .iter()
        .find_map(|e| match e {
            ServerEvent::ScramUpgraded {
                jid,
                hash: ScramHash::Sha512,
                credentials,
            } if jid.as_str() == "alice@example.com" => Some(credentials.clone()),
            _ => None,
        })
        .expect("an upgrade");
    let derived = xmpp_sansio::sasl::scram::derive_server_credentials(
        ScramHash::Sha512,
        "pencil",
        &creds.salt,
        creds.iterations,
    )
    .unwrap();
    assert_eq!(creds, derived);
    // The next login: SCRAM-SHA-512 against a store holding only the
    // upgraded keys.
    let mut store = Store::new(&[]);
    store.users.insert("alice".into(), "unused".into());
    store.set_scram("alice", ScramHash::Sha512, creds);
    let mut c2 = c;
    c2.policy.only = Some(vec!["SCRAM-SHA-512".into()]);
    let mut pair = Pair::new(c2, s, store, Some(exporter()));
    pair.negotiate();
    assert!(pair.client.is_ready(), "{:?}", pair.client_events);
}

/// Inline stream management: enabled in Bind 2's `<bound/>`; after a cut,
/// resumed inside `<authenticate/>` / `<success/>` with nothing lost;
/// the resumed login is one SASL2 exchange.
#[test]
fn inline_resume_after_a_cut_loses_nothing() {
    let mut w = World::sasl2(7);
    // Cut once the session is on and some stanzas flew.
    assert!(!w.connect(Some(2500)));
    assert!(w.saved.is_some(), "a state to resume");
    assert!(w.connect(None));
    w.check();
    assert_eq!(w.resumed, 1, "{:?}", w.client_log);
    assert_eq!(w.resume_failed, 0);
    assert!(w
        .server_log
        .iter()
        .any(|e| matches!(e, ServerEvent::Resumed { .. })));
    // The resumption went inline, in the client's second write (after its
    // header): <resume/> in <authenticate/>, with Bind 2 for the case it
    // fails; resumed in two round trips, where RFC 6120 takes four
    // (header, auth, header, resume).
    let w2 = &w.up_writes[1];
    assert!(
        w2.starts_with("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>")
            && w2.contains("<resume xmlns='urn:xmpp:sm:3' ")
            && w2.contains("<bind xmlns='urn:xmpp:bind:0'>"),
        "{w2}"
    );
    // The third write is the session again (stanzas sent again or new).
    assert!(
        !w.up_writes[2].contains("<authenticate"),
        "{:?}",
        w.up_writes
    );
}

/// A failed inline resumption still binds, in the same `<success/>`.
#[test]
fn a_failed_inline_resume_still_binds() {
    let mut w = World::sasl2(7);
    assert!(!w.connect(Some(2500)));
    w.expire(); // the server host forgot the session
    assert!(w.connect(None));
    w.check();
    assert_eq!(w.resume_failed, 1);
    assert!(w
        .client_log
        .iter()
        .any(|e| matches!(e, ClientEvent::Ready { .. })));
}

/// A cut at every byte of a SASL2 session with inline stream management,
/// then a connection that resumes inline (or starts over): nothing lost,
/// nothing twice.
#[test]
fn a_cut_at_every_byte_of_a_sasl2_session_loses_nothing() {
    // The bytes the whole exchange takes: no cut happens at or above.
    let (mut lo, mut hi) = (0, 1 << 16);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if World::sasl2(4).connect(Some(mid)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let total = lo;
    assert!(total > 1000, "{total}");
    let mut resumed = 0;
    for cut in (0..total).step_by(7) {
        let mut w = World::sasl2(4);
        assert!(!w.connect(Some(cut)), "cut {cut}");
        assert!(w.connect(None), "after cut {cut}");
        w.expire();
        w.check();
        resumed += w.resumed;
    }
    assert!(resumed > 0);
}

/// Where `event` is among `events`, by a predicate.
fn position<E>(events: &[E], f: impl Fn(&E) -> bool) -> Option<usize> {
    events.iter().position(f)
}

/// The client's Bind 2 features reported, when any.
fn client_bind2(p: &Pair) -> Option<Bind2Features> {
    p.client_events.iter().find_map(|e| match e {
        ClientEvent::Bind2Enabled(f) => Some(*f),
        _ => None,
    })
}

/// The server's Bind 2 features reported, when any.
fn server_bind2(p: &Pair) -> Option<Bind2Features> {
    p.server_events.iter().find_map(|e| match e {
        ServerEvent::Bind2Enabled(f) => Some(*f),
        _ => None,
    })
}

/// A server listing carbons and CSI as the host says, with stream
/// management on.
fn inline_server(carbons: bool, csi: bool) -> ServerSettings {
    let mut s = sasl2_server(&["PLAIN"], ServerTls::StartTlsRequired);
    let sasl2 = s.sasl2.as_mut().unwrap();
    sasl2.carbons = carbons;
    sasl2.csi = csi;
    s.stream_management = Some(SmSettings::default());
    s
}

/// A client asking for carbons and an inactive start, with stream
/// management.
fn inline_client() -> ClientSettings {
    let mut c = alice("PLAIN");
    c.carbons = true;
    c.csi = Some(CsiState::Inactive);
    c.stream_management = Some(SmSettings::default());
    c
}

/// XEP-0386 section 3.2: carbons' `<enable/>` and CSI's `<inactive/>`
/// inside `<bind/>` beside stream management's `<enable/>`, when the
/// server lists them; both hosts are told, before `Ready`, and stream
/// management is still enabled inline.
#[test]
fn carbons_and_csi_are_enabled_inline_in_bind2() {
    let p = login(inline_client(), inline_server(true, true));
    assert!(p.client.is_ready() && p.server.is_ready());
    let down = String::from_utf8_lossy(&p.down_bytes);
    assert!(
        down.contains("<bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/><feature var='urn:xmpp:csi:0'/><feature var='urn:xmpp:sm:3'/></inline></bind>"),
        "{down}"
    );
    let up = String::from_utf8_lossy(&p.up_bytes);
    assert!(
        up.contains("<bind xmlns='urn:xmpp:bind:0'><tag>pair</tag><enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/><inactive xmlns='urn:xmpp:csi:0'/></bind>"),
        "{up}"
    );
    let c = client_bind2(&p).expect("the client reports what Bind 2 enabled");
    assert!(c.carbons);
    assert_eq!(c.csi, Some(CsiState::Inactive));
    assert_eq!(server_bind2(&p), Some(c));
    // Before Ready on both sides, with stream management on too.
    let ce = &p.client_events;
    let ready = position(ce, |e| matches!(e, ClientEvent::Ready { .. })).unwrap();
    assert!(position(ce, |e| matches!(e, ClientEvent::Bind2Enabled(_))).unwrap() < ready);
    assert!(ce
        .iter()
        .any(|e| matches!(e, ClientEvent::StreamManagementEnabled { .. })));
    let se = &p.server_events;
    let ready = position(se, |e| matches!(e, ServerEvent::Ready { .. })).unwrap();
    assert!(position(se, |e| matches!(e, ServerEvent::Bind2Enabled(_))).unwrap() < ready);
    // `<active/>` is reported as such.
    let mut c = inline_client();
    c.csi = Some(CsiState::Active);
    let p = login(c, inline_server(true, true));
    assert_eq!(server_bind2(&p).unwrap().csi, Some(CsiState::Active));
}

/// A server that does not list carbons gets no carbons request (nor CSI
/// when it does not list it); the client reports them off, and the
/// server's host hears nothing of them.
#[test]
fn what_the_server_does_not_list_is_not_asked_for() {
    // CSI listed, carbons not.
    let p = login(inline_client(), inline_server(false, true));
    assert!(p.client.is_ready());
    let up = String::from_utf8_lossy(&p.up_bytes);
    assert!(!up.contains("urn:xmpp:carbons:2"), "{up}");
    assert!(up.contains("<inactive xmlns='urn:xmpp:csi:0'/>"), "{up}");
    let c = client_bind2(&p).unwrap();
    assert!(!c.carbons);
    assert_eq!(c.csi, Some(CsiState::Inactive));
    assert_eq!(server_bind2(&p), Some(c));
    // Neither listed: nothing sent; the client says so, the server is
    // silent.
    let p = login(inline_client(), inline_server(false, false));
    assert!(p.client.is_ready());
    let up = String::from_utf8_lossy(&p.up_bytes);
    assert!(!up.contains("urn:xmpp:carbons:2") && !up.contains("urn:xmpp:csi:0"));
    assert!(client_bind2(&p).unwrap().is_empty());
    assert_eq!(server_bind2(&p), None);
    // RFC 6120 binding: no Bind 2, no report (the host enables carbons
    // the XEP-0280 way once ready).
    let mut c = inline_client();
    c.sasl2 = Sasl2Policy::Never;
    let p = login(c, inline_server(true, true));
    assert!(p.client.is_ready());
    assert_eq!(client_bind2(&p), None);
    assert_eq!(server_bind2(&p), None);
}

/// A client that asks for neither sends neither and reports nothing,
/// even when the server lists both.
#[test]
fn a_client_that_asks_for_nothing_enables_nothing() {
    let mut c = alice("PLAIN");
    c.stream_management = Some(SmSettings::default());
    let p = login(c, inline_server(true, true));
    assert!(p.client.is_ready());
    let up = String::from_utf8_lossy(&p.up_bytes);
    assert!(!up.contains("urn:xmpp:carbons:2") && !up.contains("urn:xmpp:csi:0"));
    assert_eq!(client_bind2(&p), None);
    assert_eq!(server_bind2(&p), None);
}

/// The server side against XEP-0386's example request (carbons, stream
/// management, `<inactive/>`): what it lists is reported, what it does
/// not list is ignored, and `<bound/>` answers stream management and,
/// as Prosody does, carbons with `<enabled/>` (CSI has no answer).
#[test]
fn the_server_reads_xep_0386_example_request() {
    let auth = format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>{PLAIN_ALICE}</initial-response><bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag><enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3'/><inactive xmlns='urn:xmpp:csi:0'/></bind></authenticate>"
    );
    let reported = |carbons, csi| {
        let mut s = inline_server(carbons, csi);
        s.tls = ServerTls::Direct;
        let (out, events) = raw_server(s, &[&auth]);
        assert!(events
            .iter()
            .any(|e| matches!(e, ServerEvent::Ready { .. })));
        let bound = &out[out.find("<bound").unwrap()..out.find("</bound>").unwrap()];
        assert!(bound.contains("<enabled xmlns='urn:xmpp:sm:3'"), "{bound}");
        // Carbons answered as Prosody does; CSI never.
        assert_eq!(
            bound.contains("<enabled xmlns='urn:xmpp:carbons:2'/>"),
            carbons,
            "{bound}"
        );
        assert!(!bound.contains("csi"), "{bound}");
        events.iter().find_map(|e| match e {
            ServerEvent::Bind2Enabled(f) => Some(*f),
            _ => None,
        })
    };
    let both = reported(true, true).unwrap();
    assert!(both.carbons);
    assert_eq!(both.csi, Some(CsiState::Inactive));
    let carbons_only = reported(true, false).unwrap();
    assert!(carbons_only.carbons && carbons_only.csi.is_none());
    assert_eq!(reported(false, false), None);
}

/// After a `<failure/>` the SASL2 client stops, as the RFC 6120 one does
/// (`src/client/mod.rs`: no mechanism fallback, no second try): one
/// `<authenticate/>` (one `<auth/>`), one error, for a wrong password
/// (never tried again with the same one) and for a mechanism the server
/// refuses (`invalid-mechanism`: here the client's mechanism name is
/// altered on the way, while another offered one would work). The only
/// retry on a SASL2 stream is FAST's explicit fallback to the password
/// (`tests/fast_sasl2_pair.rs`).
#[test]
fn a_failure_ends_the_login_once_as_with_rfc6120() {
    for policy in [Sasl2Policy::Require, Sasl2Policy::Never] {
        let opener = if policy == Sasl2Policy::Never {
            "<auth "
        } else {
            "<authenticate "
        };
        // A wrong password.
        let mut c = client_config(
            "alice@example.com",
            Credentials::password("not-pencil"),
            "SCRAM-SHA-256",
            TlsMode::StartTlsRequired,
        );
        c.policy.only = None;
        c.sasl2 = policy;
        let p = login(
            c,
            sasl2_server(&["SCRAM-SHA-256", "PLAIN"], ServerTls::StartTlsRequired),
        );
        let up = String::from_utf8_lossy(&p.up_bytes);
        assert_eq!(up.matches(opener).count(), 1, "{policy:?}: {up}");
        assert_eq!(
            refusal(&p),
            Some(SaslCondition::NotAuthorized),
            "{policy:?}"
        );
        assert_eq!(
            p.server_events
                .iter()
                .filter(|e| matches!(e, ServerEvent::AuthenticationFailed { .. }))
                .count(),
            1
        );
        // A refused mechanism, PLAIN still offered.
        let mut c = alice("SCRAM-SHA-256");
        c.policy.only = None;
        c.sasl2 = policy;
        let mut pair = Pair::with_alice(
            c,
            sasl2_server(&["SCRAM-SHA-256", "PLAIN"], ServerTls::StartTlsRequired),
            Some(exporter()),
        );
        pair.filter = Some(Box::new(|way, bytes| {
            let s = String::from_utf8(bytes).unwrap();
            if way == Way::Up {
                return vec![s
                    .replace("mechanism='SCRAM-SHA-256'", "mechanism='X-REFUSED'")
                    .into_bytes()];
            }
            vec![s.into_bytes()]
        }));
        pair.negotiate();
        let up = String::from_utf8_lossy(&pair.up_bytes);
        assert_eq!(up.matches(opener).count(), 1, "{policy:?}: {up}");
        assert!(!pair.client.is_ready());
        assert_eq!(
            refusal(&pair),
            Some(SaslCondition::InvalidMechanism),
            "{policy:?}"
        );
    }
}

/// The condition of the server's `<failure/>` the client failed with.
fn refusal(p: &Pair) -> Option<SaslCondition> {
    match p.client_error() {
        Some(ClientError::Refused(PeerRefusal::Authentication { condition, .. })) => *condition,
        _ => None,
    }
}
