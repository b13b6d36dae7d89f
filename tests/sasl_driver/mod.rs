//! A SASL client and server in memory, driven to the end, with optional
//! tampering of one message in flight. Shared by the SASL test files.
#![allow(dead_code)]

use xmpp_sansio::sasl::{
    ClientMechanism, CredentialAnswer, CredentialRequest, Identity, SaslCondition, SaslError,
    ServerMechanism, ServerStep,
};

#[derive(Debug)]
pub enum Outcome {
    Success(Identity),
    ClientFailed(SaslError),
    ServerFailed(SaslError),
}

impl Outcome {
    pub fn server_condition(&self) -> Option<SaslCondition> {
        match self {
            Outcome::ServerFailed(e) => Some(e.condition),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Tamper {
    /// Which message (in flight order, both directions).
    pub message: usize,
    /// Byte position, modulo the length.
    pub pos: usize,
    /// XOR mask (non-zero); an empty message gets this byte appended.
    pub xor: u8,
}

pub struct Run {
    pub outcome: Outcome,
    /// Every message as it arrived (after tampering).
    pub messages: Vec<Vec<u8>>,
}

fn tamper(t: Option<Tamper>, messages: &mut Vec<Vec<u8>>, mut m: Vec<u8>) -> Vec<u8> {
    if let Some(t) = t {
        if t.message == messages.len() {
            if m.is_empty() {
                m.push(t.xor);
            } else {
                let p = t.pos % m.len();
                m[p] ^= t.xor;
            }
        }
    }
    messages.push(m.clone());
    m
}

pub fn run(
    client: &mut dyn ClientMechanism,
    server: &mut dyn ServerMechanism,
    host: &mut dyn FnMut(CredentialRequest) -> CredentialAnswer,
    t: Option<Tamper>,
) -> Run {
    assert_eq!(client.name(), server.name());
    let mut messages = Vec::new();
    let ir = match client.initial_response() {
        Ok(ir) => ir.map(|m| tamper(t, &mut messages, m)),
        Err(e) => {
            return Run {
                outcome: Outcome::ClientFailed(e),
                messages,
            }
        }
    };
    let mut step = server.start(ir.as_deref());
    for _ in 0..32 {
        step = match step {
            Err(e) => {
                return Run {
                    outcome: Outcome::ServerFailed(e),
                    messages,
                }
            }
            Ok(ServerStep::Request(r)) => server.answer(host(r)),
            Ok(ServerStep::Challenge(c)) => {
                let c = tamper(t, &mut messages, c);
                match client.respond(&c) {
                    Err(e) => {
                        return Run {
                            outcome: Outcome::ClientFailed(e),
                            messages,
                        }
                    }
                    Ok(r) => {
                        let r = tamper(t, &mut messages, r);
                        server.respond(&r)
                    }
                }
            }
            Ok(ServerStep::Success {
                identity,
                additional_data,
            }) => {
                let ad = additional_data.map(|d| tamper(t, &mut messages, d));
                let outcome = match client.success(ad.as_deref()) {
                    Ok(()) => Outcome::Success(identity),
                    Err(e) => Outcome::ClientFailed(e),
                };
                return Run { outcome, messages };
            }
            Ok(other) => panic!("unknown step {other:?}"),
        };
    }
    panic!("exchange did not finish");
}
