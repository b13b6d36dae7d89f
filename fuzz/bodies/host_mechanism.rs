//! Fuzz body: a host-provided SASL mechanism, through the public
//! [`ClientMechanism`] and [`ServerMechanism`] traits, its messages
//! carried as the XML layer carries them (`SaslElement::write_to`, our
//! `StreamReader`, `SaslElement::parse`). Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/host_mechanism.rs`) and `tests/fuzz_host.rs`.
//!
//! This fuzzes the trait path alone, as a host driving a mechanism
//! itself would (`tests/pair.rs` registers a host mechanism in a
//! `Client` and a `Server`). The mechanism is scripted by the input so that every step the
//! traits allow happens in every order: challenges, credential requests
//! and their answers of any kind, success with or without additional
//! data, failures, on either side.
//!
//! Input layout: the input is split at `0xff` bytes into messages; each
//! message's first byte is what the side whose turn it is does next, the
//! rest its payload:
//! - server (`start`, `respond`, `answer`): `% 4` 0 a challenge, 1 a
//!   credential request (`External`, the payload as authzid), 2 success
//!   (payload as additional data, none when empty), 3 a failure;
//! - client (`initial_response`, `respond`, `success`): odd fails, even
//!   answers with the payload (`initial_response`: none when empty).
//!
//! A broken invariant is a panic: nothing panics; every payload arrives
//! exactly as it was sent (the XML round trip); an exchange ends within
//! the input's messages with a success or a typed failure.

use xmpp_sansio::sasl::{
    ClientMechanism, CredentialAnswer, CredentialRequest, Identity, SaslCondition, SaslError,
    ServerMechanism, ServerStep,
};
use xmpp_sansio::steps::sasl::{SaslElement, Zeroizing};
use xmpp_sansio::xml::{StreamEvent, StreamReader, StreamWriter};

/// Splits the input into messages.
pub const SEPARATOR: u8 = 0xff;
/// The mechanism's name.
pub const NAME: &str = "X-HOST-SCRIPTED";

/// The script: the messages left.
struct Script {
    messages: std::vec::IntoIter<Vec<u8>>,
}

impl Script {
    fn next(&mut self) -> (u8, Vec<u8>) {
        match self.messages.next() {
            Some(m) if !m.is_empty() => (m[0], m[1..].to_vec()),
            _ => (3, Vec::new()),
        }
    }
}

/// The host's client side: answers as scripted.
struct Client<'a>(&'a std::sync::Mutex<Script>);
/// The host's server side: steps as scripted.
struct Server<'a>(&'a std::sync::Mutex<Script>);

impl ClientMechanism for Client<'_> {
    fn name(&self) -> &str {
        NAME
    }
    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        match self.0.lock().expect("the script").next() {
            (k, _) if k & 1 == 1 => Err(SaslError::malformed("scripted client failure")),
            (_, p) => Ok((!p.is_empty()).then_some(p)),
        }
    }
    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        let _ = challenge;
        match self.0.lock().expect("the script").next() {
            (k, _) if k & 1 == 1 => Err(SaslError::not_authorized("scripted client failure")),
            (_, p) => Ok(p),
        }
    }
    fn success(&mut self, _additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        match self.0.lock().expect("the script").next() {
            (k, _) if k & 1 == 1 => Err(SaslError::not_authorized("server not proven")),
            _ => Ok(()),
        }
    }
}

impl Server<'_> {
    fn step(&mut self) -> Result<ServerStep, SaslError> {
        let (k, p) = self.0.lock().expect("the script").next();
        match k % 4 {
            0 => Ok(ServerStep::Challenge(p)),
            1 => Ok(ServerStep::Request(CredentialRequest::External {
                authzid: (!p.is_empty()).then(|| String::from_utf8_lossy(&p).into_owned()),
            })),
            2 => Ok(ServerStep::Success {
                identity: Identity {
                    username: "alice".into(),
                    authzid: None,
                },
                additional_data: (!p.is_empty()).then_some(p),
            }),
            _ => Err(SaslError::new(SaslCondition::NotAuthorized, "scripted")),
        }
    }
}

impl ServerMechanism for Server<'_> {
    fn name(&self) -> &str {
        NAME
    }
    fn start(&mut self, _initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        self.step()
    }
    fn respond(&mut self, _response: &[u8]) -> Result<ServerStep, SaslError> {
        self.step()
    }
    fn answer(&mut self, _answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        self.step()
    }
}

/// `el` written by our writer and read back by our reader, parsed.
fn round_trip(el: &SaslElement) -> SaslElement {
    let writer = StreamWriter::new("jabber:client");
    let mut doc =
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
            .to_vec();
    el.write_to(&writer, &mut doc)
        .unwrap_or_else(|e| panic!("{el:?} does not serialise: {e:?}"));
    let mut reader = StreamReader::default();
    let mut input = &doc[..];
    let _header = reader.read(&mut input);
    let Ok(Some(StreamEvent::Element(read))) = reader.read(&mut input) else {
        panic!(
            "{el:?} does not read back: {:?}",
            String::from_utf8_lossy(&doc)
        );
    };
    match SaslElement::parse(&read) {
        Some(Ok(parsed)) => parsed,
        other => panic!("{el:?} parses back as {other:?}"),
    }
}

/// How the exchange ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    Success,
    ClientFailed(SaslCondition),
    ServerFailed(SaslCondition),
}

/// Runs the input; the exchange's end.
pub fn run_outcome(data: &[u8]) -> End {
    let messages: Vec<Vec<u8>> = data
        .split(|b| *b == SEPARATOR)
        .map(<[u8]>::to_vec)
        .collect();
    let rounds = messages.len() + 2;
    let script = std::sync::Mutex::new(Script {
        messages: messages.into_iter(),
    });
    let (mut client, mut server) = (Client(&script), Server(&script));
    let ir = match client.initial_response() {
        Ok(ir) => ir,
        Err(e) => return End::ClientFailed(e.condition),
    };
    let auth = SaslElement::Auth {
        mechanism: NAME.into(),
        initial_response: ir.clone().map(Zeroizing::new),
    };
    let SaslElement::Auth {
        mechanism,
        initial_response,
    } = round_trip(&auth)
    else {
        panic!("<auth/> read back as something else");
    };
    let read_back = initial_response.as_ref().map(|r| r.to_vec());
    assert_eq!((mechanism.as_str(), &read_back), (NAME, &ir));
    let mut step = server.start(initial_response.as_deref().map(Vec::as_slice));
    for _ in 0..rounds {
        step = match step {
            Err(e) => return End::ServerFailed(e.condition),
            Ok(ServerStep::Request(_)) => {
                server.answer(CredentialAnswer::Verdict(Ok("alice".into())))
            }
            Ok(ServerStep::Challenge(c)) => {
                let got = match round_trip(&SaslElement::Challenge(Zeroizing::new(c.clone()))) {
                    SaslElement::Challenge(got) => got.to_vec(),
                    other => panic!("a challenge read back as {other:?}"),
                };
                assert_eq!(got, c, "challenge payload");
                let r = match client.respond(&got) {
                    Ok(r) => r,
                    Err(e) => return End::ClientFailed(e.condition),
                };
                let got = match round_trip(&SaslElement::Response(Zeroizing::new(r.clone()))) {
                    SaslElement::Response(got) => got.to_vec(),
                    other => panic!("a response read back as {other:?}"),
                };
                assert_eq!(got, r, "response payload");
                server.respond(&got)
            }
            Ok(ServerStep::Success {
                additional_data, ..
            }) => {
                let sent = additional_data.clone().map(Zeroizing::new);
                let got = match round_trip(&SaslElement::Success(sent)) {
                    SaslElement::Success(got) => got.map(|g| g.to_vec()),
                    other => panic!("a success read back as {other:?}"),
                };
                assert_eq!(got, additional_data, "success additional data");
                return match client.success(got.as_deref()) {
                    Ok(()) => End::Success,
                    Err(e) => End::ClientFailed(e.condition),
                };
            }
            Ok(_) => return End::ServerFailed(SaslCondition::TemporaryAuthFailure),
        };
    }
    panic!("the exchange did not end within its script");
}

/// The fuzz body.
pub fn run(data: &[u8]) {
    let _ = run_outcome(data);
}
