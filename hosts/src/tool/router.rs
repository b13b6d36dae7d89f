//! Stanza routing between the bound sessions of one domain, shared by
//! the example servers (`server`, one thread per connection, and
//! `xmpp-server-async`, tokio tasks): each registers a [`Mailbox`] per
//! bound full JID; [`Router::route`] decides where a client's stanza goes
//! (RFC 6121: a message to a bare JID reaches every resource, a chat
//! message to an unknown resource falls back to the bare JID, presence
//! without `to` goes to the user's own resources, IQs the server answers
//! itself with [`im::answer`]) and what goes back to the sender (an error,
//! an answer). Sessions that enabled Message Carbons (XEP-0280, inline in
//! Bind 2: [`Router::enable_carbons`]) get a copy of the chat (and normal,
//! with a body) messages their user's other resources send, and receive
//! at a full JID.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use minidom::Element;
use xmpp_sansio::jid::Jid;
use xmpp_sansio::ns;

use super::im;

/// Why a mailbox refused a stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The session is far behind (its queue is full): `resource-constraint`.
    Full,
    /// The session is over: `service-unavailable`.
    Gone,
}

/// How a bound session is reached.
pub trait Mailbox: Clone {
    /// The session's id (a reconnect may bind the same JID again: only the
    /// session that bound it unbinds it).
    fn session(&self) -> u64;
    /// Hands a stanza to the session, without waiting; a refused one comes
    /// back.
    fn offer(&self, el: Element) -> Result<(), (Refused, Element)>;
}

/// The bound sessions of one domain, by full JID.
#[derive(Debug)]
pub struct Router<M> {
    domain: String,
    sessions: Mutex<HashMap<String, M>>,
    /// The bound full JIDs with carbons on.
    carbons: Mutex<HashSet<String>>,
}

impl<M: Mailbox> Router<M> {
    /// No session yet, for `domain`.
    pub fn new(domain: &str) -> Self {
        Self {
            domain: domain.to_owned(),
            sessions: Mutex::new(HashMap::new()),
            carbons: Mutex::new(HashSet::new()),
        }
    }

    fn carbons(&self) -> MutexGuard<'_, HashSet<String>> {
        self.carbons.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// XEP-0280: the session bound to `full` gets carbon copies from now
    /// on (until it unbinds).
    pub fn enable_carbons(&self, full: &str) {
        if self.sessions().contains_key(full) {
            self.carbons().insert(full.to_owned());
        }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, M>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `full` to `mailbox` unless it is taken: `false` is a conflict.
    pub fn bind(&self, full: &str, mailbox: M) -> bool {
        let mut sessions = self.sessions();
        if sessions.contains_key(full) {
            return false;
        }
        sessions.insert(full.to_owned(), mailbox);
        true
    }

    /// Binds `full` to `mailbox`, replacing any other.
    pub fn rebind(&self, full: &str, mailbox: M) {
        self.sessions().insert(full.to_owned(), mailbox);
    }

    /// Unbinds `full` if session `session` holds it.
    pub fn unbind(&self, full: &str, session: u64) {
        let mut sessions = self.sessions();
        if sessions.get(full).is_some_and(|m| m.session() == session) {
            sessions.remove(full);
            self.carbons().remove(full);
        }
    }

    /// The mailbox bound to `full` (a prepared full JID), if any.
    pub fn mailbox(&self, full: &str) -> Option<M> {
        self.sessions().get(full).cloned()
    }

    /// Bound sessions now.
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    /// Whether no session is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn bare(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

fn attr_name(n: &str) -> rxml::NcName {
    rxml::NcName::try_from(n).expect("valid attribute name")
}

/// `<message|iq type='error'/>` answering `el` (from `sender`), with a
/// defined condition of RFC 6120 section 8.3.3.
pub fn error_reply(el: &Element, sender: &str, condition: &str) -> Element {
    let mut b = Element::builder(el.name(), ns::JABBER_CLIENT).attr(attr_name("type"), "error");
    if let Some(id) = el.attr("id") {
        b = b.attr(attr_name("id"), id);
    }
    if let Some(to) = el.attr("to") {
        b = b.attr(attr_name("from"), to);
    }
    b.attr(attr_name("to"), sender)
        .append(
            Element::builder("error", ns::JABBER_CLIENT)
                .attr(
                    attr_name("type"),
                    if condition == "resource-constraint" {
                        "wait"
                    } else {
                        "cancel"
                    },
                )
                .append(Element::builder(condition, ns::STANZAS).build())
                .build(),
        )
        .build()
}

/// XEP-0280 section 6: chat messages, and normal ones with a body, are
/// copied, unless marked `<private/>` or `<no-copy/>` (XEP-0334).
fn is_copied(el: &Element) -> bool {
    let eligible = match el.attr("type").unwrap_or("normal") {
        "chat" => true,
        "normal" => el.get_child("body", ns::JABBER_CLIENT).is_some(),
        _ => false,
    };
    eligible
        && el.get_child("private", ns::CARBONS).is_none()
        && el.get_child("no-copy", HINTS).is_none()
}

/// XEP-0334 message processing hints.
const HINTS: &str = "urn:xmpp:hints";
/// XEP-0297 stanza forwarding.
const FORWARD: &str = "urn:xmpp:forward:0";

/// A carbon copy of `el` for `to`: `<message from=bare to=full
/// type=chat><sent|received><forwarded>el</forwarded></...></message>`.
fn carbon(el: &Element, direction: &str, bare_jid: &str, to: &str) -> Element {
    let forwarded = Element::builder("forwarded", FORWARD)
        .append(el.clone())
        .build();
    Element::builder("message", ns::JABBER_CLIENT)
        .attr(attr_name("from"), bare_jid)
        .attr(attr_name("to"), to)
        .attr(attr_name("type"), "chat")
        .append(
            Element::builder(direction, ns::CARBONS)
                .append(forwarded)
                .build(),
        )
        .build()
}

impl<M: Mailbox> Router<M> {
    /// The queue of the session bound to `full`, or else (`fallback`) of one
    /// session of its bare JID (the first by resource: no presence
    /// priorities here).
    fn find(&self, full: Option<&str>, bare_jid: &str, fallback: bool) -> Option<M> {
        let sessions = self.sessions();
        if let Some(r) = full.and_then(|f| sessions.get(f)) {
            return Some(r.clone());
        }
        if !fallback {
            return None;
        }
        let prefix = format!("{bare_jid}/");
        sessions
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .min_by(|a, b| a.0.cmp(b.0))
            .map(|(_, r)| r.clone())
    }

    /// Routes a stanza the client at `sender` (full JID) sent; returns what
    /// goes back to that client (an error, an answer), if anything.
    pub fn route(&self, sender: &str, el: Element) -> Option<Element> {
        let kind = el.attr("type").unwrap_or_default().to_owned();
        // Sessions are keyed by prepared JIDs: `to` is prepared too
        // (`Juliet@EXAMPLE.com` reaches juliet@example.com).
        let to = match el.attr("to") {
            Some(t) => Jid::new(t).map_or_else(|_| t.to_owned(), |j| j.to_string()),
            None => bare(sender).to_owned(),
        };
        let (to_bare, resource) = match to.split_once('/') {
            Some((b, r)) => (b, Some(r)),
            None => (to.as_str(), None),
        };
        let (local, domain) = match to_bare.split_once('@') {
            Some((l, d)) => (Some(l), d),
            None => (None, to_bare),
        };
        let is_error = kind == "error";
        if !domain.eq_ignore_ascii_case(&self.domain) {
            // No s2s in this example.
            return (!is_error && el.name() != "presence")
                .then(|| error_reply(&el, sender, "remote-server-not-found"));
        }
        let to_bare = format!("{}@{}", local.unwrap_or_default(), self.domain);
        match el.name() {
            "message" => {
                if local.is_none() {
                    // To the server itself: nothing here handles messages.
                    return (!is_error).then(|| error_reply(&el, sender, "service-unavailable"));
                }
                // RFC 6121 8.5.3.2.1: a chat/normal/headline message to an
                // unknown resource goes to the bare JID.
                let fallback = resource.is_none()
                    || matches!(kind.as_str(), "" | "normal" | "chat" | "headline");
                if resource.is_none() && !is_error {
                    // RFC 6121 8.5.2.1.1: to the bare JID, every resource.
                    return self.deliver_all(&to_bare, sender, el);
                }
                let full = resource.map(|r| format!("{to_bare}/{r}"));
                let queue = self.find(full.as_deref(), &to_bare, fallback);
                if is_copied(&el) {
                    // Not to the sender, nor to the session that gets
                    // the message itself.
                    let delivered = queue.as_ref().and_then(|q| self.full_of(q.session()));
                    let skip = [sender, delivered.as_deref().unwrap_or_default()];
                    self.carbon_copies(&el, "sent", bare(sender), &skip);
                    // Between one's own resources: the sent copy is enough.
                    if delivered.is_some() && to_bare != bare(sender) {
                        self.carbon_copies(&el, "received", &to_bare, &skip);
                    }
                }
                self.deliver(queue, sender, el, is_error)
            }
            "iq" if kind == "get" || kind == "set" => {
                let to_server_or_account = local.is_none() || resource.is_none();
                if to_server_or_account {
                    // The server answers what clients ask right after
                    // login (roster, disco, ping), for itself and for the
                    // sender's own account; nothing else.
                    let addressee = match local {
                        None => Some(im::Addressee::Server),
                        Some(_) if to_bare == bare(sender) => Some(im::Addressee::Account),
                        Some(_) => None,
                    };
                    return Some(
                        addressee
                            .and_then(|a| im::answer(&el, sender, a))
                            .unwrap_or_else(|| error_reply(&el, sender, "service-unavailable")),
                    );
                }
                let full = format!("{to_bare}/{}", resource.unwrap_or_default());
                let queue = self.find(Some(&full), &to_bare, false);
                self.deliver(queue, sender, el, false)
            }
            "iq" => {
                // result / error: to a full JID only, else dropped.
                let full = resource.map(|r| format!("{to_bare}/{r}"));
                let queue = full.and_then(|f| self.find(Some(&f), &to_bare, false));
                self.deliver(queue, sender, el, true)
            }
            // RFC 6121 4.2.2: a presence without `to` goes to the user's
            // own resources, the sender's included (clients wait for that
            // echo before they call themselves online); there are no
            // subscriptions here, so no contact gets it. One to a bare JID
            // reaches its resources, one to a full JID that resource.
            "presence" => match resource {
                None => {
                    let _ = self.deliver_all(&to_bare, sender, el);
                    None
                }
                Some(r) => {
                    let queue = self.find(Some(&format!("{to_bare}/{r}")), &to_bare, false);
                    self.deliver(queue, sender, el, true)
                }
            },
            _ => None,
        }
    }

    /// The full JID session `session` is bound to.
    fn full_of(&self, session: u64) -> Option<String> {
        self.sessions()
            .iter()
            .find(|(_, m)| m.session() == session)
            .map(|(k, _)| k.clone())
    }

    /// XEP-0280: `el` wrapped in `<sent/>` or `<received/>` to each
    /// carbons-enabled session of `bare_jid` not in `skip` (the sender,
    /// the session the message went to). A full queue drops the copy.
    fn carbon_copies(&self, el: &Element, direction: &str, bare_jid: &str, skip: &[&str]) {
        let prefix = format!("{bare_jid}/");
        let targets: Vec<String> = self
            .carbons()
            .iter()
            .filter(|f| f.starts_with(&prefix) && !skip.contains(&f.as_str()))
            .cloned()
            .collect();
        for full in targets {
            let Some(q) = self.mailbox(&full) else {
                continue;
            };
            let _ = q.offer(carbon(el, direction, bare_jid, &full));
        }
    }

    /// `el` to every session of `bare_jid`; `service-unavailable` back
    /// when there is none (for a message).
    fn deliver_all(&self, bare_jid: &str, sender: &str, el: Element) -> Option<Element> {
        let prefix = format!("{bare_jid}/");
        let queues: Vec<_> = {
            let sessions = self.sessions();
            let mut v: Vec<_> = sessions
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into_iter().map(|(_, q)| q).collect()
        };
        if queues.is_empty() {
            let silent = el.name() == "presence" || el.attr("type") == Some("error");
            return self.deliver(None, sender, el, silent);
        }
        for q in queues {
            // A full queue drops this copy: the session is far behind.
            let _ = q.offer(el.clone());
        }
        None
    }

    fn deliver(
        &self,
        queue: Option<M>,
        sender: &str,
        el: Element,
        silent: bool,
    ) -> Option<Element> {
        let bounce =
            |el: &Element, condition| (!silent).then(|| error_reply(el, sender, condition));
        let Some(queue) = queue else {
            return bounce(&el, "service-unavailable");
        };
        match queue.offer(el) {
            Ok(()) => None,
            Err((Refused::Full, el)) => bounce(&el, "resource-constraint"),
            Err((Refused::Gone, el)) => bounce(&el, "service-unavailable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A session's queue: what it was offered.
    #[derive(Clone, Default)]
    struct Inbox(u64, Arc<Mutex<Vec<Element>>>);

    impl Mailbox for Inbox {
        fn session(&self) -> u64 {
            self.0
        }
        fn offer(&self, el: Element) -> Result<(), (Refused, Element)> {
            self.1.lock().unwrap().push(el);
            Ok(())
        }
    }

    impl Inbox {
        fn take(&self) -> Vec<String> {
            self.1
                .lock()
                .unwrap()
                .drain(..)
                .map(|e| String::from(&e))
                .collect()
        }
    }

    fn chat(from: &str, to: &str, kind: &str, extra: &str) -> Element {
        format!("<message xmlns='jabber:client' from='{from}' to='{to}' type='{kind}' id='m1'><body>hi</body>{extra}</message>")
            .parse()
            .unwrap()
    }

    /// XEP-0280 sections 6 and 7: alice's carbons-enabled resource gets
    /// `<sent/>` for what her other resource sends and `<received/>` for
    /// what reaches it at its full JID; a resource without carbons gets
    /// nothing, nor do `<private/>`, `<no-copy/>` and headline messages.
    #[test]
    fn carbons_copy_chat_messages_to_enabled_sessions() {
        let r: Router<Inbox> = Router::new("example.com");
        let boxes: Vec<Inbox> = (0..4).map(|i| Inbox(i, Default::default())).collect();
        let jids = [
            "alice@example.com/phone",
            "alice@example.com/laptop",
            "alice@example.com/tablet",
            "bob@example.com/desk",
        ];
        for (j, b) in jids.iter().zip(&boxes) {
            assert!(r.bind(j, b.clone()));
        }
        r.enable_carbons("alice@example.com/laptop");
        r.enable_carbons("nobody@example.com/x"); // not bound: ignored
                                                  // Sent by alice's phone to bob: bob gets it, the laptop a <sent/>.
        let out = chat(jids[0], jids[3], "chat", "");
        assert_eq!(r.route(jids[0], out), None);
        assert_eq!(boxes[3].take().len(), 1);
        let sent = boxes[1].take();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(
            sent[0].starts_with("<message xmlns='jabber:client' from='alice@example.com' to='alice@example.com/laptop' type='chat'><sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='alice@example.com/phone'"),
            "{}",
            sent[0]
        );
        assert!(boxes[0].take().is_empty() && boxes[2].take().is_empty());
        // Bob to alice's phone: the laptop gets a <received/>.
        assert_eq!(r.route(jids[3], chat(jids[3], jids[0], "chat", "")), None);
        assert_eq!(boxes[0].take().len(), 1);
        let received = boxes[1].take();
        assert_eq!(received.len(), 1);
        assert!(
            received[0].contains("<received xmlns='urn:xmpp:carbons:2'><forwarded"),
            "{}",
            received[0]
        );
        assert!(boxes[2].take().is_empty());
        // A normal message with a body is copied too.
        r.route(jids[0], chat(jids[0], jids[3], "normal", ""));
        assert_eq!(boxes[1].take().len(), 1);
        // Not copied: private, no-copy, a headline.
        for el in [
            chat(
                jids[0],
                jids[3],
                "chat",
                "<private xmlns='urn:xmpp:carbons:2'/>",
            ),
            chat(
                jids[0],
                jids[3],
                "chat",
                "<no-copy xmlns='urn:xmpp:hints'/>",
            ),
            chat(jids[0], jids[3], "headline", ""),
        ] {
            r.route(jids[0], el);
            assert!(boxes[1].take().is_empty());
        }
        // To the laptop itself: no copy of its own message.
        r.route(jids[3], chat(jids[3], jids[1], "chat", ""));
        assert_eq!(boxes[1].take().len(), 1);
        // Unbound: no more copies, even bound again.
        r.unbind(jids[1], 1);
        assert!(r.bind(jids[1], boxes[1].clone()));
        r.route(jids[0], chat(jids[0], jids[3], "chat", ""));
        assert!(boxes[1].take().is_empty());
    }
}
