//! Cost of one full SASL exchange, client and server in memory.
//!
//! One group, `sasl_exchange`, so that the figures come from the same run
//! and sit side by side. Each iteration builds a fresh client and server
//! and runs the whole exchange: the client's initial response, the
//! server's steps, the host answering the credential request from a store
//! precomputed before timing, the client's answers, and the client
//! checking `<success/>` (for SCRAM, the server signature). Randomness is
//! [`DeterministicRandom`], so every iteration exchanges the same bytes.
//!
//! - `PLAIN`: the host compares the password with its stored copy.
//! - `SCRAM-SHA-{1,256,512}/pbkdf2-4096`: the client has the password and
//!   runs PBKDF2 (4096 iterations) on every login; the server holds
//!   precomputed StoredKey/ServerKey, as a real server does.
//! - `SCRAM-SHA-{1,256,512}/cached-keys`: the client logs in with the
//!   ClientKey/ServerKey handed back by an earlier exchange
//!   ([`ScramClient::keys_for_cache`]) and no password: no PBKDF2.
//!
//! Throughput is one element per exchange, so criterion also reports
//! exchanges per second.
//!
//! Run: `cargo bench --bench sasl -- --warm-up-time 1 --measurement-time 5`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use xmpp_sansio::sasl::plain::{PlainClient, PlainServer};
use xmpp_sansio::sasl::scram::{
    derive_server_credentials, mechanism_name, ScramClient, ScramClientKeys, ScramClientSecret,
    ScramServer, ServerOffer, ALL_HASHES,
};
use xmpp_sansio::sasl::{
    ClientMechanism, CredentialAnswer, CredentialRequest, Identity, SaslCondition, SaslError,
    ScramCredentials, ScramHash, ServerMechanism, ServerStep,
};
use xmpp_sansio::DeterministicRandom;

const USER: &str = "juliet";
const PASSWORD: &str = "r0m30, my r0m30";
const SALT: &[u8] = b"NaCl-of-the-capulets";
/// RFC 7677's recommended minimum, and the client's default minimum.
const ITERATIONS: u32 = 4096;

/// What the host has on file, computed once before timing.
struct Store {
    /// PLAIN: the password itself.
    passwords: HashMap<String, String>,
    /// SCRAM: salt, iteration count, StoredKey and ServerKey per hash.
    scram: HashMap<(String, ScramHash), ScramCredentials>,
}

impl Store {
    fn new() -> Self {
        let passwords = HashMap::from([(USER.to_owned(), PASSWORD.to_owned())]);
        let scram = ALL_HASHES
            .iter()
            .map(|&hash| {
                let creds = derive_server_credentials(hash, PASSWORD, SALT, ITERATIONS)
                    .expect("valid credentials");
                ((USER.to_owned(), hash), creds)
            })
            .collect();
        Self { passwords, scram }
    }

    /// The host's answer to `request`.
    fn answer(&self, request: CredentialRequest) -> CredentialAnswer {
        match request {
            CredentialRequest::Password {
                username, password, ..
            } => CredentialAnswer::Verdict(match self.passwords.get(&username) {
                Some(p) if password.ct_eq(p) => Ok(username),
                _ => Err(SaslCondition::NotAuthorized),
            }),
            CredentialRequest::Scram { username, hash, .. } => {
                CredentialAnswer::Scram(self.scram.get(&(username, hash)).cloned())
            }
            other => panic!("unexpected request {other:?}"),
        }
    }
}

/// Runs one exchange to the end: the identity the server authenticated,
/// or the first error on either side.
fn exchange(
    client: &mut dyn ClientMechanism,
    server: &mut dyn ServerMechanism,
    store: &Store,
) -> Result<Identity, SaslError> {
    let initial = client.initial_response()?;
    let mut step = server.start(initial.as_deref())?;
    loop {
        step = match step {
            ServerStep::Request(request) => server.answer(store.answer(request))?,
            ServerStep::Challenge(challenge) => server.respond(&client.respond(&challenge)?)?,
            ServerStep::Success {
                identity,
                additional_data,
            } => {
                client.success(additional_data.as_deref())?;
                return Ok(identity);
            }
            other => panic!("unexpected step {other:?}"),
        };
    }
}

/// The server's offer: the non-PLUS SCRAM mechanism of `hash` and PLAIN
/// (no channel binding: the figures are about the mechanism itself).
fn offer(hash: ScramHash) -> ServerOffer {
    ServerOffer::new([mechanism_name(hash, false), "PLAIN"])
}

/// A fresh SCRAM client: with the password (PBKDF2 on every login) or
/// with cached keys and no password.
fn scram_client(hash: ScramHash, cached: Option<&ScramClientKeys>) -> ScramClient {
    let builder = ScramClient::builder(hash, USER, &offer(hash));
    let builder = match cached {
        Some(keys) => builder.cached_keys(keys.clone()),
        None => builder.password(PASSWORD),
    };
    builder
        .build(&mut DeterministicRandom::new(1))
        .expect("valid client")
}

fn scram_server(hash: ScramHash) -> ScramServer {
    ScramServer::builder(hash, false, &offer(hash))
        .build(&mut DeterministicRandom::new(2))
        .expect("valid server")
}

fn plain_exchange(store: &Store) -> Result<Identity, SaslError> {
    exchange(
        &mut PlainClient::new(USER, PASSWORD),
        &mut PlainServer::new(),
        store,
    )
}

fn scram_exchange(
    hash: ScramHash,
    cached: Option<&ScramClientKeys>,
    store: &Store,
) -> Result<Identity, SaslError> {
    exchange(
        &mut scram_client(hash, cached),
        &mut scram_server(hash),
        store,
    )
}

/// The ClientKey/ServerKey a client hands back after a successful
/// password login, checked to be the no-PBKDF2 form.
fn cached_keys(hash: ScramHash, store: &Store) -> ScramClientKeys {
    let mut client = scram_client(hash, None);
    let identity = exchange(&mut client, &mut scram_server(hash), store)
        .expect("the password exchange succeeds");
    assert_eq!(identity.username, USER);
    let keys = client.keys_for_cache().expect("keys after success");
    assert!(matches!(keys.secret, ScramClientSecret::Keys { .. }));
    assert_eq!((keys.salt.as_slice(), keys.iterations), (SALT, ITERATIONS));
    keys
}

fn label(hash: ScramHash) -> &'static str {
    mechanism_name(hash, false)
}

fn sasl_exchange(c: &mut Criterion) {
    let store = Store::new();
    let cached: Vec<(ScramHash, ScramClientKeys)> = ALL_HASHES
        .iter()
        .map(|&hash| (hash, cached_keys(hash, &store)))
        .collect();

    // Outside the timed loops: every measured exchange really succeeds,
    // and a wrong password really fails (the host does check).
    let expect_user = |r: Result<Identity, SaslError>, what: &str| {
        let identity = r.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(identity.username, USER, "{what}");
    };
    expect_user(plain_exchange(&store), "PLAIN");
    assert!(exchange(
        &mut PlainClient::new(USER, "wrong"),
        &mut PlainServer::new(),
        &store
    )
    .is_err());
    for (hash, keys) in &cached {
        expect_user(scram_exchange(*hash, None, &store), label(*hash));
        expect_user(scram_exchange(*hash, Some(keys), &store), label(*hash));
        let mut wrong = ScramClient::builder(*hash, USER, &offer(*hash))
            .password("wrong")
            .build(&mut DeterministicRandom::new(1))
            .expect("valid client");
        assert!(exchange(&mut wrong, &mut scram_server(*hash), &store).is_err());
    }

    let mut g = c.benchmark_group("sasl_exchange");
    g.throughput(Throughput::Elements(1));
    g.bench_function("PLAIN", |b| b.iter(|| plain_exchange(black_box(&store))));
    for (hash, keys) in &cached {
        g.bench_function(
            BenchmarkId::new(label(*hash), format!("pbkdf2-{ITERATIONS}")),
            |b| b.iter(|| scram_exchange(*hash, None, black_box(&store))),
        );
        g.bench_function(BenchmarkId::new(label(*hash), "cached-keys"), |b| {
            b.iter(|| scram_exchange(*hash, Some(black_box(keys)), black_box(&store)))
        });
    }
    g.finish();
}

criterion_group!(benches, sasl_exchange);
criterion_main!(benches);
