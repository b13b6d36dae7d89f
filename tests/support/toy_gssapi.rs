//! A toy GSSAPI (RFC 4752 shaped: context tokens, then a wrapped
//! security-layer negotiation carrying the authzid), client and server
//! side, whose "Kerberos library" is a small struct of the host: a
//! mechanism the crate does not ship, built on the public SASL traits.
//! Driven alone by `tests/sasl_custom_mechanism.rs`, and registered in a
//! `Client` and a `Server` by `tests/pair.rs`.

use sha1::{Digest, Sha1};
use xmpp_sansio::sasl::{
    ClientMechanism, CredentialAnswer, CredentialRequest, SaslCondition, SaslError,
    ServerMechanism, ServerStep,
};

/// The mechanism's name.
pub const NAME: &str = "X-TOY-GSSAPI";

/// The host's Kerberos stand-in: the client's ticket and the service's
/// keytab share `key`; tokens are tagged with SHA-1(key | label | data).
#[derive(Clone)]
pub struct ToyKerberos {
    pub key: Vec<u8>,
}

impl ToyKerberos {
    pub fn tag(&self, label: &str, data: &[u8]) -> [u8; 20] {
        let mut h = Sha1::new();
        h.update(&self.key);
        h.update(label.as_bytes());
        h.update([0]);
        h.update(data);
        h.finalize().into()
    }

    /// AP-REQ: principal, NUL, tag.
    fn init_context(&self, principal: &str) -> Vec<u8> {
        [
            principal.as_bytes(),
            &[0],
            &self.tag("ap-req", principal.as_bytes()),
        ]
        .concat()
    }

    /// The principal of a genuine AP-REQ, and the AP-REP proving the
    /// service knows the key.
    fn accept_context(&self, token: &[u8]) -> Option<(String, Vec<u8>)> {
        let nul = token.iter().position(|b| *b == 0)?;
        let (principal, tag) = (&token[..nul], &token[nul + 1..]);
        if tag != self.tag("ap-req", principal) {
            return None;
        }
        Some((
            String::from_utf8(principal.to_vec()).ok()?,
            self.tag("ap-rep", principal).to_vec(),
        ))
    }

    fn wrap(&self, data: &[u8]) -> Vec<u8> {
        [data, &self.tag("wrap", data)].concat()
    }

    fn unwrap(&self, token: &[u8]) -> Option<Vec<u8>> {
        let split = token.len().checked_sub(20)?;
        let (data, tag) = token.split_at(split);
        (tag == self.tag("wrap", data)).then(|| data.to_vec())
    }
}

/// RFC 4752's security layer bit for "no security layer".
const NO_SECURITY_LAYER: u8 = 1;

pub struct ToyGssapiClient {
    krb: ToyKerberos,
    principal: String,
    authzid: String,
    step: u8,
}

impl ClientMechanism for ToyGssapiClient {
    fn name(&self) -> &str {
        NAME
    }

    fn initial_response(&mut self) -> Result<Option<Vec<u8>>, SaslError> {
        self.step = 1;
        Ok(Some(self.krb.init_context(&self.principal)))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match self.step {
            // The AP-REP: mutual authentication, then an empty token.
            1 => {
                if challenge != self.krb.tag("ap-rep", self.principal.as_bytes()) {
                    return Err(SaslError::not_authorized(
                        "the service failed to authenticate",
                    ));
                }
                self.step = 2;
                Ok(Vec::new())
            }
            // The wrapped layer offer: pick "none", send the authzid.
            2 => {
                let offer = self
                    .krb
                    .unwrap(challenge)
                    .ok_or(SaslError::not_authorized("bad wrap token"))?;
                if offer.len() != 4 || offer[0] & NO_SECURITY_LAYER == 0 {
                    return Err(SaslError::malformed("no acceptable security layer"));
                }
                self.step = 3;
                let mut reply = vec![NO_SECURITY_LAYER, 0, 0, 0];
                reply.extend_from_slice(self.authzid.as_bytes());
                Ok(self.krb.wrap(&reply))
            }
            _ => Err(SaslError::malformed("unexpected challenge")),
        }
    }

    fn success(&mut self, additional_data: Option<&[u8]>) -> Result<(), SaslError> {
        match (self.step, additional_data) {
            (3, None) => Ok(()),
            _ => Err(SaslError::malformed("unexpected success")),
        }
    }
}

pub struct ToyGssapiServer {
    keytab: ToyKerberos,
    step: u8,
}

impl ServerMechanism for ToyGssapiServer {
    fn name(&self) -> &str {
        NAME
    }

    fn start(&mut self, initial_response: Option<&[u8]>) -> Result<ServerStep, SaslError> {
        let token = initial_response.ok_or(SaslError::malformed("initial token required"))?;
        let (_principal, ap_rep) = self
            .keytab
            .accept_context(token)
            .ok_or(SaslError::not_authorized("bad ticket"))?;
        self.step = 1;
        Ok(ServerStep::Challenge(ap_rep))
    }

    fn respond(&mut self, response: &[u8]) -> Result<ServerStep, SaslError> {
        match (self.step, response) {
            (1, []) => {
                self.step = 2;
                // Layers offered: none; maximum buffer: 0.
                Ok(ServerStep::Challenge(self.keytab.wrap(&[
                    NO_SECURITY_LAYER,
                    0,
                    0,
                    0,
                ])))
            }
            (2, wrapped) => {
                let reply = self
                    .keytab
                    .unwrap(wrapped)
                    .ok_or(SaslError::not_authorized("bad wrap token"))?;
                if reply.len() < 4 || reply[0] != NO_SECURITY_LAYER {
                    return Err(SaslError::malformed("bad security layer choice"));
                }
                let authzid = String::from_utf8(reply[4..].to_vec())
                    .map_err(|_| SaslError::malformed("authzid is not UTF-8"))?;
                self.step = 3;
                // The host decides whether the principal may act as the
                // authzid, as it does for EXTERNAL.
                Ok(ServerStep::Request(CredentialRequest::External {
                    authzid: (!authzid.is_empty()).then_some(authzid),
                }))
            }
            _ => Err(SaslError::malformed("unexpected response")),
        }
    }

    fn answer(&mut self, answer: CredentialAnswer) -> Result<ServerStep, SaslError> {
        if self.step != 3 {
            return Err(SaslError::new(
                SaslCondition::TemporaryAuthFailure,
                "no request pending",
            ));
        }
        self.step = 4;
        match answer {
            CredentialAnswer::Verdict(Ok(username)) => Ok(ServerStep::Success {
                identity: xmpp_sansio::sasl::Identity {
                    username,
                    authzid: None,
                },
                additional_data: None,
            }),
            CredentialAnswer::Verdict(Err(c)) => Err(SaslError::new(c, "refused by the host")),
            _ => Err(SaslError::new(
                SaslCondition::TemporaryAuthFailure,
                "wrong answer",
            )),
        }
    }
}

pub fn service() -> ToyKerberos {
    ToyKerberos {
        key: b"xmpp/example.com key".to_vec(),
    }
}

pub fn client(key: ToyKerberos, authzid: &str) -> Box<dyn ClientMechanism> {
    Box::new(ToyGssapiClient {
        krb: key,
        principal: "alice@EXAMPLE.COM".into(),
        authzid: authzid.into(),
        step: 0,
    })
}

pub fn server() -> Box<dyn ServerMechanism> {
    Box::new(ToyGssapiServer {
        keytab: service(),
        step: 0,
    })
}
