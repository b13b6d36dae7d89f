//! The client end: a [`Client`] over a [`BoshClient`].

use std::collections::VecDeque;
use std::time::Instant;

use minidom::Element;

use super::{close_message, element_message, kind, Kind, NotBoshFraming};
use crate::bosh::{
    BoshClient, BoshClientConfig, BoshClientError, BoshClientEvent, BoshRequest, Condition,
};
use crate::client::{Client, ClientError, ClientEvent};
use crate::core::UsageError;
use crate::framing::Framing;
use crate::ns;
use crate::random::RandomSource;
use crate::stream_error::StreamError;
use crate::xml::StreamHeader;

/// One XMPP client session over BOSH: a [`Client`] (configured with
/// [`Framing::Bosh`]) and its [`BoshClient`], driven as one object (see
/// the [module docs](super) for the mapping).
///
/// The host POSTs what [`poll_request`](Self::poll_request) gives and
/// feeds each answer to [`handle_response`](Self::handle_response) (a
/// failed HTTP request to [`request_failed`](Self::request_failed)), waits
/// for [`poll_timeout`](Self::poll_timeout), and takes the `Client`'s
/// events from [`poll_event`](Self::poll_event); it sends stanzas with
/// [`send`](Self::send) and ends with [`close`](Self::close).
pub struct BoshXmppClient {
    client: Client,
    bosh: BoshClient,
    /// The first `<open/>` (the session creation) was taken.
    opened: bool,
    /// The server's header, built from the creation response: fed again
    /// at each restart (BOSH sends none).
    header_in: Option<StreamHeader>,
    /// The client closed: the terminate request is queued or out.
    terminating: bool,
    /// A message the BOSH client had no room for (its queue is full): it
    /// goes first once requests drained the queue.
    stalled: Option<(Vec<u8>, bool)>,
    /// Events of this adapter's own, before the `Client`'s.
    events: VecDeque<ClientEvent>,
}

impl std::fmt::Debug for BoshXmppClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoshXmppClient")
            .field("client", &self.client)
            .field("bosh", &self.bosh)
            .finish_non_exhaustive()
    }
}

impl BoshXmppClient {
    /// Joins `client` (just built, with `direct_tls` for `https` if
    /// wanted) to a new BOSH session: `config`'s `to` and `lang` are
    /// replaced by the client's stream header's, its other values (`wait`,
    /// `hold`, limits...) are kept; the first `rid` comes from `rng`.
    pub fn new(
        mut client: Client,
        mut config: BoshClientConfig,
        rng: &mut dyn RandomSource,
        now: Instant,
    ) -> Result<Self, NotBoshFraming> {
        if client.framing() != Framing::Bosh {
            return Err(NotBoshFraming(client.framing()));
        }
        // The client's first message is its header.
        let mut stalled = None;
        if let Some(msg) = client.poll_message() {
            // The header it wrote, rather than the `<open/>` parsed.
            match client
                .take_first_header()
                .filter(|_| kind(&msg) == Kind::Open)
            {
                Some(h) => {
                    if let Some(to) = h.to {
                        config.to = to;
                    }
                    config.lang = h.lang;
                }
                None => stalled = Some((msg, false)),
            }
        }
        let mut this = Self {
            client,
            bosh: BoshClient::new(config, rng, now),
            opened: true,
            header_in: None,
            terminating: false,
            stalled,
            events: VecDeque::new(),
        };
        this.pump(now);
        Ok(this)
    }

    /// The role machine (read it; commands go through this adapter).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The BOSH session.
    pub fn bosh(&self) -> &BoshClient {
        &self.bosh
    }

    /// Whether the XMPP session is ready for stanzas.
    pub fn is_ready(&self) -> bool {
        self.client.is_ready()
    }

    /// Whether the XMPP stream is closed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Why the XMPP stream failed, if it did.
    pub fn error(&self) -> Option<&ClientError> {
        self.client.error()
    }

    /// Why the BOSH session failed, if it did (a lost request, a bad
    /// response: the XMPP stream was then closed under the client).
    pub fn bosh_error(&self) -> Option<&BoshClientError> {
        self.bosh.error()
    }

    /// The next request to POST (see [`BoshClient::poll_request`]).
    pub fn poll_request(&mut self, now: Instant) -> Option<BoshRequest> {
        let req = self.bosh.poll_request(now);
        if req.is_some() && self.stalled.is_some() {
            // Room was made: the stalled message and the ones behind it.
            self.pump(now);
        }
        req
    }

    /// The response body to the request `rid`; its payloads go to the
    /// client. An error ends the BOSH session (and the XMPP stream).
    pub fn handle_response(
        &mut self,
        now: Instant,
        rid: u64,
        body: &[u8],
    ) -> Result<(), BoshClientError> {
        let r = self.bosh.handle_response(now, rid, body);
        self.pump(now);
        r
    }

    /// The HTTP request for `rid` failed: it goes again.
    pub fn request_failed(&mut self, now: Instant, rid: u64) {
        self.bosh.request_failed(now, rid);
        self.pump(now);
    }

    /// The earliest deadline of the client and the BOSH session.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.client.poll_timeout(), self.bosh.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Acts on the deadlines passed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.bosh.handle_timeout(now);
        self.client.handle_timeout(now);
        self.pump(now);
    }

    /// The next event of the client.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front().or_else(|| self.client.poll_event())
    }

    /// Sends a stanza (see [`Client::send`]).
    pub fn send(&mut self, now: Instant, stanza: &Element) -> Result<(), UsageError> {
        self.client.send(stanza)?;
        self.pump(now);
        Ok(())
    }

    /// Closes the stream: the BOSH session is terminated (see
    /// [`Client::close`]).
    pub fn close(&mut self, now: Instant) {
        self.client.close(now);
        self.pump(now);
    }

    /// Ends the stream with a stream error (see
    /// [`Client::close_with_error`]): it goes in the terminate request.
    pub fn close_with_error(&mut self, now: Instant, error: StreamError) -> Result<(), UsageError> {
        self.client.close_with_error(error)?;
        self.pump(now);
        Ok(())
    }

    /// Bytes queued and not yet in a request (the client's and the BOSH
    /// session's).
    pub fn queued_output(&self) -> usize {
        self.client.queued_output()
            + self.bosh.queued_bytes()
            + self.stalled.as_ref().map_or(0, |(m, _)| m.len())
    }

    /// Whether the host should stop sending stanzas until requests have
    /// drained the queue.
    pub fn output_congested(&self) -> bool {
        self.stalled.is_some() || self.client.output_congested()
    }

    /// Moves the client's messages to the BOSH session and the BOSH
    /// session's events to the client, until neither has more.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = self.outbound(now);
            while let Some(ev) = self.bosh.poll_event() {
                moved = true;
                self.inbound(now, ev);
                // What the client answered goes before what follows (a
                // restart's header before the next features).
                self.outbound(now);
            }
            if !moved {
                return;
            }
        }
    }

    /// Client → BOSH; whether anything moved.
    fn outbound(&mut self, now: Instant) -> bool {
        let mut moved = false;
        loop {
            let (msg, stream) = match self.stalled.take() {
                Some(m) => m,
                None => match self.client.poll_message() {
                    Some(msg) => (msg, false),
                    None => return moved,
                },
            };
            let sent = match kind(&msg) {
                Kind::Open if self.opened => {
                    // The restart's answer brings features and no header:
                    // the client gets the session's header again first.
                    if let Some(h) = &self.header_in {
                        let _ = self.client.feed_header(now, h.clone());
                    }
                    self.bosh.restart()
                }
                Kind::Open => {
                    self.opened = true;
                    Ok(())
                }
                Kind::Close => {
                    self.terminating = true;
                    self.bosh.terminate(&[])
                }
                Kind::StreamError | Kind::Element => {
                    if !self.bosh.is_closed() && !self.bosh.has_room(msg.len()) {
                        // Requests have to drain the queue first.
                        self.stalled = Some((msg, stream));
                        return moved; // not moved: no loop on it
                    }
                    // It declares `xmlns:stream` itself.
                    self.bosh.send_serialized(msg, stream)
                }
            };
            moved = true;
            // An error: the BOSH session is over (its end goes to the
            // client as an event) or the message cannot be carried; it is
            // dropped.
            let _ = sent;
        }
    }

    /// BOSH → client.
    fn inbound(&mut self, now: Instant, ev: BoshClientEvent) {
        // A closed client refuses input: nothing more to tell it.
        let _ = match ev {
            BoshClientEvent::SessionCreated(p) => {
                let header = StreamHeader {
                    from: p.from,
                    id: p.authid,
                    version: p.xmpp_version,
                    ..StreamHeader::default()
                };
                let fed = self.client.feed_header(now, header.clone());
                self.header_in = Some(header);
                fed
            }
            BoshClientEvent::Features(el) => self.client.feed_element(now, el),
            BoshClientEvent::Payload(el) if el.is("error", ns::STREAM) => {
                match element_message(&el) {
                    Some(m) => self.client.feed_message(now, &m),
                    None => self.feed_error(now, None),
                }
            }
            BoshClientEvent::Payload(el) => self.client.feed_element(now, el),
            BoshClientEvent::Terminated(None) => {
                self.client.feed_message(now, &close_message(None))
            }
            // The terminate went and its answer was lost: the manager ended
            // the session, so the retransmission finds none. The close
            // the client asked for happened.
            BoshClientEvent::Terminated(Some(BoshClientError::Terminal {
                condition: Some(Condition::ItemNotFound),
                stream_error: None,
            })) if self.terminating => self.client.feed_message(now, &close_message(None)),
            BoshClientEvent::Terminated(Some(BoshClientError::SeeOtherUri(uri))) => {
                self.client.feed_message(now, &close_message(Some(&uri)))
            }
            BoshClientEvent::Terminated(Some(BoshClientError::Terminal {
                condition,
                stream_error,
            })) => match stream_error.as_ref().and_then(element_message) {
                Some(m) => self.client.feed_message(now, &m),
                None => self.feed_error(now, condition.as_ref()),
            },
            // A lost request, a bad response: the transport is gone
            // under the stream (`bosh_error` says how).
            BoshClientEvent::Terminated(Some(_)) => {
                self.client.feed_message(now, &close_message(None))
            }
        };
    }

    /// A terminal BOSH condition, as the stream error of that name.
    fn feed_error(
        &mut self,
        now: Instant,
        condition: Option<&Condition>,
    ) -> Result<(), UsageError> {
        let el = super::stream_error_for(condition);
        match element_message(&el) {
            Some(m) => self.client.feed_message(now, &m),
            None => Ok(()),
        }
    }
}
