//! A `BoshXmppClient` and a `BoshXmppServer` joined by an in-memory HTTP
//! "network": every request the client gives is POSTed, held requests are
//! answered when the manager has their response. A filter may drop
//! requests and responses (reported to the client as failed HTTP
//! requests) to show retransmission under the role machines.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xmpp_sansio::bosh::{
    BoshClientConfig, BoshManagerConfig, BoshXmppClient, BoshXmppServer, BoshXmppServerEvent,
    Reply, RequestHandle,
};
use xmpp_sansio::client::{Client, ClientEvent, ClientSettings};
use xmpp_sansio::sasl::channel_binding::TlsVersion;
use xmpp_sansio::server::{BindAnswer, ServerConfig, ServerEvent, ServerSettings};
use xmpp_sansio::{DeterministicRandom, Framing, TlsInfo};

use super::pair::Store;

/// Whether the network loses this request (`true`) or response (`false`).
pub type Loss = Box<dyn FnMut(bool) -> bool>;

pub struct BoshNet {
    pub client: BoshXmppClient,
    pub cm: BoshXmppServer,
    pub now: Instant,
    pub store: Store,
    /// Held HTTP requests: handle → rid.
    held: HashMap<RequestHandle, u64>,
    pub client_events: Vec<ClientEvent>,
    pub server_events: Vec<BoshXmppServerEvent>,
    /// Requests POSTed and responses delivered.
    pub requests: usize,
    pub responses: usize,
    pub loss: Option<Loss>,
    /// Responses lost on the way: the client is told once it polls.
    failed: VecDeque<u64>,
}

pub fn tls() -> TlsInfo {
    TlsInfo::without_binding(TlsVersion::Tls13)
}

impl BoshNet {
    /// `client` and `server` settings are switched to `Framing::Bosh`;
    /// both ends get TLS (as `https`).
    pub fn new(mut client: ClientSettings, mut server: ServerSettings, store: Store) -> BoshNet {
        client.framing = Framing::Bosh;
        server.framing = Framing::Bosh;
        let now = Instant::now();
        let c = Client::with_random(
            Arc::new(client.build().unwrap()),
            Box::new(DeterministicRandom::new(7)),
            now,
        )
        .direct_tls(tls());
        let client = BoshXmppClient::new(
            c,
            BoshClientConfig::new("ignored.example"),
            &mut DeterministicRandom::new(1),
            now,
        )
        .unwrap();
        let config: Arc<ServerConfig> = Arc::new(server.build().unwrap());
        let mut seed = 100;
        let mut cm = BoshXmppServer::new(
            config,
            BoshManagerConfig::default(),
            Box::new(DeterministicRandom::new(2)),
            Box::new(move || {
                seed += 1;
                Box::new(DeterministicRandom::new(seed))
            }),
        )
        .unwrap();
        cm.set_tls(Some(tls()));
        BoshNet {
            client,
            cm,
            now,
            store,
            held: HashMap::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
            requests: 0,
            responses: 0,
            loss: None,
            failed: VecDeque::new(),
        }
    }

    fn lose(&mut self, request: bool) -> bool {
        self.loss.as_mut().is_some_and(|f| f(request))
    }

    /// Moves requests, responses and events until nothing moves; the
    /// server's host answers credentials from the store and accepts
    /// binds.
    pub fn run(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            while let Some(rid) = self.failed.pop_front() {
                moved = true;
                self.client.request_failed(self.now, rid);
            }
            while let Some(req) = self.client.poll_request(self.now) {
                moved = true;
                self.requests += 1;
                if self.lose(true) {
                    self.failed.push_back(req.rid);
                    continue;
                }
                match self.cm.handle_request(self.now, &req.body) {
                    Reply::Immediate(b) | Reply::Refused { body: b, .. } => {
                        self.deliver(req.rid, &b)
                    }
                    Reply::Held(h) => {
                        self.held.insert(h, req.rid);
                    }
                }
            }
            while let Some((h, b)) = self.cm.poll_response() {
                moved = true;
                if let Some(rid) = self.held.remove(&h) {
                    self.deliver(rid, &b);
                }
            }
            while let Some(ev) = self.cm.poll_event() {
                moved = true;
                match &ev {
                    BoshXmppServerEvent::Session {
                        sid,
                        event: ServerEvent::Credentials(req),
                    } => {
                        let a = self.store.answer(req);
                        self.cm.answer(self.now, sid, a).unwrap();
                    }
                    BoshXmppServerEvent::Session {
                        sid,
                        event: ServerEvent::Bind { .. },
                    } => self
                        .cm
                        .answer(self.now, sid, BindAnswer::Accept(None))
                        .unwrap(),
                    BoshXmppServerEvent::RequestDropped(h) => {
                        self.held.remove(h);
                    }
                    _ => {}
                }
                self.server_events.push(ev);
            }
            while let Some(ev) = self.client.poll_event() {
                moved = true;
                self.client_events.push(ev);
            }
            if !moved {
                return;
            }
        }
        panic!("the pair never settles");
    }

    fn deliver(&mut self, rid: u64, body: &[u8]) {
        if self.lose(false) {
            self.failed.push_back(rid);
            return;
        }
        self.responses += 1;
        let _ = self.client.handle_response(self.now, rid, body);
    }

    /// Time passes: both sides' deadlines due by then are handled.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.client.handle_timeout(self.now);
        self.cm.handle_timeout(self.now);
        self.run();
    }

    /// The one session's id.
    pub fn sid(&self) -> String {
        self.server_events
            .iter()
            .find_map(|e| match e {
                BoshXmppServerEvent::Created { sid } => Some(sid.clone()),
                _ => None,
            })
            .expect("a session")
    }

    /// The server's events of the session, in order.
    pub fn server_session_events(&self) -> Vec<&ServerEvent> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                BoshXmppServerEvent::Session { event, .. } => Some(event),
                _ => None,
            })
            .collect()
    }
}
