//! Fuzz body: SASL GSSAPI (RFC 4752), the crate's client or server
//! mechanism over a deterministic GSS-API context, fed arbitrary messages
//! from the peer, with a deterministic host answering the server's
//! request. Must never panic. Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/sasl_gssapi.rs`) and `tests/fuzz_sasl_gssapi.rs`.
//!
//! Input layout: byte 0 selects, the rest is split at [`SEPARATOR`] bytes
//! into the peer's messages:
//! - bit 0 (`0x01`): run the client (the messages are challenges; once
//!   they are used up, `<success/>` without data) rather than the server
//!   (the messages are the initial response, then the responses);
//! - bit 1 (`0x02`): the server starts without an initial response;
//! - bit 2 (`0x04`): the host refuses whatever it is asked;
//! - bit 3 (`0x08`): the contexts skip mutual authentication (no AP-REP).
//!
//! The context's tokens are fixed strings: the AP-REQ
//! `AP-REQ:alice@EXAMPLE.TEST:k`, the AP-REP `AP-REP:k`, a wrap token
//! `W:k|` then the message. The host maps `alice@EXAMPLE.TEST` to
//! `alice`, acting as herself only.

use xmpp_sansio::sasl::gssapi::{GssContext, GssError, GssStep, GssapiClient, GssapiServer};
use xmpp_sansio::sasl::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslCondition, ServerMechanism,
    ServerStep,
};

/// Splits the input into messages.
pub const SEPARATOR: u8 = 0xff;
/// The initiator's first token.
pub const AP_REQ: &[u8] = b"AP-REQ:alice@EXAMPLE.TEST:k";
/// The acceptor's token, with mutual authentication.
pub const AP_REP: &[u8] = b"AP-REP:k";
/// What a wrap token starts with.
pub const WRAP: &[u8] = b"W:k|";

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Authenticated (the server: as this user; the client: `""`).
    Success(String),
    /// Failed with this condition.
    Failed(SaslCondition),
    /// The messages ran out first.
    Unfinished,
}

struct Context {
    acceptor: bool,
    mutual: bool,
    established: bool,
    peer: Option<String>,
}

impl GssContext for Context {
    fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        if self.established {
            return Err(GssError::new("established"));
        }
        match (self.acceptor, token) {
            (false, None) if self.mutual => Ok(GssStep::Continue(AP_REQ.to_vec())),
            (false, None) => {
                self.established = true;
                Ok(GssStep::Complete(Some(AP_REQ.to_vec())))
            }
            (false, Some(AP_REP)) => {
                self.established = true;
                Ok(GssStep::Complete(None))
            }
            (true, Some(t)) => {
                let principal = t
                    .strip_prefix(b"AP-REQ:")
                    .and_then(|r| r.strip_suffix(b":k"))
                    .ok_or(GssError::new("bad AP-REQ"))?;
                self.peer = Some(String::from_utf8_lossy(principal).into_owned());
                self.established = true;
                Ok(GssStep::Complete(self.mutual.then(|| AP_REP.to_vec())))
            }
            _ => Err(GssError::new("bad token")),
        }
    }

    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        assert!(self.established, "wrap before the context is established");
        Ok([WRAP, message].concat())
    }

    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        assert!(self.established, "unwrap before the context is established");
        token
            .strip_prefix(WRAP)
            .map(<[u8]>::to_vec)
            .ok_or(GssError::new("bad MIC"))
    }

    fn peer_name(&self) -> Option<String> {
        self.peer.clone().filter(|_| self.acceptor)
    }
}

fn host(request: CredentialRequest, refuse: bool) -> CredentialAnswer {
    let CredentialRequest::Gssapi { principal, authzid } = request else {
        panic!("GSSAPI asked the host {request:?}");
    };
    let ok = principal == "alice@EXAMPLE.TEST"
        && authzid
            .as_deref()
            .is_none_or(|a| a.split('@').next() == Some("alice"));
    CredentialAnswer::Verdict(if ok && !refuse {
        Ok("alice".into())
    } else {
        Err(SaslCondition::NotAuthorized)
    })
}

/// Runs one input; see the module docs.
pub fn run(data: &[u8]) -> End {
    let Some((&flags, rest)) = data.split_first() else {
        return End::Unfinished;
    };
    let mut messages = rest.split(|b| *b == SEPARATOR);
    let context = |acceptor| {
        Box::new(Context {
            acceptor,
            mutual: flags & 0x08 == 0,
            established: false,
            peer: None,
        })
    };
    let failed = |e: xmpp_sansio::sasl::SaslError| End::Failed(e.condition);
    if flags & 0x01 != 0 {
        let mut c = GssapiClient::new(context(false));
        if let Err(e) = c.initial_response() {
            return failed(e);
        }
        for m in messages {
            if let Err(e) = c.respond(m) {
                return failed(e);
            }
        }
        return match c.success(None) {
            Ok(()) => End::Success(String::new()),
            Err(e) => failed(e),
        };
    }
    let mut s = GssapiServer::new(context(true));
    let mut asked = 0;
    let mut step = match flags & 0x02 {
        0 => s.start(Some(messages.next().unwrap_or_default())),
        _ => s.start(None),
    };
    loop {
        step = match step {
            Err(e) => return failed(e),
            Ok(ServerStep::Success {
                identity,
                additional_data,
            }) => {
                assert_eq!(asked, 1, "success without the host's verdict");
                assert_eq!(additional_data, None);
                return End::Success(identity.username);
            }
            Ok(ServerStep::Request(r)) => {
                asked += 1;
                s.answer(host(r, flags & 0x04 != 0))
            }
            Ok(ServerStep::Challenge(_)) => match messages.next() {
                Some(m) => s.respond(m),
                None => return End::Unfinished,
            },
            Ok(other) => panic!("unknown step {other:?}"),
        };
    }
}
