//! `BoshClient` and `BoshManager` against each other over a perfect
//! network: the XMPP exchange of XEP-0206 section 5 (features, SASL,
//! restart, new features, a message each way), a pause, and the client's
//! termination with its last presence; both ends must end cleanly.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use minidom::Element;
use xmpp_sansio::bosh::{
    BoshClient, BoshClientConfig, BoshClientEvent, BoshManager, BoshManagerConfig, BoshUsageError,
    ManagerEvent, Reply, RequestHandle, TerminateReason,
};
use xmpp_sansio::DeterministicRandom;

const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const STREAM: &str = "http://etherx.jabber.org/streams";
const CLIENT: &str = "jabber:client";

struct Pair {
    client: BoshClient,
    cm: BoshManager,
    now: Instant,
    held: HashMap<RequestHandle, u64>,
    client_events: Vec<BoshClientEvent>,
    cm_events: Vec<ManagerEvent>,
}

impl Pair {
    /// Moves requests and responses until both sides are idle.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            while let Some(req) = self.client.poll_request(self.now) {
                moved = true;
                match self.cm.handle_request(self.now, &req.body) {
                    Reply::Immediate(b) => {
                        self.client.handle_response(self.now, req.rid, &b).unwrap()
                    }
                    Reply::Held(h) => {
                        self.held.insert(h, req.rid);
                    }
                    Reply::Refused { error, .. } => panic!("{error}"),
                }
            }
            while let Some((h, b)) = self.cm.poll_response() {
                moved = true;
                let rid = self.held.remove(&h).expect("held");
                self.client.handle_response(self.now, rid, &b).unwrap();
            }
            self.cm_events
                .extend(std::iter::from_fn(|| self.cm.poll_event()));
            self.client_events
                .extend(std::iter::from_fn(|| self.client.poll_event()));
            if !moved {
                return;
            }
        }
    }

    fn sid(&self) -> String {
        self.cm_events
            .iter()
            .find_map(|e| match e {
                ManagerEvent::SessionCreated { sid, .. } => Some(sid.clone()),
                _ => None,
            })
            .expect("a session")
    }
}

fn features(child: Element) -> Element {
    Element::builder("features", STREAM).append(child).build()
}

#[test]
fn a_whole_session_between_both_ends() {
    let now = Instant::now();
    let mut cc = BoshClientConfig::new("example.com");
    cc.lang = Some("en".into());
    let mut p = Pair {
        client: BoshClient::new(cc, &mut DeterministicRandom::new(1), now),
        cm: BoshManager::new(
            BoshManagerConfig::default(),
            Box::new(DeterministicRandom::new(2)),
        ),
        now,
        held: HashMap::new(),
        client_events: Vec::new(),
        cm_events: Vec::new(),
    };
    p.run();
    let sid = p.sid();
    assert!(matches!(
        &p.cm_events[0],
        ManagerEvent::SessionCreated { to: Some(to), lang: Some(l), version: Some(v), .. }
            if to == "example.com" && l == "en" && v == "1.0"
    ));
    let mechanisms = Element::builder("mechanisms", SASL)
        .append(Element::builder("mechanism", SASL).append("PLAIN").build())
        .build();
    p.cm.send(p.now, &sid, &features(mechanisms.clone()))
        .unwrap();
    p.run();
    assert!(matches!(&p.client_events[0], BoshClientEvent::SessionCreated(s) if s.sid == sid));
    assert_eq!(
        p.client_events[1],
        BoshClientEvent::Features(features(mechanisms))
    );

    // SASL: <auth/> up, <success/> down.
    let auth = Element::builder("auth", SASL)
        .attr("mechanism".try_into().unwrap(), "PLAIN")
        .append("AGp1bGlldAByMG0zMA==")
        .build();
    p.client.send(&auth).unwrap();
    p.run();
    assert!(p.cm_events.contains(&ManagerEvent::Payload {
        sid: sid.clone(),
        element: auth
    }));
    p.cm.send(p.now, &sid, &Element::bare("success", SASL))
        .unwrap();
    p.run();
    assert_eq!(
        p.client_events.last(),
        Some(&BoshClientEvent::Payload(Element::bare("success", SASL)))
    );

    // Restart, then the new features.
    p.client.restart().unwrap();
    p.run();
    assert_eq!(
        p.cm_events.last(),
        Some(&ManagerEvent::Restart { sid: sid.clone() })
    );
    let bind = Element::bare("bind", "urn:ietf:params:xml:ns:xmpp-bind");
    p.cm.send(p.now, &sid, &features(bind.clone())).unwrap();
    p.run();
    assert_eq!(
        p.client_events.last(),
        Some(&BoshClientEvent::Features(features(bind)))
    );

    // A message each way.
    let up = Element::builder("message", CLIENT)
        .append(Element::builder("body", CLIENT).append("up").build())
        .build();
    let down = Element::builder("message", CLIENT)
        .append(Element::builder("body", CLIENT).append("down").build())
        .build();
    p.client.send(&up).unwrap();
    p.cm.send(p.now, &sid, &down).unwrap();
    p.run();
    assert!(p.cm_events.contains(&ManagerEvent::Payload {
        sid: sid.clone(),
        element: up
    }));
    assert!(p.client_events.contains(&BoshClientEvent::Payload(down)));

    // A pause: above maxpause refused; within it, no more polls.
    assert_eq!(
        p.client.pause(121),
        Err(BoshUsageError::PauseNotAllowed {
            maxpause: Some(120)
        })
    );
    p.client.pause(100).unwrap();
    p.run();
    assert_eq!(p.client.outstanding(), 0, "paused: nothing held");
    p.now += Duration::from_secs(90);
    p.cm.handle_timeout(p.now);
    assert!(p.cm.has_session(&sid), "the pause stretched inactivity");
    p.client.resume();
    p.run();
    assert_eq!(p.client.outstanding(), 1, "polling again");

    // The client terminates with its last presence.
    let unavailable = Element::builder("presence", CLIENT)
        .attr("type".try_into().unwrap(), "unavailable")
        .build();
    p.client
        .terminate(std::slice::from_ref(&unavailable))
        .unwrap();
    p.run();
    assert!(p.client.is_closed());
    assert_eq!(p.client.error(), None);
    assert_eq!(
        p.client_events.last(),
        Some(&BoshClientEvent::Terminated(None))
    );
    let n = p.cm_events.len();
    assert_eq!(
        p.cm_events[n - 2..],
        [
            ManagerEvent::Payload {
                sid: sid.clone(),
                element: unavailable
            },
            ManagerEvent::Terminated {
                sid: sid.clone(),
                reason: TerminateReason::Client
            }
        ]
    );
    assert_eq!(p.cm.session_count(), 0);
    assert!(p.held.is_empty());
}
