//! A deterministic GSS-API context for the GSSAPI tests: no Kerberos, fixed
//! byte strings. The initiator's first token is `AP-REQ:<principal>:<key>`,
//! the acceptor's answer (with mutual authentication) `AP-REP:<key>`, and a
//! wrap token is `WRAP:<key>|` followed by the message: a context that
//! holds another key fails to accept or unwrap, as a forged ticket or a
//! tampered token would with Kerberos.

use std::sync::{Arc, Mutex};

use xmpp_sansio::sasl::gssapi::{GssContext, GssError, GssStep};

/// The test realm's principal for alice.
pub const ALICE: &str = "alice@EXAMPLE.TEST";
/// The key alice's ticket and the service's keytab share.
pub const KEY: &str = "xmpp-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Initiator,
    Acceptor,
}

/// One side's context; see the module docs.
pub struct TestGss {
    role: Role,
    key: String,
    principal: String,
    /// Mutual authentication: the acceptor answers with an AP-REP.
    pub mutual: bool,
    /// The acceptor reports no peer name (a host bug).
    pub no_peer_name: bool,
    /// Every call fails with this (a missing ticket).
    pub fail: Option<&'static str>,
    established: bool,
    peer: Option<String>,
    /// Every message given to `wrap`, for the tests to look at.
    pub wrapped: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl TestGss {
    /// alice's initiator, holding `KEY`.
    pub fn initiator() -> TestGss {
        TestGss::new(Role::Initiator, KEY, ALICE)
    }

    /// The service's acceptor, holding `KEY`.
    pub fn acceptor() -> TestGss {
        TestGss::new(Role::Acceptor, KEY, "")
    }

    fn new(role: Role, key: &str, principal: &str) -> TestGss {
        TestGss {
            role,
            key: key.into(),
            principal: principal.into(),
            mutual: true,
            no_peer_name: false,
            fail: None,
            established: false,
            peer: None,
            wrapped: Arc::default(),
        }
    }

    /// The same side with another key.
    pub fn with_key(mut self, key: &str) -> TestGss {
        self.key = key.into();
        self
    }

    /// The same initiator for another principal.
    pub fn with_principal(mut self, principal: &str) -> TestGss {
        self.principal = principal.into();
        self
    }

    pub fn without_mutual(mut self) -> TestGss {
        self.mutual = false;
        self
    }

    pub fn boxed(self) -> Box<dyn GssContext> {
        Box::new(self)
    }

    fn ap_rep(&self) -> Vec<u8> {
        format!("AP-REP:{}", self.key).into_bytes()
    }

    fn prefix(&self) -> Vec<u8> {
        format!("WRAP:{}|", self.key).into_bytes()
    }
}

impl GssContext for TestGss {
    fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        if let Some(f) = self.fail {
            return Err(GssError::new(f));
        }
        if self.established {
            return Err(GssError::new("context already established"));
        }
        match (self.role, token) {
            (Role::Initiator, None) => {
                let ap_req = format!("AP-REQ:{}:{}", self.principal, self.key).into_bytes();
                if self.mutual {
                    Ok(GssStep::Continue(ap_req))
                } else {
                    self.established = true;
                    Ok(GssStep::Complete(Some(ap_req)))
                }
            }
            (Role::Initiator, Some(t)) if t == self.ap_rep() => {
                self.established = true;
                Ok(GssStep::Complete(None))
            }
            (Role::Initiator, Some(_)) => Err(GssError::new("bad AP-REP")),
            (Role::Acceptor, Some(t)) => {
                let t = std::str::from_utf8(t).map_err(|_| GssError::new("not a token"))?;
                let rest = t
                    .strip_prefix("AP-REQ:")
                    .ok_or(GssError::new("not an AP-REQ"))?;
                let (principal, key) = rest
                    .rsplit_once(':')
                    .ok_or(GssError::new("not an AP-REQ"))?;
                if key != self.key {
                    return Err(GssError::new("decrypt integrity check failed"));
                }
                self.peer = Some(principal.to_owned());
                self.established = true;
                // The initiator asks for mutual authentication in its
                // AP-REQ; here both sides are told alike.
                Ok(GssStep::Complete(self.mutual.then(|| self.ap_rep())))
            }
            (Role::Acceptor, None) => Err(GssError::new("acceptor needs a token")),
        }
    }

    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        if !self.established {
            return Err(GssError::new("context not established"));
        }
        self.wrapped.lock().unwrap().push(message.to_vec());
        Ok([self.prefix(), message.to_vec()].concat())
    }

    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        if !self.established {
            return Err(GssError::new("context not established"));
        }
        token
            .strip_prefix(self.prefix().as_slice())
            .map(<[u8]>::to_vec)
            .ok_or(GssError::new("bad MIC"))
    }

    fn peer_name(&self) -> Option<String> {
        match (self.role, self.no_peer_name) {
            (Role::Acceptor, false) => self.peer.clone(),
            _ => None,
        }
    }
}

/// A context that replays a capture: `tokens` are the initiator's context
/// tokens and `challenges` the acceptor's, in order; unwrap reads the
/// payload of an RFC 4121 wrap token without confidentiality (16 bytes of
/// header, the message, `EC` bytes of checksum), and wrap returns the
/// capture's `wrap_result` once its payload is the message given.
pub struct ReplayGss {
    pub tokens: Vec<Vec<u8>>,
    pub challenges: Vec<Vec<u8>>,
    pub wrap_result: Vec<u8>,
    step: usize,
}

impl ReplayGss {
    pub fn new(tokens: Vec<Vec<u8>>, challenges: Vec<Vec<u8>>, wrap_result: Vec<u8>) -> ReplayGss {
        ReplayGss {
            tokens,
            challenges,
            wrap_result,
            step: 0,
        }
    }
}

/// The message of an RFC 4121 (CFX) wrap token with `conf` off.
pub fn cfx_payload(token: &[u8]) -> Option<&[u8]> {
    if token.len() < 16 || token[..2] != [0x05, 0x04] || token[2] & 0x02 != 0 {
        return None;
    }
    let ec = u16::from_be_bytes([token[4], token[5]]) as usize;
    token.get(16..token.len().checked_sub(ec)?)
}

impl GssContext for ReplayGss {
    fn step(&mut self, token: Option<&[u8]>) -> Result<GssStep, GssError> {
        let k = self.step;
        match (k, token) {
            (0, None) => {}
            (k, Some(t)) if k > 0 && self.challenges.get(k - 1).map(Vec::as_slice) == Some(t) => {}
            _ => return Err(GssError::new("not the captured token")),
        }
        self.step += 1;
        let out = self.tokens.get(k).cloned();
        if k < self.challenges.len() {
            Ok(GssStep::Continue(out.unwrap_or_default()))
        } else {
            Ok(GssStep::Complete(out))
        }
    }

    fn wrap(&mut self, message: &[u8]) -> Result<Vec<u8>, GssError> {
        match cfx_payload(&self.wrap_result) {
            Some(p) if p == message => Ok(self.wrap_result.clone()),
            _ => Err(GssError::new("not the captured message")),
        }
    }

    fn unwrap(&mut self, token: &[u8]) -> Result<Vec<u8>, GssError> {
        cfx_payload(token)
            .map(<[u8]>::to_vec)
            .ok_or(GssError::new("not a CFX wrap token"))
    }

    fn peer_name(&self) -> Option<String> {
        None
    }
}
