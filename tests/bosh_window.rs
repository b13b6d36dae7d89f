//! The `rid` window end to end: a `BoshClient` and a `BoshManager` in
//! memory, with a network that reorders, duplicates and drops requests
//! and responses (a dropped one is reported to the client as a failed
//! HTTP request) while both sides send messages and time passes. After
//! the chaos, the network delivers everything in order: each side must
//! then have received exactly the messages the other sent, once each, in
//! order, and neither side may have ended the session.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use minidom::Element;
use proptest::prelude::*;
use xmpp_sansio::bosh::{
    BoshClient, BoshClientConfig, BoshClientEvent, BoshManager, BoshManagerConfig, ManagerError,
    ManagerEvent, Reply, RequestHandle,
};
use xmpp_sansio::DeterministicRandom;

const CLIENT: &str = "jabber:client";

#[derive(Debug, Clone)]
enum Action {
    ClientSends,
    ServerSends,
    DeliverRequest(usize),
    DuplicateRequest(usize),
    DropRequest(usize),
    DeliverResponse(usize),
    DuplicateResponse(usize),
    DropResponse(usize),
    Tick(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => Just(Action::ClientSends),
        3 => Just(Action::ServerSends),
        6 => any::<usize>().prop_map(Action::DeliverRequest),
        1 => any::<usize>().prop_map(Action::DuplicateRequest),
        1 => any::<usize>().prop_map(Action::DropRequest),
        6 => any::<usize>().prop_map(Action::DeliverResponse),
        1 => any::<usize>().prop_map(Action::DuplicateResponse),
        1 => any::<usize>().prop_map(Action::DropResponse),
        2 => (0u64..30).prop_map(Action::Tick),
    ]
}

fn message(text: &str) -> Element {
    Element::builder("message", CLIENT)
        .append(Element::builder("body", CLIENT).append(text).build())
        .build()
}

fn text(el: &Element) -> String {
    el.get_child("body", CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

struct Net {
    client: BoshClient,
    cm: BoshManager,
    sid: Option<String>,
    now: Instant,
    /// HTTP requests on their way to the manager: (rid, body).
    to_cm: Vec<(u64, Vec<u8>)>,
    /// Requests the manager holds: handle to rid.
    held: HashMap<RequestHandle, u64>,
    /// Responses on their way to the client: (rid, body).
    to_client: Vec<(u64, Vec<u8>)>,
    sent_up: Vec<String>,
    got_up: Vec<String>,
    sent_down: Vec<String>,
    got_down: Vec<String>,
}

impl Net {
    fn new(hold: u32, seed: u64) -> Self {
        let now = Instant::now();
        let mut cc = BoshClientConfig::new("example.com");
        cc.hold = hold;
        cc.max_attempts = u32::MAX; // the chaos may drop one rid many times
        let client = BoshClient::new(cc, &mut DeterministicRandom::new(seed), now);
        let mc = BoshManagerConfig {
            max_hold: hold,
            // Time passes in large steps while the network sits on
            // everything: inactivity is not what is tested here.
            inactivity: 100_000,
            ..BoshManagerConfig::default()
        };
        let cm = BoshManager::new(mc, Box::new(DeterministicRandom::new(seed ^ 0xff)));
        let mut net = Net {
            client,
            cm,
            sid: None,
            now,
            to_cm: Vec::new(),
            held: HashMap::new(),
            to_client: Vec::new(),
            sent_up: Vec::new(),
            got_up: Vec::new(),
            sent_down: Vec::new(),
            got_down: Vec::new(),
        };
        net.pump();
        net
    }

    /// Moves everything each side has to give onto the network.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(req) = self.client.poll_request(self.now) {
                if req.retransmission {
                    // The host aborts the old HTTP request of that rid.
                    self.to_cm.retain(|(rid, _)| *rid != req.rid);
                }
                self.to_cm.push((req.rid, req.body));
                moved = true;
            }
            while let Some(ev) = self.client.poll_event() {
                match ev {
                    BoshClientEvent::Payload(p) => self.got_down.push(text(&p)),
                    BoshClientEvent::Terminated(e) => panic!("client terminated: {e:?}"),
                    _ => {}
                }
            }
            while let Some(ev) = self.cm.poll_event() {
                match ev {
                    ManagerEvent::SessionCreated { sid, .. } => self.sid = Some(sid),
                    ManagerEvent::Payload { element, .. } => self.got_up.push(text(&element)),
                    ManagerEvent::RequestDropped { handle } => {
                        self.held.remove(&handle);
                    }
                    ManagerEvent::Terminated { reason, .. } => {
                        panic!("manager terminated: {reason:?}")
                    }
                    ManagerEvent::Restart { .. } => {}
                }
            }
            while let Some((handle, bytes)) = self.cm.poll_response() {
                if let Some(rid) = self.held.remove(&handle) {
                    self.to_client.push((rid, bytes));
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn deliver_request(&mut self, rid: u64, body: &[u8]) {
        match self.cm.handle_request(self.now, body) {
            Reply::Immediate(bytes) => self.to_client.push((rid, bytes)),
            Reply::Held(h) => {
                self.held.insert(h, rid);
            }
            // A late copy of a request answered long ago: the client
            // must ignore the answer.
            Reply::Refused {
                error: ManagerError::ResponseGone { .. },
                body,
            } => self.to_client.push((rid, body)),
            Reply::Refused { error, .. } => panic!("request {rid} refused: {error}"),
        }
    }

    fn deliver_response(&mut self, rid: u64, body: &[u8]) {
        if let Err(e) = self.client.handle_response(self.now, rid, body) {
            panic!("response to {rid}: {e}");
        }
    }

    fn act(&mut self, a: &Action) {
        match *a {
            Action::ClientSends => {
                let t = format!("up{}", self.sent_up.len());
                if self.client.send(&message(&t)).is_ok() {
                    self.sent_up.push(t);
                }
            }
            Action::ServerSends => {
                if let Some(sid) = self.sid.clone() {
                    let t = format!("down{}", self.sent_down.len());
                    if self.cm.send(self.now, &sid, &message(&t)).is_ok() {
                        self.sent_down.push(t);
                    }
                }
            }
            Action::DeliverRequest(i) | Action::DuplicateRequest(i) if !self.to_cm.is_empty() => {
                let (rid, body) = self.to_cm.remove(i % self.to_cm.len());
                self.deliver_request(rid, &body);
                if matches!(a, Action::DuplicateRequest(_)) {
                    self.pump();
                    self.deliver_request(rid, &body);
                }
            }
            Action::DropRequest(i) if !self.to_cm.is_empty() => {
                let (rid, _) = self.to_cm.remove(i % self.to_cm.len());
                self.client.request_failed(self.now, rid);
            }
            Action::DeliverResponse(i) | Action::DuplicateResponse(i)
                if !self.to_client.is_empty() =>
            {
                let (rid, body) = self.to_client.remove(i % self.to_client.len());
                self.deliver_response(rid, &body);
                if matches!(a, Action::DuplicateResponse(_)) {
                    self.deliver_response(rid, &body);
                }
            }
            Action::DropResponse(i) if !self.to_client.is_empty() => {
                let (rid, _) = self.to_client.remove(i % self.to_client.len());
                self.client.request_failed(self.now, rid);
            }
            Action::Tick(s) => {
                self.now += Duration::from_secs(s);
                self.client.handle_timeout(self.now);
                self.cm.handle_timeout(self.now);
            }
            _ => {}
        }
        self.pump();
    }

    /// Delivers everything in order, time going from deadline to
    /// deadline, until both sides have all that was sent.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            if self.got_up.len() >= self.sent_up.len()
                && self.got_down.len() >= self.sent_down.len()
            {
                return;
            }
            if !self.to_cm.is_empty() {
                let (rid, body) = self.to_cm.remove(0);
                self.deliver_request(rid, &body);
            } else if !self.to_client.is_empty() {
                let (rid, body) = self.to_client.remove(0);
                self.deliver_response(rid, &body);
            } else {
                let next = [self.client.poll_timeout(), self.cm.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min()
                    .expect("a deadline while messages are missing");
                self.now = self.now.max(next);
                self.client.handle_timeout(self.now);
                self.cm.handle_timeout(self.now);
            }
            self.pump();
        }
        panic!("did not settle");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn nothing_lost_duplicated_or_reordered(
        hold in 1u32..=2,
        seed in any::<u64>(),
        actions in prop::collection::vec(action(), 0..120),
    ) {
        let mut net = Net::new(hold, seed);
        for a in &actions {
            net.act(a);
        }
        net.settle();
        prop_assert_eq!(&net.got_up, &net.sent_up);
        prop_assert_eq!(&net.got_down, &net.sent_down);
        prop_assert!(!net.client.is_closed());
    }
}

/// The same network, scripted: a lost response and a duplicated request
/// in one exchange, so the test shows what the proptest checks.
#[test]
fn a_lost_response_and_a_duplicated_request() {
    let mut net = Net::new(1, 5);
    // Creation: deliver, and the features.
    net.act(&Action::DeliverRequest(0));
    net.act(&Action::ServerSends);
    net.act(&Action::DeliverResponse(0));
    net.act(&Action::ClientSends);
    net.act(&Action::DuplicateRequest(1));
    net.act(&Action::DropResponse(0));
    net.settle();
    assert_eq!(net.got_up, ["up0"]);
    assert_eq!(net.got_down, ["down0"]);
}
