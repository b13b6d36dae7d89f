//! `tls-unique` (RFC 5929 section 3) for the blocking client on TLS 1.2,
//! computed by this host because rustls does not expose the Finished
//! message.
//!
//! On a full TLS 1.2 handshake the first Finished message is the client's:
//! `verify_data = PRF(master_secret, "client finished",
//! Hash(handshake_messages))[0..12]` (RFC 5246 section 7.4.9). The host
//! records the plaintext handshake records each way while handshaking
//! ([`Recorder`]), and takes the master secret from a rustls `KeyLog`
//! ([`MasterSecrets`]), keyed by the client random. An abbreviated
//! (resumed) handshake, whose first Finished is the server's, or anything
//! that does not parse gives no tls-unique.

use std::io::{self, Read, Write};
use std::sync::Mutex;

use ring::hmac;
use zeroize::Zeroizing;

/// The most bytes recorded each way: a handshake's plaintext part (with a
/// certificate chain) is far smaller; past it, recording stops and there
/// is no tls-unique.
const RECORD_LIMIT: usize = 256 * 1024;

/// Handshake message types (RFC 5246 section 7.4).
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO_DONE: u8 = 14;

/// Record content types (RFC 5246 section 6.2.1).
const CHANGE_CIPHER_SPEC: u8 = 20;
const HANDSHAKE: u8 = 22;

/// The TLS 1.2 PRF (RFC 5246 section 5): `P_hash(secret, label + seed)`
/// with HMAC over `alg`, `len` bytes.
pub(crate) fn prf(
    alg: hmac::Algorithm,
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    len: usize,
) -> Vec<u8> {
    let key = hmac::Key::new(alg, secret);
    let mut label_seed = Vec::with_capacity(label.len() + seed.len());
    label_seed.extend_from_slice(label);
    label_seed.extend_from_slice(seed);
    let mut out = Vec::with_capacity(len);
    // A(1) = HMAC(secret, label + seed)
    let mut a = hmac::sign(&key, &label_seed);
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(&label_seed);
        out.extend_from_slice(ctx.sign().as_ref());
        a = hmac::sign(&key, a.as_ref());
    }
    out.truncate(len);
    out
}

/// The master secret rustls reports for one connection (`CLIENT_RANDOM`,
/// TLS 1.2 only): the key log of that connection's configuration, so no
/// secret outlives the handshake that made it in a shared place.
#[derive(Default)]
pub(crate) struct MasterSecret(Mutex<Option<Logged>>);

/// A client random and the master secret logged for it.
type Logged = ([u8; 32], Zeroizing<Vec<u8>>);

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterSecret(..)")
    }
}

impl rustls::KeyLog for MasterSecret {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        if label != "CLIENT_RANDOM" {
            return;
        }
        let Ok(random) = <[u8; 32]>::try_from(client_random) else {
            return;
        };
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some((random, Zeroizing::new(secret.to_vec())));
    }

    fn will_log(&self, label: &str) -> bool {
        label == "CLIENT_RANDOM"
    }
}

impl MasterSecret {
    /// Takes the master secret if it was logged for `client_random`.
    fn take(&self, client_random: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let (random, secret) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        (random[..] == *client_random).then_some(secret)
    }
}

/// The bytes each way of a handshake, as they went over the transport.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    /// Read from the peer (the server).
    pub(crate) read: Vec<u8>,
    /// Written to the peer.
    pub(crate) written: Vec<u8>,
    /// A side passed [`RECORD_LIMIT`]: the recording is incomplete.
    pub(crate) overflow: bool,
}

impl Recording {
    /// Adds `bytes` read from the peer.
    pub(crate) fn add_read(&mut self, bytes: &[u8]) {
        Self::add(&mut self.read, &mut self.overflow, bytes);
    }

    fn add(to: &mut Vec<u8>, overflow: &mut bool, bytes: &[u8]) {
        if to.len() + bytes.len() > RECORD_LIMIT {
            *overflow = true;
        } else {
            to.extend_from_slice(bytes);
        }
    }
}

/// A transport that copies what goes through it into a [`Recording`]
/// (used only while handshaking).
pub(crate) struct Recorder<'a, T> {
    pub(crate) inner: &'a mut T,
    pub(crate) rec: &'a mut Recording,
}

impl<T: Read> Read for Recorder<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.rec.add_read(&buf[..n]);
        Ok(n)
    }
}

impl<T: Write> Write for Recorder<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        Recording::add(&mut self.rec.written, &mut self.rec.overflow, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The handshake-protocol bytes of a record stream up to its
/// ChangeCipherSpec (the plaintext part of a TLS 1.2 handshake).
fn plaintext_handshake(stream: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        if rest.len() < 5 {
            return Err("no ChangeCipherSpec in the recorded records");
        }
        let kind = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let body = rest.get(5..5 + len).ok_or("a record is cut short")?;
        match kind {
            CHANGE_CIPHER_SPEC => return Ok(out),
            HANDSHAKE => out.extend_from_slice(body),
            // An alert or anything else before the CCS: not a handshake
            // this code understands.
            _ => return Err("an unexpected record before ChangeCipherSpec"),
        }
        rest = &rest[5 + len..];
    }
}

/// Splits handshake-protocol bytes into messages (each with its 4-byte
/// header).
fn messages(bytes: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err("a handshake message header is cut short");
        }
        let len = usize::from(rest[1]) << 16 | usize::from(rest[2]) << 8 | usize::from(rest[3]);
        if rest.len() < 4 + len {
            return Err("a handshake message is cut short");
        }
        out.push(&rest[..4 + len]);
        rest = &rest[4 + len..];
    }
    Ok(out)
}

/// The client random and the `handshake_messages` before the client's
/// Finished of a full TLS 1.2 handshake, from its recording.
pub(crate) fn client_transcript(rec: &Recording) -> Result<([u8; 32], Vec<u8>), &'static str> {
    if rec.overflow {
        return Err("the handshake was too large to record");
    }
    let client = plaintext_handshake(&rec.written)?;
    let server = plaintext_handshake(&rec.read)?;
    let client = messages(&client)?;
    let server = messages(&server)?;
    let (hello, flight) = client.split_first().ok_or("no ClientHello")?;
    if hello[0] != CLIENT_HELLO || hello.len() < 38 {
        return Err("the first client message is not a ClientHello");
    }
    let random: [u8; 32] = hello[6..38].try_into().map_err(|_| "no client random")?;
    // The server's flight ends with ServerHelloDone; a NewSessionTicket
    // after the client's Finished may follow before its CCS. No
    // ServerHelloDone: an abbreviated handshake, whose first Finished is
    // the server's.
    let done = server
        .iter()
        .position(|m| m[0] == SERVER_HELLO_DONE)
        .ok_or("an abbreviated handshake (no ServerHelloDone)")?;
    let mut transcript = hello.to_vec();
    for m in server[..=done].iter().chain(flight) {
        transcript.extend_from_slice(m);
    }
    Ok((random, transcript))
}

/// The client's `verify_data` for `transcript` with `master_secret`;
/// `sha384`: the suite's PRF hash is SHA-384 (else SHA-256).
pub(crate) fn client_verify_data(master_secret: &[u8], transcript: &[u8], sha384: bool) -> Vec<u8> {
    let (alg, hash) = if sha384 {
        (
            hmac::HMAC_SHA384,
            ring::digest::digest(&ring::digest::SHA384, transcript),
        )
    } else {
        (
            hmac::HMAC_SHA256,
            ring::digest::digest(&ring::digest::SHA256, transcript),
        )
    };
    prf(alg, master_secret, b"client finished", hash.as_ref(), 12)
}

/// The tls-unique of a full TLS 1.2 client handshake from its recording
/// and the master secret its key log got.
pub(crate) fn tls_unique(
    rec: &Recording,
    sha384: bool,
    master: &MasterSecret,
) -> Result<Vec<u8>, &'static str> {
    let (random, transcript) = client_transcript(rec)?;
    let secret = master
        .take(&random)
        .ok_or("no master secret logged for the handshake")?;
    Ok(client_verify_data(&secret, &transcript, sha384))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn prf_sha256_vector() {
        let out = prf(
            hmac::HMAC_SHA256,
            &hex("9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35"),
            b"test label",
            &hex("a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c"),
            100,
        );
        assert_eq!(out, hex(PRF_SHA256_OUT));
    }

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![kind, 3, 3];
        r.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut m = vec![kind, len[1], len[2], len[3]];
        m.extend_from_slice(body);
        m
    }

    fn client_hello() -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend((0..32u8).map(|i| i + 100));
        body.extend_from_slice(&[0, 0, 2, 0xc0, 0x2b, 1, 0]);
        message(CLIENT_HELLO, &body)
    }

    const CCS: &[u8] = &[1];

    #[test]
    fn a_full_handshake_transcript_is_in_wire_order_without_the_ticket() {
        let ch = client_hello();
        let (sh, cert, ske, shd) = (
            message(2, b"server hello"),
            message(11, b"cert"),
            message(12, b"ske"),
            message(SERVER_HELLO_DONE, b""),
        );
        let ticket = message(4, b"ticket");
        let cke = message(16, b"cke");
        let mut server = record(HANDSHAKE, &[sh.clone(), cert.clone()].concat());
        // ServerKeyExchange split over two records
        server.extend(record(HANDSHAKE, &ske[..3]));
        server.extend(record(HANDSHAKE, &[&ske[3..], &shd[..]].concat()));
        server.extend(record(HANDSHAKE, &ticket));
        server.extend(record(CHANGE_CIPHER_SPEC, CCS));
        server.extend(record(HANDSHAKE, b"encrypted finished"));
        let mut client = record(HANDSHAKE, &ch);
        client.extend(record(HANDSHAKE, &cke));
        client.extend(record(CHANGE_CIPHER_SPEC, CCS));
        client.extend(record(HANDSHAKE, b"encrypted finished"));
        let rec = Recording {
            read: server,
            written: client,
            overflow: false,
        };
        let (random, transcript) = client_transcript(&rec).unwrap();
        assert_eq!(random.to_vec(), (100..132u8).collect::<Vec<_>>());
        assert_eq!(transcript, [ch, sh, cert, ske, shd, cke].concat());
    }

    #[test]
    fn an_abbreviated_or_broken_handshake_has_no_transcript() {
        let ch = client_hello();
        // resumption: ServerHello, then the server's CCS and Finished
        let mut server = record(HANDSHAKE, &message(2, b"server hello"));
        server.extend(record(CHANGE_CIPHER_SPEC, CCS));
        let mut client = record(HANDSHAKE, &ch);
        client.extend(record(CHANGE_CIPHER_SPEC, CCS));
        let rec = Recording {
            read: server.clone(),
            written: client.clone(),
            overflow: false,
        };
        assert!(client_transcript(&rec).unwrap_err().contains("abbreviated"));
        // a cut record, an alert, an overflow
        let cut = Recording {
            read: server[..7].to_vec(),
            written: client.clone(),
            overflow: false,
        };
        assert!(client_transcript(&cut).is_err());
        let alert = Recording {
            read: record(21, &[2, 40]),
            written: client.clone(),
            overflow: false,
        };
        assert!(client_transcript(&alert).is_err());
        let over = Recording {
            read: server,
            written: client,
            overflow: true,
        };
        assert!(client_transcript(&over).is_err());
    }

    #[test]
    fn the_master_secret_is_taken_once_and_only_for_its_client_random() {
        use rustls::KeyLog;
        let m = MasterSecret::default();
        m.log("CLIENT_TRAFFIC_SECRET_0", &[1; 32], b"tls13");
        assert!(m.take(&[1; 32]).is_none());
        m.log("CLIENT_RANDOM", &[1; 32], b"master");
        assert!(m.take(&[2; 32]).is_none(), "another handshake's random");
        m.log("CLIENT_RANDOM", &[1; 32], b"master");
        assert_eq!(m.take(&[1; 32]).unwrap().as_slice(), b"master");
        assert!(m.take(&[1; 32]).is_none(), "taken once");
        assert!(!format!("{m:?}").contains("master"));
    }

    /// The TLS 1.2 PRF (SHA-256) vector posted to the IETF TLS list
    /// (https://www.ietf.org/mail-archive/web/tls/current/msg03416.html),
    /// used by many libraries' test suites.
    const PRF_SHA256_OUT: &str = "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a\
        6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab\
        4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701\
        87347b66";
}
