//! What the replays of the Prosody 13 web captures (WebSocket and BOSH,
//! `tests/fixtures/prosody/prosody13_{ws,bosh}_*.txt`) share: the SCRAM
//! values the capture used, the host that stores alice/secret as Prosody
//! did, and what a server role must have seen of alice's login.

use minidom::Element;
use xmpp_sansio::sasl::scram::derive_server_credentials;
use xmpp_sansio::sasl::{
    decode_payload, CredentialAnswer, CredentialRequest, SaslCondition, ScramHash,
};
use xmpp_sansio::server::ServerEvent;

/// The base64 text of a SASL element, decoded as UTF-8.
pub fn b64_text(el: &Element) -> String {
    String::from_utf8(decode_payload(&el.text()).unwrap().unwrap_or_default()).unwrap()
}

/// The value of `key` (`r=`, `s=`...) in a SCRAM message.
pub fn attr<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    msg.split(',').find_map(|kv| kv.strip_prefix(key))
}

/// What the capture's SCRAM exchange used: the client nonce, Prosody's
/// server nonce part, salt and iteration count.
pub struct ScramCapture {
    pub client_nonce: String,
    pub server_nonce: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

impl ScramCapture {
    /// From the capture's `<auth/>` and first `<challenge/>`.
    pub fn of(auth: &Element, challenge: &Element) -> Option<ScramCapture> {
        let first = b64_text(auth);
        let client_nonce = attr(&first, "r=")?.to_owned();
        let server_first = b64_text(challenge);
        let nonce = attr(&server_first, "r=")?;
        Some(ScramCapture {
            server_nonce: nonce.strip_prefix(client_nonce.as_str())?.to_owned(),
            client_nonce,
            salt: decode_payload(attr(&server_first, "s=")?).ok()??,
            iterations: attr(&server_first, "i=")?.parse().ok()?,
        })
    }
}

/// The host: alice/secret, stored as Prosody stored it (the capture's
/// SCRAM-SHA-1 salt and iterations).
pub fn answer(req: &CredentialRequest, scram: Option<&ScramCapture>) -> CredentialAnswer {
    match req {
        CredentialRequest::Password {
            username, password, ..
        } => CredentialAnswer::Verdict(if username == "alice" && password.ct_eq("secret") {
            Ok(username.clone())
        } else {
            Err(SaslCondition::NotAuthorized)
        }),
        CredentialRequest::Scram { username, .. } => {
            let s = scram.expect("SCRAM in the capture");
            CredentialAnswer::Scram((username == "alice").then(|| {
                derive_server_credentials(ScramHash::Sha1, "secret", &s.salt, s.iterations).unwrap()
            }))
        }
        _ => CredentialAnswer::Verdict(Err(SaslCondition::TemporaryAuthFailure)),
    }
}

/// The server role logged alice in from the capture: authenticated as
/// `alice@localhost`, bound `alice@localhost/web`, and her message to
/// herself reached the host with `from` stamped.
pub fn assert_alice_logged_in(events: &[ServerEvent], file: &str) {
    assert!(
        events.iter().any(|e| matches!(
            e, ServerEvent::Authenticated { jid, .. } if jid.as_str() == "alice@localhost"
        )),
        "{file}: {events:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, ServerEvent::Ready { jid } if jid.as_str() == "alice@localhost/web")
        ),
        "{file}"
    );
    assert!(
        events.iter().any(|e| matches!(e, ServerEvent::Stanza(s)
            if s.name() == "message" && s.attr("from") == Some("alice@localhost/web"))),
        "{file}"
    );
}
