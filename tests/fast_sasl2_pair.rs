//! FAST (XEP-0484) inside SASL2 (XEP-0388): our client against our
//! server, in memory, with a host that keeps the two token slots per
//! (user, user agent). A password login asks for a token, a later login
//! uses it (every `HT-*` variant the simulated TLS 1.2 / 1.3 channel
//! allows), the server rotates tokens, a stale token fails with
//! `credentials-expired` and the client forgets it, the password is used
//! instead of a token only when the policy says so, and a reconnect with
//! a token and inline resumption is one round trip after TLS.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use support::pair::{client_config, server_config, Pair, Store, TlsSim, Way, FAST_NOW};
use xmpp_sansio::client::{ClientError, ClientEvent, ClientSettings, Credentials, PeerRefusal};
use xmpp_sansio::client::{PolicyError, TlsMode};
use xmpp_sansio::fast::{FastRefusal, FastToken, TokenSlot};
use xmpp_sansio::sasl::channel_binding::{ChannelBinding, ChannelBindingType, TlsVersion};
use xmpp_sansio::sasl::ht::HtMechanism;
use xmpp_sansio::sasl::SaslCondition;
use xmpp_sansio::sasl2::{Sasl2Settings, UserAgent};
use xmpp_sansio::server::{ServerEvent, ServerSettings, ServerTls};
use xmpp_sansio::sm::SmSettings;
use xmpp_sansio::TlsInfo;

const UA: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";

fn tls(version: TlsVersion) -> TlsSim {
    let mut bindings = vec![
        ChannelBinding::new(ChannelBindingType::TlsServerEndPoint, vec![7; 32]),
        ChannelBinding::new(ChannelBindingType::TlsExporter, vec![9; 32]),
    ];
    if version == TlsVersion::Tls12 {
        bindings.push(ChannelBinding::new(
            ChannelBindingType::TlsUnique,
            b"finished-message".to_vec(),
        ));
    }
    TlsSim::same(TlsInfo {
        version,
        channel_bindings: bindings,
    })
}

/// alice, password `pencil`, SCRAM-SHA-256 for the password, asking for
/// tokens.
fn client() -> ClientSettings {
    let mut c = client_config(
        "alice@example.com",
        Credentials::password("pencil"),
        "SCRAM-SHA-256",
        TlsMode::StartTlsRequired,
    );
    c.user_agent = Some(UserAgent::new(UA));
    c.fast.request_token = true;
    c
}

/// SASL2 with Bind 2 and FAST offering `fast`.
fn server(fast: &[&str]) -> ServerSettings {
    let mut s = server_config(
        "example.com",
        &["SCRAM-SHA-256"],
        ServerTls::StartTlsRequired,
    );
    let mut sasl2 = Sasl2Settings::new();
    sasl2.fast = fast.iter().map(|m| m.to_string()).collect();
    s.sasl2 = Some(sasl2);
    s
}

fn tokens(p: &Pair) -> Vec<FastToken> {
    p.client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::FastToken(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn mechanism(p: &Pair) -> Option<String> {
    p.client_events.iter().find_map(|e| match e {
        ClientEvent::Authenticated { mechanism, .. } => Some(mechanism.clone()),
        _ => None,
    })
}

/// The slot the server's host saw used.
fn slot_used(p: &Pair) -> Option<TokenSlot> {
    p.server_events.iter().find_map(|e| match e {
        ServerEvent::Authenticated { security, .. } => security.fast_token,
        _ => None,
    })
}

fn authenticates(p: &Pair) -> usize {
    String::from_utf8_lossy(&p.up_bytes)
        .matches("<authenticate ")
        .count()
}

/// A connection with `store`, logging in with `token` when given.
fn connect(
    c: ClientSettings,
    s: ServerSettings,
    store: Store,
    sim: &TlsSim,
    token: Option<&FastToken>,
) -> Pair {
    let mut p = Pair::new(c, s, store, Some(sim.clone()));
    if let Some(t) = token {
        p.client.use_fast_token(t.clone(), FAST_NOW);
    }
    p.negotiate();
    p
}

fn alice_store() -> Store {
    Store::new(&[("alice", "pencil")])
}

/// Each `HT-*` variant: where the channel allows it, a password login
/// asks for a token bound to it and gets one; the next login uses it (no
/// password on the wire), the host promotes it from the new slot. Where
/// the channel does not (no `-UNIQ` on TLS 1.3), it is not offered and no
/// token is asked for.
#[test]
fn a_password_login_gets_a_token_that_logs_in_with_each_variant() {
    let mut logged_in = 0;
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let sim = tls(version);
        for m in HtMechanism::ALL {
            let name = m.name();
            let usable = m.usable_with(Some(&sim.server));
            let first = connect(client(), server(&[name]), alice_store(), &sim, None);
            assert!(first.client.is_ready(), "{name}: {:?}", first.client_events);
            assert_eq!(mechanism(&first).as_deref(), Some("SCRAM-SHA-256"));
            let up = String::from_utf8_lossy(&first.up_bytes).into_owned();
            let issued = tokens(&first);
            if !usable {
                assert!(issued.is_empty(), "{name} on {version:?}");
                assert!(!up.contains("request-token"), "{name} on {version:?}");
                continue;
            }
            assert!(
                up.contains(&format!(
                    "<request-token xmlns='urn:xmpp:fast:0' mechanism='{name}'/>"
                )),
                "{name}: {up}"
            );
            assert_eq!(issued.len(), 1, "{name}");
            let token = &issued[0];
            assert_eq!(token.mechanism, name);
            assert_eq!(first.client.fast_token(), Some(token));
            let slots = &first.store.fast[&("alice".to_owned(), Some(UA.to_owned()))];
            assert_eq!(slots.new.as_ref(), Some(token));
            // The token never shows in Debug.
            assert!(!format!("{token:?}").contains(token.token.expose()));

            let second = connect(
                client(),
                server(&[name]),
                first.store.clone(),
                &sim,
                Some(token),
            );
            assert!(
                second.client.is_ready(),
                "{name}: {:?}",
                second.client_events
            );
            assert!(second.server.is_ready(), "{name}");
            assert_eq!(mechanism(&second).as_deref(), Some(name));
            assert_eq!(slot_used(&second), Some(TokenSlot::New), "{name}");
            let up = String::from_utf8_lossy(&second.up_bytes).into_owned();
            assert!(
                up.contains(&format!("mechanism='{name}'"))
                    && up.contains("<fast xmlns='urn:xmpp:fast:0'/>"),
                "{up}"
            );
            assert!(!up.contains("request-token") && !up.contains("pencil"));
            // No rotation asked of this host: no new token; promoted.
            assert!(tokens(&second).is_empty());
            let slots = &second.store.fast[&("alice".to_owned(), Some(UA.to_owned()))];
            assert_eq!(
                (slots.current.as_ref(), slots.new.as_ref()),
                (Some(token), None)
            );
            logged_in += 1;
        }
    }
    // 12 variants on TLS 1.2 (tls-unique there), 9 on TLS 1.3.
    assert_eq!(logged_in, 21);
}

/// The server rotates: a token login gets a new token (bound to the same
/// mechanism), the host keeps the old one until the new one is used.
#[test]
fn rotation_gives_a_new_token_and_keeps_the_old_until_used() {
    let sim = tls(TlsVersion::Tls13);
    let m = "HT-SHA-256-EXPR";
    let first = connect(client(), server(&[m]), alice_store(), &sim, None);
    let old = tokens(&first).pop().expect("a token");
    let mut store = first.store.clone();
    store.fast_rotate = true;
    let second = connect(client(), server(&[m]), store, &sim, Some(&old));
    assert!(second.client.is_ready());
    let rotated = tokens(&second);
    assert_eq!(rotated.len(), 1);
    let new = &rotated[0];
    assert_eq!(new.mechanism, m);
    assert_ne!(new.token.expose(), old.token.expose());
    assert_eq!(second.client.fast_token(), Some(new));
    let key = ("alice".to_owned(), Some(UA.to_owned()));
    assert_eq!(second.store.fast[&key].current.as_ref(), Some(&old));
    assert_eq!(second.store.fast[&key].new.as_ref(), Some(new));
    // The client missed the new one: the old one still logs in.
    let mut store = second.store.clone();
    store.fast_rotate = false;
    let third = connect(client(), server(&[m]), store.clone(), &sim, Some(&old));
    assert!(third.client.is_ready());
    assert_eq!(slot_used(&third), Some(TokenSlot::Current));
    // The new one logs in, is promoted, and the old one is gone.
    let fourth = connect(client(), server(&[m]), store, &sim, Some(new));
    assert!(fourth.client.is_ready());
    assert_eq!(slot_used(&fourth), Some(TokenSlot::New));
    let fifth = connect(
        client(),
        server(&[m]),
        fourth.store.clone(),
        &sim,
        Some(&old),
    );
    assert!(!fifth.client.is_ready());
    assert_eq!(
        fifth.server_auth_failure(),
        Some(SaslCondition::CredentialsExpired)
    );
}

/// A token the server no longer has: `credentials-expired`; the client
/// forgets it (an event for the host) and does not try the password.
#[test]
fn a_stale_token_fails_and_is_discarded_without_a_password_login() {
    let sim = tls(TlsVersion::Tls13);
    let m = "HT-SHA-256-ENDP";
    let first = connect(client(), server(&[m]), alice_store(), &sim, None);
    let token = tokens(&first).pop().unwrap();
    // The host forgot it (a password change, say).
    let p = connect(client(), server(&[m]), alice_store(), &sim, Some(&token));
    assert!(!p.client.is_ready());
    assert_eq!(
        p.server_auth_failure(),
        Some(SaslCondition::CredentialsExpired)
    );
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::FastTokenDiscarded { mechanism } if mechanism == m
    )));
    assert_eq!(p.client.fast_token(), None);
    assert!(matches!(
        p.client_error(),
        Some(ClientError::Refused(PeerRefusal::Authentication {
            condition: Some(SaslCondition::CredentialsExpired),
            ..
        }))
    ));
    assert_eq!(authenticates(&p), 1);
    assert!(!String::from_utf8_lossy(&p.up_bytes).contains("SCRAM"));
}

/// With `fallback_to_password`, the refused token is followed by a
/// password login on the same stream, which asks for a new token.
#[test]
fn the_password_follows_a_refused_token_only_when_allowed() {
    let sim = tls(TlsVersion::Tls12);
    let m = "HT-SHA-512-UNIQ";
    let first = connect(client(), server(&[m]), alice_store(), &sim, None);
    let token = tokens(&first).pop().unwrap();
    let mut c = client();
    c.fast.fallback_to_password = true;
    // The host forgot the token (and counts on).
    let mut store = first.store.clone();
    store.fast.clear();
    let p = connect(c, server(&[m]), store, &sim, Some(&token));
    assert!(p.client.is_ready(), "{:?}", p.client_events);
    assert_eq!(authenticates(&p), 2);
    let mechs: Vec<_> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Authenticated { mechanism, .. } => Some(mechanism.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(mechs, ["SCRAM-SHA-256"]);
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::FastTokenDiscarded { .. })));
    let fresh = tokens(&p);
    assert_eq!(fresh.len(), 1);
    assert_ne!(fresh[0].token.expose(), token.token.expose());
}

/// A token the client cannot use on this stream (not offered, the
/// channel binding missing, expired by the host's clock): nothing is
/// sent unless the policy allows the password.
#[test]
fn a_token_unusable_here_stops_before_sending_unless_fallback() {
    let sim = tls(TlsVersion::Tls13);
    let token = FastToken::new(
        "HT-SHA-256-UNIQ",
        "some-token",
        xmpp_sansio::fast::Expiry::from_unix(FAST_NOW + 60).unwrap(),
    );
    let p = connect(
        client(),
        server(&["HT-SHA-256-NONE"]),
        alice_store(),
        &sim,
        Some(&token),
    );
    assert_eq!(
        p.client_error(),
        Some(&ClientError::Policy(PolicyError::FastToken(
            FastRefusal::NotOffered
        )))
    );
    assert_eq!(authenticates(&p), 0);
    let ok = FastToken::new("HT-SHA-256-NONE", "some-token", token.expiry.clone());
    let mut late = Pair::new(
        client(),
        server(&["HT-SHA-256-NONE"]),
        alice_store(),
        Some(sim.clone()),
    );
    late.client.use_fast_token(ok, FAST_NOW + 61);
    late.negotiate();
    assert_eq!(
        late.client_error(),
        Some(&ClientError::Policy(PolicyError::FastToken(
            FastRefusal::Expired
        )))
    );
    assert_eq!(authenticates(&late), 0);
    let mut c = client();
    c.fast.fallback_to_password = true;
    let p = connect(
        c,
        server(&["HT-SHA-256-NONE"]),
        alice_store(),
        &sim,
        Some(&token),
    );
    assert!(p.client.is_ready());
    assert_eq!(mechanism(&p).as_deref(), Some("SCRAM-SHA-256"));
}

/// A malformed `<fast/>` in `<authenticate/>` is `malformed-request`.
#[test]
fn a_bad_fast_element_is_malformed_request() {
    let sim = tls(TlsVersion::Tls13);
    let m = "HT-SHA-256-EXPR";
    let first = connect(client(), server(&[m]), alice_store(), &sim, None);
    let token = tokens(&first).pop().unwrap();
    let mut p = Pair::new(
        client(),
        server(&[m]),
        first.store.clone(),
        Some(sim.clone()),
    );
    p.client.use_fast_token(token, FAST_NOW);
    p.filter = Some(Box::new(|way, bytes| {
        let s = String::from_utf8_lossy(&bytes).into_owned();
        vec![match way {
            Way::Up => s
                .replace(
                    "<fast xmlns='urn:xmpp:fast:0'/>",
                    "<fast xmlns='urn:xmpp:fast:0' count='x'/>",
                )
                .into_bytes(),
            Way::Down => bytes,
        }]
    }));
    p.negotiate();
    assert!(!p.client.is_ready());
    assert_eq!(
        p.server_auth_failure(),
        Some(SaslCondition::MalformedRequest)
    );
}

/// A reconnect with the token and inline resumption: the `<authenticate/>`
/// carries the token's proof and `<resume/>`, and `<success/>` carries
/// `<resumed/>`: one round trip after TLS (the header round trip apart,
/// which every stream has), where a password login with SCRAM takes two.
#[test]
fn fast_and_inline_resume_is_one_round_trip_after_tls() {
    let sim = tls(TlsVersion::Tls13);
    let m = "HT-SHA-256-EXPR";
    let mut c = client();
    c.stream_management = Some(SmSettings::new());
    let mut s = server(&[m]);
    let mut sm = SmSettings::server();
    sm.max_resume = Some(std::time::Duration::from_secs(300));
    s.stream_management = Some(sm);
    let mut first = Pair::new(c.clone(), s.clone(), alice_store(), Some(sim.clone()));
    first.answer_resume = true;
    first.negotiate();
    assert!(first.client.is_ready());
    let token = tokens(&first).pop().unwrap();
    let now = first.now;
    first.client.connection_lost(now);
    first.server.connection_lost(now);
    while first.step() {}
    let state = first.client.sm_state().expect("a session to resume");
    assert_eq!(first.detached.len(), 1, "{:?}", first.server_events);

    let mut second = Pair::new(c, s, first.store.clone(), Some(sim.clone()));
    second.answer_resume = true;
    second.detached = std::mem::take(&mut first.detached);
    second.client = second.client.resume_session(state);
    second.client.use_fast_token(token, FAST_NOW);
    let flights = Rc::new(RefCell::new(Vec::<String>::new()));
    let f = flights.clone();
    second.filter = Some(Box::new(move |way, bytes| {
        if way == Way::Up {
            f.borrow_mut()
                .push(String::from_utf8_lossy(&bytes).into_owned());
        }
        vec![bytes]
    }));
    second.negotiate();
    assert!(second.client.is_ready(), "{:?}", second.client_events);
    assert!(second
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Resumed { .. })));
    assert_eq!(mechanism(&second).as_deref(), Some(m));
    let flights = flights.borrow();
    // Before TLS: header, <starttls/>. After: the header, then one
    // flight that logs in and resumes.
    let after_tls = &flights[2..];
    assert!(after_tls[0].contains("<stream:stream"), "{flights:?}");
    let login = &after_tls[1];
    assert!(
        login.contains(&format!("mechanism='{m}'"))
            && login.contains("<resume xmlns='urn:xmpp:sm:3' ")
            && login.contains("<fast xmlns='urn:xmpp:fast:0'/>"),
        "{login}"
    );
    // Nothing else was needed to log in: the next flight (if any) is
    // the session's own (an ack), no SASL2.
    assert!(
        after_tls[2..]
            .iter()
            .all(|w| !w.contains("urn:xmpp:sasl:2")),
        "{flights:?}"
    );
    let logged_in_after = flights.iter().position(|w| w.contains("<resume ")).unwrap();
    assert_eq!(
        logged_in_after, 3,
        "one round trip after the post-TLS header"
    );
}

/// `FastPolicy::only`: asked for by name, the token is for that variant
/// though the server offers stronger ones; a token of another variant is
/// not used; a variant the server does not offer, or the channel cannot
/// carry (`-UNIQ` on TLS 1.3), stops the login before anything is sent.
#[test]
fn a_named_variant_or_an_error_before_sending() {
    let all: Vec<&str> = HtMechanism::ALL.iter().map(|m| m.name()).collect();
    let named = |names: &[&str]| {
        let mut c = client();
        c.fast.only = Some(names.iter().map(|n| n.to_string()).collect());
        c
    };
    let mut got = 0;
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let sim = tls(version);
        for m in HtMechanism::ALL {
            let name = m.name();
            let p = connect(named(&[name]), server(&all), alice_store(), &sim, None);
            if !m.usable_with(Some(&sim.client)) {
                assert!(
                    matches!(
                        p.client_error(),
                        Some(ClientError::Policy(PolicyError::FastRequest(e)))
                            if e.refused == [(name.to_owned(), FastRefusal::NeedsChannelBinding)]
                    ),
                    "{name} on {version:?}: {:?}",
                    p.client_events
                );
                assert_eq!(authenticates(&p), 0);
                continue;
            }
            assert!(p.client.is_ready(), "{name}: {:?}", p.client_events);
            let issued = tokens(&p);
            assert_eq!(issued.len(), 1, "{name}");
            assert_eq!(issued[0].mechanism, name);
            let again = connect(
                named(&[name]),
                server(&all),
                p.store.clone(),
                &sim,
                Some(&issued[0]),
            );
            assert_eq!(mechanism(&again).as_deref(), Some(name));
            got += 1;
        }
    }
    assert_eq!(got, 21);

    let sim = tls(TlsVersion::Tls13);
    let prosody = ["HT-SHA-256-EXPR", "HT-SHA-256-NONE"];
    // A token of another variant: not used, nothing sent.
    let first = connect(client(), server(&prosody), alice_store(), &sim, None);
    let expr = tokens(&first).pop().unwrap();
    assert_eq!(expr.mechanism, "HT-SHA-256-EXPR");
    let p = connect(
        named(&["HT-SHA-256-NONE"]),
        server(&prosody),
        first.store.clone(),
        &sim,
        Some(&expr),
    );
    assert_eq!(
        p.client_error(),
        Some(&ClientError::Policy(PolicyError::FastToken(
            FastRefusal::NotAllowed
        )))
    );
    assert_eq!(authenticates(&p), 0);
    // Not offered: the error names it and the offer; no password login.
    let p = connect(
        named(&["HT-SHA-256-ENDP"]),
        server(&prosody),
        alice_store(),
        &sim,
        None,
    );
    let Some(ClientError::Policy(PolicyError::FastRequest(e))) = p.client_error() else {
        panic!("{:?}", p.client_events)
    };
    assert_eq!(
        e.refused,
        [("HT-SHA-256-ENDP".to_owned(), FastRefusal::NotOffered)]
    );
    assert_eq!(e.offered, prosody);
    assert_eq!(authenticates(&p), 0);
    assert!(!p.client.is_ready());
}

fn counted(p: &Pair) -> Vec<FastToken> {
    p.client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::FastTokenCounted(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

fn alice_slots(p: &Pair) -> xmpp_sansio::fast::TokenSlots {
    p.store
        .fast
        .get(&("alice".to_owned(), Some(UA.to_owned())))
        .cloned()
        .unwrap_or_default()
}

/// XEP-0484 section 3.5: a login with the token and
/// `<fast invalidate='true'/>` succeeds, the server's host is told to drop
/// the token (and issues none, though it would rotate), the client
/// reports the token gone; the same token then fails to log in.
#[test]
fn an_invalidating_login_succeeds_and_the_token_is_refused_after() {
    let sim = tls(TlsVersion::Tls13);
    let m = "HT-SHA-256-EXPR";
    let first = connect(client(), server(&[m]), alice_store(), &sim, None);
    let token = tokens(&first).pop().expect("a token");
    let mut store = first.store.clone();
    // A rotating host: an invalidating login still gets no new token.
    store.fast_rotate = true;
    let mut p = Pair::new(client(), server(&[m]), store, Some(sim.clone()));
    p.client.use_fast_token(token.clone(), FAST_NOW);
    p.client.invalidate_fast_token();
    p.negotiate();
    assert!(p.client.is_ready(), "{:?}", p.client_events);
    assert_eq!(mechanism(&p).as_deref(), Some(m));
    let up = String::from_utf8_lossy(&p.up_bytes).into_owned();
    assert!(
        up.contains("<fast xmlns='urn:xmpp:fast:0' invalidate='true'/>"),
        "{up}"
    );
    assert!(p.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::FastTokenInvalidated { used: TokenSlot::New, user_agent_id: Some(u), .. }
            if u == UA
    )));
    assert!(!p
        .server_events
        .iter()
        .any(|e| matches!(e, ServerEvent::IssueFastToken { .. })));
    assert!(tokens(&p).is_empty());
    assert!(!String::from_utf8_lossy(&p.down_bytes).contains("<token "));
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        ClientEvent::FastTokenInvalidated { mechanism } if mechanism == m
    )));
    assert_eq!(p.client.fast_token(), None);
    assert_eq!(alice_slots(&p), Default::default());

    let again = connect(client(), server(&[m]), p.store.clone(), &sim, Some(&token));
    assert!(!again.client.is_ready());
    assert_eq!(
        again.server_auth_failure(),
        Some(SaslCondition::CredentialsExpired)
    );
}

/// XEP-0484 section 3.4: with `send_count`, each token login counts up
/// (1, 2...) and reports the counted token before it goes; the server's
/// host keeps the count; a login that replays a count already seen is
/// refused (`not-authorized`) and the client drops the token; a login
/// with a higher count goes on working.
#[test]
fn a_replayed_count_is_refused_and_a_higher_one_accepted() {
    let sim = tls(TlsVersion::Tls13);
    let m = "HT-SHA-256-ENDP";
    let mut c = client();
    c.fast.send_count = true;
    let first = connect(c.clone(), server(&[m]), alice_store(), &sim, None);
    let token = tokens(&first).pop().expect("a token");
    assert_eq!(token.count, 0);
    assert!(counted(&first).is_empty(), "no count on a password login");

    let second = connect(
        c.clone(),
        server(&[m]),
        first.store.clone(),
        &sim,
        Some(&token),
    );
    assert!(second.client.is_ready(), "{:?}", second.client_events);
    let up = String::from_utf8_lossy(&second.up_bytes).into_owned();
    assert!(
        up.contains("<fast xmlns='urn:xmpp:fast:0' count='1'/>"),
        "{up}"
    );
    let one = counted(&second);
    assert_eq!(one.iter().map(|t| t.count).collect::<Vec<_>>(), [1]);
    assert_eq!(one[0].token.expose(), token.token.expose());
    assert_eq!(second.client.fast_token().map(|t| t.count), Some(1));
    assert!(second.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::IssueFastToken {
            used: Some(TokenSlot::New),
            count: Some(1),
            ..
        }
    )));
    assert_eq!(alice_slots(&second).current.map(|t| t.count), Some(1));

    // The host lost the counted copy: the stale one sends count 1 again.
    let replay = connect(
        c.clone(),
        server(&[m]),
        second.store.clone(),
        &sim,
        Some(&token),
    );
    assert!(!replay.client.is_ready());
    assert_eq!(
        replay.server_auth_failure(),
        Some(SaslCondition::NotAuthorized)
    );
    assert!(String::from_utf8_lossy(&replay.up_bytes).contains("count='1'"));
    assert!(replay
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::FastTokenDiscarded { .. })));
    // The count seen did not move.
    assert_eq!(alice_slots(&replay).current.map(|t| t.count), Some(1));

    // The counted copy sends 2: accepted, and kept.
    let third = connect(c, server(&[m]), replay.store.clone(), &sim, Some(&one[0]));
    assert!(third.client.is_ready(), "{:?}", third.client_events);
    assert!(String::from_utf8_lossy(&third.up_bytes).contains("count='2'"));
    assert_eq!(alice_slots(&third).current.map(|t| t.count), Some(2));
}

/// `count` stays optional (xmpp.js sends none): after counted logins, a
/// login without a count still works and leaves the count seen alone.
#[test]
fn a_login_without_count_is_accepted_after_counted_ones() {
    let sim = tls(TlsVersion::Tls13);
    let m = "HT-SHA-256-NONE";
    let mut counting = client();
    counting.fast.send_count = true;
    let first = connect(counting.clone(), server(&[m]), alice_store(), &sim, None);
    let token = tokens(&first).pop().expect("a token");
    let second = connect(
        counting,
        server(&[m]),
        first.store.clone(),
        &sim,
        Some(&token),
    );
    assert!(second.client.is_ready());
    assert_eq!(alice_slots(&second).current.map(|t| t.count), Some(1));
    let plain = connect(
        client(),
        server(&[m]),
        second.store.clone(),
        &sim,
        Some(&token),
    );
    assert!(plain.client.is_ready(), "{:?}", plain.client_events);
    let up = String::from_utf8_lossy(&plain.up_bytes).into_owned();
    assert!(up.contains("<fast xmlns='urn:xmpp:fast:0'/>"), "{up}");
    assert!(counted(&plain).is_empty());
    assert!(plain.server_events.iter().any(|e| matches!(
        e,
        ServerEvent::IssueFastToken {
            used: Some(TokenSlot::Current),
            count: None,
            ..
        }
    )));
    assert_eq!(alice_slots(&plain).current.map(|t| t.count), Some(1));
}
