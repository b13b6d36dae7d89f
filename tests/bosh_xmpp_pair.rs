//! `Client` over BOSH against `Server` over BOSH (XEP-0206), through the
//! two BOSH machines, in memory (`tests/support/bosh_net.rs`): the role
//! machines unchanged, joined to `BoshClient` and `BoshManager` by
//! `BoshXmppClient` and `BoshXmppServer`. SCRAM, PLAIN, a wrong password,
//! a message each way, the client's terminate, the server's stream error,
//! and the same login over a network that loses requests and responses.

mod support;

use std::time::Duration;

use minidom::Element;
use support::bosh_net::BoshNet;
use support::pair::{alice_config, server_config, Store};
use xmpp_sansio::bosh::{BoshClientError, BoshXmppServerEvent, TerminateReason};
use xmpp_sansio::client::{ClientError, ClientEvent, PeerRefusal, TlsMode};
use xmpp_sansio::sasl::SaslCondition;
use xmpp_sansio::server::{ServerEvent, ServerTls};
use xmpp_sansio::stream_error::{StreamError, StreamErrorCondition};

fn net(mechanism: &str, password: &str) -> BoshNet {
    let mut c = alice_config(mechanism, TlsMode::Direct);
    c.credentials = xmpp_sansio::client::Credentials::password(password);
    let s = server_config(
        "example.com",
        &["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"],
        ServerTls::Direct,
    );
    BoshNet::new(c, s, Store::new(&[("alice", "pencil")]))
}

fn message(to: &str, body: &str) -> Element {
    format!("<message xmlns='jabber:client' to='{to}' type='chat'><body>{body}</body></message>")
        .parse()
        .unwrap()
}

fn body_of(el: &Element) -> String {
    el.get_child("body", "jabber:client")
        .map(|b| b.text())
        .unwrap_or_default()
}

/// Logs in, a message each way, the client closes: both ends clean.
fn login_message_close(mechanism: &str) -> BoshNet {
    let mut n = net(mechanism, "pencil");
    n.run();
    assert!(
        n.client.is_ready(),
        "{mechanism}: {:?} {:?}",
        n.client.error(),
        n.client.bosh_error()
    );
    let sid = n.sid();
    assert!(n.cm.server(&sid).unwrap().is_ready());
    let jid = n.client.client().jid().unwrap().to_string();
    assert!(jid.starts_with("alice@example.com/"), "{jid}");
    assert!(n.client_events.contains(&ClientEvent::Ready {
        jid: n.client.client().jid().unwrap().clone()
    }));

    n.client
        .send(n.now, &message("bob@example.com", "up"))
        .unwrap();
    n.run();
    let up: Vec<&Element> = n
        .server_session_events()
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Stanza(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(up.len(), 1);
    assert_eq!(body_of(up[0]), "up");
    assert_eq!(
        up[0].attr("from"),
        Some(jid.as_str()),
        "stamped by the server"
    );

    n.cm.send(n.now, &sid, &message(&jid, "down")).unwrap();
    n.run();
    let down: Vec<&Element> = n
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Stanza(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(down.len(), 1);
    assert_eq!(body_of(down[0]), "down");

    n.client.close(n.now);
    n.run();
    assert!(n.client.is_closed());
    assert_eq!(n.client.error(), None);
    assert_eq!(n.client.bosh_error(), None);
    assert!(n.client.bosh().is_closed());
    assert_eq!(n.client_events.last(), Some(&ClientEvent::Closed));
    assert_eq!(n.cm.session_count(), 0);
    assert!(n.server_events.contains(&BoshXmppServerEvent::Ended {
        sid: sid.clone(),
        reason: TerminateReason::Client
    }));
    assert!(n.server_session_events().contains(&&ServerEvent::Closed));
    assert!(!n
        .server_session_events()
        .iter()
        .any(|e| matches!(e, ServerEvent::Error(_))));
    n
}

#[test]
fn scram_sha_256_login_message_each_way_terminate() {
    let n = login_message_close("SCRAM-SHA-256");
    // Creation, SASL (3), restart, bind, the message, the terminate, and
    // the empty polls in between: a handful of requests, not hundreds.
    assert!(n.requests < 20, "{} requests", n.requests);
}

#[test]
fn scram_sha_1_login_message_each_way_terminate() {
    login_message_close("SCRAM-SHA-1");
}

#[test]
fn plain_login_message_each_way_terminate() {
    login_message_close("PLAIN");
}

#[test]
fn the_stream_id_is_the_sessions_authid() {
    let mut n = net("PLAIN", "pencil");
    n.run();
    let authid = n.client.bosh().params().unwrap().authid.clone();
    assert!(authid.as_deref().is_some_and(|a| !a.is_empty()));
}

#[test]
fn a_wrong_password_fails_with_not_authorized_on_both_ends() {
    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let mut n = net(mechanism, "wrong");
        n.run();
        assert!(!n.client.is_ready());
        match n.client.error() {
            Some(ClientError::Refused(PeerRefusal::Authentication { condition, .. })) => {
                assert_eq!(
                    *condition,
                    Some(SaslCondition::NotAuthorized),
                    "{mechanism}"
                )
            }
            other => panic!("{mechanism}: {other:?}"),
        }
        assert!(n.server_session_events().iter().any(|e| matches!(
            e,
            ServerEvent::AuthenticationFailed {
                condition: SaslCondition::NotAuthorized,
                ..
            }
        )));
        // The client closed after the failure: the BOSH session ends.
        assert!(n.client.bosh().is_closed(), "{mechanism}");
        assert_eq!(n.cm.session_count(), 0, "{mechanism}");
    }
}

#[test]
fn a_server_stream_error_reaches_the_client_as_one() {
    let mut n = net("PLAIN", "pencil");
    n.run();
    let sid = n.sid();
    n.cm.close_with_error(
        n.now,
        &sid,
        StreamError::new(StreamErrorCondition::SystemShutdown),
    )
    .unwrap();
    n.run();
    match n.client.error() {
        Some(ClientError::PeerStreamError(e)) => {
            assert_eq!(e.condition, StreamErrorCondition::SystemShutdown)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        n.client.bosh_error(),
        Some(BoshClientError::Terminal {
            stream_error: Some(_),
            ..
        })
    ));
    assert!(n.client.is_closed());
    assert_eq!(n.cm.session_count(), 0);
}

#[test]
fn a_role_machine_without_bosh_framing_is_refused() {
    use std::sync::Arc;
    use xmpp_sansio::bosh::{BoshClientConfig, BoshManagerConfig, BoshXmppClient, BoshXmppServer};
    use xmpp_sansio::client::Client;
    use xmpp_sansio::{DeterministicRandom, Framing};
    let now = std::time::Instant::now();
    let c = alice_config("PLAIN", TlsMode::None).build().unwrap();
    let client = Client::with_random(Arc::new(c), Box::new(DeterministicRandom::new(1)), now);
    let e = BoshXmppClient::new(
        client,
        BoshClientConfig::new("example.com"),
        &mut DeterministicRandom::new(2),
        now,
    )
    .unwrap_err();
    assert_eq!(e.0, Framing::Tcp);
    let s = server_config("example.com", &["PLAIN"], ServerTls::None)
        .build()
        .unwrap();
    let e = BoshXmppServer::new(
        Arc::new(s),
        BoshManagerConfig::default(),
        Box::new(DeterministicRandom::new(3)),
        Box::new(|| Box::new(DeterministicRandom::new(4))),
    )
    .unwrap_err();
    assert_eq!(e.0, Framing::Tcp);
}

#[test]
fn an_idle_session_keeps_polling_and_a_held_request_comes_back_at_wait() {
    let mut n = net("PLAIN", "pencil");
    n.run();
    assert!(n.client.is_ready());
    let before = n.responses;
    // The manager answers the held poll empty at `wait` (60 s); the
    // client polls again; the session survives.
    for _ in 0..3 {
        n.advance(Duration::from_secs(61));
    }
    assert!(n.responses >= before + 3);
    assert!(n.client.is_ready());
    assert_eq!(n.cm.session_count(), 1);
}

/// A deterministic lossy network: every `k`-th request and every `m`-th
/// response is lost (the client hears of it as a failed HTTP request and
/// sends the same `rid` again); SCRAM, a message each way, terminate.
#[test]
fn the_same_login_over_a_lossy_network() {
    for (k, m) in [(3usize, 4usize), (2, 5), (5, 2)] {
        let mut n = net("SCRAM-SHA-256", "pencil");
        let (mut reqs, mut resps) = (0usize, 0usize);
        n.loss = Some(Box::new(move |request| {
            if request {
                reqs += 1;
                reqs % k == 0
            } else {
                resps += 1;
                resps % m == 0
            }
        }));
        n.run();
        assert!(
            n.client.is_ready(),
            "k={k} m={m}: {:?} {:?}",
            n.client.error(),
            n.client.bosh_error()
        );
        let sid = n.sid();
        let jid = n.client.client().jid().unwrap().to_string();
        for i in 0..5 {
            n.client
                .send(n.now, &message("bob@example.com", &format!("up{i}")))
                .unwrap();
            n.cm.send(n.now, &sid, &message(&jid, &format!("down{i}")))
                .unwrap();
            n.run();
        }
        let up: Vec<String> = n
            .server_session_events()
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::Stanza(s) => Some(body_of(s)),
                _ => None,
            })
            .collect();
        let down: Vec<String> = n
            .client_events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Stanza(s) => Some(body_of(s)),
                _ => None,
            })
            .collect();
        let want = |p: &str| (0..5).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        assert_eq!(up, want("up"), "k={k} m={m}: each once, in order");
        assert_eq!(down, want("down"), "k={k} m={m}: each once, in order");
        n.client.close(n.now);
        n.run();
        assert!(n.client.is_closed(), "k={k} m={m}");
        assert_eq!(n.client.error(), None, "k={k} m={m}");
        assert_eq!(n.cm.session_count(), 0, "k={k} m={m}");
        assert!(n.requests > n.responses, "k={k} m={m}: something was lost");
    }
}

/// More than the BOSH client's queue takes (1 MiB) sent at once: the
/// rest waits in the client (`output_congested` says so) and goes as
/// requests drain the queue; the server gets every stanza once, in order.
/// (A stalled message once made the adapter loop forever.)
#[test]
fn a_burst_beyond_the_bosh_queue_waits_and_arrives_in_order() {
    let mut n = net("PLAIN", "pencil");
    n.run();
    let filler = "x".repeat(1000);
    for i in 0..1500 {
        n.client
            .send(n.now, &message("bob@example.com", &format!("{i} {filler}")))
            .unwrap();
    }
    assert!(n.client.output_congested());
    n.run();
    assert!(!n.client.output_congested());
    let up: Vec<String> = n
        .server_session_events()
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Stanza(s) => Some(body_of(s)),
            _ => None,
        })
        .collect();
    assert_eq!(up.len(), 1500);
    for (i, b) in up.iter().enumerate() {
        assert!(b.starts_with(&format!("{i} ")), "{i}");
    }
}

/// The same the other way: the server's output beyond the manager's
/// queue for the session waits in the server and follows as the client
/// polls.
#[test]
fn a_server_burst_beyond_the_manager_queue_arrives_in_order() {
    let mut n = net("PLAIN", "pencil");
    n.run();
    let sid = n.sid();
    let jid = n.client.client().jid().unwrap().to_string();
    let filler = "y".repeat(1000);
    for i in 0..1500 {
        n.cm.send(n.now, &sid, &message(&jid, &format!("{i} {filler}")))
            .unwrap();
    }
    n.run();
    let down: Vec<String> = n
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Stanza(s) => Some(body_of(s)),
            _ => None,
        })
        .collect();
    assert_eq!(down.len(), 1500);
    for (i, b) in down.iter().enumerate() {
        assert!(b.starts_with(&format!("{i} ")), "{i}");
    }
}

/// The server's redirect (`Server::redirect`) over BOSH is the session's
/// terminate with `condition='see-other-uri'` and the URI (XEP-0124
/// section 17.3): the BOSH client says where to go, and the role machine
/// gets it as RFC 7395's redirect.
#[test]
fn the_servers_redirect_terminates_with_see_other_uri() {
    let mut n = net("PLAIN", "pencil");
    n.run();
    assert!(n.client.client().is_ready());
    let sid = n.sid();
    n.cm.redirect(n.now, &sid, "https://cm2.example.com/http-bind")
        .unwrap();
    n.run();
    match n.client.bosh_error() {
        Some(BoshClientError::SeeOtherUri(uri)) => {
            assert_eq!(uri, "https://cm2.example.com/http-bind")
        }
        other => panic!("{other:?}"),
    }
    assert!(n.client.is_closed());
    assert_eq!(n.cm.session_count(), 0);
}

/// Stream management over BOSH: enabled after bind on both sides, the
/// client's stanzas acknowledged (`<r/>` and `<a/>` ride in bodies like
/// any element), and the server's too; nothing handed back.
#[test]
fn stream_management_over_bosh_acknowledges_both_ways() {
    let mut sm = xmpp_sansio::sm::SmSettings::new();
    sm.request_every = Some(2);
    let mut c = alice_config("PLAIN", TlsMode::Direct);
    c.stream_management = Some(sm.clone());
    let mut s = server_config("example.com", &["PLAIN"], ServerTls::Direct);
    s.stream_management = Some(sm);
    let mut n = BoshNet::new(c, s, Store::new(&[("alice", "pencil")]));
    n.run();
    assert!(n.client.is_ready(), "{:?}", n.client.error());
    assert!(n
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::StreamManagementEnabled { id: Some(_), .. })));
    for i in 0..4 {
        n.client
            .send(n.now, &message("bob@example.com", &format!("up {i}")))
            .unwrap();
    }
    let sid = n.sid();
    let jid = n.client.client().jid().unwrap().to_string();
    for i in 0..4 {
        let now = n.now;
        n.cm.send(now, &sid, &message(&jid, &format!("down {i}")))
            .unwrap();
    }
    n.run();
    let acked: Vec<String> = n
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Acked(v) => Some(v.iter().map(|s| body_of(&s.to_element().unwrap()))),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(acked, ["up 0", "up 1", "up 2", "up 3"]);
    let server_acked: Vec<String> = n
        .server_session_events()
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Acked(v) => Some(v.iter().map(|s| body_of(&s.to_element().unwrap()))),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(server_acked, ["down 0", "down 1", "down 2", "down 3"]);
    assert!(!n
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Undelivered(_))));
}
